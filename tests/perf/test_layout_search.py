"""The automatic layout search, made faster, chooses what it chose before (issue #11, speed).

``data/layout_choices.json`` holds the layout, step, recompute and memory the search chose for
the cases of ``benchmarks/estimate.py`` and a few more (other parts, precisions, MoE, long
context, a scattered network path, two jobs nothing fits), recorded with the code of commit
843918e, before the candidate table was vectorized and the search staged, by running this file
as a script (``python tests/perf/test_layout_search.py``, which rewrites the fixture). The
search must return them bit for bit. Further tests check the pieces the speed-up rests on: the
vectorized table equals the nested loops it replaced, the quick bound never exceeds the full
one, and the staged search agrees with the plain branch and bound and with scoring every
candidate, whichever path (incumbent found or not) it takes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.catalog.hardware import HardwareSpec, catalog
from sim.catalog.models import ModelShape, get_model
from sim.perf import PerfError, TrainingLayout, estimate_training, layout, training
from sim.perf.common import to_precision
from sim.perf.network import NetworkPath, PathTier

FIXTURE = Path(__file__).parent / "data" / "layout_choices.json"
#: the catalog's HBM when the fixture was recorded, where it has changed since (H100 and H200
#: were their datasheets' 80 and 141 GB before the catalog took the memory nvidia-smi reports,
#: source S125): the fixture pins the search, not the catalog
RECORDED_HBM = {"h100_sxm": 80e9, "h200_sxm": 141e9}

#: (model, hardware, GPUs, precision, estimate_training keywords; "path": "scattered" stands for
#: :func:`_scattered`)
CASES: list[tuple[str, str, int, str, dict[str, Any]]] = [
    # the automatic cases of benchmarks/estimate.py
    ("llama3.1-405b", "h100_sxm", 16384, "bf16", {"global_batch": 2048}),
    ("llama3.1-405b", "h100_sxm", 8192, "fp8", {}),
    ("llama3.1-405b", "gb200_nvl72", 512, "fp8", {}),
    ("llama3.1-405b", "gb300_nvl72", 131072, "fp8", {}),
    ("llama3.1-70b", "h100_sxm", 1024, "bf16", {}),
    ("llama3.1-8b", "b200_hgx", 64, "bf16", {}),
    ("gpt3-175b", "h100_sxm", 11616, "fp8", {"seq_len": 2048, "global_batch": 2904}),
    ("deepseek-v3", "gb200_nvl72", 2304, "fp8", {}),
    ("frontier-moe-2t", "vr200_nvl144", 9216, "fp8", {}),
    ("llama3.1-405b", "h100_sxm", 16384, "bf16", {"seq_len": 131072, "global_batch": 128}),
    # more parts, sizes, precisions, MoE, long context, small jobs
    ("llama3.1-8b", "h100_sxm", 8, "bf16", {}),
    ("llama3.1-70b", "gb200_nvl72", 576, "fp8", {}),
    ("llama3.1-70b", "b300_hgx", 256, "fp8", {"seq_len": 32768}),
    ("llama3.1-405b", "gb200_nvl72", 256, "bf16", {}),
    ("llama3.1-405b", "rubin_ultra_nvl576", 4608, "fp4", {}),
    ("llama3.1-405b", "mi355x", 1024, "fp8", {}),
    ("gpt3-175b", "h100_sxm", 512, "fp8", {"seq_len": 2048, "global_batch": 2048}),
    ("deepseek-v3", "h200_sxm", 1024, "fp8", {}),
    ("deepseek-v3", "gb300_nvl72", 4608, "fp8", {"seq_len": 32768}),
    ("gpt-oss-120b", "b200_hgx", 128, "bf16", {}),
    ("gpt-oss-120b", "mi300x", 64, "bf16", {}),
    ("frontier-moe-2t", "gb300_nvl72", 18432, "fp8", {}),
    ("frontier-moe-2t", "vr200_nvl144", 2304, "fp4", {}),
    ("llama3.3-70b", "vr200_nvl144", 1152, "fp8", {"seq_len": 65536}),
    ("llama2-70b", "h200_sxm", 64, "bf16", {}),
    ("llama3.1-70b", "h100_sxm", 16384, "bf16", {"path": "scattered"}),
    ("deepseek-v3", "gb200_nvl72", 2304, "fp8", {"path": "scattered"}),
    # nothing fits: the error names the most model-parallel failure
    ("llama3.1-405b", "h100_sxm", 8, "bf16", {}),
    ("frontier-moe-2t", "h100_sxm", 64, "fp8", {}),
]


def _scattered(hw: HardwareSpec) -> NetworkPath:
    """Four domains per group, a third of the NIC rate across the group's uplink."""
    nic = hw.scaleout_bandwidth_bits_per_s / 8
    return NetworkPath((PathTier(hw.domain_gpus * 4, nic / 3, latency_s=5e-6),))


