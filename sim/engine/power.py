"""Power accounting (component ``power``; halls are ``site.<hall>``): IT and facility power per
hall and for the site, live.

The IT power of a hall is

    overhead + P x (f_idle x domains up + f_failed x domains failed)
    + the draw above idle of the workloads holding domains in the hall

where ``P`` is a domain's provisioned power (``domain_power_w``) and the fractions ``f`` are the
hardware generation's activity power (catalog ``activity_power``, or the scenario's
``facility.activity_power`` for every generation). A running training job draws
``P x (f_training - f_idle) x power_scale`` above idle per domain (``power_scale`` < 1 under a
throttle); a restarting job's domains idle. An inference service draws
``P x (f_inference_full_load - f_idle) x power_scale`` per domain of load, where its load in
domains is the served share: ``min(demand / capacity per domain, domains held)``, or every
domain held while a backlog drains (:mod:`sim.engine.backlog`); it is spread over the halls in
proportion to the domains it holds in each. ``overhead`` is the network, storage and
management IT power, a constant share (``it_overhead_fraction``) of the hall's provisioned
domain power. Facility power = IT power x the hall's facility slope plus its fixed loads
(a constant PUE, or the weather's through the cooling model: :mod:`sim.facility`).

**What is live, and how it is recorded.** The site's IT and facility power
(:attr:`Power.site_it_w`, :attr:`Power.site_facility_w`) are levels kept up to date on every
change: a domain failing or coming back, a job starting, stopping or changing its throttle, a
service changing its domains or its load (at every control tick, since demand moves). A hall's
power is read at any instant with :meth:`Power.hall_it_w`: its training, idle and failed part
is kept per hall on every change, and the services' load is split over the halls when read,
because a service's load changes at every tick and its split only when its domains change
(splitting it eagerly would cost a write per hall per service per tick). Both are kept between
reads: each hall's sum and each service's load per hall are summed again only after one of their
parts changed (:meth:`Power.fresh_it`; the fleet calls :meth:`Power.holding_changed` after
every change of a holding), and the halls changed since the controller last looked are kept
for it (:attr:`Power.touched`), so it checks only those. The recorded per-hall
levels are exact all the same: the per-hall part of training, idle and failures is recorded on
change, each service's domains per hall and its clock's power scale on change, and
:meth:`Power.hall_levels` combines them with the services' served-tokens levels after the run,
on the union of their change times.

Cost per change: O(halls the workload spans), never O(domains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.contract import HALL, TRACE, entity_column
from sim.engine.kernel import Call, later
from sim.record import Recorder, merge_times

if TYPE_CHECKING:
    from sim.engine.workloads import Service, Workload

__all__ = ["HallPower", "Power"]

#: draws below this (watts) are float residue of adds and subtracts: snapped to zero
_RESIDUE_W = 1e-6


@dataclass(frozen=True)
class HallPower:
    """What the power accounting needs to know about one hall (from the plan)."""

    name: str
    hw: int
    n_domains: int
    domain_power_w: float
    idle: float
    training: float
    inference_full_load: float
    failed: float
    overhead_w: float
    cooling_capacity_w: float  # heat it can reject (at design conditions under weather)


@dataclass(frozen=True)
class Climate:
    """The weather's effect on the halls, per weather step ``k`` (from the plan's weather and
    each hall's cooling, :mod:`sim.facility`): facility power of hall ``h`` is
    ``slope[h][k] x IT + fixed_w[h]`` (IT x (1 + losses + cooling at this outdoor air) plus
    the fixed loads), and it can reject ``capacity_w[h][k]`` of heat."""

    step_s: float
    dry_bulb_c: list[float]
    wet_bulb_c: list[float]
    slope: list[list[float]]
    fixed_w: list[float]
    capacity_w: list[list[float]]


class Power:
    """Power levels per hall and for the site.

    Changes made at one instant can be batched (:meth:`batch`): draws are accumulated, and the
    touched halls and the site are written once when the batch ends (:meth:`flush`).
    """

    name = "power"

    def __init__(
        self, halls: list[HallPower], pue: float, rec: Recorder, climate: Climate | None = None
    ) -> None:
        self.halls = halls
        self.pue = pue
        self.rec = rec
        self.climate = climate
        self._step = 0  # the weather step in force
        n = len(halls)
        # facility power of hall h = slope[h] x its IT power + fixed[h]; a constant PUE is the
        # slope with nothing fixed
        self.slope = [pue] * n if climate is None else [s[0] for s in climate.slope]
        self.max_slope = max(self.slope) if self.slope else 1.0  # the highest hall's slope
        self.fixed_w = [0.0] * n if climate is None else list(climate.fixed_w)
        self.fixed_total_w = sum(self.fixed_w)
        self.failed = [0] * len(halls)
        self.extra_w = [0.0] * len(halls)  # jobs' draw above idle, per hall
        self.base_w = [self._base(h) for h in range(len(halls))]
        self.hall_w = list(self.base_w)  # base + jobs: everything but the services' load
        self.services: list[Service] = []
        self.services_w = 0.0  # the services' load draw, site-wide
        self.site_it_w = sum(self.hall_w)
        self.site_facility_w = self._facility()
        # one row per change: each hall without the services' load, then the site's IT and
        # facility power (the hall columns are combined with the services after the run)
        self.ch = rec.row_channel(
            (
                *(f"_halls_without_services.{h.name}" for h in halls),
                TRACE["it_power_w"].name,
                TRACE["facility_power_w"].name,
            ),
            (*self.hall_w, self.site_it_w, self.site_facility_w),
        )
        # one row per weather step: outdoor air, each hall's cooling capacity and its slope
        self.ch_climate = rec.row_channel(
            (
                TRACE["outdoor_dry_bulb_c"].name,
                TRACE["outdoor_wet_bulb_c"].name,
                *(entity_column(HALL, h.name, "cooling_capacity_w") for h in halls),
                *(f"_facility_slope.{h.name}" for h in halls),
            ),
            self._climate_row(0),
        )
        #: halls whose training, idle or failed draw changed in the batch under way
        self.dirty: set[int] = set()
        self._site_dirty = False
        self._unwritten = False  # levels settled within a batch, not yet written
        #: each hall's IT power with the services' load, as :meth:`hall_it_w` sums it, kept
        #: for the halls not in ``_stale`` (recomputed when read); ``touched``: halls whose IT
        #: power may have changed since the controller last looked (it empties the set).
        #: Kept only once something reads them (``_kept``): a run whose controller watches no
        #: hall pays nothing for them
        self.it_w = list(self.hall_w)
        self._kept = False
        self._stale: set[int] = set()
        self.touched: set[int] = set()
        #: each service's load in each hall (``load x domains there / domains held``, 0 where
        #: it holds none), by its position in :attr:`services`, kept for the services not in
        #: ``_shares_stale``; its position by its index in the fleet
        self._shares: list[list[float]] = []
        self._shares_stale: set[int] = set()
        self._service_pos: dict[int, int] = {}
        self._depth = 0
        #: bumped after every change of what the power controller's admission reads: the
        #: levels written, a service's load, a holding (and so the free pools), a failure or
        #: a repair, the weather step
        self.version = 0
        #: told after every change (the power controller, :mod:`sim.engine.control`)
        self.controller: Any = None
        # per hardware type: watts above idle per domain of training and of inference load
        by_hw: dict[int, HallPower] = {h.hw: h for h in halls}
        n_hw = max(by_hw) + 1 if by_hw else 0
        self.train_w = [0.0] * n_hw
        self.infer_w = [0.0] * n_hw
        for hw, h in by_hw.items():
            self.train_w[hw] = h.domain_power_w * (h.training - h.idle)
            self.infer_w[hw] = h.domain_power_w * (h.inference_full_load - h.idle)

    def _base(self, h: int) -> float:
        hp = self.halls[h]
        f = self.failed[h]
        return hp.overhead_w + hp.domain_power_w * (hp.idle * (hp.n_domains - f) + hp.failed * f)

    # ------------------------------------------------------------------ reading

    def _climate_row(self, k: int) -> tuple[float, ...]:
        c = self.climate
        if c is None:
            nan = float("nan")
            return (nan, nan, *(h.cooling_capacity_w for h in self.halls), *self.slope)
        return (
            c.dry_bulb_c[k],
            c.wet_bulb_c[k],
            *(cap[k] for cap in c.capacity_w),
            *self.slope,
        )

    def _facility(self) -> float:
        """Site facility power now: sum over halls of slope x IT + fixed."""
        if self.climate is None:
            return self.site_it_w * self.pue
        f = self.fixed_total_w
        for s, w in zip(self.slope, self.hall_w, strict=True):
            f += s * w
        for svc in self.services:
            f += svc.load_w * svc.slope
        return f

    def hall_facility_w(self, h: int) -> float:
        """Facility power of hall ``h`` now (its IT power, cooling and losses)."""
        return self.slope[h] * self.hall_it_w(h) + self.fixed_w[h]

    def cooling_capacity_w(self, h: int) -> float:
        """Heat hall ``h`` can reject now."""
        if self.climate is None:
            return self.halls[h].cooling_capacity_w
        return self.climate.capacity_w[h][self._step]

    def start_weather(self, env: simpy.Environment) -> None:
        """Step the weather: at each step the halls' facility slopes and capacities change."""
        self._env = env
        if self.climate is None or len(self.climate.dry_bulb_c) < 2:
            return
        later(env, self.climate.step_s, self._next_step, 1)

    def _next_step(self, call: Call) -> None:
        k = call._value
        assert self.climate is not None
        self.weather_step(k, self._env.now)
        if k + 1 < len(self.climate.dry_bulb_c):
            later(self._env, self.climate.step_s, self._next_step, k + 1)

    def weather_step(self, k: int, now: float) -> None:
        """Weather step ``k`` begins: each hall's facility slope and cooling capacity change."""
        c = self.climate
        assert c is not None
        self._step = k
        self.version += 1
        self.slope = [s[k] for s in c.slope]
        self.max_slope = max(self.slope) if self.slope else 1.0
        for svc in self.services:
            self._service_slope(svc)
        self.ch_climate.set(now, self._climate_row(k))
        self._site_dirty = True  # before the controller looks: admission settles the levels
        if self.controller is not None:
            self.controller.weather_changed()
        if not self._depth:
            self.flush(now)

    def _service_slope(self, svc: Service) -> None:
        """The facility slope of ``svc``'s load: its halls' slopes, weighted by its domains."""
        held = svc.held.size
        if not held:
            svc.slope = self.pue if self.climate is None else self.slope[0]
            return
        s = 0.0
        for h in svc.halls:
            if svc.hall_n[h]:
                s += self.slope[h] * svc.hall_n[h]
        svc.slope = s / held

    def fresh_it(self) -> list[float]:
        """Each hall's IT power now (:attr:`it_w`; read-only for the caller): the halls whose
        parts changed since the last read are summed again, their part without the services
        then each service's load there, in service order (a service's load there is kept
        until its load or its domains change)."""
        if not self._kept:  # the first read: everything is summed, every hall touched
            self._kept = True
            self._stale.update(range(len(self.halls)))
            self.touched.update(range(len(self.halls)))
            self._shares_stale.update(range(len(self.services)))
        stale = self._stale
        if stale:
            shares = self._shares
            if self._shares_stale:
                services = self.services
                n_halls = len(self.halls)
                # each stale service's load in each hall: load x domains there / domains held
                for p in self._shares_stale:
                    svc = services[p]
                    out = [0.0] * n_halls
                    held = svc.held.size
                    if held:
                        load = svc.load_w
                        hall_n = svc.hall_n
                        for h in svc.halls:
                            n = hall_n[h]
                            if n:
                                out[h] = load * n / held
                    shares[p] = out
                self._shares_stale.clear()
            it, hall_w = self.it_w, self.hall_w
            for h in stale:
                w = hall_w[h]
                for c in shares:
                    w += c[h]
                it[h] = w
            stale.clear()
        return self.it_w

    def hall_it_w(self, h: int) -> float:
        """IT power of hall ``h`` now."""
        return self.fresh_it()[h]

    def halls_it_w(self, halls: list[int]) -> list[float]:
        """IT power of each of ``halls`` now (:meth:`hall_it_w` of each)."""
        it = self.fresh_it()
        return [it[h] for h in halls]

    def holding_changed(self, w: Workload) -> None:
        """The fleet changed ``w``'s domains (called after every change of its ``hall_n``):
        a service's load is split by its domains per hall over its domains held, so the
        share of every hall it spans may change (a job's draw is counted through
        :meth:`refresh`)."""
        self.version += 1
        if self._kept:
            p = self._service_pos.get(w.index)
            if p is not None:
                self._shares_stale.add(p)
                self._stale.update(w.halls)
                self.touched.update(w.halls)

    # ------------------------------------------------------------------ writing the levels

    @property
    def in_batch(self) -> bool:
        """A batch of changes is under way (:meth:`batch`): nothing is written until it ends."""
        return self._depth > 0

    def batch(self) -> None:
        """Start a batch of changes at the current instant; end it with :meth:`flush`."""
        self._depth += 1

    def flush(self, now: float) -> None:
        """End a batch (or write at once outside one): the touched halls and the site."""
        if self._depth:
            self._depth -= 1
            if self._depth:
                return
        if self.dirty or self._site_dirty:
            self.settle()
        if not self._unwritten:
            return
        self._unwritten = False
        hall_w = self.hall_w
        f = self.site_facility_w
        self.ch.set(now, (*hall_w, self.site_it_w, f))
        ctl = self.controller
        if ctl is not None and (f > ctl.cap_w or ctl.watching):
            ctl.check(now)

    def settle(self) -> None:
        """Bring the levels (:attr:`hall_w`, :attr:`site_it_w`, :attr:`site_facility_w`) up
        to the changes made so far, without writing them or telling the controller: the
        batch's :meth:`flush` does that. Admission and release read the levels in the middle
        of a batch (a failure's restart asks the scheduler for a start; a release lets queued
        work start): the level before the batch would still hold the draw of a job that just
        stopped, which the restarting jobs' reserve counts too."""
        dirty = self.dirty
        if not (dirty or self._site_dirty):
            return
        self._site_dirty = False
        self._unwritten = True
        self.version += 1
        hall_w = self.hall_w
        if dirty:
            extra = self.extra_w
            for h in dirty:
                x = extra[h]
                if -_RESIDUE_W < x < _RESIDUE_W:
                    x = extra[h] = 0.0  # float residue of adds and subtracts: nothing draws
                hall_w[h] = self.base_w[h] + x
            if self._kept:  # these halls are summed again when next read
                self._stale |= dirty
                self.touched |= dirty
            dirty.clear()
        sw = self.services_w
        if -_RESIDUE_W < sw < _RESIDUE_W:
            sw = self.services_w = 0.0
        s = sum(hall_w) + sw
        self.site_it_w = s
        self.site_facility_w = self._facility()

    # ------------------------------------------------------------------ changes

    def domain_failed(self, h: int, sign: int, now: float) -> None:
        """A domain of hall ``h`` failed (+1) or came back from repair (-1)."""
        self.failed[h] += sign
        self.version += 1
        self.base_w[h] = self._base(h)
        self.dirty.add(h)
        if not self._depth:
            self.flush(now)

    def set_draw(self, w: Workload, per_domain_w: float, now: float) -> None:
        """Job ``w`` now draws ``per_domain_w`` above idle on each domain it holds.

        The fleet refreshes a drawing job whenever its domains change, so an unchanged draw per
        domain needs nothing."""
        if per_domain_w == w.draw_w:
            return
        w.draw_w = per_domain_w
        self.refresh(w, now)

    def refresh(self, w: Workload, now: float) -> None:
        """Recount job ``w``'s draw after its draw per domain or its domains changed."""
        drawn = w.drawn_w
        per = w.draw_w
        hall_n = w.hall_n
        extra = self.extra_w
        dirty = self.dirty
        for h in w.halls:
            new = hall_n[h] * per
            old = drawn[h]
            if new != old:
                extra[h] += new - old
                drawn[h] = new
                dirty.add(h)
        if not self._depth:
            self.flush(now)

    def add_service(self, svc: Service) -> None:
        """Count ``svc``'s load (it has its index in the fleet)."""
        self.version += 1
        self._service_pos[svc.index] = len(self.services)
        self._shares.append([0.0] * len(self.halls))
        self.services.append(svc)
        self._kept = False  # summed again when next read
        svc.slope = self.pue if self.climate is None else self.slope[0]
        svc.ch_halls = self.rec.row_channel(
            tuple(f"_service_halls.{svc.name}.{h.name}" for h in self.halls),
            tuple(0.0 for _ in self.halls),
        )
        # its clock's power scale (the power controller's throttle), read by hall_levels
        svc.ch_power_scale = self.rec.channel(f"_service_power_scale.{svc.name}", 1.0)

    def service_domains(self, svc: Service, now: float) -> None:
        """Record where ``svc``'s domains are (call after its domains changed)."""
        svc.ch_halls.set(now, tuple(svc.hall_n))
        if self.climate is not None:
            self._service_slope(svc)
            self._site_dirty = True
            if not self._depth:
                self.flush(now)

    def set_service_load(self, svc: Service, load_w: float, now: float) -> None:
        """``svc`` now draws ``load_w`` above idle in all (its load, site-wide)."""
        if load_w == svc.load_w:
            return
        self.version += 1
        self.services_w += load_w - svc.load_w
        svc.load_w = load_w
        if self._kept:
            self._shares_stale.add(self._service_pos[svc.index])
            self._stale.update(svc.halls)
            self.touched.update(svc.halls)
        self._site_dirty = True
        if not self._depth:
            self.flush(now)

    def service_load_in_batch(self, svc: Service, load_w: float) -> None:
        """:meth:`set_service_load` inside a batch (the autoscaler's tick, for every service)."""
        if load_w != svc.load_w:
            self.version += 1
            self.services_w += load_w - svc.load_w
            svc.load_w = load_w
            if self._kept:
                self._shares_stale.add(self._service_pos[svc.index])
                self._stale.update(svc.halls)
                self.touched.update(svc.halls)
            self._site_dirty = True

    # ------------------------------------------------------------------ after the run

    def hall_levels(
        self, served: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each hall's IT and facility power as exact step functions, from the recorded parts
        (and the site's IT and facility power, recorded in the same rows).

        ``served[name]`` is a service's served tokens/s level (times, values). A service draws
        ``infer_w x power scale x served / capacity per domain`` (the power scale of its clock,
        1 unless the power controller throttles it) spread as its domains per hall / its
        domains, that is ``infer_w x power scale x served x domains in the hall / capacity
        held``.
        """
        bt, rows = self.ch.matrix()
        n_halls = len(self.halls)
        bv = rows[:, :n_halls]
        grids: list[tuple[np.ndarray, np.ndarray]] = []  # per service: times, per-hall draw
        for svc in self.services:
            st, sv = served[svc.name]
            ct = np.asarray(svc.ch_capacity.times)
            cv = np.asarray(svc.ch_capacity.values)
            ht, hv = svc.ch_halls.matrix()
            pt = np.asarray(svc.ch_power_scale.times)
            pv = np.asarray(svc.ch_power_scale.values)
            t = merge_times(st, ct, ht, pt)
            s = sv[np.searchsorted(st, t, side="right") - 1]
            c = cv[np.searchsorted(ct, t, side="right") - 1]
            n = hv[np.searchsorted(ht, t, side="right") - 1]
            ps = pv[np.searchsorted(pt, t, side="right") - 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                per = np.where(c > 0, self.infer_w[svc.hw] * ps * s / c, 0.0)
            grids.append((t, n * per[:, None]))
        t = merge_times(bt, *(gt for gt, _ in grids))
        v = bv[np.searchsorted(bt, t, side="right") - 1]
        for gt, gv in grids:
            v = v + gv[np.searchsorted(gt, t, side="right") - 1]
        out = {
            entity_column(HALL, hp.name, "it_power_w"): (t, v[:, h])
            for h, hp in enumerate(self.halls)
        }
        # facility power per hall: slope (a step function of the weather) x IT + fixed loads
        ct, crows = self.ch_climate.matrix()
        slopes = crows[:, 2 + n_halls :]
        tf = merge_times(t, ct)
        it = v[np.searchsorted(t, tf, side="right") - 1]
        sl = slopes[np.searchsorted(ct, tf, side="right") - 1]
        fac = it * sl + np.asarray(self.fixed_w)[None, :]
        for h, hp in enumerate(self.halls):
            out[entity_column(HALL, hp.name, "facility_power_w")] = (tf, fac[:, h])
        out[TRACE["it_power_w"].name] = (bt, rows[:, n_halls])
        out[TRACE["facility_power_w"].name] = (bt, rows[:, n_halls + 1])
        return out
