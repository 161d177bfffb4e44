"""Per-service outputs of fleet runs (issue 12): requests per bin, conservation, replicas,
prompt-cache hit rate, and each service's energy and tokens per MWh in the summary.

Demand the held capacity cannot serve waits in the service's backlog and is served later, or
given up after the client timeout (sim.engine.backlog), so in every bin arrivals + queued at
its start = served + dropped + queued at its end. (The request level's conservation is tested
in ``test_simulator.py``.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pytest import approx

from sim.build import Plan
from sim.io import RunTables
from sim.runner import run_facts
from sim.serving.workload import SessionShape, session_mix

Builder = Callable[..., dict[str, Any]]
Run = Callable[..., tuple[Plan, RunTables]]
PlanOf = Callable[..., Plan]

SESSIONS = {"calls": 4, "tool_latency": "10 s", "tool_output_tokens": 300}


def _svc(name: str, mean_rps: float, **kw: Any) -> dict[str, Any]:
    # no latency targets: no request-level table to compute, the run stays fast
    return {
        "name": name,
        "model": "llama3.1-8b",
        "input_tokens": 500,
        "output_tokens": 200,
        "min_domains": 1,
        "control_interval": "10 min",
        "demand": {"mean_requests_per_s": mean_rps, "peak_to_trough": 3.0, "noise_cv": 0.1},
        **kw,
    }


def _overloaded(tiny_scenario: Builder, plan_of: PlanOf, **kw: Any) -> dict[str, Any]:
    """One agentic service on four racks, its daily peak well beyond them (and its trough
    within them), for one day."""
    data = tiny_scenario(duration="1 d", inference=[_svc("agent", 1.0, sessions=SESSIONS, **kw)])
    ps = plan_of(data).services[0]
    per_domain_rps = ps.capacity_tokens_per_s_per_domain / ps.tokens_per_request
    data["workloads"]["inference"][0]["demand"]["mean_requests_per_s"] = 3.0 * per_domain_rps
    return data


@pytest.fixture(scope="module")
def overloaded(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> tuple[Plan, RunTables]:
    return run_scenario(_overloaded(tiny_scenario, plan_of))


def test_served_dropped_and_queued_conserve_arrivals_in_every_bin(
    overloaded: tuple[Plan, RunTables],
) -> None:
    plan, t = overloaded
    tr = t.traces
    ps = plan.services[0]
    dt = tr["interval_s"].to_numpy()

    def col(q: str) -> np.ndarray:
        return tr[f"service.agent.{q}"].to_numpy(dtype=float)

    arrived, served, dropped = (
        col(f"{k}_requests_per_s") for k in ("arrivals", "served", "dropped")
    )
    queued = col("queued_requests")
    assert (queued > 0).any() and queued[-1] == 0.0  # a backlog at the peak, none at the end
    # per bin, in requests: arrived + queued in = served + dropped + queued out
    change = np.diff(queued, prepend=0.0)
    np.testing.assert_allclose((served + dropped) * dt + change, arrived * dt, rtol=1e-9)
    assert (dropped > 0).any() and (dropped[1:] < arrived[1:] * 1e-9).any()  # peak and trough
    assert (dropped >= -1e-12 * arrived).all()
    # the backlog is served later: some bins serve more than arrives in them
    assert (served > arrived * (1 + 1e-9)).any()
    # a backlog never holds more than the capacity serves within the client timeout
    cap = col("capacity_tokens_per_s") / ps.tokens_per_request
    assert (queued <= cap * ps.client_timeout_s * (1 + 1e-9)).all()
    # requests are tokens over the generated tokens per request; tokens conserve too
    np.testing.assert_allclose(arrived * ps.tokens_per_request, col("demand_tokens_per_s"))
    np.testing.assert_allclose(served * ps.tokens_per_request, col("served_tokens_per_s"))
    np.testing.assert_allclose(queued * ps.tokens_per_request, col("queued_tokens"))
    np.testing.assert_allclose(
        (col("served_tokens_per_s") + col("dropped_tokens_per_s")) * dt
        + np.diff(col("queued_tokens"), prepend=0.0),
        col("demand_tokens_per_s") * dt,
        rtol=1e-9,
    )
    # replicas: domains x replicas per domain (a whole number of TP groups in a rack)
    assert ps.replicas_per_domain == float(int(ps.replicas_per_domain)) >= 1.0
    np.testing.assert_allclose(col("replicas"), col("domains") * ps.replicas_per_domain)
    # the summary's request counts are the integrals, and conserve
    row = t.summary["inference_services"][0]
    dt = tr["interval_s"].to_numpy()
    assert row["requests_arrived"] == approx(float(np.sum(arrived * dt)), rel=1e-12)
    assert row["requests_served"] + row["requests_dropped"] + row["requests_queued"] == approx(
        row["requests_arrived"]
    )


def test_the_backlog_is_served_later_at_the_power_it_takes(
    overloaded: tuple[Plan, RunTables], tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    """Against the same demand with ``client_timeout: 0`` (what the capacity cannot serve at
    once is dropped): the backlog serves more tokens, in the bins after the peak, and the site
    draws the power of serving them (the held domains run at full load while it drains)."""
    plan, t = overloaded
    assert plan.services[0].client_timeout_s == 600.0  # the OpenAI Python SDK's default
    p0, t0 = run_scenario(_overloaded(tiny_scenario, plan_of, client_timeout="0 s"))
    assert p0.services[0].client_timeout_s == 0.0
    tr, tr0 = t.traces, t0.traces
    col = "service.agent.served_tokens_per_s"
    assert (tr0["service.agent.queued_requests"] == 0).all()
    np.testing.assert_allclose(  # no backlog: served + dropped = demand in every bin
        tr0[col] + tr0["service.agent.dropped_tokens_per_s"],
        tr0["service.agent.demand_tokens_per_s"],
    )
    np.testing.assert_array_equal(
        tr["service.agent.demand_tokens_per_s"], tr0["service.agent.demand_tokens_per_s"]
    )
    later = tr[col].to_numpy() > tr0[col].to_numpy() * (1 + 1e-9)
    assert later.any()
    it = tr["it_power_w"].to_numpy()
    it0 = tr0["it_power_w"].to_numpy()
    assert (it[later] > it0[later]).all()
    assert np.all(it >= it0 - 1e-6 * it0)
    row, row0 = t.summary["inference_services"][0], t0.summary["inference_services"][0]
    assert row["output_tokens"] > row0["output_tokens"]
    assert row["requests_dropped"] < row0["requests_dropped"]


def test_a_client_timeout_out_of_range_is_refused(tiny_scenario: Builder, plan_of: PlanOf) -> None:
    from sim.config.loader import ScenarioError

    data = tiny_scenario(inference=[_svc("chat", 1.0, client_timeout="2 d")])
    with pytest.raises(ScenarioError, match=r"inference.*client_timeout.*plausible range"):
        plan_of(data)


def test_the_hit_rate_comes_from_the_sessions_or_is_given(
    overloaded: tuple[Plan, RunTables], tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan, t = overloaded
    shape = SessionShape(calls=4, tool_latency_s=10.0, tool_output_tokens=300)
    _, hit = session_mix(shape, 500, 200)
    assert 0.3 < hit < 1.0  # the default 5-minute TTL against 10 s tools: most calls hit
    assert plan.services[0].prompt_cache_hit == approx(hit, rel=1e-12)
    np.testing.assert_allclose(t.traces["service.agent.prompt_cache_hit_rate"], hit, rtol=1e-12)
    assert t.summary["inference_services"][0]["prompt_cache_hit_rate"] == approx(hit)
    given = plan_of(tiny_scenario(inference=[_svc("chat", 1.0, prompt_cache_hit=0.3)]))
    assert given.services[0].prompt_cache_hit == 0.3


def test_a_service_gets_all_the_energy_of_the_bins_where_it_holds_the_site(
    overloaded: tuple[Plan, RunTables],
) -> None:
    """At its peak the service holds every rack (it is the only draw then); at the trough it
    holds fewer, so over the day it gets more than the peak bins' energy and less than the
    site's, and its tokens per MWh are its tokens over that energy."""
    _, t = overloaded
    tr = t.traces
    row = t.summary["inference_services"][0]
    full = (tr["gpus_idle"] < 1e-9) & (tr["gpus_failed"] == 0)
    assert full.any() and not full.all()
    peak_mwh = float(tr.loc[full, "facility_energy_mwh"].sum())
    assert peak_mwh < row["energy_mwh"] < t.summary["energy"]["facility_mwh"]
    assert row["tokens_per_mwh"] == approx(row["output_tokens"] / row["energy_mwh"])


