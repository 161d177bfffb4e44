"""The measured serving backend (aiconfigurator) and the provenance of serving estimates.

aiconfigurator is a test dependency (pyproject ``dev``); these tests run it live on a few small
configurations (Llama 3.1 8B, one GPU per replica) and check what our adapter makes of it: the
scenario key ``backend: measured`` changes a service's capacity to exactly the measured figure,
configurations it does not cover fail at load time with the key path, and every estimate says
where it comes from (CLI, plan, jobs table, summary).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from engine_helpers import estimate_cli as _cli

from sim.catalog.hardware import Precision, catalog
from sim.catalog.models import get_model
from sim.config.loader import ScenarioError, load_scenario
from sim.perf import PerfError, analytic_provenance, estimate_serving
from sim.perf import measured as measured_mod
from sim.perf.measured import estimate_inference_measured, gemm_kernel_fit, measured_point
from sim.runner import prepare

pytest.importorskip("aiconfigurator", reason="aiconfigurator is a test dependency (.[dev])")

SERVICE: dict[str, Any] = {
    "name": "chat",
    "model": "llama3.1-8b",
    "hardware": "h200_sxm",
    "precision": "fp8",
    "tensor_parallel": 1,
    "input_tokens": 1024,
    "output_tokens": 256,
    "tpot": "40 ms",
    "demand": {"mean_requests_per_s": 2.0, "noise_cv": 0},
}


def _scenario(tiny: Callable[..., dict[str, Any]], **svc: Any) -> dict[str, Any]:
    return tiny(racks=2, hardware="h200_sxm", duration="1 d", inference=[{**SERVICE, **svc}])


def _plan(tiny: Callable[..., dict[str, Any]], **svc: Any) -> Any:
    import yaml

    text = yaml.safe_dump(_scenario(tiny, **svc), sort_keys=False)
    return prepare(load_scenario(text=text, source="tiny.yaml"))[1]


def test_backend_key_changes_capacity_to_the_measured_figure(
    tiny_scenario: Callable[..., dict[str, Any]], without_slo_tables: None
) -> None:
    # the capacities are the plan's, without its SLO tables
    model_plan = _plan(tiny_scenario)
    measured_plan = _plan(tiny_scenario, backend="measured")
    cap_model = model_plan.services[0].capacity_tokens_per_s_per_domain
    cap_measured = measured_plan.services[0].capacity_tokens_per_s_per_domain
    est = estimate_inference_measured(
        "llama3.1-8b", "h200_sxm", "fp8", input_tokens=1024, output_tokens=256, tpot_s=0.040, tp=1
    )
    # one GPU per replica, 8 replicas per HGX node: the capacity is the measured figure x 8
    assert cap_measured == pytest.approx(est.output_tokens_per_s_per_gpu * 8, rel=1e-12)
    assert abs(cap_measured / cap_model - 1.0) > 0.01  # the key acts
    assert model_plan.services[0].estimate["provenance"] == "fitted"
    assert measured_plan.services[0].estimate["provenance"] == "measured"
    assert "aiconfigurator 0.12" in measured_plan.services[0].estimate["provenance_detail"]


def test_measured_run_shows_provenance_in_outputs(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Any, Any]],
) -> None:
    _, tables = run_scenario(_scenario(tiny_scenario, backend="measured"))
    jobs = tables.jobs
    row = jobs[jobs["name"] == "chat"].iloc[0]
    assert row["capacity_provenance"] == "measured"
    svc = tables.summary["inference_services"][0]
    assert svc["capacity_provenance"] == "measured"
    assert svc["capacity_source"].startswith("aiconfigurator 0.12")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"model": "llama2-70b"}, r"model 'llama2-70b' is not covered by the measured reference"),
        ({"precision": "bf16", "model": "gpt3-175b"}, r"'gpt3-175b' is not covered"),
    ],
)
def test_uncovered_configuration_fails_at_load_time_with_the_key(
    tiny_scenario: Callable[..., dict[str, Any]], change: dict[str, Any], match: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        _plan(tiny_scenario, backend="measured", **change)
    assert re.search(r"workloads\.inference\[0\]\.backend: cannot serve on", str(info.value))
    assert re.search(match, str(info.value))


def test_uncovered_hardware_is_a_clear_error() -> None:
    with pytest.raises(PerfError, match=r"hardware 'vr200_nvl144' is not covered.*h100_sxm"):
        estimate_inference_measured(
            "llama3.1-8b", "vr200_nvl144", "fp8", input_tokens=128, output_tokens=128
        )
    with pytest.raises(PerfError, match=r"has no fp4 rate"):
        estimate_inference_measured(
            "llama3.1-8b", "h100_sxm", "fp4", input_tokens=8, output_tokens=8
        )


def test_inline_variant_of_a_catalog_part_is_refused() -> None:
    spec = catalog()["h200_sxm"].model_copy(update={"hbm_bytes": 1e12})
    with pytest.raises(PerfError, match=r"differs from the catalog entry"):
        estimate_serving(
            get_model("llama3.1-8b"),
            spec,
            "fp8",
            backend="measured",
            model_name="llama3.1-8b",
            hardware_name="h200_sxm",
            input_tokens=128,
            output_tokens=128,
        )


def test_missing_aiconfigurator_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    measured_mod.aiconfigurator_version.cache_clear()
    monkeypatch.setattr(measured_mod.importlib.metadata, "version", missing)
    try:
        with pytest.raises(PerfError, match=r"pip install 'aifactory\[measured\]'"):
            measured_point(
                "llama3.1-8b", "h200_sxm", "fp8", input_tokens=9, output_tokens=9, batch=3, tp=1
            )
    finally:
        measured_mod.aiconfigurator_version.cache_clear()


def test_measured_point_is_aiconfigurator_at_that_batch() -> None:
    """The adapter passes our settings through: more batch, more throughput and a longer step;
    a batch beyond the KV cache is flagged, not an error."""
    small, big = (
        measured_point(
            "llama3.1-8b", "h200_sxm", "fp8", input_tokens=1024, output_tokens=256, batch=b, tp=1
        )
        for b in (8, 64)
    )
    assert big.output_tokens_per_s_per_gpu > 2 * small.output_tokens_per_s_per_gpu
    assert big.tpot_s > small.tpot_s > 0
    assert small.kv_fits and 0.5 < small.silicon_share <= 1.0
    huge = measured_point(
        "llama3.1-8b", "h200_sxm", "bf16", input_tokens=8192, output_tokens=8192, batch=4096, tp=1
    )
    assert not huge.kv_fits and math.isnan(huge.output_tokens_per_s_per_gpu)


def test_measured_batch_is_capped_at_max_seqs_like_the_analytic_one() -> None:
    """``serving.max_seqs`` acts on the measured backend too (it was ignored): the batch is at
    most max_seqs, and where the KV cache would hold more the estimate says max_seqs limited it
    and gives aiconfigurator's figures at that batch."""
    args: dict[str, Any] = {"input_tokens": 1024, "output_tokens": 256, "tp": 1}
    free = estimate_inference_measured("llama3.1-8b", "h200_sxm", "fp8", **args)
    assert free.batch > 64 and free.limited_by in ("kv_cache", "max_batch")
    capped = estimate_serving(
        get_model("llama3.1-8b"),
        catalog()["h200_sxm"],
        "fp8",
        backend="measured",
        model_name="llama3.1-8b",
        hardware_name="h200_sxm",
        max_seqs=64,
        **args,
    )
    assert capped.batch == 64 and capped.limited_by == "max_seqs" and capped.max_seqs == 64
    assert capped.max_batch_kv == free.max_batch_kv  # the KV cache itself is unchanged
    at_64 = measured_point("llama3.1-8b", "h200_sxm", "fp8", batch=64, **args)
    assert capped.output_tokens_per_s_per_gpu == at_64.output_tokens_per_s_per_gpu
    assert capped.output_tokens_per_s_per_gpu < free.output_tokens_per_s_per_gpu
    # with a target the search stays below the cap: 40 ms TPOT alone allows more than 64 here
    loose = estimate_inference_measured("llama3.1-8b", "h200_sxm", "fp8", tpot_s=0.040, **args)
    tight = estimate_inference_measured(
        "llama3.1-8b", "h200_sxm", "fp8", tpot_s=0.040, max_seqs=64, **args
    )
    assert loose.batch > 64 and tight.batch == 64 and tight.limited_by == "max_seqs"
    with pytest.raises(PerfError, match="max_seqs must be at least 1"):
        estimate_inference_measured("llama3.1-8b", "h200_sxm", "fp8", max_seqs=0, **args)


