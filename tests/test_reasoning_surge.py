"""The reasoning surge (issue 12): ``reasoning_growth`` ramps a service's reasoning length over
time, and ``scenarios/reasoning_surge.yaml`` runs (shortened)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.build import Plan
from sim.config.loader import ScenarioError, load_scenario
from sim.engine.core import Engine
from sim.runner import prepare, simulate

SURGE = Path(__file__).resolve().parents[1] / "scenarios" / "reasoning_surge.yaml"


def test_reasoning_growth_scales_the_demand_per_tick() -> None:
    """With the same seed the demand draws are the same; the ramp multiplies each tick's
    output tokens by (output + reasoning x m(t)) / (output + reasoning)."""
    short = ["run.duration=2 d", "workloads.posttraining=[]"]
    ramp = ["workloads.inference.0.reasoning_growth={factor: 2, start: 12 h, over: 1 d}"]
    flat = ["workloads.inference.0.reasoning_growth=null"]
    demands = []
    for extra in (ramp, flat):
        _, plan = prepare(load_scenario(SURGE, [*short, *extra]))
        e = Engine(plan)
        e._setup()
        demands.append(np.asarray(e.services[0].demand))
    ticks = np.arange(demands[0].shape[0]) * 300.0
    m = 1.0 + np.clip((ticks - 43_200.0) / 86_400.0, 0.0, 1.0)
    want = (500 + 3000 * m) / 3500
    np.testing.assert_allclose(demands[0] / demands[1], want, rtol=1e-12)
    assert demands[0][-1] / demands[1][-1] == pytest.approx(6500 / 3500)


def test_capacity_is_planned_at_the_longest_reasoning() -> None:
    """The replicas must hold the latency targets at the longest reasoning of the run: the
    capacity per domain is that of a service with the end multiplier's reasoning length."""
    caps = []
    for over in (
        ["workloads.inference.0.reasoning_growth={factor: 2, over: 1 d}"],
        [
            "workloads.inference.0.reasoning_growth=null",
            "workloads.inference.0.reasoning_tokens=6000",
        ],
        ["workloads.inference.0.reasoning_growth=null"],
    ):
        _, plan = prepare(load_scenario(SURGE, ["run.duration=2 d", *over]))
        caps.append(plan.services[0].capacity_tokens_per_s_per_domain)
    assert caps[0] == caps[1] != caps[2]


def test_reasoning_surge_runs_short() -> None:
    """Two days, reasoning doubling in an hour at the end of the first: the large tier's demand
    and the GPUs inference holds grow, post-training keeps running in what is left."""
    over = [
        "run.duration=2 d",
        "workloads.inference.0.reasoning_growth={factor: 2, start: 23 h, over: 1 h}",
    ]
    _, plan = prepare(load_scenario(SURGE, over))
    tables, _ = simulate(plan)
    t = tables.traces
    day = (t["time_s"] // 86_400).astype(int)
    demand = t["service.reasoning-large.demand_tokens_per_s"].groupby(day).mean()
    assert demand[1] > 1.7 * demand[0]  # (500 + 6000) / (500 + 3000) = 1.86, noise aside
    gpus = t["gpus_inference"].groupby(day).mean()
    assert gpus[1] > gpus[0]
    s = tables.summary["inference_services"][0]
    assert s["name"] == "reasoning-large" and s["slo_attainment"] > 0.9
    assert (tables.jobs["workload"] == "posttraining").any()


def test_growth_needs_reasoning_tokens(
    tiny_scenario: Callable[..., dict[str, Any]], plan_of: Callable[..., Plan]
) -> None:
    data = tiny_scenario(
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "demand": {"mean_requests_per_s": 1},
                "input_tokens": 100,
                "output_tokens": 100,
                "reasoning_growth": {"factor": 2, "over": "30 d"},
            }
        ]
    )
    with pytest.raises(ScenarioError, match="reasoning_growth multiplies reasoning_tokens"):
        plan_of(data)
