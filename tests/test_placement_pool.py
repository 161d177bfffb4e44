"""The located free pool (:class:`sim.engine.placement.LocatedPool`) against brute force.

Random sequences of the fleet's verbs (pop, pop1, push, push1, remove1) on small fabrics; after
each one the pool's free domains, its counts per group and its open lists must equal what a plain
set of free domains gives, and ``pack`` must have chosen as the policy says: where one group holds
the whole request, the tightest such group at every tier; where none does, the fewest groups.
Then the compiled pool against the Python one it was written from (``tests/reference_pool.py``),
verb by verb: the same domains in the same order, the same counts, open lists and buckets.
"""

from __future__ import annotations

from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_pool import ReferencePool

from sim.engine.placement import BUCKET_CHILDREN, LocatedPool


def _tree(units_per_pod: list[int], unit_sizes: list[int], pods_per_building: int):
    """Domains numbered in order; unit, pod, building and a single site (4 tiers)."""
    unit_of: list[int] = []
    pod_of_unit: list[int] = []
    u = 0
    for p, n_units in enumerate(units_per_pod):
        for _ in range(n_units):
            size = unit_sizes[u % len(unit_sizes)]
            unit_of += [u] * size
            pod_of_unit.append(p)
            u += 1
    n_pods = len(units_per_pod)
    building_of_pod = [p // pods_per_building for p in range(n_pods)]
    n_buildings = max(building_of_pod) + 1
    parents = (pod_of_unit, building_of_pod, [0] * n_buildings)
    n_groups = (u, n_pods, n_buildings, 1)
    return unit_of, parents, n_groups


def _groups_of(d: int, unit_of: list[int], parents: tuple[list[int], ...]) -> list[int]:
    g = unit_of[d]
    out = [g]
    for par in parents:
        g = par[g]
        out.append(g)
    return out


def _counts(free: set[int], unit_of, parents, n_groups) -> list[list[int]]:
    out = [[0] * n for n in n_groups]
    for d in free:
        for t, g in enumerate(_groups_of(d, unit_of, parents)):
            out[t][g] += 1
    return out


def _check_pool(pool: LocatedPool, free: set[int], unit_of, parents, n_groups) -> None:
    assert pool.size == len(free)
    assert pool.free_domains() == free
    want = _counts(free, unit_of, parents, n_groups)
    # the pool leaves out the top tiers where all its domains share one group
    everywhere = [
        {_groups_of(d, unit_of, parents)[t] for d in range(len(unit_of))} for t in range(4)
    ]
    assert all(len(everywhere[t]) == 1 for t in range(pool.n_tiers, len(n_groups)))
    assert pool.n_tiers == 1 or len(everywhere[pool.n_tiers - 1]) > 1
    for t in range(pool.n_tiers):
        got = pool.counts(t)
        assert got == want[t]
        # each parent's open list: its children with free domains, each once, under it
        lists = pool.open_lists(t)
        opened = [g for members in lists.values() for g in members]
        assert len(opened) == len(set(opened))
        assert set(opened) == {g for g, n in enumerate(got) if n > 0}
        for up, members in lists.items():
            assert all(_up(g, t, pool, parents) == up for g in members)
        # the buckets by free count hold every child of their parent at its count now
        for up, rows in pool.buckets(t).items():
            kids = {g for g in everywhere[t] if _up(g, t, pool, parents) == up}
            assert rows == {c: got[c] for c in kids}


def _up(g: int, t: int, pool: LocatedPool, parents) -> int:
    """Group ``g``'s parent at tier ``t + 1`` (0: the root above the pool's top tier)."""
    return parents[t][g] if t + 1 < pool.n_tiers else 0


def _check_pack(taken: np.ndarray, before: set[int], unit_of, parents, n_groups) -> None:
    """Best fit, tier by tier from the top, for a request that one group holds."""
    k = taken.shape[0]
    counts = _counts(before, unit_of, parents, n_groups)
    paths = {tuple(_groups_of(int(d), unit_of, parents)) for d in taken.tolist()}
    top = len(n_groups) - 1
    # children of each group among groups with free domains
    for t in range(top - 1, -1, -1):
        at_t = {p[t] for p in paths}
        above = {p[t + 1] for p in paths}
        if len(above) != 1:
            return  # split higher up: checked by the count of groups below
        (parent,) = above
        kids = {
            _groups_of(d, unit_of, parents)[t]
            for d in before
            if _groups_of(d, unit_of, parents)[t + 1] == parent
        }
        fits = [counts[t][c] for c in kids if counts[t][c] >= k]
        if fits:
            assert len(at_t) == 1, "one group holds the request: it must not be split"
            (g,) = at_t
            assert counts[t][g] == min(fits), "not the tightest group that holds it"
        else:
            # split over the fullest groups: no fewer groups could hold it
            sizes = sorted((counts[t][c] for c in kids), reverse=True)
            assert sum(sizes[: len(at_t) - 1]) < k
            return


@settings(max_examples=80, deadline=None)
@given(
    units_per_pod=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    unit_sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    pods_per_building=st.integers(1, 3),
    policy=st.sampled_from(["pack", "spread", "random"]),
    ops=st.lists(
        st.tuples(st.sampled_from("PPpUuR"), st.one_of(st.integers(1, 4), st.integers(1, 40))),
        max_size=40,
    ),
    seed=st.integers(0, 2**16),
)
def test_pool_matches_brute_force(units_per_pod, unit_sizes, pods_per_building, policy, ops, seed):
    _run_ops(units_per_pod, unit_sizes, pods_per_building, policy, ops, seed)


def test_bucketed_top_tier_matches_brute_force():
    """40 pods in one building: the pods are the pool's top tier, bucketed under the root
    (as the default rail-optimized factory's 240 pods are), with whole pods taken."""
    rng = np.random.default_rng(3)
    ops = [(str(rng.choice(list("PPpUuR"))), int(rng.integers(1, 30))) for _ in range(300)]
    _run_ops([2] * 40, [3, 4], 40, "pack", ops, 11)


def _run_ops(units_per_pod, unit_sizes, pods_per_building, policy, ops, seed):
    unit_of, parents, n_groups = _tree(units_per_pod, unit_sizes, pods_per_building)
    n = len(unit_of)
    rng = np.random.default_rng(seed)
    domains = np.arange(n, dtype=np.int64)
    pool = LocatedPool(
        domains, array("q", unit_of), parents, n_groups, policy, np.random.default_rng(1)
    )
    free = set(range(n))
    out: list[int] = []  # taken, in take order
    _check_pool(pool, free, unit_of, parents, n_groups)
    for verb, k in ops:
        if verb == "P" and free:
            k = min(k, len(free))
            before = set(free)
            peeked = pool.peek(k)
            _check_pool(pool, free, unit_of, parents, n_groups)  # a peek leaves all in place
            taken = pool.pop(k)
            if policy != "random":  # (random peeks at the packed choice)
                assert taken.tolist() == peeked.tolist(), "a peek shows what a pop takes"
            assert len(set(taken.tolist())) == k and set(taken.tolist()) <= before
            free -= set(taken.tolist())
            out += taken.tolist()
            if policy == "pack":
                _check_pack(taken, before, unit_of, parents, n_groups)
        elif verb == "p" and free:
            d = pool.pop1()
            assert d in free
            free.discard(d)
            out.append(d)
        elif verb == "U" and out:
            k = min(k, len(out))
            back = np.array(out[-k:], dtype=np.int64)
            rng.shuffle(back)
            del out[-k:]
            pool.push(back)
            free |= set(back.tolist())
        elif verb == "u" and out:
            d = out.pop(int(rng.integers(len(out))))
            pool.push1(d)
            free.add(d)
        elif verb == "R" and free:
            d = sorted(free)[int(rng.integers(len(free)))]
            pool.remove1(d)
            free.discard(d)
            out.append(d)
        _check_pool(pool, free, unit_of, parents, n_groups)


def test_bucketed_pods_are_exercised():
    """The strategy above reaches parents with more children than BUCKET_CHILDREN."""
    assert BUCKET_CHILDREN < 40


@settings(max_examples=25, deadline=None)
@given(
    unit_sizes=st.lists(st.integers(9, 20), min_size=1, max_size=3),
    policy=st.sampled_from(["pack", "spread", "random"]),
    ops=st.lists(
        st.tuples(st.sampled_from("PPpUuR"), st.one_of(st.integers(1, 9), st.integers(1, 60))),
        max_size=40,
    ),
    seed=st.integers(0, 2**16),
)
def test_units_past_one_byte_match_brute_force(unit_sizes, policy, ops, seed):
    """Units of more than 8 domains (HGX nodes under a leaf): a unit's bits span several bytes,
    which a pop takes a byte at a time."""
    _run_ops([3, 2, 4], unit_sizes, 2, policy, ops, seed)


def _same_as_reference(
    units_per_pod, unit_sizes, pods_per_building, policy, ops, seed, every_other=False
):
    """The compiled pool and the readable reference (``tests/reference_pool.py``) given the
    same verbs: the same domains out, in the same order, and the same counts, open lists and
    buckets (whose orders later choices depend on) after every verb. ``every_other``: the pool
    holds every other domain (units shared by two hardware types, as in a mixed hall)."""
    unit_of, parents, n_groups = _tree(units_per_pod, unit_sizes, pods_per_building)
    n = len(unit_of)
    domains = np.arange(0, n, 2 if every_other else 1, dtype=np.int64)
    pools = [
        cls(domains, array("q", unit_of), parents, n_groups, policy, np.random.default_rng(1))
        for cls in (LocatedPool, ReferencePool)
    ]
    new, ref = pools
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for verb, k in ops:
        if verb == "P" and new.size:
            k = min(k, new.size)
            a, b = new.peek(k), ref.peek(k)
            assert a.tolist() == b.tolist()
            a, b = new.pop(k), ref.pop(k)
            assert a.tolist() == b.tolist()
            out += a.tolist()
        elif verb == "p" and new.size:
            d = new.pop1()
            assert d == ref.pop1()
            out.append(d)
        elif verb == "U" and out:
            k = min(k, len(out))
            back = np.array(out[-k:], dtype=np.int64)
            rng.shuffle(back)
            del out[-k:]
            new.push(back)
            ref.push(back)
        elif verb == "u" and out:
            d = out.pop(int(rng.integers(len(out))))
            new.push1(d)
            ref.push1(d)
        elif verb == "R" and new.size:
            d = sorted(new.free_domains())[int(rng.integers(new.size))]
            new.remove1(d)
            ref.remove1(d)
            out.append(d)
        assert new.size == ref.size
        assert new.free_domains() == {
            ref.base[u] + i
            for u, bits in ref.stacks.items()
            for i in range(bits.bit_length())
            if bits >> i & 1
        }
        for t in range(new.n_tiers):
            assert new.counts(t) == list(ref.free[t])
            assert new.open_lists(t) == {p: list(m) for p, m in ref.open[t].items() if m}
            assert {p: list(r.items()) for p, r in new.buckets(t).items()} == {
                p: [(c, f) for f, at in enumerate(rows) for c in at]
                for p, rows in ref.buckets[t].items()
            }


@settings(max_examples=150, deadline=None)
@given(
    units_per_pod=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    unit_sizes=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    pods_per_building=st.integers(1, 3),
    policy=st.sampled_from(["pack", "spread", "random"]),
    ops=st.lists(
        st.tuples(st.sampled_from("PPpUuR"), st.one_of(st.integers(1, 4), st.integers(1, 60))),
        max_size=50,
    ),
    seed=st.integers(0, 2**16),
    every_other=st.booleans(),
)
def test_compiled_pool_matches_reference(
    units_per_pod, unit_sizes, pods_per_building, policy, ops, seed, every_other
):
    _same_as_reference(units_per_pod, unit_sizes, pods_per_building, policy, ops, seed, every_other)


def test_compiled_pool_matches_reference_with_bucketed_pods():
    """The default rail-optimized factory's shape, small: pods of three units of eight
    domains (and one of two), more pods than BUCKET_CHILDREN in one building, and a long run
    of verbs that fragments them."""
    rng = np.random.default_rng(5)
    ops = [(str(rng.choice(list("PPPpUUuR"))), int(rng.integers(1, 70))) for _ in range(1500)]
    _same_as_reference([3] * 40, [8, 8, 2], 40, "pack", ops, 9)


def test_compiled_pool_matches_reference_with_large_units():
    """Units of up to 70 domains (HGX nodes under a leaf of a high-radix switch)."""
    rng = np.random.default_rng(8)
    ops = [(str(rng.choice(list("PPpUuR"))), int(rng.integers(1, 150))) for _ in range(400)]
    _same_as_reference([2, 3, 1], [70, 9, 33], 2, "pack", ops, 4)


def test_units_must_be_runs_of_domains():
    """A unit's free domains are walked up from its lowest: a pool whose units interleave
    (unit 0 holds domains 0 and 2, unit 1 domains 1 and 3) is refused, not misread."""
    with pytest.raises(ValueError, match="one run of domain numbers"):
        LocatedPool(
            np.arange(4, dtype=np.int64),
            array("q", [0, 1, 0, 1]),
            ([0, 0], [0]),
            (2, 1, 1),
            "pack",
            np.random.default_rng(0),
        )