def test_analytic_provenance_rule() -> None:
    hw = catalog()
    assert analytic_provenance(hw["h100_sxm"], "fp8")[0] == "fitted"
    assert analytic_provenance(hw["h200_sxm"], "fp8")[0] == "fitted"
    # H100's efficiencies are H200's measurements (same GH100 die), marked weak in the catalog
    prov, detail = analytic_provenance(hw["h100_sxm"], "bf16")
    assert prov == "assumption" and "efficiency.gemm.bf16" in detail
    assert analytic_provenance(hw["h200_sxm"], "bf16")[0] == "from specs"
    assert analytic_provenance(hw["b200_hgx"], "fp8")[0] == "from specs"
    # FP4 on GB200: its FP4 efficiencies are measured (catalog S123), no longer assumed
    assert analytic_provenance(hw["gb200_nvl72"], "fp4")[0] == "from specs"
    prov, detail = analytic_provenance(hw["vr200_nvl144"], "fp8")
    assert prov == "assumption" and "peak_flops.fp8" in detail  # weak catalog value
    assert "efficiency.gemm.fp8" in detail  # Rubin's efficiencies are GB200's (no measurement)


CLI = [
    *("estimate", "serve", "--model", "llama3.1-8b", "--hardware", "h200_sxm", "--tp", "1"),
    *("--precision", "fp8", "--input", "1024", "--output", "256", "--tpot", "40ms", "--json"),
]


