"""Tier (c): same scenario and seed, identical tables and byte-identical run folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.build import Plan
from sim.io import RUN_FILES, RunTables
from sim.runner import run

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"


def assert_same_tables(a: RunTables, b: RunTables) -> None:
    pd.testing.assert_frame_equal(a.traces, b.traces, check_exact=True)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
    pd.testing.assert_frame_equal(a.jobs, b.jobs, check_exact=True)
    assert a.summary == b.summary
    assert a.scenario == b.scenario


@pytest.fixture(scope="module")
def busy(tiny_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """A tiny factory where every random source matters: arrivals, failures, repairs, demand."""
    return tiny_scenario(
        racks=5,
        duration="3 d",
        seed=17,
        reliability={"failure_rate_per_1000_node_days": 80},
        pretraining=[{"name": "p", "model": "llama3.1-8b", "gpus": 128, "tokens": 2e12}],
        posttraining=[
            {
                "name": "rl",
                "arrival_rate": "12 / d",
                "duration": {"distribution": "exponential", "mean": "5 h"},
                "gpus": {"distribution": "choice", "values": [72, 144]},
            }
        ],
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "input_tokens": 1000,
                "output_tokens": 400,
                "demand": {"mean_requests_per_s": 3e4, "noise_cv": 0.2},
            }
        ],
    )


def test_same_seed_gives_identical_tables(
    busy: dict[str, Any], run_scenario: Callable[..., tuple[Plan, RunTables]]
) -> None:
    _, a = run_scenario(busy)
    _, b = run_scenario(busy)
    assert len(a.events) > 20
    assert_same_tables(a, b)


def test_different_seed_gives_different_events(
    busy: dict[str, Any], run_scenario: Callable[..., tuple[Plan, RunTables]]
) -> None:
    _, a = run_scenario(busy)
    _, b = run_scenario(busy, seed=18)
    assert not a.events.equals(b.events)
    assert a.summary["seed"] == 17
    assert b.summary["seed"] == 18
    assert b.scenario["run"]["seed"] == 18


def test_seed_argument_equals_seed_in_the_scenario() -> None:
    a = run(SMOKE, seed=5, write=False)
    b = run(SMOKE, overrides=["run.seed=5"], write=False)
    assert_same_tables(a.tables, b.tables)


def test_smoke_runs_are_identical_in_memory() -> None:
    a = run(SMOKE, write=False)
    b = run(SMOKE, write=False)
    assert_same_tables(a.tables, b.tables)
    c = run(SMOKE, seed=a.tables.summary["seed"] + 1, write=False)
    assert not a.tables.events.equals(c.tables.events)


def test_run_folders_are_byte_identical(tmp_path: Path) -> None:
    a = run(SMOKE, out=tmp_path / "a")
    b = run(SMOKE, out=tmp_path / "b")
    assert a.folder == tmp_path / "a" and b.folder == tmp_path / "b"
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert set(RUN_FILES) <= set(names)
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:  # report.html too, when the runner writes one
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_same_result_in_another_process(tmp_path: Path) -> None:
    """Bit for bit in any process: no hash randomisation or global state in the results."""
    code = "import sys; from sim.runner import run; run(sys.argv[1], out=sys.argv[2])"
    run(SMOKE, out=tmp_path / "here")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", code, str(SMOKE), str(tmp_path / "there")],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    for name in RUN_FILES:
        here = (tmp_path / "here" / name).read_bytes()
        there = (tmp_path / "there" / name).read_bytes()
        assert here == there, name
