"""The link to the fluid level: capacity per replica at the latency targets, SLO attainment.

The fleet engine serves a service as a fluid: output tokens/s per domain, constant between
events. These functions give it the two numbers it needs from the request level, each computed
once per :class:`~sim.serving.shape.ServiceShape` (and targets) and cached for the process:

* :func:`capacity_at_slo`: the highest Poisson request rate one replica sustains with the p99
  TTFT and the p99 TPOT of its requests within the targets (MLPerf's server-scenario criterion)
  in *each* of :data:`CAPACITY_DRAWS` independent arrival draws, found by bisection on the rate.
  Each probe simulates arrivals over ``[0, A]`` (common random numbers: the same unit-rate draws
  scaled by the rate, so the curve is smooth in the rate), the replica run to ``1.2 A + 60 s``
  so that the last arrivals can finish, and the percentiles taken over the requests that arrived
  in ``[0.1 A, A]`` (the first 10% is warm-up), counting any of them not finished as infinitely
  late. ``A`` is long enough for ``requests`` requests and at least :data:`MIN_PROBE_SPAN_S`
  (bounded by :data:`MAX_PROBE_REQUESTS`): near saturation a replica's queue builds slowly, so a
  short probe from an empty replica finds a rate at which the queue has not built up *yet*, not
  one it sustains (see the constant). Why several draws: the knee is a cliff (a few percent of
  load from every request on time to none), and where one hour of arrivals meets the p99 there
  depends on the draw by about 3%; the highest rate one draw meets is the luckiest of that
  spread, and the same load with other arrivals builds a queue (see :data:`CAPACITY_DRAWS`).
* :func:`slo_curve` / :meth:`SloCurve.attainment`: the share of requests meeting both targets
  (and :meth:`SloCurve.latency`: p50/p99 TTFT and TPOT) as a function of the request rate per
  replica, tabulated on a grid of rates from 5% to 150% of the capacity and interpolated
  linearly (clamped at the ends). Each grid rate is the mean attainment (the median latencies)
  of :data:`CURVE_DRAWS` draws *other than* those that chose the capacity: at the capacity
  those draws meet the targets by construction, an estimate biased upwards (the winner's curse),
  while the engine needs what an arbitrary interval of arrivals gets. The engine calls it with
  the load per replica of each service in each interval.
* :func:`attainment_table`: the fleet's table (at loads of the *fluid* capacity, which the
  autoscaler plans on, so no capacity search is run for it): at each load draw ``seed``, and
  where that leaves the load open the other :data:`TABLE_DRAWS` - 1 draws of the search too,
  their mean attainment (see :data:`TABLE_SETTLED`); the row made to fall with load.

Numbers returned per replica and per GPU of the replica (``tp x ep`` GPUs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.rng import RandomStreams
from sim.serving.shape import ServiceShape
from sim.serving.simulator import ServingRun

__all__ = [
    "CAPACITY_DRAWS",
    "CURVE_DRAWS",
    "FLEET_LOADS",
    "LATENCY_NAMES",
    "TABLE_DRAWS",
    "TABLE_SETTLED",
    "AttainmentTable",
    "Capacity",
    "SloCurve",
    "attainment_at",
    "attainment_table",
    "cache_dir",
    "capacity_at_slo",
    "latency_at",
    "probe",
    "probe_draws",
    "probe_span_s",
    "slo_curve",
    "table_probes",
]

#: Requests simulated per probe at least: ~1,000 beyond the p99 of each probe; about 0.1 s each.
PROBE_REQUESTS = 20_000
#: Arrivals a probe spans at least (s). Near the saturation point the queue of a replica is a
#: slow random walk: it takes many turnovers of the running batch to build, and a probe that
#: starts empty and ends before then finds a rate it cannot sustain. Measured on Llama 2 70B FP8,
#: H100 TP2, 294/274 tokens, 2 s / 200 ms (tests/serving/test_capacity.py), the capacity found
#: with probe seeds 0 / 1 / 2, as a share of the one from 330 s (8,000 requests) of arrivals:
#: 0.997 / 0.958 / 0.966 with 1,800 s, 0.966 / 0.972 / 0.975 with 3,600 s, 0.980 / 0.975 /
#: 0.961 with 7,200 s. An hour is where the spread has shrunk to ~1% and longer does not shrink
#: it: the knee is that sharp. Six times the 600 s minimum of an MLPerf server run
#: (network-and-serving.md B2 [N32]).
MIN_PROBE_SPAN_S = 3600.0
#: The span is cut short where it would need more requests than this (a replica serving over
#: ~28 requests/s; about 0.35 CPU-s a probe), so the cost of a probe stays bounded. What the
#: queue needs is turnovers of the running batch rather than seconds: an hour is ~180 turnovers
#: of the shape above (~460 sequences running), 100,000 requests ~98 turnovers of the largest
#: batch a replica runs by default (``serving.max_seqs`` 1,024), which is where the 1,800 s
#: spans above still scattered by 4%.
MAX_PROBE_REQUESTS = 100_000
WARMUP_SHARE = 0.1
#: Independent arrival draws (probe seeds ``seed .. seed + CAPACITY_DRAWS - 1``) that must each
#: meet the p99 targets at the capacity: the capacity is the lowest of the draws' capacities,
#: about the 20th percentile of the capacity over arrival draws, so that a replica run at it
#: meets its targets for most draws instead of for one. Measured on the shape above (capacity
#: with draw 0 alone: 23.34 requests/s), the attainment of an hour's probe at 0.98 / 1.00 / 1.02
#: times that rate over draws 0-9: all 1.000 but one 0.962 / from 0.762 to 0.999 (median 0.96;
#: draw 0 is the only one of ten at 0.99) / from 0.055 to 0.838.
CAPACITY_DRAWS = 4
#: Further draws whose mean attainment each grid rate of :func:`slo_curve` takes (independent of
#: those of the capacity; two halve the variance of one at a third of the cost of four).
CURVE_DRAWS = 2


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
    """Run one replica at ``rate_per_s`` and measure p99 TTFT, p99 TPOT and attainment.

    Arrivals span ``requests / rate_per_s`` and at least :data:`MIN_PROBE_SPAN_S`, unless that
    takes more than :data:`MAX_PROBE_REQUESTS` (then ``max(requests, MAX_PROBE_REQUESTS)``)."""
    if not rate_per_s > 0:
        raise ValueError(f"rate must be positive, got {rate_per_s}")
    arrive_s = probe_span_s(rate_per_s, requests)
    rng = RandomStreams(seed)["serving.capacity"]
    reqs = shape.requests(rng, rate_per_s, arrive_s)
    horizon = 1.2 * arrive_s + 60.0
    run = shape.run(reqs, horizon, sample_interval_s=horizon)
    return _measure(run, arrive_s, ttft_s, tpot_s)


def probe_span_s(rate_per_s: float, requests: int = PROBE_REQUESTS) -> float:
    """Seconds of arrivals a probe at ``rate_per_s`` simulates (see :func:`probe`)."""
    span = max(requests / rate_per_s, MIN_PROBE_SPAN_S)
    return min(span, max(requests, MAX_PROBE_REQUESTS) / rate_per_s)


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
    draws: int = CAPACITY_DRAWS,
) -> Capacity:
    """Highest request rate per replica whose p99 TTFT and p99 TPOT meet the targets in each of
    ``draws`` independent arrival draws (probe seeds ``seed .. seed + draws - 1``; cached).

    Without any target the capacity is the saturation throughput (the rate at which the queue
    stops draining: p99 TTFT within 60 s). The reported p99s are the worst of the draws at the
    capacity, the tokens/s their mean."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    key = (shape.key(), ttft_s, tpot_s, requests, seed, rel_tol, draws)
    got = _CAPACITY.get(key)
    if got is not None:
        return got
    ttft_t = 60.0 if ttft_s is None and tpot_s is None else ttft_s

    def meets(p: Probe) -> bool:
        return (ttft_t is None or p.ttft_p99_s <= ttft_t) and (
            tpot_s is None or p.tpot_p99_s <= tpot_s
        )

    order = list(range(seed, seed + draws))

    def at(rate: float) -> tuple[bool, list[Probe]]:
        """Whether every draw meets the targets at ``rate``, and the probes run. The draw that
        failed last is tried first (a rate above the capacity usually costs one probe); the
        answer does not depend on the order."""
        got: list[Probe] = []
        for k, s in enumerate(order):
            p = probe(shape, rate, ttft_s=ttft_t, tpot_s=tpot_s, requests=requests, seed=s)
            got.append(p)
            if not meets(p):
                order.insert(0, order.pop(k))
                return False, got
        return True, got

    step = shape.step()
    # upper bound: every iteration a full token budget, each request at least its generation
    budget = shape.options.max_batched_tokens
    hi = 2.0 * budget / step.decode_time(budget, 0.0) / max(shape.generated_tokens, 1.0)
    lo = hi / 1024.0
    ok_lo, p_lo = at(lo)
    if not ok_lo:
        worst = p_lo[-1]
        cap = Capacity(
            0.0, 0.0, 0.0, worst.ttft_p99_s, worst.tpot_p99_s, "unreachable", shape.replica_gpus
        )
        _CAPACITY[key] = cap
        return cap
    ok_hi, p_hi = at(hi)
    while ok_hi:  # the bound was not high enough
        lo, p_lo = hi, p_hi
        hi *= 4.0
        ok_hi, p_hi = at(hi)
    while hi / lo - 1.0 > rel_tol:
        mid = math.sqrt(lo * hi)
        ok, p = at(mid)
        if ok:
            lo, p_lo = mid, p
        else:
            hi, p_hi = mid, p
    failed = p_hi[-1]  # the draw that missed just above the capacity
    limited = "tpot" if tpot_s is not None and failed.tpot_p99_s > tpot_s else "ttft"
    gen = shape.generated_tokens
    # tokens/s at the found rate from its own probes (lengths are random; their mean is ~gen)
    tok = float(np.mean([p.output_tokens_per_s for p in p_lo]))
    tok = tok if tok > 0 else lo * gen
    cap = Capacity(
        requests_per_s=lo,
        output_tokens_per_s=tok,
        output_tokens_per_s_per_gpu=tok / shape.replica_gpus,
        ttft_p99_s=max(p.ttft_p99_s for p in p_lo),
        tpot_p99_s=max(p.tpot_p99_s for p in p_lo),
        limited_by=limited,
        replica_gpus=shape.replica_gpus,
    )
    _CAPACITY[key] = cap
    return cap


