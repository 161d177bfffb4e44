"""The grid over a run, built once at build time for the engine: the hourly energy price
(USD/MWh) and carbon intensity (gCO2eq/kWh), and the grid import cap (W) as a step function
lowered by demand-response calls.

Hourly values: value ``k`` holds over ``[k x step_s, (k + 1) x step_s)`` of simulation time, as
for the weather (:class:`sim.facility.weather.Weather`); the arrays cover the whole run (their
last hour contains its end). Profiles use local time with ``t = 0`` at midnight starting a Monday
(:mod:`sim.config.grid`).

The import cap: ``cap_changes`` lists ``(time_s, cap_w)`` in increasing time, the first at 0 s;
each cap holds from its time until the next entry's (the last until the run ends). A call of
``[start, end)`` lowers the cap by its shed at ``start`` and restores it at ``end``; entries at
or after the run's end are left out, and entries that would not change the cap are merged.

Random calls are drawn from the generator passed in (the ``grid`` stream of the run's seed): the
same generator state gives the same calls; the engine must not draw from a stream of that name.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from sim.config.grid import (
    CARBON_G_PER_KWH,
    CarbonProfile,
    DemandResponseEvent,
    GridCsv,
    PriceProfile,
    RandomDemandResponse,
)
from sim.config.quantities import show
from sim.facility.grid_csv import read_grid_csv
from sim.units import DAY_S, HOUR_S, MINUTE_S

__all__ = [
    "GridEvent",
    "PlannedGrid",
    "cap_changes",
    "carbon_series",
    "event_problems",
    "planned_events",
    "price_series",
    "profile_values",
    "random_events",
]


@dataclass(frozen=True)
class GridEvent:
    """A demand-response call: the import cap is lowered by ``shed_w`` over ``[start_s,
    end_s)`` (``end_s`` may lie after the run's end); the site learns of it at
    ``notified_at_s`` = ``start_s - notice_s``, or at 0 if that is before the run."""

    start_s: float
    end_s: float
    shed_w: float
    notice_s: float

    @property
    def notified_at_s(self) -> float:
        return max(0.0, self.start_s - self.notice_s)


@dataclass(frozen=True, eq=False)
class PlannedGrid:
    """The grid over a run (see the module docstring for the conventions).

    ``price_usd_per_mwh[k]`` and ``carbon_g_per_kwh[k]`` hold over hour ``k`` (float64, one
    value per hour of the run); ``cap_changes`` is the import cap as a step function, first
    entry ``(0.0, grid_power_w)`` unless a call starts at 0; ``events`` are the calls in time
    order. ``*_source`` say where the values come from."""

    grid_power_w: float
    price_usd_per_mwh: np.ndarray
    carbon_g_per_kwh: np.ndarray
    cap_changes: tuple[tuple[float, float], ...]
    events: tuple[GridEvent, ...]
    price_source: str
    carbon_source: str
    step_s: float = HOUR_S

    def index(self, t_s: float) -> int:
        """The hour that holds at simulation time ``t_s`` (clamped to the arrays)."""
        return min(max(int(t_s // self.step_s), 0), len(self.price_usd_per_mwh) - 1)

    def cap_at(self, t_s: float) -> float:
        """The grid import cap (W) in force at ``t_s``."""
        k = bisect.bisect_right([t for t, _ in self.cap_changes], t_s) - 1
        return self.cap_changes[max(k, 0)][1]

    def mean_price_usd_per_mwh(self, duration_s: float) -> float:
        """The time mean of the price over ``[0, duration_s)`` (the last hour weighted by the
        part of it in the run): the price of a constant load."""
        return _time_mean(self.price_usd_per_mwh, duration_s, self.step_s)


def _time_mean(values: np.ndarray, duration_s: float, step_s: float) -> float:
    if bool(np.all(values == values[0])):
        return float(values[0])
    starts = np.arange(len(values), dtype=float) * step_s
    weights = np.clip(duration_s - starts, 0.0, step_s)
    return float(np.dot(values, weights) / weights.sum())


# --------------------------------------------------------------------------- hourly values


def profile_values(
    base: float, peak: float, hours_window: tuple[int, int], hours: int, weekdays_only: bool
) -> np.ndarray:
    """``peak`` in the window ``[start, end)`` of local hours (wrapping past midnight when
    start > end), ``base`` otherwise; with ``weekdays_only``, base all day on days 5 and 6 of
    each week (t = 0 is a Monday)."""
    h = np.arange(hours)
    hod = h % 24
    lo, hi = hours_window[0] % 24, hours_window[1] % 24
    if hours_window[1] == 24:
        hi = 24
    inside = (hod >= lo) & (hod < hi) if lo < hi else (hod >= lo) | (hod < hi)
    if weekdays_only:
        inside &= (h // 24) % 7 < 5
    return np.where(inside, float(peak), float(base))


def _csv(cfg: GridCsv, column: str, key: str, hours: int, base_dir: Path | None) -> np.ndarray:
    p = Path(cfg.path)
    path = p if p.is_absolute() or base_dir is None else base_dir / p
    return read_grid_csv(path, shown=str(path)).values(column, cfg.start, hours, key)


def _start(t: datetime | None) -> str:
    return "" if t is None else f" from {t.isoformat()}"


def price_series(
    cfg: float | PriceProfile | GridCsv, hours: int, base_dir: Path | None
) -> tuple[np.ndarray, str]:
    """Hourly price (USD/MWh) and its source for ``costs.energy_price``. Raises
    :class:`~sim.facility.grid_csv.GridFileError` naming the file and line."""
    if isinstance(cfg, PriceProfile):
        vals = profile_values(
            cfg.base_usd_per_mwh,
            cfg.peak_usd_per_mwh,
            cfg.peak_hours,
            hours,
            cfg.weekend == "base",
        )
        return vals, "profile"
    if isinstance(cfg, GridCsv):
        vals = _csv(cfg, "price_usd_per_mwh", "costs.energy_price", hours, base_dir)
        return vals, f"csv {cfg.path}{_start(cfg.start)}"
    return np.full(hours, float(cfg)), "constant"


def carbon_series(
    cfg: float | str | CarbonProfile | GridCsv, hours: int, base_dir: Path | None
) -> tuple[np.ndarray, str]:
    """Hourly carbon intensity (gCO2eq/kWh) and its source for ``costs.carbon_intensity``."""
    if isinstance(cfg, CarbonProfile):
        vals = profile_values(
            cfg.base_g_per_kwh, cfg.peak_g_per_kwh, cfg.peak_hours, hours, weekdays_only=False
        )
        return vals, "profile"
    if isinstance(cfg, GridCsv):
        vals = _csv(cfg, "carbon_g_per_kwh", "costs.carbon_intensity", hours, base_dir)
        return vals, f"csv {cfg.path}{_start(cfg.start)}"
    if isinstance(cfg, str):
        return np.full(hours, CARBON_G_PER_KWH[cfg]), f"{cfg} 2024 annual average [F65]"
    return np.full(hours, float(cfg)), "constant"


# --------------------------------------------------------------------------- demand response


def event_problems(
    events: Sequence[DemandResponseEvent], grid_power_w: float, duration_s: float
) -> list[tuple[int, str, str]]:
    """Problems of explicit calls as ``(index, key, message)``: a call that starts after the
    run (it would change nothing), a shed above the grid power, calls that overlap."""
    out: list[tuple[int, str, str]] = []
    for i, e in enumerate(events):
        if e.start_s >= duration_s:
            out.append(
                (
                    i,
                    "start",
                    f"the call starts at {show(e.start_s, 's')}, after the run ends"
                    f" ({show(duration_s, 's')}): it would change nothing (leave it out of"
                    " facility.demand_response, or run longer)",
                )
            )
        if e.shed_w > grid_power_w * (1 + 1e-9):
            out.append(
                (
                    i,
                    "shed",
                    f"a shed of {show(e.shed_w, 'W')} is more than grid_power"
                    f" ({show(grid_power_w, 'W')}): the import cap cannot go below 0",
                )
            )
    order = sorted(range(len(events)), key=lambda i: (events[i].start_s, i))
    for a, b in itertools.pairwise(order):
        ea, eb = events[a], events[b]
        if eb.start_s < ea.start_s + ea.length_s:
            out.append(
                (
                    b,
                    "start",
                    f"the call at {show(eb.start_s, 's')} overlaps call {a}"
                    f" ({show(ea.start_s, 's')} for {show(ea.length_s, 's')}): calls may not"
                    " overlap; make them one call with the shed you mean",
                )
            )
    return out


def planned_events(events: Sequence[DemandResponseEvent]) -> tuple[GridEvent, ...]:
    """Explicit calls (already checked by :func:`event_problems`) in time order."""
    ordered = sorted(events, key=lambda e: e.start_s)
    return tuple(
        GridEvent(e.start_s, e.start_s + e.length_s, e.shed_w, e.notice_s) for e in ordered
    )


def random_events(
    cfg: RandomDemandResponse, grid_power_w: float, duration_s: float, rng: np.random.Generator
) -> tuple[GridEvent, ...]:
    """Random calls over a run (the generator of :class:`~sim.config.grid.RandomDemandResponse`):
    a Poisson number at ``rate`` over the run, on distinct days, starting at a uniform time of
    ``start_hours`` (whole minutes, before the run's end), lasting ``mean/2 + Exp(mean/2)``
    (whole minutes, at least one), each cut at the next call's start."""
    lo_s, hi_s = cfg.start_hours[0] * HOUR_S, cfg.start_hours[1] * HOUR_S
    n_days = max(0, math.ceil((duration_s - lo_s) / DAY_S)) if duration_s > lo_s else 0
    n = min(int(rng.poisson(cfg.rate_per_s * duration_s)), n_days)
    days = np.sort(rng.choice(n_days, size=n, replace=False)) if n else np.zeros(0, dtype=int)
    u = rng.random(n)
    half = cfg.mean_length_s / 2
    lengths = half + rng.exponential(half, n)
    out: list[GridEvent] = []
    for d, x, length in zip(days.tolist(), u.tolist(), lengths.tolist(), strict=True):
        day0 = d * DAY_S
        upper = min(hi_s, duration_s - day0)
        start = day0 + math.floor((lo_s + x * (upper - lo_s)) / MINUTE_S) * MINUTE_S
        length_min = max(1, round(length / MINUTE_S))
        out.append(
            GridEvent(
                start, start + length_min * MINUTE_S, cfg.shed_fraction * grid_power_w, cfg.notice_s
            )
        )
    for k in range(len(out) - 1):
        if out[k].end_s > out[k + 1].start_s:
            e = out[k]
            out[k] = GridEvent(e.start_s, out[k + 1].start_s, e.shed_w, e.notice_s)
    return tuple(out)


def cap_changes(
    grid_power_w: float, events: Sequence[GridEvent], duration_s: float
) -> tuple[tuple[float, float], ...]:
    """The import cap as a step function over ``[0, duration_s)``: ``(time_s, cap_w)`` from 0,
    each event lowering it by its shed over ``[start, end)`` (events must not overlap)."""
    steps: list[tuple[float, float]] = [(0.0, grid_power_w)]
    for e in sorted(events, key=lambda e: e.start_s):
        for t, cap in ((e.start_s, grid_power_w - e.shed_w), (e.end_s, grid_power_w)):
            if t >= duration_s:
                continue
            if steps[-1][0] == t:
                steps[-1] = (t, cap)
            else:
                steps.append((t, cap))
    merged = [steps[0]]
    for t, cap in steps[1:]:
        if cap != merged[-1][1]:
            merged.append((t, cap))
    return tuple(merged)
