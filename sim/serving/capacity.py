"""The link to the fluid level: capacity per replica at the latency targets, SLO attainment.

The fleet engine serves a service as a fluid: output tokens/s per domain, constant between
events. These functions give it the two numbers it needs from the request level, each computed
once per :class:`~sim.serving.shape.ServiceShape` (and targets) and cached for the process:

* :func:`capacity_at_slo`: the highest Poisson request rate one replica sustains with the p99
  TTFT and the p99 TPOT of its requests within the targets (MLPerf's server-scenario criterion),
  found by bisection on the rate. Each probe simulates ``requests`` requests (common random
  numbers: the same unit-rate draws scaled by the rate, so the curve is smooth in the rate),
  arrivals over ``[0, A]``, the replica run to ``1.2 A + 60 s`` so that the last arrivals can
  finish, and the percentiles taken over the requests that arrived in ``[0.1 A, A]`` (the first
  10% is warm-up), counting any of them not finished as infinitely late.
* :func:`slo_curve` / :meth:`SloCurve.attainment`: the share of requests meeting both targets
  (and :meth:`SloCurve.latency`: p50/p99 TTFT and TPOT) as a function of the request rate per
  replica, tabulated on a grid of rates from 5% to 150% of the
  capacity and interpolated linearly (clamped at the ends). The engine calls it with the load per
  replica of each service in each interval.

Numbers returned per replica and per GPU of the replica (``tp x ep`` GPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.rng import RandomStreams
from sim.serving.shape import ServiceShape
from sim.serving.simulator import ServingRun, simulate

__all__ = ["Capacity", "SloCurve", "capacity_at_slo", "probe", "slo_curve"]

#: Requests simulated per probe: ~1,000 beyond the p99 of each probe; about 0.1 s each.
PROBE_REQUESTS = 20_000
WARMUP_SHARE = 0.1


@dataclass(frozen=True)
class Capacity:
    """Sustainable load of one replica at its targets."""

    requests_per_s: float  # offered Poisson rate
    output_tokens_per_s: float  # generated (visible + reasoning) tokens/s served at that rate
    output_tokens_per_s_per_gpu: float
    ttft_p99_s: float
    tpot_p99_s: float
    limited_by: str  # "ttft", "tpot", or "unreachable" (not even the lowest rate meets them)
    replica_gpus: int


@dataclass(frozen=True)
class Probe:
    rate_per_s: float  # measured arrival rate in the window
    ttft_p99_s: float
    tpot_p99_s: float
    attainment: float
    output_tokens_per_s: float
    ttft_p50_s: float = math.inf
    tpot_p50_s: float = math.inf


def probe(
    shape: ServiceShape,
    rate_per_s: float,
    *,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    requests: int = PROBE_REQUESTS,
    seed: int = 0,
) -> Probe:
    """Run one replica at ``rate_per_s`` and measure p99 TTFT, p99 TPOT and attainment."""
    if not rate_per_s > 0:
        raise ValueError(f"rate must be positive, got {rate_per_s}")
    arrive_s = requests / rate_per_s
    rng = RandomStreams(seed)["serving.capacity"]
    reqs = shape.requests(rng, rate_per_s, arrive_s)
    horizon = 1.2 * arrive_s + 60.0
    run = simulate(reqs, shape.step(), shape.options, horizon, sample_interval_s=horizon)
    return _measure(run, arrive_s, ttft_s, tpot_s)


def _measure(run: ServingRun, arrive_s: float, ttft_s: float | None, tpot_s: float | None) -> Probe:
    a = run.arrival_s
    keep = (a >= WARMUP_SHARE * arrive_s) & (a <= arrive_s)
    n = int(keep.sum())
    f = np.where(np.isnan(run.first_token_s[keep]), np.inf, run.first_token_s[keep])
    d = np.where(np.isnan(run.done_s[keep]), np.inf, run.done_s[keep])
    g = run.output_tokens[keep]
    ttft = f - a[keep]
    with np.errstate(invalid="ignore"):
        tpot = np.where(g > 1, (d - f) / np.maximum(g - 1, 1), 0.0)
    tpot = np.where(np.isinf(d), np.inf, np.nan_to_num(tpot, nan=np.inf))
    if n == 0:
        return Probe(0.0, math.inf, math.inf, math.nan, 0.0)
    ttft_p99 = float(np.percentile(ttft, 99, method="higher"))
    tpot_p99 = float(np.percentile(tpot, 99, method="higher"))
    ok = np.ones(n, dtype=bool)
    if ttft_s is not None:
        ok &= ttft <= ttft_s
    if tpot_s is not None:
        ok &= tpot <= tpot_s
    window = arrive_s * (1.0 - WARMUP_SHARE)
    return Probe(
        rate_per_s=float(n / window),
        ttft_p99_s=ttft_p99,
        tpot_p99_s=tpot_p99,
        attainment=float(ok.mean()),
        output_tokens_per_s=float(g.sum() / window),
        ttft_p50_s=float(np.percentile(ttft, 50, method="higher")),
        tpot_p50_s=float(np.percentile(tpot, 50, method="higher")),
    )


_CAPACITY: dict[tuple[object, ...], Capacity] = {}
_CURVES: dict[tuple[object, ...], SloCurve] = {}


def capacity_at_slo(
    shape: ServiceShape,
    *,
    ttft_s: float | None,
    tpot_s: float | None,
    requests: int = PROBE_REQUESTS,
    seed: int = 0,
    rel_tol: float = 0.01,
) -> Capacity:
    """Highest request rate per replica whose p99 TTFT and p99 TPOT meet the targets (cached).

    Without any target the capacity is the saturation throughput (the rate at which the queue
    stops draining: p99 TTFT within 60 s)."""
    key = (shape.key(), ttft_s, tpot_s, requests, seed, rel_tol)
    got = _CAPACITY.get(key)
    if got is not None:
        return got
    ttft_t = 60.0 if ttft_s is None and tpot_s is None else ttft_s

    def meets(p: Probe) -> bool:
        return (ttft_t is None or p.ttft_p99_s <= ttft_t) and (
            tpot_s is None or p.tpot_p99_s <= tpot_s
        )

    def at(rate: float) -> Probe:
        return probe(shape, rate, ttft_s=ttft_t, tpot_s=tpot_s, requests=requests, seed=seed)

    step = shape.step()
    # upper bound: every iteration a full token budget, each request at least its generation
    budget = shape.options.max_batched_tokens
    hi = 2.0 * budget / step.decode_time(budget, 0.0) / max(shape.generated_tokens, 1.0)
    lo = hi / 1024.0
    p_lo = at(lo)
    if not meets(p_lo):
        cap = Capacity(
            0.0, 0.0, 0.0, p_lo.ttft_p99_s, p_lo.tpot_p99_s, "unreachable", shape.replica_gpus
        )
        _CAPACITY[key] = cap
        return cap
    p_hi = at(hi)
    while meets(p_hi):  # the bound was not high enough
        lo, p_lo = hi, p_hi
        hi *= 4.0
        p_hi = at(hi)
    while hi / lo - 1.0 > rel_tol:
        mid = math.sqrt(lo * hi)
        p = at(mid)
        if meets(p):
            lo, p_lo = mid, p
        else:
            hi, p_hi = mid, p
    limited = "tpot" if tpot_s is not None and p_hi.tpot_p99_s > tpot_s else "ttft"
    gen = shape.generated_tokens
    # tokens/s at the found rate from its own probe (lengths are random; their mean is ~gen)
    tok = p_lo.output_tokens_per_s if p_lo.output_tokens_per_s > 0 else lo * gen
    cap = Capacity(
        requests_per_s=lo,
        output_tokens_per_s=tok,
        output_tokens_per_s_per_gpu=tok / shape.replica_gpus,
        ttft_p99_s=p_lo.ttft_p99_s,
        tpot_p99_s=p_lo.tpot_p99_s,
        limited_by=limited,
        replica_gpus=shape.replica_gpus,
    )
    _CAPACITY[key] = cap
    return cap


@dataclass(frozen=True)
class SloCurve:
    """SLO attainment and latency percentiles against request rate per replica (see the module
    docstring). ``latencies`` holds, per grid rate, the probe's p50 and p99 TTFT and TPOT
    (seconds; infinite where requests were still unfinished at the probe's end)."""

    rates_per_s: np.ndarray
    attainment_values: np.ndarray
    capacity: Capacity
    latencies: dict[str, np.ndarray] = field(default_factory=dict)

    def attainment(self, rate_per_s: float | np.ndarray) -> float | np.ndarray:
        """Share of requests meeting both targets at this rate per replica (vectorised)."""
        out = np.interp(rate_per_s, self.rates_per_s, self.attainment_values)
        return float(out) if np.ndim(out) == 0 else out

    def latency(self, rate_per_s: float | np.ndarray) -> dict[str, np.ndarray]:
        """p50/p99 TTFT and TPOT at these rates per replica: the values of the nearest grid rate
        at or above each (a pessimistic step; the last grid rate beyond the grid)."""
        k = np.searchsorted(self.rates_per_s, np.asarray(rate_per_s, dtype=np.float64), "left")
        k = np.minimum(k, self.rates_per_s.shape[0] - 1)
        return {name: values[k] for name, values in self.latencies.items()}

    @property
    def loads(self) -> np.ndarray:
        """The grid as shares of the capacity at the targets (demand / capacity), for the fluid
        engine: ``np.interp(demand / capacity, curve.loads, curve.attainment_values, right=0)``
        is the attainment of a service whose held replicas face ``demand``. A replica slowed by a
        factor ``f`` (a throttle) is taken to behave as a full-clock one at ``1 / f`` the load."""
        c = self.capacity.requests_per_s
        return self.rates_per_s / c if c > 0 else self.rates_per_s


#: Rates of the attainment grid, as shares of the capacity at the targets.
CURVE_LOADS = (0.05, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35, 1.5)


def slo_curve(
    shape: ServiceShape,
    *,
    ttft_s: float | None,
    tpot_s: float | None,
    requests: int = PROBE_REQUESTS,
    seed: int = 0,
) -> SloCurve:
    """SLO attainment of ``shape`` against load per replica (cached per shape and targets)."""
    key = (shape.key(), ttft_s, tpot_s, requests, seed)
    got = _CURVES.get(key)
    if got is not None:
        return got
    cap = capacity_at_slo(shape, ttft_s=ttft_s, tpot_s=tpot_s, requests=requests, seed=seed)
    if cap.requests_per_s <= 0:
        inf = np.array([math.inf, math.inf])
        lat = {k: inf for k in ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s")}
        curve = SloCurve(np.array([0.0, 1.0]), np.array([0.0, 0.0]), cap, lat)
    else:
        rates = np.array([cap.requests_per_s * x for x in CURVE_LOADS])
        probes = [
            probe(shape, r, ttft_s=ttft_s, tpot_s=tpot_s, requests=requests, seed=seed)
            for r in rates
        ]
        att = np.array([p.attainment for p in probes])
        lat = {
            k: np.array([getattr(p, k) for p in probes[:1] + probes])
            for k in ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s")
        }
        # below the lowest probed rate the replica is as good as at that rate
        curve = SloCurve(np.concatenate([[0.0], rates]), np.concatenate([[att[0]], att]), cap, lat)
    _CURVES[key] = curve
    return curve
