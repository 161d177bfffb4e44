"""Checking set: published Blackwell serving figures the model was never fitted on.

Nothing in ``sim/perf/calibration.py`` or the catalog's ``efficiency`` was chosen to match
these numbers: the efficiencies are per-operation measurements (catalog [S123], [S124]) and
the constants were fitted on Hopper (docs/performance-model.md, "Fitting and checking sets").
Tolerance 15% (issue #11). Inputs as C.1: Llama 2 70B, MLPerf OpenOrca mean input 294 and
output 274 tokens, FP4 (NVFP4) weights, FP8 KV cache, TensorRT-LLM (KV reserved per request).

The serving runtime is ``fused`` (the default): NVIDIA's MLPerf submissions run TensorRT-LLM
with the activations' quantization fused into the producing kernels, not the PyTorch flow
aiconfigurator times op by op. Caveat, stated in the docs: the runtime option was introduced
after these rows missed in the ``torch_flow`` form (-11% to -20%), so they check a model whose
form was chosen with them in view; its two inputs (the BF16 kernel's fixed time and the
kernel-alone ceiling) come from S123's tables by a rule, not from these figures.
"""

from __future__ import annotations

import pytest

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import estimate_inference

ROWS = [
    # hardware, TP (None: best), server?, published tokens/s per GPU, source
    # MLPerf Inference v4.1 closed, NVIDIA 1x B200 (preview), Llama 2 70B, FP4
    ("b200_hgx", 1, False, 11264.0, "MLPerf Inference v4.1, 1x B200 offline"),
    ("b200_hgx", 1, True, 10755.0, "MLPerf Inference v4.1, 1x B200 server"),
    # Azure ND GB200 v6, one NVL72 rack, unverified MLPerf v4.1 run: 865,000 tok/s / 72
    ("gb200_nvl72", None, False, 865000.0 / 72, "Azure ND GB200 v6, offline"),
    # Azure ND GB300 v6, one NVL72 rack, unverified MLPerf v5.1 run (Signal65): 1,100,948 / 72
    ("gb300_nvl72", None, False, 1100948.3 / 72, "Azure ND GB300 v6, offline"),
]


def _predict(hw: str, tp: int | None, server: bool, runtime: str = "fused") -> float:
    return estimate_inference(
        get_model("llama2-70b"),
        catalog()[hw],
        "fp4",
        input_tokens=294,
        output_tokens=274,
        ttft_s=2.0 if server else None,
        tpot_s=0.2 if server else None,
        tp=tp,
        runtime=runtime,
    ).output_tokens_per_s_per_gpu


@pytest.mark.parametrize(("hw", "tp", "server", "published", "what"), ROWS)
def test_blackwell_llama2_70b_fp4(
    hw: str, tp: int | None, server: bool, published: float, what: str
) -> None:
    """The default serving runtime, ``fused`` (TensorRT-LLM as NVIDIA runs it in MLPerf): -7.5%,
    -12.8%, -1.5%, -7.1%."""
    assert _predict(hw, tp, server) == pytest.approx(published, rel=0.15), what


@pytest.mark.parametrize(("hw", "tp", "server", "published", "what"), ROWS)
def test_torch_flow_runtime_pays_the_quantize_ops(
    hw: str, tp: int | None, server: bool, published: float, what: str
) -> None:
    """In aiconfigurator's measurement flow (a quantize kernel per FP4 layer) the same rows come
    out 3-10% lower than fused (-15.2%, -20.2%, -10.9%, -15.5% of the published figures): the
    quantize ops' fixed time and bytes at MLPerf's ~1,300-2,300 sequences per iteration."""
    fused, flow = _predict(hw, tp, server), _predict(hw, tp, server, "torch_flow")
    assert 0.03 < 1.0 - flow / fused < 0.10, (what, flow / published - 1.0)


def test_gb300_over_gb200_from_specs_and_measured_efficiency() -> None:
    """GB300's 1.5x FP4 peak buys only 1.27x published (Azure): its FP4 GEMMs reach a lower share
    of their peak (0.33 against 0.40, [S123]). The ratio comes out within 10%."""
    ratio = _predict("gb300_nvl72", None, False) / _predict("gb200_nvl72", None, False)
    assert ratio == pytest.approx(1100948.3 / 865000.0, rel=0.10)
