"""Topology-aware placement (component ``scheduler.placement``): free domains kept per location.

On a fabric with tiers (scalable unit, pod, building, site; :mod:`sim.network`), the free domains
of one hardware type are kept per unit, with free counts per group at every tier. A
placement of ``k`` domains walks the tiers from the top and, by the named policy
(``network.placement``), picks groups from the counts, never from the domains:

* ``pack`` (NVIDIA's and Meta's practice, network-and-serving.md A2: topology-aware scheduling,
  fragmented placement costs >30%): the tightest group that holds the whole request at each tier
  (best fit: the fullest site, then building, pod and unit with room for it), so a job fills a
  unit, then a pod, then a building; a request that fits no group at a tier is split over that
  tier's fullest groups, fewest groups first: whole groups, fullest first, until the rest fits
  in one, and the rest in the tightest group that holds it (so the fuller groups stay whole for
  the next request: over the default year on a rail-optimized fabric, training starts touched
  6% fewer units than when the rest came from the next fullest group).
* ``spread``: the opposite, for comparison (a scheduler blind to the fabric): the request is dealt
  round-robin over every group with free domains at each tier, so a job touches as many pods and
  units as it can.
* ``random``: each domain from a group drawn with probability proportional to its free domains
  (a uniformly random free domain, tier by tier), from the engine's ``placement`` random stream.

A decision costs O(groups visited): the sites, the buildings of the chosen sites, the pods of the
chosen buildings and the units of the chosen pods, never the domains; taking and returning cost
O(units touched). A busy factory's free domains are scattered (over the default rail-optimized
year a placement of 31 domains touches 10 units, a return 11), so that per-unit work runs in
compiled kernels (:mod:`sim.engine.pool_kernels`, numba): about 1 us an operation against 5 in
Python (docs/network.md, "Speed"). ``tests/reference_pool.py`` keeps the pool as it was written
in Python, and the tests hold the kernels to it choice for choice. The pool keeps the interface
of :class:`~sim.engine.fleet.IndexStack` that the fleet uses (``size``, ``pop``, ``pop1``,
``push``, ``push1``, ``remove1``, ``peek``).
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

__all__ = ["POLICIES", "LocatedPool"]

POLICIES = ("pack", "spread", "random")

#: a parent with more children than this keeps them in buckets by free count (pack)
BUCKET_CHILDREN = 32


#: :mod:`sim.engine.pool_kernels`, imported by the first pool (numba's import is paid only by
#: runs on a fabric that places)
_K: Any = None


def _kernels() -> Any:
    global _K
    if _K is None:
        from sim.engine import pool_kernels

        _K = pool_kernels
    return _K


class LocatedPool:
    """The free domains of one hardware type, counts per group per tier, in compiled kernels.

    ``unit_of[d]`` is domain ``d``'s unit; ``parent[t][g]`` is group ``g``'s group at tier
    ``t + 1`` (tier 0 = units). Only the groups that hold domains of this hardware type are
    counted; groups are numbered fleet-wide. The state is one int64 array laid out for
    :mod:`sim.engine.pool_kernels` (which documents it); ``pack`` plans and every take and
    return run there, ``spread`` and ``random`` plan here from the counts (they are kept for
    comparison, and ``random`` draws from the engine's numpy stream).
    """

    __slots__ = (
        "S",
        "children",
        "free_np",
        "n_tiers",
        "policy",
        "rng",
        "root",
        "size",
        "toff",
    )

    def __init__(
        self,
        domains: np.ndarray,
        unit_of: array[int] | list[int],
        parent: tuple[list[int], ...],
        n_groups: tuple[int, ...],
        policy: str,
        rng: np.random.Generator,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown placement policy {policy!r}; known: {', '.join(POLICIES)}")
        K = _kernels()
        self.policy = policy
        self.rng = rng
        unit_np = np.asarray(unit_of, dtype=np.int64)
        domains = np.asarray(domains, dtype=np.int64)
        # the tiers above the innermost one at which all of this pool's domains share one
        # group (the one building and one site of a single-building factory) leave no choice
        # to make: they are left out, so every move updates only the tiers that can differ
        units = np.unique(unit_np[domains])
        groups = units
        distinct = [int(units.shape[0])]
        for par in parent:
            groups = np.unique(np.asarray(par, dtype=np.int64)[groups])
            distinct.append(int(groups.shape[0]))
        n_tiers = len(n_groups)
        while n_tiers > 1 and distinct[n_tiers - 1] <= 1:
            n_tiers -= 1
        n_groups = n_groups[:n_tiers]
        self.n_tiers = n_tiers
        toff = [0]
        for n in n_groups:
            toff.append(toff[-1] + n)
        self.toff = toff
        root = toff[-1]
        self.root = root
        n_flat = root + 1
        n_dom = len(unit_of)

        # per present unit: its lowest domain and count; per tier its chain of groups
        unit_doms = unit_np[domains]
        order = np.argsort(unit_doms, kind="stable")
        present, first, counts = np.unique(unit_doms[order], return_index=True, return_counts=True)
        lowest = np.minimum.reduceat(domains[order], first) if present.shape[0] else first
        # a unit's free domains are found by a walk up from its lowest: no domain of another
        # unit here may lie between them (the fabric numbers a unit's domains in one run)
        ascending = unit_np[np.sort(domains)]
        runs = int(np.count_nonzero(ascending[1:] != ascending[:-1])) + 1 if domains.size else 0
        if runs != present.shape[0]:
            raise ValueError(
                "a unit's domains must be one run of domain numbers with no domain of another"
                " unit of the same hardware between them"
            )
        free = np.zeros(n_flat, dtype=np.int64)
        up = np.full(n_flat, -1, dtype=np.int64)
        tier_of = np.zeros(n_flat, dtype=np.int64)
        for t in range(n_tiers):
            tier_of[toff[t] : toff[t + 1]] = t
            if t + 1 < n_tiers:
                up[toff[t] : toff[t + 1]] = toff[t + 1] + np.asarray(parent[t], dtype=np.int64)
            else:
                up[toff[t] : toff[t + 1]] = root
        tier_of[root] = n_tiers
        # children of each group (tiers 1..top), in order, only those with domains here, for
        # spread and random; the open lists in the order the reference pool fills them: units
        # in order, each adding its groups up the chain where not there yet
        self.children: list[dict[int, list[int]]] = [{} for _ in range(n_tiers)]
        open_of: dict[int, list[int]] = {}  # parent (flat) -> children (flat), in order
        seen = np.zeros(n_flat, dtype=bool)
        par_lists = [list(p) for p in parent]
        for u, n in zip(present.tolist(), counts.tolist(), strict=True):
            g = u
            for t in range(n_tiers):
                f = toff[t] + g
                free[f] += n
                if t + 1 < n_tiers:
                    upg = par_lists[t][g]
                    kids = self.children[t + 1].setdefault(upg, [])
                    if not kids or kids[-1] != g:
                        kids.append(g)
                if not seen[f]:
                    seen[f] = True
                    open_of.setdefault(int(up[f]), []).append(f)
                if t + 1 < n_tiers:
                    g = par_lists[t][g]
        self.children[0] = {}
        tops = sorted({f - toff[n_tiers - 1] for f in open_of.get(root, [])})
        self.children.append({0: tops})  # a virtual root above the top tier
        # a parent with many children (the pods of a building) also keeps them in buckets by
        # free count, so best fit costs O(a group's size), not O(its siblings)
        boff = np.full(n_flat, -1, dtype=np.int64)
        blen = np.zeros(n_flat, dtype=np.int64)
        n_rows = 0
        bucketed_members: list[tuple[int, list[int]]] = []
        for p, members in open_of.items():
            if len(members) > BUCKET_CHILDREN:
                rows = int(free[members].max()) + 1
                boff[p] = n_rows
                blen[p] = rows
                n_rows += rows
                bucketed_members.append((p, sorted(members)))

        sizes = {
            K.H_FREE: n_flat,
            K.H_UP: n_flat,
            K.H_TIER: n_flat,
            K.H_OHEAD: n_flat,
            K.H_OTAIL: n_flat,
            K.H_ONEXT: n_flat,
            K.H_OPREV: n_flat,
            K.H_BOFF: n_flat,
            K.H_BLEN: n_flat,
            K.H_BHEAD: max(n_rows, 1),
            K.H_BTAIL: max(n_rows, 1),
            K.H_BNEXT: n_flat,
            K.H_BPREV: n_flat,
            K.H_UBASE: n_flat,
            K.H_UNIT: n_dom,
            K.H_ISFREE: n_dom,
            K.H_POS: n_flat,
            K.H_TAKEN: n_flat,
            K.H_L1: n_flat,
            K.H_A1: n_flat,
            K.H_L2: n_flat,
            K.H_A2: n_flat,
            K.H_PLANU: n_flat,
            K.H_PLANN: n_flat,
            K.H_STACK: n_flat,
        }
        S = np.zeros(K.N_HEADER + sum(sizes.values()), dtype=np.int64)
        at = K.N_HEADER
        seg: dict[int, np.ndarray] = {}
        for h, n in sizes.items():
            S[h] = at
            seg[h] = S[at : at + n]
            at += n
        S[K.H_NT] = n_tiers
        S[K.H_ROOT] = root
        seg[K.H_FREE][:] = free
        seg[K.H_UP][:] = up
        seg[K.H_TIER][:] = tier_of
        for h in (K.H_OHEAD, K.H_OTAIL, K.H_ONEXT, K.H_OPREV, K.H_BNEXT, K.H_BPREV, K.H_POS):
            seg[h][:] = -1
        seg[K.H_BHEAD][:] = -1
        seg[K.H_BTAIL][:] = -1
        seg[K.H_BOFF][:] = boff
        seg[K.H_BLEN][:] = blen
        seg[K.H_UBASE][present] = lowest
        seg[K.H_UNIT][:] = unit_np
        seg[K.H_ISFREE][domains] = 1
        self.S = S
        for p, members in open_of.items():
            for g in members:
                K._open_add(S, p, g)
        for p, members in bucketed_members:
            for g in members:  # into bucket FREE[g], appended in number order
                K.bucket_add(S, p, g, int(free[g]))
        self.free_np = seg[K.H_FREE]
        self.size = int(domains.shape[0])

    # ------------------------------------------------------------------ the IndexStack verbs

    def pop(self, k: int) -> np.ndarray:
        """Take ``k`` free domains where the policy places them (in a unit, its lowest)."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        if k > self.size:
            raise ValueError(f"{k} domains asked, {self.size} free")
        out = np.empty(k, dtype=np.int64)
        if self.policy == "pack":
            _K.pop_pack(self.S, k, out)
        else:
            _K.take_plan(self.S, self._set_plan(self._place_plan(k)), out)
        self.size -= k
        return out

    def pop1(self) -> int:
        if self.size < 1:
            raise ValueError(f"1 domains asked, {self.size} free")
        if self.policy == "pack":
            d = _K.pop1_pack(self.S)
        else:
            ((u, _),) = self._place_plan(1)
            d = _K.take1(self.S, u)
        self.size -= 1
        return int(d)

    def push(self, ids: np.ndarray) -> None:
        k = ids.shape[0]
        if k == 0:
            return
        _K.push(self.S, ids)
        self.size += k

    def push1(self, d: int) -> None:
        _K.push1(self.S, d)
        self.size += 1

    def remove1(self, d: int) -> None:
        _K.remove1(self.S, d)
        self.size -= 1

    def peek(self, k: int) -> np.ndarray:
        """The domains :meth:`pop` would take now, left in place (the power controller's
        admission looks at their halls). ``random`` draws, so it peeks at the packed choice."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        if k > self.size:
            raise ValueError(f"{k} domains asked, {self.size} free")
        out = np.empty(k, dtype=np.int64)
        if self.policy == "spread":
            _K.peek_plan(self.S, self._set_plan(self._place_plan(k)), out)
        else:
            _K.peek_pack(self.S, k, out)
        return out

    # ------------------------------------------------------------------ views (tests, reports)

    def counts(self, tier: int) -> list[int]:
        """Free domains per group of ``tier`` (0 for groups without domains here)."""
        return self.free_np[self.toff[tier] : self.toff[tier + 1]].tolist()

    def open_lists(self, tier: int) -> dict[int, list[int]]:
        """Per parent (0 for the root above the top tier): its children of ``tier`` with free
        domains, in the order they last gained one."""
        K, S = _K, self.S
        ohead, onext = S[S[K.H_OHEAD] :], S[S[K.H_ONEXT] :]
        lo = self.toff[tier]
        parents = (
            range(self.toff[tier + 1], self.toff[tier + 2])
            if tier + 1 < self.n_tiers
            else [self.root]
        )
        out: dict[int, list[int]] = {}
        base = self.toff[tier + 1] if tier + 1 < self.n_tiers else self.root
        for p in parents:
            kids = []
            c = int(ohead[p])
            while c >= 0:
                kids.append(c - lo)
                c = int(onext[c])
            if kids:
                out[p - base] = kids
        return out

    def buckets(self, tier: int) -> dict[int, dict[int, int]]:
        """Per bucketed parent of ``tier``'s groups: each child and the free count of the
        bucket it is in."""
        K, S = _K, self.S
        boff, blen = S[S[K.H_BOFF] :], S[S[K.H_BLEN] :]
        bhead, bnext = S[S[K.H_BHEAD] :], S[S[K.H_BNEXT] :]
        lo = self.toff[tier]
        top = tier + 1 >= self.n_tiers
        parents = [self.root] if top else range(self.toff[tier + 1], self.toff[tier + 2])
        base = self.root if top else self.toff[tier + 1]
        out: dict[int, dict[int, int]] = {}
        for p in parents:
            if boff[p] < 0:
                continue
            at: dict[int, int] = {}
            for f in range(int(blen[p])):
                c = int(bhead[boff[p] + f])
                while c >= 0:
                    at[c - lo] = f
                    c = int(bnext[c])
            out[p - base] = at
        return out

    def free_domains(self) -> set[int]:
        K, S = _K, self.S
        isfree = S[S[K.H_ISFREE] : S[K.H_POS]]  # (the segment after it)
        return set(np.flatnonzero(isfree).tolist())

    # ------------------------------------------------------------------ spread and random

    def _set_plan(self, plan: list[tuple[int, int]]) -> int:
        us = np.array([u for u, _ in plan], dtype=np.int64)
        ns = np.array([n for _, n in plan], dtype=np.int64)
        return int(_K.set_plan(self.S, us, ns))

    def _free_of(self, tier: int, groups: list[int]) -> list[int]:
        return self.free_np[np.asarray(groups, dtype=np.int64) + self.toff[tier]].tolist()

    def _place_plan(self, k: int) -> list[tuple[int, int]]:
        """(unit, count) pairs for ``k`` domains by ``spread`` or ``random``."""
        out: list[tuple[int, int]] = []
        self._place(self.n_tiers, 0, k, out)
        return out

    def _place(self, tier: int, group: int, k: int, out: list[tuple[int, int]]) -> None:
        """Place ``k`` domains inside ``group`` of ``tier`` (tier ``n_tiers`` is the root)."""
        if tier == 0:
            out.append((group, k))
            return
        children = self.children[tier][group]
        room = self._free_of(tier - 1, children)
        if self.policy == "spread":
            shares = _deal(room, k)
        else:
            shares = _draw(np.array(room, dtype=np.int64), k, self.rng).tolist()
        for c, n in zip(children, shares, strict=True):
            if n:
                self._place(tier - 1, c, n, out)


def _deal(room: list[int], k: int) -> list[int]:
    """Deal ``k`` round-robin over groups with ``room`` free each: as even as the room allows."""
    n = len(room)
    out = [0] * n
    left = k
    open_ = [i for i in range(n) if room[i] > 0]
    while left > 0 and open_:
        each = max(1, left // len(open_))
        still = []
        for i in open_:
            if left == 0:
                break
            take = min(each, room[i] - out[i], left)
            out[i] += take
            left -= take
            if out[i] < room[i]:
                still.append(i)
        open_ = still
    return out


def _draw(room: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` draws without replacement of free domains, counted per group: a multivariate
    hypergeometric draw (each free domain equally likely)."""
    return rng.multivariate_hypergeometric(room, k)
