"""Tier (a): rate factors (throttle, network, degraded) and capacity factors, driven by hand.

An engine is set up from a tiny plan, actions are scheduled at exact times with
:func:`sim.engine.kernel.later`, and the run is stepped to its end. Expected values are derived
from the plan (the job's rate, checkpoint interval and write time) and from the rule in
:mod:`sim.engine.workloads`: a checkpoint cycle is ``I + w`` of wall time whatever the rate, so
the compute windows of a running segment that starts at ``s`` are ``[s + k(I + w), s + k(I + w)
+ I)``; a rate change keeps all work; a failure loses the work since the last checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from engine_helpers import at, finish, run_stepped, started

from sim.build import Plan
from sim.contract import RATE_FACTORS
from sim.engine.core import Engine
from sim.engine.services import demand_series
from sim.engine.workloads import Job, Phase

H = 3600.0
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]
I_S, W_S = 4 * H, 60.0  # checkpoint interval and write time of the jobs below


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-6)


def pretrain(name: str, gpus: int = 256, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": "llama3.1-8b",
        "gpus": gpus,
        "tokens": 1e12,
        "checkpoint_interval": "4 h",
        "checkpoint_write": "1 min",
        **kw,
    }


def plan_with_cycles(
    plan_of: PlanOf, data: dict[str, Any], cycles: dict[str, float]
) -> tuple[Plan, dict[str, Any]]:
    """Set each named job's tokens to ``cycles x rate x checkpoint_interval``."""
    by_name = {j.name: j for j in plan_of(data).jobs}
    for job in data["workloads"]["pretraining"]:
        if job["name"] in cycles:
            pj = by_name[job["name"]]
            job["tokens"] = cycles[job["name"]] * pj.rate * pj.checkpoint_interval_s
    plan = plan_of(data)
    for pj in plan.jobs:
        assert (pj.checkpoint_interval_s, pj.checkpoint_write_s) == (I_S, W_S)
    return plan, data


def job_of(e: Engine, name: str) -> Job:
    return next(j for j in e.jobs if j.name == name)


def row_of(e: Engine, name: str) -> dict[str, Any]:
    return next(r for r in e.job_rows() if r["name"] == name)


def events_of(e: Engine, name: str, kind: str) -> list[float]:
    ev = e.rec.events_table()
    return ev[(ev["subject"] == name) & (ev["event"] == kind)]["time_s"].tolist()


def compute_in(t0: float, t1: float, seg_start: float, seg_end: float) -> float:
    """Compute (not checkpoint-writing) time of a running segment inside ``[t0, t1)``."""
    total, k = 0.0, 0
    while seg_start + k * (I_S + W_S) < min(t1, seg_end):
        a = seg_start + k * (I_S + W_S)
        total += max(0.0, min(t1, a + I_S, seg_end) - max(t0, a))
        k += 1
    return total


@pytest.fixture(scope="module")
def one_job(tiny_scenario: Builder, plan_of: PlanOf) -> Plan:
    """One 4-domain job on the 4 racks: 2.5 checkpoint intervals of work at its base rate."""
    data = tiny_scenario(pretraining=[pretrain("p")])
    return plan_with_cycles(plan_of, data, {"p": 2.5})[0]


def run_one_job(plan: Plan, actions: list[tuple[float, str, float]]) -> Engine:
    e = started(plan)
    job = job_of(e, "p")
    for t, factor, value in actions:
        at(e, t, partial(e.training.set_rate_factor, job, factor, value))
    finish(e)
    return e


# --------------------------------------------------------------------------- one throttle


