"""Unit tests of the performance model's pieces (formulas, limits, errors)."""

from __future__ import annotations

from typing import Any

import pytest

from sim.catalog.hardware import Precision, catalog
from sim.catalog.models import get_model
from sim.perf import (
    PerfError,
    TrainingLayout,
    default_global_batch,
    default_vp,
    estimate_inference,
    estimate_training,
    inference_curve,
    model_flops_per_token,
)
from sim.perf.common import all_reduce_time_s, gemm_efficiency

H100 = catalog()["h100_sxm"]


def test_gemm_efficiency_grows_with_work_and_saturates() -> None:
    small = gemm_efficiency(1e9, H100, Precision.BF16)
    big = gemm_efficiency(1e13, H100, Precision.BF16)
    assert 0 < small < big < H100.efficiency.gemm_at(Precision.BF16)
    assert gemm_efficiency(1e13, H100, Precision.FP8) < big  # FP8 reaches a lower share of its peak


def test_gemm_ceiling_is_the_parts_measured_one() -> None:
    """Blackwell's measured large-GEMM efficiency is below Hopper's at every precision (catalog
    [S123]); FP4 reaches the lowest share of its peak; a format a table lacks borrows a wider
    one's."""
    cat = catalog()
    b200, gb200 = cat["b200_hgx"].efficiency, cat["gb200_nvl72"].efficiency
    for p in (Precision.BF16, Precision.FP8):
        assert b200.gemm_at(p) < H100.efficiency.gemm_at(p)
    assert (
        gb200.gemm_at(Precision.FP4) < gb200.gemm_at(Precision.FP8) < gb200.gemm_at(Precision.BF16)
    )
    assert 0.35 <= gb200.gemm_at(Precision.FP4) <= 0.46  # issue #11: 35-46% of FP4 peak
    assert 0.45 <= gb200.gemm_at(Precision.FP8) <= 0.62  # and 45-62% of FP8 peak
    assert H100.efficiency.gemm_at(Precision.FP4) == H100.efficiency.gemm_at(Precision.FP8)


def test_collectives_use_nvlink_inside_domain_and_nic_outside() -> None:
    inside = all_reduce_time_s(1e9, 8, H100, 8)
    outside = all_reduce_time_s(1e9, 8, H100, 64)
    assert outside > inside * 5  # 50 GB/s NIC vs 450 GB/s NVLink per direction
    assert all_reduce_time_s(1e9, 1, H100, 1) == 0.0


def test_flops_per_token_is_6n_plus_causal_attention() -> None:
    m = get_model("llama3.1-8b")
    assert model_flops_per_token(m, 8192) == pytest.approx(
        6 * m.matmul_params_active + 6 * m.layers * 8192 * m.attention_width
    )


def test_default_vp_matches_published_configs() -> None:
    assert default_vp(get_model("llama3.1-405b"), 8) == 8  # MLPerf v5.0
    assert default_vp(get_model("gpt3-175b"), 6) == 8  # MLPerf v4.0, 11,616 GPUs
    assert default_vp(get_model("gpt3-175b"), 8) == 4  # MLPerf v4.0, 512 GPUs
    assert default_vp(get_model("llama3.1-8b"), 1) == 1


def test_default_global_batch() -> None:
    assert default_global_batch(get_model("llama3.1-405b"), 16384, 8192) == 2048  # 16M tokens
    assert default_global_batch(get_model("llama3.1-8b"), 64, 8192) == 512  # 4M tokens


def test_breakdown_adds_up() -> None:
    est = estimate_training(
        get_model("llama3.1-70b"),
        H100,
        1024,
        "bf16",
        global_batch=512,
        layout=TrainingLayout(tp=8, pp=4, vp=5, dp=32),
    )
    parts = [v for k, v in est.breakdown.items() if k.endswith("_s") and "total" not in k]
    assert sum(parts) == pytest.approx(est.step_time_s, rel=1e-9)
    assert 0 < est.mfu < 1
    assert est.tokens_per_s == pytest.approx(est.tokens_per_s_per_gpu * 1024)


def test_layout_errors_are_clear() -> None:
    m = get_model("llama3.1-405b")
    with pytest.raises(PerfError, match=r"= 24 GPUs, but the job has 16"):
        estimate_training(m, H100, 16, "bf16", layout=TrainingLayout(tp=8, dp=3))
    with pytest.raises(PerfError, match=r"does not fit: .* GB per GPU needed"):
        estimate_training(m, H100, 16, "bf16", global_batch=16, layout=TrainingLayout(tp=8, dp=2))
    with pytest.raises(PerfError, match="no fp4 rate"):
        estimate_training(m, H100, 16, "fp4", layout=TrainingLayout(tp=8, dp=2))
    with pytest.raises(PerfError, match="EP2 given for a dense model"):
        estimate_training(m, H100, 16, "bf16", layout=TrainingLayout(tp=8, dp=2, ep=2))


