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

import numpy as np
import pandas as pd

from sim.analysis import derive_traces, service_rows, summarize, with_reliability_traces
from sim.build import Plan, PlannedService, build
from sim.commitment import check_commitment, commitment_rows
from sim.config.loader import LoadedScenario, Problem, ScenarioError, load_scenario, resolved_dict
from sim.contract import (
    JOB_NUMBER_COLUMNS,
    JOB_TEXT_COLUMNS,
    CostFacts,
    NetworkFacts,
    RunFacts,
)
from sim.engine.core import Engine
from sim.engine.kernel import gc_paused
from sim.io import RunTables, default_run_dir, write_run
from sim.network import Fabric
from sim.report.html import render_report
from sim.serving.capacity import load_at_slo
from sim.units import DAY_S

__all__ = ["RunResult", "RunStats", "prepare", "progress_bar", "run", "simulate"]

ProgressFn = Callable[[float, int], None]


@dataclass(frozen=True)
class RunStats:
    """How the run went as a computation (not part of the deterministic outputs)."""

    wall_s: float
    #: the process's CPU seconds over the same span (a steadier figure on a shared machine)
    cpu_s: float
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
    plan = build(loaded)
    if loaded.scenario.commitment is not None:
        check_commitment(loaded)  # a bad name fails now, not after the run
    return loaded, plan


def simulate(
    plan: Plan,
    progress: Callable[[float, int], None] | None = None,
    measure_memory: bool = False,
) -> tuple[RunTables, RunStats]:
    """Run the engine on ``plan`` and turn its records into the run tables."""
    with gc_paused():  # the records are millions of containers: see gc_paused
        return _simulate(plan, progress, measure_memory)


def _simulate(
    plan: Plan,
    progress: Callable[[float, int], None] | None,
    measure_memory: bool,
) -> tuple[RunTables, RunStats]:
    sc = plan.scenario
    if measure_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    c0 = time.process_time()
    engine = Engine(plan)
    engine.run(progress=progress)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = None
    if measure_memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    levels = engine.rec.levels(plan.run.duration_s, plan.run.sample_interval_s)
    facts = run_facts(plan)
    st = engine.control.stats(plan.run.duration_s)
    facts["control"] = {
        "policy": st["policy"],
        "actions": st["actions"],
        "site_over_cap_s": st["site_over_cap_s"],
        "hall_over_limit_s": st["hall_over_limit_s"],
        "paused_at_end": st["paused_at_end"],
        "deferred_jobs": st["deferred_jobs"],
        "longest_over_s": st["longest_over_s"],
        "nothing_left_to_shed": st["nothing_left_to_shed"],
    }
    if "battery" in st:
        facts["control"]["battery"] = st["battery"]
    if plan.fabric is not None:
        facts["network"] = network_facts(plan.fabric, engine.fabric_stats())
    if plan.reliability.enabled:
        rs = engine.reliability.stats()
        facts["reliability"] = {
            "waiting_warning_share": plan.reliability.waiting_warning_share,
            "tray_failure": plan.reliability.tray_failure,
            "recovery": plan.reliability.recovery,
            "tray_swaps": rs["tray_swaps"],
            "hot_spares": sum(plan.reliability.hot_spares),
            "hot_spares_taken": engine.fleet.spares_taken,
            "correlated_events": rs["correlated_events"],
        }
    events = engine.rec.events_table()
    traces = derive_traces(levels, facts, events)
    jobs = _typed_jobs(pd.DataFrame(engine.job_rows() + service_rows(traces, facts)))
    traces = with_reliability_traces(traces, events, jobs)
    summary = summarize(traces, events, jobs, facts)
    tables = RunTables(
        scenario=resolved_dict(sc),
        traces=traces,
        events=events,
        jobs=jobs,
        summary=dict(summary),
        fabric=pd.DataFrame(engine.fabric_rows()),
    )
    stats = RunStats(wall, cpu, engine.events, engine.model_events, peak)
    return tables, stats


def _typed_jobs(jobs: pd.DataFrame) -> pd.DataFrame:
    """The jobs table in the one schema of :data:`sim.contract.JOB_COLUMNS` (columns that do
    not apply to a row, or to a run without some kind of job, are NaN or empty)."""
    for col in JOB_TEXT_COLUMNS:
        if col not in jobs:
            jobs[col] = ""
        jobs[col] = jobs[col].fillna("").astype("string")
    for col in JOB_NUMBER_COLUMNS:
        if col not in jobs:
            jobs[col] = float("nan")
        jobs[col] = pd.to_numeric(jobs[col], errors="coerce").astype("float64")
    return jobs[[*JOB_TEXT_COLUMNS, *JOB_NUMBER_COLUMNS]]


def network_facts(fab: Fabric, stats: dict[str, Any]) -> NetworkFacts:
    """The fabric's inventory and what the engine did with it (plain data for analysis)."""
    out: NetworkFacts = {
        "kind": fab.kind,
        "placement": fab.placement if fab.kind != "non_blocking" else "none",
        "tiers": list(fab.tier_names),
        "bisection_tbps": {
            name: float(b) * 8 / 1e12
            for name, b in zip(fab.tier_names, fab.bisection_bytes_per_s, strict=True)
        },
        "switches": {t: dict(m) for t, m in fab.switches.items()},
        "links": dict(fab.links),
        "switch_power_w": float(fab.switch_power_w),
        "optics_power_w": float(sum(fab.optics_power_w.values())),
        "capex_usd": fab.capex_usd,
        "capex_note": fab.capex_note,
        "recomputes": int(stats.get("recomputes", 0)),
    }
    if "network_failures" in stats:
        out["network_failures"] = stats["network_failures"]
    return out


