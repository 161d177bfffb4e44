"""Caps that bind: the power controller sheds load within its reaction time and gives it back.

The grid import cap is lowered by hand (as a demand-response event does) on a small factory of
two training classes and a service, and the run is stepped one event at a time. For each policy:
facility power is above the cap for at most the reaction time after each drop; throttling and
pausing lose no work (only failures or preemptions lose work); the lowest class gives way first;
when the cap comes back, what was shed is given back and the jobs finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.build import Plan
from sim.engine.control import clock_throughput
from sim.engine.core import Engine
from sim.engine.kernel import later
from sim.engine.workloads import Phase

H = 3600.0
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]


def scenario(tiny_scenario: Builder, plan_of: PlanOf, policy: str) -> Plan:
    return plan_of(two_jobs(tiny_scenario, policy))


def two_jobs(tiny_scenario: Builder, policy: Any) -> dict[str, Any]:
    # Each job alone takes ~41 h of the 2 days: Llama 3.1 8B FP8 on 288 GB200 runs at 10.2M
    # tokens/s with the GB200's measured FP8 GEMM efficiency (13.2M before), so 1.5e12 tokens
    # (2e12 before, which would no longer finish inside the run).
    data = tiny_scenario(
        racks=8,
        duration="2 d",
        reliability={"enabled": False},
        pretraining=[
            {
                "name": "high",
                "model": "llama3.1-8b",
                "gpus": 288,
                "tokens": 1.5e12,
                "checkpoint_interval": "1 h",
                "checkpoint_write": "1 min",
            },
            {
                "name": "low",
                "model": "llama3.1-8b",
                "gpus": 288,
                "tokens": 1.5e12,
                "checkpoint_interval": "1 h",
                "checkpoint_write": "1 min",
                "class": "low",
            },
        ],
        scheduler={"classes": [{"name": "pretraining"}, {"name": "low", "preemptible": True}]},
    )
    data["facility"]["power_control"] = {"policy": policy, "reaction_time": "1 min"}
    return data


def stepped(plan: Plan, events: list[tuple[float, float]]) -> tuple[Engine, list[Any]]:
    """Run ``plan`` one event at a time, setting the grid cap at the given (time, share of the
    steady cap) pairs; returns the engine and (time, facility, cap) after every event."""
    e = Engine(plan)
    e._setup()
    cap = plan.facility.grid_power_w
    for t, share in events:
        later(e.env, t, lambda _ev, c=cap * share: e.control.set_cap(c))
    trace = []
    while e.env.peek() < e.end_s:
        e.env.step()
        trace.append((e.env.now, e.power.site_facility_w, e.control.cap_w))
    e._close()
    return e, trace


def over_spells(trace: list[Any]) -> list[float]:
    """Lengths of the spells with facility power above the cap (after the last event at each
    instant)."""
    last: dict[float, tuple[float, float]] = {}
    for t, f, c in trace:
        last[t] = (f, c)
    spells, start = [], None
    for t in sorted(last):
        f, c = last[t]
        if f > c * (1 + 1e-12) and start is None:
            start = t
        elif f <= c * (1 + 1e-12) and start is not None:
            spells.append(t - start)
            start = None
    return spells


def idle_share(plan: Plan) -> float:
    """Facility power with both jobs running as a share of the grid cap (for picking caps)."""
    e = Engine(plan)
    e._setup()
    e.env.run(until=60.0)
    return e.power.site_facility_w / plan.facility.grid_power_w


@pytest.mark.parametrize("policy", ["throttle", "pause", "preempt"])
def test_a_lower_cap_is_met_within_the_reaction_time_and_given_back(
    tiny_scenario: Builder, plan_of: PlanOf, policy: str
) -> None:
    plan = scenario(tiny_scenario, plan_of, policy)
    busy = idle_share(plan)
    # at 2 h the cap drops to 90% of the draw with both jobs running, for 3 h
    e, trace = stepped(plan, [(2 * H, 0.9 * busy), (5 * H, 1.0)])
    spells = over_spells(trace)
    assert spells, "the lower cap should bind"
    assert max(spells) <= 60.0 + 1e-6  # within the reaction time
    high, low = (next(j for j in e.jobs if j.name == n) for n in ("high", "low"))
    # the higher class was left alone; both finished
    assert high.slowdown_s[0] == 0.0 and high.preemptions == 0
    assert high.phase == Phase.DONE and low.phase == Phase.DONE
    if policy == "throttle":
        assert low.slowdown_s[0] > 0 and low.lost_work == 0.0
    elif policy == "pause":
        assert low.lost_work == 0.0 and low.finish_s > high.finish_s
    else:
        assert low.preemptions >= 1
    assert e.control.stats(e.end_s)["site_over_cap_s"] <= sum(spells) + 1e-6


def test_the_throttle_follows_the_dvfs_model(tiny_scenario: Builder, plan_of: PlanOf) -> None:
    plan = scenario(tiny_scenario, plan_of, "throttle")
    busy = idle_share(plan)
    e = Engine(plan)
    e._setup()
    cap = plan.facility.grid_power_w
    later(e.env, H, lambda _ev: e.control.set_cap(cap * 0.95 * busy))
    e.env.run(until=H + 61.0)
    low = next(j for j in e.jobs if j.name == "low")
    clock = low.power_scale ** (1 / 3)
    assert 0.5 <= clock < 1.0
    assert low.rate / low.base_rate == pytest.approx(clock_throughput(clock, 0.7), rel=1e-12)
    # power falls faster than throughput (facility.md §3.2)
    assert 1.0 - low.power_scale > 1.0 - low.rate / low.base_rate
    assert e.power.site_facility_w <= cap * 0.95 * busy * (1 + 1e-9)


def test_refuse_starts_nothing_while_over_and_reports_the_time(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan = scenario(tiny_scenario, plan_of, "refuse")
    busy = idle_share(plan)
    e, trace = stepped(plan, [(2 * H, 0.9 * busy), (5 * H, 1.0)])
    st = e.control.stats(e.end_s)
    assert st["site_over_cap_s"] == pytest.approx(3 * H, rel=1e-9)  # nothing was shed
    assert max(over_spells(trace)) == pytest.approx(3 * H, rel=1e-9)


def test_deferrable_work_starts_in_cheap_hours_or_after_its_longest_wait(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    stream = {"name": "rl", "arrival_rate": "40 / d", "gpus": 72, "duration": "1 h"}
    base = tiny_scenario(racks=8, duration="3 d", posttraining=[stream])
    base["costs"] = {
        "energy_price": {
            "kind": "profile",
            "base": "$40/MWh",
            "peak": "$200/MWh",
            "peak_hours": [8, 20],
        }
    }
    deferred = {**base, "facility": {**base["facility"]}}
    deferred["facility"]["power_control"] = {
        "defer": {"classes": ["posttraining"], "quantile": 0.5, "max_wait": "6 h"}
    }
    runs = {}
    for name, data in (("now", base), ("deferred", deferred)):
        plan = plan_of(data)
        e = Engine(plan)
        e.run()
        runs[name] = e
    e = runs["deferred"]
    grid = e.plan.grid
    starts = [(j.first_start, j.submit_at_s) for j in e.jobs if j.first_start == j.first_start]
    assert starts and e.control.deferrals > 0
    for start, submit in starts:
        cheap = grid.price_usd_per_mwh[grid.index(start)] <= 40.0
        assert cheap or start - submit >= 6 * H - 1e-6 or start == submit, (start, submit)
    # the same jobs, started later on average, in cheaper hours
    now = runs["now"]
    mean_price = {
        k: sum(grid.price_usd_per_mwh[grid.index(j.first_start)] for j in r.jobs) / len(r.jobs)
        for k, r in runs.items()
    }
    assert len(now.jobs) == len(e.jobs)
    assert mean_price["deferred"] < mean_price["now"]


def test_deferring_on_a_constant_price_is_refused(tiny_scenario: Builder, plan_of: PlanOf) -> None:
    from sim.config.loader import ScenarioError

    data = tiny_scenario(racks=4)
    data["facility"]["power_control"] = {"defer": {"classes": ["posttraining"]}}
    with pytest.raises(ScenarioError, match="same in every hour, so nothing would be deferred"):
        plan_of(data)


def test_a_throttle_is_lifted_from_a_job_that_was_restarting(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A job throttled, then hit by a failure, is restarting when the cap comes back: its
    throttle is lifted all the same (it used to keep it for the rest of the run)."""
    data = tiny_scenario(
        racks=8,
        duration="2 d",
        reliability={"enabled": False, "restart_overhead": "10 min"},
        pretraining=[
            {
                "name": "low",
                "model": "llama3.1-8b",
                "gpus": 288,
                "tokens": 2e12,
                "checkpoint_interval": "1 h",
                "checkpoint_write": "1 min",
            }
        ],
    )
    data["facility"]["power_control"] = {"policy": "throttle", "reaction_time": "1 min"}
    plan = plan_of(data)
    busy = idle_share(plan)
    e = Engine(plan)
    e._setup()
    cap = plan.facility.grid_power_w
    job = e.jobs[0]
    later(e.env, 2 * H, lambda _ev: e.control.set_cap(cap * 0.9 * busy))
    later(e.env, 2 * H + 120, lambda _ev: e.reliability.fail(int(job.held.all()[0]), H))
    later(e.env, 2 * H + 130, lambda _ev: e.control.set_cap(cap))
    e.env.run(until=2 * H + 125)
    assert job.phase == Phase.RESTARTING and job.power_scale < 1.0
    e.env.run(until=4 * H)
    assert job.power_scale == 1.0 and job.rate == job.base_rate
    assert job not in e.control.throttled


