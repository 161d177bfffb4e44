"""Fabric build speed: sim.network.build_fabric and Fabric.graph at 1 GW and 10 GW.

The sites are the default scenario's GB200 NVL72 racks (~5,700 per GW) in 4 halls per GW, a
building per 10 halls (one building at 1 GW), and, for the largest, 10 GW of 8-GPU H100 nodes
(~800k domains). Each fabric kind is built; the build is numpy only (targets: well under 1 s at
10 GW), the networkx graph is built from its arrays on demand (target: a couple of seconds at
10 GW of racks). Times are the best of ``--repeat`` runs, in this process, after a warm-up (the
catalogs load once).

    python benchmarks/fabric.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from sim.catalog.hardware import catalog
from sim.config.schema import NetworkConfig
from sim.network import FabricHall, build_fabric

CASES = (("1 GW GB200", "gb200_nvl72", 5_700), ("10 GW GB200", "gb200_nvl72", 57_000))
CASES += (("10 GW H100", "h100_sxm", 800_000),)


def _halls(hw: str, domains: int, n_halls: int, buildings: bool) -> list[FabricHall]:
    spec = catalog()[hw]
    per = domains // n_halls
    return [
        FabricHall(f"h{i}", spec, i * per, per, f"b{i // 10}" if buildings else "building-1")
        for i in range(n_halls)
    ]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    build_fabric(NetworkConfig(), _halls("gb200_nvl72", 8, 1, False))  # warm-up
    print(f"{'site':<12} {'kind':<15} {'domains':>8} {'build':>9} {'graph':>8} {'nodes':>9}")
    for label, hw, domains in CASES:
        n_halls = max(4, domains // 1_425)  # ~250 MW halls of GB200
        n_halls = min(n_halls, 40)
        for kind in ("non_blocking", "fat_tree", "rail_optimized"):
            multi = kind != "non_blocking" and n_halls > 10
            cfg: dict[str, Any] = {"kind": kind}
            if multi:
                link = {"bandwidth": "400 Tb/s", "distance": "2 km"}
                cfg["scale_across"] = {"buildings": link}
            net = NetworkConfig.model_validate(cfg)
            halls = _halls(hw, domains, n_halls, multi)
            t_build, fab = _best(lambda: build_fabric(net, halls), args.repeat)  # noqa: B023
            t_graph, g = _best(fab.graph, 1)
            print(
                f"{label:<12} {kind:<15} {fab.n_domains:>8,} {t_build * 1e3:>7.1f}ms"
                f" {t_graph:>7.2f}s {g.number_of_nodes():>9,}"
            )


if __name__ == "__main__":
    main()
