"""``aifactory run`` and ``aifactory validate``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.analysis import DUST_USD
from sim.cli.options import add_set_option
from sim.cli.outdir import out_problem
from sim.config.loader import ScenarioError
from sim.io import OutputError
from sim.report.html import batch_bound, tokens_per
from sim.report.style import duration, latency, money, plural, si
from sim.runner import prepare, progress_bar, run

EXIT_OK, EXIT_USER_ERROR = 0, 2


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario (default: the built-in 1 GW GB200 NVL72 factory)",
        description="Run a scenario and write its run folder.",
    )
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: built-in 1 GW factory)")
    p.add_argument("--seed", type=int, help="root random seed (overrides run.seed)")
    add_set_option(p)
    p.add_argument("--out", help="write the run folder here (default outputs/<scenario>/<id>/)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary table")
    p.set_defaults(handler=cmd_run)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("scenarios", nargs="+", help="scenario YAML files")
    add_set_option(v)
    v.set_defaults(handler=cmd_validate)


def _err(console: Console, message: str) -> int:
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_USER_ERROR


def cmd_validate(args: argparse.Namespace) -> int:
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    bad = 0
    for path in args.scenarios:
        try:
            loaded, plan = prepare(path, overrides=args.overrides)
        except ScenarioError as exc:
            bad += 1
            _err(err, str(exc))
            continue
        sc = loaded.scenario
        out.print(
            f"ok: {path}: '{sc.name}', {plan.n_domains:,} domains, {plan.total_gpus:,} GPUs,"
            f" {plural(len(plan.jobs), 'pre-training run')},"
            f" {plural(len(plan.streams), 'post-training stream')},"
            f" {plural(len(plan.services), 'inference service')}",
            markup=False,
        )
    return EXIT_USER_ERROR if bad else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    try:
        loaded, plan = prepare(args.scenario, seed=args.seed, overrides=args.overrides)
    except ScenarioError as exc:
        return _err(err, str(exc))
    problem = out_problem(args.out)
    if problem:
        return _err(err, problem)
    show = not args.quiet and err.is_terminal
    with contextlib.ExitStack() as stack:
        update = None
        if show:
            update = stack.enter_context(
                progress_bar(plan.scenario.name, plan.scenario.run.duration_s, console=err)
            )
        try:
            result = run(loaded, out=args.out, progress=update or False)
        except OutputError as exc:
            return _err(err, str(exc))
    if not args.quiet:
        _print_summary(out, result.tables.summary, result.folder, result.stats, len(plan.streams))
    elif result.folder is not None:
        out.print(str(result.folder), markup=False)
    return EXIT_OK


def _fmt(x: float | None, spec: str = ",.3g", unit: str = "") -> str:
    if x is None:
        return "n/a"
    return f"{x:{spec}}{unit}"


def _energy(mwh: float | None) -> str:
    """``125 MWh``, ``84.5 GWh``, ``1.11 TWh``."""
    if mwh is None:
        return "n/a"
    if abs(mwh) >= 1e6:
        return f"{mwh / 1e6:.2f} TWh"
    if abs(mwh) >= 1e3:
        return f"{mwh / 1e3:.1f} GWh"
    return f"{mwh:,.0f} MWh"


#: Amounts of money below half a cent are floating-point dust of sums and differences (the
#: summary already counts them as none; a total that small has no shares to show)
_DUST_USD = DUST_USD


def cost_by_use(cost: dict[str, Any]) -> str:
    """``pretraining $35.2k (51%), idle $29.1k (43%)``: the run's cost by use, each use that
    cost at least a cent; empty when nothing did."""
    total = cost.get("total_usd") or 0.0
    use = cost.get("by_use_usd") or {}
    if abs(total) < _DUST_USD:
        return ""
    return ", ".join(
        f"{k} {money(v)} ({v / total:.0%})"
        for k, v in use.items()
        if v is not None and abs(v) >= _DUST_USD
    )


def posttraining_text(p: dict[str, Any], streams: int = 0) -> str:
    """The post-training row: jobs finished of submitted, mean wait, preemptions; ``none
    submitted`` when the scenario's ``streams`` sent no job in the run, and empty without
    streams (rather than ``0 of 0 finished, mean wait n/a``)."""
    if not p.get("submitted"):
        return f"none submitted ({plural(streams, 'stream')})" if streams else ""
    return (
        f"{p['finished']:,} of {p['submitted']:,} finished, mean wait"
        f" {duration(p['mean_wait_hours'])}, {plural(p['preemptions'], 'preemption')}"
    )


def _print_summary(
    out: Console,
    s: dict[str, Any],
    folder: Path | None,
    stats: Any,
    posttraining_streams: int = 0,
) -> None:
    t = Table(
        title=f"{s['scenario']} (seed {s['seed']}, {s['duration_days']:.0f} days)",
        show_header=False,
        title_justify="left",
    )
    t.add_column("KPI")
    t.add_column("value", justify="right")
    f = s["factory"]
    halls = ", ".join(f"{h['name']}: {h['domains']:,} x {h['hardware']}" for h in f["halls"])
    t.add_row("factory", f"{f['gpus']:,} GPUs in {f['domains']:,} domains ({halls})")
    t.add_row(
        "IT power provisioned / grid",
        f"{f['provisioned_it_power_mw']:,.0f} MW / {f['grid_power_mw']:,.0f} MW",
    )
    by = s["utilization_by_workload"]
    t.add_row(
        "utilization",
        f"{s['utilization']:.1%} (pre {by['pretraining']:.1%}, post"
        f" {by['posttraining']:.1%}, inference {by['inference']:.1%})",
    )
    t.add_row("availability", f"{s['availability']:.2%}")
    t.add_row(
        "training goodput / MFU",
        f"{_fmt(s['training_goodput'], '.1%')} / {_fmt(s['training_mfu'], '.1%')}",
    )
    e = s["energy"]
    t.add_row(
        "facility energy, avg PUE",
        f"{e['facility_mwh']:,.0f} MWh, PUE"
        f" {_fmt(e['average_pue'], '.2f')}, peak {e['peak_facility_power_mw']:,.0f} MW",
    )
    tok = s.get("tokens", {})
    if e.get("emissions_tco2") is not None:
        t.add_row(
            "emissions",
            f"{e['emissions_tco2']:,.0f} tCO2eq; "
            + tokens_per(tok, e["facility_mwh"], "MWh")
            + "; "
            + tokens_per(tok, e["emissions_tco2"], "tCO2eq"),
        )
    pc = s.get("power_control")
    if pc:
        over = {k: v for k, v in (pc.get("hours_over_hall_limit") or {}).items() if v > 1e-6}
        lost = {
            k: v for k, v in (pc.get("hours_lost_to_throttle_by_class") or {}).items() if v > 1e-6
        }
        paused = {k: v for k, v in (pc.get("hours_paused_by_class") or {}).items() if v > 1e-6}
        t.add_row(
            f"power control ({pc['policy']})",
            f"{plural(pc['actions'], 'action')}, {pc['hours_over_grid_cap']:,.1f} h over the grid"
            f" cap, {sum(over.values()):,.1f} hall-hours over hall limits (summed over the halls)"
            + (
                "; throttle cost " + ", ".join(f"{k} {v:,.1f} h" for k, v in lost.items())
                if lost
                else ""
            )
            + (
                "; paused " + ", ".join(f"{k} {v:,.1f} job-h" for k, v in paused.items())
                if paused
                else ""
            ),
        )
    by_hall: dict[str, Any] = e.get("halls") or {}
    if len(by_hall) > 1:
        t.add_row(
            "IT energy by hall",
            ", ".join(f"{name} {_energy(h.get('it_mwh'))}" for name, h in by_hall.items()),
        )
    c = s["cost"]
    comp = c.get("components_usd") or {}
    ops = sum(v or 0.0 for k, v in comp.items() if not k.startswith("capital") and k != "energy")
    t.add_row(
        "cost of the run (TCO)",
        f"{money(c['total_usd'])}: capital {money(c['capex_usd'])}"
        + (f" (annuities at {c['wacc']:.0%} WACC)" if "wacc" in c else "")
        + f", energy {money(c['energy_usd'])}, operations {money(ops)};"
        f" {money(c['per_gpu_hour_usd'], 'GPU-h')} fully loaded"
        + (
            f", {money(c.get('per_busy_gpu_hour_usd'), 'busy GPU-h')}"
            if c.get("per_busy_gpu_hour_usd") is not None
            else ""
        ),
    )
    if "capital_usd" in c:
        est = c.get("estimated_prices") or []
        t.add_row(
            "capital",
            f"{money(c['capital_usd'])} up front, {money(c.get('capital_per_gw_usd'))} per GW of"
            " IT capacity"
            + (f"; estimated prices (no sourced one): {', '.join(est)}" if est else ""),
        )
    uses = cost_by_use(c)
    if uses:
        t.add_row("cost by use", uses)
    for r in s["pretraining_runs"]:
        done = (
            f"finished in {r['completion_days']:.1f} d"
            if r["state"] == "finished"
            else f"{r['tokens_done'] / r['tokens']:.0%} done ({r['state']})"
        )
        cost = ""
        if r.get("cost_usd") is not None:
            cost = f", cost {money(r['cost_usd'])}"
            if r["state"] != "finished":
                cost += f" (whole run ~{money(r.get('projected_cost_usd'))})"
            cost += f", {money(r.get('cost_per_1e24_flop_usd'))} per 1e24 FLOP"
        shrunk = ""
        if r.get("shrinks"):  # recovery: shrink_elastic
            shrunk = (
                f", {plural(r['shrinks'], 'shrink')}"
                + (f" ({plural(r['reshrinks'], 'reshrink')})" if r.get("reshrinks") else "")
                + f", {r.get('shrunk_hours', 0.0):,.1f} h shrunk"
            )
        t.add_row(
            f"pre-training {r['name']}",
            f"{done}, ETTR {_fmt(r['ettr'], '.1%')}, {plural(r['interruptions'], 'interruption')}"
            + shrunk
            + cost,
        )
    post = posttraining_text(s["posttraining"], posttraining_streams)
    if post:
        t.add_row("post-training jobs", post)
    for v in s["inference_services"]:
        t.add_row(
            f"inference {v['name']}",
            f"{si(v['tokens_per_day'])} tok/day"
            + (
                f", {si(v['tokens_per_mwh'])} tok/MWh"
                if v.get("tokens_per_mwh") is not None
                else ""
            )
            + f", SLO {_fmt(v['slo_attainment'], '.1%')}"
            + (
                f" ({v['prefill']} prefill)"
                if v.get("prefill") in ("companion", "hybrid") and v["slo_attainment"] is None
                else ""
            )
            + ","
            f" {money(v['cost_per_million_tokens_usd'], 'M tok')}"
            + (
                f" ({money(v['cost_per_million_tokens_with_idle_usd'], 'M tok')} with its"
                " share of idle capacity)"
                if v.get("cost_per_million_tokens_with_idle_usd") is not None
                else ""
            )
            + (f"; {str(v['precision']).upper()}" if v.get("precision") else "")
            + (f", {batch_bound(v)}" if v.get("limited_by") else ""),
        )
    r = s["reliability"]
    drains = r.get("maintenance_drains", 0)
    t.add_row(
        "failures",
        f"{r['failures']:,} domain failures ({r['failures_per_day']:.0f}/day),"
        f" {plural(r['job_interruptions'], 'unplanned job interruption')}"
        + (f"; planned apart: {plural(drains, 'maintenance drain')}" if drains else ""),
    )
    t.add_row(
        "engine",
        f"{latency(stats.wall_s)} wall, {stats.simpy_events:,} events"
        f" ({stats.simpy_events / max(stats.wall_s, 1e-9):,.0f}/s)",
    )
    out.print(t)
    for w in s.get("warnings", []):
        out.print(f"warning: {w}", markup=False)
    for v in s["inference_services"]:
        if v.get("limited_by") == "max_seqs":
            # a planning fact, not a fault: the number is the engine's default, not the rack's
            out.print(
                f"note: inference {v['name']}: its batch is capped by serving.max_seqs"
                f" ({int(v.get('max_seqs') or 0):,} sequences per replica, an engine setting),"
                " not by the hardware; its capacity per domain is that cap's. Raise the"
                " service's serving.max_seqs (at most 65,536), or compare with `aifactory estimate"
                " serve ... --max-seqs N`, to see what the hardware serves at the latency"
                " targets",
                markup=False,
                soft_wrap=True,
            )
    if folder is not None:
        out.print(f"run folder: {folder}", markup=False)
    sys.stdout.flush()
