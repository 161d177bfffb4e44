"""Failures and repairs (component ``reliability``).

Failures are one Poisson stream for the whole fleet at rate N x lambda_max (superposition); a
draw that lands on an already failed domain, or is thinned away for a domain type with a lower
rate, is discarded, which is exact for independent per-domain Poisson failures. A failure takes
its domain out of service for a repair time drawn from the scenario's distribution; repairs are
plain callbacks. The workload that held the domain is told: a job is interrupted (it loses the
work since its last checkpoint, see :mod:`sim.engine.training`), a service replaces the domain if
one is free (:mod:`sim.engine.services`). Random draws are taken in blocks of :data:`BLOCK`.
"""

from __future__ import annotations

import math
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
from sim.engine.workloads import Job, Service
from sim.record import EventKind, Recorder
from sim.rng import RandomStreams
from sim.units import DAY_S

__all__ = ["BLOCK", "Reliability", "draw_durations"]

BLOCK = 4096  # random draws are taken in blocks: one numpy call per BLOCK events


def draw_durations(dist: DurationDist, rng: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(dist, FixedDuration):
        return np.full(n, dist.value_s)
    if isinstance(dist, ExponentialDuration):
        return rng.exponential(dist.mean_s, n)
    assert isinstance(dist, LognormalDuration)
    sigma2 = math.log1p(dist.cv**2)
    mu = math.log(dist.mean_s) - sigma2 / 2.0
    return rng.lognormal(mu, math.sqrt(sigma2), n)


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
        self.model_events = 0

    def start(self) -> None:
        """Start the fleet-wide failure stream (nothing to do without failures)."""
        cfg = self.cfg
        fleet = self.fleet
        per_domain = np.array(
            [
                cfg.failure_rate_per_1000_node_days / 1000.0 / DAY_S * g / cfg.node_gpus
                for g in self.domain_gpus
            ]
        )
        lam_max = float(per_domain.max()) if per_domain.size else 0.0
        if lam_max <= 0 or fleet.n == 0:
            return
        self._accept = (per_domain / lam_max).tolist()
        self._hetero = any(a < 1.0 for a in self._accept)
        self._total = lam_max * fleet.n
        self._rng = self.streams["failures"]
        self._repair_rng = self.streams["repairs"]
        self._draws: list[tuple[float, int, float, float]] = []
        self._next = 0
        self._arm()

    def _arm(self) -> None:
        """Schedule the next draw of the stream (a new block of draws when one runs out)."""
        if self._next == len(self._draws):
            rng = self._rng
            gaps = rng.exponential(1.0 / self._total, BLOCK).tolist()
            picks = rng.integers(0, self.fleet.n, BLOCK).tolist()
            u = rng.random(BLOCK).tolist() if self._hetero else [0.0] * BLOCK
            repairs = draw_durations(self.cfg.repair_time, self._repair_rng, BLOCK).tolist()
            self._draws = list(zip(gaps, picks, u, repairs, strict=True))
            self._next = 0
        draw = self._draws[self._next]
        self._next += 1
        later(self.env, draw[0], self._draw, draw)

    def _draw(self, ev: Any) -> None:
        _gap, d, u, repair_s = ev._value
        fleet = self.fleet
        # a draw on a failed domain, or thinned away for a domain type of a lower rate, is void
        if fleet.state_of[d] != FAILED and not (self._hetero and u >= self._accept[fleet.hw_of[d]]):
            self.fail(d, repair_s)
        self._arm()

    def fail(self, d: int, repair_s: float) -> None:
        now = self.env.now
        self.model_events += 1
        later(self.env, repair_s, self._repair, d)
        if self.fleet.holder_of[d] < 0:
            # a free domain (most failures on a large, lightly loaded site): nothing else to do
            self.fleet.fail(d, now)
            self.rec.event(now, EventKind.FAILURE, "", "", d)
            return
        power = self.fleet.power
        power.batch()
        holder = self.fleet.fail(d, now)
        assert holder is not None
        self.rec.event(now, EventKind.FAILURE, holder.name, holder.kind, d)
        if isinstance(holder, Job):
            self.training.interrupt(holder, d)
        elif isinstance(holder, Service):
            self.autoscaler.domain_lost(holder)
        power.flush(now)

    def _repair(self, ev: Any) -> None:
        d = ev._value
        now = self.env.now
        self.model_events += 1
        self.rec.event(now, EventKind.REPAIR, "", "", d)
        sched = self.scheduler
        if not any(sched.queues):
            self.fleet.repair(d, now)  # nothing waits for it: no batch needed
            return
        power = self.fleet.power
        power.batch()
        self.fleet.repair(d, now)
        sched.try_start()
        power.flush(now)
