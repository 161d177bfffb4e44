"""Tail latency of a prefill queue: the p99 TTFT the fluid plan checks against its target.

A prompt's time to first token is its wait for a prefill server plus its own prefill. Both
spread: Poisson arrivals queue, and prompt lengths spread (a lognormal clipped at the model's
context window, as the request level draws them, ``sim/serving/workload.py``), with prefill time
``a + b L + c L^2`` (weight GEMMs, then causal attention). The p99 of the sum is not a factor
times the mean prompt's TTFT: at 100k-token prompts the p99 prompt is the 131k context window's,
1.3x the mean in length and ~1.5-1.7x in prefill, before any wait.

What this module gives (units: seconds, tokens; no state):

* :func:`length_grid`: a quadrature of the clipped lognormal prompt length (nodes and weights),
  on which service-time moments and tail probabilities are sums.
* :func:`wait_tail`: the queue's waiting time, for ``c`` identical FCFS servers fed by Poisson
  arrivals at utilisation ``rho`` with service times of mean ``E[S]`` and squared coefficient of
  variation ``C_s^2``. Probability of waiting: Erlang C, ``P_w = C(c, c rho)``. Mean wait:
  Allen-Cunneen, ``W_q = P_w / (c (1 - rho)) x E[S] x (1 + C_s^2) / 2``, which for ``c = 1`` is
  Pollaczek-Khinchine's ``lambda E[S^2] / (2 (1 - rho))`` exactly. Tail: exponential with that
  mean, ``P(W > t) = P_w exp(-t P_w / W_q)`` (Kingman's heavy-traffic law; exact for M/M/c,
  whose conditional wait is exponential).
* :func:`tail_probability` and :func:`quantile`: ``P(W + S(L) > t)`` for the wait independent of
  the request's own length (FCFS), and the ``t`` at which it is 1% (the p99 TTFT).

Used by :mod:`sim.perf.inference` (``_point``) for co-located replicas (the chunked-prefill
stream of a replica is one server, c = 1) and for disaggregated prefill pools (c instances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

__all__ = [
    "LengthGrid",
    "WaitTail",
    "length_grid",
    "length_quantile",
    "quantile",
    "tail_probability",
    "wait_tail",
]

#: Nodes of the underlying standard normal: steps of 0.05 over +-6, and of 0.01 over the tail
#: that decides a p99 (z 1.5 to 3.5; 2.33 is the p99): trapezoid weights on them give E[L] and
#: E[L^2] to 0.1% (the clip at the context window is a kink) and the p99 length to ~0.3%
#: (a node holds ~0.03% of the probability there).
_Z_NODES = np.unique(np.concatenate([np.linspace(-6.0, 6.0, 241), np.linspace(1.5, 3.5, 201)]))


@dataclass(frozen=True)
class LengthGrid:
    """Quadrature nodes ``tokens`` (prompt lengths) and ``weights`` (summing to 1)."""

    tokens: np.ndarray
    weights: np.ndarray

    def mean(self, values: np.ndarray) -> float:
        return float(np.dot(self.weights, values))


@lru_cache(maxsize=256)
def length_grid(mean: float, cv: float, max_len: float) -> LengthGrid:
    """Prompt lengths ``min(X, max_len)``, ``X`` lognormal of ``mean`` and coefficient of
    variation ``cv`` (``cv`` 0: every prompt ``min(mean, max_len)``), as quadrature nodes on
    the underlying normal (``z`` in +-6 at steps of 0.05, trapezoid weights renormalised)."""
    if cv <= 0.0 or mean <= 0.0:
        return LengthGrid(np.array([min(mean, max_len)]), np.array([1.0]))
    s2 = math.log1p(cv * cv)
    s = math.sqrt(s2)
    mu = math.log(mean) - s2 / 2.0
    z = _Z_NODES
    span = np.diff(z)
    w = np.exp(-0.5 * z * z) * (np.concatenate([span, [0.0]]) + np.concatenate([[0.0], span]))
    w /= w.sum()
    tokens = np.minimum(np.exp(mu + s * z), max_len)
    tokens.setflags(write=False)
    w.setflags(write=False)
    return LengthGrid(tokens, w)


def length_quantile(mean: float, cv: float, max_len: float, q: float) -> float:
    """The ``q`` quantile of the clipped lognormal prompt length (:func:`length_grid`)."""
    if cv <= 0.0 or mean <= 0.0:
        return min(mean, max_len)
    s2 = math.log1p(cv * cv)
    mu = math.log(mean) - s2 / 2.0
    return min(math.exp(mu + math.sqrt(s2) * NormalDist().inv_cdf(q)), max_len)


def _erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a`` (< c) Erlangs, by
    the Erlang B recursion ``B_k = a B_{k-1} / (k + a B_{k-1})`` (stable for large ``c``)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True)
class WaitTail:
    """Waiting time of a queue: ``P(W > t) = p_wait exp(-t / theta)`` (``theta``: the mean wait
    of those who wait); ``rho`` the servers' utilisation. ``rho >= 1``: unstable, every wait
    infinite (``p_wait`` 1, ``theta`` inf)."""

    p_wait: float
    theta: float
    rho: float

    @property
    def mean_s(self) -> float:
        return self.p_wait * self.theta


def wait_tail(
    rate_per_s: float, service_mean_s: float, service_sq_mean: float, servers: int
) -> WaitTail:
    """The wait of Poisson arrivals at ``rate_per_s`` before ``servers`` FCFS servers whose
    service times have mean ``service_mean_s`` and second moment ``service_sq_mean`` (module
    docstring: Erlang C, Allen-Cunneen, exponential tail)."""
    c = max(int(servers), 1)
    a = rate_per_s * service_mean_s
    rho = a / c
    if rho >= 1.0:
        return WaitTail(1.0, math.inf, rho)
    if rho <= 0.0:
        return WaitTail(0.0, 0.0, 0.0)
    cs2 = max(service_sq_mean / (service_mean_s * service_mean_s) - 1.0, 0.0)
    p_wait = _erlang_c(c, a)
    wq = p_wait / (c * (1.0 - rho)) * service_mean_s * (1.0 + cs2) / 2.0
    return WaitTail(p_wait, wq / p_wait, rho)


def tail_probability(t: float, grid: LengthGrid, own_s: np.ndarray, wait: WaitTail) -> float:
    """``P(W + S > t)``: the wait independent of the request's own time ``own_s`` (one value per
    node of ``grid``: its prefill, and what follows it before the first token)."""
    if not math.isfinite(wait.theta):
        return 1.0
    gap = t - own_s
    if wait.p_wait <= 0.0 or wait.theta <= 0.0:
        over = np.where(gap < 0.0, 1.0, 0.0)
    else:
        over = np.where(gap < 0.0, 1.0, wait.p_wait * np.exp(-np.maximum(gap, 0.0) / wait.theta))
    return grid.mean(over)


def quantile(grid: LengthGrid, own_s: np.ndarray, wait: WaitTail, q: float = 0.99) -> float:
    """The ``q`` quantile of ``W + S`` (:func:`tail_probability`), by bisection to 1e-6
    relative; inf for an unstable queue."""
    if not math.isfinite(wait.theta):
        return math.inf
    p = 1.0 - q
    lo = 0.0
    hi = float(own_s.max()) + wait.theta * max(math.log(max(wait.p_wait, 1e-300) / p), 0.0) + 1e-9
    while hi - lo > 1e-6 * hi:
        mid = 0.5 * (lo + hi)
        if tail_probability(mid, grid, own_s, wait) > p:
            lo = mid
        else:
            hi = mid
    return hi
