"""Published serving results reproduced by the request-level simulator (docs/serving.md).

What was fitted: nothing in ``sim/serving``. Its iteration times come from the performance
model, whose constants (``sim/perf/calibration.py``) were fitted by hand on validation.md A.1-A.3
and C.1 together, so the MLPerf rows below are *consistency* checks of the request level against
the data its step model was calibrated on, not independent validations. The NIM latency-load
curve (network-and-serving.md B2 [N33]) was used in no fit: it is the independent check.
Assumed inputs are named where they are used.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.serving.capacity import capacity_at_slo
from sim.serving.shape import ServiceShape
from sim.serving.simulator import EngineOptions, simulate
from sim.serving.steps import best_tp, step_model
from sim.serving.workload import Requests

# validation.md C.1: Llama 2 70B, FP8, Poisson arrivals, p99 TTFT 2 s and TPOT 200 ms, mean output
# ~274 tokens; server tokens/s per GPU. Mean input 294 (OpenOrca, as in the perf model's C.1).
# KV reserved: TensorRT-LLM's default GUARANTEED_NO_EVICT (B1 [N26]). Length spread: the Azure
# conversation CVs (an assumption: OpenOrca's spread is not in the reference).
MLPERF_SERVER = {"h100_sxm": 2701.0, "h200_sxm": 3654.0}


def _mlperf(hw: str) -> float:
    model, spec = get_model("llama2-70b"), catalog()[hw]
    tp = best_tp(model, spec, "fp8", input_tokens=294, output_tokens=274, ttft_s=2.0, tpot_s=0.2)
    shape = ServiceShape(
        model=model,
        hw=spec,
        precision="fp8",
        tp=tp,
        input_tokens=294,
        output_tokens=274,
        options=EngineOptions(kv_cache="reserved"),
    )
    cap = capacity_at_slo(shape, ttft_s=2.0, tpot_s=0.2, requests=10_000)
    return cap.output_tokens_per_s_per_gpu


def test_mlperf_server_hopper_within_20_percent() -> None:
    for hw, published in MLPERF_SERVER.items():
        assert _mlperf(hw) == pytest.approx(published, rel=0.20), hw


def test_mlperf_server_h200_over_h100_ratio() -> None:
    """1.26 against the published 1.35 (-7%; H100 2,967 +10%, H200 3,739 +2%); 1.22 before the
    step model took the perf model's decode-attention kernel costs. At the
    datasheets' 80 / 141 GB of HBM (before S125's nvidia-smi figures) 1.25; at that memory 1.22
    with probes shorter than an hour of arrivals, 1.20 before issue #11's measured efficiencies
    and KV reservation, when this was an xfail."""
    ratio = _mlperf("h200_sxm") / _mlperf("h100_sxm")
    assert ratio == pytest.approx(3654.0 / 2701.0, rel=0.10)


# network-and-serving.md B2 [N33]: Llama-3.3-70B-Instruct, NIM 1.8.0, 2x H100 80GB, FP8, TP2,
# 5,000 input / 500 output tokens, fixed concurrency: (TTFT ms, ITL ms, total output tok/s).
NIM = {
    1: (407, 18.6, 52),
    5: (547, 21.8, 218),
    25: (689, 38.8, 623),
    50: (835, 59.7, 814),
    100: (7996, 92.9, 917),
    150: (34794, 92.9, 921),
    200: (61680, 93.1, 921),
    250: (88605, 93.2, 920),
}


def _closed_loop(concurrency: int, calls: int = 30) -> Requests:
    """``concurrency`` clients, each sending its next request when the previous one ends."""
    n = concurrency * calls
    idx = np.arange(n)
    first = idx % calls == 0
    return Requests(
        arrival_s=np.where(first, 0.0, np.nan),
        prompt_tokens=np.full(n, 5000),
        output_tokens=np.full(n, 500),
        cached_tokens=np.zeros(n, dtype=np.int64),
        parent=np.where(first, -1, idx - 1),
        think_s=np.zeros(n),
        session=idx // calls,
    )


def _check_nim(kv: str, concurrencies: tuple[int, ...]) -> None:
    """Tolerances: ITL within 12% and throughput within 10% at every concurrency; mean TTFT
    within 35% up to the knee (50) and 25% past it (150-250, where TTFT is queueing). At 100,
    on the knee, TTFT swings with the exact point of saturation and is not checked. NIM's engine
    and its KV mode are not published; both modes are checked. The serving runtime is the
    default, ``fused`` (NIM runs TensorRT-LLM; quantization fused into the producing kernels)."""
    step = step_model(
        get_model("llama3.3-70b"), catalog()["h100_sxm"], "fp8", tp=2, max_tokens=8192
    )
    opts = EngineOptions(kv_cache=kv)
    for c in concurrencies:
        ttft_ms, itl_ms, tok_s = NIM[c]
        run = simulate(_closed_loop(c), step, opts, 1e6)
        done = np.isfinite(run.done_s)
        ttft = float(np.mean(run.first_token_s[done] - run.arrival_s[done])) * 1e3
        itl = float(np.mean((run.done_s[done] - run.first_token_s[done]) / 499.0)) * 1e3
        tput = float(run.output_tokens[done].sum() / run.done_s[done].max())
        assert itl == pytest.approx(itl_ms, rel=0.12), (c, itl)
        assert tput == pytest.approx(tok_s, rel=0.10), (c, tput)
        if c <= 50:
            assert ttft == pytest.approx(ttft_ms, rel=0.35), (c, ttft)
        elif c >= 150:
            assert ttft == pytest.approx(ttft_ms, rel=0.25), (c, ttft)


@pytest.mark.parametrize("kv", ["paged", "reserved"])
def test_nim_latency_versus_load_to_the_knee(kv: str) -> None:
    """Concurrency 1-50: ITL +4%, +3%, -2%, -4%; throughput -4% to +4% (both KV modes). In the
    ``torch_flow`` runtime (a quantize kernel per FP8 layer, as aiconfigurator measured) ITL at
    1 and 5 was +20% and +16%."""
    _check_nim(kv, (1, 5, 25, 50))


@pytest.mark.parametrize("kv", ["paged", "reserved"])
def test_nim_latency_versus_load_past_the_knee(kv: str) -> None:
    """Concurrency 100-250: ITL -2% paged / -6% reserved, throughput +3% / +6%, TTFT (queueing)
    -13% to -3%. The pool decides here: at the datasheet's "80 GB" (80e9 bytes) per H100 the
    replica held ~75 sequences and ITL was -14% / -16%; the catalog now takes the 85.52e9 bytes
    nvidia-smi reports (S125), and NIM's 920 tok/s at 93 ms implies ~86."""
    _check_nim(kv, (100, 150, 200, 250))
