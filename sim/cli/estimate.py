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
    SERVING_RUNTIMES,
    InferenceEstimate,
    PerfError,
    TrainingEstimate,
    TrainingLayout,
    default_vp,
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
    s.add_argument("--ttft", default=None, help="p99 time-to-first-token target, e.g. 2s")
    s.add_argument("--tpot", default=None, help="p99 time-per-output-token target, e.g. 200ms")
    s.add_argument(
        "--prefill-hardware",
        default=None,
        help="disaggregated prefill pool: a catalog name, or 'companion' for the rack's prefill"
        " accelerator (Rubin CPX)",
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
    """What ``--gpus`` GPUs of the hardware serve (one replica without ``--gpus``).

    With a companion prefill part (Rubin CPX) the deployment's prefill pool is the parts of the
    racks its replicas fill (``replicas / replicas per rack x count_per_domain``, pro rata for a
    part of a rack), and it serves as many replicas' worth as the GPUs hold or as those parts
    can prefill for, whichever is fewer: the fleet engine's rule for a rack (``sim/build.py``
    ``_plan_service``)."""

    replicas: int  # replicas the GPUs hold
    served_replicas: float  # replicas' worth the pools sustain (fewer when prefill-bound)
    gpus: int
    prefill_parts: float | None = None  # companion parts of the deployment (None: no companion)

    @property
    def limited_by(self) -> str:
        return "prefill" if self.served_replicas < self.replicas else "decode"


def _serve(args: argparse.Namespace) -> tuple[InferenceEstimate, _Deployment]:
    model = get_model(args.model)
    hw = _hardware(args.hardware)
    ttft = _duration(args.ttft, "--ttft")
    tpot = _duration(args.tpot, "--tpot")
    prefill: Any = None
    if args.prefill_hardware:
        if args.prefill_hardware == "companion":
            if hw.prefill_accelerator is None:
                raise _UserError(f"{args.hardware} has no companion prefill accelerator")
            prefill = hw.prefill_accelerator
        else:
            prefill = _hardware(args.prefill_hardware)
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
    est = estimate_serving(
        model,
        hw,
        args.precision,
        backend=args.backend,
        model_name=args.model.strip().lower(),
        hardware_name=args.hardware.strip().lower().replace("-", "_"),
        engine=args.engine or "trtllm",
        input_tokens=args.input,
        output_tokens=args.output,
        reasoning_tokens=args.reasoning,
        prompt_cache_hit=args.cache_hit,
        ttft_s=ttft,
        tpot_s=tpot,
        tp=args.tp,
        ep=args.ep,
        prefill_hw=prefill,
        kv_cache=args.kv_cache or "reserved",
        runtime=args.runtime or "fused",
    )
    replicas = 1
    if args.gpus is not None:
        if args.gpus < est.replica_gpus or args.gpus % est.replica_gpus:
            raise _UserError(
                f"--gpus {args.gpus} is not a multiple of the {est.replica_gpus}-GPU replica"
                f" (TP{est.tp} x EP{est.ep})"
            )
        replicas = args.gpus // est.replica_gpus
    gpus = replicas * est.replica_gpus
    if args.prefill_hardware != "companion" or hw.prefill_accelerator is None:
        return est, _Deployment(replicas, float(replicas), gpus)
    # the rack's parts serve the replicas the rack holds (a replica lives inside one rack)
    racks = replicas / max(hw.domain_gpus // est.replica_gpus, 1)
    parts = racks * hw.prefill_accelerator.count_per_domain
    served = min(float(replicas), parts / max(est.prefill_gpus_per_replica, 1e-12))
    return est, _Deployment(replicas, served, gpus, parts)


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
    tokens = e.output_tokens_per_s_per_replica * dep.served_replicas
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
    tokens = e.output_tokens_per_s_per_replica * dep.served_replicas
    replicas = plural(dep.replicas, "replica")
    rows = [
        ("replica", f"TP{e.tp} x EP{e.ep} = {plural(e.replica_gpus, 'GPU')}, {replicas}"),
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
    if dep.prefill_parts is not None:
        rows.append(
            (
                "companion prefill pool",
                f"{dep.prefill_parts:,.0f} parts for {replicas}: {dep.served_replicas:,.2f}"
                f" replicas' worth ({dep.limited_by}-bound),"
                f" {tokens / dep.gpus:,.0f} tokens/s per deployed GPU",
            )
        )
    if not e.meets_targets:
        rows.append(("targets", "NOT met at any batch"))
    console = _console()
    console.print(_kv_table(f"{args.model} on {args.hardware}, {e.precision}", rows))
    console.print(f"provenance: {e.provenance_detail}", highlight=False)
