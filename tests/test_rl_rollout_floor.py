"""An RL step's rollout generation is bounded below by its sequential decode: a rollout of L
tokens takes L decode iterations one after another, however many GPUs the job holds
(sim/build.py ``_rollout_s``; docs/engine.md, "Post-training as work")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.build import Plan
from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.serving.steps import decode_iteration_s


def test_a_long_reasoning_rl_step_takes_at_least_its_sequential_decode(
    tiny_scenario: Callable[..., dict[str, Any]],
    plan_of: Callable[..., Plan],
) -> None:
    """512 rollouts of 32k tokens on 72 GPUs (BF16): by throughput alone the generation took
    101 s a step (the whole step 115 s), less than 32k iterations of even a lone sequence at its
    fastest layout (4.0 ms each, 127 s). With the floor the step takes 218 s."""
    length, prompt = 32_000, 1024
    stream = {
        "name": "rl",
        "kind": "rl",
        "model": "llama3.1-8b",
        "arrival_rate": "4 / d",
        "gpus": 72,
        "rl": {
            "steps": 50,
            "prompts_per_step": 64,
            "prompt_tokens": prompt,
            "rollout_tokens": length,
        },
    }
    data = tiny_scenario(hardware="gb200_nvl72", racks=2, grid_power="2 MW", posttraining=[stream])
    (s,) = plan_of(data).streams
    step_s = 1.0 / s.rates[0]
    model, hw = get_model("llama3.1-8b"), catalog()["gb200_nvl72"]
    # the fastest a token can come on this hardware: one sequence alone, at any TP width
    fastest = min(
        decode_iteration_s(model, hw, "bf16", tp=tp, seqs=1, context_tokens=prompt)
        for tp in (1, 2, 4, 8, 16, 32)
    )
    assert step_s >= length * fastest