def _record(case: tuple[str, str, int, str, dict[str, Any]]) -> dict[str, Any]:
    """What the search chooses for one case, from a fresh start (no remembered layout)."""
    model, hw_name, gpus, precision, kw = case
    hw = catalog()[hw_name]
    if hw_name in RECORDED_HBM:  # the memory the fixture was recorded with
        hw = hw.model_copy(update={"hbm_bytes": RECORDED_HBM[hw_name]})
    kwargs = dict(kw)
    if kwargs.get("path") == "scattered":
        kwargs["path"] = _scattered(hw)
    training._CHOSEN.clear()
    row: dict[str, Any] = {
        "model": model,
        "hw": hw_name,
        "gpus": gpus,
        "precision": precision,
        "kwargs": kw,
    }
    try:
        est = estimate_training(get_model(model), hw, gpus, precision, **kwargs)
    except PerfError as exc:
        row["error"] = str(exc)
        return row
    lay = est.layout
    row["layout"] = {
        "tp": lay.tp,
        "pp": lay.pp,
        "vp": lay.vp,
        "cp": lay.cp,
        "dp": lay.dp,
        "ep": lay.ep,
        "microbatch": lay.microbatch,
        "zero_stage": lay.zero_stage,
    }
    row["step_time_s"] = est.step_time_s
    row["recompute"] = est.recompute
    row["memory_bytes_per_gpu"] = est.memory_bytes_per_gpu
    return row


def test_fixture_covers_the_cases() -> None:
    recorded = json.loads(FIXTURE.read_text())["cases"]
    assert [(r["model"], r["hw"], r["gpus"], r["precision"], r["kwargs"]) for r in recorded] == [
        tuple(c) for c in CASES
    ]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_search_chooses_what_it_chose_before(i: int) -> None:
    """Same layout, same step and memory bit for bit, same error text (fixture: commit 843918e)."""
    expected = json.loads(FIXTURE.read_text())["cases"][i]
    assert _record(CASES[i]) == expected


