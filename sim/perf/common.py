"""Shared pieces of the performance model: errors, precision sizes, kernel and link efficiency.

Units: FLOP, FLOP/s, bytes, bytes/s, seconds. Link rates come from the hardware catalog
(scale-up is per GPU *bidirectional*, scale-out is per GPU *unidirectional* bits/s); the
helpers here turn them into achievable one-direction bytes/s.
"""

from __future__ import annotations

from sim.catalog.hardware import HardwareSpec, Precision
from sim.perf import calibration as cal

__all__ = [
    "PerfError",
    "all_gather_time_s",
    "all_reduce_time_s",
    "all_to_all_time_s",
    "gemm_efficiency",
    "kv_bytes_per_element",
    "scaleout_bytes_per_s",
    "scaleup_bytes_per_s",
    "to_precision",
    "weight_bytes_per_param",
]


class PerfError(ValueError):
    """A layout or deployment that cannot run; the message says why, in the user's terms."""


def to_precision(precision: Precision | str) -> Precision:
    try:
        return Precision(str(precision).lower())
    except ValueError:
        raise PerfError(
            f"unknown precision {precision!r} (use one of: {', '.join(p.value for p in Precision)})"
        ) from None


def weight_bytes_per_param(precision: Precision) -> float:
    """Bytes per stored weight. FP4 (NVFP4) adds one FP8 scale per 16 values: 4.5 bits."""
    return {Precision.BF16: 2.0, Precision.FP8: 1.0, Precision.FP4: 0.5625}[precision]


def kv_bytes_per_element(precision: Precision) -> float:
    """KV cache element size: FP8 for FP8/FP4 deployments (as in TensorRT-LLM MLPerf), else BF16."""
    return 2.0 if precision is Precision.BF16 else 1.0


def peak_flops(hw: HardwareSpec, precision: Precision) -> float:
    """Dense peak of the part at ``precision``; a part without that format raises PerfError."""
    try:
        return hw.peak(precision)
    except KeyError as exc:
        raise PerfError(str(exc.args[0]) if exc.args else str(exc)) from None


def gemm_efficiency(
    work_flop: float, hw: HardwareSpec, precision: Precision, *, fused: bool = False
) -> float:
    """Achieved fraction of dense peak for matmuls of ``work_flop`` per layer pass.

    ``hw.efficiency.gemm`` (measured per part and precision, catalog) is the ceiling large GEMMs
    reach; ``w / (w + GEMM_HALF_EFFICIENCY_FLOP)`` is the loss of small ones (calibration).
    ``fused``: the ceiling of the GEMM kernel alone (``efficiency.gemm_kernel``: the serving
    runtime that fuses the activations' quantization into the producing kernel).
    """
    w = max(work_flop, 1.0)
    eff = hw.efficiency
    ceiling = eff.gemm_kernel_at(precision) if fused else eff.gemm_at(precision)
    return ceiling * w / (w + cal.GEMM_HALF_EFFICIENCY_FLOP)


def scaleup_bytes_per_s(hw: HardwareSpec) -> float:
    """Achievable one-direction NVLink bytes/s per GPU (catalog value is bidirectional)."""
    return hw.scaleup_bandwidth_bytes_per_s / 2.0 * hw.efficiency.scaleup


def scaleout_bytes_per_s(hw: HardwareSpec) -> float:
    """Achievable NIC bytes/s per GPU on a non-blocking fabric."""
    return hw.scaleout_bandwidth_bits_per_s / 8.0 * hw.efficiency.scaleout


def _link(hw: HardwareSpec, group_span_gpus: int) -> tuple[float, float]:
    """Bandwidth and latency of a collective whose ranks span ``group_span_gpus`` consecutive GPUs.

    Ranks inside one scale-up domain talk over NVLink; a group that leaves the domain is
    limited by the NIC (each GPU has its own rail, so the slowest hop is the NIC). These are
    the collectives on a non-blocking fabric, used by serving replicas; training prices its
    traffic on the job's network path (:mod:`sim.perf.network`), whose flat path gives the same.
    """
    if group_span_gpus <= hw.domain_gpus:
        return scaleup_bytes_per_s(hw), cal.SCALEUP_LATENCY_S
    return scaleout_bytes_per_s(hw), cal.SCALEOUT_LATENCY_S


def all_reduce_time_s(nbytes: float, ranks: int, hw: HardwareSpec, span_gpus: int) -> float:
    """Ring all-reduce: each GPU sends and receives 2 (n-1)/n of the buffer."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    bw, lat = _link(hw, span_gpus)
    return 2.0 * (ranks - 1) / ranks * nbytes / bw + 2.0 * lat


def all_gather_time_s(nbytes: float, ranks: int, hw: HardwareSpec, span_gpus: int) -> float:
    """All-gather or reduce-scatter of ``nbytes``: (n-1)/n of it crosses each GPU's link."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    bw, lat = _link(hw, span_gpus)
    return (ranks - 1) / ranks * nbytes / bw + lat


def all_to_all_time_s(nbytes: float, ranks: int, hw: HardwareSpec, span_gpus: int) -> float:
    """All-to-all of ``nbytes`` per GPU: (n-1)/n of it leaves the GPU."""
    return all_gather_time_s(nbytes, ranks, hw, span_gpus)
