"""``aifactory estimate train|serve``: the performance model's estimate for one job or service.

No scenario needed: name a model from the model catalog, hardware from the hardware catalog, a
GPU count and (optionally) a layout. ``--json`` prints machine-readable output; bad input prints
one ``error: ...`` line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.catalog.hardware import HardwareSpec, catalog
from sim.catalog.models import get_model
from sim.config.schema import LATENCY_TARGET_WHY, MAX_LATENCY_TARGET_S
from sim.perf import (
    BACKENDS,
    KV_CACHE_POLICIES,
    PREFILL_MODES,
    SERVING_RUNTIMES,
    DomainMix,
    InferenceEstimate,
    PerfError,
    TrainingEstimate,
    TrainingLayout,
    default_vp,
    estimate_domain,
    estimate_serving,
    estimate_training,
)
from sim.perf.measured import ENGINES
from sim.report.style import plural
from sim.units import QuantityError, parse_quantity

EXIT_OK = 0
EXIT_USER_ERROR = 2


class _UserError(Exception):
    """Bad input: reported as one line on stderr."""


#: Largest count a flag takes (GPUs, tokens, widths): far beyond any real job, small enough that
#: the performance model's arithmetic stays exact and fast.
_MAX_COUNT = 100_000_000


def _count(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= _MAX_COUNT:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of {low} or more (at most {_MAX_COUNT:,}), got {text[:40]!r}"
        )
    return value


def _positive(text: str) -> int:
    return _count(text, 1)


def _non_negative(text: str) -> int:
    return _count(text, 0)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value < 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text[:40]!r}")
    return value


def _spread(text: str) -> float:
    """A coefficient of variation, in [0, 10] as the scenario's ``serving.input_cv`` and
    ``serving.output_cv``."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 10.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number in [0, 10], got {text[:40]!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "estimate",
        help="estimate one training job or inference service with the performance model",
        description="Analytical estimate for one job without a scenario (see"
        " docs/performance-model.md).",
    )
    sub = p.add_subparsers(dest="estimate_command", required=True, metavar="KIND")

    t = sub.add_parser("train", help="training step time, tokens/s per GPU, MFU")
    _common(t)
    t.add_argument("--gpus", type=_positive, required=True, help="GPUs in the job")
    for flag, what in (
        ("--tp", "tensor parallel"),
        ("--pp", "pipeline parallel"),
        ("--vp", "virtual pipeline stages per GPU (default: about two layers per chunk)"),
        ("--cp", "context parallel"),
        ("--dp", "data parallel"),
        ("--ep", "expert parallel (divides DP)"),
    ):
        t.add_argument(flag, type=_positive, default=None, help=what)
    t.add_argument("--microbatch", type=_positive, default=1, help="sequences per micro-batch")
    t.add_argument(
        "--zero",
        type=int,
        default=1,
        choices=(1, 2, 3),
        help="data-parallel sharding: 1 optimizer, 2 + gradients, 3 + weights",
    )
    t.add_argument("--seq", type=_positive, default=8192, help="sequence length (tokens)")
    t.add_argument("--global-batch", type=_positive, default=None, help="global batch (sequences)")
    t.set_defaults(handler=cmd_train)

    s = sub.add_parser("serve", help="inference throughput per GPU at latency targets")
    _common(s)
    s.add_argument("--gpus", type=_positive, default=None, help="GPUs in the whole deployment")
    s.add_argument("--tp", type=_positive, default=None, help="tensor parallel (default: best)")
    s.add_argument("--ep", type=_positive, default=1, help="expert parallel")
    s.add_argument("--input", type=_positive, required=True, help="input (prompt) tokens")
    s.add_argument("--output", type=_positive, required=True, help="output tokens")
    s.add_argument(
        "--reasoning", type=_non_negative, default=0, help="reasoning tokens (also generated)"
    )
    s.add_argument("--cache-hit", type=_fraction, default=0.0, help="prompt-cache hit rate [0, 1)")
    s.add_argument(
        "--max-seqs",
        type=_positive,
        default=None,
        help="most sequences in flight per replica (default: 4,096, TensorRT-LLM's ceiling;"
        " a scenario's serving.max_seqs defaults to vLLM's 1,024)",
    )
    s.add_argument(
        "--input-cv",
        type=_spread,
        default=None,
        help="spread of prompt lengths, lognormal cv (default 0: every prompt --input long; a"
        " scenario's serving.input_cv defaults to 0.53, the Azure trace's)",
    )
    s.add_argument(
        "--output-cv",
        type=_spread,
        default=None,
        help="spread of generated lengths, lognormal cv (default 0: every request generates"
        " --output + --reasoning; a scenario's serving.output_cv defaults to 1.17, the Azure"
        " trace's): a batch holds the long ones longer, so its KV cache fills sooner",
    )
    s.add_argument("--ttft", default=None, help="p99 time-to-first-token target, e.g. 2s")
    s.add_argument("--tpot", default=None, help="p99 time-per-output-token target, e.g. 200ms")
    s.add_argument(
        "--prefill",
        choices=PREFILL_MODES,
        default=None,
        help="where prompts are prefilled, as the scenario's prefill key: auto (default: the"
        " arrangement with the most capacity, as a fleet run plans), colocated, companion (the"
        " rack's prefill accelerators, Rubin CPX), hybrid (companion parts plus GPUs)",
    )
    s.add_argument(
        "--prefill-hardware",
        default=None,
        help="a disaggregated prefill pool on another catalog GPU type (a separate hall), one"
        " replica's worth; 'companion' is --prefill companion",
    )
    s.add_argument(
        "--kv-cache",
        choices=KV_CACHE_POLICIES,
        default=None,
        help="KV-cache allocation: reserved = prompt + output per request (TensorRT-LLM,"
        " default), paged = blocks as sequences grow (vLLM)",
    )
    s.add_argument(
        "--runtime",
        choices=SERVING_RUNTIMES,
        default=None,
        help="how the engine runs FP8/FP4 layers: fused = quantization fused into the producing"
        " kernels (TensorRT-LLM as in MLPerf and NIM, default), torch_flow = a quantize kernel"
        " per layer (as aiconfigurator measured)",
    )
    s.add_argument(
        "--backend",
        choices=BACKENDS,
        default="model",
        help="model: the analytic model (default); measured: NVIDIA's aiconfigurator database"
        " (pip install 'aifactory[measured]'), where it covers the configuration",
    )
    s.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="serving engine whose measurements --backend measured uses (default trtllm)",
    )
    s.set_defaults(handler=cmd_serve)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model catalog name, e.g. llama3.1-405b")
    p.add_argument("--hardware", required=True, help="hardware catalog name, e.g. h100_sxm")
    p.add_argument("--precision", default="bf16", help="bf16, fp8 or fp4")
    p.add_argument("--json", action="store_true", help="print JSON")


