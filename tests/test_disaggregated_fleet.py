"""Disaggregated prefill in the fleet (issue 12): a service on a rack with a companion prefill
accelerator (Vera Rubin NVL144 CPX) prefills there unless told otherwise, and at long context
it serves more per rack than co-located prefill would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.build import Plan
from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.config.loader import ScenarioError
from sim.perf import mix_domain
from sim.report.html import render_report


def _service(prefill: str) -> dict[str, Any]:
    return {
        "name": "r1-long",
        "model": "deepseek-r1",
        "demand": {"mean_requests_per_s": 0.5},
        "input_tokens": 100_000,
        "output_tokens": 1000,
        "ttft": "2 s",
        "tpot": "50 ms",
        "prefill": prefill,
    }


def test_auto_takes_the_hybrid_at_long_context(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    """DeepSeek-R1 at 100k input: the rack's CPX prefill for 0.65 of its replicas; auto adds
    GPU prefill for the rest (hybrid) and serves more than companion alone, which serves more
    than co-located (NVIDIA's claim for CPX: long context), as the fleet plans it."""
    data = tiny_scenario(
        hardware="vr200_nvl144_cpx", racks=2, grid_power="2 MW", inference=[_service("auto")]
    )
    (svc,) = plan_of(data).services
    assert svc.prefill == "hybrid"
    assert svc.estimate["ttft_s"] <= 2.0
    # the plan's capacity is mix_domain's (tests/perf/test_domain_mix.py: hybrid > 1.3 x
    # companion > 2.6 x co-located here)
    kw: dict[str, Any] = dict(input_tokens=100_000, output_tokens=1000, ttft_s=2.0, tpot_s=0.05)
    # the service's serving defaults: vLLM's 1,024 sequences, the Azure spreads of lengths
    kw.update(max_seqs=1024, input_cv=0.53, output_cv=1.17)
    mix = {
        m: mix_domain(
            get_model("deepseek-r1"), catalog()["vr200_nvl144_cpx"], "fp8", gpus=72, mode=m, **kw
        )
        for m in ("hybrid", "companion", "colocated")
    }
    assert svc.capacity_tokens_per_s_per_domain == pytest.approx(
        mix["hybrid"].capacity_tokens_per_s, rel=1e-12
    )
    assert svc.replicas_per_domain == pytest.approx(mix["hybrid"].replicas, rel=1e-12)
    assert mix["hybrid"].capacity_tokens_per_s > 1.5 * mix["companion"].capacity_tokens_per_s
    assert mix["companion"].capacity_tokens_per_s > 2 * mix["colocated"].capacity_tokens_per_s


def test_companion_needs_a_prefill_part(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    data = tiny_scenario(
        hardware="vr200_nvl144", racks=2, grid_power="2 MW", inference=[_service("companion")]
    )
    with pytest.raises(ScenarioError, match=r"prefill: .*no companion prefill accelerator"):
        plan_of(data)
    data["workloads"]["inference"][0]["prefill"] = "hybrid"
    with pytest.raises(ScenarioError, match=r"prefill: .*no companion prefill accelerator"):
        plan_of(data)
    # the measured reference covers no disaggregation: said at load time, on the backend key
    data = tiny_scenario(
        hardware="vr200_nvl144_cpx",
        racks=2,
        grid_power="2 MW",
        inference=[{**_service("hybrid"), "backend": "measured"}],
    )
    with pytest.raises(ScenarioError, match=r"backend: .*disaggregated prefill is not covered"):
        plan_of(data)


def test_a_hybrid_service_has_its_attainment_from_the_request_level(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, Any]],
) -> None:
    """Each kind of replica of the hybrid (companion-fed, GPU-prefill-fed) is simulated behind
    its prefill pool; the service's attainment is their token-weighted mean (it was n/a)."""
    data = tiny_scenario(
        hardware="vr200_nvl144_cpx",
        racks=2,
        grid_power="2 MW",
        duration="6 h",
        inference=[_service("auto")],
    )
    plan, t = run_scenario(data)
    (ps,) = plan.services
    assert not ps.slo_unmeasured and ps.slo is not None
    at = dict(zip(ps.slo.loads, ps.slo.attainment, strict=True))
    # 98.6% at 85%: the pool is sized at the mean prefill over the clipped prompt lengths, and
    # the p99 TTFT of 100k prompts (pool and admission queues) is the request level's limit
    assert at[0.85] > 0.98 and at[1.5] < at[1.0]
    svc = t.summary["inference_services"][0]
    assert svc["prefill"] == "hybrid"
    assert 0.9 < svc["slo_attainment"] <= 1.0


def test_sessions_behind_a_prefill_pool_are_not_estimated(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, Any]],
) -> None:
    """Agentic sessions behind a separate prefill pool are not simulated: n/a, never a number
    (review: it read "SLO 100%" next to a co-located service's measured 56%)."""
    svc = {
        **_service("companion"),
        "input_tokens": 2000,
        "sessions": {"calls": 3, "tool_latency": "5 s", "tool_output_tokens": 200},
    }
    data = tiny_scenario(
        hardware="vr200_nvl144_cpx", racks=2, grid_power="2 MW", duration="6 h", inference=[svc]
    )
    plan, t = run_scenario(data)
    assert plan.services[0].slo_unmeasured
    out = t.summary["inference_services"][0]
    assert out["slo_attainment"] is None
    assert out["prefill"] == "companion"
    assert "SLO n/a (companion prefill: not estimated)" in render_report(t)


def test_auto_keeps_agentic_sessions_where_their_slo_is_measured(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    """``auto`` does not choose an arrangement whose SLO cannot be estimated (review: it chose
    companion for agentic sessions, and the run read "SLO n/a" for a prefill nobody named)."""
    svc = {
        **_service("auto"),
        "input_tokens": 8000,
        "sessions": {"calls": 4, "tool_latency": "5 s", "tool_output_tokens": 500},
    }
    data = tiny_scenario(
        hardware="vr200_nvl144_cpx", racks=2, grid_power="2 MW", duration="6 h", inference=[svc]
    )
    (ps,) = plan_of(data).services
    assert ps.prefill == "colocated" and ps.slo is not None and not ps.slo_unmeasured
