"""The fluid plan and the request level use the same batch cap, iteration terms and prefill work.

Three inconsistencies between the two levels (issue 12, "fluid versus request-level agreement"):
the fluid batch ignored ``serving.max_seqs`` (a CPX-fed DeepSeek-R1 replica planned 2,471
sequences where the request level runs at most 1,024); the request level's iterations had no
decode-attention kernel cost (fixed and per sequence) while the perf model's had; and the
prefill pool was sized at the mean prompt's prefill time, not the mean prefill time over the
lengths the request level draws (attention is quadratic in the prompt).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sim.build import Plan
from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.config.schema import ServingEngineConfig
from sim.perf import estimate_inference, inference_curve, mix_domain, prefill_costs
from sim.perf.inference import DEFAULT_MAX_SEQS, prompt_moments
from sim.serving.simulator import EngineOptions
from sim.serving.steps import decode_iteration_s, step_model
from sim.serving.workload import AZURE_CONVERSATION_INPUT_CV, lognormal_lengths

R1 = get_model("deepseek-r1")
CPX = catalog()["vr200_nvl144_cpx"]


def test_one_default_cap_on_sequences_in_flight() -> None:
    assert ServingEngineConfig().max_seqs == DEFAULT_MAX_SEQS == EngineOptions().max_seqs


def test_the_fluid_batch_is_capped_at_max_seqs() -> None:
    """DeepSeek-R1 1k/1k on a CPX rack: the CPX-fed replica planned 2,471 sequences."""
    kw: dict[str, Any] = dict(input_tokens=1000, output_tokens=1000, ttft_s=2.0, tpot_s=0.05)
    mix = mix_domain(R1, CPX, "fp8", gpus=72, mode="companion", tp=4, max_seqs=1024, **kw)
    est = mix.main
    assert est.batch == 1024 and est.max_seqs == 1024 and est.limited_by == "max_seqs"
    uncapped = mix_domain(R1, CPX, "fp8", gpus=72, mode="companion", tp=4, **kw).main
    assert uncapped.batch > 2000  # TensorRT-LLM's cap (4,096) does not bind here


def test_the_plan_reads_the_services_max_seqs(
    tiny_scenario: Callable[..., dict[str, Any]], plan_of: Callable[..., Plan]
) -> None:
    svc = {
        "name": "chat",
        "model": "llama3.1-8b",
        "demand": {"mean_requests_per_s": 1.0},
        "input_tokens": 500,
        "output_tokens": 200,
        "serving": {"max_seqs": 96},
    }
    (ps,) = plan_of(tiny_scenario(racks=1, inference=[svc])).services
    assert ps.estimate["batch"] == 96 and ps.estimate["max_seqs"] == 96
    assert ps.estimate["limited_by"] == "max_seqs"


@pytest.mark.parametrize("batch", [1, 64, 512])
def test_a_decode_step_is_the_perf_models_iteration(batch: int) -> None:
    """Decode-only (a prefill pool feeds the replica): the request level's iteration at the
    mean context is the fluid model's TPOT, decode-attention kernel costs included."""
    h100 = catalog()["h100_sxm"]
    model = get_model("llama2-70b")
    inp, out = 2000, 500
    (pt,) = inference_curve(
        model,
        h100,
        "fp8",
        input_tokens=inp,
        output_tokens=out,
        tp=4,
        prefill_hw=h100,
        batches=[batch],
    )
    context = batch * (inp + out / 2.0)
    step = step_model(model, h100, "fp8", tp=4, max_tokens=512)
    assert step.decode_time(batch, context) == pytest.approx(pt.tpot_s, rel=1e-9)
    one = decode_iteration_s(model, h100, "fp8", tp=4, seqs=batch, context_tokens=context)
    assert one == pytest.approx(pt.tpot_s, rel=1e-9)


def test_prompt_moments_are_those_of_the_request_levels_draw() -> None:
    rng = np.random.default_rng(3)
    for mean in (8_000, 100_000):
        lengths = np.minimum(lognormal_lengths(rng, mean, 0.53, 200_000), R1.max_seq_len - 1)
        m1, m2 = prompt_moments(mean, 0.53, R1.max_seq_len - 1)
        assert m1 == pytest.approx(lengths.mean() / mean, rel=0.01)
        assert m2 == pytest.approx((lengths.astype(float) ** 2).mean() / mean**2, rel=0.01)
    assert prompt_moments(8_000, 0.0, 131_071) == (1.0, 1.0)


def test_the_prefill_pool_is_sized_at_the_mean_prefill_time_over_the_lengths() -> None:
    """At 32k prompts of the Azure spread the pool's busy time is the mean of each request's
    prefill time (E[t(L)]), not the prefill time of a mean prompt (9% less here)."""
    inp, out = 32_000, 1000
    kw: dict[str, Any] = dict(input_tokens=inp, output_tokens=out, tp=8)
    cv = AZURE_CONVERSATION_INPUT_CV
    part = CPX.prefill_accelerator
    assert part is not None
    est = estimate_inference(R1, CPX, "fp8", prefill_hw=part, input_cv=cv, **kw)
    pool = prefill_costs(R1, CPX, "fp8", est, prefill_hw=part, input_tokens=inp, output_tokens=out)
    rng = np.random.default_rng(5)
    lengths = np.minimum(lognormal_lengths(rng, inp, cv, 200_000), R1.max_seq_len - 1)
    busy = float(np.mean(pool.service_s(lengths.astype(float), 0.0)))
    want = est.output_tokens_per_s_per_replica / out * busy * pool.devices
    assert est.prefill_gpus_per_replica == pytest.approx(want, rel=0.01)
    at_mean = pool.service_s(float(inp), 0.0) * est.output_tokens_per_s_per_replica / out
    assert est.prefill_gpus_per_replica > 1.05 * at_mean * pool.devices
    # the co-located estimate's piggybacked prefill attention carries the same spread
    one = estimate_inference(R1, CPX, "fp8", input_cv=0.0, **kw)
    spread = estimate_inference(R1, CPX, "fp8", input_cv=cv, **kw)
    assert spread.output_tokens_per_s_per_replica < one.output_tokens_per_s_per_replica


@pytest.mark.parametrize("hit", [0.0, 0.3, 0.9])
def test_prefill_attention_with_a_cache_hit_is_the_request_levels(hit: float) -> None:
    """The new tokens of a prompt attend to its cached prefix too: the fluid level's prefill
    attention per request is the request level's ``4 L w (c n + n^2 / 2)`` for ``n`` new and
    ``c`` cached tokens (it was ``1 + hit`` times less)."""
    from sim.perf import inference as inf
    from sim.perf.common import to_precision

    inp = 20_000
    r = inf._make_replica(R1, CPX, to_precision("fp8"), 8, 1, inp, 1000, 0, hit, None)
    n = inp * (1.0 - hit)
    c = inp * hit
    units = c * n + n * n / 2.0
    want = 4.0 * R1.layers * R1.attention_width * units
    assert inf._prefill_attention_flops(r, 1.0) == pytest.approx(want, rel=1e-12)