@pytest.mark.parametrize(
    ("t0", "t1"),
    [
        (1 * H, 3 * H),  # two hours of compute at half rate: one hour late
        (1 * H, 2 * H),  # one hour at half rate: half an hour late
        (3.5 * H, 5.5 * H),  # spans the first checkpoint's write stall
        (I_S + 30.0, I_S + 30.0 + H),  # starts during the write stall
    ],
)
def test_a_throttle_delays_the_finish_by_the_compute_it_slowed(
    one_job: Plan, t0: float, t1: float
) -> None:
    base = run_one_job(one_job, [])
    slow = run_one_job(one_job, [(t0, "throttle", 0.5), (t1, "throttle", 1.0)])
    b, s = row_of(base, "p"), row_of(slow, "p")
    assert b["finish_s"] == approx(10 * H + 2 * W_S)  # 2.5 intervals, 2 checkpoints
    lag = 0.5 * compute_in(t0, t1, 0.0, math.inf)
    if (t0, t1) == (1 * H, 3 * H):
        assert lag == H
    assert s["finish_s"] - b["finish_s"] == approx(lag)
    assert s["slowdown_throttle_s"] == pytest.approx(lag, rel=1e-9)
    assert (s["slowdown_network_s"], s["slowdown_degraded_s"]) == (0.0, 0.0)
    assert (s["checkpoints"], s["work_lost"], s["work_done"]) == (2, 0.0, approx(s["work"]))
    # the cycles are wall time: the checkpoints land at the same instants, rate or not
    assert events_of(slow, "p", "checkpointed") == events_of(base, "p", "checkpointed")
    assert events_of(slow, "p", "checkpointed") == [approx(I_S + W_S), approx(2 * (I_S + W_S))]
    assert events_of(slow, "p", "finished") == [approx(s["finish_s"])]
    assert job_of(slow, "p").rate == job_of(slow, "p").base_rate


@pytest.mark.parametrize(
    "t0",
    [
        2 * H,  # during compute: fine
        I_S + 30.0,  # during a checkpoint write (was short by (pos - I) x (1 - rate/base))
    ],
)
def test_a_throttle_kept_to_the_finish_counts_all_its_compute(one_job: Plan, t0: float) -> None:
    e = run_one_job(one_job, [(t0, "throttle", 0.5)])
    r = row_of(e, "p")
    # by hand: the segment starts at 0; compute at half rate from t0 to the finish
    slowed = compute_in(t0, r["finish_s"], 0.0, math.inf)
    before = compute_in(0.0, t0, 0.0, math.inf)
    assert before + 0.5 * slowed == approx(10 * H)  # the work: 2.5 intervals at the base rate
    assert r["slowdown_throttle_s"] == pytest.approx(0.5 * slowed, rel=1e-9)
    assert r["work_lost"] == 0.0


# --------------------------------------------------------------------------- throttle, then fail


@pytest.mark.parametrize(
    ("t_throttle", "t_fail"),
    [
        (5 * H, 5 * H + 600.0),  # both inside the second cycle (it began at I + w)
        (3.5 * H, I_S + W_S + 600.0),  # a checkpoint is saved between the two
        (1 * H, 1 * H),  # at the same instant
    ],
)
def test_a_failure_after_a_throttle_loses_only_the_work_since_the_checkpoint(
    one_job: Plan, t_throttle: float, t_fail: float
) -> None:
    repair = 2 * H
    e = started(one_job)
    job = job_of(e, "p")
    r = job.base_rate
    at(e, t_throttle, lambda: e.training.set_rate_factor(job, "throttle", 0.5))
    at(e, t_fail, lambda: e.reliability.fail(int(job.held.all()[0]), repair))
    finish(e)

    cycle = I_S + W_S
    last_ckpt = math.floor(t_fail / cycle) * cycle  # the segment started at 0
    fast = compute_in(last_ckpt, min(t_throttle, t_fail), 0.0, math.inf)
    slow = compute_in(max(last_ckpt, t_throttle), t_fail, 0.0, math.inf)
    lost = r * fast + 0.5 * r * slow
    saved_before = r * compute_in(0.0, min(t_throttle, last_ckpt), 0.0, math.inf) + 0.5 * r * (
        compute_in(min(t_throttle, last_ckpt), last_ckpt, 0.0, math.inf)
    )

    ev = e.rec.events_table()
    inter = ev[ev["event"] == "interrupted"]
    assert inter["time_s"].tolist() == [t_fail]
    assert inter["value"].iloc[0] == pytest.approx(lost, rel=1e-12)
    row = row_of(e, "p")
    assert row["work_lost"] == pytest.approx(lost, rel=1e-12)
    # the gang is gone (no free domain): back after the repair, then the restart overhead,
    # still at half rate for the rest of the work
    restart = one_job.reliability.restart_overhead_s + job.restore_s  # then the restore
    assert events_of(e, "p", "restarted") == [t_fail + repair]
    run_again = t_fail + repair + restart
    rest = (job.work - saved_before) / (0.5 * r)  # compute time left at half rate
    n_more = math.ceil(rest / I_S - 1e-12) - 1
    assert row["finish_s"] == pytest.approx(run_again + rest + n_more * W_S, rel=1e-12)
    assert row["checkpoints"] == round(last_ckpt / cycle) + n_more
    slowed = compute_in(t_throttle, t_fail, 0.0, math.inf) + rest
    assert row["slowdown_throttle_s"] == pytest.approx(0.5 * slowed, rel=1e-9)
    assert row["work_done"] == approx(job.work)


