"""The request-level simulator: exact tiny runs, jumps equal single steps, conservation, KV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_helpers import OPTS, toy_step

from sim.serving.metrics import levels_table, requests_table, slo_attainment_of, summarize
from sim.serving.simulator import EngineOptions, simulate
from sim.serving.workload import Requests, SessionShape, poisson_requests, session_requests


def one(t: float, prompt: int, gen: int, cached: int = 0) -> Requests:
    return Requests.independent(
        np.array([t]), np.array([prompt]), np.array([gen]), np.array([cached])
    )


def test_one_request_by_hand() -> None:
    run = simulate(one(1.0, 100, 5), toy_step(), OPTS, 10.0)
    # prefill: 100 tokens -> 10 + 100 + 2 ms; first token at 1.112
    assert run.first_token_s[0] == pytest.approx(1.112, abs=1e-12)
    # 4 decode iterations j = 1..4, context 100 + j: 13 ms + 1 us x (100 + j) each
    assert run.done_s[0] == pytest.approx(1.112 + 4 * 0.013 + 1e-6 * 410, abs=1e-12)
    assert (run.arrived, run.served, run.n_dropped, run.queued) == (1, 1, 0, 0)
    assert run.iterations == 5


def test_cached_prefix_skips_prefill_compute() -> None:
    run = simulate(one(0.0, 100, 2, cached=60), toy_step(), OPTS, 10.0)
    assert run.first_token_s[0] == pytest.approx(0.010 + 0.040 + 0.002, abs=1e-12)


def test_chunked_prefill_splits_long_prompt_over_iterations() -> None:
    run = simulate(one(0.0, 1000, 1), toy_step(), OPTS, 10.0)
    # 512 + 488 tokens in two iterations; a one-token request ends with its prefill
    assert run.iterations == 2
    assert run.done_s[0] == pytest.approx(0.012 + 0.512 + 0.012 + 0.488, abs=1e-12)


def test_request_that_can_never_fit_is_dropped() -> None:
    run = simulate(one(0.0, 900, 200), toy_step(kv_tokens=1000), OPTS, 10.0)
    assert (run.arrived, run.served, run.n_dropped) == (1, 0, 1)


def _random(seed: int, n: int = 400, rate: float = 30.0) -> Requests:
    rng = np.random.default_rng(seed)
    return poisson_requests(
        rng, rate_per_s=rate, duration_s=n / rate, input_tokens=120, output_tokens=60
    )


@pytest.mark.parametrize("mode", ["reserved", "paged"])
def test_jumps_equal_single_iterations(mode: str) -> None:
    reqs = _random(3)
    opts = EngineOptions(kv_cache=mode, max_seqs=64, max_batched_tokens=512)
    step = toy_step(kv_tokens=6_000)
    a = simulate(reqs, step, opts, 30.0)
    b = simulate(reqs, step, opts, 30.0, max_jump=1)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.first_token_s, b.first_token_s, rtol=1e-9)
    np.testing.assert_allclose(a.done_s, b.done_s, rtol=1e-9)
    np.testing.assert_array_equal(a.preemptions, b.preemptions)
    if mode == "paged":
        assert a.preemptions.sum() > 0  # the small cache forces preemptions


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rate=st.floats(1.0, 80.0),
    kv=st.integers(400, 20_000),
    mode=st.sampled_from(["reserved", "paged"]),
    horizon=st.floats(0.5, 20.0),
    sessions=st.booleans(),
)
def test_conservation_and_kv_bound(
    seed: int, rate: float, kv: int, mode: str, horizon: float, sessions: bool
) -> None:
    rng = np.random.default_rng(seed)
    kw = {"rate_per_s": rate, "duration_s": 20.0, "input_tokens": 150, "output_tokens": 40}
    if sessions:
        shape = SessionShape(calls=3, tool_latency_s=0.5, tool_output_tokens=30)
        reqs = session_requests(rng, shape, **kw)  # type: ignore[arg-type]
    else:
        reqs = poisson_requests(rng, **kw)  # type: ignore[arg-type]
    opts = EngineOptions(kv_cache=mode, max_seqs=32, max_batched_tokens=256)
    run = simulate(reqs, toy_step(kv_tokens=kv, max_tokens=256), opts, horizon)
    assert run.served + run.n_dropped + run.queued == run.arrived
    assert run.arrived == int(np.isfinite(run.arrival_s).sum())
    # the counts agree with the requests, one by one: each arrived one is in exactly one state
    came = np.isfinite(run.arrival_s)
    assert int(run.dropped.sum()) == run.n_dropped and not run.dropped[~came].any()
    assert int((came & ~np.isfinite(run.done_s) & ~run.dropped).sum()) == run.queued
    assert run.queued == run.waiting_at_end + run.running_at_end
    assert (run.sample_kv_tokens <= run.kv_capacity_tokens).all()
    done = np.isfinite(run.done_s)
    assert done.sum() == run.served
    assert (run.first_token_s[done] >= run.arrival_s[done]).all()
    assert (run.done_s[done] >= run.first_token_s[done]).all()
    if mode == "reserved":
        assert run.preemptions.sum() == 0
    # a session's call arrives only after the previous call completed
    child = np.flatnonzero((reqs.parent >= 0) & np.isfinite(run.arrival_s))
    parent = reqs.parent[child]
    assert (run.arrival_s[child] >= run.done_s[parent]).all()


def test_deterministic() -> None:
    reqs = _random(5)
    step = toy_step(kv_tokens=5_000)
    opts = EngineOptions(kv_cache="paged", max_seqs=64, max_batched_tokens=512)
    a, b = simulate(reqs, step, opts, 20.0), simulate(reqs, step, opts, 20.0)
    pd_a, pd_b = requests_table(a), requests_table(b)
    assert pd_a.equals(pd_b)
    assert levels_table(a).equals(levels_table(b))


def test_paged_admits_more_than_reserved_under_memory_pressure() -> None:
    reqs = _random(7, n=600, rate=40.0)
    step = toy_step(kv_tokens=4_000)
    res = simulate(reqs, step, EngineOptions("reserved", 64, 512), 15.0)
    pag = simulate(reqs, step, EngineOptions("paged", 64, 512), 15.0)
    assert pag.sample_running.mean() > res.sample_running.mean()
    # reserved holds the whole output from admission: its occupancy counts what is not yet written
    s = summarize(pag, ttft_s=1.0, tpot_s=0.05, replica_gpus=1)
    assert s["requests"]["preemptions"] == int(pag.preemptions.sum()) > 0


def test_metrics_and_attainment() -> None:
    reqs = _random(11)
    run = simulate(reqs, toy_step(), OPTS, 30.0)
    s = summarize(run, ttft_s=0.5, tpot_s=0.05, replica_gpus=1)
    table = requests_table(run)
    done = table.dropna(subset=["done_s"])
    assert len(done) == s["requests"]["served"]
    assert s["ttft_s"]["p99"] == pytest.approx(np.percentile(done["ttft_s"], 99))
    ok = (done["ttft_s"] <= 0.5) & ((done["output_tokens"] <= 1) | (done["tpot_s"] <= 0.05))
    late = table["first_token_s"].isna() & (30.0 - table["arrival_s"] > 0.5)
    settled = table["done_s"].notna() | table["dropped"] | late
    assert s["slo"]["attainment"] == pytest.approx(ok.sum() / settled.sum())
    assert slo_attainment_of(run, None, None) == pytest.approx(
        run.served / (run.served + run.n_dropped)
    )
    lv = levels_table(run, bin_s=1.0)
    assert lv["output_tokens_per_s"].sum() * 1.0 == pytest.approx(done["output_tokens"].sum())


def test_engine_options_checked() -> None:
    with pytest.raises(ValueError, match="kv_cache must be one of reserved, paged"):
        EngineOptions(kv_cache="lru")
    with pytest.raises(ValueError, match=r"max_seqs \(600\) cannot exceed max_batched_tokens"):
        EngineOptions(max_seqs=600, max_batched_tokens=512)
    with pytest.raises(ValueError, match="duration must be a positive"):
        simulate(one(0.0, 1, 1), toy_step(), OPTS, math.nan)


def test_session_cache_hits_shorten_time_to_first_token() -> None:
    rng = np.random.default_rng(9)
    shape = SessionShape(calls=6, tool_latency_s=1.0, tool_output_tokens=200)
    reqs = session_requests(
        rng, shape, rate_per_s=6.0, duration_s=60.0, input_tokens=400, output_tokens=30
    )
    cold = Requests(**{**reqs.__dict__, "cached_tokens": np.zeros_like(reqs.cached_tokens)})
    step = toy_step(kv_tokens=200_000, max_tokens=512)
    warm_run = simulate(reqs, step, OPTS, 60.0)
    cold_run = simulate(cold, step, OPTS, 60.0)
    follow = (reqs.parent >= 0) & np.isfinite(warm_run.first_token_s)
    follow &= np.isfinite(cold_run.first_token_s)
    warm = np.mean((warm_run.first_token_s - warm_run.arrival_s)[follow])
    cold_ttft = np.mean((cold_run.first_token_s - cold_run.arrival_s)[follow])
    assert warm < 0.5 * cold_ttft
