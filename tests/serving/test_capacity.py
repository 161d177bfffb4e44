"""The link to the fluid level: capacity at the SLO, attainment against load, and agreement of a
fluid estimate built from them with the request-level simulation of the same load."""

from __future__ import annotations

import numpy as np
import pytest

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.serving.capacity import CAPACITY_DRAWS, capacity_at_slo, probe, slo_curve
from sim.serving.metrics import slo_attainment_of
from sim.serving.shape import ServiceShape
from sim.serving.simulator import EngineOptions, simulate
from sim.serving.workload import Requests

TTFT, TPOT = 2.0, 0.2
#: requests per probe in these tests at least (the library default is 20,000; every probe spans
#: at least MIN_PROBE_SPAN_S of arrivals, ~81,000 requests at this shape's capacity); as in
#: test_validation_serving.py, whose H100 capacity is this one (computed once per process)
N = 10_000


def mlperf_shape(hw: str = "h100_sxm", tp: int = 2, kv: str = "reserved") -> ServiceShape:
    return ServiceShape(
        model=get_model("llama2-70b"),
        hw=catalog()[hw],
        precision="fp8",
        tp=tp,
        input_tokens=294,
        output_tokens=274,
        options=EngineOptions(kv_cache=kv),
    )


def test_capacity_meets_targets_and_just_above_does_not() -> None:
    shape = mlperf_shape()
    cap = capacity_at_slo(shape, ttft_s=TTFT, tpot_s=TPOT, requests=N)
    assert cap.limited_by in ("ttft", "tpot")
    # the worst of the draws meets both targets at the capacity
    assert cap.ttft_p99_s <= TTFT and cap.tpot_p99_s <= TPOT
    # and 3% above it some draw misses one
    above = [
        probe(shape, cap.requests_per_s * 1.03, ttft_s=TTFT, tpot_s=TPOT, requests=N, seed=s)
        for s in range(CAPACITY_DRAWS)
    ]
    assert any(p.ttft_p99_s > TTFT or p.tpot_p99_s > TPOT for p in above)
    # cached: the same object for the same shape and targets
    assert capacity_at_slo(shape, ttft_s=TTFT, tpot_s=TPOT, requests=N) is cap


def test_tighter_targets_give_less_capacity() -> None:
    shape = mlperf_shape()
    loose = capacity_at_slo(shape, ttft_s=TTFT, tpot_s=TPOT, requests=N)
    # MLPerf "interactive" (B2), from one draw (cheaper): its capacity is at least that of
    # several draws, so it being lower still says the tighter targets give less
    tight = capacity_at_slo(shape, ttft_s=0.45, tpot_s=0.040, requests=N, draws=1)
    assert 0 < tight.requests_per_s < loose.requests_per_s


def _piecewise(shape: ServiceShape, rates: np.ndarray, seg_s: float, seed: int) -> Requests:
    rng = np.random.default_rng(seed)
    parts = [shape.requests(rng, float(r), seg_s) for r in rates]
    return Requests.independent(
        np.concatenate([p.arrival_s + k * seg_s for k, p in enumerate(parts)]),
        np.concatenate([p.prompt_tokens for p in parts]),
        np.concatenate([p.output_tokens for p in parts]),
    )


#: request-level arrival draws of the agreement test (none of them a draw of the capacity search
#: or of the curve, seeds 0-7)
AGREEMENT_SEEDS = (9, 10, 11, 12)


@pytest.mark.parametrize("loads", [(0.3, 0.6, 0.9, 0.6, 0.3), (0.6, 0.8, 0.95, 1.0, 0.8)])
def test_fluid_estimate_agrees_with_request_level(loads: tuple[float, ...]) -> None:
    """A fluid replica whose capacity and attainment come from the request-level curve, served
    a load that changes every 15 minutes, against request-level runs of the same load with
    several arrival draws: served tokens and SLO attainment within 10% for each, up to an
    interval at 100% of the capacity. The capacity holds its targets in several draws
    (CAPACITY_DRAWS), so the agreement is not the luck of one draw: with the capacity of a
    single draw, seed 9 of the request level was 15% below the fluid attainment (docs/serving.md).
    (With an interval above capacity the fluid level, which forgets the queue at each interval,
    is optimistic: docs/serving.md.)"""
    shape = mlperf_shape()
    curve = slo_curve(shape, ttft_s=TTFT, tpot_s=TPOT, requests=N)
    cap = curve.capacity
    rates = np.array(loads) * cap.requests_per_s
    seg = 900.0
    fluid_served = float(np.minimum(rates, cap.requests_per_s).sum() * seg * shape.generated_tokens)
    fluid_att = float((rates * curve.attainment(rates)).sum() / rates.sum())
    for seed in AGREEMENT_SEEDS:
        run = simulate(
            _piecewise(shape, rates, seg, seed=seed), shape.step(), shape.options, seg * len(loads)
        )
        done = np.isfinite(run.done_s)
        served = float(run.output_tokens[done].sum())
        assert served == pytest.approx(fluid_served, rel=0.10), seed
        assert slo_attainment_of(run, TTFT, TPOT) == pytest.approx(fluid_att, rel=0.10), seed
        assert run.served + run.n_dropped + run.queued == run.arrived


def test_attainment_curve_falls_past_capacity() -> None:
    curve = slo_curve(mlperf_shape(), ttft_s=TTFT, tpot_s=TPOT, requests=N)
    c = curve.capacity.requests_per_s
    assert curve.attainment(0.5 * c) >= 0.99
    # at the capacity, draws other than those that chose it still meet the targets nearly always
    assert curve.attainment(c) >= 0.97
    assert curve.attainment(1.5 * c) < 0.5
    a = curve.attainment(np.array([0.1, 0.9, 1.2]) * c)
    assert a[0] >= a[1] >= a[2]
    lat = curve.latency(np.array([0.5, 1.0, 1.5]) * c)
    assert lat["ttft_p99_s"][0] <= TTFT and lat["tpot_p99_s"][1] <= TPOT
    assert lat["ttft_p50_s"][0] <= lat["ttft_p99_s"][0]
    assert lat["ttft_p99_s"][2] > TTFT
