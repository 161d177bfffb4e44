"""How the power controller's actions are carried out: the same state as one rate change at a
time, and no action on float residue.

A controller action may throttle a class several times at one instant (each round sheds what
it estimates); :meth:`~sim.engine.training.Training.throttle` carries the later rounds out
without re-planning each completion, and the state it leaves must be the one that a
:meth:`~sim.engine.training.Training.set_rate_factor` per change leaves, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from engine_helpers import at, finish, started

from sim.build import Plan
from sim.engine.control import clock_throughput
from sim.engine.core import Engine
from sim.engine.workloads import Job, Phase

H = 3600.0
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]


def _plan(tiny_scenario: Builder, plan_of: PlanOf) -> Plan:
    stream = {"name": "rl", "arrival_rate": "24 / d", "gpus": 72, "duration": "6 h"}
    data = tiny_scenario(racks=8, duration="2 d", posttraining=[stream])
    return plan_of(data)


def _running(e: Engine) -> list[Job]:
    return [j for j in e.jobs if j.phase == Phase.RUNNING and j.kind == "posttraining"]


def _state(e: Engine, j: Job) -> tuple[Any, ...]:
    return (
        j.rate,
        j.power_scale,
        j.finish_due,
        j.finish_plan,
        j.finish_at,
        j.finish_token == j.token,
        tuple(e.power.extra_w),
        tuple(e.training.class_scaled),
        tuple(e.training.clocks),
        e.training.ch_clock.times[-1],
        tuple(e.training.ch_clock.values),
    )


def test_a_job_throttled_twice_in_one_action_ends_as_after_two_rate_changes(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan = _plan(tiny_scenario, plan_of)
    steps = [(0.8, 0.8**3), (0.6, 0.6**3)]  # two rounds, each lower
    ends = []
    for lean in (False, True):
        e = started(plan)
        e.env.run(until=20 * H)
        jobs = _running(e)
        assert len(jobs) >= 2
        if lean:
            e.training.hold()
        for clock, scale in steps:
            for j in jobs:
                value = clock_throughput(clock, 0.7)
                if lean:
                    e.training.throttle(j, value, scale)
                else:
                    e.training.set_rate_factor(j, "throttle", value, power_scale=scale)
        if lean:
            e.training.settle()
        ends.append(([_state(e, j) for j in jobs], e))
    (plain, e_plain), (lean_state, e_lean) = ends
    assert lean_state == plain
    finish(e_plain)
    finish(e_lean)
    assert e_lean.job_rows() == e_plain.job_rows()


def test_float_residue_above_a_hall_limit_is_no_excess(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A hall an ulp above its limit (what shedding an excess exactly leaves) is not over: no
    action, nothing throttled, no time over the limit; a real excess still acts."""
    plan = _plan(tiny_scenario, plan_of)
    for excess, acts in ((1e-15, False), (1e-6, True)):
        e = started(plan)
        e.env.run(until=20 * H)
        ctl = e.control
        ctl.limits[0] = e.power.hall_it_w(0) * (1.0 - excess)
        ctl.watch = [0]
        ctl.check(e.env.now)
        e.env.run(until=20 * H + 10 * plan.facility.power_control.reaction_time_s)
        throttled = any(j.power_scale < 1.0 for j in e.jobs)
        assert throttled == acts
        assert (ctl.actions > 0) == acts
        assert (ctl.stats(e.env.now)["hall_over_limit_s"][0] > 0) == acts


