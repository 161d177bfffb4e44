"""Placement across generations: work that names no hardware goes where
``scheduler.hardware_policy`` says, and a mixed site uses all its halls (issue 12)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sim.build import Plan
from sim.config.loader import ScenarioError
from sim.io import RunTables
from sim.serving.capacity import load_at_slo


def _mixed(tiny_scenario: Callable[..., dict[str, Any]], **kw: Any) -> dict[str, Any]:
    """A GB200 hall of 16 racks and a Vera Rubin hall of 12; two 8-rack pre-training jobs."""
    policy = kw.pop("policy", None)
    data = tiny_scenario(
        racks=16,
        grid_power="8 MW",
        duration="1 d",
        pretraining=[
            {"name": f"pt{i}", "model": "llama3.1-8b", "gpus": 576, "tokens": 2e12}
            for i in range(2)
        ],
        **kw,
    )
    data["facility"]["halls"].append({"name": "rubin", "hardware": "vr200_nvl144", "racks": 12})
    if policy is not None:
        data["scheduler"] = {"hardware_policy": policy}
    return data


def _hardware(tables: RunTables) -> dict[str, str]:
    j = tables.jobs
    return dict(zip(j["name"], j["hardware"], strict=True))


def test_fastest_completion_uses_both_halls(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    plan, tables = run_scenario(_mixed(tiny_scenario))
    pj = plan.jobs[0]
    # the ranking comes from the plans: Rubin first because it runs the job faster
    assert plan.hw_names[pj.hw_index] == "vr200_nvl144"
    (alt,) = pj.alternatives
    assert pj.work / pj.rate < alt.work / alt.rate
    # the first job takes 8 of Rubin's 12 racks; the second does not wait for Rubin
    assert _hardware(tables) == {"pt0": "vr200_nvl144", "pt1": "gb200_nvl72"}
    first_start = dict(zip(tables.jobs["name"], tables.jobs["first_start_s"], strict=True))
    assert first_start == {"pt0": 0.0, "pt1": 0.0}


def test_first_fit_keeps_the_halls_order(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    _, tables = run_scenario(_mixed(tiny_scenario, policy="first_fit"))
    assert _hardware(tables) == {"pt0": "gb200_nvl72", "pt1": "gb200_nvl72"}


def test_lowest_cost_ranks_by_run_cost(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    plan = plan_of(_mixed(tiny_scenario, policy="lowest_cost"))
    cost = plan.scheduler.cost_per_domain_s
    ranked = [plan.jobs[0], *plan.jobs[0].alternatives]
    keys = [p.work / p.rate * p.domains * cost[p.hw_index] for p in ranked]
    assert keys == sorted(keys) and len(keys) == 2


def test_stream_jobs_spill_over_to_the_other_hall(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    """Post-training jobs (given by duration, the same on both types) take the halls' order and
    go to Rubin when the GB200 hall is full."""
    stream = {
        "name": "sft",
        "kind": "sft",
        "arrival_rate": "40 / d",
        "gpus": 288,
        "duration": {"distribution": "fixed", "value": "12 h"},
    }
    data = _mixed(tiny_scenario, posttraining=[stream])
    data["workloads"]["pretraining"] = []
    _, tables = run_scenario(data)
    hw = tables.jobs["hardware"].value_counts().to_dict()
    assert set(hw) == {"gb200_nvl72", "vr200_nvl144"}


def test_policy_that_changes_nothing_is_rejected(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    data = tiny_scenario(scheduler={"hardware_policy": "first_fit"})
    with pytest.raises(ScenarioError, match=r"hardware_policy.*one hardware type"):
        plan_of(data)


def test_lowest_cost_needs_prices(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    data = _mixed(tiny_scenario, policy="lowest_cost")
    data["facility"]["halls"][1].update(hardware="vr200_nvl144_cpx", racks=4)
    with pytest.raises(ScenarioError, match=r"lowest_cost needs a domain price.*CPX"):
        plan_of(data)


def test_capacity_at_slo_in_summary_and_comparison(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    """Each service reports what it could sustain at its targets, per domain and per MW of
    provisioned IT power, and the comparison table carries it per service."""
    from sim.contract import COMPARED_SERVICE, entity_column
    from sim.report.compare import comparison_table

    svc = {
        "name": "chat",
        "model": "llama3.3-70b",
        "demand": {"mean_requests_per_s": 5},
        "input_tokens": 1500,
        "output_tokens": 400,
        "ttft": "2 s",
        "tpot": "50 ms",
    }
    runs = {}
    for hw in ("gb200_nvl72", "vr200_nvl144"):
        data = tiny_scenario(hardware=hw, racks=2, grid_power="2 MW", duration="6 h")
        data["workloads"]["inference"] = [svc]
        plan, tables = run_scenario(data)
        (s,) = tables.summary["inference_services"]
        # the plan's capacity, as far as the request level still meets the targets on it
        ps = plan.services[0]
        assert ps.slo is not None
        share = load_at_slo(np.array(ps.slo.loads), np.array(ps.slo.attainment))
        assert 0.5 < share <= 1.5
        per_domain = ps.capacity_tokens_per_s_per_domain * share * 86400
        assert s["capacity_tokens_per_day_per_domain"] == pytest.approx(per_domain)
        mw = plan.hw_specs[0].domain_power_w / 1e6
        assert s["capacity_tokens_per_day_per_mw"] == pytest.approx(per_domain / mw)
        runs[hw] = tables
    table = comparison_table(runs)
    col = entity_column(COMPARED_SERVICE, "chat", "capacity_tokens_per_day_per_mw")
    got = table[col].to_dict()
    for hw, t in runs.items():
        assert got[hw] == t.summary["inference_services"][0]["capacity_tokens_per_day_per_mw"]


def test_lowest_cost_takes_the_scenario_s_prices(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    """``costs.prices`` overrides rank the types too (review: a $30M Rubin rack still won), and
    give an unpriced part the price the policy needs."""
    base = plan_of(_mixed(tiny_scenario, policy="lowest_cost"))
    data = _mixed(tiny_scenario, policy="lowest_cost")
    data["costs"] = {"prices": {"vr200_nvl144": "$300M"}}
    dear = plan_of(data)
    assert dear.jobs[0].hw_index != base.jobs[0].hw_index  # Rubin is no longer the cheapest
    cpx = _mixed(tiny_scenario, policy="lowest_cost")
    cpx["facility"]["halls"][1].update(hardware="vr200_nvl144_cpx", racks=4)
    cpx["costs"] = {"prices": {"vr200_nvl144_cpx": "$13M"}}
    assert plan_of(cpx).scheduler.cost_per_domain_s  # priced: no longer refused


def test_a_service_passes_over_a_type_the_earlier_services_fill(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    """A service holds one type for the run (it does not spill over), so the plan does not
    put a second service on the faster type when the first one already needs all of it (the
    H100 generation scenario's chat tiers held no domain behind its H200 reasoning tier)."""
    data = _mixed(tiny_scenario)
    data["workloads"]["pretraining"] = []

    def svc(name: str, need_domains: float) -> dict[str, Any]:
        return {
            "name": name,
            "model": "llama3.1-8b",
            "demand": {"mean_requests_per_s": need_domains},  # scaled below
            "input_tokens": 500,
            "output_tokens": 200,
        }

    data["workloads"]["inference"] = [svc("first", 1.0), svc("second", 1.0)]
    plan = plan_of(data)
    assert [plan.hw_names[s.hw_index] for s in plan.services] == ["vr200_nvl144"] * 2
    # the first service's mean need: 10 of Rubin's 12 racks; the second's 4 more would not fit
    for name, racks in (("first", 10.0), ("second", 4.0)):
        ps = next(s for s in plan.services if s.name == name)
        i = [s["name"] for s in data["workloads"]["inference"]].index(name)
        per_rack = ps.capacity_tokens_per_s_per_domain * ps.max_load / ps.tokens_per_request
        data["workloads"]["inference"][i]["demand"]["mean_requests_per_s"] = racks * per_rack
    plan = plan_of(data)
    assert [plan.hw_names[s.hw_index] for s in plan.services] == ["vr200_nvl144", "gb200_nvl72"]


def test_capacity_at_slo_is_where_the_request_level_meets_the_targets() -> None:
    """By hand: attainment 1.0 / 0.995 / 0.97 at loads 0.5 / 1.0 / 1.15 crosses 0.99 a fifth of
    the way from 1.0 to 1.15; a table that misses at its lightest load has none; one that never
    misses holds to its last load."""
    loads = np.array([0.5, 1.0, 1.15])
    assert load_at_slo(loads, np.array([1.0, 0.995, 0.97])) == pytest.approx(1.03)
    assert load_at_slo(loads, np.array([0.98, 0.9, 0.5])) == 0.0
    assert load_at_slo(loads, np.array([1.0, 1.0, 0.999])) == 1.15