def test_two_services_split_the_energy_by_their_activity_power(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    """Constant demand: ``half`` needs one rack at about half load, ``flood`` takes the other three
    at full load. Every GPU is theirs, so their energies sum to the site's, in the ratio of
    GPUs x (idle + (full load - idle) x load) (the activity fractions of sim.tco)."""
    data = tiny_scenario(duration="6 h", inference=[_svc("half", 1.0), _svc("flood", 1.0)])
    plan = plan_of(data)
    for ps, share in zip(plan.services, (0.5, 10.0), strict=True):
        d = data["workloads"]["inference"][plan.services.index(ps)]["demand"]
        rps = share * ps.capacity_tokens_per_s_per_domain / ps.tokens_per_request
        d.update(mean_requests_per_s=rps, peak_to_trough=1.0, noise_cv=0.0)
    data["workloads"]["inference"][0]["max_load"] = 1.0
    plan, t = run_scenario(data)
    tr = t.traces
    assert (tr["gpus_idle"] < 1e-9).all()
    assert (tr["service.half.domains"] == 1).all() and (tr["service.flood.domains"] == 3).all()
    half, flood = t.summary["inference_services"]
    assert half["energy_mwh"] + flood["energy_mwh"] == approx(
        t.summary["energy"]["facility_mwh"], rel=1e-12
    )
    a = run_facts(plan)["costs"]["activity"]
    idle, full = a["idle"], a["inference_full_load"]
    # the load in force (about half: the weekday factor lifts the mean a little)
    load = float(
        (tr["service.half.served_tokens_per_s"] / tr["service.half.capacity_tokens_per_s"]).mean()
    )
    assert 0.5 < load < 0.75
    assert (tr["service.flood.dropped_tokens_per_s"] > 0).all()  # at full load
    expected = 1 * (idle + (full - idle) * load) / (3 * full)
    assert half["energy_mwh"] / flood["energy_mwh"] == approx(expected, rel=1e-9)


def test_requests_follow_the_reasoning_length_in_force(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    """Reasoning doubling over six hours: the demand in tokens rises with the tokens a request
    generates while the requests arriving stay as they were (flat demand, a weekday)."""
    svc = _svc("think", 1.0, reasoning_tokens=600)
    svc["demand"].update(peak_to_trough=1.0, noise_cv=0.0)
    svc["reasoning_growth"] = {"factor": 2, "over": "6 h"}
    _, t = run_scenario(tiny_scenario(duration="8 h", inference=[svc]))
    tr = t.traces
    arrivals = tr["service.think.arrivals_requests_per_s"].to_numpy()
    demand = tr["service.think.demand_tokens_per_s"].to_numpy()
    np.testing.assert_allclose(arrivals, arrivals[0], rtol=1e-12)
    # tokens per request in force: 200 + 600 at the start, 200 + 2 x 600 after the ramp
    per_request = demand / arrivals
    assert 800.0 < per_request[0] < per_request[3] < 1400.0
    assert per_request[-1] == approx(1400.0, rel=1e-12)
    np.testing.assert_allclose(
        tr["service.think.served_requests_per_s"] + tr["service.think.dropped_requests_per_s"],
        arrivals,
        rtol=1e-12,
    )
