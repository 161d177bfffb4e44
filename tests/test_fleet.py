"""Domains as arrays: IndexStack and Fleet keep every domain in exactly one place, and the
fleet keeps each holder's domains per hall and the index of preemptible jobs in step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.fleet import FAILED, FREE, HELD, Fleet, IndexStack
from sim.engine.power import HallPower, Power
from sim.engine.workloads import Workload
from sim.record import Recorder


def ids(*xs: int) -> np.ndarray:
    return np.asarray(xs, dtype=np.int64)


# domains 0-3 are hardware 0 (hall 0: 0-1, hall 1: 2-3), 4-5 hardware 1 (hall 2)
HW = np.array([0, 0, 0, 0, 1, 1], dtype=np.int16)
HALL = np.array([0, 0, 1, 1, 2, 2], dtype=np.int16)


def new_fleet(hw: np.ndarray = HW, hall: np.ndarray = HALL) -> Fleet:
    rec = Recorder()
    n_halls = int(hall.max()) + 1
    halls = [
        HallPower(
            f"h{h}",
            int(hw[hall == h][0]),
            int((hall == h).sum()),
            1000.0,
            0.2,
            0.8,
            0.6,
            0.0,
            0.0,
            1e6,
        )
        for h in range(n_halls)
    ]
    return Fleet(hw, hall, (8, 4), n_halls, rec, Power(halls, 1.2, rec), 2)


def holder(fleet: Fleet, hw: int, victim: bool = False, rank: int = 1) -> Workload:
    w = Workload(f"w{len(fleet.holders)}", hw, rank, victim, fleet.slot, 8, fleet.n_halls)
    w.kind = "posttraining"
    w.victim = victim
    w.index = fleet.register(w)
    return w


def check_fleet(fleet: Fleet, holdings: dict[int, IndexStack]) -> None:
    """Every domain is in exactly one stack (a free pool or a holder) or failed; counts agree;
    each holder's domains per hall and the victim index match its stack."""
    n_hw = len(fleet.free)
    seen = np.zeros(fleet.n, dtype=int)
    for hw, stack in enumerate(fleet.free):
        members = stack.all()
        seen[members] += 1
        assert (fleet.state[members] == FREE).all()
        assert (fleet.domain_hw[members] == hw).all()
        assert (fleet.holder[members] == -1).all()
        assert (fleet.slot_np[members] == np.arange(stack.size)).all()
        assert fleet.n_free(hw) == stack.size
    for h, stack in holdings.items():
        members = stack.all()
        seen[members] += 1
        assert (fleet.state[members] == HELD).all()
        assert (fleet.holder[members] == h).all()
        assert (fleet.slot_np[members] == np.arange(stack.size)).all()
    failed = np.flatnonzero(fleet.state == FAILED)
    assert (seen[failed] == 0).all()
    assert (fleet.holder[failed] == -1).all()
    assert (seen[fleet.state != FAILED] == 1).all()
    for hw in range(n_hw):
        assert fleet.failed_count[hw] == int(
            ((fleet.state == FAILED) & (fleet.domain_hw == hw)).sum()
        )
    for w in fleet.holders:
        counts = np.bincount(fleet.domain_hall[w.held.all()], minlength=fleet.n_halls)
        assert w.hall_n == counts.tolist()
        if w.victim:
            listed = w in fleet.victims[w.hw][w.class_rank]
            assert listed == (w.held.size > 0)
    for hw in range(n_hw):
        for rank, victims in enumerate(fleet.victims[hw]):
            assert fleet.victim_domains[hw][rank] == sum(v.held.size for v in victims)
    assert fleet.gpus_failed == sum(
        fleet.gpus_of_hw[fleet.hw_of[d]] for d in np.flatnonzero(fleet.state == FAILED)
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
    return new_fleet()


def _holdings(fleet: Fleet) -> dict[int, IndexStack]:
    return {w.index: w.held for w in fleet.holders}


def test_fresh_fleet_hands_out_the_lowest_indices_first(fleet: Fleet) -> None:
    assert (fleet.n_free(0), fleet.n_free(1)) == (4, 2)
    job = holder(fleet, 0)
    got = fleet.take(job, 3, now=0.0)
    assert sorted(got.tolist()) == [0, 1, 2]
    assert job.hall_n == [2, 1, 0]
    check_fleet(fleet, _holdings(fleet))


def test_take_and_give_back(fleet: Fleet) -> None:
    a, b = holder(fleet, 0), holder(fleet, 1)
    fleet.take(a, 2, 0.0)
    fleet.take(b, 2, 0.0)
    check_fleet(fleet, _holdings(fleet))
    assert (fleet.n_free(0), fleet.n_free(1)) == (2, 0)
    back = fleet.give_back(a, a.held.size, 1.0)
    assert sorted(back.tolist()) == [0, 1]
    assert a.held.size == 0
    check_fleet(fleet, _holdings(fleet))
    fleet.give_back(b, 1, 2.0)
    assert (fleet.n_free(1), b.held.size) == (1, 1)
    check_fleet(fleet, _holdings(fleet))
    assert fleet.give_back(a, 0, 3.0).tolist() == []  # nothing held: nothing changes
    check_fleet(fleet, _holdings(fleet))
    # domain-seconds held: a held 2 domains for 1 s, b 2 domains for 2 s then 1
    assert (a.held_domain_s, b.held_domain_s) == (2.0, 4.0)


def test_fail_a_free_domain_and_repair_it(fleet: Fleet) -> None:
    assert fleet.fail(2, 0.0) is None
    assert fleet.state[2] == FAILED
    assert (fleet.n_free(0), fleet.failed_count) == (3, [1, 0])
    check_fleet(fleet, {})
    assert fleet.repair(2, 1.0) == 0
    assert fleet.state[2] == FREE
    assert (fleet.n_free(0), fleet.failed_count) == (4, [0, 0])
    check_fleet(fleet, {})


def test_fail_a_held_domain_and_repair_it(fleet: Fleet) -> None:
    job = holder(fleet, 0, victim=True)
    fleet.take(job, 3, 0.0)
    assert fleet.victim_domains[0][1] == 3
    assert fleet.fail(1, 1.0) is job
    assert sorted(job.held.all().tolist()) == [0, 2]
    assert fleet.holder[1] == -1
    assert (fleet.n_free(0), fleet.failed_count[0]) == (1, 1)
    assert fleet.victim_domains[0][1] == 2
    check_fleet(fleet, _holdings(fleet))
    # a replacement from the free pool, then the repaired domain goes back to the pool
    fleet.take(job, 1, 2.0)
    assert sorted(job.held.all().tolist()) == [0, 2, 3]
    fleet.repair(1, 3.0)
    check_fleet(fleet, _holdings(fleet))


@settings(max_examples=40, deadline=None, database=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["take", "one", "give", "some", "fail", "repair"]),
            st.integers(0, 2),
            st.integers(0, 7),
        ),
        max_size=60,
    )
)
def test_random_operations_keep_the_fleet_consistent(ops: list[tuple[str, int, int]]) -> None:
    hw_of = np.array([0, 0, 0, 1, 1, 0, 1, 0], dtype=np.int16)
    hall_of = np.array([0, 0, 1, 2, 2, 1, 2, 1], dtype=np.int16)
    fleet = new_fleet(hw_of, hall_of)
    # holder h holds domains of hardware h % 2 only (a job or service has one hardware type)
    ws = [holder(fleet, h % 2, victim=h != 1) for h in range(3)]
    now = 0.0
    for op, h, x in ops:
        now += 1.0
        w = ws[h]
        if op == "take" and fleet.n_free(w.hw) > 0:
            fleet.take(w, 1 + x % fleet.n_free(w.hw), now)
        elif op == "one" and fleet.n_free(w.hw) > 0:
            fleet.take1(w, now)
        elif op == "give":
            fleet.give_back(w, w.held.size, now)
        elif op == "some" and w.held.size > 0:
            fleet.give_back(w, 1 + x % w.held.size, now)
        elif op == "fail" and fleet.state[x] != FAILED:
            fleet.fail(x, now)
        elif op == "repair" and fleet.state[x] == FAILED:
            fleet.repair(x, now)
        check_fleet(fleet, _holdings(fleet))
