"""``aifactory serve-sim``: the request-level simulation of one replica of a scenario's service.

    aifactory serve-sim SCENARIO --service NAME [--duration 1h] [--rate 12/s | --trace FILE]
                        [--kv-cache reserved|paged] [--seed N] [--set KEY=VALUE] [--out DIR]

The service's model, hardware, precision, replica layout, latency targets, request mix,
``kv_cache``, ``serving`` and ``sessions`` come from the scenario (the whole scenario is checked,
as by ``aifactory validate``). Arrivals are Poisson at ``--rate`` requests/s per replica
(default: the fluid plan's operating point, ``max_load`` x the performance model's capacity
per replica at the targets) or replayed from a trace (Azure, Mooncake or BurstGPT format;
``--trace-speed`` replays faster). Writes
``outputs/serve-sim/<scenario>-<service>/<stamp>-seed<N>/`` with ``summary.json``,
``requests.parquet``, ``levels.parquet`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from sim.build import PlannedService, ReplicaKind, reasoning_multiplier, replica_kinds
from sim.catalog.models import get_model
from sim.cli.options import add_set_option
from sim.cli.outdir import out_problem
from sim.config.loader import ScenarioError
from sim.io import OutputError, default_run_dir, write_serving_run
from sim.perf import PerfError
from sim.report.serving import has_targets, render_serving_report
from sim.report.style import latency
from sim.rng import RandomStreams
from sim.runner import prepare
from sim.serving.metrics import levels_table, requests_table, summarize
from sim.serving.simulator import KV_MODES
from sim.serving.traces import TRACE_FORMATS, TraceError, read_trace
from sim.serving.workload import Requests
from sim.units import QuantityError, parse_quantity

EXIT_OK, EXIT_USER_ERROR = 0, 2
#: Longest simulated span: a week of one replica is ~10 million requests at 20/s.
MAX_DURATION_S = 7 * 86_400.0
#: Most requests one command simulates (memory: ~0.5 GB per million requests, measured).
MAX_REQUESTS = 5_000_000


#: The kinds of replica a plan's domain may run (sim/perf/inference.py, mix_domain).
REPLICA_KINDS = ("companion", "colocated", "gpu_prefill")


class _UserError(Exception):
    pass


def kinds_of(ps: PlannedService, v: Any, model: Any, hw: Any) -> list[ReplicaKind]:
    """The kinds of replica the plan runs ``v`` with (one co-located kind for a plan made
    without an arrangement)."""
    if ps.mix is None:
        raise _UserError(f"--service {v.name}: the plan has no replica arrangement")
    return replica_kinds(ps.mix, v, model, hw, int(v.input_tokens), float(v.prompt_cache_hit))


def _replica_kind(
    args: argparse.Namespace, ps: PlannedService, v: Any, model: Any, hw: Any
) -> ReplicaKind:
    kinds = kinds_of(ps, v, model, hw)
    if args.replica is None:
        return kinds[0]
    for k in kinds:
        if k.name == args.replica:
            return k
    raise _UserError(
        f"--replica {args.replica}: the plan runs {v.name} with "
        + " and ".join(k.name for k in kinds)
        + " replicas only"
    )


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve-sim",
        help="request-level simulation of one replica of a scenario's inference service",
        description="Simulate one replica of an inference service request by request"
        " (continuous batching, chunked prefill, KV cache) and write a report (docs/serving.md).",
    )
    p.add_argument("scenario", help="scenario YAML")
    p.add_argument("--service", required=True, help="name of a workloads.inference service")
    p.add_argument("--duration", default="1h", help="simulated time, e.g. 1h, 20 min (default 1h)")
    p.add_argument(
        "--rate",
        default=None,
        help="Poisson arrivals per replica, e.g. '12/s' or '600/min' (default: the fluid plan's"
        " operating point, max_load x capacity at the targets)",
    )
    p.add_argument("--trace", default=None, help="replay a trace file instead of Poisson arrivals")
    p.add_argument(
        "--trace-format",
        choices=TRACE_FORMATS,
        default=None,
        help="the trace's format (default: guessed from its first line; needs --trace)",
    )
    p.add_argument(
        "--trace-speed",
        type=float,
        default=None,
        help="replay the trace this much faster (default 1; needs --trace)",
    )
    p.add_argument(
        "--kv-cache", choices=KV_MODES, default=None, help="override the service's kv_cache"
    )
    p.add_argument(
        "--replica",
        choices=REPLICA_KINDS,
        default=None,
        help="which kind of the plan's replicas to simulate when its domains run two (prefill:"
        " hybrid): companion (decode-only, prefilled on the companion parts), colocated or"
        " gpu_prefill (decode-only, prefilled on GPU instances); default: the kind serving the"
        " most tokens",
    )
    p.add_argument("--seed", type=int, help="root random seed (overrides run.seed)")
    add_set_option(p)
    p.add_argument("--out", help="write the run folder here")
    p.add_argument("--quiet", action="store_true", help="print only the run folder")
    p.set_defaults(handler=cmd_serve_sim)


def _seconds(text: str, what: str) -> float:
    try:
        value = parse_quantity(text, "s", require_unit=True)
    except QuantityError as exc:
        raise _UserError(f"--{what}: {exc}") from None
    if not 0 < value <= MAX_DURATION_S:
        raise _UserError(f"--{what}: must be more than 0 and at most 7 days, got {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        float(text)
    except ValueError:
        pass
    else:  # one example, in the flag's own unit (the generic message's is a duration)
        raise _UserError(f"--rate {text!r} has no unit: write e.g. '{text}/s' or '{text}/min'")
    try:
        value = parse_quantity(text, "1/s", require_unit=True)
    except QuantityError as exc:
        raise _UserError(f"--rate: {exc} (e.g. '12/s' or '600/min')") from None
    if not 0 < value <= 1e6:
        raise _UserError(f"--rate: must be more than 0 and at most 1e6/s, got {text!r}")
    return value


def _err(console: Console, message: str) -> int:
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_USER_ERROR


def cmd_serve_sim(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    try:
        return _run(args, out)
    except (ScenarioError, OutputError, TraceError) as exc:
        return _err(err, str(exc))
    except _UserError as exc:
        return _err(err, str(exc))


def _run(args: argparse.Namespace, out: Console) -> int:
    duration = _seconds(args.duration, "duration")
    if args.trace is not None and args.rate is not None:
        raise _UserError("give --rate or --trace, not both")
    given = [
        f
        for f, v in (("--trace-format", args.trace_format), ("--trace-speed", args.trace_speed))
        if v is not None
    ]
    if args.trace is None and given:
        # they act on a replayed trace only: refused, never silently ignored
        raise _UserError(
            f"{' and '.join(given)} {'act' if len(given) > 1 else 'acts'} on a replayed trace:"
            " give --trace FILE, or leave "
            + ("them" if len(given) > 1 else "it")
            + " out (Poisson arrivals take --rate)"
        )
    speed = 1.0 if args.trace_speed is None else args.trace_speed
    if not (speed > 0 and math.isfinite(speed)):
        raise _UserError(f"--trace-speed: must be a positive number, got {args.trace_speed}")
    problem = out_problem(args.out)  # before the simulation, not after it
    if problem is not None:
        raise _UserError(problem)
    loaded, plan = prepare(args.scenario, seed=args.seed, overrides=args.overrides)
    sc = loaded.scenario
    names = [v.name for v in sc.workloads.inference]
    if args.service not in names:
        raise _UserError(
            f"--service: no inference service '{args.service}' in {args.scenario}; it has: "
            + (", ".join(names) or "none")
        )
    v = sc.workloads.inference[names.index(args.service)]
    ps = next(s for s in plan.services if s.name == v.name)
    hw = plan.hw_specs[ps.hw_index]
    model = get_model(v.model)
    try:
        # the replica layout the fluid plan serves with
        # at the reasoning length the plan's capacity (and so the default rate) is for: the
        # longest of the run under a reasoning_growth ramp, as the fleet's SLO table
        at_peak = v
        if ps.reasoning_ramp is not None:
            peak = float(reasoning_multiplier(ps.reasoning_ramp, np.array([sc.run.duration_s]))[0])
            at_peak = v.model_copy(
                update={"reasoning_tokens": round(v.reasoning_tokens * max(1.0, peak))}
            )
        if args.kv_cache is not None:
            at_peak = at_peak.model_copy(update={"kv_cache": args.kv_cache})
        replica = _replica_kind(args, ps, at_peak, model, hw)
        shape = replica.shape
        shape.step()  # the model must fit the replica (PerfError)
    except PerfError as exc:
        raise _UserError(f"--service {v.name}: {exc}") from None
    if shape.prefill is not None and shape.sessions is not None:
        raise _UserError(
            f"--service {v.name}: its {replica.name} replicas prefill on a separate pool, and"
            " agentic sessions behind a separate prefill pool are not modelled (a call arrives"
            " after its parent completes); run it with --set"
            f" 'workloads.inference[{names.index(v.name)}].prefill=colocated' to simulate it"
            " co-located (docs/serving.md)"
        )
    seed = sc.run.seed
    if args.trace is not None:
        reqs = read_trace(args.trace, args.trace_format, speed=speed, max_context=model.max_seq_len)
        keep = reqs.arrival_s <= duration  # the part of the trace inside the run
        if int(keep.sum()) > MAX_REQUESTS:
            raise _UserError(
                f"--trace: {int(keep.sum()):,} requests within {duration:g} s; at most"
                f" {MAX_REQUESTS:,} (a shorter --duration)"
            )
        out_tokens = reqs.output_tokens[keep]
        if v.reasoning_tokens:
            out_tokens = (out_tokens * shape.reasoning_multiplier).round().astype("int64")
        reqs = Requests.independent(
            reqs.arrival_s[keep], reqs.prompt_tokens[keep], out_tokens, reqs.cached_tokens[keep]
        )
        arrivals = f"trace {Path(args.trace).name} x{speed:g}"
    else:
        if args.rate is not None:
            rate = _rate(args.rate)
            how = "given"
        else:
            rate = replica.rate_per_s * v.max_load
            how = f"max_load {v.max_load:g} x the perf model's capacity"
        if rate * duration > MAX_REQUESTS:
            raise _UserError(
                f"{rate:g}/s over {duration:g} s is {rate * duration:,.0f} requests; at most"
                f" {MAX_REQUESTS:,} (a shorter --duration or a lower --rate)"
            )
        reqs = shape.requests(RandomStreams(seed)["serving.arrivals"], rate, duration)
        kind = "agentic sessions" if shape.sessions is not None else "Poisson"
        arrivals = f"{kind} at {rate:.4g} requests/s per replica ({how})"
    cpu0 = time.process_time()
    run = shape.run(reqs, duration)
    cpu = time.process_time() - cpu0
    summary = summarize(run, v.ttft_s, v.tpot_s, replica_gpus=shape.replica_gpus)
    summary.update(
        {
            "scenario": sc.name,
            "seed": seed,
            "arrivals": arrivals,
            # requests whose prompt and output exceed the model's context are cut to fit
            "context_clipped_share": ps.context_clipped_share,
            # the fleet's give-up rule, which this request level does not simulate
            "client_timeout_s": v.client_timeout_s,
            "service": {
                "name": v.name,
                "model": model.display_name or str(v.model),
                "hardware": hw.display_name,
                "precision": shape.precision,
                "tp": shape.tp,
                "ep": shape.ep,
                "replica_gpus": shape.replica_gpus,
                # where its prompts are prefilled: the plan's arrangement and this replica's kind
                "prefill": ps.prefill,
                "replica_kind": replica.name,
                "replica_kinds": [k.name for k in kinds_of(ps, at_peak, model, hw)],
                "prefill_pool": None
                if shape.prefill is None
                else {
                    "devices_per_instance": shape.prefill.devices,
                    "instances_per_replica": shape.prefill.instances_per_replica,
                },
                # visible output plus reasoning, at the longest reasoning of the run
                "generated_tokens_per_request": shape.generated_tokens,
            },
            "engine": {
                "kv_cache": shape.options.kv_cache,
                "runtime": shape.runtime,
                "max_seqs": shape.options.max_seqs,
                "max_batched_tokens": shape.options.max_batched_tokens,
            },
            "simulator": {
                "cpu_s": cpu,
                "requests_per_cpu_s": run.arrived / cpu if cpu > 0 else None,
            },
        }
    )
    requests = requests_table(run)
    levels = levels_table(run)
    page = render_serving_report(requests, levels, summary)
    if args.out is not None:
        target = Path(args.out)
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        target = default_run_dir(Path("outputs") / "serve-sim", f"{sc.name}-{v.name}", seed, stamp)
    folder = write_serving_run(
        target,
        {"requests": requests, "levels": levels},
        {"summary.json": json.dumps(summary, indent=2, default=_json) + "\n", "report.html": page},
    )
    if args.quiet:
        out.print(str(folder), markup=False)
    else:
        _print(out, summary, folder)
    return EXIT_OK


def _json(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(type(o).__name__)


def _ms(x: float | None) -> str:
    return latency(x)  # ms below a second; s, min, h above (a queue can grow for hours)


def _print(out: Console, s: dict[str, Any], folder: Path) -> None:
    svc = s["service"]
    t = Table(
        title=f"{s['scenario']}: {svc['name']} ({svc['model']} {svc['precision']} on"
        f" {svc['hardware']}, TP{svc['tp']}, {s['engine']['kv_cache']} KV,"
        f" {s['engine']['runtime']} runtime)",
        show_header=False,
        title_justify="left",
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    r = s["requests"]
    t.add_row("arrivals", s["arrivals"])
    pool = svc["prefill_pool"]
    t.add_row(
        "prefill",
        f"{svc['prefill']} plan; this replica {svc['replica_kind']}"
        + (f" (of {', '.join(svc['replica_kinds'])})" if len(svc["replica_kinds"]) > 1 else "")
        + (
            ""
            if pool is None
            else f", behind {pool['instances_per_replica']:.2f} prefill instances of"
            f" {pool['devices_per_instance']:g}"
            f" {'GPUs' if svc['replica_kind'] == 'gpu_prefill' else 'companion parts'}"
        ),
    )
    # the request level has no client timeout: it is the fleet's give-up rule
    t.add_row(
        "client timeout",
        f"not simulated here (requests wait; the fleet gives up past {s['client_timeout_s']:g} s)",
    )
    if s["context_clipped_share"] > 0.01:
        t.add_row(
            "context",
            f"{s['context_clipped_share']:.1%} of requests exceed the model's context and are cut"
            " to fit (their prompt, then their output)",
        )
    t.add_row(
        "requests",
        f"{r['arrived']:,} arrived = {r['served']:,} served + {r['dropped']:,} dropped +"
        f" {r['queued']:,} queued; {r['preempted']:,} preempted",
    )
    th = s["throughput"]
    # the tokens of the requests completed in the run; the rate generated counts those still
    # in flight at its end too
    t.add_row(
        "throughput, completed requests",
        f"{th['output_tokens_per_s']:,.0f} output tok/s ({th['output_tokens_per_s_per_gpu']:,.0f}"
        f" per GPU), {th['requests_per_s']:,.3g} req/s",
    )
    t.add_row("generated (in flight too)", f"{th['generated_tokens_per_s']:,.0f} tok/s")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end to end")):
        d = s[key]
        t.add_row(f"{label} p50 / p90 / p99", " / ".join(_ms(d[q]) for q in ("p50", "p90", "p99")))
    slo = s["slo"]
    att = slo["attainment"]
    t.add_row(
        "SLO attainment",
        "n/a (the service has no latency targets)"
        if not has_targets(slo)
        else ("n/a" if att is None or att != att else f"{att:.1%}")
        + f" (TTFT {_ms(slo['ttft_s'])}, TPOT {_ms(slo['tpot_s'])})",
    )
    kv = s["kv_cache"]
    t.add_row(
        "KV cache",
        f"mean {kv['mean_occupancy']:.0%}, peak {kv['max_occupancy']:.0%} of"
        f" {kv['capacity_tokens']:,} tokens",
    )
    t.add_row("prompt-cache hit", f"{s['prompt_cache']['hit_rate']:.1%} of prompt tokens")
    q = s["queue"]
    t.add_row("queue", f"mean {q['mean_waiting']:,.1f}, max {q['max_waiting']:,} waiting")
    sim_ = s["simulator"]
    rate = sim_["requests_per_cpu_s"]
    t.add_row(
        "simulator",
        f"{sim_['cpu_s']:.2f} CPU-s" + (f", {rate:,.0f} requests per CPU-second" if rate else ""),
    )
    out.print(t)
    out.print(f"run folder: {folder}", markup=False)
