"""Training jobs' lifecycle (component ``workloads``; a job is ``workloads.<name>``).

submit -> WAITING -> (scheduler) start -> RUNNING -> finish, with detours: a failure of one of its
domains (interrupt: lose the unsaved work, get a replacement domain and pay the restart
overhead; else, by ``reliability.recovery``, hold the rest and wait for replacements, give
everything back and wait in the front of the queue, or run shrunk on the whole data-parallel
replicas it still holds and grow back once it has what it lost), a preemption (lose the
unsaved work, give everything back, wait), and rate changes (:meth:`Training.set_rate_factor`:
keep all the work, move the completion; running shrunk is the rate factor ``elastic``).
Progress accounting is in :mod:`sim.engine.workloads`.

Levels kept here: pre-training tokens/s and model and peak FLOP/s (stalls included: rate x the
share of a checkpoint cycle spent computing), GPUs of running jobs by kind, and queue lengths.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import simpy

from sim.contract import PRIORITY_CLASS, TRACE, entity_column
from sim.engine.fleet import Fleet
from sim.engine.kernel import Call, later
from sim.engine.power import Power
from sim.engine.workloads import FACTOR_INDEX, Job, Phase, Workload
from sim.record import EventKind, Recorder

if TYPE_CHECKING:
    from sim.engine.fabric import FabricState
    from sim.engine.scheduler import PriorityGangScheduler

__all__ = ["Training"]

KINDS = ("pretraining", "posttraining")
ELASTIC = FACTOR_INDEX["elastic"]  # the rate factor of a job running shrunk
THROTTLE = FACTOR_INDEX["throttle"]  # the power controller's rate factor


def _factor_index(factor: str) -> int:
    if factor not in FACTOR_INDEX:
        raise ValueError(f"unknown rate factor {factor!r}; known: {', '.join(FACTOR_INDEX)}")
    return FACTOR_INDEX[factor]


class Training:
    name = "workloads"

    def __init__(
        self,
        env: simpy.Environment,
        fleet: Fleet,
        power: Power,
        rec: Recorder,
        restart_s: float,
    ) -> None:
        self.env = env
        self.fleet = fleet
        self.power = power
        self.rec = rec
        self.restart_s = restart_s
        self.scheduler: PriorityGangScheduler  # wired by the engine
        self.jobs: list[Job] = []
        self.preemptions = 0
        self.tokens_rate = self.flops_rate = self.peak_rate = 0.0
        self.ch_tokens = rec.channel(TRACE["pretraining_tokens_per_s"].name)
        self.ch_flops = rec.channel(TRACE["training_model_flops_per_s"].name)
        self.ch_peak = rec.channel(TRACE["training_peak_flops_per_s"].name)
        self.running = {k: 0 for k in KINDS}
        self.ch_running = {k: rec.channel(TRACE[f"gpus_{k}_running"].name) for k in KINDS}
        self.waiting = {k: 0 for k in KINDS}
        self.ch_queue = {k: rec.channel(TRACE[f"jobs_waiting_{k}"].name) for k in KINDS}
        #: running jobs per priority class (for the power controller), in the order they ran
        self.running_by_class: list[dict[Job, None]] = []
        self.n_classes = 0
        self.class_domains: list[float] = []  # domains of running jobs, per class
        self.class_scaled: list[float] = []  # the same weighted by power scale (clock³)
        self.clocks: list[float] = []  # each class's clock as last recorded
        self.service_clocks: list[float] = []  # the clock of each class's throttled services
        self.ch_clock: Any = None  # one row per change: each class's clock
        self.fabric: FabricState | None = None  # contention shares (a fabric with finite tiers)
        #: shrink_elastic: the fewest DP replicas a run continues on, as a share of its full DP
        #: (wired by the engine from ``plan.reliability``; 1: only at full size)
        self.elastic_min_share = 1.0
        #: an action of the power controller under way (:meth:`hold`): the classes whose clock
        #: is recorded when it ends (None: no action under way) and the jobs whose completion
        #: is re-planned when it ends
        self._held_ranks: set[int] | None = None
        self._replan: dict[Job, None] = {}
        #: jobs whose restart began (some may have moved on since: :meth:`restarting_jobs`)
        self._restarting: dict[Job, None] = {}
        #: bumped whenever a restart begins, ends or is cut short, or a job not running takes
        #: a new power scale (what :meth:`restarting_jobs` would draw may have changed)
        self.restart_version = 0

    def set_classes(self, names: tuple[str, ...]) -> None:
        self.n_classes = len(names)
        self.running_by_class = [{} for _ in names]
        self.class_domains = [0.0] * len(names)
        self.class_scaled = [0.0] * len(names)
        self.clocks = [1.0] * len(names)
        self.service_clocks = [1.0] * len(names)
        self.ch_clock = self.rec.row_channel(
            tuple(entity_column(PRIORITY_CLASS, n, "clock") for n in names),
            tuple(1.0 for _ in names),
        )

    def _clock_levels(self, rank: int) -> None:
        """Record the classes' clocks if class ``rank``'s changed (all at full clock, the usual
        case, records nothing). A class's clock is that of its running training jobs, weighted
        by their domains; a class without running jobs shows its services' clock."""
        d, sc = self.class_domains[rank], self.class_scaled[rank]
        if d > 0:
            clock = (sc / d) ** (1.0 / 3.0) if sc != d else 1.0
        else:
            clock = self.service_clocks[rank]
        if clock != self.clocks[rank]:
            self.clocks[rank] = clock
            self.ch_clock.set(self.env.now, tuple(self.clocks))

    def set_service_clock(self, rank: int, clock: float) -> None:
        """The power controller set class ``rank``'s services to ``clock``."""
        self.service_clocks[rank] = clock
        self._clock_levels(rank)

    def add(self, job: Job) -> Job:
        job.index = self.fleet.register(job)
        self.jobs.append(job)
        return job

    # ------------------------------------------------------------------ levels

    def _active(self, job: Job, sign: int) -> None:
        """Count ``job`` in (+1) or out of (-1) the running levels and its power draw."""
        now = self.env.now
        rank = job.class_rank
        if sign > 0:
            self.running_by_class[rank][job] = None
            # a shrunk job runs on the domains of its whole replicas (shrink_elastic)
            n = job.domains if math.isnan(job.shrunk_since) else job.shrunk_domains
            job.act_domains = n
        else:
            self.running_by_class[rank].pop(job, None)
            n = job.act_domains
        self.class_domains[rank] += sign * n
        self.class_scaled[rank] += sign * n * job.power_scale
        if self.class_domains[rank] <= 0:
            self.class_domains[rank] = self.class_scaled[rank] = 0.0  # float residue
        self._clock_levels(rank)
        g = n * self.fleet.gpus_of_hw[job.hw]
        v = self.running[job.kind] + sign * g
        self.running[job.kind] = v
        self.ch_running[job.kind].set(now, v)
        self.power.set_draw(job, self._draw(job) if sign > 0 else 0.0, now)
        if job.kind == "pretraining":
            speed = job.rate / job.base_rate
            self.tokens_rate += sign * job.rate * job.duty
            self.flops_rate += sign * job.model_flops_per_s * speed * job.duty
            self.peak_rate += sign * job.peak_flops_per_s * n / job.domains
            # clamp float residue to exact zero when nothing runs (keeps traces clean)
            if not self.running["pretraining"]:
                self.tokens_rate = self.flops_rate = self.peak_rate = 0.0
            self.ch_tokens.set(now, self.tokens_rate)
            self.ch_flops.set(now, self.flops_rate)
            self.ch_peak.set(now, self.peak_rate)

    def _draw(self, job: Job) -> float:
        """Power above idle per held domain of running ``job``: its training draw, spread over
        what it holds when it runs shrunk (the domains beyond its whole replicas, and those it
        claimed to grow back, sit idle)."""
        w = self.power.train_w[job.hw] * job.power_scale
        held = job.held.size
        if math.isnan(job.shrunk_since) or held <= job.act_domains:
            return w
        return w * job.act_domains / held

    def _queue(self, kind: str, delta: int) -> None:
        self.waiting[kind] += delta
        self.ch_queue[kind].set(self.env.now, self.waiting[kind])

    def _checkpoints(self, job: Job, n: int, cycle_start: float, last: float | None = None) -> None:
        """Log the ``n`` checkpoints just counted; pre-training runs get one event row each
        (post-training checkpoints, ~700k a year at 1 GW, are only counted per job). Each
        row's value is the work kept once it was written (cumulative): ``last`` (default: the
        job's saved work now) for the n-th, one interval's work at the current rate less for
        each before it. ``sim.analysis.pretraining_ettr`` reads them."""
        if n and job.kind == "pretraining":
            cycle = job.ckpt_interval_s + job.ckpt_write_s
            per = job.rate * job.ckpt_interval_s
            kept = job.done_work if last is None else last
            for k in range(1, n + 1):
                self.rec.event(
                    cycle_start + k * cycle,
                    EventKind.CHECKPOINTED,
                    job.name,
                    job.kind,
                    value=kept - (n - k) * per,
                )

    def restarting_jobs(self) -> list[Job]:
        """The jobs restarting now that will run when their restart ends (not those that come
        back paused), in the order their restarts began: their domains idle, and they draw
        their power again within the restart overhead (the power controller keeps it for
        them)."""
        out = []
        restarting = self._restarting
        for job in list(restarting):
            if job.phase != Phase.RESTARTING:
                del restarting[job]  # it ran, failed again, was preempted or paused
            elif not job.hold_paused:
                out.append(job)
        return out

    # ------------------------------------------------------------------ lifecycle

    def submit(self, job: Job, _ev: Any = None) -> None:
        self.rec.event(self.env.now, EventKind.SUBMITTED, job.name, job.kind, value=job.gpus)
        self.scheduler.enqueue(job)
        self._queue(job.kind, +1)
        self.power.batch()
        self.scheduler.try_start()
        self.power.flush(self.env.now)

    def start(self, job: Job) -> None:
        """Give ``job`` its gang (the scheduler found room) and start or restart it."""
        now = self.env.now
        self._queue(job.kind, -1)
        self.fleet.take(job, job.domains, now)
        job.placed = True
        job.starts += 1
        if math.isnan(job.first_start):
            job.first_start = now
            self.rec.event(now, EventKind.STARTED, job.name, job.kind, value=job.gpus)
            self._run(job)
        else:
            self._waited(job, now)
            self.rec.event(
                now, EventKind.RESTARTED, job.name, job.kind, value=job.gpus, detail="requeued"
            )
            self._restart(job)

    def _waited(self, job: Job, now: float) -> None:
        """``job`` got the domains it waited for since a failure (or a preemption)."""
        if not math.isnan(job.wait_since):
            # the wait begins once the fault is detected (detection is counted apart)
            job.domain_wait_s += max(0.0, now - job.wait_since)
            job.wait_since = math.nan

    def _restart(self, job: Job, delay_s: float = 0.0) -> None:
        """Restart ``job`` after ``delay_s`` (detection, a checkpoint written before planned
        maintenance) and the restart overhead (reload the checkpoint, rebuild the job)."""
        job.phase = Phase.RESTARTING
        self._restarting[job] = None
        self.restart_version += 1
        job.token += 1
        job.restart_lost_s += self.restart_s
        job.restore_lost_s += job.restore_s
        det = min(job.pending_detection_s, delay_s)
        job.pending_detection_s = 0.0
        job.restart_plan = (self.env.now, det, delay_s - det, self.restart_s, job.restore_s)
        later(self.env, delay_s + self.restart_s + job.restore_s, self._restarted, (job, job.token))

    def cut_restart(self, job: Job) -> None:
        """A failure or a preemption ends ``job``'s restart before it finished: the detection,
        overhead and restore it had not yet spent are not lost time (they were charged in full
        when the restart began), so the time lost by kind never exceeds the wall time."""
        self.restart_version += 1
        plan, job.restart_plan = job.restart_plan, None
        if plan is None or job.phase != Phase.RESTARTING:
            return
        t0, det, other, over, restore = plan
        spent = self.env.now - t0
        job.detection_lost_s -= det - min(spent, det)
        spent = max(0.0, spent - det - other)
        job.restart_lost_s -= over - min(spent, over)
        spent = max(0.0, spent - over)
        job.restore_lost_s -= restore - min(spent, restore)

    def _restarted(self, call: Call) -> None:
        job, token = call._value
        if token != job.token:
            return
        self.restart_version += 1
        if job.hold_paused:  # it was paused when it failed: it comes back paused
            job.hold_paused = False
            job.begin(self.env.now)
            job.phase = Phase.PAUSED
            return
        self._run(job)

    def _run(self, job: Job) -> None:
        if self.fabric is not None:  # its placement sets its network factor before it runs
            self.fabric.activity(job, +1)
        job.phase = Phase.RUNNING
        job.begin(self.env.now)
        self._active(job, +1)
        self._plan_finish(job)

    def _plan_finish(self, job: Job) -> None:
        """(Re)plan ``job``'s completion at its current rate. A completion already pending no
        later than the new one is kept: it fires first and looks again (a power controller
        slowing every job every few minutes would otherwise leave a stale event per job per
        action: 185,000 in a fortnight of a hot summer)."""
        wall, n = job.to_finish()
        # compute time to the end: the work left at the current rate (stalls excluded)
        compute = (job.work - job.done_work - job.unsaved) / job.rate
        job.finish_plan = (n, job.t_upd - job.pos, compute)
        due = self.env.now + wall
        job.finish_due = due
        if job.finish_token == job.token and job.finish_at <= due:
            return
        job.token += 1
        job.finish_token, job.finish_at = job.token, due
        later(self.env, wall, self._finished, (job, job.token))

    def _finished(self, call: Call) -> None:
        job, token = call._value
        if token != job.token:
            return  # the plan changed since this completion was scheduled
        now = self.env.now
        if job.finish_due - now > 1e-9 * max(1.0, now):
            # the job slowed since this was scheduled: not done yet, look again when due
            job.finish_at = job.finish_due
            later(self.env, job.finish_due - now, self._finished, (job, job.token))
            return
        job.finish_token = -1
        if not math.isnan(job.shrunk_since):  # it finished shrunk: it no longer waits to grow
            self.scheduler.awaiting.pop(job, None)
            job.awaiting_domains = 0
        n, cycle_start, compute = job.finish_plan
        job.checkpoints += n
        if n:  # the work kept at the last checkpoint on the way (progress is as of t_upd)
            per = job.rate * job.ckpt_interval_s
            fresh = job.pos == 0.0 and job.unsaved == 0.0
            first = (
                per if fresh else job.unsaved + job.rate * max(0.0, job.ckpt_interval_s - job.pos)
            )
            self._checkpoints(job, n, cycle_start, job.done_work + first + (n - 1) * per)
        job.running_s += now - job.t_upd
        job.charge_slowdown(compute)
        job.done_work = job.work
        job.unsaved = 0.0
        self._active(job, -1)
        self._end_shrink(job, now)
        job.phase = Phase.DONE
        if self.fabric is not None:
            self.fabric.activity(job, -1)
        job.finish_s = now
        job.token += 1
        self.rec.event(now, EventKind.FINISHED, job.name, job.kind, value=job.work)
        self.power.batch()
        self.fleet.give_back(job, job.held.size, now)
        self.scheduler.try_start()
        self.power.flush(now)

    def _stop(self, job: Job) -> float:
        """Close a RUNNING segment (interrupt or preemption): log checkpoints, return work lost."""
        n, cycle_start, lost = job.stop(self.env.now)
        # (an async checkpoint found not durable was written, then fell back: logged as written)
        self._checkpoints(job, n, cycle_start, job.done_work + job.fell_back)
        self._active(job, -1)
        return lost

    def _lose(self, job: Job) -> float:
        """Close whatever the job was doing before it loses its domains: a running segment, or
        a pause (its unsaved work was in memory); returns the work lost."""
        if job.phase == Phase.RUNNING:
            return self._stop(job)
        if job.phase == Phase.PAUSED:
            return job.drop_unsaved()
        return 0.0

    def pause(self, job: Job) -> None:
        """Stop ``job`` computing without losing anything (power control): its progress is
        brought up to date and kept in memory, its domains idle, its completion is off."""
        assert job.phase == Phase.RUNNING
        n, cycle_start = job.advance(self.env.now)
        self._checkpoints(job, n, cycle_start)
        self._active(job, -1)
        job.phase = Phase.PAUSED
        if self.fabric is not None:
            self.fabric.activity(job, -1)
        job.token += 1
        self.rec.event(self.env.now, EventKind.PAUSED, job.name, job.kind, value=job.unsaved)

    def resume(self, job: Job) -> None:
        """Resume a paused job where it stopped (the same checkpoint cycle)."""
        assert job.phase == Phase.PAUSED
        self.rec.event(self.env.now, EventKind.RESUMED, job.name, job.kind)
        if self.fabric is not None:
            self.fabric.activity(job, +1)
        job.phase = Phase.RUNNING
        job.t_upd = self.env.now
        self._active(job, +1)
        self._plan_finish(job)

    def preempt(self, victim: Workload) -> None:
        assert isinstance(victim, Job)
        now = self.env.now
        self.cut_restart(victim)
        if victim.phase == Phase.AWAITING:
            self.scheduler.awaiting.pop(victim, None)
            victim.awaiting_domains = 0
        lost = self._lose(victim)
        if lost and victim.rate > 0:
            victim.recompute_lost_s += lost / victim.rate
        if not math.isnan(victim.shrunk_since):  # it gives everything back: full size again
            self.scheduler.awaiting.pop(victim, None)
            victim.awaiting_domains = 0
            self._end_shrink(victim, now)
        if math.isnan(victim.wait_since) and not math.isnan(victim.first_start):
            victim.wait_since = now
        if self.fabric is not None:
            self.fabric.activity(victim, -1)
        victim.token += 1  # cancels its completion or the end of its restart
        victim.preemptions += 1
        self.preemptions += 1
        self.rec.event(now, EventKind.PREEMPTED, victim.name, victim.kind, value=lost)
        self.fleet.give_back(victim, victim.held.size, now)
        self.scheduler.enqueue(victim)
        self._queue(victim.kind, +1)

    def interrupt(
        self,
        job: Job,
        domain: int,
        *,
        lost_domains: int = 1,
        cause: str = "",
        detection_s: float = 0.0,
        planned: bool = False,
    ) -> None:
        """``job`` was hit by a failure on ``domain`` (the fleet has already taken away the
        ``lost_domains`` it lost; 0 for a fault that takes nothing, which restarts in place).

        Unplanned: the work since the last checkpoint is lost, and nothing useful is computed
        until the fault is detected (``detection_s``, then the restart overhead). Planned
        (maintenance): the job writes a checkpoint first (it loses nothing, it pays the write).
        Replacements come from the free domains (spares included) or by preempting lower
        work (:meth:`~sim.engine.scheduler.PriorityGangScheduler.replacement`); when there is
        none, ``recovery`` decides: ``wait_for_repair`` keeps the job's other domains and takes
        the first domains freed or repaired, ``requeue`` gives everything back and queues,
        ``shrink_elastic`` restarts it on the whole replicas it holds (:meth:`_shrink`; it
        waits as under ``wait_for_repair`` when too few are left)."""
        now = self.env.now
        self.cut_restart(job)
        # the power controller holds it paused (also through a second failure while restarting)
        job.hold_paused = job.hold_paused or job.phase == Phase.PAUSED
        delay = detection_s
        if planned and job.phase in (Phase.RUNNING, Phase.PAUSED):
            if job.phase == Phase.RUNNING:
                n, cycle_start = job.advance(now)
                self._checkpoints(job, n, cycle_start)
                self._active(job, -1)
            job.done_work = min(job.work, job.done_work + job.unsaved)  # saved before the drain
            job.unsaved = 0.0
            job.pos = 0.0
            lost = 0.0
            delay += job.ckpt_write_s + job.persist_s  # snapshot and write: durable
        else:
            lost = self._lose(job)
        if lost and job.rate > 0:
            job.recompute_lost_s += lost / job.rate
        if job.phase != Phase.AWAITING:  # a job already waiting detects while it waits
            job.detection_lost_s += detection_s
            job.pending_detection_s = detection_s
        job.token += 1
        if planned:
            job.planned_interruptions += 1  # planned maintenance: apart, never a cause
        else:
            job.interruptions += 1
            by = job.interruptions_by_cause  # unplanned only: it sums to ``interruptions``
            by[cause] = by.get(cause, 0) + 1
        self.rec.event(
            now, EventKind.INTERRUPTED, job.name, job.kind, domain=domain, value=lost, detail=cause
        )
        job.fail_hall = self.fleet.hall_of[domain]
        if job.phase == Phase.AWAITING:  # it was already waiting: it now waits for more
            job.awaiting_domains += lost_domains
            self.scheduler.awaiting[job] = job.awaiting_domains
            return
        if lost_domains == 0:
            self._restart_in_place(job, delay)
            return
        before = self.scheduler.preempted
        if self.scheduler.replacement(job, lost_domains):
            self._replace(job, lost_domains, delay)
            if self.scheduler.preempted != before:
                self.scheduler.try_start()  # a preempted gang may leave domains to spare
        elif self.scheduler.recovery != "requeue" and job.held.size > 0:
            if self.scheduler.recovery == "shrink_elastic" and self._shrink(
                job, lost_domains, delay
            ):
                return
            self._end_shrink(job, now)  # too small to run shrunk: it waits at full size
            job.phase = Phase.AWAITING
            job.awaiting_domains += lost_domains  # (what it already waited for, if shrunk)
            job.wait_since = now + delay  # detection (and a planned write) first, then the wait
            job.pending_delay_s = delay
            self.scheduler.awaiting[job] = job.awaiting_domains
            self.scheduler.try_start()  # it claims what is free now, and waits for the rest
        else:
            if not math.isnan(job.shrunk_since):
                self.scheduler.awaiting.pop(job, None)
                job.awaiting_domains = 0
                self._end_shrink(job, now)
            job.hold_paused = False  # back to the queue: it starts afresh when admitted
            job.wait_since = now + delay
            if self.fabric is not None:
                self.fabric.activity(job, -1)
            self.fleet.give_back(job, job.held.size, now)
            self.scheduler.enqueue(job)
            self._queue(job.kind, +1)
            self.scheduler.try_start()

    def _take(self, job: Job, k: int) -> None:
        """Move ``k`` replacement domains into ``job``'s holding: free ones first, then hot
        spares of the hall where it lost a domain (then of its hardware's other halls)."""
        now = self.env.now
        fleet = self.fleet
        for _ in range(k):
            if fleet.n_free(job.hw):
                new = fleet.take1(job, now)
            else:
                new = fleet.take_spare(job, job.fail_hall, now)
            if self.fabric is not None:
                self.fabric.moved(job, new)

    def claim(self, job: Job, k: int) -> None:
        """An AWAITING ``job`` takes ``k`` of the domains it waits for now and keeps waiting
        for the rest (they sit idle in its gang until it restarts)."""
        self._take(job, k)
        job.awaiting_domains -= k
        if job.phase == Phase.RUNNING:  # shrunk: the claimed domains sit idle until it grows
            self.power.set_draw(job, self._draw(job), self.env.now)

    def _replace(self, job: Job, k: int, delay_s: float) -> None:
        """Give ``job`` ``k`` replacement domains and restart it in place."""
        self._take(job, k)
        self._restart_in_place(job, delay_s)

    def _restart_in_place(self, job: Job, delay_s: float = 0.0) -> None:
        """Restart ``job`` on the domains it holds after ``delay_s`` (a restart event row)."""
        job.starts += 1
        self.rec.event(
            self.env.now,
            EventKind.RESTARTED,
            job.name,
            job.kind,
            value=self._running_gpus(job),
            detail="in_place",
        )
        self._restart(job, delay_s)

    @staticmethod
    def _running_gpus(job: Job) -> int:
        """The GPUs ``job`` restarts on: its shrunk replicas' while shrunk, else all of its."""
        return job.shrunk_gpus if not math.isnan(job.shrunk_since) else job.gpus

    def replaced(self, job: Job) -> None:
        """The scheduler found the domains an AWAITING ``job`` waited for: it restarts (the
        detection delay has long passed unless the wait was shorter)."""
        now = self.env.now
        if not math.isnan(job.shrunk_since):
            self._grow(job)
            return
        k = job.awaiting_domains
        job.awaiting_domains = 0
        remaining = max(0.0, job.wait_since - now)  # of the detection, if the wait was shorter
        self._waited(job, now)
        self._replace(job, k, remaining)

    # ------------------------------------------------------------------ elastic recovery

    def _shrink(self, job: Job, lost: int, delay_s: float) -> bool:
        """``recovery: shrink_elastic``: ``job`` found no replacement for the ``lost`` domains.
        If the domains it still holds fit whole data-parallel replicas, at least
        ``elastic_min_share`` of its full DP degree (:class:`sim.build.ElasticShrink`), it
        restarts on them now (the restart it pays anyway: detection, overhead, restore) at the
        reduced rate, a rate factor that keeps its work, and claims the lost domains as they
        are freed or repaired, as a waiting job does (:meth:`_grow` when it has them all).
        False when it cannot: it waits for repair instead."""
        sh = job.elastic.get(job.hw)
        if sh is None:
            return False  # post-training, or a job on a type it has no layout for
        kept, used, factor = sh(job.held.size)
        if kept < 1 or kept < math.ceil(self.elastic_min_share * sh.dp - 1e-9):
            return False
        now = self.env.now
        if math.isnan(job.shrunk_since):  # a shrink episode: full size -> shrunk
            job.shrunk_since = now
            job.shrinks += 1
        else:  # shrunk again, on fewer replicas, within the same episode
            job.reshrinks += 1
        job.shrunk_domains = used
        job.shrunk_gpus = kept * sh.replica_gpus
        job.set_factor(ELASTIC, factor)  # not running: it takes the factor into its restart
        job.awaiting_domains += lost
        self.scheduler.awaiting[job] = job.awaiting_domains
        job.starts += 1
        self.rec.event(
            now,
            EventKind.RESTARTED,
            job.name,
            job.kind,
            value=job.shrunk_gpus,
            detail="shrunk",
        )
        self._restart(job, delay_s)
        return True

    def _grow(self, job: Job) -> None:
        """A shrunk ``job`` has claimed every domain it lost: it goes back to full size, with a
        restart (overhead and restore again). A running or paused job writes a checkpoint
        first: the scale-up is planned, as a maintenance drain is, and TorchElastic restarts
        every worker from the last checkpoint at a membership change, so the trainer saves
        before it. A restart under way (the shrink's) is cut and begun again at full size
        (the group it was forming is the shrunk one), after what is left of the detection."""
        now = self.env.now
        k = job.awaiting_domains
        job.awaiting_domains = 0
        self._take(job, k)
        delay = 0.0
        if job.phase == Phase.RESTARTING and job.restart_plan is not None:
            t0, det, other, _over, _restore = job.restart_plan
            job.pending_detection_s = max(0.0, t0 + det - now)
            delay = max(0.0, t0 + det + other - now)
            self.cut_restart(job)
        elif job.phase in (Phase.RUNNING, Phase.PAUSED):
            job.hold_paused = job.phase == Phase.PAUSED
            if job.phase == Phase.RUNNING:
                n, cycle_start = job.advance(now)
                self._checkpoints(job, n, cycle_start)
                self._active(job, -1)
            job.done_work = min(job.work, job.done_work + job.unsaved)
            job.unsaved = 0.0
            job.pos = 0.0
            job.checkpoints += 1  # a checkpoint like the others: its stall, its row
            if job.kind == "pretraining":
                self.rec.event(now, EventKind.CHECKPOINTED, job.name, job.kind, value=job.done_work)
            delay = job.ckpt_write_s + job.persist_s
        self._end_shrink(job, now)
        job.token += 1
        job.starts += 1
        self.rec.event(now, EventKind.RESTARTED, job.name, job.kind, value=job.gpus, detail="grown")
        self._restart(job, delay)

    def _end_shrink(self, job: Job, now: float) -> None:
        """``job`` is back at full size (grown, requeued, preempted, waiting whole, finished or
        the run ended): count the time it was shrunk; its rate factor returns to 1 (it is not
        running: the caller stopped it)."""
        if math.isnan(job.shrunk_since):
            return
        job.shrunk_s += now - job.shrunk_since
        job.shrunk_since = math.nan
        job.shrunk_domains = 0
        job.shrunk_gpus = 0
        job.set_factor(ELASTIC, 1.0)

    def network_interrupt(self, job: Job, domain: int) -> None:
        """A switch or link under running ``job`` failed: its collectives time out, it loses
        the work since its last checkpoint and restarts on the same domains (the fabric routes
        around the failure). A job that is not running is left alone."""
        if job.phase != Phase.RUNNING:
            return
        now = self.env.now
        lost = self._lose(job)
        if lost and job.rate > 0:
            job.recompute_lost_s += lost / job.rate
        job.token += 1
        job.interruptions += 1
        by = job.interruptions_by_cause
        by["network"] = by.get("network", 0) + 1
        self.rec.event(
            now,
            EventKind.INTERRUPTED,
            job.name,
            job.kind,
            domain=domain,
            value=lost,
            detail="network",
        )
        self._restart_in_place(job, 0.0)

    # ------------------------------------------------------------------ rate changes

    def set_rate_factor(
        self, job: Job, factor: str, value: float, power_scale: float | None = None
    ) -> None:
        """Change one named factor of ``job``'s rate now, without losing work.

        A running job's progress is brought up to date (checkpoints completed so far are
        counted; the work since the last one is kept), its rate changes, and its completion is
        rescheduled. ``power_scale`` (optional) scales its power draw above idle, as a throttle
        does. A job that is not running takes the factor with it into its next run.
        """
        if not value > 0.0 or not math.isfinite(value):
            raise ValueError(f"rate factor {factor} must be a positive number, got {value}")
        i = _factor_index(factor)
        if power_scale is not None and not 0.0 <= power_scale <= 1.0:
            raise ValueError(f"power_scale must be within [0, 1], got {power_scale}")
        if job.phase == Phase.DONE:
            raise ValueError(f"job {job.name} has finished: its rate can no longer change")
        if job.factors[i] == value and (power_scale is None or power_scale == job.power_scale):
            return  # nothing changes (and the completion is not moved by float residue)
        if job.phase != Phase.RUNNING:
            job.set_factor(i, value)
            if power_scale is not None:
                job.power_scale = power_scale
                self.restart_version += 1
            return
        now = self.env.now
        n, cycle_start = job.advance(now)
        self._checkpoints(job, n, cycle_start)
        # only its rate, its draw and its class's clock move (the power controller changes a
        # whole class's clocks at once, a million times in a hot year: no count in and out)
        pre = job.kind == "pretraining"
        if pre:
            self.tokens_rate -= job.rate * job.duty
            self.flops_rate -= job.model_flops_per_s * (job.rate / job.base_rate) * job.duty
        job.set_factor(i, value)
        if power_scale is not None and power_scale != job.power_scale:
            rank = job.class_rank
            self.class_scaled[rank] += job.act_domains * (power_scale - job.power_scale)
            job.power_scale = power_scale
            if self._held_ranks is None:
                self._clock_levels(rank)
            else:
                self._held_ranks.add(rank)
        self.power.set_draw(job, self._draw(job), now)
        if pre:
            self.tokens_rate += job.rate * job.duty
            self.flops_rate += job.model_flops_per_s * (job.rate / job.base_rate) * job.duty
            self.ch_tokens.set(now, self.tokens_rate)
            self.ch_flops.set(now, self.flops_rate)
        self._plan_finish(job)

    # ------------------------------------------------------------------ the power controller

    def hold(self) -> None:
        """An action of the power controller begins (it may throttle a class several times
        over, at one instant): the classes' clocks are recorded and the completions of the
        post-training jobs it slows re-planned once, when it ends (:meth:`settle`)."""
        self._held_ranks = set()

    def throttle(self, job: Job, value: float, power_scale: float) -> None:
        """Set ``job``'s ``throttle`` factor to ``value`` and its power scale to
        ``power_scale`` within an action (:meth:`hold`): :meth:`set_rate_factor`, except that
        the completion of a running post-training job is re-planned once, when the action ends
        (:meth:`settle`), rather than at each change: an action may slow a class in several
        rounds and then lift some of it, all at one instant, and only the plan after the last
        change counts. (A pre-training job, whose levels follow its rate, and a job not
        running go through :meth:`set_rate_factor`.)"""
        if job.kind == "pretraining" or job.phase != Phase.RUNNING:
            self.set_rate_factor(job, "throttle", value, power_scale=power_scale)
            return
        if job.factors[THROTTLE] == value and power_scale == job.power_scale:
            return
        now = self.env.now
        job.advance(now)  # a post-training job's checkpoints are only counted (no rows)
        job.set_factor(THROTTLE, value)
        if power_scale != job.power_scale:
            rank = job.class_rank
            self.class_scaled[rank] += job.act_domains * (power_scale - job.power_scale)
            job.power_scale = power_scale
            assert self._held_ranks is not None
            self._held_ranks.add(rank)
        self.power.set_draw(job, self._draw(job), now)
        self._replan[job] = None

    def throttle_each(self, changes: list[tuple[Job, float, float]]) -> None:
        """:meth:`throttle` of each ``(job, value, power_scale)`` of ``changes``, in order, within
        an action (:meth:`hold`). The same arithmetic in the same order as one call per job
        (so the same floats), in one loop with the job's progress, rate, class clock and draw
        per hall done inline: the power controller changes every job of a class at once,
        half a million changes in a hot year."""
        held = self._held_ranks
        assert held is not None and self.power.in_batch
        now = self.env.now
        replan = self._replan
        class_scaled = self.class_scaled
        train_w = self.power.train_w
        extra = self.power.extra_w
        dirty = self.power.dirty
        running, posttraining = Phase.RUNNING, "posttraining"
        for job, value, power_scale in changes:
            if job.kind != posttraining or job.phase != running:
                self.set_rate_factor(job, "throttle", value, power_scale=power_scale)
                continue
            factors = job.factors
            if factors[THROTTLE] == value and power_scale == job.power_scale:
                continue
            if job.t_upd < now:
                job.advance(now)  # a post-training job's checkpoints are only counted (no rows)
            # job.set_factor(THROTTLE, value), inline
            factors[THROTTLE] = value
            rate = job.base_rate
            for f in factors:
                rate *= f
            job.rate = rate
            job._split = None
            if power_scale != job.power_scale:
                rank = job.class_rank
                class_scaled[rank] += job.act_domains * (power_scale - job.power_scale)
                job.power_scale = power_scale
                held.add(rank)
            # self.power.set_draw(job, self._draw(job), now), inline (in a batch: no flush)
            draw = train_w[job.hw] * power_scale
            if not math.isnan(job.shrunk_since) and job.held.size > job.act_domains:
                draw = draw * job.act_domains / job.held.size
            if draw != job.draw_w:
                job.draw_w = draw
                drawn, hall_n = job.drawn_w, job.hall_n
                for h in job.halls:
                    new = hall_n[h] * draw
                    old = drawn[h]
                    if new != old:
                        extra[h] += new - old
                        drawn[h] = new
                        dirty.add(h)
            replan[job] = None

    def settle(self) -> None:
        """The power controller's action ends: re-plan the completions of the jobs it throttled
        and record the classes' clocks that changed."""
        ranks, self._held_ranks = self._held_ranks, None
        env, finished, running = self.env, self._finished, Phase.RUNNING
        now = env.now
        for job in self._replan:
            if job.phase != running:
                continue
            # self._plan_finish(job), inline (the same arithmetic)
            wall, n = job.to_finish()
            compute = (job.work - job.done_work - job.unsaved) / job.rate
            job.finish_plan = (n, job.t_upd - job.pos, compute)
            due = now + wall
            job.finish_due = due
            if job.finish_token == job.token and job.finish_at <= due:
                continue
            job.token += 1
            job.finish_token, job.finish_at = job.token, due
            later(env, wall, finished, (job, job.token))
        self._replan.clear()
        for rank in sorted(ranks or ()):
            self._clock_levels(rank)

    # ------------------------------------------------------------------ end of the run

    def close(self, end_s: float) -> None:
        """Account for work still in progress at the end (it is not lost: it is unfinished)."""
        for job in self.jobs:
            if job.phase in (Phase.WAITING, Phase.AWAITING):
                self._waited(job, end_s)  # the wait so far (right-censored)
            if not math.isnan(job.shrunk_since):  # shrunk at the end (right-censored)
                job.shrunk_s += end_s - job.shrunk_since
            if job.phase in (Phase.RUNNING, Phase.RESTARTING, Phase.PAUSED, Phase.AWAITING):
                job.account_hold(end_s)
                if job.phase == Phase.RUNNING:
                    n, cycle_start = job.advance(end_s)
                    self._checkpoints(job, n, cycle_start)
                if job.phase in (Phase.RUNNING, Phase.PAUSED):
                    job.done_work = min(job.work, job.done_work + job.unsaved)
                    job.unsaved = 0.0
            if job.phase != Phase.DONE and job.phase != Phase.PENDING:
                self.rec.event(end_s, EventKind.UNFINISHED, job.name, job.kind, value=job.done_work)
