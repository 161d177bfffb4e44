"""Iteration times of one serving replica, from the performance model (the only adapter to it).

The request-level simulator (:mod:`sim.serving.simulator`) runs continuous batching one
iteration at a time (or many pure-decode iterations in one closed-form step). Each iteration's
duration comes from the same terms as :func:`sim.perf.inference.estimate_inference`'s steady-state
iteration (``sim/perf/inference.py`` module docstring), but with the batch actually in flight
instead of the mean one:

    t = G(decode tokens + prefill tokens)            weight GEMMs (streaming + FLOPs), TP
                                                     all-reduces, expert all-to-all: tabulated
      + A(s, context tokens of the s decoding sequences)                 (decode attention)
      + attn_s_per_unit x  sum over prefill chunks of c (p + c / 2)      (causal prefill attention)
      + DECODE_STEP_OVERHEAD_S                                           (scheduler, sampling)

with ``A(s, K) = attn_fixed_s + attn_s_per_seq x s + kv_s_per_token x K`` when ``s > 0`` (the
perf model's :class:`~sim.perf.inference.DecodeAttention`: KV read at HBM rate plus each layer's
kernel's fixed and per-sequence cost) and 0 otherwise. ``G`` and ``A`` are the perf model's own
functions (``_token_time``, ``_decode_attention``), not copies of their terms.

where a chunk of ``c`` prompt tokens starts at position ``p`` (a cached prefix counts in ``p``:
its tokens are not recomputed but the new ones attend to them). ``G`` is tabulated once per
replica shape for every token count up to the per-iteration budget, so the model's MoE expert
coverage and collective latencies are exact, not linearised. The KV capacity in tokens is the
perf model's (HBM x usable fraction - workspace - weights) / KV bytes per token.

This module is the only place that touches ``sim/perf/inference.py`` internals
(``_make_replica``, ``_token_time``, ``_decode_attention``, ``_bf16_peak``), so a change of the
perf model shows up here and nowhere else in ``sim/serving``. Units: seconds, tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.catalog.hardware import HardwareSpec
from sim.catalog.models import ModelShape
from sim.perf import calibration as cal
from sim.perf import inference as _inf
from sim.perf.common import to_precision

__all__ = ["StepModel", "decode_iteration_s", "step_model"]


@dataclass(frozen=True)
class StepModel:
    """Cost of one iteration of one replica (``tp x ep`` GPUs); see the module docstring."""

    gemm_s: tuple[float, ...]  # G(tokens) for tokens = 0 .. len - 1, seconds
    kv_s_per_token: float  # decode attention: seconds per context token read
    attn_fixed_s: float  # decode attention: seconds per iteration with a decoding sequence
    attn_s_per_seq: float  # decode attention: seconds per decoding sequence
    attn_s_per_unit: float  # prefill attention: seconds per (token x position)
    overhead_s: float
    kv_capacity_tokens: int
    replica_gpus: int
    tp: int
    ep: int
    label: str

    @property
    def max_tokens(self) -> int:
        return len(self.gemm_s) - 1

    def decode_time(self, seqs: int, context_tokens: float) -> float:
        """One pure decode iteration of ``seqs`` sequences holding ``context_tokens`` in total."""
        return (
            self.gemm_s[seqs]
            + self.attn_fixed_s
            + self.attn_s_per_seq * seqs
            + self.kv_s_per_token * context_tokens
            + self.overhead_s
        )


#: Step models by shape (model, hardware, precision, TP, EP, budget, runtime), a few per process.
_CACHE: dict[tuple[str, str, str, int, int, int, str], StepModel] = {}
_CACHE_MAX = 64


def _replica(
    model: ModelShape, hw: HardwareSpec, precision: str, tp: int, ep: int, runtime: str
) -> _inf._Replica:
    # one nominal request shape: the replica's memory checks and KV capacity do not depend on it
    p = to_precision(precision)
    return _inf._make_replica(model, hw, p, tp, ep, 1, 1, 0, 0.0, None, runtime=runtime)


def _gemm_s(r: _inf._Replica, n: int) -> float:
    """G(n): weight GEMMs, TP all-reduces and expert all-to-all of an ``n``-token iteration."""
    return sum(_inf._token_time(r, float(n)))


def decode_iteration_s(
    model: ModelShape,
    hw: HardwareSpec,
    precision: str,
    *,
    tp: int,
    ep: int = 1,
    seqs: int,
    context_tokens: float,
    runtime: str = "fused",
) -> float:
    """One pure decode iteration of ``seqs`` sequences holding ``context_tokens`` in total on a
    ``tp x ep`` replica for the serving ``runtime``: :meth:`StepModel.decode_time` without
    tabulating every batch size (the per-token latency of a sequence decoded in that batch).
    Raises :class:`~sim.perf.PerfError` if the model does not fit the replica."""
    if seqs < 1:
        raise ValueError(f"a decode iteration needs a sequence, got {seqs}")
    r = _replica(model, hw, precision, int(tp), int(ep), runtime)
    attn = _inf._decode_attention(r).time(seqs, context_tokens)
    return _gemm_s(r, int(seqs)) + attn + cal.DECODE_STEP_OVERHEAD_S


def _build(
    model: ModelShape,
    hw: HardwareSpec,
    precision: str,
    tp: int,
    ep: int,
    max_tokens: int,
    runtime: str = "fused",
) -> StepModel:
    p = to_precision(precision)
    r = _replica(model, hw, precision, tp, ep, runtime)
    gemm = np.array([_gemm_s(r, n) for n in range(max_tokens + 1)], dtype=np.float64)
    dec = _inf._decode_attention(r)
    # causal attention: a token at position x costs 4 L w x FLOPs (QK^T and PV, 2 FLOPs per MAC),
    # so a chunk of c tokens from position p costs 4 L w (p c + c^2 / 2) = 4 L w x units
    attn_flops_per_unit = 4.0 * model.layers * model.attention_width
    attn_s = attn_flops_per_unit / r.gpus / (_inf._bf16_peak(hw) * hw.efficiency.attention)
    kv_tokens = int(max(0.0, r.kv_capacity_bytes) // r.kv_bytes_per_token)
    return StepModel(
        gemm_s=tuple(gemm.tolist()),
        kv_s_per_token=dec.s_per_context_token,
        attn_fixed_s=dec.fixed_s,
        attn_s_per_seq=dec.s_per_sequence,
        attn_s_per_unit=attn_s,
        overhead_s=cal.DECODE_STEP_OVERHEAD_S,
        kv_capacity_tokens=kv_tokens,
        replica_gpus=r.gpus,
        tp=tp,
        ep=ep,
        label=f"{model.display_name or 'model'} {p.value} on {hw.display_name}, TP{tp} x EP{ep}",
    )


def step_model(
    model: ModelShape,
    hw: HardwareSpec,
    precision: str,
    *,
    tp: int,
    ep: int = 1,
    max_tokens: int,
    runtime: str = "fused",
) -> StepModel:
    """The iteration-time model of a ``tp x ep`` replica for batches of up to ``max_tokens``
    tokens per iteration, for the serving ``runtime`` (:data:`sim.perf.SERVING_RUNTIMES`). Cached
    per shape. Raises :class:`~sim.perf.PerfError` if the model does not fit the replica."""
    key = (
        model.model_dump_json(),
        hw.model_dump_json(),
        str(precision),
        tp,
        ep,
        max_tokens,
        runtime,
    )
    got = _CACHE.get(key)
    if got is None:
        got = _build(model, hw, str(precision), int(tp), int(ep), int(max_tokens), runtime)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = got
    return got


def best_tp(
    model: ModelShape,
    hw: HardwareSpec,
    precision: str,
    *,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    ep: int = 1,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    runtime: str = "fused",
    kv_cache: str = "reserved",
    max_seqs: int = _inf.DEFAULT_MAX_SEQS,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
) -> int:
    """Tensor-parallel width the perf model chooses for this service (most tokens/s per GPU),
    with the engine settings and length spreads the fleet's plan uses."""
    est = _inf.estimate_inference(
        model,
        hw,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
        ep=ep,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        runtime=runtime,
        kv_cache=kv_cache,
        max_seqs=max_seqs,
        input_cv=input_cv,
        output_cv=output_cv,
    )
    return est.tp
