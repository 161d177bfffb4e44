"""The event kernel: a SimPy environment, callbacks at a later time, and an event count.

Most of the engine's events are "at time t, do this": a job's completion, the end of a restart,
a repair, a service's control tick. They are scheduled as SimPy events with one callback
(:func:`later`), not as generator processes: a process costs a generator resume and, to change
its plan, an interrupt (two more events), while a callback costs one heap entry. A plan that
changes (a job's rate changed, so its completion moved) is cancelled by bumping the job's token:
the stale event still fires and returns at once.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, Event

__all__ = ["Callback", "events_processed", "later", "new_environment"]

Callback = Callable[[Any], None]


def new_environment() -> simpy.Environment:
    return simpy.Environment()


def later(env: simpy.Environment, delay: float, callback: Callback) -> Event:
    """Call ``callback(event)`` ``delay`` seconds from now (after events already due then)."""
    ev = Event.__new__(Event)
    ev.env = env
    ev.callbacks = [callback]
    ev._value = None
    ev._ok = True
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), ev))
    return ev


def events_processed(env: simpy.Environment) -> int:
    """Events the environment has processed so far.

    Every scheduled event takes the next id of the environment's counter, so the events
    processed are the ids handed out less the events still queued. Reading the counter takes
    one id, which is subtracted (ids only need to increase).
    """
    issued = next(env._eid)
    seen = getattr(env, "_ids_read", 0)
    env._ids_read = seen + 1  # type: ignore[attr-defined]
    return issued - seen - len(env._queue)
