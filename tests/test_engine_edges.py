"""Edge cases of rate and capacity changes found in review, each pinned against the old bug:

* a capacity rise used to drop the past needs from the stabilization window (scale-down at the
  next tick instead of after the window);
* the autoscaling targets were O(ticks x window) (a year of 20 s ticks with a 30-day window
  stalled before the run);
* a rate change at the instant a job finishes added a checkpoint (float residue of the work);
* factors that multiply to one split a noise-sized total into huge opposite slowdowns;
* a tiny demand got no domain; a finished job's rate could be "changed".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from engine_helpers import at, finish, started
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.build import Plan
from sim.engine.core import Engine
from sim.engine.workloads import Phase, trailing_max

H = 3600.0
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(
    x=st.lists(st.integers(0, 50), min_size=0, max_size=80),
    window=st.integers(1, 30),
)
def test_trailing_max_is_the_naive_one(x: list[int], window: int) -> None:
    a = np.asarray(x, dtype=np.int64)
    naive = [max(x[max(0, k - window + 1) : k + 1]) for k in range(len(x))]
    assert trailing_max(a, window).tolist() == naive


def flat_service(tiny_scenario: Builder, plan_of: PlanOf, domains: float, **svc_kw: Any) -> Plan:
    """A service whose flat demand needs ``domains`` domains at its max load."""
    demand: dict[str, float] = {
        "mean_requests_per_s": 1.0,
        "noise_cv": 0,
        "peak_to_trough": 1,
        "weekend_factor": 1,
    }
    svc = {
        "name": "chat",
        "model": "llama3.1-8b",
        "input_tokens": 100,
        "output_tokens": 100,
        "control_interval": "5 min",
        "max_load": 1.0,
        "min_domains": 0,
        "demand": demand,
        **svc_kw,
    }
    data = tiny_scenario(duration="1 d", sample_interval="1 h", inference=[svc])
    ps = plan_of(data).services[0]
    demand["mean_requests_per_s"] = (
        domains * ps.capacity_tokens_per_s_per_domain / (ps.tokens_per_request)
    )
    return plan_of(data)


def test_a_capacity_rise_scales_down_only_after_the_stabilization_window(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan = flat_service(tiny_scenario, plan_of, 3.5, scale_down_stabilization="1 h")
    e = started(plan)
    svc = e.services[0]
    change = 5 * H + 150.0
    held: list[tuple[float, int]] = []
    at(e, change, lambda: e.autoscaler.set_capacity_factor(svc, "throttle", 2.0))
    for k in range(1, 20):
        at(e, change + k * 300.0 - 100.0, lambda: held.append((e.env.now, svc.held.size)))
    finish(e)
    # 3.5 domains of demand: 4 held; at twice the capacity 2 suffice, but only after the
    # 1 h window (13 ticks of 5 min) has no tick of the old need left
    before = [n for t, n in held if t < change + H]
    after = [n for t, n in held if t > change + H + 300.0]
    assert before and set(before) == {4}
    assert after and set(after) == {2}


def test_a_long_stabilization_window_costs_no_more_than_a_short_one(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan = flat_service(
        tiny_scenario,
        plan_of,
        2.0,
        control_interval="20 s",
        scale_down_stabilization="30 d",
    )
    e = Engine(plan)
    e._setup()  # builds the targets of 4,321 ticks with a 129,601-tick window
    assert e.services[0].target.tolist() == [2] * len(e.services[0].target)


def test_a_tiny_demand_gets_one_domain(tiny_scenario: Builder, plan_of: PlanOf) -> None:
    plan = flat_service(tiny_scenario, plan_of, 1e-12)
    assert Engine(plan).services or True
    e = started(plan)
    finish(e)
    assert e.services[0].held.size == 1


@pytest.fixture(scope="module")
def two_cycle_job(tiny_scenario: Builder, plan_of: PlanOf) -> Plan:
    job = {
        "name": "p",
        "model": "llama3.1-8b",
        "gpus": 256,
        "tokens": 1e12,
        "checkpoint_interval": "4 h",
        "checkpoint_write": "1 min",
    }
    data = tiny_scenario(pretraining=[job])
    pj = plan_of(data).jobs[0]
    job["tokens"] = 2 * pj.rate * pj.checkpoint_interval_s  # exactly two intervals of work
    return plan_of(data)


def test_a_rate_change_at_the_finish_adds_no_checkpoint(two_cycle_job: Plan) -> None:
    base = started(two_cycle_job)
    finish(base)
    done_at = base.jobs[0].finish_s
    e = started(two_cycle_job)
    job = e.jobs[0]
    # at the finish instant, before the completion event of that instant is processed
    at(e, done_at, lambda: e.training.set_rate_factor(job, "throttle", 0.5))
    finish(e)
    assert job.finish_s == pytest.approx(done_at, abs=1e-6)
    assert job.checkpoints == base.jobs[0].checkpoints == 1


def test_a_factor_set_to_its_value_changes_nothing(two_cycle_job: Plan) -> None:
    e = started(two_cycle_job)
    job = e.jobs[0]
    at(e, 3 * H, lambda: e.training.set_rate_factor(job, "network", 1.0))
    finish(e)
    base = started(two_cycle_job)
    finish(base)
    assert job.finish_s == base.jobs[0].finish_s  # not even moved by float residue


@pytest.mark.parametrize("f", [0.7, 0.3, 0.5, 0.9])
def test_factors_that_cancel_split_by_log_factor(two_cycle_job: Plan, f: float) -> None:
    e = started(two_cycle_job)
    job = e.jobs[0]

    def both() -> None:
        e.training.set_rate_factor(job, "throttle", f)
        e.training.set_rate_factor(job, "network", 1.0 / f)

    at(e, H, both)
    finish(e)
    # no delay in all, and a split that does not depend on float noise: over the 7 h of
    # compute left, the throttle cost -dt ln f and the network gave the same back
    dt = 7 * H
    assert job.slowdown_s[0] == pytest.approx(-dt * math.log(f), rel=1e-9)
    assert job.slowdown_s[1] == pytest.approx(dt * math.log(f), rel=1e-9)
    assert math.isclose(sum(job.slowdown_s), 0.0, abs_tol=1e-6)


def test_a_finished_jobs_rate_cannot_change(two_cycle_job: Plan) -> None:
    e = started(two_cycle_job)
    finish(e)
    job = e.jobs[0]
    assert job.phase == Phase.DONE
    with pytest.raises(ValueError, match="has finished"):
        e.training.set_rate_factor(job, "throttle", 0.5)
