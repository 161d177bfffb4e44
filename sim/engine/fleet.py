"""Scale-up domains as arrays: who holds each domain, and O(k) allocation without scans.

A domain (an NVL72 rack, an 8-GPU HGX node) is the unit of allocation. Every domain is in exactly
one :class:`IndexStack` at a time: a hardware type's free pool, a job's or a service's holding,
or none while it is failed. Stacks share one fleet-wide ``slot`` array that records each domain's
position in its stack, so removing a given domain (it failed) is O(1) and taking or returning k
domains is O(k) in numpy: no operation scans the fleet.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FAILED", "FREE", "HELD", "Fleet", "IndexStack"]

FREE, HELD, FAILED = 0, 1, 2


class IndexStack:
    """A set of domain indices with O(1) removal of a given index and O(k) bulk push/pop."""

    __slots__ = ("items", "size", "slot")

    def __init__(self, capacity: int, slot: np.ndarray) -> None:
        self.items = np.empty(max(capacity, 1), dtype=np.int64)
        self.size = 0
        self.slot = slot

    def _grow(self, need: int) -> None:
        if need > self.items.shape[0]:
            bigger = np.empty(max(need, 2 * self.items.shape[0]), dtype=np.int64)
            bigger[: self.size] = self.items[: self.size]
            self.items = bigger

    def push(self, ids: np.ndarray) -> None:
        k = ids.shape[0]
        self._grow(self.size + k)
        self.items[self.size : self.size + k] = ids
        self.slot[ids] = np.arange(self.size, self.size + k)
        self.size += k

    def push1(self, d: int) -> None:
        self._grow(self.size + 1)
        self.items[self.size] = d
        self.slot[d] = self.size
        self.size += 1

    def pop(self, k: int) -> np.ndarray:
        """Remove and return the k most recently pushed indices."""
        self.size -= k
        return self.items[self.size : self.size + k].copy()

    def remove1(self, d: int) -> None:
        i = int(self.slot[d])
        last = int(self.items[self.size - 1])
        self.items[i] = last
        self.slot[last] = i
        self.size -= 1

    def all(self) -> np.ndarray:
        return self.items[: self.size].copy()


class Fleet:
    """Domain state for the whole factory.

    ``state[d]`` is FREE, HELD (by a job or service) or FAILED; ``holder[d]`` is the index of the
    job or service holding it (see :class:`~sim.engine.core.Engine`), -1 when none.
    """

    def __init__(self, domain_hw: np.ndarray, n_hw: int) -> None:
        n = int(domain_hw.shape[0])
        self.n = n
        self.domain_hw = domain_hw.astype(np.int64)
        #: the same as a list: scalar reads on the failure path are several times cheaper
        self.hw_of: list[int] = self.domain_hw.tolist()
        self.state = np.zeros(n, dtype=np.int8)
        self.holder = np.full(n, -1, dtype=np.int64)
        self.slot = np.zeros(n, dtype=np.int64)
        self.free = [IndexStack(int((domain_hw == h).sum()), self.slot) for h in range(n_hw)]
        self.failed_count = [0] * n_hw
        for h in range(n_hw):
            # lowest index on top: allocation walks the halls in order, which keeps a job's
            # domains contiguous in a fresh factory (placement proper comes with the network)
            self.free[h].push(np.flatnonzero(domain_hw == h)[::-1].astype(np.int64))

    def n_free(self, hw: int) -> int:
        return self.free[hw].size

    def take(self, hw: int, k: int, holder: int, into: IndexStack) -> np.ndarray:
        ids = self.free[hw].pop(k)
        self.state[ids] = HELD
        self.holder[ids] = holder
        into.push(ids)
        return ids

    def give_back(self, held: IndexStack) -> np.ndarray:
        """Return every domain of ``held`` to the free pools (all of one hardware type)."""
        ids = held.pop(held.size)
        if ids.shape[0]:
            self.state[ids] = FREE
            self.holder[ids] = -1
            self.free[int(self.domain_hw[ids[0]])].push(ids)
        return ids

    def give_back_some(self, held: IndexStack, k: int) -> np.ndarray:
        ids = held.pop(k)
        if k:
            self.state[ids] = FREE
            self.holder[ids] = -1
            self.free[int(self.domain_hw[ids[0]])].push(ids)
        return ids

    def fail(self, d: int, held: IndexStack | None) -> None:
        """Take domain ``d`` out of service; ``held`` is the stack it is in (None if free)."""
        hw = self.hw_of[d]
        if held is None:
            self.free[hw].remove1(d)
        else:
            held.remove1(d)
        self.state[d] = FAILED
        self.holder[d] = -1
        self.failed_count[hw] += 1

    def repair(self, d: int) -> int:
        hw = self.hw_of[d]
        self.state[d] = FREE
        self.failed_count[hw] -= 1
        self.free[hw].push1(d)
        return hw
