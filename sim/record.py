"""Recording: levels on change, typed event rows, and binning into fixed intervals.

The engine tells the :class:`Recorder` two kinds of things:

* a **level** changed: ``channel.set(t, value)``. A level holds from its time until the next
  change (a step function), so time-weighted means and integrals are exact (salabim's
  ``Monitor(level=True)``). Only changes are stored: the cost is per event, not per time step.
* an **event** happened: ``recorder.event(t, kind, subject, ...)``, one typed row.

:func:`bin_levels` is the one place where levels become fixed-interval traces: for each bin it
returns the exact time-weighted mean of each channel over that bin. Units: seconds; each channel's
unit is in its name.

Channel names are trace column names of :mod:`sim.contract`. This module imports neither
SimPy nor the engine; what follows from the levels (utilization, energy, costs) is analysis
(:mod:`sim.analysis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

__all__ = ["EVENT_SOURCE", "Channel", "EventKind", "Recorder", "RowChannel", "bin_levels"]


class EventKind(StrEnum):
    """Names of the rows in ``events.parquet``."""

    SUBMITTED = "submitted"
    STARTED = "started"
    RESTARTED = "restarted"
    CHECKPOINTED = "checkpointed"
    INTERRUPTED = "interrupted"
    PREEMPTED = "preempted"
    FINISHED = "finished"
    UNFINISHED = "unfinished"
    FAILURE = "failure"
    REPAIR = "repair"


#: The engine component that emits each kind of event (its dotted name); a job's own events
#: come from ``workloads.<job name>``.
EVENT_SOURCE: dict[str, str] = {
    EventKind.SUBMITTED: "workloads",
    EventKind.STARTED: "scheduler",
    EventKind.RESTARTED: "workloads",
    EventKind.CHECKPOINTED: "workloads",
    EventKind.INTERRUPTED: "reliability",
    EventKind.PREEMPTED: "scheduler",
    EventKind.FINISHED: "workloads",
    EventKind.UNFINISHED: "workloads",
    EventKind.FAILURE: "reliability",
    EventKind.REPAIR: "reliability",
}


@dataclass(slots=True)
class Channel:
    """One level, stored as its change points. ``set`` is on the hot path: keep it tiny."""

    name: str
    times: list[float]
    values: list[float]

    def set(self, t: float, value: float) -> None:
        if value != self.values[-1]:
            if t == self.times[-1]:
                self.values[-1] = value
            else:
                self.times.append(t)
                self.values.append(value)


@dataclass(slots=True)
class RowChannel:
    """Several levels that change together, stored as one row per change (one append instead
    of one per level: the power of every hall and of the site change at the same instants)."""

    names: tuple[str, ...]
    times: list[float]
    rows: list[tuple[float, ...]]

    def set(self, t: float, row: tuple[float, ...]) -> None:
        if t == self.times[-1]:
            self.rows[-1] = row
        else:
            self.times.append(t)
            self.rows.append(row)

    def levels(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        t = np.asarray(self.times)
        values = np.asarray(self.rows, dtype=np.float64).reshape(len(self.rows), len(self.names))
        return {n: (t, values[:, i]) for i, n in enumerate(self.names)}


class Recorder:
    """Collects level channels and event rows during a run; produces tables afterwards."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.row_channels: list[RowChannel] = []
        self._events: list[tuple[float, str, str, str, int, float, str]] = []

    def discard(self, rc: RowChannel) -> None:
        """Drop a row channel that was only an intermediate (its levels were combined)."""
        self.row_channels.remove(rc)

    def row_channel(self, names: tuple[str, ...], initial: tuple[float, ...]) -> RowChannel:
        for name in names:
            if name in self.channels or any(name in rc.names for rc in self.row_channels):
                raise ValueError(f"channel {name!r} registered twice")
        rc = RowChannel(names, [0.0], [tuple(float(v) for v in initial)])
        self.row_channels.append(rc)
        return rc

    def channel(self, name: str, initial: float = 0.0) -> Channel:
        if name in self.channels:
            raise ValueError(f"channel {name!r} registered twice")
        ch = Channel(name, [0.0], [float(initial)])
        self.channels[name] = ch
        return ch

    def add_level(self, name: str, times: np.ndarray, values: np.ndarray) -> None:
        """Add a whole level computed after the run (change times ascending, first at 0)."""
        if name in self.channels:
            raise ValueError(f"channel {name!r} registered twice")
        self.channels[name] = Channel(name, times.tolist(), values.tolist())

    def event(
        self,
        t: float,
        kind: EventKind,
        subject: str,
        workload: str = "",
        domain: int = -1,
        value: float = float("nan"),
        detail: str = "",
    ) -> None:
        # EventKind is a str: storing it as is avoids an enum property lookup per event
        self._events.append((t, kind, subject, workload, domain, value, detail))

    @property
    def n_events(self) -> int:
        return len(self._events)

    def events_table(self) -> pd.DataFrame:
        """Event rows sorted by time (stable: same-time rows keep the order they happened in).

        ``source`` is the dotted name of the component that emitted the row."""
        cols = ["time_s", "event", "subject", "workload", "domain", "value", "detail"]
        df = pd.DataFrame.from_records(self._events, columns=cols)
        src = df["event"].map(EVENT_SOURCE).fillna("")
        own = (src == "workloads") & (df["subject"] != "")
        df["source"] = src.where(~own, "workloads." + df["subject"].astype(str))
        df = df.astype(
            {
                "time_s": "float64",
                "event": "string",
                "subject": "string",
                "workload": "string",
                "domain": "int64",
                "value": "float64",
                "detail": "string",
                "source": "string",
            }
        )
        return df.sort_values("time_s", kind="stable").reset_index(drop=True)

    def levels(self, end_s: float, interval_s: float) -> pd.DataFrame:
        """All channels binned into ``interval_s`` bins up to ``end_s`` (time-weighted means)."""
        levels = {n: (np.asarray(c.times), np.asarray(c.values)) for n, c in self.channels.items()}
        for rc in self.row_channels:
            levels.update(rc.levels())
        return bin_levels(levels, end_s, interval_s)


def _bin_edges(end_s: float, interval_s: float) -> np.ndarray:
    n = int(np.ceil(end_s / interval_s - 1e-9))
    edges = np.arange(n + 1, dtype=np.float64) * interval_s
    edges[-1] = end_s
    return edges


def bin_levels(
    levels: dict[str, tuple[np.ndarray, np.ndarray]], end_s: float, interval_s: float
) -> pd.DataFrame:
    """Exact time-weighted mean of each step function over each bin ``[k*dt, (k+1)*dt)``.

    Each level is (change times ascending, value from that time on). The last bin is cut at
    ``end_s``. Method: the running integral of a step function is piecewise linear between
    change points, so it is evaluated at the bin edges by linear interpolation and differenced.
    """
    edges = _bin_edges(end_s, interval_s)
    widths = np.diff(edges)
    out: dict[str, np.ndarray] = {
        "time_s": edges[:-1],
        "interval_s": widths,
    }
    for name, (t, v) in levels.items():
        keep = t <= end_s
        t, v = t[keep], v[keep]
        knots = np.append(t, end_s)
        cum = np.concatenate(([0.0], np.cumsum(v * np.diff(knots))))
        at_edges = np.interp(edges, knots, cum)
        out[name] = np.diff(at_edges) / widths
    return pd.DataFrame(out)
