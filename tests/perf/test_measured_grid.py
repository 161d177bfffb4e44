"""The analytic serving model against the measured reference (aiconfigurator) on a grid.

132 serving configurations aiconfigurator 0.12 covers (``benchmarks/measured_reference.py``
builds the grid and caches aiconfigurator's answers in ``data/measured_grid.json``): Llama 3.1
8B/70B/405B at TP1/4/8 on H100, H200, B200, GB200, B300 and GB300, BF16/FP8 (Hopper) and
FP8/FP4 (Blackwell), input/output 1,024/1,024 and 4,096/512, batch 64 and 256.

Compared at the **same batch and TP** (aiconfigurator's TensorRT-LLM in-flight batching, our
steady-state iteration; mean latencies): the figure is output tokens/s per GPU, ours /
aiconfigurator's - 1. **Tolerance ±20%**: the analytic model is held to ±15% (offline) and ±20%
(server) against published serving results (validation.md C.1); a reference that is itself a
model composed from per-operation measurements (aiconfigurator's README: "results ... can be
inaccurate due to modeling gaps") warrants no tighter band than a published end-to-end
measurement. At least 80% of the points must be within it (the issue's bar).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.perf.measured import analytic_at_grid_point

CACHE = Path(__file__).parent / "data" / "measured_grid.json"
TOLERANCE = 0.20
REQUIRED_SHARE = 0.80


def _cache() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CACHE.read_text())
    return data


def _ours(pt: dict[str, Any]) -> float:
    """Our output tokens/s per GPU at the point's batch and TP (NaN: does not fit ours)."""
    est = analytic_at_grid_point(pt)
    return math.nan if est is None else est.output_tokens_per_s_per_gpu


def _errors(hardware: tuple[str, ...] | None = None) -> np.ndarray:
    pts = [p for p in _cache()["points"] if "measured" in p]
    if hardware is not None:
        pts = [p for p in pts if p["hardware"] in hardware]
    return np.array(
        [_ours(p) / p["measured"]["output_tokens_per_s_per_gpu"] - 1.0 for p in pts], dtype=float
    )


def _within(e: np.ndarray) -> float:
    return float(np.mean(np.abs(e) <= TOLERANCE))  # NaN (ours does not fit) counts as a miss


def test_grid_harness_covers_the_stated_grid_and_matches_aiconfigurator_live() -> None:
    """The cache is what the installed aiconfigurator says, and the grid is the one stated."""
    from sim.perf.measured import aiconfigurator_version, measured_point

    cache = _cache()
    covered = [p for p in cache["points"] if "measured" in p]
    assert cache["aiconfigurator_version"] == aiconfigurator_version()
    assert len(covered) >= 50
    assert {p["hardware"] for p in covered} == {
        "h100_sxm",
        "h200_sxm",
        "b200_hgx",
        "gb200_nvl72",
        "b300_hgx",
        "gb300_nvl72",
    }
    assert {p["precision"] for p in covered} == {"bf16", "fp8", "fp4"}
    assert {p["model"] for p in covered} == {"llama3.1-8b", "llama3.1-70b", "llama3.1-405b"}
    assert {(p["input_tokens"], p["output_tokens"]) for p in covered} == {(1024, 1024), (4096, 512)}
    # re-run three cached points live (one database, loaded once per process)
    live = [p for p in covered if p["hardware"] == "h200_sxm" and p["batch"] == 64][:3]
    assert len(live) == 3
    for p in live:
        m = measured_point(
            p["model"],
            p["hardware"],
            p["precision"],
            input_tokens=p["input_tokens"],
            output_tokens=p["output_tokens"],
            batch=p["batch"],
            tp=p["tp"],
        )
        ref = p["measured"]
        assert m.output_tokens_per_s_per_gpu == pytest.approx(
            ref["output_tokens_per_s_per_gpu"], rel=1e-9
        )
        assert m.tpot_s == pytest.approx(ref["tpot_s"], rel=1e-9)
        assert m.engine_version == ref["engine_version"]
    # our side: the analytic model fits every covered point but one BF16 one on H200 at batch
    # 256 (405B 1,024/1,024: past our KV budget, inside TensorRT-LLM's)
    e = _errors()
    assert np.isfinite(e).sum() == len(covered) - 1


def test_grid_hopper_agrees_with_the_measured_reference() -> None:
    """Hopper, the generation the serving constants were fitted on (C.1): 36 points, 97% within
    ±20% (median +4%, p10 -6%, p90 +13%; at the datasheets' 80/141 GB of HBM, 94%; before issue
    #11's measured efficiencies 92%, +1%)."""
    e = _errors(("h100_sxm", "h200_sxm"))
    assert len(e) >= 30
    assert _within(e) >= REQUIRED_SHARE
    assert abs(float(np.nanmedian(e))) < 0.05


def test_grid_agrees_with_the_measured_reference() -> None:
    """All 132 points: 86% within ±20% (median +3%, p10 -17%, p90 +19%); Blackwell 81%
    (median +1%), Blackwell Ultra 83% (+2%). Before the per-part measured efficiencies of issue
    #11 (a Hopper-level GEMM efficiency on every part, additive decode roofline, no kernel
    latencies): 41% (Blackwell +36%, Blackwell Ultra +27% median)."""
    e = _errors()
    assert _within(e) >= REQUIRED_SHARE
