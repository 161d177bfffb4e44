"""Published results the performance model must reproduce (shared/reference/validation.md).

Every case is built from its stated inputs only; the outputs come out of the model. All cases
share the constants in ``sim/perf/calibration.py``; nothing here is tuned per case.
"""

from __future__ import annotations

import pytest

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import (
    InferenceEstimate,
    TrainingEstimate,
    TrainingLayout,
    default_vp,
    estimate_inference,
    estimate_training,
)

H100 = catalog()["h100_sxm"]
H200 = catalog()["h200_sxm"]


# --- A.1 Llama 3 405B on 8K/16K H100 (Meta, arXiv:2407.21783 Table 4) -----------------------
# Inputs: model shape, TP/CP/PP/DP, sequence, batch per DP group, BF16, FSDP that shards
# optimizer state and gradients but not weights (zero_stage=2). The interleaving depth V is not
# published; the model's default (about two layers per chunk) is used.
A1_ROWS = [
    # gpus, tp, cp, pp, dp, seq, batch per DP, TFLOP/s per GPU, MFU
    (8192, 8, 1, 16, 64, 8192, 32, 430.0, 0.43),
    (16384, 8, 1, 16, 128, 8192, 16, 400.0, 0.41),
    (16384, 8, 16, 16, 8, 131072, 16, 380.0, 0.38),
]


def _a1(gpus: int, tp: int, cp: int, pp: int, dp: int, seq: int, per_dp: int) -> TrainingEstimate:
    model = get_model("llama3.1-405b")
    layout = TrainingLayout(tp=tp, pp=pp, vp=default_vp(model, pp), cp=cp, dp=dp, zero_stage=2)
    return estimate_training(
        model, H100, gpus, "bf16", seq_len=seq, global_batch=per_dp * dp, layout=layout
    )


@pytest.mark.parametrize(
    ("gpus", "tp", "cp", "pp", "dp", "seq", "per_dp", "tflops", "mfu"), A1_ROWS
)
def test_a1_llama3_405b_table4(
    gpus: int, tp: int, cp: int, pp: int, dp: int, seq: int, per_dp: int, tflops: float, mfu: float
) -> None:
    est = _a1(gpus, tp, cp, pp, dp, seq, per_dp)
    assert est.model_tflops_per_gpu == pytest.approx(tflops, rel=0.10)
    assert est.mfu == pytest.approx(mfu, rel=0.10)


def test_a1_mfu_drops_when_batch_per_dp_halves() -> None:
    """43% at 8K GPUs -> 41% at 16K: half the micro-batches per pipeline, bigger bubble."""
    eight_k = _a1(*A1_ROWS[0][:7])
    sixteen_k = _a1(*A1_ROWS[1][:7])
    assert eight_k.mfu > sixteen_k.mfu
    assert sixteen_k.breakdown["pp_bubble_s"] / sixteen_k.step_time_s > (
        eight_k.breakdown["pp_bubble_s"] / eight_k.step_time_s
    )


# --- A.2 MLPerf Training v5.0 Llama 3.1 405B, FP8, TP8 PP8 VP8 CP2 (NVIDIA Eos-DFW) -----------
A2_ROWS = [
    # gpus, dp, global batch (sequences), median step (s)
    (8192, 64, 1536, 5.18),
    (2048, 16, 1152, 14.21),
    (512, 4, 1152, 55.10),
]


def _a2(gpus: int, dp: int, gb: int) -> TrainingEstimate:
    layout = TrainingLayout(tp=8, pp=8, vp=8, cp=2, dp=dp, microbatch=1)
    return estimate_training(
        get_model("llama3.1-405b"), H100, gpus, "fp8", seq_len=8192, global_batch=gb, layout=layout
    )


@pytest.mark.parametrize(("gpus", "dp", "gb", "step_s"), A2_ROWS)
def test_a2_mlperf_llama31_405b_step_time(gpus: int, dp: int, gb: int, step_s: float) -> None:
    assert _a2(gpus, dp, gb).step_time_s == pytest.approx(step_s, rel=0.10)


