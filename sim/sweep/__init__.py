"""Sweeps: a scenario over a grid of values and seeds, on Dask (``aifactory sweep``).

From Python or Jupyter::

    from sim.sweep import sweep
    result = sweep(
        "scenarios/smoke.yaml",
        {"reliability.failure_rate_per_1000_node_days": [0, 4, 16]},
        seeds=3,
        overrides=["run.duration=7d"],
        out="runs/failures",
    )
    result.means            # one row per point: KPI means and 95% intervals across seeds
    result.table            # one row per point and seed

:mod:`sim.sweep.spec` turns the grid into resolved runs with deterministic ids,
:mod:`sim.sweep.point` runs one on a worker and writes its folder, :mod:`sim.sweep.execute`
schedules them (a local Dask cluster, a user's cluster, or serially) and writes the sweep's
table and report (:mod:`sim.report.sweep`). Importing this package does not import Dask.
"""

from __future__ import annotations

from sim.sweep.execute import (
    SweepProgress,
    SweepResult,
    build_spec,
    cluster_client,
    describe,
    plain_progress,
    rich_progress,
    sweep,
)
from sim.sweep.spec import GridAxis, RunTask, SweepSpec, load_sweep_file, parse_grid

__all__ = [
    "GridAxis",
    "RunTask",
    "SweepProgress",
    "SweepResult",
    "SweepSpec",
    "build_spec",
    "cluster_client",
    "describe",
    "load_sweep_file",
    "parse_grid",
    "plain_progress",
    "rich_progress",
    "sweep",
]