def probe_draws(
    shape: ServiceShape,
    rate_per_s: float,
    seeds: range,
    *,
    ttft_s: float | None,
    tpot_s: float | None,
    requests: int = PROBE_REQUESTS,
) -> Probe:
    """:func:`probe` over several independent arrival draws: the mean attainment, rate and
    tokens/s, and the median of each latency percentile (a percentile that is infinite in more
    than half the draws is infinite)."""
    return _combine(
        [
            probe(shape, rate_per_s, ttft_s=ttft_s, tpot_s=tpot_s, requests=requests, seed=s)
            for s in seeds
        ]
    )


def _combine(ps: list[Probe]) -> Probe:
    """Probes of one rate in several draws as one (:func:`probe_draws`)."""
    if len(ps) == 1:
        return ps[0]

    def med(name: str) -> float:
        return float(np.median([getattr(p, name) for p in ps]))

    att = [p.attainment for p in ps if not math.isnan(p.attainment)]
    return Probe(
        rate_per_s=float(np.mean([p.rate_per_s for p in ps])),
        ttft_p99_s=med("ttft_p99_s"),
        tpot_p99_s=med("tpot_p99_s"),
        attainment=float(np.mean(att)) if att else math.nan,
        output_tokens_per_s=float(np.mean([p.output_tokens_per_s for p in ps])),
        ttft_p50_s=med("ttft_p50_s"),
        tpot_p50_s=med("tpot_p50_s"),
    )


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
    draws: int = CAPACITY_DRAWS,
    curve_draws: int = CURVE_DRAWS,
) -> SloCurve:
    """SLO attainment of ``shape`` against load per replica (cached per shape and targets).

    The capacity from :func:`capacity_at_slo` (draws ``seed .. seed + draws - 1``); each grid
    rate the mean of the next ``curve_draws`` draws (:func:`probe_draws`), independent of
    those."""
    key = (shape.key(), ttft_s, tpot_s, requests, seed, draws, curve_draws)
    got = _CURVES.get(key)
    if got is not None:
        return got
    cap = capacity_at_slo(
        shape, ttft_s=ttft_s, tpot_s=tpot_s, requests=requests, seed=seed, draws=draws
    )
    if cap.requests_per_s <= 0:
        inf = np.array([math.inf, math.inf])
        lat = {k: inf for k in ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s")}
        curve = SloCurve(np.array([0.0, 1.0]), np.array([0.0, 0.0]), cap, lat)
    else:
        rates = np.array([cap.requests_per_s * x for x in CURVE_LOADS])
        others = range(seed + draws, seed + draws + curve_draws)
        probes = [
            probe_draws(shape, r, others, ttft_s=ttft_s, tpot_s=tpot_s, requests=requests)
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


# --------------------------------------------------------------------------- the fleet's table

#: Loads of the fleet engine's attainment table, as shares of the fluid capacity per replica
#: (the performance model's throughput at the latency targets, which the autoscaler plans on):
#: from a quiet service to half again more than it is planned for.
#: The lowest load is nearly an isolated request's: below it the table holds its value (a
#: replica the fluid level thinks quiet can still miss targets when the engine options, such as
#: a small ``serving.max_seqs``, make it slower than the fluid capacity assumes).
FLEET_LOADS = (0.02, 0.1, 0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5)
#: Arrival draws (probe seeds ``seed .. seed + TABLE_DRAWS - 1``: the draws of the capacity
#: search, :data:`CAPACITY_DRAWS`) whose mean attainment (median latency percentiles) a row of
#: the fleet's table takes where one draw leaves it open. Around the knee one hour of arrivals
#: is luck: single draws 0-3 at 1.15x the fluid capacity ranged over 0.28-0.36, 0.02-0.07,
#: 0.24-0.41 and 0.33-0.55 on the services of ``scenarios/smoke.yaml`` and
#: ``scenarios/default_gigawatt_gb200.yaml`` (before the fluid KV budget took the lengths in
#: flight, which moved their capacities); the mean of four halves that spread.
TABLE_DRAWS = CAPACITY_DRAWS
#: A load at which the first draw has at least ``1 - TABLE_SETTLED`` of its requests on time,
#: or at most ``TABLE_SETTLED``, is settled by that draw alone: the other draws are not run
#: there (each costs as much as the first). Measured on the services above
#: (``benchmarks/slo_table.py --all-draws``, every draw at every load): at every load up to 1,
#: the loads the fleet reads (what the replicas serve over the capacity they hold), the table
#: is within 0.00011 of the mean of all four draws, far inside the 0.01 margin that
#: :func:`load_at_slo` reads; past the knee a first draw with almost none on time does not
#: settle the others (the smoke tier at 1.3x: 0.0000 against a mean of 0.0006; DeepSeek-R1 on
#: an earlier model, 0.0009 against 0.0215), rows that only extend the table beyond what the
#: fleet reads. The extra draws go to the two or three loads around the knee: 1.6x the cost of
#: one draw, where every draw at every load costs 4.0x.
TABLE_SETTLED = 1e-3


@dataclass(frozen=True)
class AttainmentTable:
    """SLO attainment of one replica against its load, for the fleet engine.

    ``loads`` are shares of ``rate_per_s`` (the fluid level's capacity per replica, requests/s);
    ``attainment`` the share of requests meeting both targets at each; the p50 and p99 TTFT and
    TPOT of the probes there (seconds, infinite where requests were unfinished)."""

    rate_per_s: float
    loads: tuple[float, ...]
    attainment: tuple[float, ...]
    ttft_p99_s: tuple[float, ...]
    tpot_p99_s: tuple[float, ...]
    ttft_p50_s: tuple[float, ...]
    tpot_p50_s: tuple[float, ...]

    def latencies(self) -> dict[str, np.ndarray]:
        """The four latency rows by name (``ttft_p50_s``, ...), as arrays over ``loads``."""
        return {k: np.asarray(getattr(self, k), dtype=np.float64) for k in LATENCY_NAMES}


#: The latency percentiles a table carries (and the fleet writes per service and bin).
LATENCY_NAMES = ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s")


#: the latency rows in the order of the table's fields
_STORED = ("ttft_p99_s", "tpot_p99_s", "ttft_p50_s", "tpot_p50_s")
_TABLES: dict[str, AttainmentTable] = {}
_FINGERPRINT: list[str] = []


def _fingerprint() -> str:
    """A digest of the code and data the table depends on: the serving simulator, the
    performance model and the catalogs (a cached table is never used after any of them
    changed)."""
    if not _FINGERPRINT:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        for pattern in ("serving/*.py", "perf/*.py", "catalog/*.yaml"):
            for f in sorted(root.glob(pattern)):
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _FINGERPRINT.append(h.hexdigest())
    return _FINGERPRINT[0]


def cache_dir() -> Path | None:
    """Where tables are kept between runs: ``$AIFACTORY_CACHE`` (``off`` for none), else
    ``~/.cache/aifactory``."""
    env = os.environ.get("AIFACTORY_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "none", "0") else Path(env)
    return Path.home() / ".cache" / "aifactory"


def attainment_table(
    shape: ServiceShape,
    *,
    ttft_s: float | None,
    tpot_s: float | None,
    rate_per_s: float,
    loads: tuple[float, ...] = FLEET_LOADS,
    requests: int = PROBE_REQUESTS,
    seed: int = 0,
    draws: int = TABLE_DRAWS,
    settled: float | None = TABLE_SETTLED,
) -> AttainmentTable:
    """Probe one replica of ``shape`` at ``loads`` x ``rate_per_s`` (cached in the process and,
    by a digest of the inputs and of the code, on disk: the same inputs give the same table
    bit for bit whether computed or read).

    Each load is probed with draw ``seed``; where that leaves it open (its attainment between
    ``settled`` and ``1 - settled``; everywhere for ``settled=None``) also with draws
    ``seed + 1 .. seed + draws - 1``, and the row holds their mean attainment and median
    latency percentiles (:data:`TABLE_DRAWS`, :data:`TABLE_SETTLED`; :func:`table_probes`).
    ``draws=1`` is the table of one draw. The attainment row is then made to fall with load
    (the running minimum from the lightest load): the draws' noise can lift a load above a
    lighter one, by up to ``settled`` between two settled loads."""
    if not rate_per_s > 0:
        raise ValueError(f"rate must be positive, got {rate_per_s}")
    ident = repr(
        (
            shape.key(),
            ttft_s,
            tpot_s,
            float(rate_per_s).hex(),
            loads,
            requests,
            seed,
            draws,
            settled,
        )
    )
    key = hashlib.sha256((ident + _fingerprint()).encode()).hexdigest()
    got = _TABLES.get(key)
    if got is not None:
        return got
    where = cache_dir()
    path = where / "slo" / f"{key}.json" if where is not None else None
    if path is not None and path.is_file():
        try:
            d = json.loads(path.read_text())
            got = AttainmentTable(
                float.fromhex(d["rate"]),
                tuple(loads),
                tuple(float.fromhex(x) for x in d["attainment"]),
                *(tuple(float.fromhex(x) for x in d[k]) for k in _STORED),
            )
        except (OSError, ValueError, KeyError, TypeError):
            got = None  # a damaged entry is computed again
        if got is not None:
            _TABLES[key] = got
            return got
    probes = table_probes(
        shape,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        rate_per_s=rate_per_s,
        loads=loads,
        requests=requests,
        seed=seed,
        draws=draws,
        settled=settled,
    )
    # A replica with more load meets no more of its targets; a row that rises with load is the
    # noise of the draws (at a settled load: up to TABLE_SETTLED), taken at the lower value
    att = np.minimum.accumulate([0.0 if math.isnan(p.attainment) else p.attainment for p in probes])
    table = AttainmentTable(
        float(rate_per_s),
        tuple(loads),
        tuple(float(a) for a in att),
        *(tuple(getattr(p, k) for p in probes) for k in _STORED),
    )
    _TABLES[key] = table
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "rate": table.rate_per_s.hex(),
                        "attainment": [x.hex() for x in table.attainment],
                        **{k: [x.hex() for x in getattr(table, k)] for k in _STORED},
                    }
                )
            )
            tmp.replace(path)
        except OSError:
            pass  # a cache that cannot be written only costs the next run the probes
    return table