def test_one_round_sheds_every_over_hall_even_where_the_class_is_thin(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """Two halls over by very different shares of the class's draw there: the common clock is
    the lowest that each hall needs, so one round brings both under (a clock from the summed
    excess alone left the hall most over still over)."""
    stream = {"name": "rl", "arrival_rate": "48 / d", "gpus": 72, "duration": "6 h"}
    data = tiny_scenario(racks=4, duration="2 d", posttraining=[stream])
    hall = data["facility"]["halls"][0]
    data["facility"]["halls"] = [hall, {**hall, "name": "hall2"}]
    data["facility"]["grid_power"] *= 2
    plan = plan_of(data)
    e = started(plan)
    e.env.run(until=20 * H)
    ctl, power = e.control, e.power
    per = power.train_w[0]
    draw = [sum(j.hall_n[h] * per for j in _running(e)) for h in (0, 1)]
    assert min(draw) > 0, "the class should run in both halls"
    ctl.watch = [0, 1]
    for h, share in ((0, 0.01), (1, 0.3)):
        ctl.limits[h] = power.hall_it_w(h) - share * draw[h]
    power.batch()
    e.training.hold()
    site, halls = ctl._excess()
    assert set(halls) == {0, 1}
    assert ctl._shed(site, halls)
    e.training.settle()
    power.flush(e.env.now)
    assert ctl._excess()[1] == {}


def _throttled_class(e: Engine, clock: float) -> list[Job]:
    """Throttle every running post-training job to ``clock`` as a shedding would."""
    jobs = _running(e)
    e.power.batch()
    e.training.hold()
    e.training.throttle_each([(j, clock_throughput(clock, 0.7), clock**3) for j in jobs])
    e.control.throttled.update(jobs)
    e.control._throttled_order = None
    e.control.shedding = True
    e.training.settle()
    e.power.flush(e.env.now)
    return jobs


def test_release_keeps_the_power_a_restarting_job_will_draw_again(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A throttled job restarting after a failure idles its domains for the restart only: its
    draw (at its clock) is kept for it, so headroom that is only its idle gap lifts nothing,
    and what is lifted beyond the gap fits with it back."""
    plan = _plan(tiny_scenario, plan_of)
    m = 1.0 - plan.facility.power_control.release_margin
    for spare in (0.5, 1.5):  # room beyond the restarting job's draw, in shares of it
        e = started(plan)
        e.env.run(until=20 * H)
        ctl, power = e.control, e.power
        jobs = _throttled_class(e, 0.7)
        assert len(jobs) >= 3
        victim = jobs[0]
        e.training.network_interrupt(victim, int(victim.held.view[0]))
        assert victim.phase == Phase.RESTARTING
        assert e.training.restarting_jobs() == [victim]
        _, r_halls = ctl._reserved()
        gap = victim.hall_n[0] * power.train_w[victim.hw] * victim.power_scale
        assert r_halls == {0: gap}
        ctl.watch = [0]
        ctl.limits = [(power.hall_it_w(0) + spare * gap) / m]
        assert ctl._any_headroom() == (spare > 1.0)
        power.batch()
        e.training.hold()
        gave = ctl._release()
        e.training.settle()
        power.flush(e.env.now)
        assert gave == (spare > 1.0)
        lifted = [j for j in jobs if j.power_scale > 0.7**3]
        assert bool(lifted) == (spare > 1.0)
        if lifted:  # what was lifted fits with the restarting job back at its clock
            assert power.hall_it_w(0) + gap <= ctl.limits[0] * m * (1 + 1e-12)


def test_release_uses_up_the_binding_hall_in_one_action(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A job spread over two halls is lifted by what the hall with the least room takes (its
    draw there), not by that room against its whole draw: one release leaves no room in the
    binding hall, so no other action follows a reaction time later for the rest."""
    stream = {"name": "rl", "arrival_rate": "48 / d", "gpus": 432, "duration": "6 h"}
    data = tiny_scenario(racks=4, duration="2 d", posttraining=[stream])
    hall = data["facility"]["halls"][0]
    data["facility"]["halls"] = [hall, {**hall, "name": "hall2"}]
    data["facility"]["grid_power"] *= 2
    plan = plan_of(data)
    m = 1.0 - plan.facility.power_control.release_margin
    e = started(plan)
    e.env.run(until=20 * H)
    ctl, power = e.control, e.power
    jobs = _throttled_class(e, 0.6)
    assert any(j.hall_n[0] and j.hall_n[1] for j in jobs), "a job should span both halls"
    ctl.watch = [0, 1]
    ctl.limits = [(power.hall_it_w(h) + 1e5) / m for h in (0, 1)]  # 100 kW of room in each
    assert ctl._any_headroom()
    power.batch()
    e.training.hold()
    assert ctl._release()
    e.training.settle()
    power.flush(e.env.now)
    assert not ctl._any_headroom()
    rooms = [ctl.limits[h] * m - power.hall_it_w(h) for h in (0, 1)]
    assert min(rooms) <= ctl.limits[0] * 1e-12
    assert min(rooms) >= -ctl.limits[0] * 1e-12


def _lower_halls(e: Engine) -> None:
    """Every hall's IT limit falls to 60% of its IT power now (as a heat wave's cooling)."""
    c = e.control
    it = e.power.fresh_it()
    c.hall_it_capacity_w = [0.6 * w for w in it]
    c.weather_changed()  # new limits: the controller watches every hall over its nameplate


@pytest.mark.parametrize("cap", ["site", "halls"])
def test_a_class_the_caps_refuse_whole_is_refused_job_by_job(
    tiny_scenario: Builder, plan_of: PlanOf, cap: str
) -> None:
    """The scheduler skips a class's queue when the controller's cheap bound
    (:meth:`~sim.engine.control.PowerController.refuses_all`, the site test of admission for
    the class's smallest gang) refuses it: that bound must never refuse a job that admission
    would start. Checked at every event of a run whose cap falls below its draw, so the queue
    fills while the cap binds."""
    plan = _plan(tiny_scenario, plan_of)
    e = started(plan)
    if cap == "site":
        at(e, 10 * H, lambda: e.control.set_cap(0.6 * e.control.cap_w))
    else:
        at(e, 10 * H, lambda: _lower_halls(e))
    refused = walked = 0
    while e.env.peek() < e.end_s:
        e.env.step()
        sched = e.scheduler
        for rank, q in enumerate(sched.queues):
            for hw, sizes in sched.sizes[rank].items():
                if not sizes or not e.control.refuses_all(rank, hw, min(sizes)):
                    continue
                refused += 1
                usable = e.fleet.n_free(hw) - sched.spares
                for job in q:
                    # a job whose gang is not free is not asked (it waits, or preempts)
                    if job.hw == hw and job.domains <= usable:
                        walked += 1
                        assert not e.control.admits(job), (e.env.now, job.name)
    finish(e)
    assert refused > 0 and walked > refused  # the bound refused, with jobs queued behind it


def test_admission_within_a_batch_reads_the_levels_as_changed_so_far(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A job stopping inside a batch (a failure's restart) and admission asked in the same batch
    (the failure handler lets queued work start): the site's level must not still hold the
    stopped job's draw, which the restarting jobs' reserve counts again (review of the
    reserve: a start refused on a level 150 MW too high). The batch's flush still writes the
    levels once, as it would have."""
    plan = _plan(tiny_scenario, plan_of)
    e = started(plan)
    e.env.run(until=20 * H)
    job = _running(e)[0]
    now = e.env.now
    p = e.power
    before = p.site_facility_w
    p.batch()
    p.set_draw(job, 0.0, now)
    assert p.site_facility_w == before  # not settled yet: the batch is under way
    e.control.admits(job)
    settled = p.site_facility_w
    assert settled < before  # admission settled the levels: the job's draw is gone
    n_rows = len(p.ch.times)
    p.flush(now)
    assert p.site_facility_w == settled
    assert len(p.ch.times) in (n_rows, n_rows + 1) and p.ch.values[-1] == settled


def test_a_walk_that_stops_once_every_gang_is_refused_starts_what_a_whole_walk_starts(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler stops walking a class once every gang queued there was refused since its
    last start: the jobs after would be refused too. Two gangs (1 and 2 racks) queue under a
    cap that binds; the run equals one whose walks never stop early, and stops happened."""
    from sim.engine.scheduler import PriorityGangScheduler

    streams = [
        {"name": "rl", "arrival_rate": "24 / d", "gpus": 72, "duration": "6 h"},
        {"name": "rl2", "arrival_rate": "12 / d", "gpus": 144, "duration": "6 h"},
    ]
    plan = plan_of(tiny_scenario(racks=8, duration="2 d", posttraining=streams))
    count = PriorityGangScheduler._n_gangs
    stops = [0]

    def counted(self: PriorityGangScheduler, rank: int) -> int:
        n = count(self, rank)
        stops[0] += n == 2  # asked with both gangs queued (a refusal, so a walk may stop)
        return n

    monkeypatch.setattr(PriorityGangScheduler, "_n_gangs", counted)
    rows = []
    for whole in (False, True):
        e = started(plan)
        if whole:  # as if every class queued a job with hardware options: walks never stop
            e.scheduler.optioned = [1] * len(e.scheduler.optioned)
        at(e, 10 * H, lambda e=e: e.control.set_cap(0.6 * e.control.cap_w))
        finish(e)
        rows.append((e.job_rows(), e.scheduler.preempted))
    assert rows[0] == rows[1]
    assert stops[0] > 0
