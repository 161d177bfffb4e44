"""The analytic serving model against the measured reference (aiconfigurator), on a grid.

Usage:
    .venv/bin/python benchmarks/measured_reference.py            # compare (reads the cache)
    .venv/bin/python benchmarks/measured_reference.py --refresh  # re-run aiconfigurator first

The grid: Llama 3.1 8B (TP1), 70B (TP4) and 405B (TP8) on H100, H200, B200, GB200, B300 and
GB300; BF16 and FP8 on Hopper, FP8 and FP4 (NVFP4) on Blackwell; input/output 1,024/1,024
(decode-heavy) and 4,096/512 (prefill-heavy); batch 64 and 256 in flight. Both sides are taken
at the *same batch and TP* (aiconfigurator's in-flight-batching "agg" mode with TensorRT-LLM,
our model's steady-state iteration with chunked prefill, mean latencies, no queueing factors),
so the KV-cache sizing of the two (our mean-context sizing, TensorRT-LLM's full reservation)
does not enter: the comparison is of the step time. A point whose batch does not fit
aiconfigurator's memory check is left out (reported as not covered).

aiconfigurator's answers are cached in ``tests/perf/data/measured_grid.json`` (about 2 minutes
to recompute here; the grid test reads the file and re-checks a few points live). The printed
table is the error distribution of our output tokens/s per GPU and TPOT against it, by GPU
generation: median, p10, p90 and the share within the test's tolerance (±20%).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sim.perf import PerfError
from sim.perf.measured import aiconfigurator_version, analytic_at_grid_point, measured_point

CACHE = Path(__file__).resolve().parents[1] / "tests" / "perf" / "data" / "measured_grid.json"
TOLERANCE = 0.20  # the grid test's tolerance on output tokens/s per GPU (docs/performance-model.md)

GENERATION = {
    "h100_sxm": "Hopper",
    "h200_sxm": "Hopper",
    "b200_hgx": "Blackwell",
    "gb200_nvl72": "Blackwell",
    "b300_hgx": "Blackwell Ultra",
    "gb300_nvl72": "Blackwell Ultra",
}
MODELS_TP = (("llama3.1-8b", 1), ("llama3.1-70b", 4), ("llama3.1-405b", 8))
LENGTHS = ((1024, 1024), (4096, 512))
BATCHES = (64, 256)


def grid() -> list[dict[str, Any]]:
    out = []
    for hw, gen in GENERATION.items():
        precisions = ("bf16", "fp8") if gen == "Hopper" else ("fp8", "fp4")
        for model, tp in MODELS_TP:
            for p in precisions:
                for isl, osl in LENGTHS:
                    for b in BATCHES:
                        out.append(
                            {
                                "model": model,
                                "hardware": hw,
                                "precision": p,
                                "tp": tp,
                                "input_tokens": isl,
                                "output_tokens": osl,
                                "batch": b,
                            }
                        )
    return out


def measure(points: list[dict[str, Any]]) -> dict[str, Any]:
    """aiconfigurator at every point: its figures, or why the point is not covered."""
    rows = []
    for pt in points:
        row = dict(pt)
        try:
            m = measured_point(
                pt["model"],
                pt["hardware"],
                pt["precision"],
                input_tokens=pt["input_tokens"],
                output_tokens=pt["output_tokens"],
                batch=pt["batch"],
                tp=pt["tp"],
            )
        except PerfError as exc:
            row["not_covered"] = str(exc)
        else:
            if m.kv_fits:
                row["measured"] = {
                    "output_tokens_per_s_per_gpu": m.output_tokens_per_s_per_gpu,
                    "ttft_s": m.ttft_s,
                    "tpot_s": m.tpot_s,
                    "silicon_share": m.silicon_share,
                    "system": m.system,
                    "engine": m.engine,
                    "engine_version": m.engine_version,
                }
            else:
                row["not_covered"] = "batch does not fit aiconfigurator's memory check"
        rows.append(row)
    return {"aiconfigurator_version": aiconfigurator_version(), "points": rows}


def analytic(pt: dict[str, Any]) -> tuple[float, float] | None:
    """Our output tokens/s per GPU and TPOT at the point's batch and TP (None: does not fit)."""
    est = analytic_at_grid_point(pt)
    return None if est is None else (est.output_tokens_per_s_per_gpu, est.tpot_s)


def errors(cache: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per covered point: ours / aiconfigurator's - 1 (NaN where ours does not fit)."""
    out = []
    for pt in cache["points"]:
        if "measured" not in pt:
            continue
        ours = analytic(pt)
        m = pt["measured"]
        thr = ours[0] / m["output_tokens_per_s_per_gpu"] - 1.0 if ours else float("nan")
        tpot = ours[1] / m["tpot_s"] - 1.0 if ours else float("nan")
        out.append({**pt, "throughput_error": thr, "tpot_error": tpot})
    return out


def table(rows: list[dict[str, Any]], key: str) -> list[str]:
    lines = [
        f"| generation | points | median | p10 | p90 | within ±{TOLERANCE:.0%} |",
        "|---|---|---|---|---|---|",
    ]
    groups = [*dict.fromkeys(GENERATION.values()), "all"]
    for g in groups:
        e = np.array(
            [r[key] for r in rows if g == "all" or GENERATION[r["hardware"]] == g], dtype=float
        )
        ok = np.abs(e) <= TOLERANCE  # NaN (ours does not fit) counts as outside
        f = e[np.isfinite(e)]
        lines.append(
            f"| {g} | {len(e)} | {np.median(f):+.0%} | {np.percentile(f, 10):+.0%} |"
            f" {np.percentile(f, 90):+.0%} | {ok.mean():.0%} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refresh", action="store_true", help="re-run aiconfigurator, rewrite cache")
    args = ap.parse_args(argv)
    if args.refresh or not CACHE.exists():
        t0 = time.perf_counter()
        cache = measure(grid())
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cache, indent=1) + "\n")
        print(f"aiconfigurator: {len(cache['points'])} points in {time.perf_counter() - t0:.0f} s")
    cache = json.loads(CACHE.read_text())
    rows = errors(cache)
    skipped = [p for p in cache["points"] if "measured" not in p]
    print(
        f"aiconfigurator {cache['aiconfigurator_version']}: {len(rows)} covered points,"
        f" {len(skipped)} not covered"
    )
    print("\nOutput tokens/s per GPU, ours / aiconfigurator - 1, equal batch and TP:\n")
    print("\n".join(table(rows, "throughput_error")))
    print("\nTPOT, ours / aiconfigurator - 1, equal batch and TP:\n")
    print("\n".join(table(rows, "tpot_error")))
    print("\nBy precision and length (median throughput error):\n")
    for p in ("bf16", "fp8", "fp4"):
        for isl, osl in LENGTHS:
            e = [
                r["throughput_error"]
                for r in rows
                if r["precision"] == p and r["input_tokens"] == isl and r["output_tokens"] == osl
            ]
            if e:
                print(f"  {p} {isl}/{osl}: {np.nanmedian(e):+.0%} ({len(e)} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
