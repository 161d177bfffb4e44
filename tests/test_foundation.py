"""Core checks of the foundation, one per STYLE.md test tier.

(a) exact event log of a tiny run, (b) invariants, (c) determinism, (d) scenarios validate and
run, (e) user-facing errors pinned. Expected values come from the plan (the performance model's
rates), never from hard-coded model numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.config.loader import ScenarioError, load_scenario
from sim.runner import prepare, run, simulate

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"

TINY = """
name: tiny
run: {duration: 2 d, sample_interval: 1 h, seed: 5}
facility:
  grid_power: 2 MW
  halls: [{name: h1, hardware: gb200_nvl72, racks: 8}]
workloads:
  pretraining:
    - {name: job, model: llama3.1-8b, gpus: 512, tokens: 1e12, checkpoint_interval: 1 h,
       checkpoint_write: 60 s, submit_at: 30 min}
reliability: {enabled: false}
"""


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# (a) exact event log --------------------------------------------------------------------


def test_tiny_run_exact_events(tmp_path: Path) -> None:
    _, plan = prepare(_write(tmp_path, TINY))
    job = plan.jobs[0]
    tables, _ = simulate(plan)
    ev = tables.events
    rate, interval, write = job.rate, job.checkpoint_interval_s, job.checkpoint_write_s
    n_ckpt = math.ceil(job.work / (rate * interval) - 1e-12) - 1
    finish = 1800.0 + job.work / rate + n_ckpt * write
    expected = (
        [(1800.0, "submitted"), (1800.0, "started")]
        + [(1800.0 + k * (interval + write), "checkpointed") for k in range(1, n_ckpt + 1)]
        + [(finish, "finished")]
    )
    got = list(zip(ev["time_s"].tolist(), ev["event"].tolist(), strict=True))
    assert [e for _, e in got] == [e for _, e in expected]
    assert [t for t, _ in got] == pytest.approx([t for t, _ in expected], rel=1e-12)
    row = tables.jobs.iloc[0]
    assert row["state"] == "finished" and row["work_done"] == job.work
    assert row["ettr"] == pytest.approx(job.work / rate / (finish - 1800.0))


# (b) invariants ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_invariants_under_heavy_failures(seed: int) -> None:
    r = run(
        SMOKE,
        seed=seed,
        write=False,
        overrides=["run.duration=6d", "reliability.failure_rate_per_1000_node_days=100"],
    )
    tr, ev, jobs = r.tables.traces, r.tables.events, r.tables.jobs
    total = tr["gpus_total"].to_numpy()
    parts = tr[
        ["gpus_idle", "gpus_failed", "gpus_pretraining", "gpus_posttraining", "gpus_inference"]
    ].to_numpy()
    assert (parts >= -1e-6).all()
    np.testing.assert_allclose(parts.sum(axis=1), total, rtol=1e-9)
    assert ((tr["utilization"] >= 0) & (tr["utilization"] <= 1 + 1e-12)).all()
    energy = (tr["facility_power_w"] * tr["interval_s"]).sum() / 3.6e9
    assert tr["facility_energy_mwh"].sum() == pytest.approx(energy, rel=1e-12)
    assert len(tr) == math.ceil(6 * 86400 / 3600)
    # no job starts before it is submitted; every submitted job is accounted for
    sub = ev[ev.event == "submitted"].groupby("subject")["time_s"].min()
    start = ev[ev.event == "started"].groupby("subject")["time_s"].min()
    assert (start >= sub.reindex(start.index)).all()
    ended = set(ev[ev.event.isin(["finished", "unfinished"])]["subject"])
    waiting = set(jobs[jobs["state"] == "waiting"]["name"])
    assert set(sub.index) <= ended | waiting
    # GPU time never exceeds capacity; served never exceeds demand
    held = jobs["held_gpu_hours"].sum()
    assert held <= total[0] * 6 * 24 + 1e-6
    svc = "service.chat-70b."
    assert (tr[svc + "served_tokens_per_s"] <= tr[svc + "demand_tokens_per_s"] * (1 + 1e-12)).all()
    assert (ev.event == "failure").sum() > 0


# (c) determinism ---------------------------------------------------------------------------


def test_same_seed_same_files_other_seed_differs(tmp_path: Path) -> None:
    a = run(SMOKE, seed=11, out=tmp_path / "a")
    b = run(SMOKE, seed=11, out=tmp_path / "b")
    c = run(SMOKE, seed=12, write=False)
    for name in (
        "traces.parquet",
        "events.parquet",
        "jobs.parquet",
        "summary.json",
        "scenario.yaml",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.tables.summary == b.tables.summary
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(a.tables.events, c.tables.events)


# (d) scenarios validate and run -------------------------------------------------------------


def test_every_scenario_validates(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (ROOT / "scenarios").rglob("*.yaml"))
    assert len(files) >= 3
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out.count("ok: ") == len(files)


def test_cli_run_writes_complete_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                str(SMOKE),
                "--seed",
                "4",
                "--set",
                "run.duration=2d",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "scenario.yaml",
        "traces.parquet",
        "events.parquet",
        "jobs.parquet",
        "summary.json",
    } <= names
    resolved = load_scenario(out / "scenario.yaml").scenario
    assert resolved.run.seed == 4 and resolved.run.duration_s == 2 * 86400
    # a second run onto the same folder is refused and leaves it untouched
    before = sorted(p.name for p in out.iterdir())
    assert main(["run", str(SMOKE), "--out", str(out), "--quiet"]) == 2
    assert sorted(p.name for p in out.iterdir()) == before


def test_failed_run_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.io

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sim.io.pd.DataFrame, "to_parquet", boom)
    with pytest.raises(RuntimeError):
        run(SMOKE, out=tmp_path / "run", overrides=["run.duration=1d"])
    assert list(tmp_path.iterdir()) == []


# (e) errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            TINY.replace("duration: 2 d", "durration: 2 d"),
            r"s\.yaml:3: run\.durration: unknown key 'durration' \(did you mean 'duration'\?\)",
        ),
        (
            TINY.replace("grid_power: 2 MW", "grid_power: -1 MW"),
            r"s\.yaml:5: facility\.grid_power: .* is outside the plausible range \(0 W, 100 GW\]",
        ),
        (
            TINY.replace("duration: 2 d", "duration: 5 MW"),
            r"run\.duration: '5 MW' is in MW .*expected a quantity in s",
        ),
        (
            TINY.replace("hardware: gb200_nvl72", "hardware: gb201_nvl72"),
            r"s\.yaml:6: facility\.halls\[0\]\.hardware: unknown hardware 'gb201_nvl72' "
            r"\(did you mean 'gb200_nvl72'\?\)",
        ),
        (
            TINY.replace("model: llama3.1-8b", "model: llama9"),
            r"workloads\.pretraining\[0\]\.model: .*llama9",
        ),
        (
            TINY.replace("gpus: 512", "gpus: 5000"),
            r"workloads\.pretraining\[0\]\.gpus: 5000 GPUs need 70 .* the factory has 8",
        ),
        (
            TINY.replace("{enabled: false}", "{enabled: false, extra: 1}"),
            r"s\.yaml:11: reliability\.extra: unknown key 'extra'",
        ),
        ("name: x\nrun: {seed: 1, seed: 2}\n", r"run\.seed: key appears twice"),
        ("name: x\nrun: [1, 2\n", r"s\.yaml:\d+: YAML syntax error"),
        ("", r"the file is empty"),
        ("- 1\n- 2\n", r"a scenario must be a mapping"),
    ],
)
def test_errors_are_pinned(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError, match=pattern):
        prepare(path)


def test_cli_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml: file not found" in err and "Traceback" not in err
    assert main(["run", str(SMOKE), "--set", "run..x=1"]) == 2
    assert "empty part" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
