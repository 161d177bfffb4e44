"""Request-level serving simulator speed: requests simulated per CPU-second.

Cases (one replica each; CPU time of :func:`sim.serving.simulator.simulate` alone, request
generation and the step model's table excluded and reported apart):

* MLPerf-like: Llama 2 70B FP8 on an H100 TP2 replica, 294 / 274 tokens, Poisson at 50%, 90%
  and 110% of its capacity at p99 TTFT 2 s / TPOT 200 ms (about 20 requests/s), reserved and
  paged KV, one simulated hour each (and a 1,000,000-request run at 90%, paged);
* long prompts: Mooncake-like 12,000 / 340 tokens on GB200, paged, near saturation;
* agentic sessions: 8 calls per session, 2 s tool latency, growing context, paged;
* reasoning: output x 8 (long decodes; the decode jumps carry most iterations);
* disaggregated prefill: DeepSeek-R1 FP8 on a Vera Rubin NVL144 CPX rack, the replica the
  fleet plans (sim/perf/inference.py mix_domain) behind its Rubin CPX prefill pool
  (:func:`sim.serving.simulator.simulate_disaggregated`: the pool's FCFS queue, then the
  co-located path with every prompt's KV arrived), 100k/1k and 8k/1k at 85% of its capacity.

The baseline, measured in the same run for each case, is the same requests simulated with the
decode jumps turned off (``max_jump=1``: every iteration is one pass of the loop); ``x
single-step`` is what the closed-form jumps gain. It is large where decode dominates (low load,
long outputs) and about 1 where nearly every iteration carries prefill (high load, short
outputs). The target is >= 50,000 requests per CPU-second on every case.

    python benchmarks/serving.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import mix_domain, prefill_costs
from sim.serving.shape import ServiceShape
from sim.serving.simulator import EngineOptions, simulate, simulate_disaggregated
from sim.serving.workload import SessionShape

#: Capacity of the MLPerf-like replica at its targets (requests/s), from capacity_at_slo (docs).
MLPERF_CAPACITY = 20.0


def _case(
    name: str, shape: ServiceShape, rate: float, duration_s: float, baseline: bool = True
) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    t0 = time.process_time()
    reqs = shape.requests(rng, rate, duration_s)
    step = shape.step()
    setup = time.process_time() - t0
    t0 = time.process_time()
    if shape.prefill is None:
        run = simulate(reqs, step, shape.options, duration_s)
    else:
        run = simulate_disaggregated(reqs, step, shape.options, duration_s, shape.prefill)
    cpu = time.process_time() - t0
    single = None
    if baseline:
        t0 = time.process_time()
        if shape.prefill is None:
            simulate(reqs, step, shape.options, duration_s, max_jump=1)
        else:
            simulate_disaggregated(reqs, step, shape.options, duration_s, shape.prefill, max_jump=1)
        single = time.process_time() - t0
    return {
        "case": name,
        "requests": run.arrived,
        "iterations": run.iterations,
        "cpu_s": cpu,
        "setup_s": setup,
        "req_per_cpu_s": run.arrived / cpu,
        "single_step_cpu_s": single,
    }


def _cpx_shape(input_tokens: int) -> tuple[ServiceShape, float]:
    """The companion-fed replica of DeepSeek-R1 FP8 on a CPX rack (2 s / 50 ms) and its
    planned capacity in requests/s."""
    hw = catalog()["vr200_nvl144_cpx"]
    part = hw.prefill_accelerator
    assert part is not None
    r1 = get_model("deepseek-r1")
    kw: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": 1000}
    mix = mix_domain(r1, hw, "fp8", gpus=72, mode="companion", ttft_s=2.0, tpot_s=0.05, **kw)
    k = mix.companion
    assert k is not None
    costs = prefill_costs(r1, hw, "fp8", k, prefill_hw=part, **kw)
    shape = ServiceShape(model=r1, hw=hw, precision="fp8", tp=k.tp, prefill=costs, **kw)
    return shape, k.requests_per_s_per_replica


def main() -> None:
    m70 = get_model("llama2-70b")
    base: dict[str, Any] = {"model": m70, "hw": catalog()["h100_sxm"], "precision": "fp8", "tp": 2}
    rows = []
    hour = 3600.0
    for kv in ("reserved", "paged"):
        for load in (0.5, 0.9, 1.1):
            shape = ServiceShape(
                input_tokens=294, output_tokens=274, options=EngineOptions(kv_cache=kv), **base
            )
            rate = load * MLPERF_CAPACITY
            rows.append(_case(f"MLPerf-like {load:.0%}, {kv}, 1 h", shape, rate, hour))
    shape = ServiceShape(input_tokens=294, output_tokens=274, **base)
    rows.append(_case("MLPerf-like 90%, paged, 1,000,000 requests", shape, 18.0, 1e6 / 18.0, False))
    moon = ServiceShape(
        model=m70,
        hw=catalog()["gb200_nvl72"],
        precision="fp8",
        tp=1,
        input_tokens=12_000,
        output_tokens=340,
    )
    rows.append(_case("Mooncake-like 12k/340 on GB200, paged, 1 h", moon, 2.0, hour))
    sessions = SessionShape(calls=8, tool_latency_s=2.0, tool_output_tokens=500)
    agent = ServiceShape(input_tokens=3000, output_tokens=200, sessions=sessions, **base)
    rows.append(_case("agentic sessions, 8 calls, paged, 1 h", agent, 8.0, hour))
    reason = ServiceShape(input_tokens=294, output_tokens=274, reasoning_multiplier=8.0, **base)
    rows.append(_case("reasoning x8, paged, 1 h", reason, 2.0, hour))
    for input_tokens in (100_000, 8_000):
        shape, rate = _cpx_shape(input_tokens)
        name = f"CPX pool, R1 {input_tokens // 1000}k/1k, 85%, 1 h"
        rows.append(_case(name, shape, 0.85 * rate, hour))

    head = f"{'case':46s} {'requests':>10s} {'iterations':>11s} {'CPU s':>7s} {'req/CPU-s':>10s}"
    print(head + f" {'x single-step':>14s}")
    for r in rows:
        single = r["single_step_cpu_s"]
        gain = "" if single is None else f"{single / r['cpu_s']:.1f}"
        print(
            f"{r['case']:46s} {r['requests']:>10,d} {r['iterations']:>11,d} {r['cpu_s']:>7.2f}"
            f" {r['req_per_cpu_s']:>10,.0f} {gain:>14s}"
        )
    worst = min(r["req_per_cpu_s"] for r in rows)
    print(f"\nslowest case: {worst:,.0f} requests per CPU-second (target >= 50,000)")


if __name__ == "__main__":
    main()
