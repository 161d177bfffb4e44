"""The power accounting keeps each hall's IT power and each service's load per hall between
reads (:meth:`Power.fresh_it`): every way the fleet changes a service's domains, and every
change of its load or of a hall's other parts, must make the next read equal a fresh sum, and
tell the controller which halls changed (:attr:`Power.touched`).

It also keeps each job's weights for the power controller (:meth:`Power.weights`: its full
training draw above idle per hall, and in facility watts at the slopes in force): on a small
site that the controller sheds and gives back hundreds of times in three days, every kept
weight must equal a count of the job's domains hall by hall after every event, and the run must
be the same, bit for bit, as one that computes every weight afresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from engine_helpers import run_stepped

import sim.runner
from sim.build import Plan
from sim.engine.core import Engine
from sim.engine.fleet import Fleet
from sim.engine.power import HallPower, Power
from sim.engine.workloads import Job, Service, Workload
from sim.record import Recorder

# one hardware type, domains 0-3 in hall 0, 4-7 in hall 1, 8-11 in hall 2
HW = np.zeros(12, dtype=np.int16)
HALL = np.repeat(np.arange(3, dtype=np.int16), 4)


def setup() -> tuple[Fleet, Power, list[Service]]:
    rec = Recorder()
    halls = [HallPower(f"h{h}", 0, 4, 1000.0, 0.2, 0.8, 0.6, 0.1, 50.0, 1e6) for h in range(3)]
    power = Power(halls, 1.2, rec)
    fleet = Fleet(HW, HALL, (12,), 3, rec, power, 1)
    services = []
    for name in ("a", "b"):
        svc = Service(
            name,
            0,
            0,
            False,
            fleet.slot,
            12,
            3,
            capacity_per_domain=1.0,
            max_load=1.0,
            min_domains=0,
            interval_s=60.0,
            demand=np.zeros(2),
            tokens_per_request=np.ones(2),
            replicas_per_domain=1.0,
            prompt_cache_hit=0.0,
            client_timeout_s=1.0,
        )
        svc.index = fleet.register(svc)
        power.add_service(svc)
        services.append(svc)
    return fleet, power, services


def fresh_sum(power: Power, h: int) -> float:
    """Hall ``h``'s IT power summed from the parts now (the rule of :mod:`sim.engine.power`)."""
    w = power.hall_w[h]
    for svc in power.services:
        if svc.held.size and svc.hall_n[h]:
            w += svc.load_w * svc.hall_n[h] / svc.held.size
    return w


def test_every_change_of_a_service_or_a_hall_is_seen_by_the_next_read() -> None:
    fleet, power, (a, b) = setup()
    power.set_service_load(a, 300.0, 0.0)
    power.set_service_load(b, 70.0, 0.0)
    fleet.take(a, 2, 0.5)
    # nothing read yet, so nothing was kept: the first read sums everything, touches every hall
    assert [power.hall_it_w(h) for h in range(3)] == [fresh_sum(power, h) for h in range(3)]
    assert power.touched == {0, 1, 2}
    # each step changes a holding, a load or a hall's other parts; the reads before it filled
    # the caches, so a change that is not told leaves a read different from the fresh sum
    steps = [
        lambda: fleet.take(a, 4, 1.0),  # halls 0 and 1
        lambda: fleet.take(b, 3, 2.0),  # halls 1 and 2
        lambda: fleet.take1(a, 3.0),  # hall 2: a's share changes in every hall
        lambda: fleet.give_back(a, 2, 4.0),
        lambda: fleet.fail(int(a.held.items[0]), 5.0),  # a loses a domain of hall 0
        lambda: fleet.fail(11, 6.0),  # a free domain of hall 2: its idle power changes
        lambda: fleet.repair(11, 7.0),
        lambda: power.set_service_load(b, 95.0, 8.0),
        lambda: (power.batch(), power.service_load_in_batch(a, 250.0), power.flush(9.0)),
        lambda: fleet.give_back(b, b.held.size, 10.0),  # b holds nothing any more
    ]
    for step in steps:
        before = [power.hall_it_w(h) for h in range(3)]
        power.touched.clear()
        step()
        after = [fresh_sum(power, h) for h in range(3)]
        assert [power.hall_it_w(h) for h in range(3)] == after
        changed = {h for h in range(3) if after[h] != before[h]}
        assert changed, "each step changes some hall's IT power"
        assert changed <= power.touched, "a hall whose IT power changed is not marked"
    assert a.load_w == 250.0 and a.held.size == 4