def cost_facts(plan: Plan) -> CostFacts:
    """The factory's capital and operating-cost rates as plain data (sim.tco)."""
    c = plan.costs
    gpus = [h.n_domains * plan.hw_specs[h.hw_index].domain_gpus for h in plan.halls]
    total = float(sum(gpus)) or 1.0
    activity = {
        k: sum(
            g * getattr(plan.facility.activity[h.hw_index], k)
            for g, h in zip(gpus, plan.halls, strict=True)
        )
        / total
        for k in ("idle", "training", "inference_full_load", "failed")
    }
    spares = plan.scheduler.spare_domains
    return {
        "wacc": c.wacc,
        "assets": [
            {"kind": a.kind, "capital_usd": a.capital_usd, "life_s": a.life_s, "note": a.note}
            for a in c.assets
        ],
        "prices": [
            {"hardware": p.hardware, "usd": p.usd, "basis": p.basis, "note": p.note}
            for p in c.prices
        ],
        "maintenance_per_year": c.maintenance_per_year,
        "fixed_opex_usd_per_w_year": c.fixed_opex_usd_per_w_year,
        "repair_usd_per_failure": c.repair_usd_per_failure,
        "software_usd_per_gpu_year": c.software_usd_per_gpu_year,
        "facility_capacity_w": c.facility_capacity_w,
        "activity": activity,
        "spare_gpus": float(
            sum(
                min(spares, plan.domains_of(i)) * spec.domain_gpus
                for i, spec in enumerate(plan.hw_specs)
            )
        ),
        "pretraining_flops_per_token": {
            j.name: j.model_flops_per_s / j.rate if j.rate > 0 else 0.0 for j in plan.jobs
        },
    }


def run_facts(plan: Plan) -> RunFacts:
    """The plain facts about the factory that analysis needs besides the tables."""
    c = plan.costs
    return {
        "scenario": plan.run.name,
        "seed": plan.run.seed,
        "domains": plan.n_domains,
        "provisioned_it_power_w": plan.provisioned_it_power_w,
        "grid_power_w": plan.facility.grid_power_w,
        "energy_price_usd_per_mwh": c.energy_price_usd_per_mwh,
        "facility_capex_usd_per_w": c.facility_capex_usd_per_w,
        "network_capex_fraction": c.network_capex_fraction,
        "it_amortization_s": c.it_amortization_s,
        "facility_amortization_s": c.facility_amortization_s,
        "halls": [
            {
                "name": h.name,
                "hardware": plan.hw_names[h.hw_index],
                "domains": h.n_domains,
                "gpus": h.n_domains * plan.hw_specs[h.hw_index].domain_gpus,
                "it_power_capacity_mw": h.it_power_capacity_w / 1e6,
                "domain_price_usd": next(
                    (p.usd for p in c.prices if p.hardware == plan.hw_names[h.hw_index]), None
                ),
            }
            for h in plan.halls
        ],
        "services": [
            {
                "name": s.name,
                "hardware": plan.hw_names[s.hw_index],
                "priority_class": plan.class_names[s.class_rank],
                "domain_gpus": plan.hw_specs[s.hw_index].domain_gpus,
                "capacity_tokens_per_s_per_domain": s.capacity_tokens_per_s_per_domain,
                # what the request level sustains at the targets, as a share of that capacity
                # (1 without targets; None where not estimated)
                "slo_capacity_share": _slo_capacity_share(s),
                "domain_power_w": plan.hw_specs[s.hw_index].domain_power_w,
                "flops_per_output_token": s.model_flops_per_token
                * (1.0 + s.prompt_tokens_per_request / s.tokens_per_request),
                "capacity_provenance": str(s.estimate.get("provenance", "")),
                "capacity_source": str(s.estimate.get("provenance_detail", "")),
                "kv_cache": str(s.estimate.get("kv_cache", "")),
                "runtime": str(s.estimate.get("runtime", "")),
                # the precision it serves at and what bounds its batch (the plan's main kind
                # of replica: sim/perf/inference.py _best_batch)
                "precision": str(s.estimate.get("precision", "")),
                "limited_by": str(s.estimate.get("limited_by", "")),
                "batch": int(s.estimate.get("batch", 0)),
                "max_seqs": int(s.estimate.get("max_seqs", 0)),
                "max_batch_kv": int(s.estimate.get("max_batch_kv", 0)),
                "context_clipped_share": s.context_clipped_share,
                "prefill": s.prefill,
            }
            for s in plan.services
        ],
        "costs": cost_facts(plan),
    }


def _slo_capacity_share(s: PlannedService) -> float | None:
    """:func:`sim.serving.capacity.load_at_slo` of ``s``'s attainment table: 1 for a service
    without latency targets, None for one whose attainment is not estimated."""
    if s.slo_unmeasured:
        return None
    if s.slo is None:
        return 1.0
    return load_at_slo(np.asarray(s.slo.loads), np.asarray(s.slo.attainment))


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
    loaded, plan = prepare(scenario, seed=seed, overrides=overrides)
    if progress is True:
        with progress_bar(plan.scenario.name, plan.scenario.run.duration_s) as update:
            tables, stats = simulate(plan, progress=update)
    else:
        tables, stats = simulate(plan, progress=progress or None)
    if loaded.scenario.commitment is not None:
        tables.summary["commitment"] = commitment_rows(loaded)
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
