"""Every published case the performance model is compared with, as one table of numbers.

Used by ``benchmarks/sensitivity.py`` (which re-runs it with each calibration constant moved)
and printable on its own:

    python benchmarks/validation_cases.py

Each case says which set it belongs to (``fit``: a constant was fitted on it; ``check``: it was
not used to fit anything) and the tolerance its test holds it to. The cases and their inputs are
the ones of ``tests/perf/test_validation.py``, ``test_validation_blackwell.py`` and
``test_overlap_and_decode.py`` (validation.md A.1-A.3, C.1; published Blackwell serving results;
see docs/performance-model.md). The automatic-layout row compares with the MFU Meta published for
its own layout (41%), so it carries 15%, as its test does. Serving rows use the default serving
runtime, ``fused`` (docs/performance-model.md, "Serving runtime").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import TrainingLayout, default_vp, estimate_inference, estimate_training


@dataclass(frozen=True)
class Case:
    name: str
    published: float
    unit: str
    tolerance: float  # relative
    role: str  # "fit" or "check"
    predict: Callable[[], float]


def _a1(gpus: int, tp: int, cp: int, pp: int, dp: int, seq: int, per_dp: int) -> float:
    model = get_model("llama3.1-405b")
    lay = TrainingLayout(tp=tp, pp=pp, vp=default_vp(model, pp), cp=cp, dp=dp, zero_stage=2)
    est = estimate_training(
        model,
        catalog()["h100_sxm"],
        gpus,
        "bf16",
        seq_len=seq,
        global_batch=per_dp * dp,
        layout=lay,
    )
    return est.model_tflops_per_gpu


def _a1_auto() -> float:
    """A.1's 16K-GPU job with the layout chosen automatically (published 41% MFU)."""
    est = estimate_training(
        get_model("llama3.1-405b"), catalog()["h100_sxm"], 16384, "bf16", global_batch=2048
    )
    return est.mfu * 100.0


def _a2(gpus: int, dp: int, gb: int) -> float:
    lay = TrainingLayout(tp=8, pp=8, vp=8, cp=2, dp=dp, microbatch=1)
    return estimate_training(
        get_model("llama3.1-405b"),
        catalog()["h100_sxm"],
        gpus,
        "fp8",
        seq_len=8192,
        global_batch=gb,
        layout=lay,
    ).step_time_s


