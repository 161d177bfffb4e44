"""Disaggregated prefill on a Vera Rubin NVL144 CPX rack: capacity per rack and SLO attainment.

DeepSeek-R1 FP8, 1,000 output tokens, p99 TTFT 2 s / TPOT 50 ms (the large tier's targets in
the shipped scenarios), inputs of 100k, 32k, 8k and 1k tokens. For each ``prefill`` mode the
fleet plans one rack (``sim/build.py`` -> ``sim/perf/inference.py`` ``mix_domain``, the
function ``aifactory estimate serve`` calls too) and the request level probes its replicas
(behind their prefill pool where they have one): the table gives the plan's output tokens/s
per rack, its arrangement, and the share of requests meeting both targets at 85% (the
default ``max_load``) and 100% of the planned capacity. The baseline is co-located serving on
the same rack at the same targets (``x co-located``; "-" where co-located serving meets no
target: at 100k input the p99 prompt alone takes over 2 s to prefill on a replica's GPUs).

``--request-level`` adds the rack's capacity as the request level finds it: each kind of
replica's highest Poisson rate whose p99 TTFT and TPOT meet the targets
(:func:`sim.serving.capacity.capacity_at_slo`, behind its prefill pool where it has one) times
the replicas of that kind per rack ("unreachable": not even a light load meets p99 TTFT).

    python benchmarks/disaggregated.py [--request-level]   # AIFACTORY_CACHE=off: recompute
"""

from __future__ import annotations

import sys
import time

from sim.build import replica_kinds
from sim.catalog.models import get_model
from sim.config.loader import load_scenario
from sim.runner import prepare
from sim.serving.capacity import capacity_at_slo

SCENARIO = """
name: cpx-{inp}-{mode}
run: {{duration: 1 d, seed: 0}}
facility:
  grid_power: 2 MW
  pue: 1.2
  halls: [{{name: hall1, hardware: vr200_nvl144_cpx, racks: 2}}]
workloads:
  inference:
    - {{name: r1, model: deepseek-r1, precision: fp8, demand: {{mean_requests_per_s: 0.5}},
       input_tokens: {inp}, output_tokens: 1000, ttft: 2 s, tpot: 50 ms, prefill: {mode}}}
reliability: {{enabled: false}}
"""


def main() -> None:
    request_level = "--request-level" in sys.argv[1:]
    head = f"{'input':>6s} {'prefill':>10s} {'plan':>10s} {'tokens/s/rack':>14s}"
    head += f" {'x co-located':>13s} {'SLO @85%':>9s} {'@100%':>7s}"
    print(head + (f" {'request level':>14s}" if request_level else "") + "  arrangement")
    for inp in (100_000, 32_000, 8_000, 1_000):
        base = None
        for mode in ("colocated", "companion", "hybrid", "auto"):
            t0 = time.process_time()
            text = SCENARIO.format(inp=inp, mode=mode)
            loaded, plan = prepare(load_scenario(text=text, source=f"{mode}.yaml"))
            (s,) = plan.services
            cap = s.capacity_tokens_per_s_per_domain
            base = cap if base is None else base
            ratio = f"{cap / base:>13.2f}" if base > 0 else f"{'-':>13s}"
            assert s.slo is not None and s.mix is not None
            att = dict(zip(s.slo.loads, s.slo.attainment, strict=True))
            mix = s.mix
            parts = []
            if mix.companion_replicas:
                parts.append(f"{mix.companion_replicas:.2f} CPX-fed (TP{mix.companion.tp})")  # type: ignore[union-attr]
            if mix.gpu_replicas:
                extra = (
                    f" + {mix.gpu_prefill_gpus:.1f} prefill GPUs" if mix.gpu_prefill_gpus else ""
                )
                parts.append(f"{mix.gpu_replicas:.2f} {mix.gpu_kind} (TP{mix.gpu.tp}){extra}")  # type: ignore[union-attr]
            req = ""
            if request_level and mode in ("colocated", "auto"):
                v = loaded.scenario.workloads.inference[0]
                total = 0.0
                for k in replica_kinds(mix, v, get_model(v.model), plan.hw_specs[0], inp, 0.0):
                    c = capacity_at_slo(k.shape, ttft_s=v.ttft_s, tpot_s=v.tpot_s)
                    total = -1.0 if c.limited_by == "unreachable" or total < 0 else total
                    total += 0.0 if total < 0 else c.output_tokens_per_s * k.replicas_per_domain
                req = f" {'unreachable' if total < 0 else f'{total:,.0f}':>14s}"
            elif request_level:
                req = f" {'':>14s}"
            cpu = time.process_time() - t0
            print(
                f"{inp // 1000:>5d}k {mode:>10s} {s.prefill:>10s} {cap:>14,.0f} {ratio}"
                f" {att[0.85]:>9.1%} {att[1.0]:>7.1%}{req}  {' + '.join(parts)} [{cpu:.1f} CPU-s]"
            )


if __name__ == "__main__":
    main()
