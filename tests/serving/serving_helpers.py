"""A toy step model and engine options shared by the request-level simulator's tests."""

from __future__ import annotations

from sim.serving.simulator import EngineOptions
from sim.serving.steps import StepModel


def toy_step(kv_tokens: int = 100_000, max_tokens: int = 512) -> StepModel:
    """G(n) = 10 ms + 1 ms per token, 1 us per context token, no attention kernel
    cost, no prefill attention, 2 ms overhead."""
    return StepModel(
        gemm_s=tuple(0.010 + 0.001 * n for n in range(max_tokens + 1)),
        kv_s_per_token=1e-6,
        attn_fixed_s=0.0,
        attn_s_per_seq=0.0,
        attn_s_per_unit=0.0,
        overhead_s=0.002,
        kv_capacity_tokens=kv_tokens,
        replica_gpus=1,
        tp=1,
        ep=1,
        label="toy",
    )


OPTS = EngineOptions(kv_cache="reserved", max_seqs=64, max_batched_tokens=512)
