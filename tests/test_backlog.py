"""The fluid backlog of a service (sim.engine.backlog): exact pieces of a tiny case, the
give-up rule, and conservation over random step functions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.backlog import advance, fluid_queue, served_rate


def test_a_surge_fills_the_backlog_to_the_timeout_then_it_drains() -> None:
    """Capacity 1 token/s, timeout 30 s; demand 2 for 100 s, then 0.5 for 100 s: the backlog
    grows at 1/s to 30 tokens (t = 30 s), the excess 1/s is dropped until 100 s, then it drains
    at 0.5/s, empty at 160 s, and served falls from 1 to 0.5."""
    p = fluid_queue(np.array([0.0, 100.0]), np.array([2.0, 0.5]), np.array([1.0, 1.0]), 200.0, 30.0)
    np.testing.assert_allclose(p.t, [0.0, 30.0, 100.0, 160.0])
    np.testing.assert_allclose(p.served, [1.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(p.dropped, [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(
        p.queue_at(np.array([15.0, 30.0, 100.0, 130.0, 160.0, 200.0])),
        [15.0, 30.0, 30.0, 15.0, 0.0, 0.0],
    )
    assert p.jump_t.size == 0
    # the live engine's steps give the same backlog
    q = advance(0.0, 2.0, 1.0, 100.0, 30.0)
    assert q == 30.0 and served_rate(q, 0.5, 1.0) == 1.0
    assert advance(q, 0.5, 1.0, 60.0, 30.0) == 0.0


def test_a_capacity_fall_gives_up_what_it_cannot_serve_in_time() -> None:
    """A backlog of 30 tokens at capacity 1 (timeout 30 s); the capacity halves at 40 s: the
    new bound is 15 tokens, so 15 are given up at once."""
    p = fluid_queue(
        np.array([0.0, 30.0, 40.0]),
        np.array([2.0, 1.0, 0.0]),
        np.array([1.0, 1.0, 0.5]),
        100.0,
        30.0,
    )
    np.testing.assert_allclose(p.jump_t, [40.0])
    np.testing.assert_allclose(p.jump_tokens, [15.0])
    assert p.queue_at(np.array([40.0]))[0] == 15.0
    np.testing.assert_allclose(p.queue_at(np.array([70.0, 100.0])), [0.0, 0.0])


def test_no_timeout_is_the_memoryless_fluid() -> None:
    t = np.array([0.0, 10.0, 20.0])
    d, c = np.array([3.0, 1.0, 2.0]), np.array([2.0, 2.0, 2.0])
    p = fluid_queue(t, d, c, 30.0, 0.0)
    np.testing.assert_allclose(p.served, np.minimum(d, c))
    np.testing.assert_allclose(p.dropped, d - np.minimum(d, c))
    assert (p.q0 == 0).all() and p.jump_t.size == 0


def test_pieces_are_cut_where_the_wait_crosses_a_level() -> None:
    """Backlog growing at 1/s against capacity 2: its wait Q / c crosses 5 s at Q = 10 (t = 10)."""
    p = fluid_queue(np.array([0.0]), np.array([3.0]), np.array([2.0]), 20.0, 60.0, level_s=5.0)
    np.testing.assert_allclose(p.t, [0.0, 10.0])
    np.testing.assert_allclose(p.q0, [0.0, 10.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.1, 50.0),  # stretch length
            st.floats(0.0, 10.0),  # demand
            st.floats(0.0, 8.0),  # capacity
        ),
        min_size=1,
        max_size=25,
    ),
    st.floats(0.0, 40.0),
)
def test_served_dropped_and_queued_conserve_demand(
    stretches: list[tuple[float, float, float]], timeout: float
) -> None:
    dur = np.array([s[0] for s in stretches])
    t = np.concatenate(([0.0], np.cumsum(dur)[:-1]))
    d = np.array([s[1] for s in stretches])
    c = np.array([s[2] for s in stretches])
    end = float(dur.sum())
    p = fluid_queue(t, d, c, end, timeout)
    span = np.diff(np.append(p.t, end))
    assert (span >= 0).all()
    arrived = float((d * dur).sum())
    served = float((p.served * span).sum())
    dropped = float((p.dropped * span).sum() + p.jump_tokens.sum())
    queued = float(p.queue_at(np.array([end]))[0])
    assert abs(served + dropped + queued - arrived) <= 1e-9 * max(arrived, 1.0)
    assert (p.served <= p.capacity * (1 + 1e-12) + 1e-12).all()
    assert (p.dropped >= 0).all() and (p.jump_tokens >= 0).all()
    q_start = p.q0
    q_end = p.q0 + p.slope * span
    bound = p.capacity * timeout * (1 + 1e-9) + 1e-9
    assert (q_start >= -1e-9).all() and (q_start <= bound).all() and (q_end <= bound).all()
    # nothing is given up while the capacity could still serve it in time, and nothing waits
    # while there is spare capacity
    assert not ((p.dropped > 0) & (q_start < p.capacity * timeout - 1e-6)).any()
    assert not ((p.q0 > 1e-9) & (p.served < p.capacity - 1e-12)).any()