def test_a2_per_gpu_throughput_falls_with_scale() -> None:
    per_gpu = [_a2(g, dp, gb).tokens_per_s_per_gpu for g, dp, gb, _ in reversed(A2_ROWS)]
    assert per_gpu[0] > per_gpu[1] > per_gpu[2]  # 512 > 2,048 > 8,192 GPUs


# --- A.3 MLPerf Training v4.0 GPT-3 175B, FP8, seq 2,048 (NVIDIA Eos) -----------------------
A3_ROWS = [
    # gpus, tp, pp, vp, micro-batch, global batch, tokens trained, time-to-train (min)
    (11616, 4, 6, 8, 1, 2904, 1.231e9, 3.44),
    (10752, 4, 6, 8, 1, 2688, 1.211e9, 3.71),
    (512, 4, 8, 4, 2, 2304, 1.194e9, 50.73),
]


@pytest.mark.parametrize(("gpus", "tp", "pp", "vp", "mbs", "gb", "tokens", "minutes"), A3_ROWS)
def test_a3_mlperf_gpt3_time_to_train(
    gpus: int, tp: int, pp: int, vp: int, mbs: int, gb: int, tokens: float, minutes: float
) -> None:
    # The row for 10,752 GPUs gives no VP; the default rule gives the 11,616-GPU row's VP8.
    model = get_model("gpt3-175b")
    assert default_vp(model, pp) == vp
    layout = TrainingLayout(tp=tp, pp=pp, vp=vp, dp=gpus // (tp * pp), microbatch=mbs)
    est = estimate_training(model, H100, gpus, "fp8", seq_len=2048, global_batch=gb, layout=layout)
    assert tokens / est.tokens_per_s / 60.0 == pytest.approx(minutes, rel=0.15)


# --- C.1 MLPerf Inference v4.1 Llama 2 70B, FP8, 8 GPUs ---------------------------------------
# Mean output 274 tokens per sample (validation.md). The mean input of the MLPerf OpenOrca set
# (294 tokens, max 1,024; MLCommons llama2-70b reference) is not in validation.md; it is the
# dataset's property, not a fitted value.
C1_INPUT_TOKENS = 294
C1_OUTPUT_TOKENS = 274
C1_ROWS = [
    # hardware, offline tokens/s per GPU, server tokens/s per GPU
    ("h100_sxm", 3066.0, 2701.0),
    ("h200_sxm", 3913.0, 3654.0),
]


def _c1(hw_name: str, server: bool) -> InferenceEstimate:
    return estimate_inference(
        get_model("llama2-70b"),
        catalog()[hw_name],
        "fp8",
        input_tokens=C1_INPUT_TOKENS,
        output_tokens=C1_OUTPUT_TOKENS,
        ttft_s=2.0 if server else None,
        tpot_s=0.2 if server else None,
    )


@pytest.mark.parametrize(("hw_name", "offline", "server"), C1_ROWS)
def test_c1_llama2_70b_offline(hw_name: str, offline: float, server: float) -> None:
    assert _c1(hw_name, False).output_tokens_per_s_per_gpu == pytest.approx(offline, rel=0.15)


@pytest.mark.parametrize(("hw_name", "offline", "server"), C1_ROWS)
def test_c1_llama2_70b_server(hw_name: str, offline: float, server: float) -> None:
    est = _c1(hw_name, True)
    assert est.output_tokens_per_s_per_gpu == pytest.approx(server, rel=0.20)
    assert est.ttft_s <= 2.0
    assert est.tpot_s <= 0.2


def test_c1_h200_over_h100_ratio_from_specs() -> None:
    ratio = (
        _c1("h200_sxm", False).output_tokens_per_s_per_gpu
        / _c1("h100_sxm", False).output_tokens_per_s_per_gpu
    )
    assert ratio == pytest.approx(31303 / 24525, rel=0.10)  # published 1.28