# --- handlers -------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    try:
        est = _train(args)
    except (_UserError, PerfError, KeyError, ValueError) as exc:
        return _fail(exc)
    if args.json:
        sys.stdout.write(json.dumps(_train_json(est), indent=2) + "\n")
    else:
        _train_table(est, args)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        est, dep = _serve(args)
    except (_UserError, PerfError, KeyError, ValueError) as exc:
        return _fail(exc)
    if args.json:
        sys.stdout.write(json.dumps(_serve_json(est, dep), indent=2) + "\n")
    else:
        _serve_table(est, dep, args)
    return EXIT_OK


def _fail(exc: BaseException) -> int:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    sys.stderr.write(f"error: {' '.join(str(msg).split())}\n")
    return EXIT_USER_ERROR


def _hardware(name: str) -> HardwareSpec:
    entries = catalog()
    key = name.strip().lower().replace("-", "_")
    if key not in entries:
        close = difflib.get_close_matches(key, sorted(entries), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise _UserError(f"unknown hardware '{name}'{hint} (known: {', '.join(sorted(entries))})")
    return entries[key]


def _train(args: argparse.Namespace) -> TrainingEstimate:
    model = get_model(args.model)
    hw = _hardware(args.hardware)
    if args.gpus < 1:
        raise _UserError(f"--gpus must be positive (got {args.gpus})")
    degrees = {k: getattr(args, k) for k in ("tp", "pp", "vp", "cp", "dp", "ep")}
    layout = None
    if any(v is not None for k, v in degrees.items() if k != "vp"):
        tp = degrees["tp"] or 1
        pp = degrees["pp"] or 1
        cp = degrees["cp"] or 1
        dp = degrees["dp"]
        if dp is None:
            if args.gpus % (tp * pp * cp):
                raise _UserError(
                    f"--gpus {args.gpus} is not a multiple of TP{tp} x PP{pp} x CP{cp}"
                )
            dp = args.gpus // (tp * pp * cp)
        vp = degrees["vp"] if degrees["vp"] is not None else default_vp(model, pp)
        layout = TrainingLayout(
            tp=tp,
            pp=pp,
            vp=vp,
            cp=cp,
            dp=dp,
            ep=degrees["ep"] or 1,
            microbatch=args.microbatch,
            zero_stage=args.zero,
        )
    return estimate_training(
        model,
        hw,
        args.gpus,
        args.precision,
        seq_len=args.seq,
        global_batch=args.global_batch,
        layout=layout,
    )


def _duration(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    # The scenario's rule for latency targets: a unit is required (a bare "50" is neither
    # 50 s nor 50 ms) and the same plausible range applies.
    try:
        float(value)
    except ValueError:
        pass
    else:
        raise _UserError(f"{flag} {value!r} has no unit: write e.g. '{value} ms' or '{value} s'")
    try:
        out = parse_quantity(value, "s", require_unit=True)
    except QuantityError as exc:
        raise _UserError(f"{flag}: {exc}") from None
    if out <= 0:
        raise _UserError(f"{flag} must be positive (got {value!r})")
    if out > MAX_LATENCY_TARGET_S:
        raise _UserError(
            f"{flag} {value!r} is above {MAX_LATENCY_TARGET_S:g} s ({LATENCY_TARGET_WHY})"
        )
    return out


@dataclass(frozen=True)
class _Deployment:
    """What ``--gpus`` GPUs of the hardware serve (default: one replica; one scale-up domain
    on hardware with companion prefill parts, since they are counted per domain).

    ``mix`` is :func:`sim.perf.estimate_domain`'s arrangement of those GPUs and of their
    companion parts (pro rata, ``gpus / domain GPUs x parts per domain``): the function the
    fleet plans each domain with (``sim/build.py`` ``_plan_service``), so a rack's figures here
    are a fleet rack's. None with ``--prefill-hardware`` (a pool on another GPU type, one
    replica's estimate scaled by the replicas)."""

    replicas: int  # replicas the GPUs hold
    gpus: int
    tokens_per_s: float
    mix: DomainMix | None = None

    @property
    def served_replicas(self) -> float:
        return self.mix.replicas if self.mix is not None else float(self.replicas)

    @property
    def prefill_parts(self) -> float | None:
        return self.mix.parts if self.mix is not None and self.mix.parts else None

    @property
    def limited_by(self) -> str:
        return self.mix.limited_by if self.mix is not None else "decode"


def _serve(args: argparse.Namespace) -> tuple[InferenceEstimate, _Deployment]:
    model = get_model(args.model)
    hw = _hardware(args.hardware)
    ttft = _duration(args.ttft, "--ttft")
    tpot = _duration(args.tpot, "--tpot")
    mode = args.prefill
    other: HardwareSpec | None = None
    if args.prefill_hardware == "companion":
        if mode not in (None, "companion"):
            raise _UserError(f"--prefill-hardware companion contradicts --prefill {mode}")
        mode = "companion"
    elif args.prefill_hardware:
        if mode not in (None, "auto"):
            raise _UserError(
                f"--prefill {mode} places prefill in the hardware's own domains; it cannot be"
                " combined with --prefill-hardware (a pool on another GPU type)"
            )
        other = _hardware(args.prefill_hardware)
    mode = mode or "auto"
    if mode in ("companion", "hybrid") and hw.prefill_accelerator is None:
        raise _UserError(f"{args.hardware} has no companion prefill accelerator")
    if args.kv_cache is not None and args.backend == "measured":
        raise _UserError(
            "--kv-cache sizes the analytic model's KV cache: the measured backend allocates it as"
            " its engine does"
        )
    if args.runtime is not None and args.backend == "measured":
        raise _UserError(
            "--runtime chooses how the analytic model runs quantized layers: the measured backend"
            " is aiconfigurator's composition of its own (torch_flow) measurements"
        )
    if args.engine is not None and args.backend != "measured":
        raise _UserError("--engine chooses the measured data: it needs --backend measured")
    common: dict[str, Any] = {
        "backend": args.backend,
        "model_name": args.model.strip().lower(),
        "hardware_name": args.hardware.strip().lower().replace("-", "_"),
        "engine": args.engine or "trtllm",
        "input_tokens": args.input,
        "output_tokens": args.output,
        "reasoning_tokens": args.reasoning,
        "prompt_cache_hit": args.cache_hit,
        "ttft_s": ttft,
        "tpot_s": tpot,
        "tp": args.tp,
        "ep": args.ep,
        "kv_cache": args.kv_cache or "reserved",
        "runtime": args.runtime or "fused",
    }
    # the fleet plans with a scenario's serving settings; here they are given, or the model's
    # own defaults (no cap below the engine's ceiling, prompts of one length)
    if args.max_seqs is not None:
        common["max_seqs"] = args.max_seqs
    if args.input_cv is not None:
        common["input_cv"] = args.input_cv
    if args.output_cv is not None:
        common["output_cv"] = args.output_cv
    if other is not None:
        est = estimate_serving(model, hw, args.precision, prefill_hw=other, **common)
        replicas = _replicas(args.gpus, est)
        return est, _Deployment(
            replicas, replicas * est.replica_gpus, est.output_tokens_per_s_per_replica * replicas
        )
    # on a domain with companion parts the deployment is a domain: the parts are counted per
    # domain, and every prefill mode is compared on the same GPUs
    companion = hw.prefill_accelerator is not None
    gpus = args.gpus if args.gpus is not None else hw.domain_gpus
    mix = estimate_domain(model, hw, args.precision, gpus=gpus, prefill=mode, **common)
    est = mix.main
    if args.gpus is None and not companion:
        # one replica, as without a companion part the deployment is replicas x this one
        return est, _Deployment(1, est.replica_gpus, est.output_tokens_per_s_per_replica)
    if args.gpus is not None:
        _replicas(gpus, est)  # a whole number of replicas of the GPUs asked for
    # by default one domain: the replicas its GPUs hold, the rest idle as in the fleet's plan
    # (4 TP16 replicas on a 72-GPU rack, sim/perf/inference.py replica_slots)
    return est, _Deployment(mix.slots, gpus, mix.capacity_tokens_per_s, mix)


def _replicas(gpus: int | None, est: InferenceEstimate) -> int:
    if gpus is None:
        return 1
    if gpus < est.replica_gpus or gpus % est.replica_gpus:
        raise _UserError(
            f"--gpus {gpus} is not a multiple of the {est.replica_gpus}-GPU replica"
            f" (TP{est.tp} x EP{est.ep})"
        )
    return gpus // est.replica_gpus


# --- output ---------------------------------------------------------------------------------
def _train_json(e: TrainingEstimate) -> dict[str, Any]:
    lay = e.layout
    return {
        "step_time_s": e.step_time_s,
        "tokens_per_s_per_gpu": e.tokens_per_s_per_gpu,
        "model_tflops_per_gpu": e.model_tflops_per_gpu,
        "mfu": e.mfu,
        "tokens_per_s": e.tokens_per_s,
        "gpus": e.gpus,
        "global_batch": e.global_batch,
        "seq_len": e.seq_len,
        "precision": e.precision,
        "layout": {
            "tp": lay.tp,
            "pp": lay.pp,
            "vp": lay.vp,
            "cp": lay.cp,
            "dp": lay.dp,
            "ep": lay.ep,
            "microbatch": lay.microbatch,
            "zero_stage": lay.zero_stage,
        },
        "layout_chosen_automatically": e.layout_chosen_automatically,
        "recompute": e.recompute,
        "memory_gb_per_gpu": e.memory_bytes_per_gpu / 1e9,
        "breakdown": e.breakdown,
    }


def _serve_json(e: InferenceEstimate, dep: _Deployment) -> dict[str, Any]:
    tokens = dep.tokens_per_s
    mix = dep.mix
    return {
        "output_tokens_per_s_per_gpu": e.output_tokens_per_s_per_gpu,
        "batch": e.batch,
        "ttft_s": e.ttft_s,
        "tpot_s": e.tpot_s,
        "tp": e.tp,
        "ep": e.ep,
        "replica_gpus": e.replica_gpus,
        "replicas": dep.replicas,
        "output_tokens_per_s": tokens,
        "output_tokens_per_s_per_deployed_gpu": tokens / dep.gpus,
        "deployment_limited_by": dep.limited_by,
        "prefill_gpus_per_replica": e.prefill_gpus_per_replica,
        "companion_prefill_parts": dep.prefill_parts,
        "replicas_served": dep.served_replicas,
        "prefill": mix.mode
        if mix is not None
        else "separate"
        if e.prefill_gpus_per_replica
        else "colocated",
        "companion_replicas": mix.companion_replicas if mix is not None else 0.0,
        "gpu_replicas": mix.gpu_replicas if mix is not None else 0.0,
        "gpu_replica_kind": mix.gpu_kind if mix is not None else "",
        "gpu_prefill_gpus": mix.gpu_prefill_gpus if mix is not None else 0.0,
        "companion_parts_used": mix.companion_parts_used if mix is not None else 0.0,
        "limited_by": e.limited_by,
        "meets_targets": e.meets_targets,
        "kv_cache": e.kv_cache,
        "runtime": e.runtime,
        "max_batch_kv": e.max_batch_kv,
        "provenance": e.provenance,
        "provenance_detail": e.provenance_detail,
    }


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _kv_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    return table


def _train_table(e: TrainingEstimate, args: argparse.Namespace) -> None:
    chosen = " (chosen automatically)" if e.layout_chosen_automatically else ""
    rows = [
        ("layout", e.layout.describe() + chosen),
        ("global batch", f"{e.global_batch} x {e.seq_len} tokens"),
        ("step time", f"{e.step_time_s:.3f} s"),
        ("tokens/s per GPU", f"{e.tokens_per_s_per_gpu:,.0f}"),
        ("model TFLOP/s per GPU", f"{e.model_tflops_per_gpu:,.0f}"),
        ("MFU", f"{e.mfu:.1%}"),
        ("memory per GPU", f"{e.memory_bytes_per_gpu / 1e9:.1f} GB ({e.recompute} recompute)"),
    ]
    for k, v in e.breakdown.items():
        if k.endswith("_s") and not k.endswith("total_s"):
            rows.append(("  " + k.removesuffix("_s").replace("_", " "), f"{v:.3f} s"))
    _console().print(_kv_table(f"{args.model} on {e.gpus} x {args.hardware}, {e.precision}", rows))


def _serve_table(e: InferenceEstimate, dep: _Deployment, args: argparse.Namespace) -> None:
    tokens = dep.tokens_per_s
    replicas = plural(dep.replicas, "replica")
    rows = [
        (
            "replica",
            f"TP{e.tp} x EP{e.ep} = {plural(e.replica_gpus, 'GPU')}, "
            + (replicas if dep.mix is None else f"{dep.gpus:,} GPUs deployed"),
        ),
        (
            # with a separate prefill pool the estimate's per-GPU figure counts its parts too
            "output tokens/s per GPU"
            + (" or prefill part" if e.prefill_gpus_per_replica > 0 else ""),
            f"{e.output_tokens_per_s_per_gpu:,.0f}",
        ),
        ("output tokens/s (deployment)", f"{tokens:,.0f}"),
        ("batch", f"{e.batch} (KV cache {e.kv_cache}: at most {e.max_batch_kv})"),
        ("TTFT", f"{e.ttft_s * 1e3:,.0f} ms"),
        ("TPOT", f"{e.tpot_s * 1e3:,.1f} ms"),
        ("runtime", e.runtime),
        ("limited by", e.limited_by),
        ("provenance", e.provenance),
    ]
    if e.prefill_gpus_per_replica:
        rows.append(("prefill devices per replica", f"{e.prefill_gpus_per_replica:.2f}"))
    mix = dep.mix
    if mix is not None:
        rows.append(("prefill", _mix_text(mix)))
        rows.append(("output tokens/s per deployed GPU", f"{tokens / dep.gpus:,.0f}"))
        if mix.companion is not None and mix.gpu is not None and mix.gpu_replicas > 0:
            # the kind the rows above do not describe
            other, kind = (
                (mix.gpu, mix.gpu_kind.replace("_", " "))
                if mix.main is mix.companion
                else (mix.companion, "companion-fed")
            )
            rows.append(
                (
                    f"{kind} replica",
                    f"TP{other.tp}, batch {other.batch}, TTFT {other.ttft_s * 1e3:,.0f} ms, TPOT"
                    f" {other.tpot_s * 1e3:,.1f} ms, {other.output_tokens_per_s_per_replica:,.0f}"
                    " tokens/s",
                )
            )
    if not e.meets_targets:
        rows.append(("targets", "NOT met at any batch"))
    console = _console()
    console.print(_kv_table(f"{args.model} on {args.hardware}, {e.precision}", rows))
    console.print(f"provenance: {e.provenance_detail}", highlight=False)


def _mix_text(mix: DomainMix) -> str:
    """The arrangement in words: which replicas, fed by which prefill."""
    parts = []
    if mix.companion_replicas > 0:
        parts.append(
            f"{mix.companion_replicas:,.2f} replicas fed by {mix.companion_parts_used:,.0f} of"
            f" {mix.parts:,.0f} companion parts"
        )
    if mix.gpu_replicas > 0:
        if mix.gpu_kind == "gpu_prefill":
            parts.append(
                f"{mix.gpu_replicas:,.2f} fed by prefill on {mix.gpu_prefill_gpus:,.1f} GPUs"
            )
        else:
            parts.append(f"{mix.gpu_replicas:,.2f} co-located")
    limit = " (prefill-bound: GPUs idle)" if mix.limited_by == "prefill" else ""
    return f"{mix.mode}: " + " + ".join(parts) + limit
