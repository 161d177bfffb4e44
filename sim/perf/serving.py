"""One entry point for a serving estimate, from either backend, with its provenance recorded.

``backend="model"`` is the analytic model (:mod:`sim.perf.inference`); ``backend="measured"``
is NVIDIA's aiconfigurator (:mod:`sim.perf.measured`, an optional dependency). Both return an
:class:`~sim.perf.inference.InferenceEstimate` whose ``provenance`` is one of:

* ``measured``: per-operation latencies measured on the part (aiconfigurator's database);
* ``fitted``: the analytic model on a part and precision its constants were fitted to
  (validation.md C.1: Llama 2 70B FP8 serving on 8x H100 and 8x H200, sim/perf/calibration.py);
* ``from specs``: the analytic model elsewhere: the part's measured efficiencies (catalog
  ``efficiency``, per precision) and the Hopper-fitted constants applied to its sourced catalog
  specs (peak FLOP/s, HBM size and bandwidth, NVLink);
* ``assumption``: the analytic model where a number it uses is an assumption: a catalog value
  marked weak (hardware.yaml), including an efficiency the part has no measurement of (Rubin
  takes GB200's, docs/performance-model.md).

``provenance_detail`` says which, in words. The weakest link decides: a rule, not a judgement
per case.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from sim.catalog.hardware import HardwareSpec, Precision, PrefillAccelerator, catalog
from sim.catalog.models import ModelShape
from sim.perf.common import PerfError, to_precision
from sim.perf.inference import (
    MAX_BATCH,
    DomainMix,
    InferenceEstimate,
    estimate_inference,
    mix_domain,
    replica_slots,
)

__all__ = [
    "BACKENDS",
    "PROVENANCES",
    "ServingBackend",
    "analytic_provenance",
    "estimate_domain",
    "estimate_serving",
]

ServingBackend = Literal["model", "measured"]
BACKENDS: tuple[str, ...] = ("model", "measured")
PROVENANCES = ("measured", "fitted", "from specs", "assumption")

#: catalog parts and precisions the analytic serving constants were fitted on (validation.md C.1)
_FITTED_ON = {("h100_sxm", Precision.FP8), ("h200_sxm", Precision.FP8)}

#: catalog numbers the analytic serving estimate reads (hardware.yaml provenance keys)
_USED_KEYS = ("hbm_bytes", "hbm_bandwidth_bytes_per_s", "scaleup_bandwidth_bytes_per_s")


def _catalog_name(hw: HardwareSpec) -> str | None:
    """The catalog name of ``hw`` if it is a catalog entry unchanged, else None."""
    for name, spec in catalog().items():
        if spec == hw:
            return name
    return None


def analytic_provenance(hw: HardwareSpec, precision: Precision | str) -> tuple[str, str]:
    """(provenance, detail) of an analytic serving estimate on ``hw`` at ``precision``."""
    p = to_precision(precision)
    name = _catalog_name(hw)
    if (name, p) in _FITTED_ON:
        return "fitted", (
            f"analytic model; its constants were fitted on validation.md C.1 ({hw.display_name},"
            f" {p.value})"
        )
    eff = ["efficiency.attention", "efficiency.hbm"]
    kinds = (
        ("gemm", "gemm_stream") if p is Precision.BF16 else ("gemm", "gemm_stream", "gemm_kernel")
    )
    for k in kinds:  # the entry used: this format's, or the wider it borrows
        used = [f"efficiency.{k}.{q.value}" for q in (p, Precision.FP8, Precision.BF16)]
        eff += [u for u in used if u in hw.provenance][:1]
    keys = (*_USED_KEYS, f"peak_flops.{p.value}", "peak_flops.bf16", *eff)
    weak = sorted(k for k in keys if k in hw.provenance and hw.provenance[k].weak)
    if weak:
        return "assumption", (
            f"analytic model; catalog values marked weak for {hw.display_name}: {', '.join(weak)}"
        )
    if name is None:
        return (
            "assumption",
            f"analytic model on hardware defined in the scenario ({hw.display_name})",
        )
    return "from specs", (
        f"analytic model; the measured efficiencies and catalog specs of {hw.display_name},"
        f" constants fitted on Hopper"
    )


def estimate_serving(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision | str,
    *,
    backend: ServingBackend | str = "model",
    model_name: str | None = None,
    hardware_name: str | None = None,
    engine: str = "trtllm",
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    tp: int | None = None,
    ep: int = 1,
    prefill_hw: HardwareSpec | PrefillAccelerator | None = None,
    kv_cache: str = "reserved",
    runtime: str = "fused",
    max_seqs: int = MAX_BATCH,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
) -> InferenceEstimate:
    """A serving estimate from ``backend``, with its provenance filled in.

    ``kv_cache`` is the analytic model's KV allocation (:data:`~sim.perf.KV_CACHE_POLICIES`);
    the measured backend sizes the KV cache as its engine does (TensorRT-LLM reserves prompt +
    output per request) and does not read it. ``runtime`` is how the analytic model's engine
    runs quantized layers (:data:`~sim.perf.SERVING_RUNTIMES`); the measured backend is
    aiconfigurator's composition of its ``torch_flow`` measurements and does not read it.
    ``max_seqs`` caps the batch of either backend (the engine's sequences in flight,
    :data:`~sim.perf.inference.DEFAULT_MAX_SEQS` in a scenario). ``input_cv`` is the spread of
    prompt lengths the analytic model averages prefill work over
    (:func:`~sim.perf.inference.prompt_moments`), and ``output_cv`` that of generated lengths,
    which sizes its batch's KV cache on the lengths in flight
    (:class:`~sim.perf.inference.GenerationMix`); the measured backend reads neither.

    ``backend="measured"`` needs the catalog names (``model_name``, ``hardware_name``) and takes
    the figures from aiconfigurator; a configuration it does not cover raises
    :class:`PerfError` (nothing falls back silently to the analytic model).
    """
    if backend == "model":
        est = estimate_inference(
            model,
            hw,
            precision,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            prompt_cache_hit=prompt_cache_hit,
            ttft_s=ttft_s,
            tpot_s=tpot_s,
            tp=tp,
            ep=ep,
            prefill_hw=prefill_hw,
            kv_cache=kv_cache,
            runtime=runtime,
            max_seqs=max_seqs,
            input_cv=input_cv,
            output_cv=output_cv,
        )
        return _with_provenance(est, hw, precision, runtime)
    if backend != "measured":
        raise PerfError(f"unknown serving backend {backend!r} (use one of: {', '.join(BACKENDS)})")
    if prefill_hw is not None:
        raise PerfError(
            "disaggregated prefill is not covered by the measured reference (use backend model)"
        )
    if model_name is None or hardware_name is None:
        raise PerfError(
            "the measured reference needs catalog names for the model and the hardware"
            " (an inline model or hardware is not covered)"
        )
    from sim.perf.measured import estimate_inference_measured

    return estimate_inference_measured(
        model_name,
        hardware_name,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
        prompt_cache_hit=prompt_cache_hit,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        tp=tp,
        ep=ep,
        engine=engine,
        model_shape=model,
        hardware_spec=hw,
        max_seqs=max_seqs,
    )


def _with_provenance(
    est: InferenceEstimate, hw: HardwareSpec, precision: Precision | str, runtime: str
) -> InferenceEstimate:
    prov, detail = analytic_provenance(hw, precision)
    detail += f"; serving runtime {runtime}"
    if est.prefill_gpus_per_replica > 0 and prov in ("fitted", "from specs"):
        prov, detail = "assumption", detail + "; disaggregated prefill was not fitted"
    return replace(est, provenance=prov, provenance_detail=detail)


def estimate_domain(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision | str,
    *,
    gpus: int,
    prefill: str = "auto",
    parts: float | None = None,
    backend: ServingBackend | str = "model",
    model_name: str | None = None,
    hardware_name: str | None = None,
    engine: str = "trtllm",
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    tp: int | None = None,
    ep: int = 1,
    kv_cache: str = "reserved",
    runtime: str = "fused",
    max_seqs: int = MAX_BATCH,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
) -> DomainMix:
    """What ``gpus`` GPUs of ``hw`` serve, prefilling as ``prefill`` says
    (:func:`sim.perf.inference.mix_domain`): the one function the fleet's plan
    (``sim/build.py``) and ``aifactory estimate serve`` both call. ``auto`` is the arrangement
    with the most capacity with backend ``model``, and co-located with ``measured`` (which
    covers no disaggregation: ``companion`` or ``hybrid`` with it raise :class:`PerfError`)."""
    if backend == "measured" or prefill == "colocated":
        if backend == "measured" and prefill in ("companion", "hybrid"):
            raise PerfError(
                "disaggregated prefill is not covered by the measured reference (use backend model)"
            )
        est = estimate_serving(
            model,
            hw,
            precision,
            backend=backend,
            model_name=model_name,
            hardware_name=hardware_name,
            engine=engine,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            prompt_cache_hit=prompt_cache_hit,
            ttft_s=ttft_s,
            tpot_s=tpot_s,
            tp=tp,
            ep=ep,
            kv_cache=kv_cache,
            runtime=runtime,
            max_seqs=max_seqs,
            input_cv=input_cv,
            output_cv=output_cv,
        )
        slots = replica_slots(gpus, hw.domain_gpus, est.replica_gpus)
        return DomainMix(
            "colocated",
            est.output_tokens_per_s_per_replica * slots,
            gpus,
            0.0,
            None,
            0.0,
            est,
            "colocated",
            float(slots),
            0.0,
            0.0,
            slots,
        )
    if backend != "model":
        raise PerfError(f"unknown serving backend {backend!r} (use one of: {', '.join(BACKENDS)})")
    mix = mix_domain(
        model,
        hw,
        precision,
        gpus=gpus,
        mode=prefill,
        parts=parts,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
        prompt_cache_hit=prompt_cache_hit,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        tp=tp,
        ep=ep,
        kv_cache=kv_cache,
        runtime=runtime,
        max_seqs=max_seqs,
        input_cv=input_cv,
        output_cv=output_cv,
    )
    return replace(
        mix,
        companion=None
        if mix.companion is None
        else _with_provenance(mix.companion, hw, precision, runtime),
        gpu=None if mix.gpu is None else _with_provenance(mix.gpu, hw, precision, runtime),
    )
