"""Tier (b): the live IT power of every hall and of the site against a brute-force sum.

A small run on two halls of the same hardware (failures, post-training arrivals, a pre-training
job that spans both halls and is throttled with a power scale for a while, an inference
service) is stepped one SimPy event at a time. After every event the engine's power levels
(:meth:`Power.hall_it_w`, :attr:`Power.site_it_w`) must equal a sum over the domains computed
from the fleet's state alone (``engine_helpers.brute_force_halls``), following the rule in the
docstring of :mod:`sim.engine.power` (not the engine's incremental formula):

* a failed domain draws ``P x f_failed``; a free one ``P x f_idle``;
* a domain of a RUNNING job draws ``P x (f_idle + (f_training - f_idle) x power_scale)``; of a
  job that is restarting, ``P x f_idle``;
* a domain of a service draws ``P x (f_idle + (f_inference - f_idle) x load / held)`` with
  ``load = min(demand of the current tick / capacity per domain, held)``, or ``held`` while
  the service's backlog of demand it could not serve at once waits (sim.engine.backlog);
* each hall adds ``it_overhead_fraction x its domains x P``.

The same step function, integrated here, must give the energy of ``summary.json`` and the
facility power of every trace bin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from engine_helpers import at, brute_force_halls, run_stepped

from sim.build import Plan
from sim.contract import HALL, entity_column
from sim.engine.core import Engine
from sim.engine.fleet import FAILED
from sim.engine.workloads import Phase

H = 3600.0
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]
REL = 1e-9


def scenario(tiny_scenario: Builder, plan_of: PlanOf) -> Plan:
    data = tiny_scenario(
        racks=3,
        duration="2 d",
        sample_interval="1 h",
        seed=7,
        reliability={"failure_rate_per_1000_node_days": 150, "repair_time": "5 h"},
        pretraining=[
            {
                "name": "p",
                "model": "llama3.1-8b",
                "gpus": 288,  # 4 domains: 3 in hall1 and 1 in hall2 on a fresh factory
                "tokens": 3e12,
                "submit_at": "1 h",
                "checkpoint_interval": "2 h",
                "checkpoint_write": "2 min",
            }
        ],
        posttraining=[
            {"name": "rl", "arrival_rate": "8 / d", "gpus": 72, "duration": "4 h"},
        ],
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "input_tokens": 100,
                "output_tokens": 200,
                "control_interval": "20 min",
                "min_domains": 1,
                "demand": {"mean_requests_per_s": 1.0, "noise_cv": 0.3},
            }
        ],
    )
    data["facility"]["halls"].append({"name": "hall2", "hardware": "gb200_nvl72", "racks": 3})
    data["facility"]["grid_power"] = 6 * 132e3 * 1.1 * 1.2 * 1.05 + 1.0
    svc = data["workloads"]["inference"][0]
    ps = plan_of(data).services[0]
    # about 1.3 domains of demand on average: the service scales between 1 and 3 domains
    svc["demand"]["mean_requests_per_s"] = (
        1.3 * ps.capacity_tokens_per_s_per_domain * ps.max_load / ps.tokens_per_request
    )
    plan = plan_of(data)
    assert len(plan.halls) == 2 and plan.halls[0].hw_index == plan.halls[1].hw_index
    return plan


def test_hall_and_site_power_equal_a_brute_force_sum_at_every_event(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = scenario(tiny_scenario, plan_of)
    pue = plan.facility.pue
    steps: list[tuple[float, float, list[float]]] = []  # (time, site IT, halls IT) after events
    seen = {"events": 0, "spans": 0, "throttled": 0, "restarting": 0, "failed": 0, "service": 0}

    def check(e: Engine) -> None:
        halls = brute_force_halls(e)
        site = math.fsum(halls)
        live = [e.power.hall_it_w(h) for h in range(len(halls))]
        assert live == [pytest.approx(x, rel=REL) for x in halls], e.env.now
        assert e.power.site_it_w == pytest.approx(site, rel=REL), e.env.now
        assert e.power.site_facility_w == pytest.approx(site * pue, rel=REL)
        steps.append((e.env.now, site, halls))
        # what the run covered (asserted at the end, so the test keeps its meaning)
        p = next(j for j in e.jobs if j.name == "p")
        seen["events"] += 1
        seen["spans"] += min(p.hall_n) > 0 and p.phase == Phase.RUNNING
        seen["throttled"] += p.power_scale < 1.0 and p.phase == Phase.RUNNING
        seen["restarting"] += any(j.phase == Phase.RESTARTING for j in e.jobs)
        seen["failed"] += bool((e.fleet.state == FAILED).any())
        seen["service"] += e.services[0].held.size > 1

    def script(e: Engine) -> None:
        p = next(j for j in e.jobs if j.name == "p")

        def throttle(value: float, scale: float) -> None:
            e.training.set_rate_factor(p, "throttle", value, power_scale=scale)

        at(e, 6 * H, lambda: throttle(0.7, 0.55))
        at(e, 20 * H, lambda: throttle(1.0, 1.0))
        # the service throttled too: its draw per domain of load at the lower clock, in every
        # hall it holds (the halls' traces once added it at full clock)
        svc = e.services[0]
        at(e, 9 * H, lambda: e.autoscaler.set_clock(svc, 0.8, 0.6))
        at(e, 15 * H, lambda: e.autoscaler.set_clock(svc, 1.0, 1.0))
        # a failure of the job's domain in hall2 while it runs: a replacement, or the queue
        at(e, 3 * H, lambda: e.reliability.fail(3, 2 * H))

    tables = run_stepped(monkeypatch, plan, check, before=script)

    ev = tables.events
    assert seen["events"] > 200
    for k in ("spans", "throttled", "restarting", "failed", "service"):
        assert seen[k] > 0, k  # the run exercised every kind of draw
    assert (ev["event"] == "failure").sum() >= 3
    assert (ev["workload"] == "posttraining").any()

    # the power as a step function: the value after the last event at each instant
    end = plan.run.duration_s
    last: dict[float, tuple[float, list[float]]] = {}
    for t, site, halls in steps:
        last[t] = (site, halls)
    times = sorted(last)
    assert times[0] == 0.0

    def integral(f: Callable[[float, list[float]], float], a: float, b: float) -> float:
        total = 0.0
        for i, t in enumerate(times):
            t1 = times[i + 1] if i + 1 < len(times) else end
            lo, hi = max(t, a), min(t1, b)
            if hi > lo:
                total += f(*last[t]) * (hi - lo)
        return total

    def site_w(site: float, _halls: list[float]) -> float:
        return site

    def hall_w(h: int, _site: float, halls: list[float]) -> float:
        return halls[h]

    energy = tables.summary["energy"]
    assert energy["it_mwh"] == pytest.approx(integral(site_w, 0.0, end) / 3.6e9, rel=REL)
    assert energy["facility_mwh"] == pytest.approx(
        integral(site_w, 0.0, end) * pue / 3.6e9, rel=REL
    )
    for h, hall in enumerate(plan.halls):
        hall_mwh = integral(partial(hall_w, h), 0.0, end) / 3.6e9
        assert energy["halls"][hall.name]["it_mwh"] == pytest.approx(hall_mwh, rel=REL)

    # the traces: every bin's facility power is the mean of the step function over the bin,
    # the summary's energy is their integral, and the halls add up to the site in every row
    tr = tables.traces
    assert energy["facility_mwh"] == pytest.approx(
        float((tr["facility_power_w"] * tr["interval_s"]).sum()) / 3.6e9, rel=REL
    )
    hall_cols = [entity_column(HALL, hall.name, "it_power_w") for hall in plan.halls]
    for t0, dt, it, fac, *halls in zip(
        tr["time_s"],
        tr["interval_s"],
        tr["it_power_w"],
        tr["facility_power_w"],
        *(tr[c] for c in hall_cols),
        strict=True,
    ):
        mean = integral(site_w, t0, t0 + dt) / dt
        assert it == pytest.approx(mean, rel=REL), t0
        assert fac == pytest.approx(mean * pue, rel=REL), t0
        assert math.fsum(halls) == pytest.approx(it, rel=1e-12), t0
