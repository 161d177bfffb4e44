"""Serving estimates from a measured reference: NVIDIA's aiconfigurator (optional dependency).

aiconfigurator (PyPI ``aiconfigurator``, Apache-2.0, pinned to 0.12.x in ``pyproject.toml``)
ships per-operation latencies (GEMM, attention, all-reduce, MoE, ...) collected on H100, H200,
B200, GB200, B300 and GB300 with TensorRT-LLM, vLLM and SGLang, and composes them offline into
the step time of an in-flight-batching engine (its "agg" mode: context and generation
requests mixed in one step, ``ctx_tokens = input_tokens`` per step). This module maps our catalog
names and precisions onto its systems, Hugging Face model ids and quantization modes and turns
its answers into our :class:`~sim.perf.inference.InferenceEstimate`, with
``provenance="measured"`` and the database it came from.

What is taken from where:

* step times, TTFT, TPOT and output tokens/s per GPU at a given batch: aiconfigurator
  (its ``SILICON`` database mode: a configuration whose operations have no measured table raises
  and is reported as not covered; ``silicon_share`` says how much of the step time came from
  measured tables rather than its own formula fallbacks for small ops such as norms);
* the largest batch the KV cache holds: aiconfigurator's check (TensorRT-LLM reserves
  ``input + output`` tokens per request in ``free_gpu_memory_fraction`` 0.9 of the free memory);
* the latency-target search is ours, as in the analytic model: the largest batch (at most the
  engine's ``max_seqs``, a scenario's ``serving.max_seqs``) whose p99
  (mean x ``P99_OVER_MEAN_LATENCY``) TTFT and TPOT meet the targets, times
  ``SERVER_MAX_UTILIZATION`` under Poisson arrivals. These two queueing factors are assumptions
  shared with the analytic model (``sim/perf/calibration.py``), not measurements.

Importing this module does not import aiconfigurator; the first estimate does (about 1 s, and
2-4 s to load each system's database once per process). Without it installed every call raises
:class:`PerfError` saying ``pip install 'aifactory[measured]'``. It is a reference built on
NVIDIA's own software stack, not ground truth (see docs/performance-model.md, "Measured
reference (aiconfigurator)").
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sim.catalog.hardware import HardwareSpec, Precision, catalog
from sim.catalog.models import ModelShape, get_model
from sim.perf import calibration as cal
from sim.perf.common import PerfError, peak_flops, to_precision
from sim.perf.inference import MAX_BATCH, InferenceEstimate, inference_curve

__all__ = [
    "AICONFIGURATOR_MODELS",
    "AICONFIGURATOR_SYSTEMS",
    "ENGINES",
    "INSTALL_HINT",
    "GemmKernelFit",
    "MeasuredPoint",
    "aiconfigurator_version",
    "analytic_at_grid_point",
    "estimate_inference_measured",
    "gemm_kernel_fit",
    "measured_point",
]

INSTALL_HINT = (
    "the measured serving backend needs NVIDIA's aiconfigurator:"
    " pip install 'aifactory[measured]' (or pip install 'aiconfigurator>=0.12,<0.13')"
)

#: Our hardware catalog names -> aiconfigurator system names (its ``systems/*.yaml``). The HGX
#: B200/B300 are its ``*_sxm`` 8-GPU systems; the NVL72 racks its ``gb200``/``gb300``.
AICONFIGURATOR_SYSTEMS: dict[str, str] = {
    "h100_sxm": "h100_sxm",
    "h200_sxm": "h200_sxm",
    "b200_hgx": "b200_sxm",
    "b300_hgx": "b300_sxm",
    "gb200_nvl72": "gb200",
    "gb300_nvl72": "gb300",
}

#: Our model catalog names -> the Hugging Face ids whose configs aiconfigurator ships. Llama 3.3
#: 70B has Llama 3.1 70B's architecture (models.yaml), so it uses that config. Llama 2 70B
#: (other vocabulary and context) and GPT-3 have no config there and are not covered.
AICONFIGURATOR_MODELS: dict[str, str] = {
    "llama3.1-8b": "meta-llama/Meta-Llama-3.1-8B",
    "llama3.1-70b": "meta-llama/Meta-Llama-3.1-70B",
    "llama3.3-70b": "meta-llama/Meta-Llama-3.1-70B",
    "llama3.1-405b": "meta-llama/Meta-Llama-3.1-405B",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
    "deepseek-r1": "deepseek-ai/DeepSeek-R1",
}

#: aiconfigurator's serving engines (its "backends"); TensorRT-LLM is the default, as in the
#: MLPerf submissions validation.md C.1 quotes.
ENGINES = ("trtllm", "vllm", "sglang")

#: Models whose checkpoints are FP8 block-scaled: their FP8 GEMM and MoE modes are the
#: checkpoint's own (``fp8_block``), which aiconfigurator infers when none is given.
_FP8_BLOCK_MODELS = frozenset({"deepseek-v3", "deepseek-r1"})


def _quant_modes(model: str, precision: Precision) -> dict[str, str | None]:
    """aiconfigurator quantization modes for our precision, as our analytic model assumes it.

    Weights and GEMMs at the precision (FP4 = NVFP4, one FP8 scale per 16 values); KV cache at FP8
    for FP8/FP4 deployments, else BF16 (``kv_bytes_per_element``); attention (FMHA) in BF16, as
    the analytic model prices it at the BF16 peak.
    """
    gemm: str | None = {Precision.BF16: "bfloat16", Precision.FP8: "fp8", Precision.FP4: "nvfp4"}[
        precision
    ]
    moe: str | None = gemm
    if precision is Precision.FP8 and model in _FP8_BLOCK_MODELS:
        gemm = moe = None  # the checkpoint's fp8_block, inferred by aiconfigurator
    return {
        "gemm_quant_mode": gemm,
        "moe_quant_mode": moe,
        "kvcache_quant_mode": "bfloat16" if precision is Precision.BF16 else "fp8",
        "fmha_quant_mode": "bfloat16",
    }


@dataclass(frozen=True)
class MeasuredPoint:
    """aiconfigurator's answer for one replica at one batch (mean latencies, no queueing)."""

    output_tokens_per_s_per_gpu: float
    ttft_s: float
    tpot_s: float
    batch: int
    tp: int
    ep: int
    #: the batch's KV cache and activations fit (aiconfigurator's TensorRT-LLM-style check);
    #: when they do not, the figures are NaN
    kv_fits: bool
    memory_bytes_per_gpu: float
    silicon_share: float  # share of the step time read from measured tables
    system: str
    engine: str
    engine_version: str
    aiconfigurator_version: str

    @property
    def gpus(self) -> int:
        return self.tp * self.ep

    def describe(self) -> str:
        return (
            f"aiconfigurator {self.aiconfigurator_version}, {self.system} {self.engine}"
            f" {self.engine_version} database, {self.silicon_share:.0%} of the step time from"
            " measured tables"
        )