def test_cli_backend_measured_and_provenance(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(CLI) == 0
    model = json.loads(capsys.readouterr().out)
    assert _cli([*CLI, "--backend", "measured"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert model["provenance"] == "fitted" and measured["provenance"] == "measured"
    assert measured["provenance_detail"].startswith("aiconfigurator 0.12")
    assert measured["output_tokens_per_s_per_gpu"] != model["output_tokens_per_s_per_gpu"]
    bad = ["estimate", "serve", "--model", "llama2-70b", "--hardware", "h200_sxm"]
    assert _cli([*bad, "--input", "9", "--output", "9", "--backend", "measured"]) == 2
    assert "not covered by the measured reference" in capsys.readouterr().err
    assert _cli([*CLI, "--engine", "vllm"]) == 2
    assert "--engine chooses the measured data" in capsys.readouterr().err


@pytest.mark.parametrize("hw", ["h200_sxm", "b200_hgx", "gb200_nvl72", "b300_hgx", "gb300_nvl72"])
def test_catalog_gemm_kernel_is_derived_from_the_measured_gemms(hw: str) -> None:
    """catalog efficiency.gemm_kernel = aiconfigurator's FP8/FP4 GEMMs less the quantize op
    (benchmarks/gemm_kernel_efficiency.py); efficiency.gemm = the same GEMMs as measured; the
    quantize op's fixed time agrees with S123's own standalone FP8 quantize ops within 2 us."""
    spec = catalog()[hw]
    for f in gemm_kernel_fit(hw):
        p = Precision(f.precision)
        assert spec.efficiency.gemm_kernel[p] == pytest.approx(f.kernel_alone, abs=5e-4), p
        assert spec.efficiency.gemm[p] == pytest.approx(f.with_quantize, abs=0.006), p
        assert f.kernel_alone > f.with_quantize
        if p is Precision.FP8:
            assert f.quantize_fixed_s == pytest.approx(f.quantize_ops_s, abs=2e-6)