def test_keys_that_would_change_nothing_are_refused(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    from sim.config.loader import ScenarioError

    inf = {
        "name": "chat",
        "model": "llama3.1-8b",
        "input_tokens": 100,
        "output_tokens": 100,
        "demand": {"mean_requests_per_s": 1.0},
    }
    data = tiny_scenario(racks=4, inference=[inf])
    data["costs"] = {"energy_price": {"kind": "profile", "base": "$40/MWh", "peak": "$90/MWh"}}
    data["facility"]["power_control"] = {"defer": {"classes": ["inference"]}}
    with pytest.raises(ScenarioError, match="has no training work to defer"):
        plan_of(data)
    data = tiny_scenario(racks=4)
    data["facility"]["oversubscription"] = 1.25  # every hall gives its racks
    with pytest.raises(ScenarioError, match="no hall can take more racks"):
        plan_of(data)


@pytest.mark.parametrize("energy", ["5 MWh", "50 kWh"])
def test_a_battery_rides_through_a_lower_cap_until_it_empties(
    tiny_scenario: Builder, plan_of: PlanOf, energy: str
) -> None:
    """With a battery big enough for the call, the grid never sees more than the cap and
    nothing is throttled; with a small one it empties, then the throttle takes over. Energy
    balances: what the grid gave is the facility's energy less the battery's net discharge."""
    plan = scenario(tiny_scenario, plan_of, "throttle")
    busy = idle_share(plan)
    data = tiny_scenario(racks=8, duration="2 d")  # only to get the same grid power
    assert data["facility"]["grid_power"] == pytest.approx(plan.facility.grid_power_w)
    import dataclasses

    from sim.config.power_control import BatteryConfig

    bat = BatteryConfig.model_validate({"power": "1 MW", "energy": energy})
    pc = plan.facility.power_control.model_copy(update={"battery": bat})
    plan = dataclasses.replace(plan, facility=dataclasses.replace(plan.facility, power_control=pc))
    e = Engine(plan)
    e._setup()
    cap = plan.facility.grid_power_w
    low_cap = cap * 0.9 * busy
    later(e.env, 2 * H, lambda _ev: e.control.set_cap(low_cap))
    later(e.env, 3 * H, lambda _ev: e.control.set_cap(cap))
    worst = 0.0
    while e.env.peek() < e.end_s:
        e.env.step()
        if e.env.peek() > e.env.now:
            b = e.control.battery
            assert b is not None
            grid = e.power.site_facility_w - b.flow_w
            worst = max(worst, grid - e.control.cap_w)
    e._close()
    st = e.control.stats(e.end_s)
    low = next(j for j in e.jobs if j.name == "low")
    if energy == "5 MWh":  # 1 h x (10% of ~1.3 MW) fits: nothing is shed
        assert worst <= 1e-6 and low.slowdown_s[0] == 0.0
        assert st["battery"]["discharged_mwh"] > 0
    else:  # it empties within minutes, then the throttle acts within its reaction time
        assert low.slowdown_s[0] > 0
        assert st["longest_over_s"] <= 60.0 + 1e-6
    b = st["battery"]
    assert b["min_state_of_charge_mwh"] >= -1e-12
    # recharged afterwards, at the round-trip efficiency
    assert b["charged_mwh"] * 0.9 == pytest.approx(b["discharged_mwh"], rel=1e-6)


def test_a_battery_that_starts_half_full_charges_from_headroom() -> None:
    from sim.runner import prepare, simulate

    bat = "{power: 1 MW, energy: 2 MWh, initial_charge: 0.5, efficiency: 0.9}"
    from pathlib import Path

    smoke = Path(__file__).resolve().parents[1] / "scenarios" / "smoke.yaml"
    _, plan = prepare(smoke, overrides=[f"facility.power_control.battery={bat}"])
    tables, _ = simulate(plan)
    b = tables.summary["power_control"]["battery"]
    assert b["charged_mwh"] == pytest.approx(1.0 / 0.9, rel=1e-9)  # 1 MWh stored
    assert b["discharged_mwh"] == 0.0
    tr = tables.traces
    grid = tr["grid_import_w"].to_numpy()
    assert (grid <= plan.facility.grid_power_w * (1 + 1e-9)).all()
    # grid import = facility power + charging
    assert grid[0] > tr["facility_power_w"].iloc[0]


def test_a_ladder_pauses_what_throttling_cannot_shed(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A cap so low that the lowest clock is not enough: ``throttle`` alone stays over it with
    nothing left to shed; ``[throttle, pause]`` throttles the low class, then pauses it, and
    holds the cap within the reaction time, before the high class is touched."""
    results = {}
    for policy in ("throttle", ["throttle", "pause"]):
        plan = scenario(tiny_scenario, plan_of, policy)  # type: ignore[arg-type]
        busy = idle_share(plan)
        e, trace = stepped(plan, [(2 * H, 0.4 * busy), (5 * H, 1.0)])
        results[str(policy)] = (e, over_spells(trace))
    e, spells = results["throttle"]
    assert e.control.stats(e.end_s)["nothing_left_to_shed"]
    assert max(spells) > 60.0  # the floor of the throttle is not enough
    e, spells = results["['throttle', 'pause']"]
    st = e.control.stats(e.end_s)
    assert not st["nothing_left_to_shed"] and st["policy"] == "throttle, pause"
    assert max(spells) <= 60.0 + 1e-6
    high, low = (next(j for j in e.jobs if j.name == n) for n in ("high", "low"))
    assert low.lost_work == 0.0 and low.phase == Phase.DONE and high.phase == Phase.DONE
    assert low.finish_s > high.finish_s  # it was paused; the high class kept running
    assert high.preemptions == 0 and low.preemptions == 0
    assert high.slowdown_s[0] > 0  # then the high class was throttled, not paused


def test_services_are_throttled_last_and_lose_little(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A site that only serves: under a lower cap the service's clock falls; its capacity per
    domain falls by the serving throughput (decode is memory-bound: c = 0.2), much less than
    its draw per domain of load (clock³); when the cap comes back the clock is lifted."""
    data = tiny_scenario(
        racks=8,
        duration="1 d",
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "demand": {"mean_requests_per_s": 2000, "peak_to_trough": 1.0, "noise_cv": 0},
                "input_tokens": 1000,
                "output_tokens": 500,
                "control_interval": "5 min",
            }
        ],
    )
    data["facility"]["power_control"] = {"policy": "throttle", "reaction_time": "1 min"}
    plan = plan_of(data)
    e = Engine(plan)
    e._setup()
    e.env.run(until=H)
    (svc,) = e.autoscaler.services
    draw = e.power.site_facility_w
    assert svc.load_w > 0
    cap = plan.facility.grid_power_w
    later(e.env, 1.0, lambda _ev: e.control.set_cap(draw - 0.3 * svc.load_w * svc.slope))
    e.env.run(until=H + 62.0)
    clock = svc.power_scale ** (1 / 3)
    assert 0.5 <= clock < 1.0
    thr = svc.capacity_per_domain / svc.base_capacity
    assert thr == pytest.approx(clock_throughput(clock, 0.2), rel=1e-12)
    assert 1.0 - svc.power_scale > 3 * (1.0 - thr)  # power falls much faster than throughput
    assert e.power.site_facility_w <= e.control.cap_w * (1 + 1e-9)
    assert e.training.service_clocks[0] == pytest.approx(clock)
    later(e.env, 1.0, lambda _ev: e.control.set_cap(cap))
    e.env.run(until=H + 200.0)
    assert svc.power_scale == 1.0 and svc.capacity_per_domain == svc.base_capacity
    assert not e.control.throttled_services and not e.control.shedding


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ([], "at least one policy"),
        (["throttle", "throttle"], "appears twice"),
        (["throttle", "refuse"], "'refuse' stands alone"),
        (["throttle", "shed"], "throttle"),
    ],
)
def test_a_bad_ladder_is_refused(
    tiny_scenario: Builder, write_scenario: Callable[..., Any], policy: Any, message: str
) -> None:
    from sim.config.loader import ScenarioError, load_scenario

    data = tiny_scenario()
    data["facility"]["power_control"] = {"policy": policy}
    with pytest.raises(ScenarioError, match=r"facility\.power_control\.policy") as info:
        load_scenario(write_scenario(data))
    assert message in str(info.value)