def test_automatic_layout_is_recorded() -> None:
    """(Its speed is measured by benchmarks/estimate.py, not asserted here.)"""
    est = estimate_training(get_model("llama3.1-405b"), H100, 16384, "bf16")
    assert est.layout_chosen_automatically
    assert est.layout.gpus == 16384
    assert 0.3 < est.mfu < 0.6


def test_moe_training_uses_expert_parallel() -> None:
    gb200 = catalog()["gb200_nvl72"]
    est = estimate_training(get_model("deepseek-v3"), gb200, 2304, "fp8", global_batch=4608)
    assert est.layout.ep > 1
    assert est.breakdown["ep_comm_exposed_s"] > 0


def test_decode_batch_limited_by_kv_and_latency() -> None:
    m = get_model("llama3.1-70b")
    offline = estimate_inference(m, H100, "fp8", input_tokens=2000, output_tokens=500, tp=4)
    tight = estimate_inference(
        m, H100, "fp8", input_tokens=2000, output_tokens=500, tp=4, tpot_s=0.03
    )
    assert offline.limited_by == "kv_cache"
    assert tight.limited_by == "tpot"
    assert tight.batch < offline.batch
    assert tight.tpot_s <= 0.03
    assert tight.output_tokens_per_s_per_gpu < offline.output_tokens_per_s_per_gpu


def test_reasoning_and_cache_hits_change_the_work() -> None:
    m = get_model("llama3.1-8b")
    base = estimate_inference(m, H100, "fp8", input_tokens=4000, output_tokens=200, tp=1)
    cached = estimate_inference(
        m, H100, "fp8", input_tokens=4000, output_tokens=200, tp=1, prompt_cache_hit=0.8
    )
    assert cached.output_tokens_per_s_per_gpu > base.output_tokens_per_s_per_gpu
    assert cached.ttft_s < base.ttft_s


def test_model_that_does_not_fit_is_rejected() -> None:
    with pytest.raises(PerfError, match=r"needs .* GB of weights"):
        estimate_inference(
            get_model("llama3.1-405b"), H100, "bf16", input_tokens=100, output_tokens=10, tp=1
        )


def test_curve_is_monotone_in_throughput_and_latency() -> None:
    curve = inference_curve(
        get_model("llama3.1-70b"), H100, "fp8", input_tokens=1000, output_tokens=300, tp=4
    )
    assert len(curve) >= 5
    thr = [p.output_tokens_per_s_per_gpu for p in curve]
    lat = [p.tpot_s for p in curve]
    assert thr == sorted(thr)
    assert lat == sorted(lat)


def test_disaggregated_prefill_on_companion_accelerator() -> None:
    cpx = catalog()["vr200_nvl144_cpx"]
    assert cpx.prefill_accelerator is not None
    m = get_model("llama3.1-70b")
    est = estimate_inference(
        m,
        cpx,
        "fp8",
        input_tokens=32000,
        output_tokens=1000,
        tp=8,
        prefill_hw=cpx.prefill_accelerator,
    )
    assert est.prefill_gpus_per_replica > 0
    assert est.output_tokens_per_s_per_gpu > 0


def test_companion_prefill_beats_colocated_at_long_context() -> None:
    """Issue 12: DeepSeek-R1 at 100k input on a VR NVL144 CPX rack. A prefill instance spans the
    replica's share of the rack's CPX parts (2 per GPU), not one part, so TTFT is shorter than
    co-located prefill on the replica's GPUs (it was ~10-19 s against <1 s), and decode without
    piggybacked prefill has the shorter TPOT (NVIDIA's claim for CPX: long-context prefill)."""
    from sim.perf.inference import _make_replica, _prefill_width

    cpx = catalog()["vr200_nvl144_cpx"]
    assert cpx.prefill_accelerator is not None
    m = get_model("deepseek-r1")
    kw: dict[str, Any] = dict(input_tokens=100_000, output_tokens=1000, tp=16)
    co = estimate_inference(m, cpx, "fp8", **kw)
    dis = estimate_inference(m, cpx, "fp8", prefill_hw=cpx.prefill_accelerator, **kw)
    assert dis.ttft_s < co.ttft_s
    assert dis.tpot_s < co.tpot_s
    r = _make_replica(m, cpx, Precision.FP8, 16, 1, 100_000, 1000, 0, 0.0, cpx.prefill_accelerator)
    assert _prefill_width(r) == 32  # 16 GPUs x 144 CPX / 72 GPUs


def test_attention_runs_at_the_parts_bf16_rate() -> None:
    """FP4 prefill attention runs at the BF16 entry (GB300: 2.5 PF, a sixth of its 15 PF FP4)."""
    from sim.perf.inference import _bf16_peak

    cat = catalog()
    assert _bf16_peak(cat["gb300_nvl72"]) == pytest.approx(2.5e15)
    assert _bf16_peak(cat["gb200_nvl72"]) == pytest.approx(cat["gb200_nvl72"].peak("fp4") / 4)
    cpx = cat["vr200_nvl144_cpx"].prefill_accelerator
    assert cpx is not None and Precision.BF16 not in cpx.peak_flops
    assert _bf16_peak(cpx) == pytest.approx(cpx.peak_flops[Precision.FP4] / 4)  # the fallback
