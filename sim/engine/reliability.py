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
from collections.abc import Generator
from functools import partial
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

    def run_failures(self) -> Generator[Any, Any, None]:
        cfg = self.cfg
        env = self.env
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
            repairs = draw_durations(cfg.repair_time, repair_rng, BLOCK).tolist()
            for gap, d, uu, rep in zip(gaps, picks, u, repairs, strict=True):
                yield env.timeout(gap)
                if state[d] == FAILED or (hetero and uu >= accept[domain_hw[d]]):
                    continue
                self.fail(d, rep)

    def fail(self, d: int, repair_s: float) -> None:
        now = self.env.now
        self.model_events += 1
        self.fleet.power.batch()
        holder = self.fleet.fail(d, now)
        self.rec.event(
            now,
            EventKind.FAILURE,
            holder.name if holder else "",
            holder.kind if holder else "",
            domain=d,
        )
        later(self.env, repair_s, partial(self._repair, d))
        if isinstance(holder, Job):
            self.training.interrupt(holder, d)
        elif isinstance(holder, Service):
            self.autoscaler.domain_lost(holder)
        self.fleet.power.flush(now)

    def _repair(self, d: int, _ev: Any = None) -> None:
        now = self.env.now
        self.model_events += 1
        self.fleet.power.batch()
        self.fleet.repair(d, now)
        self.rec.event(now, EventKind.REPAIR, "", "", domain=d)
        self.scheduler.try_start()
        self.fleet.power.flush(now)