def test_paused_hours_by_class_are_counted_from_the_events() -> None:
    """A pause lasts from ``paused`` to the next ``resumed``, ``preempted`` or ``finished``
    (a failure in between does not end it), or to the end of the run."""
    import pandas as pd

    from sim.analysis import _paused_hours

    ev = pd.DataFrame(
        {
            "time_s": [0.0, H, 2 * H, 5 * H, 6 * H, 7 * H],
            "event": ["paused", "interrupted", "resumed", "paused", "paused", "finished"],
            "subject": ["a", "a", "a", "a", "b", "b"],
        }
    )
    jobs = pd.DataFrame({"name": ["a", "b"], "class": ["low", "high"]})
    got = _paused_hours(ev, jobs, end_s=10 * H)
    assert got == {"low": pytest.approx(2.0 + 5.0), "high": pytest.approx(1.0)}


@pytest.mark.parametrize("policy", ["throttle", ["throttle", "pause"]])
def test_the_summary_warns_when_nothing_was_left_to_shed(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Any, policy: Any
) -> None:
    """A demand-response call deeper than the throttle's floor (the cap at 40% of the busy
    draw, as in the ladder test above): with ``throttle`` alone the summary warns and names
    the ladder; with ``[throttle, pause]`` the cap holds and it does not."""
    data = two_jobs(tiny_scenario, policy)
    plan = plan_of(data)
    busy = idle_share(plan)  # facility power with both jobs running, as a share of the cap
    grid = plan.facility.grid_power_w
    data["facility"]["demand_response"] = [
        {"start": "2 h", "length": "3 h", "shed": f"{grid * (1 - 0.4 * busy):.0f} W"}
    ]
    _plan, tables = run_scenario(data)
    s = tables.summary
    said = [w for w in s["warnings"] if "had nothing left to shed" in w]
    if policy == "throttle":
        assert s["power_control"]["nothing_left_to_shed"]
        assert len(said) == 1 and "add pause or preempt" in said[0]
    else:
        assert not s["power_control"]["nothing_left_to_shed"] and not said