def _reference_table(
    model: ModelShape, hw: HardwareSpec, gpus: int, seq_len: int, global_batch: int
) -> np.ndarray:
    """The candidate table as the nested loops built it before it was vectorized."""
    rows = []
    tps = [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= min(hw.domain_gpus, 64)]
    tps = [t for t in tps if model.heads % t == 0 and gpus % t == 0]
    cps = [1] + [c for c in (2, 4, 8, 16, 32) if seq_len // c >= 4096]
    eps = [1]
    if model.is_moe:
        eps = [e for e in (2**k for k in range(20)) if e <= model.experts]
        eps = [e for e in eps if model.experts % e == 0]
    for tp in tps:
        for cp in cps:
            if gpus % (tp * cp):
                continue
            rest = gpus // (tp * cp)
            pps = [p for p in range(1, min(rest, model.layers) + 1) if rest % p == 0]
            for pp in [p for p in pps if p <= 8 or p % 4 == 0][:24]:
                dp = rest // pp
                vps = [1] if pp == 1 else sorted({1, training.default_vp(model, pp)})
                for vp in vps:
                    if pp * vp > model.layers:
                        continue
                    for ep in eps:
                        for mbs in (1, 2):
                            for zero in (1, 3):
                                if dp % ep or global_batch % (dp * mbs):
                                    continue
                                if zero == 3 and dp == 1:
                                    continue
                                rows.append((tp, pp, vp, cp, dp, ep, mbs, zero))
    return np.array(rows, dtype=np.int64).reshape(-1, len(layout.COLUMNS))


JOBS = [
    ("llama3.1-8b", "h100_sxm", 8, 8192),
    ("llama3.1-70b", "gb200_nvl72", 576, 8192),
    ("llama3.1-405b", "h100_sxm", 16384, 131072),
    ("llama3.1-405b", "mi355x", 1000, 8192),
    ("gpt3-175b", "h100_sxm", 11616, 2048),
    ("deepseek-v3", "gb200_nvl72", 2304, 8192),
    ("gpt-oss-120b", "b200_hgx", 96, 32768),
    ("frontier-moe-2t", "vr200_nvl144", 9216, 8192),
    ("frontier-moe-2t", "rubin_ultra_nvl576", 4608, 65536),
]


@pytest.mark.parametrize(("model", "hw", "gpus", "seq"), JOBS)
def test_vectorized_table_equals_the_nested_loops(model: str, hw: str, gpus: int, seq: int) -> None:
    m, h = get_model(model), catalog()[hw]
    for gb in (training.default_global_batch(m, gpus, seq), 2048, 96, 1):
        got = layout.candidate_table(m, h, gpus, seq, gb)
        assert np.array_equal(got, _reference_table(m, h, gpus, seq, gb))


@pytest.mark.parametrize(("model", "hw", "gpus", "seq"), JOBS)
def test_quick_bound_never_exceeds_the_full_one(model: str, hw: str, gpus: int, seq: int) -> None:
    m, h = get_model(model), catalog()[hw]
    gb = training.default_global_batch(m, gpus, seq)
    table = layout.candidate_table(m, h, gpus, seq, gb)
    for p in ("bf16", "fp8"):
        full = training.step_lower_bounds(m, h, to_precision(p), table, seq, gb)
        quick = training.step_lower_bounds(m, h, to_precision(p), table, seq, gb, pass_only=True)
        assert np.all(quick <= full)
        # a row's bound depends on that row only: a subset gets the same values, bit for bit
        rows = np.arange(0, len(table), 7)
        sub = training.step_lower_bounds(m, h, to_precision(p), table[rows], seq, gb)
        assert np.array_equal(sub, full[rows])


def _search(
    m: ModelShape, h: HardwareSpec, gpus: int, seq: int, p: str, staged: bool, bound: bool
) -> tuple[TrainingLayout, float, int] | str:
    """(layout, step, candidates evaluated) of one search, or its error text."""
    prec = to_precision(p)
    gb = training.default_global_batch(m, gpus, seq)
    net = NetworkPath.flat(h)
    calls = [0]

    def evaluate(lay: TrainingLayout) -> training.TrainingEstimate:
        calls[0] += 1
        return training._evaluate(m, h, prec, lay, seq, gb, net, True, gpus)

    full = (lambda t: training.step_lower_bounds(m, h, prec, t, seq, gb)) if bound else None
    quick = None
    if staged:
        quick = lambda t: training.step_lower_bounds(m, h, prec, t, seq, gb, pass_only=True)  # noqa: E731
    try:
        est = layout.choose_layout(evaluate, m, h, gpus, seq, gb, full, quick)
    except PerfError as exc:
        return str(exc)
    return est.layout, est.step_time_s, calls[0]


@pytest.mark.parametrize("pool", [1, 3, 32, 10**6])
@pytest.mark.parametrize(
    ("model", "hw", "gpus", "seq", "p"),
    [
        ("llama3.1-405b", "gb200_nvl72", 512, 8192, "fp8"),
        ("llama3.1-405b", "h100_sxm", 64, 8192, "bf16"),
        ("llama3.1-70b", "h100_sxm", 1024, 8192, "bf16"),
        ("deepseek-v3", "gb200_nvl72", 2304, 8192, "fp8"),
        ("gpt-oss-120b", "mi300x", 64, 8192, "bf16"),
        ("llama3.1-405b", "h100_sxm", 8, 8192, "bf16"),  # nothing fits
    ],
)
def test_staged_search_equals_plain_branch_and_bound(
    monkeypatch: pytest.MonkeyPatch, pool: int, model: str, hw: str, gpus: int, seq: int, p: str
) -> None:
    """Whatever the incumbent pool (1: often no incumbent that fits, so the whole table is
    bounded), the staged search returns what the plain branch and bound does and evaluates no
    more candidates than it plus the pool's failures."""
    monkeypatch.setattr(layout, "_INCUMBENT_POOL", pool)
    m, h = get_model(model), catalog()[hw]
    plain = _search(m, h, gpus, seq, p, staged=False, bound=True)
    staged = _search(m, h, gpus, seq, p, staged=True, bound=True)
    if isinstance(plain, str):
        assert staged == plain
        return
    assert not isinstance(staged, str)
    assert staged[:2] == plain[:2]
    assert staged[2] <= plain[2] + pool


@pytest.mark.parametrize(
    ("model", "hw", "gpus", "seq", "p"),
    [
        ("llama3.1-8b", "h100_sxm", 16, 8192, "bf16"),
        ("llama3.1-70b", "b200_hgx", 64, 32768, "fp8"),
        ("gpt-oss-120b", "gb200_nvl72", 72, 8192, "fp8"),
    ],
)
def test_staged_search_equals_scoring_every_candidate(
    model: str, hw: str, gpus: int, seq: int, p: str
) -> None:
    m, h = get_model(model), catalog()[hw]
    every = _search(m, h, gpus, seq, p, staged=False, bound=False)
    staged = _search(m, h, gpus, seq, p, staged=True, bound=True)
    assert not isinstance(every, str) and not isinstance(staged, str)
    assert staged[:2] == every[:2]
    assert staged[2] < every[2]


if __name__ == "__main__":  # re-record the fixture (only with the code it is meant to pin)
    FIXTURE.write_text(
        json.dumps(
            {
                "recorded_at": "843918e (before the vectorized table and the staged search)",
                "cases": [_record(c) for c in CASES],
            },
            indent=1,
        )
        + "\n"
    )
