"""Engine speed: the default 1 GW scenario over 30 and 365 days, and a 10 GW site, against a
bare SimPy loop.

Prints, for each case: wall seconds of the simulation proper (build and table writing excluded,
reported apart), SimPy events processed, events per second, model events (failures and repairs),
and the peak resident memory of the process that ran it. The ceiling is a bare SimPy loop of
timeouts in a plain ``simpy.Environment``, measured in the same run, so ``vs bare`` is the
engine's event rate as a share of the fastest SimPy can go. Each case's CPU seconds over the
same span are printed too: on a machine shared with other work they are the steadier figure,
and the ratios below are given in both. Then:

* the 365-day default's events per second over the bare loop's (printed, with no target: the
  engine's events each do model work, so seconds per simulated year are the measure);
* the wall time of a 10 GW site (the same scenario with ten times the grid power, so ten times
  the racks, with the same workload) over the 1 GW one, both for 365 days (target <= 3);
* the 365-day default with weather-driven PUE (synthetic Abilene) and 25% oversubscription, so
  the power controller acts: its engine seconds (target <= 10);
* the 365-day default on a rail-optimized fabric (placement ``pack``: the fabric built, jobs
  placed on it and their shares of contended uplinks) over the same on the default non-blocking
  fabric (target <= 1.2: issue #10's "building the fabric and placing"), the same with switch
  and link failures on (a model of its own: 14k failure and repair events a year, and the
  restarts of the jobs under them), and the time to build the fabric at 1 GW and 10 GW; and
  the seconds to load the free pool's compiled kernels in a
  process (part of the fabric cases' engine time) and, where this machine had not compiled
  them yet, to compile them.

Each case runs in its own process (so peak memory is its own).

    python benchmarks/engine.py                 # all cases
    python benchmarks/engine.py --days 30       # one engine case, no 10 GW ratio
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any


def _bare(n: int) -> dict[str, Any]:
    import simpy

    env = simpy.Environment()

    def loop() -> Any:
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(loop())
    t0 = time.perf_counter()
    c0 = time.process_time()
    env.run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    # n timeouts, the process's start, and its end
    return {"case": f"bare SimPy, {n:,} timeouts", "wall_s": wall, "cpu_s": cpu, "events": n + 2}


#: the power-and-cooling case: weather-driven PUE and oversubscription (the controller binds)
LIVE_FACILITY = [
    "facility.pue=weather",
    "facility.weather={kind: synthetic, site: abilene}",
    "facility.oversubscription=1.25",
]
#: the network case: a switched fabric with topology-aware placement and failures
FABRIC = ["network.kind=rail_optimized"]


def _fabric_build_s(plan: Any, repeat: int = 5) -> float:
    """Best-of-``repeat`` seconds to build ``plan``'s fabric from its halls (numpy only)."""
    from sim.network import FabricHall, build_fabric

    sc = plan.scenario
    places = {h.name: h for h in sc.facility.halls}
    halls = [
        FabricHall(
            h.name,
            plan.hw_specs[h.hw_index],
            h.first_domain,
            h.n_domains,
            places[h.name].building,
            places[h.name].site,
        )
        for h in plan.halls
    ]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        build_fabric(sc.network, halls)
        best = min(best, time.perf_counter() - t0)
    return best


def _engine(
    days: float, scenario: str | None, grid: str | None, live: bool, fabric: bool | str = False
) -> dict[str, Any]:
    from sim.runner import prepare, simulate

    t0 = time.perf_counter()
    overrides = [f"run.duration={days}d"]
    if grid:
        overrides.append(f"facility.grid_power={grid}")
    if live:
        overrides += LIVE_FACILITY
    if fabric:
        overrides += FABRIC
    if fabric == "quiet":
        overrides.append("network.failures.enabled=false")
    _, plan = prepare(scenario, overrides=overrides)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    _tables, stats = simulate(plan)
    total_s = time.perf_counter() - t1
    return {
        "case": f"{plan.scenario.name}{', ' + grid if grid else ''}"
        f"{', weather+oversub' if live else ''}{', rail-optimized' if fabric else ''}"
        f"{' quiet' if fabric == 'quiet' else ''},"
        f" {days:g} days",
        "fabric_build_s": _fabric_build_s(plan) if fabric else None,
        "wall_s": stats.wall_s,
        "cpu_s": stats.cpu_s,
        "events": stats.simpy_events,
        "model_events": stats.model_events,
        "build_s": build_s,
        "tables_s": total_s - stats.wall_s,
        "gpus": plan.total_gpus,
    }


