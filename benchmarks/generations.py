"""Placement across generations: the cost per event of a mixed site.

The default 1 GW scenario with halls c and d on Vera Rubin NVL144 (work that names no hardware
chooses a type at every start, ``scheduler.hardware_policy``), at 1 GW and at 10 GW (ten times
the racks, the same workload), against the single-generation default measured in the same run.
Prints wall seconds of the simulation proper, SimPy events and events per second for each, then:

* mixed / single events per second at 1 GW (the price of choosing among types; target >= 0.8);
* 10 GW / 1 GW wall time on the mixed site (cost per event must not grow with racks;
  target <= 3, as benchmarks/engine.py).

    python benchmarks/generations.py            # 30 days
    python benchmarks/generations.py --days 90
"""

from __future__ import annotations

import argparse
import time
from typing import Any

MIXED = [
    "facility.halls.2.hardware=vr200_nvl144",
    "facility.halls.3.hardware=vr200_nvl144",
]


def _case(days: float, grid: str | None, mixed: bool) -> dict[str, Any]:
    from sim.runner import prepare, simulate

    overrides = [f"run.duration={days}d"]
    if grid:
        overrides.append(f"facility.grid_power={grid}")
    if mixed:
        overrides += MIXED
    t0 = time.perf_counter()
    _, plan = prepare(None, overrides=overrides)
    build_s = time.perf_counter() - t0
    _tables, stats = simulate(plan)
    return {
        "case": f"{'mixed GB200 + VR200' if mixed else 'GB200 only'}, {grid or '1 GW'}",
        "wall_s": stats.wall_s,
        "events": stats.simpy_events,
        "build_s": build_s,
        "gpus": plan.total_gpus,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30.0)
    args = ap.parse_args()
    rows = [
        _case(args.days, None, False),
        _case(args.days, None, True),
        _case(args.days, "10 GW", True),
    ]
    for r in rows:
        rate = r["events"] / r["wall_s"]
        print(
            f"{r['case']:<32} {r['gpus']:>10,} GPUs  {r['wall_s']:7.2f} s"
            f"  {r['events']:>10,} events  {rate:>10,.0f}/s  (build {r['build_s']:.1f} s)"
        )
    single, mixed, big = rows
    ratio = (mixed["events"] / mixed["wall_s"]) / (single["events"] / single["wall_s"])
    print(f"mixed / single events per second at 1 GW: {ratio:.2f} (target >= 0.8)")
    print(f"10 GW / 1 GW wall time, mixed: {big['wall_s'] / mixed['wall_s']:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
