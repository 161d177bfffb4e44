"""The fluid queue of an inference service: demand the held capacity cannot serve at once waits.

Units: output tokens and output tokens/s; times in seconds.

A service's demand ``d`` and held capacity ``c`` are step functions. Work beyond the capacity
joins a first-come-first-served backlog ``Q`` that the capacity drains when demand falls below
it, so requests that could not be served in one interval are served in a later one. Clients do
not wait for ever: a request whose wait would pass the service's ``client_timeout`` ``tau`` is
given up. In a FIFO queue drained at ``c`` a request arriving behind a backlog ``Q`` waits
``Q / c``, so the backlog never holds more than ``c tau`` (what the capacity serves within the
timeout) and arrivals beyond that are dropped; when the capacity falls (a failure, a scale-down,
a throttle) the part of the backlog beyond the new ``c tau`` is dropped at once. With a constant
capacity this serves exactly the requests a FIFO queue with patient-for-``tau`` clients serves;
the drop is counted when the request arrives rather than ``tau`` later, and a client's retries
(the OpenAI Python SDK retries a timed-out request twice by default) are not modelled.
``tau = 0`` is the memoryless fluid: served = min(demand, capacity), the rest dropped.

On a stretch of constant ``d`` and ``c`` the backlog is linear in time:

* ``d > c``: it grows at ``d - c`` (served ``c``) until it reaches ``c tau``, then holds there
  and ``d - c`` is dropped;
* ``d <= c``: it drains at ``c - d`` (served ``c``) until it is empty, then served = ``d``.

So each stretch splits into at most two pieces (plus one where the backlog crosses an optional
``level``, used for the wait the TTFT target allows), each with constant served and dropped
rates: :func:`fluid_queue` gives the exact pieces over a run; :func:`advance` moves a backlog
over one stretch (the live engine: power follows the served rate, which stays at the capacity
while a backlog drains). Cost: O(1) per stretch on which a backlog exists; stretches without
one (demand within capacity and nothing waiting) are taken in bulk with numpy.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["QueuePieces", "advance", "fluid_queue", "served_rate"]


def advance(q: float, d: float, c: float, dt: float, timeout_s: float) -> float:
    """The backlog after ``dt`` seconds at demand ``d`` and capacity ``c`` from ``q`` (tokens;
    ``q`` already within ``c tau``)."""
    if d > c:
        return min(q + (d - c) * dt, c * timeout_s)
    return max(q - (c - d) * dt, 0.0)


def served_rate(q: float, d: float, c: float) -> float:
    """Tokens/s served with a backlog ``q`` at demand ``d`` and capacity ``c``."""
    return c if q > 0.0 or d > c else d


@dataclass(frozen=True)
class QueuePieces:
    """The run cut into pieces of constant rates (start times ascending, the first at 0).

    Within piece ``k`` the backlog is ``q0[k] + slope[k] (t - t[k])``; ``jump_t`` /
    ``jump_tokens`` are the backlog dropped at once when the capacity fell below what it
    needed to serve it within the timeout."""

    t: np.ndarray
    demand: np.ndarray
    capacity: np.ndarray
    served: np.ndarray
    dropped: np.ndarray
    q0: np.ndarray
    slope: np.ndarray
    jump_t: np.ndarray
    jump_tokens: np.ndarray
    end_s: float

    def queue_at(self, times: np.ndarray) -> np.ndarray:
        """The backlog (tokens) at ``times`` (right-continuous: after any drop at that time)."""
        k = np.searchsorted(self.t, times, side="right") - 1
        k = np.clip(k, 0, self.t.shape[0] - 1)
        return np.maximum(self.q0[k] + self.slope[k] * (times - self.t[k]), 0.0)


def fluid_queue(
    t: np.ndarray,
    demand: np.ndarray,
    capacity: np.ndarray,
    end_s: float,
    timeout_s: float,
    level_s: float | None = None,
) -> QueuePieces:
    """Exact backlog of a service over ``[0, end_s]`` (module docstring).

    ``t`` are the change times of demand or capacity (ascending, ``t[0] = 0``), ``demand`` and
    ``capacity`` their values from each. With ``level_s``, pieces are also cut where the
    backlog crosses ``level_s`` seconds of the capacity (``Q = c level_s``), so a quantity that
    depends on whether the wait is above that level is constant on each piece."""
    t = np.asarray(t, dtype=np.float64)
    d = np.asarray(demand, dtype=np.float64)
    c = np.asarray(capacity, dtype=np.float64)
    n = t.shape[0]
    ends = np.append(t[1:], end_s)
    over = np.flatnonzero(d > c).tolist()
    # pieces: runs without a backlog as column arrays, the others as rows of
    # (start, demand, capacity, served, dropped, backlog at start, its slope)
    chunks: list[tuple[np.ndarray, ...]] = []
    rows: list[tuple[float, float, float, float, float, float, float]] = []
    jt: list[float] = []
    jq: list[float] = []
    lvl = -1.0 if level_s is None else level_s

    def flush() -> None:
        if rows:
            cols = np.array(rows, dtype=np.float64).T
            chunks.append(tuple(cols))
            rows.clear()

    def emit(a: float, b: float, di: float, ci: float, s: float, r: float, q0: float) -> None:
        """A piece [a, b) with served s and dropped r from backlog q0, cut at the level."""
        if b <= a:
            return
        slope = di - s - r
        if lvl >= 0.0 and slope != 0.0:
            w = ci * lvl
            q1 = q0 + slope * (b - a)
            if (q0 - w) * (q1 - w) < 0.0:
                m = a + (w - q0) / slope
                if a < m < b:
                    rows.append((a, di, ci, s, r, q0, slope))
                    a, q0 = m, w
        rows.append((a, di, ci, s, r, q0, slope))

    q = 0.0
    i = 0
    while i < n:
        if q <= 0.0:
            k = bisect.bisect_left(over, i)
            j = over[k] if k < len(over) else n
            if j > i:  # nothing waits and demand within capacity: served = demand
                flush()
                z = np.zeros(j - i)
                chunks.append((t[i:j], d[i:j], c[i:j], d[i:j], z, z, z))
                i = j
                continue
        a, b, di, ci = float(t[i]), float(ends[i]), float(d[i]), float(c[i])
        bound = ci * timeout_s
        if q > bound:  # the capacity fell: what it cannot serve within the timeout is dropped
            jt.append(a)
            jq.append(q - bound)
            q = bound
        if di > ci:
            fill = (bound - q) / (di - ci)
            if a + fill < b:
                emit(a, a + fill, di, ci, ci, 0.0, q)
                emit(a + fill, b, di, ci, ci, di - ci, bound)
                q = bound
            else:
                emit(a, b, di, ci, ci, 0.0, q)
                q = min(q + (di - ci) * (b - a), bound)
        elif q > 0.0:
            empty = q / (ci - di) if ci > di else math.inf
            if a + empty < b:
                emit(a, a + empty, di, ci, ci, 0.0, q)
                emit(a + empty, b, di, ci, di, 0.0, 0.0)
                q = 0.0
            else:
                emit(a, b, di, ci, ci, 0.0, q)
                q = max(q - (ci - di) * (b - a), 0.0)
        else:
            emit(a, b, di, ci, di, 0.0, 0.0)
        i += 1
    flush()
    if not chunks:  # an empty run: one piece at 0
        chunks.append(tuple(np.zeros(1) for _ in range(7)))
    cols = [np.concatenate([ch[m] for ch in chunks]) for m in range(7)]
    return QueuePieces(
        t=cols[0],
        demand=cols[1],
        capacity=cols[2],
        served=cols[3],
        dropped=cols[4],
        q0=cols[5],
        slope=cols[6],
        jump_t=np.array(jt, dtype=np.float64),
        jump_tokens=np.array(jq, dtype=np.float64),
        end_s=float(end_s),
    )
