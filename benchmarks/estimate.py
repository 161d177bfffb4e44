"""Speed of one estimate, in process: training (layout given and chosen automatically) and serving.

Every case is timed two ways, each the median of ``--repeat`` calls (the machine this runs on is
shared, so single calls are noisy): cold, with the perf model's caches cleared before each call
(no remembered layout, no memoized stage split: a job estimated for the first time), and warm
(the same estimate again, as the engine asks for jobs of the same shape); "cold max" is the
slowest of the cold calls, which on a loaded machine shows the noise. The goal is <= 5 ms
per estimate, automatic layout included (issue #11). The baseline measured in the same run is
one fixed-layout training estimate of Llama 3.1 8B on 8 H100 (the smallest unit of work the
model does): every case is also printed as a multiple of it.

    python benchmarks/estimate.py               # all cases, distribution at the end
    python benchmarks/estimate.py --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import TrainingLayout, estimate_inference, estimate_training, training

TARGET_MS = 5.0


def _train(model: str, hw: str, gpus: int, precision: str, **kw: Any) -> Callable[[], object]:
    m, h = get_model(model), catalog()[hw]
    return lambda: estimate_training(m, h, gpus, precision, **kw)


def _serve(model: str, hw: str, precision: str, **kw: Any) -> Callable[[], object]:
    m, h = get_model(model), catalog()[hw]
    return lambda: estimate_inference(m, h, precision, **kw)


def cases() -> list[tuple[str, Callable[[], object]]]:
    c1 = {"input_tokens": 294, "output_tokens": 274}
    server = {**c1, "ttft_s": 2.0, "tpot_s": 0.2}
    return [
        ("baseline: 8B on 8 H100, TP1 DP8 given", _train(
            "llama3.1-8b", "h100_sxm", 8, "bf16", layout=TrainingLayout(dp=8))),
        ("405B on 16,384 H100, Meta's layout given", _train(
            "llama3.1-405b", "h100_sxm", 16384, "bf16", global_batch=2048,
            layout=TrainingLayout(tp=8, pp=16, vp=4, dp=128, zero_stage=2))),
        ("405B on 16,384 H100, automatic", _train(
            "llama3.1-405b", "h100_sxm", 16384, "bf16", global_batch=2048)),
        ("405B on 8,192 H100 FP8, automatic", _train("llama3.1-405b", "h100_sxm", 8192, "fp8")),
        ("405B on 512 GB200 FP8, automatic", _train("llama3.1-405b", "gb200_nvl72", 512, "fp8")),
        ("405B on 131,072 GB300 FP8, automatic", _train(
            "llama3.1-405b", "gb300_nvl72", 131072, "fp8")),
        ("70B on 1,024 H100, automatic", _train("llama3.1-70b", "h100_sxm", 1024, "bf16")),
        ("8B on 64 B200, automatic", _train("llama3.1-8b", "b200_hgx", 64, "bf16")),
        ("GPT-3 175B on 11,616 H100 FP8, automatic", _train(
            "gpt3-175b", "h100_sxm", 11616, "fp8", seq_len=2048, global_batch=2904)),
        ("DeepSeek-V3 on 2,304 GB200 FP8, automatic", _train(
            "deepseek-v3", "gb200_nvl72", 2304, "fp8")),
        ("frontier MoE 2T on 9,216 VR200 FP8, automatic", _train(
            "frontier-moe-2t", "vr200_nvl144", 9216, "fp8")),
        ("405B 128K context on 16,384 H100, automatic", _train(
            "llama3.1-405b", "h100_sxm", 16384, "bf16", seq_len=131072, global_batch=128)),
        ("serve 70B FP8 H100 offline, TP auto", _serve("llama2-70b", "h100_sxm", "fp8", **c1)),
        ("serve 70B FP8 H200 server, TP auto", _serve("llama2-70b", "h200_sxm", "fp8", **server)),
        ("serve 70B FP4 GB200 offline, TP auto", _serve(
            "llama2-70b", "gb200_nvl72", "fp4", **c1)),
        ("serve DeepSeek-R1 FP4 GB200 EP8 server", _serve(
            "deepseek-r1", "gb200_nvl72", "fp4", input_tokens=2048, output_tokens=1024,
            ttft_s=2.0, tpot_s=0.08, ep=8)),
        ("serve 405B FP8 B200 server, paged KV", _serve(
            "llama3.1-405b", "b200_hgx", "fp8", input_tokens=2048, output_tokens=512,
            ttft_s=6.0, tpot_s=0.175, kv_cache="paged")),
    ]  # fmt: skip


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    rows = []
    for name, fn in cases():
        fn()  # imports and first-use costs of numpy, outside both figures
        cold_runs = []
        for _ in range(args.repeat):
            training.clear_caches()
            cold_runs.append(_time(fn))
        cold = statistics.median(cold_runs)
        warm = statistics.median(_time(fn) for _ in range(args.repeat))
        rows.append((name, cold, warm, max(cold_runs)))
    base = rows[0][2]
    print(f"{'case':50s} {'cold ms':>8s} {'warm ms':>8s} {'x base':>7s} {'cold max':>9s}")
    for name, cold, warm, worst in rows:
        flag = "" if max(cold, warm) <= TARGET_MS else "  > 5 ms"
        print(f"{name:50s} {cold:8.2f} {warm:8.2f} {warm / base:7.1f} {worst:9.2f}{flag}")
    colds = sorted(c for _, c, _, _ in rows)
    warms = sorted(w for _, _, w, _ in rows)
    q = statistics.quantiles
    print(
        f"\ncold: median {statistics.median(colds):.2f} ms, p90 {q(colds, n=10)[-1]:.2f} ms,"
        f" max {colds[-1]:.2f} ms; warm: median {statistics.median(warms):.2f} ms,"
        f" max {warms[-1]:.2f} ms; baseline {base:.3f} ms;"
        f" {sum(max(c, w) <= TARGET_MS for _, c, w, _ in rows)}/{len(rows)} within"
        f" {TARGET_MS:g} ms (medians); slowest single cold call {max(x for *_, x in rows):.2f} ms"
    )


if __name__ == "__main__":
    main()