def _kernels() -> dict[str, Any]:
    """Seconds to import the located pool's compiled kernels and call each once on a small
    pool: numba compiles them on a machine's first call (then caches them next to the module),
    and every later process loads them from that cache."""
    from array import array

    import numpy as np

    t0 = time.perf_counter()
    from sim.engine.placement import LocatedPool

    unit_of = array("q", [d // 4 for d in range(16)])
    pool = LocatedPool(
        np.arange(16), unit_of, ([0, 0, 1, 1], [0, 0]), (4, 2, 1), "pack", np.random.default_rng(0)
    )
    pool.peek(5)
    pool.push(pool.pop(5))
    pool.push1(pool.pop1())
    pool.remove1(0)
    return {"kernels_s": time.perf_counter() - t0}


def _child(args: argparse.Namespace) -> None:
    if args.kernels:
        print(json.dumps(_kernels()))
        return
    out = (
        _bare(args.bare)
        if args.bare
        else _engine(
            args.days,
            args.scenario,
            args.grid,
            args.live,
            "quiet" if args.fabric_quiet else args.fabric,
        )
    )
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


def _run_child(extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, action="append", help="engine case(s), in days")
    ap.add_argument("--scenario", help="scenario file (default: the built-in default)")
    ap.add_argument("--bare", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--grid", help=argparse.SUPPRESS)
    ap.add_argument("--live", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fabric", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fabric-quiet", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kernels", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.days = args.days[0] if args.days else 30.0
        _child(args)
        return
    days = args.days or [30.0, 365.0]
    scen = ["--scenario", args.scenario] if args.scenario else []
    bare = _run_child(["--bare", "2000000"])
    bare_rate = bare["events"] / bare["wall_s"]
    rows = [bare]
    for d in days:
        rows.append(_run_child(["--days", str(d), *scen]))
    big = live = fab = fab10 = quiet = None
    kernels: list[float] = []
    if 365.0 in days:
        big = _run_child(["--days", "365", "--grid", "10 GW", *scen])
        live = _run_child(["--days", "365", "--live", *scen])
        # the first process on a machine compiles the pool's kernels, the rest load them: the
        # fabric cases below load them (their engine time includes it)
        kernels = [_run_child(["--kernels"])["kernels_s"] for _ in range(2)]
        fab = _run_child(["--days", "365", "--fabric", *scen])
        quiet = _run_child(["--days", "365", "--fabric-quiet", *scen])
        fab10 = _run_child(["--days", "1", "--grid", "10 GW", "--fabric", *scen])
        rows += [big, live, fab, quiet]
    print(
        f"{'case':<42} {'wall s':>8} {'CPU s':>8} {'events':>11} {'events/s':>11} {'vs bare':>8}"
        f" {'peak MB':>8}  notes"
    )
    for r in rows:
        rate = r["events"] / r["wall_s"]
        notes = ""
        if "model_events" in r:
            notes = (
                f"{r['gpus']:,} GPUs; {r['model_events']:,} failures+repairs;"
                f" build {r['build_s']:.2f} s, tables {r['tables_s']:.2f} s"
            )
        print(
            f"{r['case']:<42} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['events']:>11,}"
            f" {rate:>11,.0f}"
            f" {rate / bare_rate:>8.2f} {r['peak_rss_mb']:>8.0f}  {notes}"
        )
    year = next(
        (
            r
            for r in rows[1:]
            if r["case"].endswith(", 365 days") and r not in (big, live, fab, quiet)
        ),
        None,
    )
    if year is not None:
        ratio = year["events"] / year["wall_s"] / bare_rate
        print(
            f"\n365-day default: engine events/s over bare SimPy = {ratio:.2f} (no target: every"
            " event does model work, so seconds per year are the measure; docs/engine.md)"
        )
    if big is not None and year is not None:
        print(
            f"10 GW over 1 GW wall time, 365 days = {big['wall_s'] / year['wall_s']:.2f}"
            f" (CPU {big['cpu_s'] / year['cpu_s']:.2f}; target <= 3;"
            f" {big['gpus'] / year['gpus']:.1f}x the GPUs,"
            f" {big['model_events'] / max(year['model_events'], 1):.1f}x the failures+repairs)"
        )
    if live is not None:
        print(
            f"365-day default with weather and 25% oversubscription (power control acting):"
            f" {live['wall_s']:.2f} s of engine time, {live['cpu_s']:.2f} s CPU (target <= 10)"
        )
    if quiet is not None and year is not None and fab10 is not None:
        print(
            f"365-day default on a rail-optimized fabric (placement and contention) over the"
            f" non-blocking one: {quiet['wall_s'] / year['wall_s']:.2f}"
            f" (CPU {quiet['cpu_s'] / year['cpu_s']:.2f}; target <= 1.2, building the fabric"
            " and placing); fabric build"
            f" {quiet['fabric_build_s'] * 1e3:.1f} ms at 1 GW,"
            f" {fab10['fabric_build_s'] * 1e3:.1f} ms at 10 GW"
        )
    if fab is not None and year is not None:
        print(
            f"  the same with switch and link failures (their own events and restarts):"
            f" {fab['wall_s'] / year['wall_s']:.2f} (CPU {fab['cpu_s'] / year['cpu_s']:.2f})"
        )
    if kernels:
        print(
            f"  the located pool's compiled kernels: {kernels[1]:.2f} s to load in a process"
            f" (in the fabric cases' engine time); {kernels[0]:.2f} s in this run's first"
            " process (a compile, where the machine had no cached copy)"
        )


if __name__ == "__main__":
    main()
