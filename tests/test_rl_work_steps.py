"""RL post-training as work in the flagship scenarios (issue 12): ``rl.steps`` may be a
distribution each job draws from, ``seq_len`` is refused for RL jobs, the RL context error
speaks of rollouts, and a reasoning ramp after the run's end is refused."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.build import Plan
from sim.config.loader import ScenarioError, load_scenario
from sim.engine.arrivals import draw_work
from sim.io import RunTables

ROOT = Path(__file__).resolve().parents[1]

RL: dict[str, Any] = {
    "name": "rl",
    "kind": "rl",
    "model": "llama3.1-8b",
    "arrival_rate": "24 / d",
    "gpus": 72,
    "rl": {"steps": {"distribution": "lognormal", "mean": 40, "cv": 1.0}, "rollout_tokens": 500},
}


def _on(tiny_scenario: Callable[..., dict[str, Any]], *streams: dict[str, Any]) -> Any:
    return tiny_scenario(racks=4, posttraining=list(streams))


def test_drawn_steps_act_per_job(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    """Each job draws its own whole number of steps and runs them at the stream's rate."""
    plan, tables = run_scenario(_on(tiny_scenario, RL))
    st = plan.streams[0]
    assert st.work == 40.0 and st.work_draw is not None
    jobs = tables.jobs[tables.jobs["workload"] == "posttraining"]
    done = jobs[jobs["state"] == "finished"]
    assert len(done) >= 10
    work = jobs["work"].to_numpy()
    assert (work >= 1).all() and (work == np.rint(work)).all()
    assert len(set(work.tolist())) > len(work) // 2  # drawn, not one value
    for _, j in done.iterrows():
        run = j["finish_s"] - j["first_start_s"]
        stalls = j["checkpoints"] * j["checkpoint_write_s"]
        assert run == pytest.approx(j["work"] / st.rates[0] + stalls, rel=1e-9)


def test_draw_work_has_the_mean_and_spread_asked(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    def stream(steps: Any) -> Any:
        return plan_of(_on(tiny_scenario, {**RL, "rl": {**RL["rl"], "steps": steps}})).streams[0]

    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    assert (draw_work(stream(40), rng, 5) == 40.0).all()
    assert rng.bit_generator.state == before  # a fixed count draws nothing
    for steps, cv in (
        ({"distribution": "lognormal", "mean": 1500, "cv": 1.0}, 1.0),
        ({"distribution": "exponential", "mean": 1500}, 1.0),
        ({"distribution": "lognormal", "mean": 1500, "cv": 0.3}, 0.3),
    ):
        x = draw_work(stream(steps), np.random.default_rng(7), 200_000)
        assert x.mean() == pytest.approx(1500, rel=0.02)
        assert x.std() / x.mean() == pytest.approx(cv, rel=0.05)
        assert x.min() >= 1.0 and (x == np.rint(x)).all()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            {"distribution": "lognormal", "mean": 0.5},
            r"posttraining\[0\]\.rl\.steps\.mean: 0\.5 is outside the plausible range"
            r" \[1, 1e\+07\] \(ten million RL steps is not one job\)",
        ),
        (
            {"distribution": "lognormal", "mean": 100, "cv": 0},
            r"rl\.steps\.cv: 0 is outside the plausible range \(0, 10\]",
        ),
        (
            {"distribution": "normal", "mean": 100},
            r"rl\.steps: distribution: expected 'fixed', 'exponential' or 'lognormal',"
            r" got 'normal'",
        ),
        (0, r"rl\.steps: 0 is outside the plausible range \[1, 1e\+07\]"),
    ],
)
def test_bad_steps_are_refused_at_their_key(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
    steps: Any,
    message: str,
) -> None:
    bad = {**RL, "rl": {**RL["rl"], "steps": steps}}
    with pytest.raises(ScenarioError, match=message):
        plan_of(_on(tiny_scenario, bad))


