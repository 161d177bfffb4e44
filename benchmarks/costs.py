"""Cost of the costs: the TCO columns (sim.tco.cost_columns) and the summary's cost section on a
year of hourly bins, against deriving the rest of the trace table in the same run.

Runs the smoke scenario for 365 days (8,760 hourly bins, a few seconds), then times, on its
tables, ``derive_traces`` (which now includes the cost columns), ``cost_columns`` alone and
``summarize``, each the best of 20 repetitions. Prints seconds and the ratio of the cost columns
to the whole derivation (target <= 0.5: costs must not dominate the post-processing), and the
time of the commitment question on ``scenarios/compute_commitment.yaml`` (six generations,
each a full build with the performance model) once.

    python benchmarks/costs.py
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _best(fn: Any, n: int = 20) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    import pandas as pd

    from sim.analysis import derive_traces, failures_per_bin, service_rows, summarize
    from sim.commitment import commitment_rows
    from sim.config.loader import load_scenario
    from sim.engine.core import Engine
    from sim.runner import _typed_jobs, prepare, run_facts
    from sim.tco import cost_columns

    _loaded, plan = prepare(ROOT / "scenarios" / "smoke.yaml", overrides=["run.duration=365 d"])
    engine = Engine(plan)
    engine.run()
    levels = engine.rec.levels(plan.run.duration_s, plan.run.sample_interval_s)
    facts = run_facts(plan)
    events = engine.rec.events_table()
    traces = derive_traces(levels, facts, events)
    fails = failures_per_bin(events, traces["time_s"].to_numpy())
    jobs = _typed_jobs(pd.DataFrame(engine.job_rows() + service_rows(traces, facts)))
    t_derive = _best(lambda: derive_traces(levels, facts, events))
    t_costs = _best(lambda: cost_columns(traces, facts, fails))
    t_summary = _best(lambda: summarize(traces, events, jobs, facts))
    print(f"bins: {len(traces):,}")
    print(f"derive_traces (with costs): {t_derive * 1e3:8.2f} ms")
    print(f"cost_columns alone:         {t_costs * 1e3:8.2f} ms")
    print(f"summarize:                  {t_summary * 1e3:8.2f} ms")
    print(f"cost columns / derive_traces: {t_costs / t_derive:.2f} (target <= 0.5)")
    commitment = load_scenario(ROOT / "scenarios" / "compute_commitment.yaml")
    t0 = time.perf_counter()
    rows = commitment_rows(commitment)
    print(f"commitment question, {len(rows)} generations: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
