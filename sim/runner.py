"""One run, end to end: load -> build -> engine -> record -> analysis -> io.

This is the public entry point for scripts and notebooks (the CLI is a thin shell over it)::

    from sim.runner import run
    result = run("scenarios/smoke.yaml", seed=3, write=False)
    result.tables.traces.plot(x="time_s", y="it_power_w")
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis import service_rows, summarize
from sim.build import Plan, build
from sim.config.loader import LoadedScenario, Problem, ScenarioError, load_scenario, resolved_dict
from sim.engine.core import Engine
from sim.io import RunTables, default_run_dir, write_run
from sim.record import derive_traces
from sim.report.html import render_report

__all__ = ["RunResult", "RunStats", "prepare", "progress_bar", "run", "simulate"]

DAY_S = 86_400.0
ProgressFn = Callable[[float, int], None]


@dataclass(frozen=True)
class RunStats:
    """How the run went as a computation (not part of the deterministic outputs)."""

    wall_s: float
    simpy_events: int
    model_events: int
    peak_memory_bytes: int | None


@dataclass(frozen=True)
class RunResult:
    tables: RunTables
    folder: Path | None
    stats: RunStats
    plan: Plan


def prepare(
    scenario: str | Path | LoadedScenario | None = None,
    *,
    seed: int | None = None,
    overrides: Sequence[str] = (),
) -> tuple[LoadedScenario, Plan]:
    """Load (unless given loaded), apply ``--set`` overrides and the seed, and build."""
    if isinstance(scenario, LoadedScenario):
        loaded = scenario
    else:
        loaded = load_scenario(scenario, overrides)
    if seed is not None:
        if not 0 <= seed <= 2**63 - 1:
            raise ScenarioError(
                "--seed", [Problem((), f"must be in [0, 2**63 - 1], got {str(seed)[:40]}")], {}
            )
        sc = loaded.scenario
        loaded = replace(
            loaded, scenario=sc.model_copy(update={"run": sc.run.model_copy(update={"seed": seed})})
        )
    return loaded, build(loaded)


def simulate(
    plan: Plan,
    progress: Callable[[float, int], None] | None = None,
    measure_memory: bool = False,
) -> tuple[RunTables, RunStats]:
    """Run the engine on ``plan`` and turn its records into the run tables."""
    sc = plan.scenario
    if measure_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    engine = Engine(plan)
    engine.run(progress=progress)
    wall = time.perf_counter() - t0
    peak = None
    if measure_memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    levels = engine.rec.levels(sc.run.duration_s, sc.run.sample_interval_s)
    traces = derive_traces(levels, plan)
    events = engine.rec.events_table()
    svc_facts = [
        {
            "name": s.name,
            "class": plan.class_names[s.class_rank],
            "hardware": plan.hw_names[s.hw_index],
            "domain_gpus": plan.hw_specs[s.hw_index].domain_gpus,
            "capacity_tokens_per_s_per_domain": s.capacity_tokens_per_s_per_domain,
        }
        for s in plan.services
    ]
    jobs = pd.DataFrame(engine.job_rows() + service_rows(traces, svc_facts))
    jobs = _typed_jobs(jobs)
    facts = _facts(plan)
    summary = summarize(traces, events, jobs, facts)
    tables = RunTables(
        scenario=resolved_dict(sc),
        traces=traces,
        events=events,
        jobs=jobs,
        summary=summary,
    )
    stats = RunStats(wall, engine.env.processed, engine.model_events, peak)
    return tables, stats


_JOB_TEXT_COLUMNS = ("name", "workload", "stream", "class", "hardware", "state", "work_unit")
#: numeric columns of jobs.parquet; present (NaN where they do not apply) even when a run has
#: no job of some kind, so the table has one schema for every run
_JOB_NUMBER_COLUMNS = (
    "gpus",
    "domains",
    "submit_s",
    "first_start_s",
    "finish_s",
    "work",
    "work_done",
    "work_lost",
    "interruptions",
    "preemptions",
    "restarts",
    "checkpoints",
    "wait_s",
    "held_gpu_hours",
    "useful_gpu_hours",
    "ettr",
    "rate_per_s",
    "mfu_when_running",
    "slo_attainment",
)


def _typed_jobs(jobs: pd.DataFrame) -> pd.DataFrame:
    for col in _JOB_TEXT_COLUMNS:
        if col not in jobs:
            jobs[col] = ""
        jobs[col] = jobs[col].fillna("").astype("string")
    for col in _JOB_NUMBER_COLUMNS:
        if col not in jobs:
            jobs[col] = float("nan")
        jobs[col] = pd.to_numeric(jobs[col], errors="coerce").astype("float64")
    return jobs[[*_JOB_TEXT_COLUMNS, *_JOB_NUMBER_COLUMNS]]


def _facts(plan: Plan) -> dict[str, Any]:
    sc = plan.scenario
    return {
        "scenario": sc.name,
        "seed": sc.run.seed,
        "domains": plan.n_domains,
        "provisioned_it_power_w": plan.provisioned_it_power_w,
        "grid_power_w": sc.facility.grid_power_w,
        "halls": [
            {
                "name": h.name,
                "hardware": plan.hw_names[h.hw_index],
                "domains": h.n_domains,
                "gpus": h.n_domains * plan.hw_specs[h.hw_index].domain_gpus,
                "it_power_capacity_mw": h.it_power_capacity_w / 1e6,
            }
            for h in plan.halls
        ],
    }


@contextlib.contextmanager
def progress_bar(label: str, duration_s: float, console: Any = None) -> Iterator[ProgressFn]:
    """A rich progress bar (terminal or Jupyter) showing simulated days and events per second.

    Yields the callback that :meth:`Engine.run` calls after each simulated day.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[days]:,.0f}/{task.fields[total_days]:,.0f} sim days"),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(
            label, total=duration_s, days=0.0, total_days=duration_s / DAY_S, rate=0.0
        )

        def update(t: float, events: int) -> None:
            wall = max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=t, days=t / DAY_S, rate=events / wall)

        yield update


def run(
    scenario: str | Path | LoadedScenario | None = None,
    *,
    seed: int | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    outputs_root: str | Path = "outputs",
    write: bool = True,
    progress: bool | ProgressFn = False,
) -> RunResult:
    """Run a scenario (None: the built-in default) and, if ``write``, save its run folder.

    The folder is ``out`` if given, else ``outputs_root/<scenario>/<UTC time>-seed<seed>``.
    ``progress=True`` shows a progress bar (also in notebooks); a callable receives
    ``(simulated seconds, events)`` after each simulated day.
    """
    _loaded, plan = prepare(scenario, seed=seed, overrides=overrides)
    if progress is True:
        with progress_bar(plan.scenario.name, plan.scenario.run.duration_s) as update:
            tables, stats = simulate(plan, progress=update)
    else:
        tables, stats = simulate(plan, progress=progress or None)
    folder = None
    if write:
        sc = plan.scenario
        if out is not None:
            target = Path(out)
        else:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            target = default_run_dir(Path(outputs_root), sc.name, sc.run.seed, stamp)
        folder = write_run(target, tables, extra_files={"report.html": render_report(tables)})
    return RunResult(tables=tables, folder=folder, stats=stats, plan=plan)
