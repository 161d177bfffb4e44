"""Fluid versus request-level agreement over arrival draws (docs/serving.md, the link).

The test (tests/serving/test_capacity.py) checks four request-level draws; this prints the
spread over seeds 5-24 of the same comparison: a fluid replica whose capacity and attainment
come from :func:`sim.serving.capacity.slo_curve`, served a load that changes every 15 minutes,
against the request-level run of the same load. About 25 CPU-s.

    AIFACTORY_CACHE=off python benchmarks/serving_agreement.py [FIRST_SEED LAST_SEED]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.serving.capacity import slo_curve
from sim.serving.metrics import slo_attainment_of
from sim.serving.shape import ServiceShape
from sim.serving.simulator import EngineOptions, simulate
from sim.serving.workload import Requests

TTFT, TPOT = 2.0, 0.2
PROFILES = ((0.3, 0.6, 0.9, 0.6, 0.3), (0.6, 0.8, 0.95, 1.0, 0.8))
SEGMENT_S = 900.0


def _piecewise(shape: ServiceShape, rates: np.ndarray, seed: int) -> Requests:
    rng = np.random.default_rng(seed)
    parts = [shape.requests(rng, float(r), SEGMENT_S) for r in rates]
    return Requests.independent(
        np.concatenate([p.arrival_s + k * SEGMENT_S for k, p in enumerate(parts)]),
        np.concatenate([p.prompt_tokens for p in parts]),
        np.concatenate([p.output_tokens for p in parts]),
    )


def main() -> None:
    first, last = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (5, 24)
    shape = ServiceShape(
        model=get_model("llama2-70b"),
        hw=catalog()["h100_sxm"],
        precision="fp8",
        tp=2,
        input_tokens=294,
        output_tokens=274,
        options=EngineOptions(kv_cache="reserved"),
    )
    t0 = time.process_time()
    curve = slo_curve(shape, ttft_s=TTFT, tpot_s=TPOT, requests=10_000)
    cap = curve.capacity
    print(
        f"capacity {cap.requests_per_s:.3f} requests/s, {cap.output_tokens_per_s_per_gpu:,.0f}"
        f" output tokens/s per GPU ({time.process_time() - t0:.1f} CPU-s with the curve)"
    )
    print("curve loads     ", " ".join(f"{x:6.2f}" for x in curve.loads))
    print("curve attainment", " ".join(f"{x:6.3f}" for x in curve.attainment_values))
    for loads in PROFILES:
        rates = np.array(loads) * cap.requests_per_s
        fluid_att = float((rates * curve.attainment(rates)).sum() / rates.sum())
        fluid_tok = float(
            np.minimum(rates, cap.requests_per_s).sum() * SEGMENT_S * shape.generated_tokens
        )
        att, tok = [], []
        for seed in range(first, last + 1):
            run = simulate(
                _piecewise(shape, rates, seed), shape.step(), shape.options, SEGMENT_S * len(loads)
            )
            done = np.isfinite(run.done_s)
            tok.append(float(run.output_tokens[done].sum()) / fluid_tok - 1.0)
            att.append(slo_attainment_of(run, TTFT, TPOT) / fluid_att - 1.0)
        a, s = np.array(att) * 100, np.array(tok) * 100
        print(f"profile {loads}: fluid attainment {fluid_att:.4f}")
        print(f"  attainment, request level vs fluid (%): {np.round(a, 1).tolist()}")
        print(
            f"  min {a.min():+.1f}% max {a.max():+.1f}%, within 1%: "
            f"{int((np.abs(a) < 1).sum())} of {a.size}; served tokens {s.min():+.1f}% to"
            f" {s.max():+.1f}%"
        )
    print(f"{time.process_time() - t0:.1f} CPU-s")


if __name__ == "__main__":
    main()
