"""Compiled kernels of the located free pool (:class:`sim.engine.placement.LocatedPool`).

The pool's state is one int64 array ``S``: a header of offsets (the ``H_*`` slots below) and the
segments they point to. One array is one argument: numba's dispatch costs about 0.2 us per call
with one array, 1.2 us with twenty (measured on this project's CI machine), and the pool is
called about 240k times over a rail-optimized year.

Groups of every tier are numbered flat: group ``g`` of tier ``t`` is ``toff[t] + g``
(``LocatedPool.toff``; units are tier 0, so a unit's flat number is its own), and the root
above the top tier is ``ROOT``.

* ``FREE[f]``: free domains under group ``f``; ``UP[f]``: its parent (``ROOT`` above the top
  tier); ``TIER[f]``: its tier.
* The *open list* of a parent: its children with free domains, in the order they last gained
  one (a doubly linked list: ``OHEAD``/``OTAIL`` per parent, ``ONEXT``/``OPREV`` per child).
* The *buckets* of a parent with many children (``BOFF[p] >= 0``): its children by free count,
  each bucket in the order its members arrived (``BHEAD``/``BTAIL`` per (parent, count) at
  ``BOFF[p] + count``, ``BNEXT``/``BPREV`` per child; ``BLEN[p]`` counts, 0 included).
* ``ISFREE[d]``: domain ``d`` is free here; ``UBASE[u]``: the lowest domain of unit ``u``
  here; ``UNIT[d]``: domain ``d``'s unit.
* Scratch: ``POS`` (a group's place in a list being summed, -1 when none), ``TAKEN`` (children
  taken whole by a split), two lists of (group, count) pairs, the plan (``PLANU``, ``PLANN``)
  and a stack.

A plan is a list of (unit, count) pairs, or ``(-1 - c, count)`` for every free domain of group
``c`` of tier 1, unit by unit in its open order. Every ordering here (open lists, buckets, the
sums carried up a tier in the order their groups first appear) is the order the choices and the
outputs depend on: ``tests/test_placement_pool.py`` checks the kernels against the readable
reference pool, choice for choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from numba import njit as _numba_njit


def _can_cache() -> bool:
    """Whether numba can keep compiled kernels for this file: next to it, or in the user's
    cache directory (``NUMBA_CACHE_DIR`` or the platform's). A read-only install with no
    writable home has neither; its processes then compile the kernels each (about 8 s)."""
    try:
        _numba_njit(cache=True)(_probe)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return False
    return True


def _probe() -> None:
    """(A function of this file for :func:`_can_cache` to try caching.)"""


_CACHE = _can_cache()
_F = TypeVar("_F", bound=Callable[..., Any])


def njit(**options: Any) -> Callable[[_F], _F]:
    """numba's ``njit``, cached where this file's kernels can be."""
    return cast(Callable[[_F], _F], _numba_njit(cache=_CACHE, **options))


#: header slots: values, then the segments' offsets
H_NT, H_ROOT = 0, 1
(
    H_FREE,
    H_UP,
    H_TIER,
    H_OHEAD,
    H_OTAIL,
    H_ONEXT,
    H_OPREV,
    H_BOFF,
    H_BLEN,
    H_BHEAD,
    H_BTAIL,
    H_BNEXT,
    H_BPREV,
    H_UBASE,
    H_UNIT,
    H_ISFREE,
    H_POS,
    H_TAKEN,
    H_L1,
    H_A1,
    H_L2,
    H_A2,
    H_PLANU,
    H_PLANN,
    H_STACK,
) = range(2, 27)
N_HEADER = 27
# (the list operations find a list's tails, nexts and prevs after its heads)
assert (H_OTAIL, H_ONEXT, H_OPREV) == (H_OHEAD + 1, H_OHEAD + 2, H_OHEAD + 3)
assert (H_BTAIL, H_BNEXT, H_BPREV) == (H_BHEAD + 1, H_BHEAD + 2, H_BHEAD + 3)

#: above any group's free count (the start of a search for the fewest)
_NONE_FREE = 1 << 62
#: a split's sort key is ``(_FEWEST - free) << 32 | group`` (counts and group numbers < 2**30)
_FEWEST = 1 << 30
_LOW32 = (1 << 32) - 1


@njit(inline="always")
def _seg(S: np.ndarray, h: int) -> np.ndarray:
    return S[S[h] :]


@njit(inline="always")
def _append(S: np.ndarray, h: int, b: int, g: int) -> None:
    """Append ``g`` to list ``b`` of the lists whose heads are at header slot ``h`` (the
    open lists, ``H_OHEAD``, or the buckets, ``H_BHEAD``: each followed by its tails, nexts
    and prevs)."""
    head, tail, nxt, prv = _seg(S, h), _seg(S, h + 1), _seg(S, h + 2), _seg(S, h + 3)
    t = tail[b]
    prv[g] = t
    nxt[g] = -1
    if t < 0:
        head[b] = g
    else:
        nxt[t] = g
    tail[b] = g


@njit(inline="always")
def _remove(S: np.ndarray, h: int, b: int, g: int) -> None:
    """Take ``g`` out of list ``b`` of the lists at header slot ``h`` (as :func:`_append`)."""
    head, tail, nxt, prv = _seg(S, h), _seg(S, h + 1), _seg(S, h + 2), _seg(S, h + 3)
    pr = prv[g]
    nx = nxt[g]
    if pr < 0:
        head[b] = nx
    else:
        nxt[pr] = nx
    if nx < 0:
        tail[b] = pr
    else:
        prv[nx] = pr


@njit()
def _open_add(S: np.ndarray, p: int, g: int) -> None:
    """Append ``g`` to the open list of ``p``."""
    _append(S, H_OHEAD, p, g)


@njit()
def _open_del(S: np.ndarray, p: int, g: int) -> None:
    """Take ``g`` out of the open list of ``p``."""
    _remove(S, H_OHEAD, p, g)


@njit()
def bucket_add(S: np.ndarray, p: int, g: int, f: int) -> None:
    """Append child ``g`` of bucketed parent ``p`` to bucket ``f`` (at construction)."""
    _append(S, H_BHEAD, S[S[H_BOFF] + p] + f, g)


@njit()
def _bucket_move(S: np.ndarray, p: int, g: int, before: int, after: int) -> None:
    """Move child ``g`` of bucketed parent ``p`` from bucket ``before`` to the end of
    bucket ``after``."""
    boff = S[S[H_BOFF] + p]
    _remove(S, H_BHEAD, boff + before, g)
    _append(S, H_BHEAD, boff + after, g)


@njit()
def _count1(S: np.ndarray, f: int, k: int) -> None:
    """Add ``k`` (negative: remove) free domains to group ``f`` alone, keeping its parent's
    open list and buckets."""
    free = _seg(S, H_FREE)
    before = free[f]
    after = before + k
    free[f] = after
    p = S[S[H_UP] + f]
    if before == 0:
        _open_add(S, p, f)
    elif after == 0:
        _open_del(S, p, f)
    if S[S[H_BOFF] + p] >= 0:
        _bucket_move(S, p, f, before, after)


@njit()
def count_chain(S: np.ndarray, u: int, k: int) -> None:
    """Add ``k`` free domains to unit ``u`` and every group above it."""
    up = _seg(S, H_UP)
    f = u
    for _ in range(S[H_NT]):
        _count1(S, f, k)
        f = up[f]


@njit(inline="always")
def _tally(pos: np.ndarray, keys: np.ndarray, sums: np.ndarray, n: int, g: int, k: int) -> int:
    """Add ``k`` to ``g``'s sum in the list ``keys``/``sums[:n]``, in the order the groups first
    appear (``pos[g]``: ``g``'s place, -1 when absent); the list's new length."""
    j = pos[g]
    if j < 0:
        pos[g] = n
        keys[n] = g
        sums[n] = k
        return n + 1
    sums[j] += k
    return n


@njit(inline="always")
def _untally(pos: np.ndarray, keys: np.ndarray, n: int) -> None:
    """Mark the ``n`` groups of ``keys`` absent again (:func:`_tally`)."""
    for i in range(n):
        pos[keys[i]] = -1


@njit()
def _carry(S: np.ndarray, m: int) -> None:
    """Count the (group, k) pairs in ``L1``/``A1[:m]`` (groups of one tier, in order), then
    their sums one tier up in the order their groups first appear, up to the top tier."""
    up, pos = _seg(S, H_UP), _seg(S, H_POS)
    la, aa, lb, ab = _seg(S, H_L1), _seg(S, H_A1), _seg(S, H_L2), _seg(S, H_A2)
    root = S[H_ROOT]
    while m > 0:
        n = 0
        for i in range(m):
            g = la[i]
            _count1(S, g, aa[i])
            p = up[g]
            if p != root:
                n = _tally(pos, lb, ab, n, p, aa[i])
        _untally(pos, lb, n)
        la, aa, lb, ab = lb, ab, la, aa
        m = n


@njit()
def _take_unit(S: np.ndarray, u: int, n: int, out: np.ndarray, at: int, take: bool = True) -> int:
    """The ``n`` lowest free domains of unit ``u`` into ``out[at:]``, taken (or left free:
    a peek, ``take`` false); the new ``at``."""
    isfree = _seg(S, H_ISFREE)
    d = S[S[H_UBASE] + u]
    while n > 0:
        if isfree[d]:
            if take:
                isfree[d] = 0
            out[at] = d
            at += 1
            n -= 1
        d += 1
    return at


@njit()
def _emit(S: np.ndarray, m: int, u: int, n: int) -> int:
    plan_u, plan_n = _seg(S, H_PLANU), _seg(S, H_PLANN)
    plan_u[m] = u
    plan_n[m] = n
    return m + 1


@njit()
def _emit_all(S: np.ndarray, c: int, m: int) -> int:
    """Every free domain under group ``c`` (tier 2 or above) as unit entries, unit by unit
    in the open order of every group on the way down; the new plan length."""
    free, tier = _seg(S, H_FREE), _seg(S, H_TIER)
    ohead, otail, onext, oprev = (
        _seg(S, H_OHEAD),
        _seg(S, H_OTAIL),
        _seg(S, H_ONEXT),
        _seg(S, H_OPREV),
    )
    stack = _seg(S, H_STACK)
    stack[0] = c
    sp = 1
    while sp > 0:
        sp -= 1
        x = stack[sp]
        if tier[x] == 1:
            u = ohead[x]
            while u >= 0:
                m = _emit(S, m, u, free[u])
                u = onext[u]
        else:
            y = otail[x]  # children pushed last first: taken in their open order
            while y >= 0:
                stack[sp] = y
                sp += 1
                y = oprev[y]
    return m


@njit()
def _whole(S: np.ndarray, tier: int, c: int, f: int, m: int) -> int:
    """Child ``c`` (of ``tier - 1``) taken whole by a split at ``tier``: a unit entry, a
    whole-group entry for a group of tier 1, else its units one by one."""
    if tier == 1:
        return _emit(S, m, c, f)
    if tier == 2:
        return _emit(S, m, -1 - c, f)
    return _emit_all(S, c, m)


@njit()
def pack_plan(S: np.ndarray, k: int) -> int:
    """The ``pack`` plan for ``k`` domains into ``PLANU``/``PLANN``; its length.

    From the root down: while one child holds all ``k``, into the tightest (the first of the
    lowest bucket that holds it where the children are bucketed, else the fewest free, ties
    the lowest number); where none does, split: whole children fullest first (ties: the lowest
    number, or bucket order) until the rest fits in one, and the rest into the tightest child
    that holds it, from which the descent goes on."""
    free, boffs, blens = _seg(S, H_FREE), _seg(S, H_BOFF), _seg(S, H_BLEN)
    bhead, bnext = _seg(S, H_BHEAD), _seg(S, H_BNEXT)
    ohead, onext = _seg(S, H_OHEAD), _seg(S, H_ONEXT)
    taken, lst = _seg(S, H_TAKEN), _seg(S, H_L1)
    tier = S[H_NT]
    group = S[H_ROOT]
    m = 0
    while True:
        while tier > 0:
            boff = boffs[group]
            best = -1
            if boff >= 0:
                for f in range(k, blens[group]):
                    h = bhead[boff + f]
                    if h >= 0:
                        best = h
                        break
            else:
                best_free = _NONE_FREE
                c = ohead[group]
                while c >= 0:
                    f = free[c]
                    if f >= k and (f < best_free or (f == best_free and c < best)):
                        best = c
                        best_free = f
                    c = onext[c]
            if best < 0:
                break
            tier -= 1
            group = best
        if tier == 0:
            return _emit(S, m, group, k)
        boff = boffs[group]
        if boff < 0:
            # fullest first, ties the lowest number: the children taken whole are a prefix of
            # this order, and the tightest that holds the rest the first of its last run of
            # equal counts that still hold it
            n = 0
            c = ohead[group]
            while c >= 0:
                lst[n] = (_FEWEST - free[c]) << 32 | c  # ascending: fullest, then lowest
                n += 1
                c = onext[c]
            keys = np.sort(lst[:n])
            i = 0
            while i < n:
                c = keys[i] & _LOW32
                f = _FEWEST - (keys[i] >> 32)
                if f >= k:
                    best, best_free = c, f
                    for j in range(i + 1, n):
                        c2 = keys[j] & _LOW32
                        f2 = _FEWEST - (keys[j] >> 32)
                        if f2 < k:
                            break
                        if f2 != best_free:
                            best, best_free = c2, f2
                    tier -= 1
                    group = best
                    break
                m = _whole(S, tier, c, f, m)
                k -= f
                i += 1
            continue
        # bucketed: lazily, fullest first (a request stops after a bucket or two)
        n_taken = 0
        found = False
        for f in range(blens[group] - 1, 0, -1):
            c = bhead[boff + f]
            while c >= 0:
                if f >= k:
                    best = -1
                    for f2 in range(k, blens[group]):
                        c2 = bhead[boff + f2]
                        while c2 >= 0:
                            if not taken[c2]:
                                best = c2
                                break
                            c2 = bnext[c2]
                        if best >= 0:
                            break
                    tier -= 1
                    group = best
                    found = True
                    break
                m = _whole(S, tier, c, f, m)
                taken[c] = 1
                lst[n_taken] = c
                n_taken += 1
                k -= f
                c = bnext[c]
            if found:
                break
        for i in range(n_taken):
            taken[lst[i]] = 0


@njit()
def take_plan(S: np.ndarray, m: int, out: np.ndarray) -> None:
    """Take the plan's domains into ``out`` (each unit's lowest, units in plan order, a
    whole group's units in its open order), counting each unit at once and each group above
    once, with the sum of what was taken under it."""
    free, up, boffs = _seg(S, H_FREE), _seg(S, H_UP), _seg(S, H_BOFF)
    ohead, otail, onext = _seg(S, H_OHEAD), _seg(S, H_OTAIL), _seg(S, H_ONEXT)
    plan_u, plan_n, pos = _seg(S, H_PLANU), _seg(S, H_PLANN), _seg(S, H_POS)
    la, aa = _seg(S, H_L1), _seg(S, H_A1)
    many = S[H_NT] > 1
    at = 0
    n_up = 0
    for i in range(m):
        u = plan_u[i]
        n = plan_n[i]
        if u < 0:
            c = -1 - u
            bucketed = boffs[c] >= 0
            v = ohead[c]
            while v >= 0:
                before = free[v]
                at = _take_unit(S, v, before, out, at)
                free[v] = 0
                if bucketed:
                    _bucket_move(S, c, v, before, 0)
                v = onext[v]
            ohead[c] = -1
            otail[c] = -1
            p = c
        else:
            before = free[u]
            at = _take_unit(S, u, n, out, at)
            after = before - n
            free[u] = after
            p = up[u]
            if after == 0:
                _open_del(S, p, u)
            if boffs[p] >= 0:
                _bucket_move(S, p, u, before, after)
            if not many:
                continue
        n_up = _tally(pos, la, aa, n_up, p, -n)
    _untally(pos, la, n_up)
    _carry(S, n_up)


@njit()
def peek_plan(S: np.ndarray, m: int, out: np.ndarray) -> None:
    """The domains :func:`take_plan` would take, left free."""
    free, ohead, onext = _seg(S, H_FREE), _seg(S, H_OHEAD), _seg(S, H_ONEXT)
    plan_u, plan_n = _seg(S, H_PLANU), _seg(S, H_PLANN)
    at = 0
    for i in range(m):
        u = plan_u[i]
        if u < 0:
            v = ohead[-1 - u]
            while v >= 0:
                at = _take_unit(S, v, free[v], out, at, False)
                v = onext[v]
        else:
            at = _take_unit(S, u, plan_n[i], out, at, False)


@njit()
def set_plan(S: np.ndarray, us: np.ndarray, ns: np.ndarray) -> int:
    """A plan made outside (``spread``, ``random``) into ``PLANU``/``PLANN``; its length."""
    m = 0
    for i in range(us.shape[0]):
        m = _emit(S, m, us[i], ns[i])
    return m


@njit()
def pop_pack(S: np.ndarray, k: int, out: np.ndarray) -> None:
    """``pack``'s ``k`` domains, taken into ``out``."""
    take_plan(S, pack_plan(S, k), out)


@njit()
def peek_pack(S: np.ndarray, k: int, out: np.ndarray) -> None:
    peek_plan(S, pack_plan(S, k), out)


@njit()
def pop1_pack(S: np.ndarray) -> int:
    """``pack``'s plan for one domain (every group with a free domain holds it: the tightest at
    each tier, no split), taken: its lowest free domain in the unit chosen."""
    free, boffs, blens = _seg(S, H_FREE), _seg(S, H_BOFF), _seg(S, H_BLEN)
    bhead, ohead, onext = _seg(S, H_BHEAD), _seg(S, H_OHEAD), _seg(S, H_ONEXT)
    u = S[H_ROOT]
    for _ in range(S[H_NT]):
        boff = boffs[u]
        if boff >= 0:
            for f in range(1, blens[u]):
                h = bhead[boff + f]
                if h >= 0:
                    u = h
                    break
        else:
            best = -1
            best_free = _NONE_FREE
            c = ohead[u]
            while c >= 0:
                f = free[c]
                if f < best_free or (f == best_free and c < best):
                    best = c
                    best_free = f
                c = onext[c]
            u = best
    return take1(S, u)


@njit()
def take1(S: np.ndarray, u: int) -> int:
    """The lowest free domain of unit ``u``, taken."""
    isfree = _seg(S, H_ISFREE)
    d = S[S[H_UBASE] + u]
    while not isfree[d]:
        d += 1
    isfree[d] = 0
    count_chain(S, u, -1)
    return d


@njit()
def push(S: np.ndarray, ids: np.ndarray) -> None:
    """Domains ``ids`` free again: each unit counted once with all of its domains returned,
    in the order the units first appear, each group above once with its sum."""
    unit, isfree, pos = _seg(S, H_UNIT), _seg(S, H_ISFREE), _seg(S, H_POS)
    free, up, boffs = _seg(S, H_FREE), _seg(S, H_UP), _seg(S, H_BOFF)
    lb, ab, la, aa = _seg(S, H_L2), _seg(S, H_A2), _seg(S, H_L1), _seg(S, H_A1)
    n_units = 0
    for i in range(ids.shape[0]):
        d = ids[i]
        isfree[d] = 1
        n_units = _tally(pos, lb, ab, n_units, unit[d], 1)
    _untally(pos, lb, n_units)
    many = S[H_NT] > 1
    n_up = 0
    for i in range(n_units):
        u = lb[i]
        n = ab[i]
        before = free[u]
        free[u] = before + n
        p = up[u]
        if before == 0:
            _open_add(S, p, u)
        if boffs[p] >= 0:
            _bucket_move(S, p, u, before, before + n)
        if not many:
            continue
        n_up = _tally(pos, la, aa, n_up, p, n)
    _untally(pos, la, n_up)
    _carry(S, n_up)


@njit()
def push1(S: np.ndarray, d: int) -> None:
    S[S[H_ISFREE] + d] = 1
    count_chain(S, S[S[H_UNIT] + d], 1)


@njit()
def remove1(S: np.ndarray, d: int) -> None:
    S[S[H_ISFREE] + d] = 0
    count_chain(S, S[S[H_UNIT] + d], -1)
