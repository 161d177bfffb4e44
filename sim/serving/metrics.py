"""Latency distributions, throughput and levels of a request-level run, as tables and numbers.

Definitions (MLPerf Inference's, network-and-serving.md B2): TTFT = first token - arrival;
TPOT = (completion - first token) / (generated tokens - 1), per request with at least two
tokens (it includes any stall of a preempted request); end-to-end = completion - arrival.
Percentiles are over the requests completed in the run (``numpy.percentile``, linear). A
request meets its SLO when its TTFT and its TPOT are both within the targets; attainment is over
the settled requests (:func:`slo_attainment_of`): a dropped request, or one still without its
first token past the TTFT target, has not met it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.serving.simulator import ServingRun

__all__ = [
    "PERCENTILES",
    "latencies",
    "levels_table",
    "requests_table",
    "slo_attainment_of",
    "summarize",
]

PERCENTILES = (50, 90, 99)


def latencies(run: ServingRun) -> dict[str, np.ndarray]:
    """TTFT, TPOT and end-to-end latency (seconds) of the completed requests."""
    done = ~np.isnan(run.done_s)
    ttft = (run.first_token_s - run.arrival_s)[done]
    e2e = (run.done_s - run.arrival_s)[done]
    multi = done & (run.output_tokens > 1)
    tpot = ((run.done_s - run.first_token_s) / (run.output_tokens - 1).clip(min=1))[multi]
    return {"ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e}


def slo_attainment_of(run: ServingRun, ttft_s: float | None, tpot_s: float | None) -> float:
    """Share of the settled requests that completed within both targets (nan if none).

    Settled: completed, dropped, or still without a first token longer than the TTFT target at
    the end of the run (already late). Requests still in flight that could yet meet the targets
    are left out, so a short run is not penalised for its last seconds."""
    arrived = ~np.isnan(run.arrival_s)
    done = ~np.isnan(run.done_s)
    late = np.zeros_like(done)
    if ttft_s is not None:
        late = arrived & np.isnan(run.first_token_s) & (run.duration_s - run.arrival_s > ttft_s)
    settled = done | run.dropped | late
    n = int(settled.sum())
    if n == 0:
        return math.nan
    ok = done.copy()
    if ttft_s is not None:
        ok &= (run.first_token_s - run.arrival_s) <= ttft_s
    if tpot_s is not None:
        tpot = (run.done_s - run.first_token_s) / (run.output_tokens - 1).clip(min=1)
        ok &= (run.output_tokens <= 1) | (tpot <= tpot_s)
    return float(ok.sum()) / n


def _stats(x: np.ndarray) -> dict[str, float | None]:
    if x.size == 0:
        return {"mean": None, **{f"p{p}": None for p in PERCENTILES}}
    q = np.percentile(x, PERCENTILES)
    return {
        "mean": float(x.mean()),
        **{f"p{p}": float(v) for p, v in zip(PERCENTILES, q, strict=True)},
    }


def summarize(
    run: ServingRun,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    replica_gpus: int | None = None,
) -> dict[str, Any]:
    """Headline numbers of one run (JSON-friendly)."""
    lat = latencies(run)
    done = ~np.isnan(run.done_s)
    out_tok = int(run.output_tokens[done].sum())
    arrived = ~np.isnan(run.arrival_s)
    prompt = run.prompt_tokens[arrived]
    cached = run.cached_tokens[arrived]
    kv = run.sample_kv_tokens / max(run.kv_capacity_tokens, 1)
    per_s = out_tok / run.duration_s
    return {
        "duration_s": run.duration_s,
        "requests": {
            "arrived": run.arrived,
            "served": run.served,
            "dropped": run.n_dropped,
            "queued": run.queued,
            "waiting_at_end": run.waiting_at_end,
            "running_at_end": run.running_at_end,
            "preempted": int((run.preemptions > 0).sum()),
            "preemptions": int(run.preemptions.sum()),
        },
        "throughput": {
            "requests_per_s": run.served / run.duration_s,
            "output_tokens_per_s": per_s,
            "output_tokens_per_s_per_gpu": per_s / replica_gpus if replica_gpus else None,
            "generated_tokens_per_s": run.generated_tokens / run.duration_s,
        },
        "ttft_s": _stats(lat["ttft_s"]),
        "tpot_s": _stats(lat["tpot_s"]),
        "e2e_s": _stats(lat["e2e_s"]),
        "slo": {
            "ttft_s": ttft_s,
            "tpot_s": tpot_s,
            "attainment": slo_attainment_of(run, ttft_s, tpot_s),
        },
        "queue": {
            "mean_waiting": float(run.sample_waiting.mean()) if run.sample_waiting.size else 0.0,
            "max_waiting": int(run.sample_waiting.max()) if run.sample_waiting.size else 0,
            "mean_running": float(run.sample_running.mean()) if run.sample_running.size else 0.0,
        },
        "kv_cache": {
            "capacity_tokens": run.kv_capacity_tokens,
            "mean_occupancy": float(kv.mean()) if kv.size else 0.0,
            "max_occupancy": float(kv.max()) if kv.size else 0.0,
        },
        "prompt_cache": {
            "hit_rate": float(cached.sum() / prompt.sum()) if prompt.size else 0.0,
        },
        "iterations": run.iterations,
    }


def requests_table(run: ServingRun) -> pd.DataFrame:
    """One row per request that arrived: times (s), tokens, preemptions, latencies."""
    arrived = ~np.isnan(run.arrival_s)
    idx = np.flatnonzero(arrived)
    a = run.arrival_s[idx]
    f = run.first_token_s[idx]
    d = run.done_s[idx]
    g = run.output_tokens[idx]
    return pd.DataFrame(
        {
            "request": idx,
            "arrival_s": a,
            "first_token_s": f,
            "done_s": d,
            "prompt_tokens": run.prompt_tokens[idx],
            "cached_tokens": run.cached_tokens[idx],
            "output_tokens": g,
            "preemptions": run.preemptions[idx],
            "dropped": run.dropped[idx],
            "ttft_s": f - a,
            "tpot_s": np.where(g > 1, (d - f) / np.maximum(g - 1, 1), np.nan),
            "e2e_s": d - a,
        }
    ).sort_values("arrival_s", kind="stable", ignore_index=True)


def levels_table(run: ServingRun, bin_s: float | None = None) -> pd.DataFrame:
    """Levels over time, one row per bin: waiting and running requests and KV occupancy (the
    values at the bin's start), output tokens/s and requests completed in the bin."""
    t = run.sample_s
    if bin_s is None:
        bin_s = float(t[1] - t[0]) if t.size > 1 else run.duration_s
    edges = np.arange(0.0, run.duration_s + bin_s * 0.5, bin_s)
    if edges[-1] < run.duration_s:
        edges = np.append(edges, run.duration_s)
    starts = edges[:-1]
    k = np.clip(np.searchsorted(t, starts, side="right") - 1, 0, max(t.size - 1, 0))
    # the run ends at the iteration boundary at or after the horizon: its last completions
    # count in the last bin
    done = np.minimum(run.done_s[~np.isnan(run.done_s)], run.duration_s)
    tok = run.output_tokens[~np.isnan(run.done_s)]
    n_done, _ = np.histogram(done, bins=edges)
    tok_done, _ = np.histogram(done, bins=edges, weights=tok)
    width = np.diff(edges)
    arr = run.arrival_s[~np.isnan(run.arrival_s)]
    n_arr, _ = np.histogram(arr, bins=edges)
    empty = t.size == 0
    return pd.DataFrame(
        {
            "time_s": starts,
            "arrivals_per_s": n_arr / width,
            "served_per_s": n_done / width,
            "output_tokens_per_s": tok_done / width,
            "waiting": np.zeros(starts.size) if empty else run.sample_waiting[k],
            "running": np.zeros(starts.size) if empty else run.sample_running[k],
            "kv_occupancy": np.zeros(starts.size)
            if empty
            else run.sample_kv_tokens[k] / max(run.kv_capacity_tokens, 1),
        }
    )
