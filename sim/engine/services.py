"""Inference services (component ``autoscaler``; a service is ``workloads.<name>``).

Demand is precomputed per control tick (:func:`demand_series`). At each tick the autoscaler
sets the service's *desired* domain count, changing it only when the target leaves the tolerance
band around it (Kubernetes HPA); the replica controller then keeps the held count at the desired
one, so a domain lost to a failure, or one that could not be had at the last tick, is asked for
again at every tick. The target per tick is a precomputed array
(:meth:`~sim.engine.workloads.Service.targets`), so a tick with nothing to scale costs one event
and a power update (the load of the held domains follows demand).

A service's capacity per domain is a base capacity times named factors
(:meth:`Autoscaler.set_capacity_factor`); a change takes effect at once for the served tokens and
the power, and for the autoscaling targets from the next tick on.

Demand and capacity are step functions. Demand the held capacity cannot serve at once joins
the service's fluid backlog (:mod:`sim.engine.backlog`), served in later intervals at the full
capacity, and given up only when its wait would pass the clients' ``client_timeout``. The
backlog is live engine state: it is brought up to date whenever demand or capacity changes,
and the power of the held domains follows the served rate (the full capacity while a backlog
drains, with a wake-up when it has drained). After the run the served, dropped and queued
flows are derived exactly from the demand and capacity step functions
(:meth:`Autoscaler.levels`). So are the tokens whose requests meet the latency targets: demand
times the request level's SLO attainment at the load on the held capacity
(:mod:`sim.serving.capacity`, computed once per service shape when the scenario is built), none
while the backlog's wait exceeds the TTFT target, so a service planned at 85% of its capacity
meets its targets for nearly all requests and one overloaded by a surge for few of them.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import simpy

from sim.build import PlannedService
from sim.contract import SERVICE, entity_column
from sim.engine.backlog import advance, fluid_queue, served_rate
from sim.engine.fleet import Fleet
from sim.engine.kernel import later
from sim.engine.power import Power
from sim.engine.scheduler import PriorityGangScheduler
from sim.engine.workloads import FACTOR_INDEX, Service
from sim.record import Recorder, bin_edges, merge_times
from sim.serving.capacity import LATENCY_NAMES, attainment_at, latency_at
from sim.units import DAY_S, HOUR_S, YEAR_S

__all__ = ["Autoscaler", "demand_series"]


def demand_series(svc: PlannedService, n_ticks: int, rng: np.random.Generator) -> np.ndarray:
    """Output tokens/s demanded at each control tick ``k`` (time ``k x interval``).

    rate = mean x daily x weekly x growth x noise. Time 0 is a Monday 00:00 local time.
    daily = 1 + a cos(2 pi (hour - peak_hour) / 24), a = (r - 1) / (r + 1) for peak-to-trough r;
    weekly = w on weekdays and f w on weekends with 5w + 2fw = 7 (mean 1); growth compounds
    yearly; noise is lognormal with mean 1 and the given coefficient of variation.
    """
    t = np.arange(n_ticks, dtype=np.float64) * svc.control_interval_s
    hour = (t % DAY_S) / HOUR_S
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


class Autoscaler:
    name = "autoscaler"

    def __init__(
        self,
        env: simpy.Environment,
        fleet: Fleet,
        power: Power,
        scheduler: PriorityGangScheduler,
        rec: Recorder,
        end_s: float,
        bin_s: float,
    ) -> None:
        self.env = env
        self.fleet = fleet
        self.power = power
        self.scheduler = scheduler
        self.rec = rec
        self.end_s = end_s
        self.bin_s = bin_s  # the traces' bin: dropped and queued flows are given per bin
        self.services: list[Service] = []

    def add(self, svc: Service) -> Service:
        svc.index = self.fleet.register(svc)
        svc.ch_domains = self.rec.channel(entity_column(SERVICE, svc.name, "domains"))
        svc.ch_capacity = self.rec.channel(
            entity_column(SERVICE, svc.name, "capacity_tokens_per_s")
        )
        svc.target_list = svc.target.tolist()
        self.power.add_service(svc)
        self.services.append(svc)
        return svc

    def start(self) -> None:
        """Run every service's first tick now: at time 0 they claim their replicas before the
        training gangs are placed. Services with the same control interval tick in one event,
        in the order of the scenario, and their power is written once per tick."""
        groups: dict[float, list[Service]] = {}
        for svc in self.services:
            groups.setdefault(svc.interval_s, []).append(svc)
        for interval, group in groups.items():
            n_ticks = min(len(s.target_list) for s in group)
            self._tick_group(group, interval, n_ticks, None)

    def _tick_group(self, group: list[Service], interval: float, n_ticks: int, _ev: Any) -> None:
        power = self.power
        power.batch()
        for svc in group:
            k = svc.tick + 1
            svc.tick = k
            target = svc.live_target(k) if svc.live else svc.target_list[k]
            desired = svc.desired
            if target != desired and (
                desired < svc.min_domains
                or abs(target - desired) > svc.tolerance * desired
                or desired == 0
            ):
                desired = svc.desired = target
            if svc.held.size != desired:
                self._scale(svc, desired)
            power.service_load_in_batch(svc, self._draw_w(svc))
        power.flush(self.env.now)
        if group[0].tick + 1 < n_ticks:
            later(self.env, interval, partial(self._tick_group, group, interval, n_ticks))

    def _draw_w(self, svc: Service) -> float:
        """Watts above idle of ``svc``'s held domains at the rate they serve from now (this
        tick's demand, or their whole capacity while a backlog drains)."""
        load = self._serve(svc) / svc.capacity_per_domain
        return self.power.infer_w[svc.hw] * svc.power_scale * load

    def _load(self, svc: Service) -> None:
        """Power draw of the held domains at the rate they serve now."""
        self.power.set_service_load(svc, self._draw_w(svc), self.env.now)

    def _serve(self, svc: Service) -> float:
        """Bring ``svc``'s backlog up to now at the demand and capacity in force until now,
        take the ones in force from now on, and return the output tokens/s served from now
        (:mod:`sim.engine.backlog`). A backlog that will drain at this demand and capacity
        schedules a wake-up then, when the served rate (and the power) falls to demand.

        The part of the backlog beyond ``capacity x client_timeout`` is given up when time
        moves on at that capacity, not at once: several changes at one instant (a failed domain
        replaced at the same time) act as their last one, as in :meth:`levels`."""
        now = self.env.now
        q = svc.queue_tokens
        tau = svc.client_timeout_s
        if now > svc.queue_t:
            c0 = svc.queue_capacity
            q = advance(min(q, c0 * tau), svc.queue_demand, c0, now - svc.queue_t, tau)
            svc.queue_tokens = q
            svc.queue_t = now
        d = svc.demand_list[svc.tick] if svc.tick >= 0 else 0.0
        c = svc.held.size * svc.capacity_per_domain
        svc.queue_demand = d
        svc.queue_capacity = c
        q = min(q, c * tau)
        svc.queue_gen += 1  # a wake-up scheduled at the rates before this change is stale
        if q > 0.0 and d < c:
            later(self.env, q / (c - d), partial(self._drained, svc, svc.queue_gen))
        return served_rate(q, d, c)

    def _drained(self, svc: Service, gen: int, _ev: Any) -> None:
        """The backlog scheduled to drain now has (unless a change since rescheduled it)."""
        if gen != svc.queue_gen:
            return
        svc.queue_t = self.env.now
        svc.queue_tokens = 0.0
        self._load(svc)

    def _levels(self, svc: Service) -> None:
        now = self.env.now
        svc.ch_domains.set(now, svc.held.size)
        svc.ch_capacity.set(now, svc.held.size * svc.capacity_per_domain)
        self.power.service_domains(svc, now)

    def _scale(self, svc: Service, need: int) -> None:
        have = svc.held.size
        now = self.env.now
        if need > have:
            sched = self.scheduler
            before = sched.preempted
            got = sched.grant(svc, need - have)
            if got:
                self.fleet.take(svc, got, now)
            if sched.preempted != before:
                sched.try_start()  # what the preemptions freed beyond the need
        else:
            self.fleet.give_back(svc, have - need, now)
            self.scheduler.try_start()
        self._levels(svc)

    def domain_lost(self, svc: Service) -> None:
        """A domain of ``svc`` failed: replace it at once if a domain is free beyond the
        spares, else at a later tick."""
        if self.fleet.n_free(svc.hw) > self.scheduler.spares:
            self.fleet.take1(svc, self.env.now)
        self._levels(svc)
        self._load(svc)

    def set_capacity_factor(self, svc: Service, factor: str, value: float) -> None:
        """Change one named factor of ``svc``'s capacity per domain now: served tokens and
        power at once, autoscaling from the next tick on (the stabilization window still holds
        the needs of the past ticks, so a capacity rise scales down only after the window).
        O(window) the first time, O(1) after."""
        if not value > 0.0 or not math.isfinite(value):
            raise ValueError(f"capacity factor {factor} must be a positive number, got {value}")
        if factor not in FACTOR_INDEX:
            raise ValueError(
                f"unknown capacity factor {factor!r}; known: {', '.join(FACTOR_INDEX)}"
            )
        svc.factors[FACTOR_INDEX[factor]] = value
        cap = svc.base_capacity
        for f in svc.factors:
            cap *= f
        svc.go_live()  # the window keeps the needs of past ticks at their capacity
        svc.capacity_per_domain = cap
        self._levels(svc)
        self._load(svc)

    def set_clock(self, svc: Service, throughput: float, power_scale: float) -> None:
        """Run ``svc`` at a lower clock (DVFS, :mod:`sim.engine.control`): its capacity per
        domain times ``throughput`` (the ``throttle`` factor), its draw per domain of load times
        ``power_scale``; the autoscaler asks for more domains at the next tick if demand needs
        them."""
        svc.power_scale = power_scale
        svc.ch_power_scale.set(self.env.now, power_scale)
        self.set_capacity_factor(svc, "throttle", throughput)

    def load_w_at(self, svc: Service, throughput: float, power_scale: float) -> float:
        """What ``svc``'s load would draw above idle now at that clock (the held domains cap
        the load until the next tick)."""
        cap = svc.capacity_per_domain / svc.factors[FACTOR_INDEX["throttle"]] * throughput
        if svc.tick < 0:
            return 0.0
        # a backlog keeps every held domain busy
        held = float(svc.held.size)
        load = held if svc.queue_tokens > 0.0 else min(svc.demand_list[svc.tick] / cap, held)
        return self.power.infer_w[svc.hw] * power_scale * load

    # ------------------------------------------------------------------ after the run

    def levels(self, svc: Service) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Demand, served, dropped and queued output tokens of ``svc`` over the run, and the
        same flows in requests.

        Served tokens/s, SLO-met tokens/s and request rates are exact step functions on the
        pieces of :func:`~sim.engine.backlog.fluid_queue`; the dropped flows (which include the
        backlog given up at once when the capacity falls) are exact means per trace bin, and
        the queued levels the backlog at each bin's end, so that in every bin
        arrivals + queued at its start = served + dropped + queued at its end. Requests are
        tokens over the generated (output + reasoning) tokens per request in force at the
        control tick (a reasoning ramp changes it tick by tick; the backlog's requests are
        counted at the one in force at the bin's end)."""
        ticks = np.arange(svc.demand.shape[0], dtype=np.float64) * svc.interval_s
        keep = ticks < self.end_s
        d_t, d_v = ticks[keep], svc.demand[keep]
        c_t = np.asarray(svc.ch_capacity.times)
        c_v = np.asarray(svc.ch_capacity.values)
        t0 = merge_times(d_t, c_t)
        t0 = t0[t0 < self.end_s]
        demand0 = d_v[np.searchsorted(d_t, t0, side="right") - 1]
        cap0 = c_v[np.searchsorted(c_t, t0, side="right") - 1]
        ttft = svc.ttft_target_s if svc.slo_table is not None else None
        pieces = fluid_queue(t0, demand0, cap0, self.end_s, svc.client_timeout_s, ttft)
        t, demand, cap, served = pieces.t, pieces.demand, pieces.capacity, pieces.served
        per_tick = svc.tokens_per_request[keep]
        per_request = per_tick[np.searchsorted(d_t, t, side="right") - 1]
        arrivals = demand / per_request
        served_requests = served / per_request
        # per trace bin: the dropped flows (rate pieces and the backlog given up at once) and
        # the backlog at the bin's end
        edges = bin_edges(self.end_s, self.bin_s)
        width = np.diff(edges)
        knots = np.append(t, self.end_s)
        span = np.diff(knots)
        jump_per_request = per_tick[np.searchsorted(d_t, pieces.jump_t, side="right") - 1]

        def per_bin(rate: np.ndarray, jumps: np.ndarray) -> np.ndarray:
            cum = np.interp(edges, knots, np.concatenate(([0.0], np.cumsum(rate * span))))
            cj = np.concatenate(([0.0], np.cumsum(jumps)))
            cum = cum + cj[np.searchsorted(pieces.jump_t, edges, side="left")]
            return np.diff(cum) / width

        dropped_tokens = per_bin(pieces.dropped, pieces.jump_tokens)
        dropped_requests = per_bin(
            pieces.dropped / per_request, pieces.jump_tokens / jump_per_request
        )
        queued = pieces.queue_at(edges[1:])
        queued_requests = queued / per_tick[np.searchsorted(d_t, edges[1:], side="left") - 1]
        dom_t = np.asarray(svc.ch_domains.times)
        dom_v = np.asarray(svc.ch_domains.values)
        # the backlog's wait ahead of a new request (at the piece's middle), and the load the
        # replicas carry (served over held capacity: at most 1, a backlog drains at capacity)
        with np.errstate(divide="ignore", invalid="ignore"):
            wait = np.where(cap > 0, (pieces.q0 + pieces.slope * span / 2) / cap, np.inf)
            load = np.where(cap > 0, served / np.where(cap > 0, cap, 1.0), np.inf)
        if svc.slo_unmeasured:
            met = np.full(t.shape[0], np.nan)  # targets, but no estimate of who meets them
        elif svc.slo_table is None:
            met = served  # no latency targets: every token served meets them
        else:
            # the share of the served requests that meet the targets at the load the replicas
            # carry: what they serve over the held capacity, in units of the fluid capacity per
            # replica (a throttled replica, capacity x f, counts as a full-clock one at 1/f the
            # load). Demand beyond the capacity is not load on the replicas: it waits in the
            # backlog (its wait is added below) or is given up, so it is not counted twice, as
            # a queue inside the request level's curve and again as the backlog. None meet them
            # while the backlog ahead of a request alone exceeds the TTFT target (the pieces are
            # cut where it crosses it).
            met = np.where(cap > 0, served * attainment_at(*svc.slo_table, load), 0.0)
            if ttft is not None:
                met = np.where(wait > ttft, 0.0, met)
        starts = edges[:-1]
        out = {
            entity_column(SERVICE, svc.name, "demand_tokens_per_s"): (d_t, d_v),
            entity_column(SERVICE, svc.name, "served_tokens_per_s"): (t, served),
            entity_column(SERVICE, svc.name, "slo_met_tokens_per_s"): (t, met),
            entity_column(SERVICE, svc.name, "dropped_tokens_per_s"): (starts, dropped_tokens),
            entity_column(SERVICE, svc.name, "queued_tokens"): (starts, queued),
            # 1 while demand exceeds the held capacity (its bin mean is the share of the bin)
            entity_column(SERVICE, svc.name, "over_capacity"): (t, (demand > cap).astype(float)),
            entity_column(SERVICE, svc.name, "arrivals_requests_per_s"): (t, arrivals),
            entity_column(SERVICE, svc.name, "served_requests_per_s"): (t, served_requests),
            entity_column(SERVICE, svc.name, "dropped_requests_per_s"): (starts, dropped_requests),
            entity_column(SERVICE, svc.name, "queued_requests"): (starts, queued_requests),
            entity_column(SERVICE, svc.name, "replicas"): (dom_t, dom_v * svc.replicas_per_domain),
            entity_column(SERVICE, svc.name, "prompt_cache_hit_rate"): (
                t[:1],
                np.full(1, svc.prompt_cache_hit),
            ),
        }
        for name in LATENCY_NAMES:
            if svc.slo_table is None or svc.latency_table is None:
                values = np.full(t.shape[0], np.nan)  # no targets: no request-level estimate
            else:
                values = latency_at(svc.slo_table[0], svc.latency_table[name], load)
                if name.startswith("ttft"):
                    values = values + wait  # a new request first waits for the backlog
            out[entity_column(SERVICE, svc.name, name)] = (t, values)
        return out
