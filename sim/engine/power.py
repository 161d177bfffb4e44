"""Power accounting (component ``power``): IT and facility power per hall and for the site, live.

The power of a hall is a level kept up to date on every change of what its domains do, so a
controller can read it at any time (:attr:`Power.site_it_w`, :meth:`Power.hall_it_w`):

    hall IT power = overhead + P x (f_idle x domains up + f_failed x domains failed)
                    + the draw above idle of the workloads holding domains in the hall

where ``P`` is a domain's provisioned power (``domain_power_w``) and the fractions ``f`` are the
hardware generation's activity power (catalog ``activity_power``, or the scenario's
``facility.activity_power`` for every generation). A running training job draws
``P x (f_training - f_idle) x power_scale`` above idle per domain (``power_scale`` < 1 under a
throttle); a restarting job's domains idle. An inference service draws
``P x (f_inference_full_load - f_idle)`` per domain of load, where its load in domains is
``min(demand / capacity per domain, domains held)``: the served share, as before. ``overhead`` is
the network, storage and management IT power, a constant share (``it_overhead_fraction``) of the
hall's provisioned domain power. Facility power = IT power x PUE (a constant until the
power-and-cooling model makes it live).

Cost per change: O(halls the workload spans), never O(domains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.contract import HALL, TRACE, entity_column
from sim.record import Recorder

if TYPE_CHECKING:
    from sim.engine.workloads import Workload

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


class Power:
    """Power levels per hall and for the site.

    Changes made at one instant can be batched (:meth:`batch`): draws are accumulated and each
    touched hall, and the site, is written once when the batch ends.
    """

    name = "power"

    def __init__(self, halls: list[HallPower], pue: float, rec: Recorder) -> None:
        self.halls = halls
        self.pue = pue
        self.failed = [0] * len(halls)
        self.extra_w = [0.0] * len(halls)
        self.base_w = [self._base(h) for h in range(len(halls))]
        self.hall_w = list(self.base_w)
        self.site_it_w = sum(self.hall_w)
        # one row per change: every hall's IT power, the site's IT and facility power
        self.ch = rec.row_channel(
            (
                *(entity_column(HALL, h.name, "it_power_w") for h in halls),
                TRACE["it_power_w"].name,
                TRACE["facility_power_w"].name,
            ),
            (*self.hall_w, self.site_it_w, self.site_it_w * pue),
        )
        self._dirty: set[int] = set()
        self._depth = 0
        # per hardware type: watts above idle per domain of training and of inference load
        by_hw: dict[int, HallPower] = {h.hw: h for h in halls}
        n_hw = max(by_hw) + 1 if by_hw else 0
        self.train_w = [0.0] * n_hw
        self.infer_w = [0.0] * n_hw
        for hw, h in by_hw.items():
            self.train_w[hw] = h.domain_power_w * (h.training - h.idle)
            self.infer_w[hw] = h.domain_power_w * (h.inference_full_load - h.idle)

    @property
    def site_facility_w(self) -> float:
        return self.site_it_w * self.pue

    def hall_it_w(self, h: int) -> float:
        return self.hall_w[h]

    def _base(self, h: int) -> float:
        hp = self.halls[h]
        f = self.failed[h]
        return hp.overhead_w + hp.domain_power_w * (hp.idle * (hp.n_domains - f) + hp.failed * f)

    # ------------------------------------------------------------------ writing the levels

    def batch(self) -> None:
        """Start a batch of changes at the current instant; end it with :meth:`flush`."""
        self._depth += 1

    def flush(self, now: float) -> None:
        """End a batch (or write at once outside one): set each touched hall and the site."""
        if self._depth:
            self._depth -= 1
            if self._depth:
                return
        dirty = self._dirty
        if not dirty:
            return
        hall_w = self.hall_w
        extra = self.extra_w
        for h in dirty:
            x = extra[h]
            if -_RESIDUE_W < x < _RESIDUE_W:
                x = extra[h] = 0.0  # float residue of adds and subtracts: nothing draws
            hall_w[h] = self.base_w[h] + x
        dirty.clear()
        s = sum(hall_w)
        self.site_it_w = s
        self.ch.set(now, (*hall_w, s, s * self.pue))

    # ------------------------------------------------------------------ changes

    def domain_failed(self, h: int, sign: int, now: float) -> None:
        """A domain of hall ``h`` failed (+1) or came back from repair (-1)."""
        self.failed[h] += sign
        self.base_w[h] = self._base(h)
        self._dirty.add(h)
        if not self._depth:
            self.flush(now)

    def set_draw(self, w: Workload, per_domain_w: float, now: float) -> None:
        """``w`` now draws ``per_domain_w`` above idle on each domain it holds.

        The fleet refreshes a drawing workload whenever its domains change, so an unchanged
        draw per domain needs nothing."""
        if per_domain_w == w.draw_w:
            return
        w.draw_w = per_domain_w
        self.refresh(w, now)

    def refresh(self, w: Workload, now: float) -> None:
        """Recount ``w``'s draw after its draw per domain or its domains changed."""
        drawn = w.drawn_w
        per = w.draw_w
        hall_n = w.hall_n
        extra = self.extra_w
        dirty = self._dirty
        for h in w.halls:
            new = hall_n[h] * per
            old = drawn[h]
            if new != old:
                extra[h] += new - old
                drawn[h] = new
                dirty.add(h)
        if not self._depth:
            self.flush(now)
