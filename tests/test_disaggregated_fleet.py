"""Disaggregated prefill in the fleet (issue 12): a service on a rack with a companion prefill
accelerator (Vera Rubin NVL144 CPX) prefills there unless told otherwise, and at long context
it serves more per rack than co-located prefill would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.build import Plan
from sim.config.loader import ScenarioError
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


def test_companion_prefill_serves_more_at_long_context(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    cap = {}
    for mode in ("auto", "colocated"):
        data = tiny_scenario(
            hardware="vr200_nvl144_cpx", racks=2, grid_power="2 MW", inference=[_service(mode)]
        )
        (svc,) = plan_of(data).services
        cap[mode] = svc.capacity_tokens_per_s_per_domain
        est = svc.estimate
        assert (est["prefill_gpus_per_replica"] > 0) == (mode == "auto")
        assert est["ttft_s"] <= 2.0
    assert cap["auto"] > cap["colocated"]


def test_companion_needs_a_prefill_part(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    data = tiny_scenario(
        hardware="vr200_nvl144", racks=2, grid_power="2 MW", inference=[_service("companion")]
    )
    with pytest.raises(ScenarioError, match=r"prefill: .*no companion prefill accelerator"):
        plan_of(data)


def test_companion_prefill_attainment_is_not_a_number_it_did_not_measure(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, Any]],
) -> None:
    """The request level does not model disaggregation: a companion-prefill service with
    targets reports its attainment as n/a (None), not served over demanded (review: it read
    "SLO 100%" next to a co-located service's measured 56%)."""
    data = tiny_scenario(
        hardware="vr200_nvl144_cpx",
        racks=2,
        grid_power="2 MW",
        duration="6 h",
        inference=[_service("companion")],
    )
    plan, t = run_scenario(data)
    assert plan.services[0].slo_unmeasured
    svc = t.summary["inference_services"][0]
    assert svc["slo_attainment"] is None
    # and says why, in the summary and on the report's card (review)
    assert svc["prefill"] == "companion"
    assert "SLO n/a (companion prefill: not estimated)" in render_report(t)
