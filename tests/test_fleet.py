"""Domains as arrays: IndexStack and Fleet keep every domain in exactly one place."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.fleet import FAILED, FREE, HELD, Fleet, IndexStack


def ids(*xs: int) -> np.ndarray:
    return np.asarray(xs, dtype=np.int64)


def check_fleet(fleet: Fleet, holdings: dict[int, IndexStack]) -> None:
    """Every domain is in exactly one stack (a free pool or a holder) or failed; counts agree."""
    n_hw = len(fleet.free)
    seen = np.zeros(fleet.n, dtype=int)
    for hw, stack in enumerate(fleet.free):
        members = stack.all()
        seen[members] += 1
        assert (fleet.state[members] == FREE).all()
        assert (fleet.domain_hw[members] == hw).all()
        assert (fleet.holder[members] == -1).all()
        assert (fleet.slot[members] == np.arange(stack.size)).all()
        assert fleet.n_free(hw) == stack.size
    for h, stack in holdings.items():
        members = stack.all()
        seen[members] += 1
        assert (fleet.state[members] == HELD).all()
        assert (fleet.holder[members] == h).all()
        assert (fleet.slot[members] == np.arange(stack.size)).all()
    failed = np.flatnonzero(fleet.state == FAILED)
    assert (seen[failed] == 0).all()
    assert (fleet.holder[failed] == -1).all()
    assert (seen[fleet.state != FAILED] == 1).all()
    for hw in range(n_hw):
        assert fleet.failed_count[hw] == int(
            ((fleet.state == FAILED) & (fleet.domain_hw == hw)).sum()
        )


# --------------------------------------------------------------------------- IndexStack


def test_index_stack_push_pop_remove() -> None:
    slot = np.zeros(10, dtype=np.int64)
    s = IndexStack(2, slot)
    s.push(ids(4, 5, 6))  # grows past its capacity
    s.push1(7)
    assert s.all().tolist() == [4, 5, 6, 7]
    assert slot[[4, 5, 6, 7]].tolist() == [0, 1, 2, 3]
    s.remove1(5)  # the last one fills the gap
    assert s.all().tolist() == [4, 7, 6]
    assert slot[[4, 7, 6]].tolist() == [0, 1, 2]
    assert s.pop(2).tolist() == [7, 6]  # the most recently pushed
    assert s.all().tolist() == [4]
    s.remove1(4)
    assert s.size == 0
    assert s.pop(0).tolist() == []


def test_index_stack_all_is_a_copy() -> None:
    s = IndexStack(3, np.zeros(3, dtype=np.int64))
    s.push(ids(0, 1))
    out = s.all()
    out[0] = 99
    assert s.all().tolist() == [0, 1]


# --------------------------------------------------------------------------- Fleet


@pytest.fixture
def fleet() -> Fleet:
    # domains 0-3 are hardware 0, 4-5 hardware 1
    return Fleet(np.array([0, 0, 0, 0, 1, 1], dtype=np.int16), 2)


def test_fresh_fleet_hands_out_the_lowest_indices_first(fleet: Fleet) -> None:
    assert (fleet.n_free(0), fleet.n_free(1)) == (4, 2)
    job = IndexStack(4, fleet.slot)
    got = fleet.take(0, 3, holder=7, into=job)
    assert sorted(got.tolist()) == [0, 1, 2]
    check_fleet(fleet, {7: job})


def test_take_and_give_back(fleet: Fleet) -> None:
    a, b = IndexStack(4, fleet.slot), IndexStack(2, fleet.slot)
    fleet.take(0, 2, 0, a)
    fleet.take(1, 2, 1, b)
    check_fleet(fleet, {0: a, 1: b})
    assert (fleet.n_free(0), fleet.n_free(1)) == (2, 0)
    back = fleet.give_back(a)
    assert sorted(back.tolist()) == [0, 1]
    assert a.size == 0
    check_fleet(fleet, {0: a, 1: b})
    fleet.give_back_some(b, 1)
    assert (fleet.n_free(1), b.size) == (1, 1)
    check_fleet(fleet, {0: a, 1: b})
    assert fleet.give_back(a).tolist() == []  # nothing held: nothing changes
    check_fleet(fleet, {0: a, 1: b})


def test_fail_a_free_domain_and_repair_it(fleet: Fleet) -> None:
    fleet.fail(2, None)
    assert fleet.state[2] == FAILED
    assert (fleet.n_free(0), fleet.failed_count) == (3, [1, 0])
    check_fleet(fleet, {})
    assert fleet.repair(2) == 0
    assert fleet.state[2] == FREE
    assert (fleet.n_free(0), fleet.failed_count) == (4, [0, 0])
    check_fleet(fleet, {})


def test_fail_a_held_domain_and_repair_it(fleet: Fleet) -> None:
    job = IndexStack(4, fleet.slot)
    fleet.take(0, 3, 5, job)
    fleet.fail(1, job)
    assert sorted(job.all().tolist()) == [0, 2]
    assert fleet.holder[1] == -1
    assert (fleet.n_free(0), fleet.failed_count[0]) == (1, 1)
    check_fleet(fleet, {5: job})
    # a replacement from the free pool, then the repaired domain goes back to the pool
    fleet.take(0, 1, 5, job)
    assert sorted(job.all().tolist()) == [0, 2, 3]
    fleet.repair(1)
    check_fleet(fleet, {5: job})
    assert (fleet.n_free(0), fleet.failed_count[0]) == (1, 0)
    fleet.give_back(job)
    check_fleet(fleet, {5: job})
    assert fleet.n_free(0) == 4


@settings(max_examples=40, deadline=None, database=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["take", "give", "some", "fail", "repair"]),
            st.integers(0, 2),
            st.integers(0, 7),
        ),
        max_size=60,
    )
)
def test_random_operations_keep_the_fleet_consistent(ops: list[tuple[str, int, int]]) -> None:
    hw_of = np.array([0, 0, 0, 1, 1, 0, 1, 0], dtype=np.int16)
    fleet = Fleet(hw_of, 2)
    # holder h holds domains of hardware h % 2 only (a job or service has one hardware type)
    holdings = {h: IndexStack(8, fleet.slot) for h in range(3)}
    for op, h, x in ops:
        hw = h % 2
        stack = holdings[h]
        if op == "take" and fleet.n_free(hw) > 0:
            fleet.take(hw, 1 + x % fleet.n_free(hw), h, stack)
        elif op == "give":
            fleet.give_back(stack)
        elif op == "some" and stack.size > 0:
            fleet.give_back_some(stack, 1 + x % stack.size)
        elif op == "fail" and fleet.state[x] != FAILED:
            holder = int(fleet.holder[x])
            fleet.fail(x, holdings[holder] if holder >= 0 else None)
        elif op == "repair" and fleet.state[x] == FAILED:
            fleet.repair(x)
        check_fleet(fleet, holdings)