# --------------------------------------------------------------------------- two factors


LN = math.log(0.5) + math.log(0.8)


@pytest.mark.parametrize(
    ("actions", "throttle_s", "network_s"),
    [
        # both over [1 h, 3 h): 2 h x (1 - 0.4) behind, split by ln f
        (
            [
                (1 * H, "throttle", 0.5),
                (1 * H, "network", 0.8),
                (3 * H, "network", 1.0),
                (3 * H, "throttle", 1.0),
            ],
            2 * H * 0.6 * math.log(0.5) / LN,
            2 * H * 0.6 * math.log(0.8) / LN,
        ),
        # the same, set in the other order
        (
            [
                (1 * H, "network", 0.8),
                (1 * H, "throttle", 0.5),
                (3 * H, "throttle", 1.0),
                (3 * H, "network", 1.0),
            ],
            2 * H * 0.6 * math.log(0.5) / LN,
            2 * H * 0.6 * math.log(0.8) / LN,
        ),
        # overlapping: throttle [1 h, 3 h), network [2 h, 3.5 h)
        (
            [
                (1 * H, "throttle", 0.5),
                (2 * H, "network", 0.8),
                (3 * H, "throttle", 1.0),
                (3.5 * H, "network", 1.0),
            ],
            0.5 * H + H * 0.6 * math.log(0.5) / LN,
            H * 0.6 * math.log(0.8) / LN + 0.5 * H * 0.2,
        ),
    ],
)
def test_two_factors_split_the_lost_time_by_log_factor(
    one_job: Plan, actions: list[tuple[float, str, float]], throttle_s: float, network_s: float
) -> None:
    base = row_of(run_one_job(one_job, []), "p")
    r = row_of(run_one_job(one_job, actions), "p")
    assert r["slowdown_throttle_s"] == pytest.approx(throttle_s, rel=1e-9)
    assert r["slowdown_network_s"] == pytest.approx(network_s, rel=1e-9)
    assert r["slowdown_degraded_s"] == 0.0
    total = r["finish_s"] - base["finish_s"]
    assert total == pytest.approx(1.2 * H, rel=1e-9)
    assert r["slowdown_throttle_s"] + r["slowdown_network_s"] == pytest.approx(total, rel=1e-9)
    assert (r["checkpoints"], r["work_lost"]) == (2, 0.0)


# --------------------------------------------------------------------------- a job not running


