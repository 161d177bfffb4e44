"""The located free pool as it was written in Python before its kernels were compiled
(:mod:`sim.engine.pool_kernels`): the readable reference that ``tests/test_placement_pool.py``
checks the compiled pool against, choice for choice and domain for domain.

Every order the outputs depend on is a dict's insertion order here: a parent's open set (its
children with free domains, in the order they last gained one), a bucket's members (in the
order they arrived), the sums carried up a tier (in the order their groups first appear). The
compiled pool keeps the same orders in linked lists.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from sim.engine.placement import BUCKET_CHILDREN, POLICIES, _deal, _draw

#: one tier of a unit's chain: that tier's free counts, the group, the tier's open sets, the
#: parent group, and the parent's buckets (None if its children are not bucketed)
_Link = tuple[list[int], int, dict[int, dict[int, None]], int, Any]

#: (unit, mask) shapes whose domain bytes a pool keeps (:meth:`ReferencePool._picked`): over the
#: default rail-optimized year, 37,207 distinct (a few MB); a bound on memory for larger sites
PICKED_SHAPES = 1 << 16

#: above any group's free count (the start of a search for the fewest)
_NONE_FREE = 1 << 62


class ReferencePool:
    """The free domains of one hardware type, one stack per unit, counts per group per tier.

    ``unit_of[d]`` is domain ``d``'s unit; ``parent[t][g]`` is group ``g``'s group at tier
    ``t + 1`` (tier 0 = units). Only the units that hold domains of this hardware type have a
    stack; groups are numbered fleet-wide.
    """

    __slots__ = (
        "base",
        "bit_of",
        "bucketed",
        "buckets",
        "chain",
        "children",
        "end",
        "free",
        "links",
        "n_tiers",
        "open",
        "parent",
        "picked",
        "policy",
        "rng",
        "size",
        "stacks",
        "unit_np",
        "unit_of",
        "up",
        "up_open",
        "up_rows",
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
        self.policy = policy
        self.rng = rng
        #: as a list: its items are shared ints, cheaper to read than an array's
        self.unit_of = [*unit_of, -1]
        #: an end marker: a domain index past the last, of no unit (unit -1, no bit)
        self.end = len(unit_of)
        self.unit_np = np.asarray(unit_of, dtype=np.int64)
        self.parent = parent
        # the tiers above the innermost one at which all of this pool's domains share one
        # group (the one building and one site of a single-building factory) leave no choice
        # to make: they are left out, so every move updates only the tiers that can differ
        units = np.unique(np.asarray(unit_of, dtype=np.int64)[domains])
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
        self.free: list[list[int]] = [[0] * n for n in n_groups]
        #: each unit's free domains as bits above its lowest domain (a unit is a few to a few
        #: dozen domains: a Python int's bit operations beat a numpy stack at that size)
        self.stacks: dict[int, int] = {}
        self.base: dict[int, int] = {}
        # children of each group (tiers 1..top), in index order, only those with domains here
        self.children: list[dict[int, list[int]]] = [{} for _ in n_groups]
        units = np.asarray(unit_of, dtype=np.int64)[domains]
        for u in np.unique(units).tolist():
            mine = domains[units == u]
            base = int(mine.min())
            self.base[u] = base
            bits = 0
            for d in mine.tolist():
                bits |= 1 << (d - base)
            self.stacks[u] = bits
            g = u
            for t in range(self.n_tiers):
                self.free[t][g] += mine.shape[0]
                if t + 1 < self.n_tiers:
                    up = parent[t][g]
                    kids = self.children[t + 1].setdefault(up, [])
                    if not kids or kids[-1] != g:
                        kids.append(g)
                    g = up
        self.children[0] = {}
        tops = sorted({self._top(u) for u in self.stacks})
        self.children.append({0: tops})  # a virtual root above the top tier
        self.size = int(domains.shape[0])
        #: the int64 bytes of the domains a pop takes from a unit, by ``base << 8 | mask`` (a
        #: unit's lowest domain, the taken domains' bits; units of up to 8 domains)
        self.picked: dict[int, bytes] = {}
        #: each domain's bit in its unit's stack (0 for domains of other hardware)
        bit_of = [0] * (len(unit_of) + 1)  # (the end marker's is 0)
        for d in domains.tolist():
            bit_of[d] = 1 << (d - self.base[unit_of[d]])
        self.bit_of = bit_of
        # each unit's chain of (tier, group, parent group) up to the root, and per tier and
        # parent the children that have free domains (pack scans only those: in a busy factory
        # most groups are full)
        self.chain: dict[int, tuple[tuple[int, int, int], ...]] = {}
        for u in self.stacks:
            links = []
            g = u
            for t in range(self.n_tiers):
                up = parent[t][g] if t + 1 < self.n_tiers else 0
                links.append((t, g, up))
                g = up
            self.chain[u] = tuple(links)
        self.open: list[dict[int, dict[int, None]]] = [{} for _ in range(self.n_tiers)]
        for chain in self.chain.values():
            for t, g, up in chain:
                opened = self.open[t].setdefault(up, {})  # every parent has its set, kept
                if self.free[t][g] > 0:
                    opened[g] = None
        # a parent with many children (the pods of a building) also keeps them in buckets by
        # free count, so best fit costs O(a group's size), not O(its siblings)
        self.buckets: list[dict[int, list[dict[int, None]]]] = [{} for _ in range(self.n_tiers)]
        for t in range(self.n_tiers):
            for up, members in self.open[t].items():
                if len(members) > BUCKET_CHILDREN:
                    size = max(self.free[t][c] for c in members)
                    rows: list[dict[int, None]] = [{} for _ in range(size + 1)]
                    for c in sorted(members):
                        rows[self.free[t][c]][c] = None
                    self.buckets[t][up] = rows
        # per tier and group: its parent (0 above the top tier), the parent's open set and the
        # parent's buckets (None if not bucketed), resolved once for the count updates
        self.up: list[list[int]] = []
        self.up_open: list[list[dict[int, None]]] = []
        self.up_rows: list[list[Any]] = []
        for t, n in enumerate(n_groups):
            ups = list(parent[t]) if t + 1 < self.n_tiers else [0] * n
            none: dict[int, None] = {}  # groups without domains here are never counted
            self.up.append(ups)
            self.up_open.append([self.open[t].get(ups[g], none) for g in range(n)])
            self.up_rows.append([self.buckets[t].get(ups[g]) for g in range(n)])
        #: per tier: whether any parent keeps its children there in buckets (the count updates
        #: skip the bucket moves of a tier that has none)
        self.bucketed = [bool(b) for b in self.buckets]
        # the chain again, with each link's free counts, open set and buckets resolved once
        self.links: dict[int, tuple[_Link, ...]] = {
            u: tuple(
                (self.free[t], g, self.open[t], up, self.buckets[t].get(up)) for t, g, up in ch
            )
            for u, ch in self.chain.items()
        }

    def _top(self, u: int) -> int:
        g = u
        for t in range(self.n_tiers - 1):
            g = self.parent[t][g]
        return g

    # ------------------------------------------------------------------ counts

    def _count_many(self, parts: Any, tier: int = 0) -> None:
        """:meth:`_count` for several groups of ``tier`` at once (``(group, k)`` pairs, units
        by default), all of one sign (a pop's plan, a push's units): each group above them is
        updated once, with their sum. The pool's size is left to the caller."""
        level: Any = parts
        top = self.n_tiers - 1
        for t in range(tier, self.n_tiers):
            row, opens = self.free[t], self.up_open[t]
            rows_of = self.up_rows[t] if self.bucketed[t] else None
            if t == top:
                # the top tier: no sums to carry up
                for g, k in level:
                    before = row[g]
                    row[g] = after = before + k
                    if before == 0:
                        opens[g][g] = None
                    elif after == 0:
                        del opens[g][g]
                    if rows_of is not None:
                        rows = rows_of[g]
                        if rows is not None:
                            del rows[before][g]
                            rows[after][g] = None
                return
            ups = self.up[t]
            nxt: dict[int, int] = {}
            for g, k in level:
                before = row[g]
                row[g] = after = before + k
                if before == 0:
                    opens[g][g] = None
                elif after == 0:
                    del opens[g][g]
                if rows_of is not None:
                    rows = rows_of[g]
                    if rows is not None:
                        del rows[before][g]
                        rows[after][g] = None
                up = ups[g]
                nxt[up] = nxt.get(up, 0) + k
            level = nxt.items()

    def _count(self, u: int, k: int) -> None:
        """Add ``k`` (negative: remove) free domains to unit ``u`` and its ancestors, keeping
        the sets of groups with free domains."""
        for row, g, opened, up, rows in self.links[u]:
            before = row[g]
            row[g] = after = before + k
            if before == 0:
                opened[up][g] = None
            elif after == 0:
                del opened[up][g]
            if rows is not None:
                del rows[before][g]
                rows[after][g] = None
        self.size += k

    # ------------------------------------------------------------------ the IndexStack verbs

    def push(self, ids: np.ndarray) -> None:
        k = ids.shape[0]
        if k == 0:
            return
        if self.bucketed[0]:
            self._push_merged(ids)
            return
        # the returned domains as runs of one unit, each as one mask (a run's count is its
        # mask's bit count: a returned domain is never free already); a holding gives back
        # what it took last, so a unit's domains come in one run, or a few. Each run is
        # counted in its unit as it ends, the tiers above once per group (as in pop).
        unit_of, bit_of, stacks = self.unit_of, self.bit_of, self.stacks
        row, opens = self.free[0], self.up_open[0]
        ups = self.up[0] if self.n_tiers > 1 else None
        nxt: dict[int, int] = {}
        last, add = -1, 0  # the units of one group above come in runs too
        prev, m = -1, 0
        # the end marker (a domain of no unit) ends the last run inside the loop
        for d in [*ids.tolist(), self.end]:
            u = unit_of[d]
            if u == prev:
                m |= bit_of[d]
                continue
            if m:
                stacks[prev] |= m
                n = m.bit_count()
                before = row[prev]
                row[prev] = before + n
                if before == 0:
                    opens[prev][prev] = None
                if ups is not None:
                    up = ups[prev]
                    if up == last:
                        add += n
                    else:
                        if add:
                            nxt[last] = nxt.get(last, 0) + add
                        last, add = up, n
            prev, m = u, bit_of[d]
        if ups is not None:
            nxt[last] = nxt.get(last, 0) + add
            self._count_many(nxt.items(), tier=1)
        self.size += k

    def _push_merged(self, ids: np.ndarray) -> None:
        """:meth:`push` where the units of a group are kept in buckets by free count: one move
        per unit between its buckets (a bucket's order is its members' order of arrival), so
        the runs are merged per unit first, in their first run's order."""
        k = ids.shape[0]
        unit_of, bit_of = self.unit_of, self.bit_of
        runs: list[tuple[int, int]] = []
        prev, m = -1, 0
        for d in ids.tolist():
            u = unit_of[d]
            if u == prev:
                m |= bit_of[d]
            else:
                if m:
                    runs.append((prev, m))
                prev, m = u, bit_of[d]
        runs.append((prev, m))
        stacks = self.stacks
        if len(runs) == 1:
            stacks[prev] |= m
            self._count(prev, k)
            return
        got: dict[int, int] = {}
        for u, m in runs:
            got[u] = got.get(u, 0) | m
        runs = list(got.items())
        # each unit's stack and count here, the tiers above once per group (as in pop)
        row, opens, rows_of = self.free[0], self.up_open[0], self.up_rows[0]
        ups = self.up[0] if self.n_tiers > 1 else None
        nxt: dict[int, int] = {}
        last, add = -1, 0  # the units of one group above come in runs too
        for u, m in runs:
            stacks[u] |= m
            n = m.bit_count()
            before = row[u]
            row[u] = after = before + n
            if before == 0:
                opens[u][u] = None
            if rows_of is not None:
                rows = rows_of[u]
                if rows is not None:
                    del rows[before][u]
                    rows[after][u] = None
            if ups is not None:
                up = ups[u]
                if up == last:
                    add += n
                else:
                    if add:
                        nxt[last] = nxt.get(last, 0) + add
                    last, add = up, n
        if ups is not None:
            nxt[last] = nxt.get(last, 0) + add
            self._count_many(nxt.items(), tier=1)
        self.size += k

    def push1(self, d: int) -> None:
        u = self.unit_of[d]
        self.stacks[u] |= self.bit_of[d]
        self._count(u, 1)

    def remove1(self, d: int) -> None:
        u = self.unit_of[d]
        self.stacks[u] &= ~self.bit_of[d]
        self._count(u, -1)

    def _take(self, u: int, n: int, out: list[int]) -> None:
        """The ``n`` lowest free domains of unit ``u`` into ``out``, taken (a byte of the
        unit's bits at a time, from tables)."""
        bits = self.stacks[u]
        base = self.base[u]
        if bits < 256:  # a unit of up to 8 domains (or free ones only among its lowest 8)
            out.extend(map(base.__add__, _BYTE_TAKE[bits][n]))
            self.stacks[u] = bits ^ _BYTE_LOW[bits][n]
            return
        rest = bits
        while n > 0:
            byte = rest & 255
            if byte:
                have = _BYTE_COUNT[byte]
                m = n if n < have else have
                out.extend(map(base.__add__, _BYTE_TAKE[byte][m]))
                n -= m
                if n == 0:
                    bits ^= _BYTE_LOW[byte][m] << (base - self.base[u])
                    break
                bits ^= byte << (base - self.base[u])
            rest >>= 8
            base += 8
        self.stacks[u] = bits

    def pop1(self) -> int:
        if self.policy != "pack":
            ((u, _),) = self._plan(1)
        else:
            # pack's plan for one domain (:meth:`_pack` with k = 1, where every group with a
            # free domain holds it: the descent never splits): the tightest group at each tier
            if self.size < 1:
                raise ValueError(f"1 domains asked, {self.size} free")
            free, opens, buckets = self.free, self.open, self.buckets
            tier, u = self.n_tiers, 0
            while tier > 0:
                tier -= 1
                rows = buckets[tier].get(u)
                if rows is not None:
                    for at in rows[1:]:
                        if at:
                            u = next(iter(at))
                            break
                else:
                    below = free[tier]
                    best, best_free = -1, _NONE_FREE
                    for c in opens[tier][u]:
                        f = below[c]
                        if f < best_free or (f == best_free and c < best):
                            best, best_free = c, f
                    u = best
        bits = self.stacks[u]
        low = bits & -bits  # its lowest free domain
        self.stacks[u] = bits ^ low
        self._count(u, -1)
        return self.base[u] + low.bit_length() - 1

    def pop(self, k: int) -> np.ndarray:
        """Take ``k`` free domains where the policy places them (in a unit, its lowest)."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        plan = self._plan(k)
        # the domains taken from a unit as the bytes of their int64 ids, remembered per unit
        # and mask (a unit's free domains take few shapes), joined into the array at the end:
        # no Python int per domain
        parts: list[bytes] = []
        stacks, base, picked = self.stacks, self.base, self.picked
        if len(plan) == 1 and plan[0][0] >= 0:
            u, n = plan[0]
            bits = stacks[u]
            if bits < 256:
                low = _BYTE_LOW[bits][n]
                key = base[u] << 8 | low
                got = picked.get(key)
                if got is None:
                    got = self._picked(key, base[u], low)
                parts.append(got)
                stacks[u] = bits ^ low
            else:
                parts.append(self._take_bytes(u, n))
            self._count(u, -n)
            return np.frombuffer(bytearray().join(parts), dtype=np.int64)
        # take each unit's domains and count its tier at once; the tiers above once per group
        row, opens = self.free[0], self.up_open[0]
        rows_of = self.up_rows[0] if self.bucketed[0] else None
        ups = self.up[0] if self.n_tiers > 1 else None
        nxt: dict[int, int] = {}
        for u, n in plan:
            if u < 0:
                # every free domain of group -1 - u of tier 1 (its units in their open order):
                # its units are emptied in one sweep, its open set at once, and it is counted
                # once above (a pack split takes whole groups, fullest first: 80% of the units
                # a pop empties over the default rail-optimized year)
                c = -1 - u
                kids = self.open[0][c]
                for v in kids:
                    bits = stacks[v]
                    before = row[v]
                    if bits < 256:
                        key = base[v] << 8 | bits
                        got = picked.get(key)
                        if got is None:
                            got = self._picked(key, base[v], bits)
                        parts.append(got)
                        stacks[v] = 0
                    else:
                        parts.append(self._take_bytes(v, before))
                    row[v] = 0
                    if rows_of is not None:
                        rows = rows_of[v]
                        if rows is not None:
                            del rows[before][v]
                            rows[0][v] = None
                kids.clear()
                nxt[c] = nxt.get(c, 0) - n
                continue
            bits = stacks[u]
            before = row[u]
            if bits < 256:
                low = bits if n == before else _BYTE_LOW[bits][n]
                key = base[u] << 8 | low
                got = picked.get(key)
                if got is None:
                    got = self._picked(key, base[u], low)
                parts.append(got)
                stacks[u] = bits ^ low
            else:
                parts.append(self._take_bytes(u, n))
            row[u] = after = before - n
            if after == 0:
                del opens[u][u]
            if rows_of is not None:
                rows = rows_of[u]
                if rows is not None:
                    del rows[before][u]
                    rows[after][u] = None
            if ups is not None:
                up = ups[u]
                nxt[up] = nxt.get(up, 0) - n
        if ups is not None:
            self._count_many(nxt.items(), tier=1)
        self.size -= k
        return np.frombuffer(bytearray().join(parts), dtype=np.int64)

    def _picked(self, key: int, base: int, mask: int) -> bytes:
        """The bytes of :attr:`picked` for ``key`` (made and kept: at most
        :data:`PICKED_SHAPES`, then forgotten all at once)."""
        if len(self.picked) >= PICKED_SHAPES:
            self.picked.clear()
        got = self.picked[key] = array("q", [base + i for i in _BYTE_BITS[mask]]).tobytes()
        return got

    def _take_bytes(self, u: int, n: int) -> bytes:
        """:meth:`_take` (a unit with free domains past its lowest 8) as int64 bytes."""
        out: list[int] = []
        self._take(u, n, out)
        return array("q", out).tobytes()

    def peek(self, k: int) -> np.ndarray:
        """The domains :meth:`pop` would take now, left in place (the power controller's
        admission looks at their halls). ``random`` draws, so it peeks at the packed choice."""
        policy = self.policy
        if policy == "random":
            self.policy = "pack"
        try:
            plan = self._plan(k) if k > 0 else []
        finally:
            self.policy = policy
        out: list[int] = []
        stacks = self.stacks
        for u, n in plan:
            for v, m in self._units(u, n):
                bits = stacks[v]
                self._take(v, m, out)
                stacks[v] = bits
        return np.array(out, dtype=np.int64)

    def _units(self, u: int, n: int) -> list[tuple[int, int]]:
        """A plan's entry as (unit, count) pairs: a whole group of tier 1 (``u`` < 0, see
        :meth:`_plan`) as its units with free domains, in their open order."""
        if u >= 0:
            return [(u, n)]
        free = self.free[0]
        return [(v, free[v]) for v in self.open[0][-1 - u]]

    # ------------------------------------------------------------------ the policies

    def _plan(self, k: int) -> list[tuple[int, int]]:
        """(unit, count) pairs for ``k`` domains, from the top tier down; ``pack`` gives a
        whole group ``c`` of tier 1 that a split takes as one pair ``(-1 - c, its free)``."""
        if k > self.size:
            raise ValueError(f"{k} domains asked, {self.size} free")
        if self.policy == "pack":
            return self._pack(k)
        out: list[tuple[int, int]] = []
        self._place(self.n_tiers, 0, k, out)
        return out

    def _pack(self, k: int) -> list[tuple[int, int]]:
        """The ``pack`` plan of :meth:`_place` as one loop (the same choices; a placement is
        the pool's most frequent operation): descend while one child holds all ``k`` (the
        tightest, :meth:`_tightest` written out); else split, whole children fullest first,
        and descend again into the tightest child that holds the rest."""
        out: list[tuple[int, int]] = []
        free, opens, buckets = self.free, self.open, self.buckets
        tier, group = self.n_tiers, 0
        while True:
            while tier > 0:
                rows = buckets[tier - 1].get(group)
                best = -1
                if rows is not None:
                    for at in rows[k:]:
                        if at:
                            best = next(iter(at))
                            break
                else:
                    below = free[tier - 1]
                    best_free = _NONE_FREE
                    for c in opens[tier - 1].get(group, ()):
                        f = below[c]
                        if f >= k and (f < best_free or (f == best_free and c < best)):
                            best, best_free = c, f
                if best < 0:
                    break
                tier, group = tier - 1, best
            if tier == 0:
                out.append((group, k))
                return out
            rows = buckets[tier - 1].get(group)
            if rows is None:
                # fullest first (ties: the lowest index), so the children taken whole are a
                # prefix of this order, and the tightest of the rest that holds what is left
                # is the first of the last run of equal counts that still hold it
                below = free[tier - 1]
                order = sorted([(-below[c], c) for c in opens[tier - 1].get(group, ())])
                n = len(order)
                i = 0
                while i < n:
                    f, c = order[i]
                    f = -f
                    if f >= k:
                        best, best_free = c, f
                        for j in range(i + 1, n):
                            f, c = order[j]
                            f = -f
                            if f < k:
                                break
                            if f != best_free:
                                best, best_free = c, f
                        tier, group = tier - 1, best
                        break
                    if tier == 1:
                        out.append((c, f))
                    elif tier == 2:
                        out.append((-1 - c, f))  # all of it, unit by unit when taken
                    else:
                        self._all(tier - 1, c, out)
                    k -= f
                    i += 1
                continue
            # lazily, fullest first: a request stops after a bucket or two
            taken: set[int] = set()
            found = False
            for f in range(len(rows) - 1, 0, -1):
                for c in rows[f]:
                    if f >= k:
                        tier, group = tier - 1, self._tightest(tier, group, k, taken)
                        found = True
                        break
                    if tier == 1:
                        out.append((c, f))
                    elif tier == 2:
                        out.append((-1 - c, f))  # all of it, unit by unit when taken
                    else:
                        self._all(tier - 1, c, out)
                    taken.add(c)
                    k -= f
                if found:
                    break

    def _tightest(self, tier: int, group: int, k: int, skip: set[int] | None) -> int:
        """The child of ``group`` (at ``tier``) with the fewest free domains that still holds
        ``k``, none in ``skip`` (ties: the lowest index, or the first in its bucket where the
        children are bucketed); -1 if none holds ``k``."""
        rows = self.buckets[tier - 1].get(group)
        if rows is not None:
            for f in range(k, len(rows)):
                for c in rows[f]:
                    if skip is None or c not in skip:
                        return c
            return -1
        free = self.free[tier - 1]
        best = -1
        best_free = 0
        for c in self.open[tier - 1].get(group, ()):
            f = free[c]
            if (
                f >= k
                and (best < 0 or f < best_free or (f == best_free and c < best))
                and (skip is None or c not in skip)
            ):
                best, best_free = c, f
        return best

    def _all(self, tier: int, group: int, out: list[tuple[int, int]]) -> None:
        """Every free domain under ``group`` of ``tier``, unit by unit."""
        if tier == 0:
            out.append((group, self.free[0][group]))
            return
        kids = self.open[tier - 1].get(group, {})
        if tier == 1:
            free = self.free[0]
            out.extend([(u, free[u]) for u in kids])
            return
        for c in kids:
            self._all(tier - 1, c, out)

    def _place(self, tier: int, group: int, k: int, out: list[tuple[int, int]]) -> None:
        """Place ``k`` domains inside ``group`` of ``tier`` (tier ``n_tiers`` is the root)."""
        policy = self.policy
        if policy == "pack":
            # descend while one child holds all k (the tightest; ties: the lowest index, or
            # the first in its bucket where the children are bucketed)
            while tier > 0:
                best = self._tightest(tier, group, k, None)
                if best < 0:
                    break
                tier, group = tier - 1, best
            if tier == 0:
                out.append((group, k))
                return
            # split: whole children, fullest first, until the rest fits in one; the rest then
            # goes to the tightest child that holds it (as few children as the fullest-first
            # split, and the fuller ones left whole for the next request)
            free = self.free[tier - 1]
            rows = self.buckets[tier - 1].get(group)
            order: Any
            if rows is not None:
                # lazily, fullest first: a request stops after a bucket or two
                order = ((f, c) for f in range(len(rows) - 1, 0, -1) for c in list(rows[f]))
            else:
                kids = self.open[tier - 1].get(group, {})
                order = [(-f, c) for f, c in sorted([(-free[c], c) for c in kids])]
            taken: set[int] = set()
            for f, c in order:
                if f >= k:
                    c = self._tightest(tier, group, k, taken)
                    if tier == 1:
                        out.append((c, k))
                    else:
                        self._place(tier - 1, c, k, out)
                    return
                self._all(tier - 1, c, out)
                taken.add(c)
                k -= f
            return
        if tier == 0:
            out.append((group, k))
            return
        children = self.children[tier][group]
        free = self.free[tier - 1]
        if policy == "spread":
            shares = _deal([free[c] for c in children], k)
            for c, n in zip(children, shares, strict=True):
                if n:
                    self._place(tier - 1, c, n, out)
        else:
            room = np.array([free[c] for c in children], dtype=np.int64)
            drawn = _draw(room, k, self.rng)
            for c, n in zip(children, drawn.tolist(), strict=True):
                if n:
                    self._place(tier - 1, c, n, out)


#: per byte value: the positions of its set bits, their count, and the mask of its m lowest
_BYTE_BITS = tuple(tuple(i for i in range(8) if b >> i & 1) for b in range(256))
_BYTE_COUNT = tuple(len(p) for p in _BYTE_BITS)
#: per byte value and m: the positions of its m lowest set bits
_BYTE_TAKE = tuple(tuple(p[:m] for m in range(len(p) + 1)) for p in _BYTE_BITS)
_BYTE_LOW = tuple(tuple(sum(1 << i for i in p[:m]) for m in range(len(p) + 1)) for p in _BYTE_BITS)