# --- aiconfigurator access (lazy) -------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """aiconfigurator logs each database file it loads; keep that out of our output."""
    loggers = [logging.getLogger(n) for n in ("aiconfigurator", "aiconfigurator_core")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@functools.cache
def aiconfigurator_version() -> str:
    """Installed aiconfigurator version; PerfError with the install hint when it is missing."""
    try:
        return importlib.metadata.version("aiconfigurator")
    except importlib.metadata.PackageNotFoundError:
        raise PerfError(INSTALL_HINT) from None


def _api() -> Any:
    aiconfigurator_version()
    try:
        with _quiet():
            from aiconfigurator.cli import api
    except ImportError as exc:  # installed but broken (a missing dependency)
        raise PerfError(f"aiconfigurator is installed but does not import ({exc})") from None
    return api


@functools.cache
def _engine_version(system: str, engine: str) -> str:
    """The newest database of ``engine`` on ``system`` (resolved once: it parses YAML)."""
    _api()
    from aiconfigurator.sdk.perf_database import get_latest_database_version

    with _quiet():
        version = get_latest_database_version(system=system, backend=engine)
    if not version:
        raise PerfError(
            f"aiconfigurator {aiconfigurator_version()} has no {engine} data for {system}"
        )
    return str(version)


def _system(hardware: str) -> str:
    try:
        return AICONFIGURATOR_SYSTEMS[hardware]
    except KeyError:
        raise PerfError(
            f"hardware '{hardware}' is not covered by the measured reference (aiconfigurator"
            f" has: {', '.join(sorted(AICONFIGURATOR_SYSTEMS))})"
        ) from None


def _hf_model(model: str) -> str:
    try:
        return AICONFIGURATOR_MODELS[model]
    except KeyError:
        raise PerfError(
            f"model '{model}' is not covered by the measured reference (aiconfigurator has"
            f" configs for: {', '.join(sorted(AICONFIGURATOR_MODELS))})"
        ) from None


def _silicon_share(result: Any) -> float:
    """Share of the engine's time spent in operations read from measured tables."""
    data, source = result.per_ops_data or {}, result.per_ops_source or {}
    sched = data.get("scheduling", {})
    weights = {
        "mix_step": float(sched.get("num_mix_steps", 0.0)),
        "genonly_step": float(sched.get("num_genonly_steps", 0.0)),
    }
    total = measured = 0.0
    for step, w in weights.items():
        for op, latency in data.get(step, {}).items():
            t = w * float(latency)
            total += t
            if source.get(step, {}).get(op) == "silicon":
                measured += t
    return measured / total if total > 0 else 0.0


def _not_covered(
    model: str,
    p: Precision,
    tp: int,
    ep: int,
    hardware: str,
    system: str,
    engine: str,
    version: str,
    exc: BaseException,
) -> str:
    why = " ".join(str(exc).split())
    why = why.split(" at /")[0]  # drop aiconfigurator's install paths
    return (
        f"{model} at {p.value}, TP{tp} x EP{ep} on {hardware} ({system}, {engine} {version}) is"
        f" not covered by the measured reference: {why[:240]}"
    )


@functools.lru_cache(maxsize=4096)
def measured_point(
    model: str,
    hardware: str,
    precision: Precision | str,
    *,
    input_tokens: int,
    output_tokens: int,
    batch: int,
    tp: int,
    ep: int = 1,
    prefix_tokens: int = 0,
    engine: str = "trtllm",
) -> MeasuredPoint:
    """aiconfigurator's estimate for one replica (``tp x ep`` GPUs) of a catalog model at ``batch``.

    Raises PerfError when the model, hardware, precision or engine is not covered, when the
    weights do not fit (aiconfigurator's own memory check), or when aiconfigurator is missing.
    A batch whose KV cache does not fit is returned with ``kv_fits=False``.
    """
    p = to_precision(precision)
    if engine not in ENGINES:
        raise PerfError(f"unknown serving engine {engine!r} (use one of: {', '.join(ENGINES)})")
    system, hf = _system(hardware), _hf_model(model)
    api = _api()
    version = _engine_version(system, engine)
    is_moe = get_model(model).is_moe
    par: dict[str, Any] = {"tp_size": tp}
    if is_moe:
        par.update(attention_dp_size=ep, moe_tp_size=tp, moe_ep_size=ep)
    elif ep != 1:
        raise PerfError(f"EP{ep} needs a mixture-of-experts model")
    try:
        with _quiet():
            r = api.cli_estimate(
                hf,
                system,
                mode="agg",
                backend_name=engine,
                backend_version=version,
                isl=input_tokens,
                osl=output_tokens,
                prefix=prefix_tokens,
                batch_size=batch,
                **par,
                **_quant_modes(model, p),
            )
    except RuntimeError as exc:  # aiconfigurator's OOM: weights, activations and KV cache
        if not str(exc).startswith("OOM"):
            raise PerfError(
                _not_covered(model, p, tp, ep, hardware, system, engine, version, exc)
            ) from None
        if batch > 1:
            return MeasuredPoint(
                output_tokens_per_s_per_gpu=float("nan"),
                ttft_s=float("nan"),
                tpot_s=float("nan"),
                batch=batch,
                tp=tp,
                ep=ep,
                kv_fits=False,
                memory_bytes_per_gpu=float("nan"),
                silicon_share=float("nan"),
                system=system,
                engine=engine,
                engine_version=version,
                aiconfigurator_version=aiconfigurator_version(),
            )
        raise PerfError(
            f"{model} at {p.value} does not fit TP{tp} x EP{ep} on {hardware} in the measured"
            f" reference ({' '.join(str(exc).split())[:160]})"
        ) from None
    except Exception as exc:  # missing tables, unsupported quantization, bad parallelism
        raise PerfError(
            _not_covered(model, p, tp, ep, hardware, system, engine, version, exc)
        ) from None
    return MeasuredPoint(
        output_tokens_per_s_per_gpu=float(r.tokens_per_second_per_gpu),
        ttft_s=float(r.ttft) / 1e3,
        tpot_s=float(r.tpot) / 1e3,
        batch=batch,
        tp=tp,
        ep=ep,
        kv_fits=r.kv_cache_warning is None,
        memory_bytes_per_gpu=float(r.memory) * 2**30,
        silicon_share=_silicon_share(r),
        system=system,
        engine=engine,
        engine_version=version,
        aiconfigurator_version=aiconfigurator_version(),
    )


# --- the serving estimate ---------------------------------------------------------------------
def _check_catalog_entries(
    model: str, hardware: str, shape: ModelShape | None, spec: HardwareSpec | None
) -> tuple[ModelShape, HardwareSpec]:
    """The catalog shape and spec of the names; an inline entry under a catalog name is refused
    (the measured data belong to the catalog part, not to the scenario's variant)."""
    _hf_model(model)
    _system(hardware)
    cat_shape, cat_spec = get_model(model), catalog()[hardware]
    if shape is not None and shape != cat_shape:
        raise PerfError(
            f"model '{model}' differs from the catalog entry; the measured reference covers"
            " only catalog models"
        )
    if spec is not None and spec != cat_spec:
        raise PerfError(
            f"hardware '{hardware}' differs from the catalog entry; the measured reference"
            " covers only catalog hardware"
        )
    return cat_shape, cat_spec


def _largest(ok: Any, hi: int) -> int:
    """Largest b in [1, hi] with ok(b), for ok monotone (true then false); 0 if not ok(1)."""
    if not ok(1):
        return 0
    if ok(hi):
        return hi
    lo = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _for_tp(
    model: str,
    hardware: str,
    p: Precision,
    tp: int,
    ep: int,
    isl: int,
    osl: int,
    prefix: int,
    engine: str,
    ttft_s: float | None,
    tpot_s: float | None,
    max_seqs: int = MAX_BATCH,
) -> tuple[InferenceEstimate, MeasuredPoint]:
    def point(b: int) -> MeasuredPoint:
        return measured_point(
            model,
            hardware,
            p,
            input_tokens=isl,
            output_tokens=osl,
            batch=b,
            tp=tp,
            ep=ep,
            prefix_tokens=prefix,
            engine=engine,
        )

    targets = ttft_s is not None or tpot_s is not None
    f99 = cal.P99_OVER_MEAN_LATENCY if targets else 1.0

    def meets(b: int) -> bool:
        pt = point(b)
        return (tpot_s is None or pt.tpot_s * f99 <= tpot_s) and (
            ttft_s is None or pt.ttft_s * f99 <= ttft_s
        )

    kv_max = _largest(lambda b: point(b).kv_fits, MAX_BATCH)
    if kv_max == 0:
        raise PerfError(
            f"{model} at {p.value} on TP{tp} x EP{ep} of {hardware}: the measured reference"
            f" finds no room for the KV cache of one {isl + osl}-token request"
        )
    # the engine runs at most max_seqs sequences (a scenario's serving.max_seqs), as the
    # analytic model's _best_batch and the request level do: the batch is searched below both
    cap = min(kv_max, max_seqs)
    limited = "kv_cache" if kv_max < MAX_BATCH else "max_batch"
    if kv_max > max_seqs:
        limited = "max_seqs"
    batch, meets_targets = cap, True
    if targets and not meets(cap):
        batch = _largest(meets, cap)
        if batch == 0:
            batch, meets_targets, limited = 1, False, "latency_target_unreachable"
        else:
            over = point(batch + 1)
            limited = "tpot" if tpot_s is not None and over.tpot_s * f99 > tpot_s else "ttft"
    pt = point(batch)
    util = cal.SERVER_MAX_UTILIZATION if targets else 1.0
    per_replica = pt.output_tokens_per_s_per_gpu * pt.gpus * util
    est = InferenceEstimate(
        output_tokens_per_s_per_gpu=per_replica / pt.gpus,
        batch=batch,
        ttft_s=pt.ttft_s * f99,
        tpot_s=pt.tpot_s * f99,
        replica_gpus=pt.gpus,
        tp=tp,
        ep=ep,
        output_tokens_per_s_per_replica=per_replica,
        requests_per_s_per_replica=per_replica / osl,
        max_batch_kv=kv_max,
        limited_by=limited,
        meets_targets=meets_targets,
        precision=p.value,
        max_seqs=max_seqs,
        runtime="torch_flow",
        provenance="measured",
        provenance_detail=pt.describe()
        + (
            f"; p99 = {cal.P99_OVER_MEAN_LATENCY:g} x mean and {util:.0%} utilisation assumed"
            if targets
            else ""
        ),
    )
    return est, pt


def _tp_options(shape: ModelShape, spec: HardwareSpec, ep: int) -> list[int]:
    out, t = [], 1
    while t * ep <= min(spec.domain_gpus, 8):  # aiconfigurator's tables stop at 8-way TP
        if shape.heads % t == 0:
            out.append(t)
        t *= 2
    return out


def estimate_inference_measured(
    model: str,
    hardware: str,
    precision: Precision | str,
    *,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    tp: int | None = None,
    ep: int = 1,
    engine: str = "trtllm",
    model_shape: ModelShape | None = None,
    hardware_spec: HardwareSpec | None = None,
    max_seqs: int = MAX_BATCH,
) -> InferenceEstimate:
    """Best output tokens/s per GPU of one replica that meets the latency targets, measured.

    Same contract as :func:`~sim.perf.inference.estimate_inference` (``tp`` None tries every
    tensor-parallel width up to 8 that divides the heads and keeps the best tokens/s per GPU;
    without targets the KV-limited maximum; the batch at most ``max_seqs``, the engine's cap on
    sequences in flight, a scenario's ``serving.max_seqs``: ``limited_by`` is ``max_seqs`` when
    the KV cache would hold more), but every figure comes from aiconfigurator at the batch
    found (it measures any batch, so the cap is honoured, not approximated). ``model`` and
    ``hardware`` are catalog names; pass the shape and spec the caller resolved to refuse an
    inline variant under a catalog name. Disaggregated prefill is not covered (use the analytic
    model).
    """
    p = to_precision(precision)
    shape, spec = _check_catalog_entries(model, hardware, model_shape, hardware_spec)
    peak_flops(spec, p)  # a part without the format: PerfError in the catalog's words
    if input_tokens < 1 or output_tokens < 1 or reasoning_tokens < 0:
        raise PerfError(
            f"token lengths must be positive (input {input_tokens}, output {output_tokens},"
            f" reasoning {reasoning_tokens})"
        )
    if not 0.0 <= prompt_cache_hit < 1.0:
        raise PerfError(f"prompt-cache hit rate must be in [0, 1) (got {prompt_cache_hit})")
    if max_seqs < 1:
        raise PerfError(f"max_seqs must be at least 1 (got {max_seqs})")
    osl = output_tokens + reasoning_tokens
    prefix = round(input_tokens * prompt_cache_hit)
    tps = [tp] if tp is not None else _tp_options(shape, spec, ep)
    best: InferenceEstimate | None = None
    last_error: PerfError | None = None  # the widest TP's reason is the most telling
    for t in tps:
        if t * ep > spec.domain_gpus:
            raise PerfError(
                f"TP{t} x EP{ep} = {t * ep} GPUs exceeds the {spec.domain_gpus}-GPU scale-up"
                f" domain of {spec.display_name}"
            )
        try:
            est, _ = _for_tp(
                model,
                hardware,
                p,
                t,
                ep,
                input_tokens,
                osl,
                prefix,
                engine,
                ttft_s,
                tpot_s,
                int(max_seqs),
            )
        except PerfError as exc:
            last_error = exc
            continue
        if best is None or _better(est, best):
            best = est
    if best is None:
        raise last_error or PerfError(f"no tensor-parallel width to try for EP{ep}")
    return best


def _better(a: InferenceEstimate, b: InferenceEstimate) -> bool:
    if a.meets_targets != b.meets_targets:
        return a.meets_targets
    return a.output_tokens_per_s_per_gpu > b.output_tokens_per_s_per_gpu * (1 + 1e-9)


def analytic_at_grid_point(pt: dict[str, Any]) -> InferenceEstimate | None:
    """The analytic model at a measured-reference grid point (catalog ``model`` and
    ``hardware``, ``precision``, ``input_tokens``, ``output_tokens``, ``tp``, ``batch``), at
    the same batch and TP as the reference and in the runtime the reference measured
    (``torch_flow``: each quantized linear layer quantizes its input in a kernel of its own,
    docs/performance-model.md "Serving runtime"); None where it does not fit. Shared by
    ``benchmarks/measured_reference.py`` and the grid test."""
    try:
        curve = inference_curve(
            get_model(pt["model"]),
            catalog()[pt["hardware"]],
            pt["precision"],
            input_tokens=pt["input_tokens"],
            output_tokens=pt["output_tokens"],
            tp=pt["tp"],
            batches=[pt["batch"]],
            runtime="torch_flow",
        )
    except PerfError:
        return None
    return curve[0] if curve else None


# --- the GEMM kernel alone (catalog efficiency.gemm_kernel) ----------------------------------
#: aiconfigurator's GEMM dtypes and the bytes per element of the quantized activations they
#: write (NVFP4: 4 bits plus one FP8 scale per 16 values)
_QUANT_DTYPES = {Precision.FP8: ("fp8", 1.0), Precision.FP4: ("nvfp4", 0.5625)}
_TRTLLM_TABLES = "1.3.0rc20"  # the TensorRT-LLM version the catalog's efficiencies come from


@dataclass(frozen=True)
class GemmKernelFit:
    """One part and precision: the large-GEMM ceiling with and without the quantize op."""

    hardware: str
    precision: str
    with_quantize: float  # median over m, n, k >= 8,192 of FLOPs / peak / latency (catalog gemm)
    kernel_alone: float  # the same less the quantize op (catalog gemm_kernel)
    quantize_fixed_s: float  # gemm_latency_s[precision] - gemm_latency_s[bf16]
    quantize_ops_s: float  # S123's standalone FP8 quantize ops at a few rows (k = 8,192)


def _aic_table(system: str, rel: str) -> Any:
    import glob
    from importlib import resources

    import pandas as pd

    root = resources.files("aiconfigurator_core") / "systems" / "data" / system
    paths = glob.glob(str(root / rel))
    if len(paths) != 1:
        raise PerfError(f"aiconfigurator has no table {rel} for {system}")
    return pd.read_parquet(paths[0])


def gemm_kernel_fit(hardware: str) -> list[GemmKernelFit]:
    """The catalog's ``efficiency.gemm_kernel`` of ``hardware``, derived from aiconfigurator's
    GEMM tables (catalog source S123, TensorRT-LLM 1.3.0rc20).

    Its collector times an FP8/NVFP4 GEMM as TensorRT-LLM's PyTorch ``Linear`` on a BF16 input in
    a CUDA graph: a quantize kernel, then the GEMM (``kernel_source: torch_flow``). Per measured
    GEMM with m, n, k >= 8,192 (the set of ``efficiency.gemm``) the quantize op is taken out:
    its fixed time (this precision's ``gemm_latency_s`` minus BF16's, catalog) and its bytes
    (BF16 read plus the quantized write, ``m k (2 + b)``, at ``HBM x efficiency.hbm``); the
    median of FLOPs / peak over what is left is the kernel-alone ceiling. S123's own timing of
    the standalone FP8 quantize ops (``compute_scale`` + ``scale_matrix`` at m <= 16, k = 8,192)
    is returned as a check of the fixed part. Raises PerfError where aiconfigurator is missing
    or does not cover the part.
    """
    import numpy as np

    system = _system(hardware)
    _api()  # a clear error if aiconfigurator is not installed
    hw = catalog()[hardware]
    eff = hw.efficiency
    g = _aic_table(system, f"gemm/trtllm/{_TRTLLM_TABLES}/gemm_perf.parquet")
    g = g[(g.kernel_source == "torch_flow") & (g.m >= 8192) & (g.n >= 8192) & (g.k >= 8192)]
    ops = 0.0
    for op in ("computescale_perf", "scale_matrix_perf"):
        q = _aic_table(system, f"quantize/trtllm/{_TRTLLM_TABLES}/{op}.parquet")
        q = q[(q.quant_dtype == "fp8") & (q.k == 8192) & (q.m <= 16)]
        ops += float(q.latency.median()) * 1e-3
    out = []
    for p, (dtype, qbytes) in _QUANT_DTYPES.items():
        if p not in hw.peak_flops:
            continue
        rows = g[g.gemm_dtype == dtype]
        lat = rows.latency.to_numpy(dtype=float) * 1e-3
        m, n, k = (rows[c].to_numpy(dtype=float) for c in ("m", "n", "k"))
        fixed = eff.gemm_latency_at(p) - eff.gemm_latency_at(Precision.BF16)
        moved = m * k * (2.0 + qbytes) / (hw.hbm_bandwidth_bytes_per_s * eff.hbm)
        flops = 2.0 * m * n * k / hw.peak(p)
        out.append(
            GemmKernelFit(
                hardware=hardware,
                precision=p.value,
                with_quantize=float(np.median(flops / lat)),
                kernel_alone=float(np.median(flops / (lat - fixed - moved))),
                quantize_fixed_s=fixed,
                quantize_ops_s=ops,
            )
        )
    return out