@pytest.mark.parametrize("submit_b", [0.0, 2 * H])
def test_a_factor_set_on_a_job_not_running_takes_effect_when_it_runs(
    tiny_scenario: Builder, plan_of: PlanOf, submit_b: float
) -> None:
    data = tiny_scenario(
        duration="3 d", pretraining=[pretrain("a"), pretrain("b", submit_at=f"{submit_b} s")]
    )
    plan, _ = plan_with_cycles(plan_of, data, {"a": 1.5, "b": 1.5})
    e = started(plan)
    a, b = job_of(e, "a"), job_of(e, "b")
    seen: dict[str, Any] = {}

    def throttle_b() -> None:
        seen["phase"] = b.phase
        seen["power"] = e.power.site_it_w
        e.training.set_rate_factor(b, "throttle", 0.5, power_scale=0.6)
        seen["power_after"] = e.power.site_it_w
        seen["rate"] = b.rate

    at(e, 1 * H, throttle_b)
    a_end = 1.5 * I_S + W_S
    at(e, a_end + H, lambda: seen.setdefault("power_b", e.power.site_it_w))
    finish(e)

    assert seen["phase"] == (Phase.WAITING if submit_b == 0.0 else Phase.PENDING)
    assert seen["power_after"] == seen["power"]  # nothing runs on b's behalf yet
    assert seen["rate"] == 0.5 * b.base_rate
    assert a.rate == a.base_rate
    assert events_of(e, "b", "started") == [approx(a_end)]
    # 1.5 intervals of work at half rate: 3 intervals of compute, 2 checkpoints on the way
    rb = row_of(e, "b")
    assert rb["finish_s"] == approx(a_end + 3 * I_S + 2 * W_S)
    assert rb["checkpoints"] == 2
    assert rb["slowdown_throttle_s"] == pytest.approx(0.5 * 3 * I_S, rel=1e-9)
    assert row_of(e, "a")["slowdown_throttle_s"] == 0.0
    # and its power draw above idle is scaled once it runs
    fac = plan.facility
    ap, p, n = fac.activity[0], plan.hw_specs[0].domain_power_w, plan.n_domains
    busy = n * p * (ap.idle + 0.6 * (ap.training - ap.idle)) + fac.it_overhead_fraction * n * p
    assert seen["power_b"] == pytest.approx(busy, rel=1e-12)


# --------------------------------------------------------------------------- power


def test_a_throttle_with_a_power_scale_lowers_site_power_exactly(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan, _ = plan_with_cycles(
        plan_of, tiny_scenario(pretraining=[pretrain("p", gpus=144)]), {"p": 2.5}
    )
    e = started(plan)
    job = job_of(e, "p")
    assert job.domains == 2 < plan.n_domains
    got: list[tuple[float, float, list[float]]] = []

    def look() -> None:
        got.append((e.power.site_it_w, e.power.site_facility_w, [e.power.hall_it_w(0)]))

    def throttle(value: float, scale: float) -> None:
        look()
        e.training.set_rate_factor(job, "throttle", value, power_scale=scale)
        look()

    at(e, 1 * H, lambda: throttle(0.5, 0.6))
    at(e, 2 * H, lambda: throttle(1.0, 1.0))
    finish(e)

    ap = plan.facility.activity[0]
    drop = 0.4 * (ap.training - ap.idle) * plan.hw_specs[0].domain_power_w * job.domains
    (it0, fac0, hall0), (it1, fac1, hall1), (it2, _, _), (it3, _, hall3) = got
    assert it0 - it1 == pytest.approx(drop, rel=1e-9)
    assert fac0 - fac1 == pytest.approx(drop * plan.facility.pue, rel=1e-9)
    assert hall1 == [it1] and hall0 == [it0]  # one hall: the hall is the site
    assert it2 == it1
    assert it3 == pytest.approx(it0, rel=1e-12)  # back to the full draw
    assert hall3 == [pytest.approx(it0, rel=1e-12)]


# --------------------------------------------------------------------------- services


def flat_service(tiny_scenario: Builder, plan_of: PlanOf, load: float) -> Plan:
    """A service whose flat demand is ``load`` x the capacity of the whole fleet."""
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
        "control_interval": "15 min",
        "demand": demand,
    }
    data = tiny_scenario(duration="1 d", sample_interval="1 h", inference=[svc])
    ps = plan_of(data).services[0]
    cap = ps.capacity_tokens_per_s_per_domain
    demand["mean_requests_per_s"] = load * 4 * cap / ps.tokens_per_request
    return plan_of(data)