def table_probes(
    shape: ServiceShape,
    *,
    ttft_s: float | None,
    tpot_s: float | None,
    rate_per_s: float,
    loads: tuple[float, ...] = FLEET_LOADS,
    requests: int = PROBE_REQUESTS,
    seed: int = 0,
    draws: int = TABLE_DRAWS,
    settled: float | None = TABLE_SETTLED,
) -> list[Probe]:
    """The probes of :func:`attainment_table`, one per load (several draws combined where the
    first leaves the load open), before its rows are made to fall with load; not cached."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    out = []
    for x in loads:

        def at(s: int, x: float = x) -> Probe:
            return probe(
                shape, rate_per_s * x, ttft_s=ttft_s, tpot_s=tpot_s, requests=requests, seed=s
            )

        first = at(seed)
        a = 0.0 if math.isnan(first.attainment) else first.attainment
        if settled is not None and (a <= settled or a >= 1.0 - settled):
            out.append(first)
        else:
            out.append(_combine([first, *(at(s) for s in range(seed + 1, seed + draws))]))
    return out


def latency_at(table_loads: np.ndarray, row: np.ndarray, load: np.ndarray) -> np.ndarray:
    """A latency percentile at ``load`` from a table row: the value at the nearest load of the
    table at or above it (a pessimistic step, as :meth:`SloCurve.latency`), and infinite beyond
    the last (the queue grows without bound there)."""
    k = np.searchsorted(table_loads, load, "left")
    ext = np.concatenate([row, [np.inf]])
    return ext[np.minimum(k, row.shape[0])]


#: the share of requests that meeting p99 latency targets means: a load at which at least this
#: share meets both targets is within the replica's capacity at its SLO
P99_ATTAINMENT = 0.99


def load_at_slo(table_loads: np.ndarray, table_att: np.ndarray) -> float:
    """The highest load (share of the fluid capacity) at which the table's attainment is still
    :data:`P99_ATTAINMENT`, linear between its loads (attainment falls with load): what one
    replica sustains at its targets by the request level, in units of the capacity the fluid
    level plans on, at most 1 (the fleet serves no more than the capacity it plans on, whatever
    the request level could take beyond it). 0 when even the lightest load misses."""
    loads = np.asarray(table_loads, dtype=float)
    att = np.asarray(table_att, dtype=float)
    if att[0] < P99_ATTAINMENT:
        return 0.0
    below = np.nonzero(att < P99_ATTAINMENT)[0]
    if below.size == 0:
        return min(float(loads[-1]), 1.0)
    k = int(below[0])  # the first load that misses; the one before it holds
    a0, a1, l0, l1 = att[k - 1], att[k], loads[k - 1], loads[k]
    return min(float(l0 + (a0 - P99_ATTAINMENT) / (a0 - a1) * (l1 - l0)), 1.0)


def attainment_at(table_loads: np.ndarray, table_att: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Attainment at ``load`` (shares of the fluid capacity) from a table: linear between its
    loads, the first value below them; beyond the last, the share of requests served falls as
    capacity over demand, so the attainment there is ``a_last x load_last / load``."""
    out = np.interp(load, table_loads, table_att)
    over = load > table_loads[-1]
    if over.any():
        out = np.where(over, table_att[-1] * table_loads[-1] / np.maximum(load, 1e-300), out)
    return out
