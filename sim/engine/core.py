"""The SimPy engine: a fluid discrete-event model of the whole factory.

State changes are events; between events every rate is constant. Only the workloads an event
touches are brought up to date, so the cost of an event does not grow with the number of
domains (the numpy operations touch the k domains that change hands, never the fleet).

Processes (verbs): ``run_job`` (one per training job, driven by its phase), ``run_arrivals``
(one per post-training stream), ``run_service`` (one per inference service: autoscaling at each
control tick), ``run_failures`` (one fleet-wide failure stream at the summed rate). Repairs are
plain timeouts with a callback.

Modeled effects, and where they are computed:
* gang scheduling, priorities, preemption, backfill, spares: :mod:`sim.engine.scheduler`;
* checkpoint stalls and work lost since the last checkpoint: :mod:`sim.engine.workloads`;
* a failure takes its domain out of service for a repair time; the job holding it loses the
  work since its last checkpoint, gets a replacement domain (free, spare, or preempted from lower
  work) and pays the restart overhead; without a replacement it releases all its domains and
  waits in the front of its queue. A failed domain of a service is replaced from the free pool
  at once if one is free, else at the next control tick;
* failures are one Poisson stream for the fleet at rate N x lambda_max; a draw that lands on an
  already failed domain (or is thinned away for a domain type with a lower rate) is discarded,
  which is exact for independent per-domain Poisson failures;
* services: demand(t) precomputed per control tick (:func:`demand_series`); replicas follow it.

Power, GPUs by state, energy and costs are derived from the recorded levels after the run
(:mod:`sim.record` and :mod:`sim.analysis`), exactly, because they are linear in those levels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import numpy as np
import simpy

from sim.build import WORKLOAD_KINDS, Plan, PlannedService
from sim.config.schema import DurationDist, ExponentialDuration, FixedDuration, LognormalDuration
from sim.engine.fleet import FAILED, Fleet
from sim.engine.scheduler import SCHEDULERS
from sim.engine.workloads import Job, Phase, Service, Workload
from sim.record import EventKind, Recorder
from sim.rng import RandomStreams

__all__ = ["CountingEnvironment", "Engine", "demand_series", "draw_durations"]

DAY_S = 86_400.0
YEAR_S = 365.0 * DAY_S
BLOCK = 4096  # random draws are taken in blocks: one numpy call per BLOCK events


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0

    def step(self) -> None:
        self.processed += 1
        super().step()


def draw_durations(dist: DurationDist, rng: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(dist, FixedDuration):
        return np.full(n, dist.value_s)
    if isinstance(dist, ExponentialDuration):
        return rng.exponential(dist.mean_s, n)
    assert isinstance(dist, LognormalDuration)
    sigma2 = math.log1p(dist.cv**2)
    mu = math.log(dist.mean_s) - sigma2 / 2.0
    return rng.lognormal(mu, math.sqrt(sigma2), n)


def demand_series(svc: PlannedService, n_ticks: int, rng: np.random.Generator) -> np.ndarray:
    """Output tokens/s demanded at each control tick ``k`` (time ``k x interval``).

    rate = mean x daily x weekly x growth x noise. Time 0 is a Monday 00:00 local time.
    daily = 1 + a cos(2 pi (hour - peak_hour) / 24), a = (r - 1) / (r + 1) for peak-to-trough r;
    weekly = w on weekdays and f w on weekends with 5w + 2fw = 7 (mean 1); growth compounds
    yearly; noise is lognormal with mean 1 and the given coefficient of variation.
    """
    t = np.arange(n_ticks, dtype=np.float64) * svc.control_interval_s
    hour = (t % DAY_S) / 3600.0
    a = (svc.peak_to_trough - 1.0) / (svc.peak_to_trough + 1.0)
    daily = 1.0 + a * np.cos(2.0 * np.pi * (hour - svc.peak_hour) / 24.0)
    w = 7.0 / (5.0 + 2.0 * svc.weekend_factor)
    weekend = ((t // DAY_S) % 7) >= 5
    weekly = np.where(weekend, svc.weekend_factor * w, w)
    growth = (1.0 + svc.growth_per_year) ** (t / YEAR_S)
    if svc.noise_cv > 0:
        s2 = math.log1p(svc.noise_cv**2)
        noise = rng.lognormal(-s2 / 2.0, math.sqrt(s2), n_ticks)
    else:
        noise = np.ones(n_ticks)
    return svc.mean_requests_per_s * svc.tokens_per_request * daily * weekly * growth * noise


class Engine:
    """One simulation run of a :class:`~sim.build.Plan`."""

    def __init__(self, plan: Plan, seed: int | None = None) -> None:
        sc = plan.scenario
        self.plan = plan
        self.seed = sc.run.seed if seed is None else seed
        self.streams = RandomStreams(self.seed)
        self.env = CountingEnvironment()
        self.fleet = Fleet(plan.domain_hw, len(plan.hw_specs))
        self.rec = Recorder()
        self.restart_s = sc.reliability.restart_overhead_s
        self.end_s = sc.run.duration_s
        n_cls = len(plan.class_names)
        self.scheduler = SCHEDULERS[sc.scheduler.policy](
            self, n_cls, len(plan.hw_specs), sc.scheduler.spare_domains
        )
        self.holders: list[Workload] = []
        self.jobs: list[Job] = []
        self.services: list[Service] = []
        self.model_events = 0
        self.preemptions = 0
        self._setup_channels()

    # ------------------------------------------------------------------ channels

    def _setup_channels(self) -> None:
        rec = self.rec
        hw = self.plan.hw_names
        self.ch_held = {
            k: [rec.channel(f"domains_held.{k}.{h}") for h in hw] for k in WORKLOAD_KINDS
        }
        self.ch_active = {
            k: [rec.channel(f"domains_active.{k}.{h}") for h in hw]
            for k in ("pretraining", "posttraining")
        }
        self.ch_failed = [rec.channel(f"domains_failed.{h}") for h in hw]
        self.held = {k: [0] * len(hw) for k in WORKLOAD_KINDS}
        self.active = {k: [0] * len(hw) for k in ("pretraining", "posttraining")}
        self.ch_tokens = rec.channel("pretraining_tokens_per_s")
        self.ch_flops = rec.channel("training_model_flops_per_s")
        self.ch_peak = rec.channel("training_peak_flops_per_s")
        self.tokens_rate = 0.0
        self.flops_rate = 0.0
        self.peak_rate = 0.0
        self.ch_queue = {
            k: rec.channel(f"jobs_waiting.{k}") for k in ("pretraining", "posttraining")
        }
        self.waiting = {"pretraining": 0, "posttraining": 0}

    def _held(self, kind: str, hw: int, delta: int) -> None:
        v = self.held[kind][hw] + delta
        self.held[kind][hw] = v
        self.ch_held[kind][hw].set(self.env.now, v)

    def _active(self, job: Job, sign: int) -> None:
        now = self.env.now
        v = self.active[job.kind][job.hw] + sign * job.domains
        self.active[job.kind][job.hw] = v
        self.ch_active[job.kind][job.hw].set(now, v)
        if job.kind == "pretraining":
            self.tokens_rate += sign * job.effective_rate
            self.flops_rate += sign * job.model_flops_per_s * job.effective_rate / job.rate
            self.peak_rate += sign * job.peak_flops_per_s
            # clamp float residue to exact zero when nothing runs (keeps traces clean)
            if not any(self.active["pretraining"]):
                self.tokens_rate = self.flops_rate = self.peak_rate = 0.0
            self.ch_tokens.set(now, self.tokens_rate)
            self.ch_flops.set(now, self.flops_rate)
            self.ch_peak.set(now, self.peak_rate)

    def _queue(self, kind: str, delta: int) -> None:
        self.waiting[kind] += delta
        self.ch_queue[kind].set(self.env.now, self.waiting[kind])

    # ------------------------------------------------------------------ scheduler host

    def start_job(self, job: Job) -> None:
        now = self.env.now
        self._queue(job.kind, -1)
        self.fleet.take(job.hw, job.domains, job.index, job.held)
        self.scheduler.holding(job, job.domains)
        self._held(job.kind, job.hw, job.domains)
        job.alloc_start = now
        job.starts += 1
        if math.isnan(job.first_start):
            job.first_start = now
            self.rec.event(now, EventKind.STARTED, job.name, job.kind, value=job.gpus)
            self._run(job)
        else:
            self.rec.event(
                now, EventKind.RESTARTED, job.name, job.kind, value=job.gpus, detail="requeued"
            )
            job.phase = Phase.RESTARTING
        if job.wake is not None and not job.wake.triggered:
            job.wake.succeed()

    def _run(self, job: Job) -> None:
        job.phase = Phase.RUNNING
        job.seg_start = self.env.now
        self._active(job, +1)

    def _stop_running(self, job: Job) -> float:
        """Close a RUNNING segment (interrupt): record checkpoints, return work lost."""
        n, lost = job.end_segment(self.env.now)
        self._checkpoints(job, n)
        self._active(job, -1)
        return lost

    def _account_hold(self, w: Workload) -> None:
        """Add the domain-seconds held since the last change; call before the holding changes."""
        if isinstance(w, Job):
            now = self.env.now
            w.held_domain_s += (now - w.alloc_start) * w.held.size
            w.alloc_start = now

    def _checkpoints(self, job: Job, n: int) -> None:
        """Count the ``n`` checkpoints of the segment that just ended; pre-training runs also get
        one event row each (post-training checkpoints, ~700k a year at 1 GW, are only counted)."""
        job.checkpoints += n
        if job.kind == "pretraining":
            for t in job.checkpoint_times(n):
                self.rec.event(t, EventKind.CHECKPOINTED, job.name, job.kind)

    def _release_all(self, job: Job) -> None:
        k = job.held.size
        self._account_hold(job)
        self.fleet.give_back(job.held)
        self.scheduler.released(job, k)
        self._held(job.kind, job.hw, -k)

    def preempt(self, victim: Job) -> None:
        now = self.env.now
        lost = self._stop_running(victim) if victim.phase == Phase.RUNNING else 0.0
        victim.preemptions += 1
        self.preemptions += 1
        self.rec.event(now, EventKind.PREEMPTED, victim.name, victim.kind, value=lost)
        self._release_all(victim)
        self.scheduler.enqueue(victim)
        self._queue(victim.kind, +1)
        victim.proc.interrupt()

    # ------------------------------------------------------------------ processes

    def run_job(self, job: Job) -> Generator[Any, Any, None]:
        env = self.env
        if job.submit_at_s > env.now:
            yield env.timeout(job.submit_at_s - env.now)
        self.rec.event(env.now, EventKind.SUBMITTED, job.name, job.kind, value=job.gpus)
        self.scheduler.enqueue(job)
        self._queue(job.kind, +1)
        self.scheduler.try_start()
        while job.phase != Phase.DONE:
            try:
                if job.phase == Phase.WAITING:
                    job.wake = env.event()
                    yield job.wake
                    job.wake = None
                elif job.phase == Phase.RESTARTING:
                    yield env.timeout(self.restart_s)
                    self._run(job)
                else:
                    yield env.timeout(job.wall_to_finish())
                    self._finish(job)
            except simpy.Interrupt:
                job.wake = None  # the interrupter has already set the new phase

    def _finish(self, job: Job) -> None:
        now = self.env.now
        n_ckpt = max(
            0, math.ceil((job.work - job.done_work) / (job.rate * job.ckpt_interval_s) - 1e-12) - 1
        )
        self._checkpoints(job, n_ckpt)
        job.running_s += now - job.seg_start
        job.done_work = job.work
        self._active(job, -1)
        job.phase = Phase.DONE
        job.finish_s = now
        self.rec.event(now, EventKind.FINISHED, job.name, job.kind, value=job.work)
        self._release_all(job)
        self.scheduler.try_start()

    def run_arrivals(self, stream_index: int) -> Generator[Any, Any, None]:
        env = self.env
        st = self.plan.streams[stream_index]
        rng = self.streams[f"arrivals.{st.name}"]
        sizes = np.asarray(st.size_values)
        weights = np.asarray(st.size_weights)
        spec = self.plan.hw_specs[st.hw_index]
        n = 0
        if st.start_at_s > 0:
            yield env.timeout(st.start_at_s)
        while True:
            gaps = rng.exponential(1.0 / st.arrival_rate_per_s, BLOCK)
            picks = rng.choice(sizes, size=BLOCK, p=weights)
            durations = draw_durations(st.duration, rng, BLOCK)
            for gap, domains, duration in zip(
                gaps.tolist(), picks.tolist(), durations.tolist(), strict=True
            ):
                yield env.timeout(gap)
                if env.now >= st.stop_at_s:
                    return
                n += 1
                job = self._new_job(
                    f"{st.name}#{n}",
                    "posttraining",
                    st.hw_index,
                    st.class_rank,
                    st.preemptible,
                    domains=domains,
                    gpus=domains * spec.domain_gpus,
                    submit_at_s=env.now,
                    work=duration,
                    rate=1.0,
                    ckpt_interval_s=st.checkpoint_interval_s,
                    ckpt_write_s=0.0,
                    stream=st.name,
                )
                job.proc = env.process(self.run_job(job))

    def run_service(self, svc: Service) -> Generator[Any, Any, None]:
        """Autoscale ``svc``: at each control tick hold the domains its demand needs.

        Two loops, as in Kubernetes: the autoscaler sets the *desired* count, changing it only
        when the target leaves the tolerance band around it (HPA); the replica controller then
        keeps the held count at the desired one, so a domain lost to a failure, or one that
        could not be had at the last tick, is asked for again at every tick. The demand and the
        target per tick are precomputed arrays, so a tick with nothing to do costs one timeout.
        Demand and served tokens are levels derived from those arrays after the run
        (:meth:`service_levels`), not recorded per tick.
        """
        env = self.env
        interval = svc.interval_s
        tol = svc.tolerance
        floor = svc.min_domains
        held = svc.held
        desired = 0
        for target in svc.target.tolist():
            if target != desired and (
                desired < floor or abs(target - desired) > tol * desired or desired == 0
            ):
                desired = target
            if held.size != desired:
                self._scale(svc, desired)
            yield env.timeout(interval)

    def _scale(self, svc: Service, need: int) -> None:
        have = svc.held.size
        if need > have:
            before = self.preemptions
            got = self.scheduler.grant(svc, need - have)
            if got:
                self.fleet.take(svc.hw, got, svc.index, svc.held)
                self._held("inference", svc.hw, got)
            if self.preemptions != before:
                self.scheduler.try_start()  # what the preemptions freed beyond the need
        else:
            self.fleet.give_back_some(svc.held, have - need)
            self._held("inference", svc.hw, need - have)
            self.scheduler.try_start()
        svc.ch_domains.set(self.env.now, svc.held.size)

    def service_levels(self, svc: Service) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Demand and served output tokens/s of ``svc`` as step functions over the run.

        served(t) = min(demand(t), domains(t) x capacity per domain), evaluated on the union of
        the demand ticks and the changes of the service's domain count: exact.
        """
        ticks = np.arange(svc.demand.shape[0], dtype=np.float64) * svc.interval_s
        keep = ticks < self.end_s
        d_t, d_v = ticks[keep], svc.demand[keep]
        c_t = np.asarray(svc.ch_domains.times)
        c_v = np.asarray(svc.ch_domains.values) * svc.capacity_per_domain
        t = np.union1d(d_t, c_t)
        demand = d_v[np.searchsorted(d_t, t, side="right") - 1]
        cap = c_v[np.searchsorted(c_t, t, side="right") - 1]
        prefix = f"service.{svc.name}."
        return {
            prefix + "demand_tokens_per_s": (d_t, d_v),
            prefix + "served_tokens_per_s": (t, np.minimum(demand, cap)),
        }

    def run_failures(self) -> Generator[Any, Any, None]:
        rel = self.plan.scenario.reliability
        env = self.env
        fleet = self.fleet
        per_domain = np.array(
            [
                rel.failure_rate_per_1000_node_days / 1000.0 / DAY_S * s.domain_gpus / rel.node_gpus
                for s in self.plan.hw_specs
            ]
        )
        lam_max = float(per_domain.max())
        if lam_max <= 0 or fleet.n == 0:
            return
        accept = (per_domain / lam_max).tolist()
        hetero = any(a < 1.0 for a in accept)
        rng = self.streams["failures"]
        repair_rng = self.streams["repairs"]
        total = lam_max * fleet.n
        state = fleet.state
        domain_hw = fleet.hw_of
        while True:
            gaps = rng.exponential(1.0 / total, BLOCK).tolist()
            picks = rng.integers(0, fleet.n, BLOCK).tolist()
            u = rng.random(BLOCK).tolist() if hetero else [0.0] * BLOCK
            repairs = draw_durations(rel.repair_time, repair_rng, BLOCK).tolist()
            for gap, d, uu, rep in zip(gaps, picks, u, repairs, strict=True):
                yield env.timeout(gap)
                if state[d] == FAILED or (hetero and uu >= accept[domain_hw[d]]):
                    continue
                self._fail(d, rep)

    def _fail(self, d: int, repair_s: float) -> None:
        now = self.env.now
        self.model_events += 1
        h = self.fleet.holder[d]
        hw = self.fleet.hw_of[d]
        holder = self.holders[h] if h >= 0 else None
        self.rec.event(
            now,
            EventKind.FAILURE,
            holder.name if holder else "",
            holder.kind if holder else "",
            domain=d,
        )
        if holder is not None:
            self._account_hold(holder)
        self.fleet.fail(d, holder.held if holder else None)
        self.ch_failed[hw].set(now, self.fleet.failed_count[hw])
        ev = self.env.timeout(repair_s)
        ev.callbacks.append(partial(self._repair, d))
        if holder is None:
            return
        self._held(holder.kind, hw, -1)
        if isinstance(holder, Service):
            if self.fleet.n_free(hw) > self.scheduler.spares:
                self.fleet.take(hw, 1, holder.index, holder.held)
                self._held("inference", hw, 1)
            holder.ch_domains.set(now, holder.held.size)
            return
        job = holder
        assert isinstance(job, Job)
        self.scheduler.released(job, 1)
        lost = self._stop_running(job) if job.phase == Phase.RUNNING else 0.0
        job.interruptions += 1
        self.rec.event(now, EventKind.INTERRUPTED, job.name, job.kind, domain=d, value=lost)
        before = self.preemptions
        if self.scheduler.replacement(job):
            self.fleet.take(hw, 1, job.index, job.held)
            self.scheduler.holding(job, 1)
            self._held(job.kind, hw, 1)
            job.phase = Phase.RESTARTING
            job.starts += 1
            self.rec.event(
                now, EventKind.RESTARTED, job.name, job.kind, value=job.gpus, detail="in_place"
            )
            if self.preemptions != before:
                self.scheduler.try_start()  # a preempted gang may leave domains to spare
        else:
            self._release_all(job)
            self.scheduler.enqueue(job)
            self._queue(job.kind, +1)
            self.scheduler.try_start()
        job.proc.interrupt()

    def _repair(self, d: int, _event: Any = None) -> None:
        now = self.env.now
        self.model_events += 1
        hw = self.fleet.repair(d)
        self.ch_failed[hw].set(now, self.fleet.failed_count[hw])
        self.rec.event(now, EventKind.REPAIR, "", "", domain=d)
        self.scheduler.try_start()

    # ------------------------------------------------------------------ setup and run

    def _new_job(
        self, name: str, kind: str, hw: int, rank: int, preemptible: bool, **kw: Any
    ) -> Job:
        job = Job(len(self.holders), name, kind, hw, rank, preemptible, self.fleet.slot, **kw)
        self.holders.append(job)
        self.jobs.append(job)
        return job

    def _setup(self) -> None:
        env = self.env
        plan = self.plan
        for pj in plan.jobs:
            job = self._new_job(
                pj.name,
                "pretraining",
                pj.hw_index,
                pj.class_rank,
                pj.preemptible,
                domains=pj.domains,
                gpus=pj.gpus,
                submit_at_s=pj.submit_at_s,
                work=pj.work,
                rate=pj.rate,
                ckpt_interval_s=pj.checkpoint_interval_s,
                ckpt_write_s=pj.checkpoint_write_s,
                model_flops_per_s=pj.model_flops_per_s,
                peak_flops_per_s=pj.peak_flops_per_s,
            )
        for ps in plan.services:
            n_ticks = math.ceil(self.end_s / ps.control_interval_s) + 1
            demand = demand_series(ps, n_ticks, self.streams[f"demand.{ps.name}"])
            svc = Service(
                len(self.holders),
                ps.name,
                ps.hw_index,
                ps.class_rank,
                ps.preemptible,
                self.fleet.slot,
                plan.domains_of(ps.hw_index),
                capacity_per_domain=ps.capacity_tokens_per_s_per_domain,
                max_load=ps.max_load,
                min_domains=ps.min_domains,
                interval_s=ps.control_interval_s,
                demand=demand,
                tolerance=ps.autoscale_tolerance,
                stabilization_s=ps.scale_down_stabilization_s,
            )
            svc.ch_domains = self.rec.channel(f"service.{ps.name}.domains")
            self.holders.append(svc)
            self.services.append(svc)
        # Processes start in the order they are created. Services go first so that at time 0
        # they claim their replicas before the training gangs are placed.
        for svc in self.services:
            env.process(self.run_service(svc))
        for job in self.jobs:
            job.proc = env.process(self.run_job(job))
        for i in range(len(plan.streams)):
            env.process(self.run_arrivals(i))
        if plan.scenario.reliability.enabled:
            env.process(self.run_failures())

    def run(
        self, progress: Callable[[float, int], None] | None = None, step_s: float = DAY_S
    ) -> None:
        """Run to the scenario's end; ``progress(sim_time_s, events)`` after each ``step_s``."""
        self._setup()
        t = 0.0
        while t < self.end_s:
            t = min(t + step_s, self.end_s)
            self.env.run(until=t)
            if progress is not None:
                progress(t, self.env.processed)
        self._close()

    def _close(self) -> None:
        """Account for work still in progress at the end (it is not lost: it is unfinished)."""
        now = self.end_s
        for job in self.jobs:
            if job.phase in (Phase.RUNNING, Phase.RESTARTING):
                self._account_hold(job)
                if job.phase == Phase.RUNNING:
                    n, unsaved = job.end_segment(now)
                    job.lost_work -= unsaved  # in progress at the end: unfinished, not lost
                    job.done_work = min(job.work, job.done_work + unsaved)
                    self._checkpoints(job, n)
            if job.phase != Phase.DONE and job.phase != Phase.PENDING:
                self.rec.event(now, EventKind.UNFINISHED, job.name, job.kind, value=job.done_work)
        for svc in self.services:
            for name, (times, values) in self.service_levels(svc).items():
                self.rec.add_level(name, times, values)

    # ------------------------------------------------------------------ results

    def job_rows(self) -> list[dict[str, Any]]:
        """One row per job (pre- and post-training) with its outcome."""
        rows: list[dict[str, Any]] = []
        names = self.plan.hw_names
        cls = self.plan.class_names
        for job in self.jobs:
            spec = self.plan.hw_specs[job.hw]
            useful_s = job.done_work / job.rate  # compute time at full rate that was kept
            end = job.finish_s if job.phase == Phase.DONE else self.end_s
            started = not math.isnan(job.first_start)
            elapsed = end - job.first_start if started else 0.0
            rows.append(
                {
                    "name": job.name,
                    "workload": job.kind,
                    "stream": job.stream,
                    "class": cls[job.class_rank],
                    "hardware": names[job.hw],
                    "gpus": job.gpus,
                    "domains": job.domains,
                    "submit_s": job.submit_at_s,
                    "first_start_s": job.first_start,
                    "finish_s": job.finish_s,
                    "state": "finished"
                    if job.phase == Phase.DONE
                    else (
                        "running"
                        if job.phase in (Phase.RUNNING, Phase.RESTARTING)
                        else ("waiting" if job.phase == Phase.WAITING else "not_submitted")
                    ),
                    "work": job.work,
                    "work_unit": "tokens" if job.kind == "pretraining" else "run_seconds",
                    "work_done": job.done_work,
                    "work_lost": job.lost_work,
                    "interruptions": job.interruptions,
                    "preemptions": job.preemptions,
                    "restarts": max(0, job.starts - 1),
                    "checkpoints": job.checkpoints,
                    "wait_s": (job.first_start - job.submit_at_s) if started else math.nan,
                    "held_gpu_hours": job.held_domain_s * spec.domain_gpus / 3600.0,
                    "useful_gpu_hours": useful_s * job.gpus / 3600.0,
                    "ettr": useful_s / elapsed if elapsed > 0 else math.nan,
                    "rate_per_s": job.rate,
                    "mfu_when_running": (
                        job.model_flops_per_s / job.peak_flops_per_s
                        if job.peak_flops_per_s > 0
                        else math.nan
                    ),
                }
            )
        return rows
