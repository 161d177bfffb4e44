"""``aifactory estimate serve`` with companion prefill (Rubin CPX) serves what the fleet engine
plans for the same rack: the lesser of what the GPUs decode and what the rack's prefill parts
can prefill for (review: it counted every replica the GPUs hold, 15x too many here)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import pytest

from sim.build import Plan
from sim.cli.estimate import add_parser

#: estimate serve is checked against the plan's layout and capacity, never its services'
#: request-level SLO tables: plans are built without them (seconds each; the hybrid's and the
#: companion's are probed in tests/test_disaggregated_fleet.py)
pytestmark = pytest.mark.usefixtures("without_slo_tables")

LONG = {"model": "deepseek-r1", "input_tokens": 100_000, "output_tokens": 1000}


def _estimate(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="aifactory")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["estimate", "serve", *argv, "--json"])
    assert args.handler(args) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_companion_deployment_is_limited_by_the_prefill_pool_as_in_the_fleet(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
    capsys: pytest.CaptureFixture[str],
) -> None:
    svc = {
        "name": "r1-long",
        **LONG,
        "demand": {"mean_requests_per_s": 0.5},
        "ttft": "2 s",
        "tpot": "50 ms",
        "prefill": "companion",
        # as `aifactory estimate serve` takes a service: one prompt and one output length,
        # TensorRT-LLM's batch cap (the scenario's defaults are the Azure spreads and vLLM's
        # 1,024 sequences)
        "serving": {"input_cv": 0, "output_cv": 0, "max_seqs": 4096},
    }
    data = tiny_scenario(hardware="vr200_nvl144_cpx", racks=2, grid_power="2 MW", inference=[svc])
    (planned,) = plan_of(data).services
    tp = int(planned.estimate["tp"])
    per_rack = 72 // tp  # the replicas one rack's GPUs hold
    argv = [
        *("--model", "deepseek-r1", "--hardware", "vr200_nvl144_cpx"),
        *("--precision", str(planned.estimate["precision"]), "--input", "100000"),
        *("--output", "1000", "--ttft", "2s", "--tpot", "50ms"),
        *("--prefill-hardware", "companion"),  # one rack by default, as the fleet's domain
    ]
    out = _estimate(argv, capsys)
    assert out["tp"] == tp and out["replicas"] == per_rack
    assert out["companion_prefill_parts"] == 144  # one rack's Rubin CPX
    # 100k-token prompts: the rack's CPX cannot prefill for every replica its GPUs hold
    assert out["deployment_limited_by"] == "prefill"
    assert out["replicas_served"] < per_rack
    assert out["output_tokens_per_s"] == pytest.approx(
        planned.capacity_tokens_per_s_per_domain, rel=1e-9
    )


def test_short_prompts_are_decode_bound(capsys: pytest.CaptureFixture[str]) -> None:
    out = _estimate(
        [
            *("--model", "llama3.1-70b", "--hardware", "vr200_nvl144_cpx", "--precision", "fp4"),
            *("--input", "1000", "--output", "1000", "--tpot", "50ms"),
            *("--prefill-hardware", "companion", "--gpus", "72", "--tp", "8"),
        ],
        capsys,
    )
    assert out["deployment_limited_by"] == "decode"
    assert out["replicas_served"] == out["replicas"] == 9


def test_the_default_is_the_fleets_auto_on_one_rack(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --prefill, estimate serve arranges the rack as the fleet's default (auto) does,
    with the same function (mix_domain), and without --gpus it deploys one rack: the CPX are
    counted per rack (it used to be co-located here while the fleet was companion)."""
    from sim.catalog.hardware import catalog
    from sim.catalog.models import get_model
    from sim.perf import mix_domain

    out = _estimate(
        [
            *("--model", "deepseek-r1", "--hardware", "vr200_nvl144_cpx", "--precision", "fp8"),
            *("--input", "100000", "--output", "1000", "--ttft", "2s", "--tpot", "50ms"),
        ],
        capsys,
    )
    mix = mix_domain(
        get_model("deepseek-r1"),
        catalog()["vr200_nvl144_cpx"],
        "fp8",
        gpus=72,
        input_tokens=100_000,
        output_tokens=1000,
        ttft_s=2.0,
        tpot_s=0.05,
    )
    assert out["prefill"] == mix.mode == "hybrid"
    assert out["output_tokens_per_s"] == pytest.approx(mix.capacity_tokens_per_s, rel=1e-12)
    assert out["companion_prefill_parts"] == 144
    assert out["gpu_replica_kind"] == "gpu_prefill"
    assert out["replicas_served"] == pytest.approx(mix.replicas)


def test_the_scenario_s_serving_defaults_can_be_given_to_estimate_serve(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --max-seqs, --input-cv and --output-cv, estimate serve plans what a fleet run with
    the scenario's serving defaults (vLLM's 1,024 sequences, the Azure length spreads) plans
    (review: the two disagreed with no way to match them)."""
    svc = {"name": "r1-long", **LONG, "demand": {"mean_requests_per_s": 0.5}}
    svc |= {"ttft": "2 s", "tpot": "50 ms"}
    data = tiny_scenario(hardware="vr200_nvl144_cpx", racks=2, grid_power="2 MW", inference=[svc])
    (planned,) = plan_of(data).services
    argv = [
        *("--model", "deepseek-r1", "--hardware", "vr200_nvl144_cpx"),
        *("--precision", str(planned.estimate["precision"]), "--input", "100000"),
        *("--output", "1000", "--ttft", "2s", "--tpot", "50ms"),
        *("--max-seqs", "1024", "--input-cv", "0.53", "--output-cv", "1.17"),
    ]
    out = _estimate(argv, capsys)
    assert out["output_tokens_per_s"] == pytest.approx(
        planned.capacity_tokens_per_s_per_domain, rel=1e-9
    )