def test_a_capacity_factor_halves_the_served_tokens_when_demand_exceeds_capacity(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = flat_service(tiny_scenario, plan_of, load=3.0)
    ps = plan.services[0]
    cap = ps.capacity_tokens_per_s_per_domain
    demand = demand_series(ps, 97, np.random.default_rng(0))
    np.testing.assert_allclose(demand, 12 * cap, rtol=1e-12)  # flat, 3 x the fleet's capacity
    t_half = 10 * H + 1234.0  # between two control ticks
    power: list[float] = []

    def script(e: Engine) -> None:
        svc = e.services[0]

        def halve() -> None:
            power.append(e.power.site_it_w)
            e.autoscaler.set_capacity_factor(svc, "throttle", 0.5)
            power.append(e.power.site_it_w)

        at(e, t_half, halve)

    t = run_stepped(monkeypatch, plan, before=script)
    end = plan.run.duration_s
    row = t.jobs[t.jobs["name"] == "chat"].iloc[0]
    assert row["work"] == pytest.approx(12 * cap * end, rel=1e-12)
    assert row["work_done"] == pytest.approx(4 * cap * t_half + 2 * cap * (end - t_half), rel=1e-12)
    tr = t.traces
    served = dict(zip(tr["time_s"], tr["service.chat.served_tokens_per_s"], strict=True))
    assert served[9 * H] == pytest.approx(4 * cap, rel=1e-12)
    assert served[11 * H] == pytest.approx(2 * cap, rel=1e-12)
    share = 1234.0 / H  # the bin of the change: a time-weighted mean
    assert served[10 * H] == pytest.approx(cap * (4 * share + 2 * (1 - share)), rel=1e-12)
    assert (tr["service.chat.domains"] == 4).all()  # it held the whole fleet throughout
    # every domain stays fully loaded: the power does not move
    assert power[0] == power[1]


# --------------------------------------------------------------------------- bad values


BAD = [0.0, -0.5, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", BAD)
def test_a_bad_rate_factor_is_refused_and_changes_nothing(one_job: Plan, value: float) -> None:
    e = started(one_job)
    job = job_of(e, "p")
    while job.phase != Phase.RUNNING:
        e.env.step()  # submitted and started at time 0
    with pytest.raises(ValueError, match=r"rate factor throttle must be a positive number, got"):
        e.training.set_rate_factor(job, "throttle", value)
    with pytest.raises(ValueError, match=rf"rate factor network must be .*, got {value}"):
        e.training.set_rate_factor(job, "network", value, power_scale=0.5)
    unchanged = (job.base_rate, [1.0] * len(RATE_FACTORS), 1.0)
    assert (job.rate, job.factors, job.power_scale) == unchanged


@pytest.mark.parametrize("scale", [-0.1, 1.5, math.nan])
def test_a_bad_power_scale_is_refused(one_job: Plan, scale: float) -> None:
    e = started(one_job)
    job = job_of(e, "p")
    with pytest.raises(ValueError, match=r"power_scale must be within \[0, 1\], got"):
        e.training.set_rate_factor(job, "throttle", 0.5, power_scale=scale)
    assert (job.rate, job.power_scale) == (job.base_rate, 1.0)


@pytest.mark.parametrize("value", BAD)
def test_a_bad_capacity_factor_is_refused(
    tiny_scenario: Builder, plan_of: PlanOf, value: float
) -> None:
    e = started(flat_service(tiny_scenario, plan_of, load=0.5))
    svc = e.services[0]
    with pytest.raises(ValueError, match=r"capacity factor degraded must be a positive number"):
        e.autoscaler.set_capacity_factor(svc, "degraded", value)
    assert svc.capacity_per_domain == svc.base_capacity


def test_an_unknown_factor_name_is_refused_with_the_known_names(one_job: Plan) -> None:
    e = started(one_job)
    with pytest.raises(ValueError, match=r"thermal.*throttle"):
        e.training.set_rate_factor(job_of(e, "p"), "thermal", 0.5)
