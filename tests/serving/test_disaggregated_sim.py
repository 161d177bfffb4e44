"""The request level's disaggregated prefill (sim/serving/simulator.py simulate_disaggregated):
a prefill pool in front of a decode replica, by hand on a toy step model, conservation, and the
fleet's SLO attainment for a CPX service."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_helpers import OPTS, toy_step

from sim.perf import PrefillCosts
from sim.serving.simulator import EngineOptions, prefill_pool_ready_s, simulate_disaggregated
from sim.serving.workload import Requests, SessionShape, poisson_requests, session_requests

#: 0.1 s + 1 ms per new token, 1 us per (token x position) of attention, 0.1 ms per token moved
POOL = PrefillCosts(
    devices=1.0,
    instances_per_replica=2.0,
    fixed_s=0.1,
    s_per_token=1e-3,
    s_per_attention_unit=0.0,
    transfer_s_per_token=1e-4,
)


def _reqs(
    t: list[float], prompt: list[int], gen: list[int], cached: list[int] | None = None
) -> Requests:
    n = len(t)
    return Requests.independent(
        np.array(t, dtype=float),
        np.array(prompt),
        np.array(gen),
        np.array(cached if cached is not None else [0] * n),
    )


def test_pool_queue_by_hand() -> None:
    """Three 100-token prompts at 0 on two instances: 0.2 s each, the third waits for one;
    then 10 ms of transfer."""
    ready = prefill_pool_ready_s(_reqs([0.0, 0.0, 0.0], [100] * 3, [1] * 3), POOL)
    np.testing.assert_allclose(ready, [0.21, 0.21, 0.41], atol=1e-12)
    # 1.5 instances: two at 3/4 speed (the pool's capacity is 1.5 instances')
    half = PrefillCosts(1.0, 1.5, 0.1, 1e-3, 0.0, 1e-4)
    ready = prefill_pool_ready_s(_reqs([0.0, 0.0, 0.0], [100] * 3, [1] * 3), half)
    np.testing.assert_allclose(ready, [0.2 / 0.75 + 0.01] * 2 + [0.4 / 0.75 + 0.01], atol=1e-12)
    # a cached prefix: 60 new tokens after 40 cached, attention 40 x 60 + 60^2 / 2 = 4,200 units
    attn = PrefillCosts(1.0, 1.0, 0.1, 1e-3, 1e-6, 1e-4)
    ready = prefill_pool_ready_s(_reqs([1.0], [100], [1], [40]), attn)
    assert ready[0] == pytest.approx(1.0 + 0.1 + 0.060 + 0.0042 + 0.01, abs=1e-12)


def test_one_request_by_hand() -> None:
    """Pool 0.2 s + transfer 10 ms; at the decode replica (toy step: G(n) = 10 ms + 1 ms/token,
    1 us per context token, 2 ms overhead) its first iteration carries its last prompt token
    (11 + 2 ms) and yields the first token; each later iteration 13 ms + 1 us x context."""
    run = simulate_disaggregated(_reqs([1.0], [100], [3]), toy_step(), OPTS, 10.0, POOL)
    first = 1.0 + 0.21 + 0.013
    assert run.first_token_s[0] == pytest.approx(first, abs=1e-12)
    # contexts 101 and 102 for the 2nd and 3rd tokens
    assert run.done_s[0] == pytest.approx(first + 2 * 0.013 + 1e-6 * 203, abs=1e-12)
    assert run.arrival_s[0] == 1.0 and run.cached_tokens[0] == 0
    assert (run.arrived, run.served, run.queued) == (1, 1, 0)


def test_a_request_still_in_the_pool_is_queued() -> None:
    run = simulate_disaggregated(
        _reqs([0.0, 0.95], [100, 100], [2, 2]), toy_step(), OPTS, 1.0, POOL
    )
    # the second arrives before the horizon and is ready at 1.16: queued in the pool
    assert (run.arrived, run.served, run.queued, run.waiting_at_end) == (2, 1, 1, 1)


def test_sessions_are_refused() -> None:
    reqs = session_requests(
        np.random.default_rng(0),
        SessionShape(calls=3, tool_latency_s=0.5, tool_output_tokens=30),
        rate_per_s=2.0,
        duration_s=5.0,
        input_tokens=100,
        output_tokens=10,
    )
    with pytest.raises(ValueError, match="agentic sessions are not modelled"):
        simulate_disaggregated(reqs, toy_step(), OPTS, 5.0, POOL)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rate=st.floats(1.0, 40.0),
    kv=st.integers(400, 20_000),
    mode=st.sampled_from(["reserved", "paged"]),
    horizon=st.floats(0.5, 20.0),
    instances=st.floats(0.3, 6.0),
)
def test_conservation_and_order(
    seed: int, rate: float, kv: int, mode: str, horizon: float, instances: float
) -> None:
    rng = np.random.default_rng(seed)
    reqs = poisson_requests(
        rng, rate_per_s=rate, duration_s=20.0, input_tokens=150, output_tokens=40
    )
    opts = EngineOptions(kv_cache=mode, max_seqs=32, max_batched_tokens=256)
    pool = PrefillCosts(1.0, instances, 0.01, 1e-4, 1e-8, 1e-5)
    run = simulate_disaggregated(reqs, toy_step(kv_tokens=kv, max_tokens=256), opts, horizon, pool)
    assert run.served + run.n_dropped + run.queued == run.arrived
    assert run.arrived == int(np.isfinite(run.arrival_s).sum())
    done = np.isfinite(run.done_s)
    ready = prefill_pool_ready_s(reqs, pool)
    # no token before the prompt's KV is on the decode replica
    assert (run.first_token_s[done] > ready[done]).all()
    assert (run.done_s[done] >= run.first_token_s[done]).all()
