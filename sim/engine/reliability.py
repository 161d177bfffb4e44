"""Failures by cause, planned maintenance, correlated events and repairs (``reliability``).

**One stream for every cause.** Each cause ``c`` fails a domain of G GPUs at ``lambda_c x G``
(independent Poisson processes per domain). Their superposition over the fleet is one Poisson
stream at ``sum_c lambda_c x G_max x N``; each draw picks a domain uniformly, a cause with
probability ``lambda_c / sum lambda``, and is thinned to ``G / G_max`` for a domain type with
fewer GPUs. That is exact for independent per-domain processes, and the cost of a draw does not
grow with the number of domains (draws come in blocks of :data:`BLOCK`, one numpy call each).

**What a draw does** depends on the cause's effect (:class:`~sim.build.PlannedCause`):

* ``domain``: the domain leaves service for a repair time drawn from the cause's distribution;
  a draw on a domain already out is void (it cannot fail twice).
* ``tray``: a GPU, host or compute-tray fault. On a server (no ``tray_gpus``) the whole domain
  leaves, as ``domain``. On a rack-scale domain the ``tray_failure`` policy decides:
  ``rack_down`` takes the rack out for the tray's repair; ``spare_tray`` swaps in one of the
  rack's idle trays (the job on it restarts, the rack stays in service; the failed tray becomes
  a spare again when repaired) and takes the rack out only when no spare tray is left.
* ``restart``: a software fault or a link flap: nothing leaves service; the running job on the
  domain stops and restarts in place. A draw on a free domain, a service or a job that is not
  running is void (a job that is not computing does not hit its bugs).
* ``maintenance`` (planned, its own cause): the domain is drained for the maintenance time; a
  job on it writes a checkpoint first (it loses no work, it pays the write and a restart).

The job that held a failed domain is told (:meth:`~sim.engine.training.Training.interrupt`):
it loses the work since its last checkpoint, computes nothing until the fault is detected
(``detection_s``), and restarts on a replacement or waits for one (``recovery``). A service
replaces the domain if one is free (:mod:`sim.engine.services`).

**Correlated events** (a hall's power loss, a cooling failure) are a second stream, at the
event's rate times the number of halls: each strikes one hall, uniformly, and fails a share of
its domains at once (drawn without replacement) until one repair time; each job there is
interrupted once, losing all its domains in the hall together.

Every failure and repair of a domain is an event row (``failure``, ``repair``; ``tray_failure``
and ``tray_repair`` for a tray swapped under ``spare_tray``) whose ``detail`` is the cause's
name; every interruption row names its cause too (a restart-only fault has no failure row:
nothing left service). The analysis derives domains out of service by cause over time from
them (:func:`sim.analysis.failed_by_cause`).
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np
import simpy

from sim.build import PlannedReliability
from sim.config.schema import (
    DurationDist,
    ExponentialDuration,
    FixedDuration,
    LognormalDuration,
)
from sim.engine.fleet import FAILED, Fleet
from sim.engine.kernel import later
from sim.engine.scheduler import PriorityGangScheduler
from sim.engine.services import Autoscaler
from sim.engine.training import Training
from sim.engine.workloads import Job, Phase, Service
from sim.record import EventKind, Recorder
from sim.rng import RandomStreams

__all__ = ["BLOCK", "Reliability", "draw_duration", "draw_durations"]

BLOCK = 4096  # random draws are taken in blocks: one numpy call per BLOCK events

#: effect codes of the causes, for the hot path
_DOMAIN, _TRAY, _RESTART, _MAINTENANCE = 0, 1, 2, 3
_EFFECTS = {"domain": _DOMAIN, "tray": _TRAY, "restart": _RESTART, "maintenance": _MAINTENANCE}


def draw_durations(dist: DurationDist, rng: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(dist, FixedDuration):
        return np.full(n, dist.value_s)
    if isinstance(dist, ExponentialDuration):
        return rng.exponential(dist.mean_s, n)
    return rng.lognormal(*_lognormal(dist), n)


def draw_duration(dist: DurationDist, rng: np.random.Generator) -> float:
    """One draw of ``dist``: the value ``draw_durations(dist, rng, 1)[0]`` gives, from the
    same use of ``rng``, without making an array (one draw per event)."""
    if isinstance(dist, FixedDuration):
        return dist.value_s
    if isinstance(dist, ExponentialDuration):
        return float(rng.exponential(dist.mean_s))
    return float(rng.lognormal(*_lognormal(dist)))


def _lognormal(dist: DurationDist) -> tuple[float, float]:
    """The underlying normal's mean and standard deviation of a lognormal ``dist`` (its mean
    and coefficient of variation)."""
    assert isinstance(dist, LognormalDuration)
    sigma2 = math.log1p(dist.cv**2)
    return math.log(dist.mean_s) - sigma2 / 2.0, math.sqrt(sigma2)


class _Durations:
    """Draws of one distribution, taken from its stream in blocks, handed out one by one."""

    __slots__ = ("dist", "i", "rng", "vals")

    def __init__(self, dist: DurationDist, rng: np.random.Generator) -> None:
        self.dist, self.rng = dist, rng
        self.vals: list[float] = []
        self.i = 0

    def next(self) -> float:
        if self.i == len(self.vals):
            self.vals = draw_durations(self.dist, self.rng, BLOCK).tolist()
            self.i = 0
        v = self.vals[self.i]
        self.i += 1
        return v


class Reliability:
    name = "reliability"

    def __init__(
        self,
        env: simpy.Environment,
        cfg: PlannedReliability,
        domain_gpus: tuple[int, ...],
        fleet: Fleet,
        training: Training,
        autoscaler: Autoscaler,
        scheduler: PriorityGangScheduler,
        rec: Recorder,
        streams: RandomStreams,
        halls: tuple[tuple[int, int], ...] = (),
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.domain_gpus = domain_gpus
        self.fleet = fleet
        self.training = training
        self.autoscaler = autoscaler
        self.scheduler = scheduler
        self.rec = rec
        self.streams = streams
        self.halls = halls  # (first domain, domains) per hall
        self.model_events = 0
        self.names = [c.name for c in cfg.causes]
        self.effect = [_EFFECTS[c.effect] for c in cfg.causes]
        self.detection = [c.detection_s for c in cfg.causes]
        self.counts = [0] * len(cfg.causes)  # failures (non-void draws) per cause
        self.correlated_counts = [0] * len(cfg.correlated)
        self.tray_swaps = 0
        #: idle trays left per domain under ``spare_tray`` (empty otherwise)
        k = cfg.spare_trays_per_rack if cfg.tray_failure == "spare_tray" else 0
        trays = cfg.tray_gpus or tuple(None for _ in domain_gpus)
        self.spare_k = k
        self.has_trays = [t is not None and k > 0 for t in trays]
        self.spare_left = array("h", [k]) * fleet.n if k else array("h")

    # ------------------------------------------------------------------ streams

    def start(self) -> None:
        """Start the fleet-wide failure stream and the correlated events' (nothing to do
        without a positive rate)."""
        cfg = self.cfg
        fleet = self.fleet
        if fleet.n == 0:
            return
        self._repair_rng = self.streams["repairs"]
        self._repairs = [
            _Durations(c.repair_time, self._repair_rng) if c.repair_time is not None else None
            for c in cfg.causes
        ]
        rates = [c.rate_per_gpu_s for c in cfg.causes]
        total = math.fsum(rates)
        g_max = max(self.domain_gpus) if self.domain_gpus else 0
        if total > 0 and g_max > 0:
            self._accept = [g / g_max for g in self.domain_gpus]
            self._hetero = any(a < 1.0 for a in self._accept)
            self._total = total * g_max * fleet.n
            self._p = np.asarray(rates) / total
            self._rng = self.streams["failures"]
            self._draws: list[tuple[float, int, int, float]] = []
            self._next = 0
            self._arm()
        if cfg.correlated and self.halls:
            self._corr_rng = self.streams["correlated_failures"]
            self._corr_repairs = [
                _Durations(e.repair_time, self._repair_rng) for e in cfg.correlated
            ]
            for i, e in enumerate(cfg.correlated):
                self._arm_correlated(i, e.rate_per_hall_s * len(self.halls))

    def _arm(self) -> None:
        """Schedule the next draw of the stream (a new block of draws when one runs out)."""
        if self._next == len(self._draws):
            rng = self._rng
            gaps = rng.exponential(1.0 / self._total, BLOCK).tolist()
            picks = rng.integers(0, self.fleet.n, BLOCK).tolist()
            if len(self._p) > 1:
                causes = rng.choice(len(self._p), BLOCK, p=self._p).tolist()
            else:
                causes = [0] * BLOCK
            u = rng.random(BLOCK).tolist() if self._hetero else [0.0] * BLOCK
            self._draws = list(zip(gaps, picks, causes, u, strict=True))
            self._next = 0
        draw = self._draws[self._next]
        self._next += 1
        later(self.env, draw[0], self._draw, draw)

    def _draw(self, ev: Any) -> None:
        _gap, d, c, u = ev._value
        self._arm()
        fleet = self.fleet
        if self._hetero and u >= self._accept[fleet.hw_of[d]]:
            return  # thinned away: a domain type with fewer GPUs
        effect = self.effect[c]
        if effect == _RESTART:
            h = fleet.holder_of[d]
            if h < 0:
                return
            w = fleet.holders[h]
            if not isinstance(w, Job) or w.phase != Phase.RUNNING:
                return
            self.counts[c] += 1
            self.model_events += 1
            # no failure row: nothing leaves service (the interruption row names the cause)
            self.training.interrupt(
                w, d, lost_domains=0, cause=self.names[c], detection_s=self.detection[c]
            )
            return
        if fleet.state_of[d] == FAILED:
            return  # already out of service
        repairs = self._repairs[c]
        assert repairs is not None
        if (
            effect == _TRAY
            and self.spare_k
            and self.has_trays[fleet.hw_of[d]]
            and self.spare_left[d] > 0
        ):
            self._swap_tray(d, c, repairs.next())
            return
        self.counts[c] += 1
        self.fail(d, repairs.next(), self.names[c], self.detection[c], effect == _MAINTENANCE)

    def _swap_tray(self, d: int, c: int, repair_s: float) -> None:
        """A tray of rack ``d`` failed and an idle tray of the rack takes its place: the job
        there restarts in place; the failed tray is repaired into the rack's spares."""
        now = self.env.now
        self.counts[c] += 1
        self.tray_swaps += 1
        self.model_events += 1
        self.spare_left[d] -= 1
        later(self.env, repair_s, self._tray_repaired, (d, self.names[c]))
        h = self.fleet.holder_of[d]
        w = self.fleet.holders[h] if h >= 0 else None
        self.rec.event(
            now,
            EventKind.TRAY_FAILURE,
            w.name if w else "",
            w.kind if w else "",
            d,
            detail=self.names[c],
        )
        if isinstance(w, Job) and w.phase in (Phase.RUNNING, Phase.RESTARTING, Phase.PAUSED):
            self.training.interrupt(
                w, d, lost_domains=0, cause=self.names[c], detection_s=self.detection[c]
            )

    def _tray_repaired(self, ev: Any) -> None:
        d, cause = ev._value
        self.model_events += 1
        self.rec.event(self.env.now, EventKind.TRAY_REPAIR, "", "", d, detail=cause)
        self.spare_left[d] = min(self.spare_k, self.spare_left[d] + 1)

    # ------------------------------------------------------------------ failures

    def fail(
        self,
        d: int,
        repair_s: float,
        cause: str = "network",
        detection_s: float = 0.0,
        planned: bool = False,
    ) -> None:
        """Take domain ``d`` out of service for ``repair_s`` and tell its holder."""
        now = self.env.now
        self.model_events += 1
        later(self.env, repair_s, self._repair, (d, cause))
        if self.fleet.holder_of[d] < 0:
            # a free domain (most failures on a large, lightly loaded site): nothing else to do
            self.fleet.fail(d, now)
            self.rec.event(now, EventKind.FAILURE, "", "", d, detail=cause)
            return
        power = self.fleet.power
        power.batch()
        holder = self.fleet.fail(d, now)
        assert holder is not None
        self.rec.event(now, EventKind.FAILURE, holder.name, holder.kind, d, detail=cause)
        if isinstance(holder, Job):
            self.training.interrupt(
                holder, d, cause=cause, detection_s=detection_s, planned=planned
            )
        elif isinstance(holder, Service):
            self.autoscaler.domain_lost(holder)
        power.flush(now)

    def _repair(self, ev: Any) -> None:
        d, cause = ev._value
        now = self.env.now
        self.model_events += 1
        self.rec.event(now, EventKind.REPAIR, "", "", d, detail=cause)
        if self.spare_k:
            self.spare_left[d] = self.spare_k  # the rack comes back with all its trays
        sched = self.scheduler
        if not sched.awaiting and not any(sched.queues):
            self.fleet.repair(d, now)  # nothing waits for it: no batch needed
            return
        power = self.fleet.power
        power.batch()
        self.fleet.repair(d, now)
        sched.try_start()
        power.flush(now)

    # ------------------------------------------------------------------ correlated events

    def _arm_correlated(self, i: int, rate: float) -> None:
        later(self.env, float(self._corr_rng.exponential(1.0 / rate)), self._correlated, (i, rate))

    def _correlated(self, ev: Any) -> None:
        """Event ``i`` strikes one hall: a share of its domains fail together."""
        i, rate = ev._value
        self._arm_correlated(i, rate)
        e = self.cfg.correlated[i]
        rng = self._corr_rng
        first, n = self.halls[int(rng.integers(0, len(self.halls)))]
        k = max(1, round(e.share * n))
        picked = (np.sort(rng.choice(n, size=k, replace=False)) + first).tolist()
        repair_s = self._corr_repairs[i].next()
        self.correlated_counts[i] += 1
        now = self.env.now
        fleet = self.fleet
        power = fleet.power
        power.batch()
        lost: dict[Job, list[int]] = {}
        services: list[Service] = []
        for d in picked:
            if fleet.state_of[d] == FAILED:
                continue
            self.model_events += 1
            later(self.env, repair_s, self._repair, (d, e.name))
            holder = fleet.fail(d, now)
            self.rec.event(
                now,
                EventKind.FAILURE,
                holder.name if holder else "",
                holder.kind if holder else "",
                d,
                detail=e.name,
            )
            if isinstance(holder, Job):
                lost.setdefault(holder, []).append(d)
            elif isinstance(holder, Service):
                services.append(holder)
        for job, ds in lost.items():
            self.training.interrupt(job, ds[0], lost_domains=len(ds), cause=e.name)
        for svc in services:
            self.autoscaler.domain_lost(svc)
        power.flush(now)

    def stats(self) -> dict[str, Any]:
        """Failures per cause (non-void draws), correlated events, tray swaps."""
        return {
            "by_cause": dict(zip(self.names, self.counts, strict=True)),
            "correlated_events": {
                e.name: n for e, n in zip(self.cfg.correlated, self.correlated_counts, strict=True)
            },
            "tray_swaps": self.tray_swaps,
        }