def test_seq_len_is_refused_for_rl(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    with pytest.raises(ScenarioError) as info:
        plan_of(_on(tiny_scenario, {**RL, "seq_len": 512}))
    assert (
        "workloads.posttraining[0].seq_len: seq_len applies only to kind: sft or preference"
        " (their training sequences); this job is kind: rl (the default), whose sequences are"
        " rl.prompt_tokens + the rollout" in str(info.value)
    )
    # the default, as a resolved scenario writes it back, passes
    plan_of(_on(tiny_scenario, {**RL, "seq_len": 8192}))


def test_the_rl_context_error_speaks_of_rollouts(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    long = {**RL, "rl": {**RL["rl"], "rollout_tokens": 90_000, "rollout_growth": 1.5}}
    with pytest.raises(ScenarioError) as info:
        plan_of(_on(tiny_scenario, long))
    msg = str(info.value)
    assert (
        "workloads.posttraining[0].rl: an RL rollout reaches 136,024 tokens at the last step:"
        " rl.prompt_tokens 1,024 + a rollout of 135,000 tokens (rl.rollout_tokens 90,000 x"
        " rl.rollout_growth 1.5), more than the policy model's context window of 131,072"
        " tokens" in msg
    )
    assert "request" not in msg and "reasoning" not in msg
    short = {**RL, "rl": {**RL["rl"], "rollout_tokens": 131_000, "rollout_growth": 0.5}}
    with pytest.raises(ScenarioError, match=r"132,024 tokens at the first step"):
        plan_of(_on(tiny_scenario, short))


def test_a_reasoning_ramp_after_the_end_is_refused(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    svc = {
        "name": "r",
        "model": "llama3.1-8b",
        "demand": {"mean_requests_per_s": 5},
        "input_tokens": 500,
        "output_tokens": 100,
        "reasoning_tokens": 500,
        "reasoning_growth": {"factor": 2.0, "start": "3 d", "over": "1 d"},
    }
    with pytest.raises(ScenarioError) as info:
        plan_of(tiny_scenario(duration="2 d", inference=[svc]))
    assert (
        "workloads.inference[0].reasoning_growth.start: the reasoning ramp starts at 3 d, at or"
        " after the end of the run (2 d): it would change nothing; run longer, or start it within"
        " the run (--set workloads.inference.0.reasoning_growth.start=...)" in str(info.value)
    )


FLAGSHIPS = [
    "sim/scenarios/default_gigawatt_gb200.yaml",
    "scenarios/gigawatt_vera_rubin.yaml",
    "scenarios/heat_wave.yaml",
    "scenarios/demand_response.yaml",
    "scenarios/oversubscribed.yaml",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios" / "generations").glob("*.yaml")),
]


@pytest.mark.parametrize("path", FLAGSHIPS)
def test_flagship_post_training_is_work(path: str) -> None:
    """No flagship scenario gives post-training a wall-clock duration (the same on H100 and
    on Rubin): its jobs are RL steps of a model, drawn per job."""
    sc = load_scenario(ROOT / path).scenario
    for s in sc.workloads.posttraining:
        assert s.duration is None and s.model is not None and s.rl is not None
        assert not math.isclose(getattr(s.rl.steps, "cv", 0.0), 0.0)


def test_the_flagship_rl_step_is_faster_on_newer_hardware() -> None:
    """The default's RL stream, on each generation the generation scenarios compare, at its
    smallest and largest job: every newer generation takes less time per step."""
    from sim.build import _rl_step_s
    from sim.catalog.hardware import catalog
    from sim.catalog.models import get_model

    s = load_scenario(ROOT / FLAGSHIPS[0]).scenario.workloads.posttraining[0]
    assert s.model is not None
    model = get_model(s.model)
    gens = ("h100_sxm", "gb200_nvl72", "gb300_nvl72", "vr200_nvl144", "rubin_ultra_nvl576")
    for gpus in (576, 4608):
        steps = [_rl_step_s(s, model, catalog()[h], gpus) for h in gens]
        assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)
