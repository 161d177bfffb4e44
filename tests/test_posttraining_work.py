"""Post-training as work (issue 12): SFT and preference jobs train on tokens, RL jobs run
steps of rollout generation plus policy update plus weight sync, at the rates the performance
model gives on the hardware they run on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.build import Plan
from sim.config.loader import ScenarioError
from sim.io import RunTables

SFT: dict[str, Any] = {
    "name": "sft",
    "kind": "sft",
    "model": "llama3.1-8b",
    "arrival_rate": "6 / d",
    "gpus": 72,
    "tokens": 1e10,
}
RL: dict[str, Any] = {
    "name": "rl",
    "kind": "rl",
    "model": "llama3.1-8b",
    "arrival_rate": "4 / d",
    "gpus": 72,
    "rl": {"steps": 50, "rollout_tokens": 2000},
}


def _on(tiny_scenario: Callable[..., dict[str, Any]], hw: str, *streams: dict[str, Any]) -> Any:
    return tiny_scenario(hardware=hw, racks=2, grid_power="2 MW", posttraining=list(streams))


def test_jobs_take_the_time_their_work_needs_on_their_hardware(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    runs = {}
    for hw in ("gb200_nvl72", "vr200_nvl144"):
        plan, tables = run_scenario(_on(tiny_scenario, hw, SFT, RL))
        st = {s.name: s for s in plan.streams}
        jobs = tables.jobs[tables.jobs["state"] == "finished"]
        assert not jobs.empty
        for _, j in jobs.iterrows():
            s = st[j["stream"]]
            assert j["work"] == s.work
            assert j["work_unit"] == ("tokens" if s.name == "sft" else "rl_steps")
            # nothing interrupts them: run time = work / rate on this hardware, plus the
            # stalls of the checkpoints of the model they train
            run = j["finish_s"] - j["first_start_s"]
            stalls = j["checkpoints"] * j["checkpoint_write_s"]
            assert run == pytest.approx(s.work / s.rates[0] + stalls, rel=1e-9)
        runs[hw] = {n: s.work / s.rates[0] for n, s in st.items()}
    # the newer generation finishes the same work sooner (it no longer takes the same time)
    for name in ("sft", "rl"):
        assert runs["vr200_nvl144"][name] < runs["gb200_nvl72"][name]


def test_rl_step_grows_with_rollout_length_and_preference_costs_more(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    longer = {**RL, "name": "rl2", "rl": {**RL["rl"], "rollout_growth": 3.0}}
    pref = {**SFT, "name": "dpo", "kind": "preference"}
    plan = plan_of(_on(tiny_scenario, "gb200_nvl72", SFT, RL, longer, pref))
    st = {s.name: s for s in plan.streams}
    assert st["rl2"].rates[0] < st["rl"].rates[0]
    assert st["dpo"].rates[0] == pytest.approx(st["sft"].rates[0] * 6 / 8)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration": {"distribution": "fixed", "value": "6 h"}}, "either duration"),
        ({"model": None}, "tokens needs model"),
        ({"tokens": None}, "kind sft with model takes tokens"),
        ({"kind": "other", "tokens": None}, "kind other has no work model"),
        ({"kind": "other"}, r"tokens: tokens applies only to kind: sft or preference; this job is"),
        ({"model": None, "tokens": None, "seq_len": 4096}, "seq_len needs model"),
    ],
)
def test_work_keys_are_checked(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
    change: dict[str, Any],
    message: str,
) -> None:
    bad = {k: v for k, v in {**SFT, **change}.items() if v is not None}
    if "model" not in bad:
        bad["duration"] = {"distribution": "fixed", "value": "6 h"}
    with pytest.raises(ScenarioError, match=message):
        plan_of(_on(tiny_scenario, "gb200_nvl72", bad))


def test_a_stream_needs_work_or_duration(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    bad = {k: v for k, v in SFT.items() if k not in ("model", "tokens")}
    with pytest.raises(ScenarioError, match=r"give the jobs' work \(model with tokens"):
        plan_of(_on(tiny_scenario, "gb200_nvl72", bad))