def live_plan(tiny_scenario: Callable[..., dict[str, Any]], plan_of: Callable[..., Plan]) -> Plan:
    """Two halls filled 50% beyond their power in a Phoenix summer (weather-driven PUE), one-
    domain post-training jobs arriving every few minutes, a service and failures: the
    controller sheds and gives back about 500 times in three days."""
    data = tiny_scenario(
        racks=12,
        duration="3 d",
        seed=3,
        reliability={"failure_rate_per_1000_node_days": 150, "repair_time": "4 h"},
        posttraining=[{"name": "rl", "arrival_rate": "200 / d", "gpus": 72, "duration": "6 h"}],
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "input_tokens": 100,
                "output_tokens": 200,
                "min_domains": 1,
                "control_interval": "20 min",
                "demand": {"mean_requests_per_s": 20.0, "noise_cv": 0.3},
            }
        ],
    )
    fac = data["facility"]
    hall = {**fac["halls"][0], "racks": "fill"}
    fac["halls"] = [hall, {**hall, "name": "hall2"}]
    fac["grid_power"] *= 2
    fac["oversubscription"] = 1.5
    fac["pue"] = "weather"
    fac["weather"] = {"kind": "synthetic", "site": "phoenix", "year_offset": "190 d"}
    return plan_of(data)


def _domains_per_hall(e: Engine, w: Workload) -> list[int]:
    """``w``'s domains counted hall by hall from the fleet's state (not its ``hall_n``)."""
    ids = np.flatnonzero(e.fleet.holder == w.index)
    return np.bincount(e.fleet.domain_hall[ids], minlength=len(e.power.halls)).tolist()


def test_the_controllers_job_weights_equal_a_fresh_count_after_every_event(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = live_plan(tiny_scenario, plan_of)
    seen = {"kept": 0, "moved": 0, "new_slopes": 0}
    last: dict[str, Any] = {"weighed": {}, "slope": []}

    def check(e: Engine) -> None:
        power = e.power
        n_halls = len(power.halls)
        for w, its in power._job_it.items():
            n = _domains_per_hall(e, w)
            per = power.train_w[w.hw]
            assert its == [k * per for k in n], (e.env.now, w.name)
            fac = power._job_fac.get(w)
            if fac is not None:
                fresh = 0.0
                for h in range(n_halls):
                    fresh += n[h] * per * power.slope[h]
                assert fac == fresh, (e.env.now, w.name)
            seen["kept"] += 1
        # the changes a kept weight must not survive did happen: a weighed job's domains
        # moved (a failure, a replacement), new slopes came while facility weights were kept
        for w, n in last["weighed"].items():
            seen["moved"] += isinstance(w, Job) and w.held.size > 0 and _domains_per_hall(e, w) != n
        seen["new_slopes"] += bool(power._job_fac or last["weighed"]) and (
            power.slope != last["slope"]
        )
        last["weighed"] = {w: _domains_per_hall(e, w) for w in power._job_it}
        last["slope"] = list(power.slope)

    run_stepped(monkeypatch, plan, check, per_instant=True)
    assert seen["kept"] > 5_000
    assert seen["moved"] > 0 and seen["new_slopes"] > 10, seen


def test_a_run_with_kept_weights_is_the_run_that_weighs_afresh(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = live_plan(tiny_scenario, plan_of)
    kept, stats = sim.runner.simulate(plan)
    assert stats.model_events > 0
    weights = Power.weights

    def afresh(power: Power, w: Workload) -> tuple[float, list[float]]:
        power._job_it.pop(w, None)
        power._job_fac.pop(w, None)
        return weights(power, w)

    with monkeypatch.context() as m:
        m.setattr(Power, "weights", afresh)
        fresh, _ = sim.runner.simulate(plan)
    assert kept.summary["power_control"]["actions"] > 300
    pd.testing.assert_frame_equal(kept.jobs, fresh.jobs)
    pd.testing.assert_frame_equal(kept.traces, fresh.traces)
