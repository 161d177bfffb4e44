"""The serving runtime (docs/performance-model.md, "Serving runtime").

``fused`` (default): the activations' FP8/FP4 quantization is fused into the producing kernels,
so a GEMM costs the GEMM kernel alone (catalog ``efficiency.gemm_kernel``, the BF16 kernel's
fixed time). ``torch_flow``: a quantize kernel per layer, as aiconfigurator measured. The
argument, the scenario key ``workloads.inference[].runtime`` (fleet capacity and the serving
simulator's steps) and ``aifactory estimate serve --runtime`` must each change the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from engine_helpers import estimate_cli as _cli

from sim.catalog.hardware import Efficiency, Precision, catalog
from sim.catalog.models import get_model
from sim.config.loader import ScenarioError, load_scenario, resolved_dict
from sim.config.schema import InferenceService
from sim.perf import PerfError, estimate_inference
from sim.report.html import render_report
from sim.runner import prepare
from sim.serving.shape import shape_of_service

H200 = catalog()["h200_sxm"]
LLAMA2_70B = get_model("llama2-70b")
MLPERF = {"input_tokens": 294, "output_tokens": 274}


def _serve(precision: str, runtime: str, **kw: Any) -> float:
    return estimate_inference(
        LLAMA2_70B, H200, precision, runtime=runtime, **MLPERF, **kw
    ).output_tokens_per_s_per_gpu


def test_fused_is_faster_at_fp8_and_the_same_at_bf16() -> None:
    assert _serve("fp8", "fused") > _serve("fp8", "torch_flow") * 1.02
    assert _serve("bf16", "fused", tp=4) == _serve("bf16", "torch_flow", tp=4)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(PerfError, match=r"unknown serving runtime 'eager' \(use one of: fused,"):
        _serve("fp8", "eager")


SERVICE: dict[str, Any] = {
    "name": "chat",
    "model": "llama3.1-8b",
    "precision": "fp8",
    "input_tokens": 1024,
    "output_tokens": 256,
    "demand": {"mean_requests_per_s": 1.0, "noise_cv": 0},
}


def _plan(tiny: Callable[..., dict[str, Any]], **svc: Any) -> Any:
    data = tiny(racks=2, hardware="h200_sxm", duration="1 d", inference=[{**SERVICE, **svc}])
    return prepare(load_scenario(text=yaml.safe_dump(data, sort_keys=False), source="t.yaml"))[1]


def test_scenario_key_changes_the_fleet_capacity(tiny_scenario: Callable[..., Any]) -> None:
    caps = {
        rt: _plan(tiny_scenario, runtime=rt).services[0].capacity_tokens_per_s_per_domain
        for rt in ("fused", "torch_flow")
    }
    assert caps["fused"] > caps["torch_flow"] * 1.02
    default = _plan(tiny_scenario).services[0].capacity_tokens_per_s_per_domain
    assert default == caps["fused"]


def test_scenario_key_changes_the_serving_simulator_step() -> None:
    steps = {}
    for rt in ("fused", "torch_flow"):
        v = InferenceService.model_validate({**SERVICE, "hardware": "h200_sxm", "runtime": rt})
        shape = shape_of_service(v, get_model("llama3.1-8b"), H200, tp=1)
        steps[rt] = shape.step().decode_time(64, 64 * 1024.0)
    assert steps["fused"] < steps["torch_flow"] * 0.98


def test_fused_runtime_with_the_measured_backend_is_refused(
    tiny_scenario: Callable[..., Any],
) -> None:
    with pytest.raises(
        ScenarioError, match=r"workloads\.inference\[0\].*runtime: fused with backend measured"
    ):
        _plan(tiny_scenario, runtime="fused", backend="measured")


def test_runtime_with_bf16_is_refused(tiny_scenario: Callable[..., Any]) -> None:
    """BF16 layers have no quantize step: the key would change nothing (review)."""
    with pytest.raises(ScenarioError, match=r"runtime: torch_flow with precision bf16 changes"):
        _plan(tiny_scenario, runtime="torch_flow", precision="bf16")


def test_the_runtime_follows_the_backend_and_a_resolved_scenario_loads_again(
    tiny_scenario: Callable[..., Any],
) -> None:
    """A measured service's request level runs aiconfigurator's torch_flow; the run folder's
    own resolved scenario.yaml loads again (review: it was refused)."""
    data = tiny_scenario(racks=2, hardware="h200_sxm", duration="1 d", inference=[
        {**SERVICE, "backend": "measured"}, {**SERVICE, "name": "b"},
    ])  # fmt: skip
    sc = load_scenario(text=yaml.safe_dump(data, sort_keys=False), source="t.yaml").scenario
    assert [v.serving_runtime for v in sc.workloads.inference] == ["torch_flow", "fused"]
    text = yaml.safe_dump(resolved_dict(sc))
    assert load_scenario(text=text, source="scenario.yaml").scenario == sc


CLI = [
    *("estimate", "serve", "--model", "llama2-70b", "--hardware", "b200_hgx", "--tp", "1"),
    *("--precision", "fp4", "--input", "294", "--output", "274", "--json"),
]


def test_cli_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    out = {}
    for rt in ("fused", "torch_flow"):
        assert _cli([*CLI, "--runtime", rt]) == 0
        out[rt] = json.loads(capsys.readouterr().out)
    assert out["fused"]["runtime"] == "fused" and out["torch_flow"]["runtime"] == "torch_flow"
    ratio = (
        out["fused"]["output_tokens_per_s_per_gpu"]
        / out["torch_flow"]["output_tokens_per_s_per_gpu"]
    )
    assert ratio > 1.05  # MLPerf's ~1,300 sequences per iteration: 9% more
    assert _cli(CLI) == 0
    assert json.loads(capsys.readouterr().out)["runtime"] == "fused"
    assert _cli([*CLI, "--runtime", "fused", "--backend", "measured"]) == 2
    assert "--runtime chooses how the analytic model" in capsys.readouterr().err


def test_an_entry_with_its_own_gemm_does_not_borrow_hoppers_kernel_ceiling() -> None:
    """An inline hardware entry that gives ``efficiency.gemm`` but no ``gemm_kernel`` keeps its
    own figure for both runtimes (Hopper's 0.669 could exceed it); one that gives neither gets
    Hopper's pair (0.65 with the quantize op, 0.669 without)."""
    own = Efficiency.model_validate({"gemm": {"bf16": 0.5, "fp8": 0.45}})
    assert own.gemm_kernel_at(Precision.FP8) == own.gemm_at(Precision.FP8) == 0.45
    hopper = Efficiency()
    assert (hopper.gemm_at(Precision.FP8), hopper.gemm_kernel_at(Precision.FP8)) == (0.65, 0.669)
    assert hopper.gemm_kernel_at(Precision.BF16) == hopper.gemm_at(Precision.BF16)


def test_the_run_summary_and_report_name_the_serving_engine(
    tiny_scenario: Callable[..., Any], run_scenario: Callable[..., Any]
) -> None:
    """A service's card says which KV policy and runtime its capacity was estimated for."""
    data = tiny_scenario(racks=2, hardware="h200_sxm", duration="2 h", inference=[
        {**SERVICE, "runtime": "torch_flow", "kv_cache": "paged"},
    ])  # fmt: skip
    _, tables = run_scenario(data)
    (svc,) = tables.summary["inference_services"]
    assert (svc["kv_cache"], svc["runtime"]) == ("paged", "torch_flow")
    assert "paged KV, torch_flow runtime" in render_report(tables)