def _a3(gpus: int, tp: int, pp: int, vp: int, mbs: int, gb: int, tokens: float) -> float:
    lay = TrainingLayout(tp=tp, pp=pp, vp=vp, dp=gpus // (tp * pp), microbatch=mbs)
    est = estimate_training(
        get_model("gpt3-175b"),
        catalog()["h100_sxm"],
        gpus,
        "fp8",
        seq_len=2048,
        global_batch=gb,
        layout=lay,
    )
    return tokens / est.tokens_per_s / 60.0


def _c1(hw: str, server: bool, precision: str = "fp8", tp: int | None = None) -> float:
    return estimate_inference(
        get_model("llama2-70b"),
        catalog()[hw],
        precision,
        input_tokens=294,
        output_tokens=274,
        ttft_s=2.0 if server else None,
        tpot_s=0.2 if server else None,
        tp=tp,
    ).output_tokens_per_s_per_gpu


def cases() -> list[Case]:
    """All cases, fitting set first."""
    out = [
        Case(
            "A.1 405B 8,192 H100 TFLOP/s",
            430.0,
            "TFLOP/s",
            0.10,
            "fit",
            lambda: _a1(8192, 8, 1, 16, 64, 8192, 32),
        ),
        Case(
            "A.1 405B 16,384 H100 TFLOP/s",
            400.0,
            "TFLOP/s",
            0.10,
            "fit",
            lambda: _a1(16384, 8, 1, 16, 128, 8192, 16),
        ),
        Case(
            "A.1 405B 16,384 H100 CP16 TFLOP/s",
            380.0,
            "TFLOP/s",
            0.10,
            "check",
            lambda: _a1(16384, 8, 16, 16, 8, 131072, 16),
        ),
        Case("A.1 405B 16,384 H100 automatic layout MFU %", 41.0, "%", 0.15, "check", _a1_auto),
        Case("A.2 405B FP8 8,192 H100 step", 5.18, "s", 0.10, "fit", lambda: _a2(8192, 64, 1536)),
        Case(
            "A.2 405B FP8 2,048 H100 step", 14.21, "s", 0.10, "check", lambda: _a2(2048, 16, 1152)
        ),
        Case("A.2 405B FP8 512 H100 step", 55.10, "s", 0.10, "fit", lambda: _a2(512, 4, 1152)),
        Case(
            "A.3 GPT-3 FP8 11,616 H100 TTT",
            3.44,
            "min",
            0.15,
            "fit",
            lambda: _a3(11616, 4, 6, 8, 1, 2904, 1.231e9),
        ),
        Case(
            "A.3 GPT-3 FP8 10,752 H100 TTT",
            3.71,
            "min",
            0.15,
            "check",
            lambda: _a3(10752, 4, 6, 8, 1, 2688, 1.211e9),
        ),
        Case(
            "A.3 GPT-3 FP8 512 H100 TTT",
            50.73,
            "min",
            0.15,
            "fit",
            lambda: _a3(512, 4, 8, 4, 2, 2304, 1.194e9),
        ),
        Case(
            "C.1 70B FP8 H100 offline",
            3066.0,
            "tok/s/GPU",
            0.15,
            "fit",
            lambda: _c1("h100_sxm", False),
        ),
        Case(
            "C.1 70B FP8 H100 server",
            2701.0,
            "tok/s/GPU",
            0.20,
            "check",
            lambda: _c1("h100_sxm", True),
        ),
        Case(
            "C.1 70B FP8 H200 offline",
            3913.0,
            "tok/s/GPU",
            0.15,
            "fit",
            lambda: _c1("h200_sxm", False),
        ),
        Case(
            "C.1 70B FP8 H200 server",
            3654.0,
            "tok/s/GPU",
            0.20,
            "check",
            lambda: _c1("h200_sxm", True),
        ),
        # Blackwell, never used to fit anything (docs/performance-model.md, "Checking set")
        Case(
            "MLPerf Inf v4.1 70B FP4 1x B200 offline",
            11264.0,
            "tok/s/GPU",
            0.15,
            "check",
            lambda: _c1("b200_hgx", False, "fp4", tp=1),
        ),
        Case(
            "MLPerf Inf v4.1 70B FP4 1x B200 server",
            10755.0,
            "tok/s/GPU",
            0.15,
            "check",
            lambda: _c1("b200_hgx", True, "fp4", tp=1),
        ),
        Case(
            "Azure 70B FP4 GB200 NVL72 offline (865k/72)",
            865000.0 / 72,
            "tok/s/GPU",
            0.15,
            "check",
            lambda: _c1("gb200_nvl72", False, "fp4"),
        ),
        Case(
            "Azure 70B FP4 GB300 NVL72 offline (1.1M/72)",
            1100948.3 / 72,
            "tok/s/GPU",
            0.15,
            "check",
            lambda: _c1("gb300_nvl72", False, "fp4"),
        ),
    ]
    return sorted(out, key=lambda c: c.role != "fit")


def main() -> None:
    print(
        f"{'case':52s} {'set':5s} {'published':>10s} {'predicted':>10s} {'error':>7s} {'tol':>5s}"
    )
    errors: dict[str, list[float]] = {"fit": [], "check": []}
    for c in cases():
        p = c.predict()
        err = p / c.published - 1.0
        errors[c.role].append(err)
        flag = "" if abs(err) <= c.tolerance else "  OUT"
        print(
            f"{c.name:52s} {c.role:5s} {c.published:10.4g} {p:10.4g} {err:+7.1%}"
            f" {c.tolerance:5.0%}{flag}"
        )
    for role, errs in errors.items():
        mae = sum(abs(e) for e in errs) / len(errs)
        worst = max(errs, key=abs)
        print(f"{role} set: {len(errs)} cases, mean |error| {mae:.1%}, largest {worst:+.1%}")


if __name__ == "__main__":
    main()
