"""The power controller (component ``power.control``): caps that bind.

Caps in force: the site's grid import (facility power), each hall's IT power capacity, and each
hall's heat-rejection capacity (its IT power is its heat; the capacity derates in the heat under
``pue: weather``). After every change of power the controller checks them in O(1): the site
always, a hall only while its nameplate draw could exceed its limit (never, on a site filled on
nameplate in cool weather), and then only when its IT power changed since the last check
(:attr:`~sim.engine.power.Power.touched`; every watched hall after new limits or a new
watch). When one is exceeded it acts ``reaction_time`` later, by the policy of
``facility.power_control`` (:mod:`sim.config.power_control`), and checks again at once, so power
stays above a cap for at most the reaction time unless the policy has nothing left to shed
(every class at the lowest clock, nothing left to pause or preempt, or ``refuse``, which only
stops new work). While a cap is exceeded, and while anything is shed, no new training job starts.
When there is headroom again (``release_margin`` below every cap) the controller lifts what it
shed, the highest class first, as far as the headroom allows, ``reaction_time`` after the
headroom appeared. Headroom counts the power of the jobs restarting after a failure as drawn
(:meth:`PowerController._reserved`): their domains idle only for the restart, and a frontier
run's restart (some 220 MW at 1 GW, several times an hour) handed to lower classes came back
over the cap when the run resumed. Admission counts it the same way. A throttled job is lifted
as far as the site's room and the room of every watched hall it spans allow (its draw there),
so the cap that binds is used up in one action.

**Throttle** (facility.md §3.2): at a clock ``r`` (a share of the full clock) a job's power above
idle is ``r³`` of its full draw and its rate is ``1 / (c / r + 1 - c)`` of the full rate, ``c``
the compute-bound share of its step. The controller sets one clock per job, chosen per class
from the lowest: the highest that sheds the site's excess and each over hall's, no lower than
``min_clock``; changes go through :meth:`~sim.engine.training.Training.throttle` (the
``throttle`` factor and power scale of :meth:`~sim.engine.training.Training.set_rate_factor`,
the completions re-planned once per action), so no work is lost. Power within ``1e-12`` of a
cap is at the cap (float residue of the sums, not an excess). Services of a class are
throttled after its training jobs, to one common clock
(:meth:`PowerController._throttle_services`): their capacity per domain falls by the throughput
of ``serving_compute_bound_share`` and their draw per domain of load by clock³
(:meth:`~sim.engine.services.Autoscaler.set_clock`). Release lifts the services' clocks first
(serving is the top class by default), then resumes paused jobs and lifts training throttles.

Exact accounting: seconds with the site above its cap, and above each hall's limits, are summed
between changes (:meth:`PowerController.stats`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import simpy

from sim.config.power_control import PowerControlConfig
from sim.contract import TRACE
from sim.engine.battery import Battery
from sim.engine.fleet import Fleet
from sim.engine.kernel import Call, later
from sim.engine.power import Power
from sim.engine.scheduler import PriorityGangScheduler
from sim.engine.services import Autoscaler
from sim.engine.training import Training
from sim.engine.workloads import Job, Phase, Service
from sim.record import Recorder

__all__ = ["PowerController", "clock_throughput"]

_ROUNDS = 8  # actions in one go while a cap is still exceeded (each sheds what it estimates)
#: watts above a cap within this share of it are float residue, not an excess: a throttle to
#: the clock that sheds an excess exactly leaves the sum of the draws an ulp or two above the
#: limit (3e-8 W on a 197 MW hall); acting on that re-set every job of the class to a clock
#: differing in the 16th digit, round after round, and slowed the classes above by as much
_RESIDUE = 1e-12


def clock_throughput(clock: float, compute_bound_share: float) -> float:
    """Throughput at ``clock`` (share of the full clock): only the compute-bound share of a step
    stretches (facility.md §3.2)."""
    c = compute_bound_share
    return 1.0 / (c / clock + 1.0 - c)


class PowerController:
    name = "power.control"

    def __init__(
        self,
        env: simpy.Environment,
        cfg: PowerControlConfig,
        grid_cap_w: float,
        hall_it_capacity_w: list[float],
        power: Power,
        training: Training,
        scheduler: PriorityGangScheduler,
        fleet: Fleet,
        rec: Recorder,
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.cap_w = grid_cap_w
        self.power = power
        self.training = training
        self.scheduler = scheduler
        self.fleet = fleet
        self.hall_it_capacity_w = hall_it_capacity_w
        #: each hall's limit (IT capacity or heat rejection, the lower): changes with the weather
        self.limits = self._limits()
        #: nameplate IT draw of each hall: a hall whose nameplate fits its limits needs no check
        self.nameplate_w = [h.overhead_w + h.n_domains * h.domain_power_w for h in power.halls]
        self.watch = self._halls_to_watch()
        #: the watch list and limits at the last check (a new list of either: check them all)
        self._checked_watch: list[int] | None = None
        self._checked_limits: list[float] | None = None
        self._watched: set[int] = set()
        self._watch_set_of: list[int] | None = None  # the list _watch_set was made from
        self._watch_set: set[int] = set()
        self._watch_all = False  # every hall is watched
        self.pending = False
        #: the controller must look after every change (a hall is watched, something is shed,
        #: or a cap is exceeded); otherwise only facility power above the cap calls it
        self.watching = bool(self.watch)
        self.paused: list[Job] = []
        self.announced: list[tuple[float, float]] = []  # (start, cap) of calls given notice
        self.throttled: set[Job] = set()  # jobs this controller slowed, in any phase
        #: the same jobs by class, then index (the order release lifts them in), once sorted
        self._throttled_order: list[Job] | None = None
        self.shedding = False  # something is throttled, paused or refused
        self.over_since: float | None = None  # when the site went above its cap
        self.site_over_s = 0.0
        self.hall_over_since: dict[int, float] = {}
        self.hall_over_s = [0.0] * len(power.halls)
        self.actions = 0  # times the controller shed or gave back something
        self.saturated_s: float | None = None  # last time it had nothing left to shed
        self.longest_over_s = 0.0  # longest spell above any cap
        self.ch_cap = rec.channel(TRACE["grid_cap_w"].name, initial=grid_cap_w)
        self.battery = Battery(env, cfg.battery) if cfg.battery is not None else None
        self.ch_flow = rec.channel("_battery_flow_w")
        if self.battery is not None:
            self.battery.on_change = lambda: self.check(self.env.now)
            self.watching = True  # the battery follows every change (it may need charging)
        power.controller = self
        scheduler.admits = self.admits
        scheduler.refuses_all = self.refuses_all
        scheduler.by_gang = lambda rank: rank not in self.defer_ranks
        self.defer_ranks: set[int] = set()
        self.deferred: set[int] = set()  # jobs (by index) with a retry at their longest wait
        self.deferrals = 0
        self.autoscaler: Autoscaler | None = None  # set by the engine once services exist
        self.throttled_services: set[Service] = set()
        #: admission's answers per (hardware, gang) while nothing it reads changed
        self._admits_key: tuple[float, int, int, int, float, int] | None = None
        self.limits_version = 0  # bumped with every new list of hall limits
        self._admits: dict[tuple[int, int], bool] = {}
        #: :meth:`_reserved` as last found, and when (time and versions of what it reads)
        self._reserved_key: tuple[float, int, int] | None = None
        self._reserved_w: tuple[float, dict[int, float]] = (0.0, {})

    def set_deferral(self, ranks: set[int], signal: np.ndarray, step_s: float) -> None:
        """Deferrable classes (``power_control.defer``) start only in hours whose ``signal``
        (hourly price or carbon intensity) is at or below the configured quantile over the
        run, or after their longest wait."""
        d = self.cfg.defer
        assert d is not None
        self.defer_ranks = ranks
        self.defer_signal = signal.tolist()
        self.defer_step_s = step_s
        self.defer_threshold = float(np.quantile(signal, d.quantile))
        later(self.env, step_s, self._defer_hour, 1)

    def _defer_hour(self, call: Call) -> None:
        """A new hour: deferred work may start if it is a cheap (or clean) one."""
        k = call.value
        if not self.scheduler.blocked:
            self.scheduler.try_start()
        if k + 1 < len(self.defer_signal):
            later(self.env, self.defer_step_s, self._defer_hour, k + 1)

    def _retry(self, _call: Call) -> None:
        if not self.scheduler.blocked:
            self.scheduler.try_start()

    def _deferred(self, job: Job) -> bool:
        """Must ``job`` wait for a cheaper (cleaner) hour?"""
        d = self.cfg.defer
        assert d is not None
        now = self.env.now
        k = min(int(now // self.defer_step_s), len(self.defer_signal) - 1)
        if self.defer_signal[k] <= self.defer_threshold:
            return False
        waited = now - job.submit_at_s
        if waited >= d.max_wait_s:
            return False
        if job.index not in self.deferred:  # look again when its longest wait is over
            self.deferred.add(job.index)
            self.deferrals += 1
            later(self.env, d.max_wait_s - waited, self._retry)
        return True

    # ------------------------------------------------------------------ limits

    def hall_limit_w(self, h: int) -> float:
        return self.limits[h]

    def _limits(self) -> list[float]:
        power = self.power
        return [min(c, power.cooling_capacity_w(h)) for h, c in enumerate(self.hall_it_capacity_w)]

    def _halls_to_watch(self) -> list[int]:
        return [h for h, n in enumerate(self.nameplate_w) if n > self.limits[h]]

    def announce(self, start_s: float, cap_w: float) -> None:
        """A demand-response call is announced (its notice): from now until it starts, no new
        work is admitted that would not fit under the cap it will bring, so the site goes into
        the call with less to shed."""
        self.announced.append((start_s, cap_w))

    def _admission_cap(self) -> float:
        if not self.announced:
            return self.cap_w
        now = self.env.now
        self.announced = [(t, c) for t, c in self.announced if t > now]
        return min([self.cap_w, *(c for _, c in self.announced)])

    def set_cap(self, cap_w: float) -> None:
        """The grid import cap changes now (a demand-response event starts or ends)."""
        rose = cap_w > self.cap_w
        self.cap_w = cap_w
        self.ch_cap.set(self.env.now, cap_w)
        self.check(self.env.now)
        if rose and not self.scheduler.blocked:
            self.scheduler.try_start()  # work that admission held back may fit now

    def weather_changed(self) -> None:
        """A weather step changed the halls' cooling capacities (called within a batch)."""
        self.limits = self._limits()
        self.watch = self._halls_to_watch()
        self.limits_version += 1  # admission's kept answers read the old limits
        self.watching = self.watching or bool(self.watch)
        if not self.scheduler.blocked:
            self.scheduler.try_start()  # work that admission held back may fit now

    def _excess(self) -> tuple[float, dict[int, float]]:
        """Facility watts above the site cap (less what the battery can cover), and IT watts
        above each watched hall's limit."""
        cover = self.battery.cover_w() if self.battery is not None else 0.0
        site = self.power.site_facility_w - cover - self.cap_w
        if 0.0 < site <= self.cap_w * _RESIDUE:
            site = 0.0
        halls = {}
        if self.watch:
            limits = self.limits
            for h, w in zip(self.watch, self.power.halls_it_w(self.watch), strict=True):
                e = w - limits[h]
                if e > limits[h] * _RESIDUE:
                    halls[h] = e
        return site, halls

    # ------------------------------------------------------------------ after every change

    def check(self, now: float) -> None:
        """Called after every change of power (O(1) unless a hall is watched)."""
        facility = self.power.site_facility_w
        b = self.battery
        if b is not None:
            if b.follow(facility, self.cap_w, self.cap_w * (1.0 - self.cfg.release_margin)):
                self.ch_flow.set(now, b.flow_w)
            facility -= b.flow_w  # what the grid sees
        over = facility > self.cap_w * (1.0 + _RESIDUE)
        if over and self.over_since is None:
            self.over_since = now
        elif not over and self.over_since is not None:
            self.site_over_s += now - self.over_since
            self.longest_over_s = max(self.longest_over_s, now - self.over_since)
            self.over_since = None
        hall_over = False
        watch = self.watch
        power = self.power
        touched = power.touched
        if watch:
            limits = self.limits
            over_since = self.hall_over_since
            if watch is self._checked_watch and limits is self._checked_limits:
                # the same halls and limits as at the last check: a hall's state can have
                # changed only if its IT power did (none did: nothing to sum or compare)
                halls = touched if self._watch_all else [h for h in touched if h in self._watched]
            else:
                halls = watch
                self._checked_watch, self._checked_limits = watch, limits
                self._watched = set(watch)
                self._watch_all = len(self._watched) == len(power.halls)
            if halls:
                it = power.fresh_it()
                for h in halls:
                    if it[h] > limits[h] * (1.0 + _RESIDUE):
                        if h not in over_since:
                            over_since[h] = now
                    elif h in over_since:
                        since = over_since.pop(h)
                        self.hall_over_s[h] += now - since
                        self.longest_over_s = max(self.longest_over_s, now - since)
            if over_since:
                watched = self._watched
                hall_over = any(h in watched for h in over_since)
        touched.clear()
        self.watching = bool(
            self.watch
            or self.shedding
            or self.pending
            or over
            or self.hall_over_since
            or b is not None
        )
        if self.pending:
            return
        if over or hall_over or (self.shedding and self._any_headroom()):
            self.pending = True
            self.watching = True
            later(self.env, self.cfg.reaction_time_s, self._act)

    def _reserved(self) -> tuple[float, dict[int, float]]:
        """Power kept for the jobs restarting now
        (:meth:`~sim.engine.training.Training.restarting_jobs`): their draw above idle at their
        clock (a shrunk job's on its whole replicas, as ``Training._draw``), which comes back
        when their restart ends, in facility watts for the site and IT watts per hall. A
        failed frontier run idles 2,048 racks (some 220 MW) for its restart, several times an
        hour; handing that to other work (lifting throttles, starting jobs) only to take it
        back when the run resumes took the site over its cap for the reaction time at every
        restart and re-set every clock of the classes below twice over. The levels it is
        added to must be settled (:meth:`~sim.engine.power.Power.settle`): within a batch the
        level still holds the draw of a job that has just stopped to restart."""
        key = (self.env.now, self.training.restart_version, self.power.version)
        if key == self._reserved_key:  # nothing it depends on changed (admission, per job)
            return self._reserved_w
        site = 0.0
        halls: dict[int, float] = {}
        train_w, slope = self.power.train_w, self.power.slope
        for j in self.training.restarting_jobs():
            per = train_w[j.hw] * j.power_scale
            held = j.held.size
            if not math.isnan(j.shrunk_since) and held > j.act_domains:
                per = per * j.act_domains / held  # shrunk: only its whole replicas draw
            hall_n = j.hall_n
            for h in j.halls:
                n = hall_n[h]
                if n:
                    w = n * per
                    site += w * slope[h]
                    halls[h] = halls.get(h, 0.0) + w
        self._reserved_key, self._reserved_w = key, (site, halls)
        return site, halls

    def _any_headroom(self) -> bool:
        """Is there room under every cap (:meth:`_rooms`, each above float residue)? Stops at
        the first cap without room (the site's first: it needs no sum over the halls)."""
        m = 1.0 - self.cfg.release_margin
        self.power.settle()
        r_site, r_halls = self._reserved()
        if not self.cap_w * m - self.power.site_facility_w - r_site > self.cap_w * _RESIDUE:
            return False
        if self.watch:
            limits = self.limits
            it = self.power.fresh_it()
            for h in self.watch:
                if not limits[h] * m - it[h] - r_halls.get(h, 0.0) > limits[h] * _RESIDUE:
                    return False
        return True

    # ------------------------------------------------------------------ admission

    def admits(self, job: Job) -> bool:
        """May ``job`` start now without taking the site or a hall over a cap? Its draw at the
        full clock must fit ``release_margin`` below them (its domains would be the top of its
        hardware's free pool). Refusing here, rather than shedding after the start, keeps the
        controller from flapping: released headroom is not refilled beyond the caps."""
        if job.class_rank in self.defer_ranks and self._deferred(job):
            return False
        self.power.settle()  # mid-batch (a restart, a release): the levels as changed so far
        # the answer depends on the job's hardware and gang only: the scheduler asks for
        # each queued job in turn, hundreds while a cap binds, with nothing changed between
        key = (
            self.env.now,
            self.power.version,
            self.training.restart_version,
            self.limits_version,
            self.cap_w,
            len(self.announced),
        )
        if key != self._admits_key:
            self._admits_key = key
            self._admits.clear()
        gang = (job.hw, job.domains)
        fits = self._admits.get(gang)
        if fits is None:
            fits = self._admits[gang] = self._fits(job)
        return fits

    def refuses_all(self, rank: int, hw: int, domains: int) -> bool:
        """Would :meth:`admits` refuse every job of class ``rank`` on hardware ``hw`` with at
        least ``domains`` domains now? :meth:`_fits`'s tests in its order, each one a larger
        gang fails too: the site's (with and without the restarting jobs' draw), then the
        halls', where every hall of the hardware is watched and has no room for even one
        domain's draw (a job's domains land in one of them at least). Never for a deferrable
        class (its admission first counts a deferral and arms a retry, per job)."""
        if rank in self.defer_ranks:
            return False
        self.power.settle()
        m = 1.0 - self.cfg.release_margin
        per = self.power.train_w[hw]
        add_it = domains * per
        facility = self.power.site_facility_w
        cap = self._admission_cap() * m
        if facility + add_it * self.power.max_slope > cap:
            return True
        r_site, r_halls = self._reserved()
        if r_site and facility + r_site + add_it * self.power.max_slope > cap:
            return True
        if not self.watch:
            return False
        watched, limits = self._watched_set(), self.limits
        it = self.power.fresh_it()
        for h in self.fleet.halls_of_hw[hw]:
            if h not in watched or it[h] + r_halls.get(h, 0.0) + per <= limits[h] * m:
                return False  # a domain's draw may fit there
        return True

    def _watched_set(self) -> set[int]:
        """:attr:`watch` as a set (kept while the list is the same)."""
        if self._watch_set_of is not self.watch:
            self._watch_set_of, self._watch_set = self.watch, set(self.watch)
        return self._watch_set

    def _fits(self, job: Job) -> bool:
        """:meth:`admits`, after deferral."""
        m = 1.0 - self.cfg.release_margin
        per = self.power.train_w[job.hw]
        add_it = job.domains * per
        facility = self.power.site_facility_w
        cap = self._admission_cap() * m
        if facility + add_it * self.power.max_slope > cap:
            return False  # (without looking for restarting jobs: the usual refusal at a cap)
        r_site, r_halls = self._reserved()  # what restarting jobs will draw again
        if r_site and facility + r_site + add_it * self.power.max_slope > cap:
            return False
        if self.watch:
            limits = self.limits
            it = self.power.fresh_it()
            if r_halls:
                it = [w + r_halls.get(h, 0.0) for h, w in enumerate(it)]
            # a job whose whole draw fits every watched hall fits wherever its domains are
            for h in self.watch:
                if it[h] + add_it > limits[h] * m:
                    break
            else:
                return True
            ids = self.fleet.free[job.hw].peek(job.domains)
            # as Python numbers: arithmetic on numpy scalars costs more per operation
            counts = np.bincount(self.fleet.domain_hall[ids], minlength=self.fleet.n_halls)
            counts = counts.tolist()
            for h in self.watch:
                if counts[h] and (it[h] + counts[h] * per > limits[h] * m):
                    return False
        return True

    # ------------------------------------------------------------------ acting

    def _act(self, _call: Call) -> None:
        self.pending = True  # no new action is scheduled while this one works
        acted = False
        now = self.env.now
        power = self.power
        power.batch()
        self.training.hold()
        for _ in range(_ROUNDS):
            site, halls = self._excess()
            if site <= 0 and not halls:
                break
            self.shedding = True
            self.scheduler.blocked = True
            if not self._shed(site, halls):
                self.saturated_s = now
                break  # nothing left to shed
            acted = True
            power.flush(now)
            power.batch()
        site, halls = self._excess()
        if site <= 0 and not halls and self.shedding:
            acted = self._release() or acted
        self.actions += acted
        self.training.settle()
        power.flush(now)
        self.pending = False
        self.check(now)

    def _candidates(self) -> list[tuple[int, list[Job], list[Service]]]:
        """Running training jobs and services by class, lowest priority first."""
        services: dict[int, list[Service]] = {}
        if self.autoscaler is not None:
            for svc in self.autoscaler.services:
                services.setdefault(svc.class_rank, []).append(svc)
        out = []
        for rank in range(len(self.training.running_by_class) - 1, -1, -1):
            jobs = list(self.training.running_by_class[rank])
            svcs = services.get(rank, [])
            if jobs or svcs:
                out.append((rank, jobs, svcs))
        return out

    def _weight(self, job: Job, halls: dict[int, float]) -> tuple[float, float]:
        """Full training draw above idle of ``job`` that counts for the site cap (facility
        watts) and for the halls over their limits (IT watts)."""
        per = self.power.train_w[job.hw]
        site = sum(job.hall_n[h] * per * self.power.slope[h] for h in job.halls)
        hall = sum(job.hall_n[h] * per for h in halls)
        return site, hall

    def _shed(self, site_w: float, halls: dict[int, float]) -> bool:
        """Shed at least the excess by the policy ladder, class by class from the lowest: each
        policy of the ladder in turn on one class before the next class up (``throttle`` slows
        the class's training jobs, then its services). False when nothing more can be shed."""
        ladder = self.cfg.policy
        if ladder == ("refuse",):
            return False
        need_site = max(site_w, 0.0)
        need_hall = sum(halls.values())
        # what is left of a need once its estimate is shed may be float residue: none then
        tol_site = self.cap_w * _RESIDUE
        tol_hall = _RESIDUE * sum(self.limits[h] for h in halls)
        left = dict(halls)  # each hall's excess not yet shed (by the classes' jobs)
        shed_any = False
        for rank, jobs, svcs in self._candidates():
            for policy in ladder:
                if need_site <= tol_site and need_hall <= tol_hall:
                    return shed_any
                n_site = need_site if need_site > tol_site else 0.0
                n_hall = need_hall if need_hall > tol_hall else 0.0
                if policy == "throttle":
                    got = self._throttle_class(jobs, n_site, n_hall, halls, left)
                    if svcs and (n_site - got[0] > tol_site or n_hall - got[1] > tol_hall):
                        more = self._throttle_services(
                            rank, svcs, n_site - got[0], n_hall - got[1], halls
                        )
                        got = (got[0] + more[0], got[1] + more[1])
                else:
                    got = self._stop_jobs(rank, jobs, n_site, n_hall, halls, policy, left)
                shed_any = shed_any or got[0] > 0 or got[1] > 0
                need_site -= got[0]
                need_hall -= got[1]
        return shed_any

    def _throttle_class(
        self,
        jobs: list[Job],
        need_site: float,
        need_hall: float,
        halls: dict[int, float],
        left: dict[int, float],
    ) -> tuple[float, float]:
        """Lower every job of one class to a common clock that sheds the need (or to the floor):
        the site's, the over halls' together, and each over hall's (``left``: what is left of
        its excess, less what this class sheds there on return), the lowest clock of these.
        The class's jobs are spread unevenly over the halls, so a clock found from the halls'
        summed excess alone falls short in the hall most over (and took another round)."""
        cfg = self.cfg
        full_site = full_hall = now_site = now_hall = 0.0
        train_w, slope = self.power.train_w, self.power.slope
        full_h = dict.fromkeys(halls, 0.0)
        now_h = dict.fromkeys(halls, 0.0)
        weights = []
        for j in jobs:  # _weight of each, inline (the same sums)
            per = train_w[j.hw]
            hall_n = j.hall_n
            ps = j.power_scale
            ws = wh = 0.0
            for h in j.halls:
                ws += hall_n[h] * per * slope[h]
            for h in halls:
                w = hall_n[h] * per
                wh += w
                if w:
                    full_h[h] += w
                    now_h[h] += w * ps
            weights.append((ws, wh))
        for j, (ws, wh) in zip(jobs, weights, strict=True):
            full_site += ws
            full_hall += wh
            now_site += ws * j.power_scale
            now_hall += wh * j.power_scale
        targets = [cfg.min_clock**3]
        if need_site > 0 and full_site > 0:
            targets.append((now_site - need_site) / full_site)
        if need_hall > 0 and full_hall > 0:
            targets.append((now_hall - need_hall) / full_hall)
            for h in halls:
                if left[h] > self.limits[h] * _RESIDUE and full_h[h] > 0:
                    targets.append((now_h[h] - left[h]) / full_h[h])
        scale = max(min(t for t in targets[1:]) if len(targets) > 1 else 1.0, targets[0])
        clock = scale ** (1.0 / 3.0)
        got_site = got_hall = 0.0
        throughput = clock_throughput(clock, cfg.compute_bound_share)
        changes = []
        throttled = self.throttled
        running = Phase.RUNNING
        for j, (ws, wh) in zip(jobs, weights, strict=True):
            ps = j.power_scale
            if j.phase != running or ps <= scale:
                continue
            if need_site <= 0 and wh == 0.0:
                continue  # only a hall is over: jobs outside it are left alone
            got_site += ws * (ps - scale)
            got_hall += wh * (ps - scale)
            if wh:
                per = train_w[j.hw]
                for h in halls:
                    left[h] -= j.hall_n[h] * per * (ps - scale)
            changes.append((j, throughput, scale))
            if j not in throttled:
                throttled.add(j)
                self._throttled_order = None
        self.training.throttle_each(changes)
        return got_site, got_hall

    def _service_w(
        self, svc: Service, clock: float, halls: dict[int, float]
    ) -> tuple[float, float]:
        """Facility watts (site) and IT watts in the over halls that ``svc``'s load would draw
        above idle at ``clock``."""
        assert self.autoscaler is not None
        thr = clock_throughput(clock, self.cfg.serving_compute_bound_share)
        w = self.autoscaler.load_w_at(svc, thr, clock**3)
        held = svc.held.size
        hall = sum(w * svc.hall_n[h] / held for h in halls) if held else 0.0
        return w * svc.slope, hall

    def _set_service_clock(self, rank: int, svcs: list[Service], clock: float) -> None:
        assert self.autoscaler is not None
        thr = clock_throughput(clock, self.cfg.serving_compute_bound_share)
        for svc in svcs:
            self.autoscaler.set_clock(svc, 1.0 if clock >= 1.0 else thr, clock**3)
            if clock < 1.0:
                self.throttled_services.add(svc)
            else:
                self.throttled_services.discard(svc)
        self.training.set_service_clock(rank, clock)

    def _throttle_services(
        self,
        rank: int,
        svcs: list[Service],
        need_site: float,
        need_hall: float,
        halls: dict[int, float],
    ) -> tuple[float, float]:
        """Lower the clock of one class's services to the highest common clock that sheds the
        need, no lower than ``min_clock``. Serving loses little: only the compute-bound share
        of an iteration (``serving_compute_bound_share``; decode is memory-bound) stretches,
        while the draw per domain of load falls as clock³ (the autoscaler adds domains at the
        next tick if the lower capacity no longer meets demand). Services outside the halls
        over their limits are left alone when only a hall is over."""
        if need_site <= 0:
            svcs = [s for s in svcs if any(s.hall_n[h] for h in halls)]
        if not svcs:
            return 0.0, 0.0
        now_clock = max(self.training.service_clocks[rank], self.cfg.min_clock)

        def shed(clock: float) -> tuple[float, float]:
            site = hall = 0.0
            for svc in svcs:
                ws, wh = self._service_w(svc, clock, halls)
                site += svc.load_w * svc.slope - ws
                hall += sum(svc.load_w * svc.hall_n[h] / svc.held.size for h in halls) - wh
            return site, hall

        def enough(clock: float) -> bool:
            site, hall = shed(clock)
            return (need_site <= 0 or site >= need_site) and (need_hall <= 0 or hall >= need_hall)

        lo, hi = self.cfg.min_clock, now_clock
        if lo >= hi:
            return 0.0, 0.0
        if not enough(lo):
            clock = lo
        else:
            for _ in range(30):  # bisection to ~1e-9 of the clock range
                mid = 0.5 * (lo + hi)
                if enough(mid):
                    lo = mid
                else:
                    hi = mid
            clock = lo
        got = shed(clock)
        self._set_service_clock(rank, svcs, clock)
        return max(got[0], 0.0), max(got[1], 0.0)

    def _stop_jobs(
        self,
        rank: int,
        jobs: list[Job],
        need_site: float,
        need_hall: float,
        halls: dict[int, float],
        policy: str,
        left: dict[int, float],
    ) -> tuple[float, float]:
        """Pause or preempt jobs of one class, biggest draw first, until the need is shed
        (``left``: each over hall's excess not yet shed, less what this sheds there)."""
        got_site = got_hall = 0.0
        order = sorted(jobs, key=lambda j: -self._weight(j, halls)[0])
        for j in order:
            if got_site >= need_site and got_hall >= need_hall:
                break
            if j.phase != Phase.RUNNING:
                continue
            if policy == "preempt" and not j.preemptible:
                continue
            ws, wh = self._weight(j, halls)
            if need_site <= 0 and wh == 0.0:
                continue  # only a hall is over: jobs outside it are left alone
            got_site += ws * j.power_scale
            got_hall += wh * j.power_scale
            per = self.power.train_w[j.hw]
            for h in halls:
                left[h] -= j.hall_n[h] * per * j.power_scale
            if policy == "pause":
                self.training.pause(j)
                self.paused.append(j)
            else:
                self.scheduler.preempted += 1
                self.training.preempt(j)
        return got_site, got_hall

    def _rooms(self) -> tuple[float, dict[int, float]]:
        """Room under each cap, ``release_margin`` below it, less what restarting jobs will
        draw again (:meth:`_reserved`): the site's in facility watts, each watched hall's in
        IT watts."""
        m = 1.0 - self.cfg.release_margin
        self.power.settle()
        r_site, r_halls = self._reserved()
        site = self.cap_w * m - self.power.site_facility_w - r_site
        halls = {}
        if self.watch:
            limits = self.limits
            it = self.power.fresh_it()
            for h in self.watch:
                halls[h] = limits[h] * m - it[h] - r_halls.get(h, 0.0)
        return site, halls

    def _release(self) -> bool:
        """Give back what was shed, highest class first, as far as the headroom allows: a
        lower class is not resumed or sped up while a higher one still waits. Throttled jobs
        are lifted in whatever phase they are (one restarting after a failure keeps its
        throttle until lifted; its power counts once it is back: :meth:`_reserved`).

        Services and paused jobs are given back against the least room of all caps (in
        facility watts). Throttled jobs are lifted against each cap's own room: a job takes
        the largest lift that fits the site's room and that of every watched hall it spans
        (its draw there), so the cap that binds is used up in one action. (Lifting a job
        spread over four halls by the least room, a hall's, used a quarter of that hall's
        room and left the rest for another action a reaction time later, and so on without
        end: an action every 30 s all summer.) Returns whether anything was given back."""
        site_room, hall_room = self._rooms()
        slope = self.power.slope
        room = site_room
        for h, r in hall_room.items():
            room = min(room, r * slope[h])
        room0 = room
        gave = False
        blocked_rank: int | None = None  # the highest class still held back
        room, gave, blocked_rank = self._release_services(room)
        for j in sorted(self.paused, key=lambda j: (j.class_rank, j.index)):
            if j.hold_paused:
                blocked_rank = j.class_rank if blocked_rank is None else blocked_rank
                continue  # restarting after a failure, into PAUSED: resumed once it is back
            if j.phase != Phase.PAUSED:
                self.paused.remove(j)
                continue
            if blocked_rank is not None and j.class_rank > blocked_rank:
                break
            ws, _ = self._weight(j, {})
            add = ws * j.power_scale
            if add <= room:
                self.paused.remove(j)
                self.training.resume(j)
                room -= add
                gave = True
            else:
                blocked_rank = j.class_rank if blocked_rank is None else blocked_rank
        # what services and resumed jobs took, charged to every cap (a hall's share of it is
        # at most all of it, at the hall's slope)
        used = room0 - room
        if used > 0:
            site_room -= used
            for h in hall_room:
                hall_room[h] -= used / slope[h]
        train_w = self.power.train_w
        tol_site = self.cap_w * _RESIDUE
        tol_hall = {h: self.limits[h] * _RESIDUE for h in hall_room}
        order = self._throttled_order
        if order is None:
            order = sorted(self.throttled, key=lambda j: (j.class_rank, j.index))
        seen = 0  # jobs of the order looked at (those given back all are dropped from it)
        throttled = self.throttled
        c = self.cfg.compute_bound_share
        running, done, restarting = Phase.RUNNING, Phase.DONE, Phase.RESTARTING
        changes = []
        for j in order:
            seen += 1
            ps = j.power_scale
            if j.phase == done or ps >= 1.0:
                throttled.discard(j)
                continue
            if site_room <= tol_site or (blocked_rank is not None and j.class_rank > blocked_rank):
                seen -= 1
                break
            # a restarting job draws again soon (its draw is kept for it: _reserved); any
            # other job not running draws idle, and lifting it adds power only later
            if j.phase == running or (j.phase == restarting and not j.hold_paused):
                per, hall_n = train_w[j.hw], j.hall_n
                ws = 0.0  # its full draw above idle in facility watts (_weight, inline)
                for h in j.halls:
                    ws += hall_n[h] * per * slope[h]
                lift = site_room / ws if ws > 0 else 1.0
                for h, r in hall_room.items():
                    w = hall_n[h] * per
                    if w:
                        lift = min(lift, r / w if r > tol_hall[h] else 0.0)
                if lift <= 0.0:  # a hall it spans has no room: it waits, and those below
                    seen -= 1
                    break
                scale = min(1.0, ps + lift)
                site_room -= ws * (scale - ps)
                for h in hall_room:
                    hall_room[h] -= hall_n[h] * per * (scale - ps)
            else:
                scale = 1.0
            if scale >= 1.0:
                changes.append((j, 1.0, scale))
                throttled.discard(j)
            else:  # clock_throughput(scale^(1/3), c), inline
                changes.append((j, 1.0 / (c / scale ** (1.0 / 3.0) + 1.0 - c), scale))
            gave = True
        self.training.throttle_each(changes)
        self._throttled_order = [j for j in order[:seen] if j in throttled] + order[seen:]
        if not self.paused and not self.throttled and not self.throttled_services:
            self.shedding = False
        # new work starts only once nothing is paused: a lower class must not start while a
        # higher one waits paused for room
        room = site_room
        for h, r in hall_room.items():
            room = min(room, r * slope[h])
        if room > tol_site and not any(
            j.phase == Phase.PAUSED or j.hold_paused for j in self.paused
        ):
            self.scheduler.blocked = False
            self.scheduler.try_start()
        return gave

    def _release_services(self, room: float) -> tuple[float, bool, int | None]:
        """Lift the services' throttle, highest class first, as far as ``room`` (facility
        watts) allows; returns the room left, whether anything was lifted and the highest
        class still throttled."""
        by_rank: dict[int, list[Service]] = {}
        for svc in self.throttled_services:
            by_rank.setdefault(svc.class_rank, []).append(svc)
        gave = False
        for rank in sorted(by_rank):
            svcs = sorted(by_rank[rank], key=lambda s: s.index)
            now_w = sum(s.load_w * s.slope for s in svcs)

            def add(clock: float, svcs: list[Service] = svcs, now_w: float = now_w) -> float:
                return sum(self._service_w(s, clock, {})[0] for s in svcs) - now_w

            lo = self.training.service_clocks[rank]
            if add(1.0) <= room:
                clock = 1.0
            else:
                hi = 1.0
                for _ in range(30):
                    mid = 0.5 * (lo + hi)
                    if add(mid) <= room:
                        lo = mid
                    else:
                        hi = mid
                clock = lo
            if clock > self.training.service_clocks[rank]:
                room -= max(add(clock), 0.0)
                self._set_service_clock(rank, svcs, clock)
                gave = True
            if clock < 1.0:
                return room, gave, rank
        return room, gave, None

    # ------------------------------------------------------------------ results

    def stats(self, end_s: float) -> dict[str, Any]:
        """Seconds above the site cap and above each hall's limits, and the actions taken."""
        site = self.site_over_s + (end_s - self.over_since if self.over_since is not None else 0.0)
        halls = list(self.hall_over_s)
        for h, since in self.hall_over_since.items():
            halls[h] += end_s - since
        out: dict[str, Any] = {}
        if self.battery is not None:
            out["battery"] = self.battery.stats(end_s)
        return out | {
            "policy": self.cfg.policy_label,
            "actions": self.actions,
            "site_over_cap_s": site,
            "hall_over_limit_s": halls,
            "paused_at_end": sum(1 for j in self.paused if j.phase == Phase.PAUSED),
            "deferred_jobs": self.deferrals,
            "nothing_left_to_shed": self.saturated_s is not None,
            "longest_over_s": max(
                [self.longest_over_s]
                + ([end_s - self.over_since] if self.over_since is not None else [])
                + [end_s - t for t in self.hall_over_since.values()]
            ),
        }
