"""The fleet (component ``fleet``): every scale-up domain, where it is and who holds it.

A domain (an NVL72 rack, an 8-GPU HGX node) is the unit of allocation. Every domain is in exactly
one :class:`IndexStack` at a time: a hardware type's free pool, a job's or a service's holding,
a hall's hot-spare pool, or none while it is failed. Stacks share one fleet-wide ``slot`` array
that records each domain's position in its stack, so removing a given domain (it failed) is O(1)
and taking or returning k domains is O(k) in numpy: no operation scans the fleet.

**Hot spares** (``reliability.hot_spares``, recovery ``take_spare``): each hall keeps a target
number of idle, powered domains out of the free pool, where no new job and no service can take
them; only a training job that lost a domain takes one (:meth:`Fleet.take_spare`, its own hall
first). A repaired domain refills its hall's pool before it returns to the free pool, so the
pool is back to its target one repair time after it was drawn on.

The fleet is the only place where holdings change, so everything that follows from a holding is
kept here, in the same operation: the holder's domains per hall (which the power accounting
reads), the index of preemptible jobs that the scheduler picks victims from, GPU levels by
workload, and the domain-seconds each job held. Callers never have to remember a follow-up call.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sim.contract import TRACE
from sim.record import Recorder

if TYPE_CHECKING:
    from sim.engine.power import Power
    from sim.engine.workloads import Workload

__all__ = ["FAILED", "FREE", "HELD", "SPARE", "Fleet", "FreePool", "IndexStack"]

FREE, HELD, FAILED, SPARE = 0, 1, 2, 3


class IndexStack:
    """A set of domain indices with O(1) removal of a given index and O(k) bulk push/pop.

    Indices live in an ``array('q')`` with a numpy view on the same memory: bulk moves go
    through numpy, single-domain moves (a failure, a repair, a replacement) through the array,
    which is several times cheaper than a numpy scalar access.
    """

    __slots__ = ("items", "size", "slot", "slot_np", "view")

    def __init__(self, capacity: int, slot: np.ndarray | array[int]) -> None:
        self.items = array("q", bytes(8 * max(capacity, 1)))
        self.view = np.frombuffer(self.items, dtype=np.int64)
        self.size = 0
        self.slot = slot
        self.slot_np = slot if isinstance(slot, np.ndarray) else np.frombuffer(slot, np.int64)

    def _grow(self, need: int) -> None:
        if need > self.view.shape[0]:
            bigger = array("q", bytes(8 * max(need, 2 * self.view.shape[0])))
            view = np.frombuffer(bigger, dtype=np.int64)
            view[: self.size] = self.view[: self.size]
            self.items, self.view = bigger, view

    def push(self, ids: np.ndarray) -> None:
        k = ids.shape[0]
        self._grow(self.size + k)
        self.view[self.size : self.size + k] = ids
        self.slot_np[ids] = np.arange(self.size, self.size + k)
        self.size += k

    def push1(self, d: int) -> None:
        self._grow(self.size + 1)
        self.items[self.size] = d
        self.slot[d] = self.size
        self.size += 1

    def pop(self, k: int) -> np.ndarray:
        """Remove and return the k most recently pushed indices."""
        self.size -= k
        return self.view[self.size : self.size + k].copy()

    def pop1(self) -> int:
        self.size -= 1
        return self.items[self.size]

    def remove1(self, d: int) -> None:
        i = self.slot[d]
        last = self.items[self.size - 1]
        self.items[i] = last
        self.slot[last] = i
        self.size -= 1

    def all(self) -> np.ndarray:
        return self.view[: self.size].copy()

    def peek(self, k: int) -> np.ndarray:
        """The indices :meth:`pop` would return now, left in place."""
        return self.view[max(0, self.size - k) : self.size]


class FreePool(Protocol):
    """A hardware type's free domains: one :class:`IndexStack`, or kept per fabric location
    (:class:`sim.engine.placement.LocatedPool`)."""

    size: int

    def pop(self, k: int) -> np.ndarray: ...

    def pop1(self) -> int: ...

    def push(self, ids: np.ndarray) -> None: ...

    def push1(self, d: int) -> None: ...

    def remove1(self, d: int) -> None: ...

    def peek(self, k: int) -> np.ndarray: ...


class Fleet:
    """Domain state for the whole factory.

    ``state[d]`` is FREE, HELD (by a job or service) or FAILED; ``holder[d]`` is the index of the
    workload holding it in :attr:`holders`, -1 when none.
    """

    name = "fleet"

    def __init__(
        self,
        domain_hw: np.ndarray,
        domain_hall: np.ndarray,
        domain_gpus: tuple[int, ...],
        n_halls: int,
        rec: Recorder,
        power: Power,
        n_classes: int,
    ) -> None:
        n = int(domain_hw.shape[0])
        n_hw = len(domain_gpus)
        self.n = n
        self.n_halls = n_halls
        self.domain_hw = domain_hw.astype(np.int64)
        self.domain_hall = domain_hall.astype(np.int64)
        #: the same as lists: scalar reads on the failure path are several times cheaper
        self.hw_of: list[int] = self.domain_hw.tolist()
        self.hall_of: list[int] = self.domain_hall.tolist()
        self.gpus_of_hw = domain_gpus
        #: halls of each hardware type; one hall (the usual case) needs no per-hall split
        self.halls_of_hw = [
            sorted(set(self.domain_hall[self.domain_hw == h].tolist())) for h in range(n_hw)
        ]
        # Per-domain state in Python buffers with numpy views on the same memory: ``state``,
        # ``holder`` and ``slot_np`` for bulk moves and vector reads, ``state_of``,
        # ``holder_of`` and ``slot`` for single-domain reads and writes on the hot paths.
        self.state_of = bytearray(n)
        self.state = np.frombuffer(self.state_of, dtype=np.int8)
        self.holder_of = array("q", [-1]) * n
        self.holder = np.frombuffer(self.holder_of, dtype=np.int64)
        self.slot = array("q", bytes(8 * n))
        self.slot_np = np.frombuffer(self.slot, dtype=np.int64)
        self.free: list[FreePool] = [
            IndexStack(int((domain_hw == h).sum()), self.slot) for h in range(n_hw)
        ]
        self.failed_count = [0] * n_hw
        for h in range(n_hw):
            # lowest index on top: allocation walks the halls in order, which keeps a job's
            # domains contiguous in a fresh factory (placement proper comes with the network)
            self.free[h].push(np.flatnonzero(domain_hw == h)[::-1].astype(np.int64))
        self.holders: list[Workload] = []
        #: preemptible jobs holding domains, per (hardware, class), in the order they took them
        self.victims: list[list[dict[Workload, None]]] = [
            [{} for _ in range(n_classes)] for _ in range(n_hw)
        ]
        self.victim_domains = [[0] * n_classes for _ in range(n_hw)]
        self.power = power
        self.rec = rec
        self.gpus_held = {k: 0 for k in ("pretraining", "posttraining", "inference")}
        self.ch_held = {k: rec.channel(TRACE[f"gpus_{k}"].name) for k in self.gpus_held}
        self.gpus_failed = 0
        self.ch_failed = rec.channel(TRACE["gpus_failed"].name)
        #: hot spares: per hall its pool, its target size; per hardware type the spares held
        self.spare: list[IndexStack] = []
        self.spare_target = [0] * n_halls
        self.n_spare = [0] * n_hw
        self.spares_taken = 0

    def hold_spares(self, per_hall: list[int]) -> None:
        """Move ``per_hall[h]`` free domains of each hall into its hot-spare pool (the hall's
        last domains: the first ones stay contiguous for the first jobs)."""
        self.spare = [IndexStack(k, self.slot) for k in per_hall]
        self.spare_target = list(per_hall)
        for h, k in enumerate(per_hall):
            if not k:
                continue
            ids = np.flatnonzero(self.domain_hall == h)[-k:]
            for d in ids.tolist():
                self.free[self.hw_of[d]].remove1(d)
                self.state_of[d] = SPARE
                self.n_spare[self.hw_of[d]] += 1
            self.spare[h].push(ids.astype(np.int64))

    def take_spare(self, w: Workload, hall: int, now: float) -> int:
        """Move a hot spare into ``w``'s holding: one of ``hall`` if it has any, else of the
        first hall of ``w``'s hardware that has one (the caller checked there is one)."""
        if hall < 0 or not self.spare[hall].size or hall not in self.halls_of_hw[w.hw]:
            hall = next(h for h in self.halls_of_hw[w.hw] if self.spare[h].size)
        w.account_hold(now)
        d = self.spare[hall].pop1()
        self.n_spare[w.hw] -= 1
        self.spares_taken += 1
        return self._hold1(w, d, now)

    def register(self, w: Workload) -> int:
        """Give ``w`` its index in :attr:`holders`."""
        w.halls = self.halls_of_hw[w.hw]
        self.holders.append(w)
        return len(self.holders) - 1

    def n_free(self, hw: int) -> int:
        return self.free[hw].size

    # ------------------------------------------------------------------ holdings

    def _halls_add(self, w: Workload, ids: np.ndarray, sign: int) -> None:
        halls = self.halls_of_hw[w.hw]
        hn = w.hall_n
        if len(halls) == 1:
            hn[halls[0]] += sign * ids.shape[0]
        elif ids.shape[0] <= 16:
            hall_of = self.hall_of
            for d in ids.tolist():
                hn[hall_of[d]] += sign
        else:
            counts = np.bincount(self.domain_hall[ids], minlength=self.n_halls).tolist()
            for h in halls:
                hn[h] += sign * counts[h]

    def _gpus(self, w: Workload, k: int, now: float) -> None:
        v = self.gpus_held[w.kind] + k * self.gpus_of_hw[w.hw]
        self.gpus_held[w.kind] = v
        self.ch_held[w.kind].set(now, v)

    def take1(self, w: Workload, now: float) -> int:
        """Move one free domain into ``w``'s holding (a replacement): :meth:`take` for k = 1
        without numpy's per-call overhead."""
        w.account_hold(now)
        return self._hold1(w, self.free[w.hw].pop1(), now)

    def _hold1(self, w: Workload, d: int, now: float) -> int:
        """Put domain ``d``, just taken from a pool, into ``w``'s holding."""
        self.state_of[d] = HELD
        self.holder_of[d] = w.index
        w.held.push1(d)
        w.hall_n[self.hall_of[d]] += 1
        self.power.holding_changed(w)
        if w.victim:
            self.victims[w.hw][w.class_rank][w] = None
            self.victim_domains[w.hw][w.class_rank] += 1
        self._gpus(w, 1, now)
        if w.draw_w:
            self.power.refresh(w, now)
        return d

    def take(self, w: Workload, k: int, now: float) -> np.ndarray:
        """Move ``k`` free domains of ``w``'s hardware into its holding."""
        w.account_hold(now)
        ids = self.free[w.hw].pop(k)
        self.state[ids] = HELD
        self.holder[ids] = w.index
        w.held.push(ids)
        self._halls_add(w, ids, +1)
        self.power.holding_changed(w)
        if w.victim:
            self.victims[w.hw][w.class_rank][w] = None
            self.victim_domains[w.hw][w.class_rank] += k
        self._gpus(w, k, now)
        if w.draw_w:
            self.power.refresh(w, now)
        return ids

    def give_back(self, w: Workload, k: int, now: float) -> np.ndarray:
        """Return the ``k`` most recently taken domains of ``w`` (all of them: ``k = size``)."""
        w.account_hold(now)
        ids = w.held.pop(k)
        if k:
            self.state[ids] = FREE
            self.holder[ids] = -1
            self.free[w.hw].push(ids)
            self._halls_add(w, ids, -1)
            self.power.holding_changed(w)
            if w.victim:
                self._victim_less(w, k)
            self._gpus(w, -k, now)
            if w.draw_w:
                self.power.refresh(w, now)
        return ids

    def _victim_less(self, w: Workload, k: int) -> None:
        self.victim_domains[w.hw][w.class_rank] -= k
        if w.held.size == 0:
            self.victims[w.hw][w.class_rank].pop(w, None)

    # ------------------------------------------------------------------ failures

    def fail(self, d: int, now: float) -> Workload | None:
        """Take domain ``d`` out of service; returns the workload that held it (or None)."""
        hw = self.hw_of[d]
        h = self.holder_of[d]
        w = self.holders[h] if h >= 0 else None
        if w is None and self.state_of[d] == SPARE:
            self.spare[self.hall_of[d]].remove1(d)
            self.n_spare[hw] -= 1
        elif w is None:
            self.free[hw].remove1(d)
        else:
            w.account_hold(now)
            w.held.remove1(d)
            w.hall_n[self.hall_of[d]] -= 1
            self.power.holding_changed(w)
            if w.victim:
                self._victim_less(w, 1)
            self._gpus(w, -1, now)
        self.state_of[d] = FAILED
        self.holder_of[d] = -1
        self.failed_count[hw] += 1
        g = self.gpus_failed + self.gpus_of_hw[hw]
        self.gpus_failed = g
        self.ch_failed.set(now, g)
        self.power.domain_failed(self.hall_of[d], +1, now)
        if w is not None and w.draw_w:
            self.power.refresh(w, now)
        return w

    def repair(self, d: int, now: float) -> int:
        """``d`` is back in service: into its hall's hot-spare pool when that is short of its
        target, else into the free pool."""
        hw = self.hw_of[d]
        hall = self.hall_of[d]
        self.failed_count[hw] -= 1
        if self.spare and self.spare[hall].size < self.spare_target[hall]:
            self.state_of[d] = SPARE
            self.spare[hall].push1(d)
            self.n_spare[hw] += 1
        else:
            self.state_of[d] = FREE
            self.free[hw].push1(d)
        g = self.gpus_failed - self.gpus_of_hw[hw]
        self.gpus_failed = g
        self.ch_failed.set(now, g)
        self.power.domain_failed(self.hall_of[d], -1, now)
        return hw
