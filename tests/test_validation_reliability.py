"""Validation B.1: Llama 3 405B's 54-day interruption snapshot (arXiv:2407.21783 §3.3.4).

Inputs: A.1's 16K-H100 job on Meta's 24K-GPU cluster (3,072 8-GPU servers: the 8K GPUs the job
does not use are the spares a failed server is swapped for), 54 days. Published: 419 unexpected
interruptions (the 47 planned ones, maintenance, are not modelled) and an effective training
time above 90%.

* The failure rate 3.79 per 1,000 node-days is B.1's own derived figure (419 / (2,048 nodes x 54
  days)): the interruption count is a consistency check of the engine's failure stream and its
  mapping to job interruptions (+-20%, validation.md), not a prediction.
* ETTR is a check of the restart and checkpoint arithmetic on stated inputs: restart overhead
  10 min (B.2: 5-20 min) and a checkpoint every 15 min (an assumption: Meta does not publish the
  interval; B.1's derivation says the lost time per interruption must average under ~17 min for
  ETTR > 90%). With hourly checkpoints the same run stays below 90%, so the check can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.build import Plan
from sim.io import RunTables


def _b1(tiny_scenario: Callable[..., dict[str, Any]], checkpoint: str) -> dict[str, Any]:
    job = {
        "name": "llama3-405b",
        "model": "llama3.1-405b",
        "gpus": 16384,
        "tokens": 1e15,  # more than 54 days of work: the job runs the whole window
        "precision": "bf16",
        "checkpoint_interval": checkpoint,
    }
    data = tiny_scenario(
        racks=3072,
        hardware="h100_sxm",
        duration="54 d",
        sample_interval="1 d",
        reliability={"failure_rate_per_1000_node_days": 3.79},
        restart_overhead="10 min",
        pretraining=[job],
    )
    data["facility"]["grid_power"] = "60 MW"
    return data


@pytest.fixture(scope="module")
def b1_run(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> Any:
    _, tables = run_scenario(_b1(tiny_scenario, "15 min"))
    return tables.jobs.iloc[0]


def test_b1_interruptions_in_54_days(b1_run: Any) -> None:
    assert b1_run["interruptions"] == pytest.approx(419, rel=0.20)


def test_b1_effective_training_time_above_90_percent(b1_run: Any) -> None:
    assert b1_run["ettr"] > 0.90


def test_b1_hourly_checkpoints_would_not_reach_90_percent(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> None:
    _, tables = run_scenario(_b1(tiny_scenario, "1 h"))
    assert tables.jobs.iloc[0]["ettr"] < 0.90
