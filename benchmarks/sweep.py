"""Sweep speed: a 20-point sweep of the smoke scenario, serially in one process versus on a
local Dask cluster of two worker processes.

The grid: 5 failure rates x 4 inference demand levels of ``scenarios/smoke.yaml``, one seed each,
``--days`` simulated days (default 30). Both sweeps write every run folder (``kpis.json`` and the
tables, no per-run report) and the sweep's table, means and report, into fresh temporary
folders. Printed: the wall time of each (the Dask one including starting and stopping its
cluster and a one-day warm-up run on each worker, which a user pays too, and without them: the
sweep call on the running cluster; the serial side's warm-up is not counted), the seconds per
run, and the speed-up of two workers over serial. On a machine with two free cores the ceiling
is 2; the cluster's start-up and the client's share of the work (the sweep table and report)
keep it below that. The machine's load average is printed first: on shared cores the figures
are only as good as the cores are free.

    python benchmarks/sweep.py
    python benchmarks/sweep.py --days 30 --workers 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from sim.sweep import cluster_client, sweep

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
GRID = {
    "reliability.failure_rate_per_1000_node_days": [0, 2, 4, 8, 16],
    "workloads.inference.0.demand.mean_requests_per_s": [20, 200, 500, 1000],
}


def warm_up() -> None:
    """One day of the smoke factory: the first run in a process pays one-off costs (imports,
    catalogs) that a long sweep does not; each side pays them before its clock starts."""
    from sim.runner import run

    run(str(SMOKE), overrides=["run.duration=1d"], write=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30, help="simulated days per run (default 30)")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    args = ap.parse_args()
    overrides = [f"run.duration={args.days}d"]
    n = 1
    for values in GRID.values():
        n *= len(values)
    print(f"{n}-point sweep of {SMOKE.name}, {args.days} simulated days per run")
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        warm_up()
        t0 = time.perf_counter()
        serial = sweep(SMOKE, GRID, overrides=overrides, out=Path(tmp) / "serial", workers=0)
        serial_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        with cluster_client(workers=args.workers) as client:
            client.run(warm_up)  # on each worker
            started_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            dask = sweep(SMOKE, GRID, overrides=overrides, out=Path(tmp) / "dask", scheduler=client)
            sweep_s = time.perf_counter() - t1
        dask_s = time.perf_counter() - t0
        same = serial.table.equals(dask.table)
        assert serial.failed == 0 and dask.failed == 0, "a run failed"
        pd.testing.assert_frame_equal(serial.table, dask.table)

    print(f"serial, in this process:     {serial_s:7.2f} s  ({serial_s / n:.3f} s per run)")
    print(
        f"Dask, {args.workers} workers:             {dask_s:7.2f} s  (cluster start"
        f" {started_s:.2f} s, sweep {sweep_s:.2f} s, stop {dask_s - started_s - sweep_s:.2f} s)"
    )
    print(f"same sweep table: {same}")
    print(
        f"speed-up, {args.workers} workers over serial: {serial_s / dask_s:.2f}x with the cluster's"
    )
    print(f"  start and stop, {serial_s / sweep_s:.2f}x on a running cluster")


if __name__ == "__main__":
    main()
