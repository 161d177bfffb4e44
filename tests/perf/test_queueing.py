"""The prefill queue's tail latency (sim/perf/queueing.py): closed forms where queueing theory
has them, and the approximation against simulated queues where it has not."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from sim.perf import queueing
from sim.perf.inference import prompt_moments


def test_erlang_c_and_pollaczek_khinchine() -> None:
    # M/M/1: an arrival waits with probability rho
    assert queueing._erlang_c(1, 0.7) == pytest.approx(0.7)
    # M/M/2 at a = 1 Erlang: C = 1/3 (textbook value)
    assert queueing._erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    # M/G/1: mean wait is Pollaczek-Khinchine's lambda E[S^2] / (2 (1 - rho))
    lam, s1, s2 = 0.8, 1.0, 3.0
    w = queueing.wait_tail(lam, s1, s2, 1)
    assert w.mean_s == pytest.approx(lam * s2 / (2 * (1 - lam * s1)))
    # M/M/c: the conditional wait is exponential of rate c mu - lambda
    mm = queueing.wait_tail(3.0, 1.0, 2.0, 4)
    assert mm.theta == pytest.approx(1.0 / (4 - 3.0))
    # unstable and idle queues
    assert math.isinf(queueing.wait_tail(1.0, 1.0, 1.0, 1).theta)
    assert queueing.wait_tail(0.0, 1.0, 1.0, 3).mean_s == 0.0


def test_length_grid_matches_the_closed_form_moments() -> None:
    """The quadrature of the clipped lognormal gives prompt_moments' E[L] and E[L^2] (the clip
    at the 131k context binds for 22% of 100k prompts at the Azure spread)."""
    for mean in (1_000.0, 32_000.0, 100_000.0):
        g = queueing.length_grid(mean, 0.53, 131_071.0)
        m1, m2 = prompt_moments(mean, 0.53, 131_071.0)
        assert g.weights.sum() == pytest.approx(1.0)
        assert g.mean(g.tokens) / mean == pytest.approx(m1, rel=1e-3)
        assert g.mean(g.tokens**2) / mean**2 == pytest.approx(m2, rel=2e-3)
    assert queueing.length_quantile(100_000.0, 0.53, 131_071.0, 0.99) == 131_071.0
    assert queueing.length_quantile(8_000.0, 0.53, 131_071.0, 0.99) == pytest.approx(
        8_000 * math.exp(-math.log1p(0.53**2) / 2 + math.sqrt(math.log1p(0.53**2)) * 2.3263),
        rel=1e-4,
    )


def test_without_waiting_the_p99_is_the_p99_prompts() -> None:
    g = queueing.length_grid(8_000.0, 0.53, 131_071.0)
    own = 1e-3 + 2e-6 * g.tokens + 1e-11 * g.tokens**2
    idle = queueing.wait_tail(0.0, 1.0, 1.0, 1)
    l99 = queueing.length_quantile(8_000.0, 0.53, 131_071.0, 0.99)
    assert queueing.quantile(g, own, idle) == pytest.approx(
        1e-3 + 2e-6 * l99 + 1e-11 * l99**2, rel=0.01
    )


def _simulated_p99(lengths: np.ndarray, gaps: np.ndarray, own: np.ndarray, servers: int) -> float:
    """p99 of wait + own time of FCFS servers (Kiefer-Wolfowitz: a heap of free times)."""
    free = [0.0] * servers
    t = 0.0
    total = np.empty(lengths.size)
    for i, (gap, s) in enumerate(zip(gaps.tolist(), own.tolist(), strict=True)):
        t += gap
        start = max(t, free[0])
        heapq.heapreplace(free, start + s)
        total[i] = start - t + s
    return float(np.quantile(total[lengths.size // 10 :], 0.99))


@pytest.mark.parametrize(("servers", "rho"), [(1, 0.5), (1, 0.8), (4, 0.9), (14, 0.9)])
def test_p99_against_simulated_queues(servers: int, rho: float) -> None:
    """Poisson arrivals, prefill time a + b L + c L^2 over the Azure spread of 32k prompts
    clipped at 131k (heavy tailed: C_s^2 ~ 1): the p99 of wait + prefill within 10% of a
    simulation of 200,000 requests (Erlang C / Allen-Cunneen / exponential tail)."""
    rng = np.random.default_rng(1)
    n, mean, cv, cap = 200_000, 32_000.0, 0.53, 131_071.0
    s2 = math.log1p(cv * cv)
    lengths = np.minimum(rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), n), cap)

    def prefill(x: np.ndarray) -> np.ndarray:
        return 0.01 + 4e-6 * x + 2e-11 * x * x

    g = queueing.length_grid(mean, cv, cap)
    es = g.mean(prefill(g.tokens))
    rate = rho * servers / es
    sim = _simulated_p99(lengths, rng.exponential(1 / rate, n), prefill(lengths), servers)
    wait = queueing.wait_tail(rate, es, g.mean(prefill(g.tokens) ** 2), servers)
    assert queueing.quantile(g, prefill(g.tokens), wait) == pytest.approx(sim, rel=0.10)
