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

from array import array
from collections.abc import Iterable
from enum import StrEnum

import numpy as np
import pandas as pd

__all__ = [
    "EVENT_SOURCE",
    "Channel",
    "EventKind",
    "Recorder",
    "RowChannel",
    "bin_edges",
    "bin_levels",
    "merge_times",
]


def merge_times(*times: np.ndarray) -> np.ndarray:
    """The sorted union of sorted change-time arrays: a stable sort of their concatenation is a
    merge of sorted runs (linear, where ``np.union1d`` sorts from scratch), then duplicates go."""
    t = np.concatenate(times)
    t.sort(kind="stable")
    if t.shape[0] > 1:
        keep = np.empty(t.shape[0], dtype=bool)
        keep[0] = True
        np.not_equal(t[1:], t[:-1], out=keep[1:])
        t = t[keep]
    return t


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
    PAUSED = "paused"
    RESUMED = "resumed"
    NETWORK_FAILURE = "network_failure"
    NETWORK_REPAIR = "network_repair"
    TRAY_FAILURE = "tray_failure"
    TRAY_REPAIR = "tray_repair"


#: The engine component that emits each kind of event (its dotted name; a row's ``subject``
#: names the job within ``workloads``).
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
    EventKind.PAUSED: "power.control",
    EventKind.RESUMED: "power.control",
    EventKind.NETWORK_FAILURE: "fabric",
    EventKind.NETWORK_REPAIR: "fabric",
    EventKind.TRAY_FAILURE: "reliability",
    EventKind.TRAY_REPAIR: "reliability",
}


class Channel:
    """One level, stored as its change points. ``set`` is on the hot path: keep it tiny.

    Change points are kept in ``array('d')`` buffers, not lists of float objects: a year's run
    sets levels about a million times, and compact buffers take a third of the memory, cost
    the garbage collector nothing and free at once.
    """

    __slots__ = ("last_t", "last_v", "name", "times", "values")

    def __init__(self, name: str, times: Iterable[float], values: Iterable[float]) -> None:
        self.name = name
        self.times = array("d", times)
        self.values = array("d", values)
        self.last_t = self.times[-1] if self.times else float("nan")
        self.last_v = self.values[-1] if self.values else float("nan")

    def set(self, t: float, value: float) -> None:
        if value != self.last_v:
            self.last_v = value
            if t == self.last_t:
                self.values[-1] = value
            else:
                self.last_t = t
                self.times.append(t)
                self.values.append(value)


class RowChannel:
    """Several levels that change together, stored as one row per change (one write instead of
    one per level: the power of every hall changes at the same instants). Rows are flattened
    into one ``array('d')``."""

    __slots__ = ("k", "last_t", "names", "times", "values")

    def __init__(self, names: tuple[str, ...], initial: tuple[float, ...]) -> None:
        self.names = names
        self.k = len(names)
        self.times = array("d", [0.0])
        self.values = array("d", initial)
        self.last_t = 0.0

    def set(self, t: float, row: tuple[float, ...]) -> None:
        if t == self.last_t:
            self.values[-self.k :] = array("d", row)
        else:
            self.last_t = t
            self.times.append(t)
            self.values.extend(row)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(change times, values with one column per name)."""
        t = np.frombuffer(self.times, dtype=np.float64)
        return t, np.frombuffer(self.values, dtype=np.float64).reshape(t.shape[0], self.k)

    def levels(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        t, values = self.matrix()
        return {n: (t, values[:, i]) for i, n in enumerate(self.names)}


class Recorder:
    """Collects level channels and event rows during a run; produces tables afterwards."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.row_channels: list[RowChannel] = []
        self._events: list[tuple[float, str, str, str, int, float, str]] = []

    def discard(self, rc: RowChannel | Channel) -> None:
        """Drop a channel that was only an intermediate (its levels were combined)."""
        if isinstance(rc, RowChannel):
            self.row_channels.remove(rc)
        else:
            del self.channels[rc.name]

    def row_channel(self, names: tuple[str, ...], initial: tuple[float, ...]) -> RowChannel:
        for name in names:
            if name in self.channels or any(name in rc.names for rc in self.row_channels):
                raise ValueError(f"channel {name!r} registered twice")
        rc = RowChannel(names, tuple(float(v) for v in initial))
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
        ch = Channel(name, (), ())
        ch.times.frombytes(np.ascontiguousarray(times, dtype=np.float64).tobytes())
        ch.values.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        ch.last_t, ch.last_v = ch.times[-1], ch.values[-1]
        self.channels[name] = ch

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
        df["source"] = df["event"].map(EVENT_SOURCE).fillna("")
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
        levels = {
            n: (np.frombuffer(c.times, dtype=np.float64), np.frombuffer(c.values, dtype=np.float64))
            for n, c in self.channels.items()
        }
        for rc in self.row_channels:
            levels.update(rc.levels())
        return bin_levels(levels, end_s, interval_s)


def bin_edges(end_s: float, interval_s: float) -> np.ndarray:
    """The edges of the bins :func:`bin_levels` uses (the last bin cut at ``end_s``)."""
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
    A bin that holds an infinite value for any time is infinite, one that holds NaN is NaN.
    """
    edges = bin_edges(end_s, interval_s)
    widths = np.diff(edges)
    out: dict[str, np.ndarray] = {
        "time_s": edges[:-1],
        "interval_s": widths,
    }
    for name, (t, v) in levels.items():
        keep = t <= end_s
        t, v = t[keep], v[keep]
        knots = np.append(t, end_s)
        span = np.diff(knots)
        finite = np.isfinite(v)
        if finite.all():
            cum = np.concatenate(([0.0], np.cumsum(v * span)))
            out[name] = np.diff(np.interp(edges, knots, cum)) / widths
            continue
        # a value without bound (an infinite latency) or undefined (NaN) holds for its whole
        # bin: the running integral of the finite part, and the time spent on each kind
        cum = np.concatenate(([0.0], np.cumsum(np.where(finite, v, 0.0) * span)))
        mean = np.diff(np.interp(edges, knots, cum)) / widths

        def share(
            mask: np.ndarray, knots: np.ndarray = knots, span: np.ndarray = span
        ) -> np.ndarray:
            c = np.concatenate(([0.0], np.cumsum(mask * span)))
            return np.diff(np.interp(edges, knots, c))

        out[name] = np.where(
            share(np.isnan(v)) > 0, np.nan, np.where(share(np.isinf(v)) > 0, np.inf, mean)
        )
    return pd.DataFrame(out)
