"""Tier (d) and (e) at the command line: ``aifactory validate`` and ``aifactory run``.

User errors print one ``error: ...`` message on stderr, exit with status 2 and write nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.engine.core import Engine
from sim.io import RUN_FILES

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
ALL_SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))
Writer = Callable[..., Path]
BAD = """\
name: bad
run:
  durration: 2 d
facility:
  halls: [{name: h1, hardware: gb200_nvl72, racks: 2}]
"""


def flat(text: str) -> str:
    """Rich wraps long lines when the output is not a terminal: compare without the wrapping."""
    return " ".join(text.split())


def assert_complete_run_folder(folder: Path) -> None:
    names = {p.name for p in folder.iterdir()}
    assert set(RUN_FILES) <= names
    assert names <= {*RUN_FILES, "report.html"}  # the report is the one optional extra
    for name in names:
        assert (folder / name).stat().st_size > 0, name
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".partial")]


# --------------------------------------------------------------------------- validate


@pytest.mark.parametrize("path", ALL_SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0
    out = flat(capsys.readouterr().out)
    assert out.startswith(f"ok: {path}:")


def test_validate_several_files_reports_each(
    write_scenario: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_scenario(BAD, name="bad.yaml")
    assert main(["validate", str(SMOKE), str(bad)]) == 2
    cap = capsys.readouterr()
    assert f"ok: {SMOKE}: 'smoke', 16 domains, 1,152 GPUs" in flat(cap.out)
    assert re.match(
        rf"error: {re.escape(str(bad))}:3: run\.durration: unknown key 'durration' \(did you mean"
        r" 'duration'\?\)",
        cap.err,
    )
    assert "Traceback" not in cap.err


def test_validate_with_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SMOKE), "--set", "facility.halls[0].racks=8"]) == 0
    assert "8 domains, 576 GPUs" in flat(capsys.readouterr().out)


# --------------------------------------------------------------------------- run


@pytest.mark.slow
def test_run_smoke_writes_the_complete_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", str(SMOKE), "--out", str(out)]) == 0
    assert_complete_run_folder(out)
    printed = flat(capsys.readouterr().out)
    assert f"run folder: {out}" in printed
    assert "smoke (seed 1, 3 days)" in printed
    assert re.search(r"inference chat-70b .* tok/day, [\d.]+[kMGT]? tok/MWh, SLO", printed)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "smoke"
    assert summary["duration_days"] == pytest.approx(3.0)
    scenario = yaml.safe_load((out / "scenario.yaml").read_text())
    assert scenario["run"]["duration"] == "259200.0 s"
    assert scenario["reliability"]["restart_overhead"] == "600.0 s"  # defaults are filled in
    assert len(pd.read_parquet(out / "traces.parquet")) == 72


def test_run_with_set_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["run", str(SMOKE), "--set", "run.duration=2d", "--out", str(out), "--quiet"])
    assert code == 0
    assert_complete_run_folder(out)
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "summary.json").read_text())["duration_days"] == pytest.approx(2.0)
    assert yaml.safe_load((out / "scenario.yaml").read_text())["run"]["duration"] == "172800.0 s"
    assert len(pd.read_parquet(out / "traces.parquet")) == 48


def test_run_with_seed_records_the_seed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(SMOKE), "--seed", "7", "--set", "run.duration=1d", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert yaml.safe_load((out / "scenario.yaml").read_text())["run"]["seed"] == 7
    assert json.loads((out / "summary.json").read_text())["seed"] == 7


def test_run_without_out_writes_under_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(SMOKE), "--set", "run.duration=1d", "--quiet"]) == 0
    runs = list((tmp_path / "outputs" / "smoke").iterdir())
    assert len(runs) == 1
    assert re.fullmatch(r"\d{8}T\d{6}Z-seed1", runs[0].name)
    assert_complete_run_folder(runs[0])
    assert capsys.readouterr().out.strip() == str(Path("outputs") / "smoke" / runs[0].name)


def test_run_onto_a_non_empty_folder_fails_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["run", str(SMOKE), "--set", "run.duration=1d", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out} already exists and is not empty; choose another --out")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_run_onto_an_empty_folder_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    assert main(["run", str(SMOKE), "--set", "run.duration=1d", "--out", str(out), "--quiet"]) == 0
    assert_complete_run_folder(out)


def test_run_onto_an_existing_file_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.txt"
    out.write_text("mine")
    assert main(["run", str(SMOKE), "--set", "run.duration=1d", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "mine"


# --------------------------------------------------------------------------- user errors


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--set", "run.duration.x=3"], r"^error: --set.*cannot set run\.duration\.x"),
        (
            ["--set", "run.durration=2d"],
            r"run\.durration: unknown key 'durration' \(did you mean 'duration'\?\)",
        ),
        (["--set", "noequals"], r"^error: --set.*expects key\.path=value"),
        (
            ["--set", "facility.halls[3].racks=1"],
            r"there is no facility\.halls\[3\]: facility\.halls has only 1 entry",
        ),
        (["--set", "run.duration=5 MW"], r"run\.duration: '5 MW' is in MW"),
        (
            ["--set", "facility.grid_power=-1 GW"],
            r"^error: --set: facility\.grid_power: -1 GW is outside the plausible range",
        ),
        (
            ["--set", "facility.halls[0].hardware=gb201_nvl72"],
            r"^error: --set: facility\.halls\[0\]\.hardware: unknown hardware 'gb201_nvl72' "
            r"\(did you mean 'gb200_nvl72'\?\)",
        ),
    ],
)
def test_run_with_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], pattern: str
) -> None:
    out = tmp_path / "run"
    assert main(["run", str(SMOKE), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err, re.M), err
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_run_of_a_bad_file(
    write_scenario: Writer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_scenario(BAD, name="bad.yaml")
    assert main(["run", str(bad), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:3: run.durration: unknown key")
    assert not (tmp_path / "run").exists()


def test_run_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["run", str(missing)]) == 2
    assert re.match(rf"error: {re.escape(str(missing))}: .*file not found", capsys.readouterr().err)


def test_validate_of_an_empty_and_a_list_file(
    write_scenario: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write_scenario("", name="empty.yaml")
    listed = write_scenario("- 1\n- 2\n", name="list.yaml")
    assert main(["validate", str(empty), str(listed)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert re.match(rf"error: {re.escape(str(empty))}: .*the file is empty$", err[0])
    assert re.match(rf"error: {re.escape(str(listed))}:1: .*must be a mapping of sections", err[1])


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "error: unknown command 'frobnicate'; choose from run, validate, report, compare, sweep,"
        " hardware, estimate, serve-sim, commitment; see `aifactory --help`\n"
    )


# --------------------------------------------------------------------------- failed runs


def test_a_run_that_fails_mid_way_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Engine.run

    def failing(self: Engine, progress: object = None, step_s: float = 86_400.0) -> None:
        def stop(t: float, events: int) -> None:
            if t >= 86_400.0:
                raise RuntimeError("engine failed after one simulated day")

        real(self, progress=stop, step_s=step_s)

    monkeypatch.setattr(Engine, "run", failing)
    out = tmp_path / "runs" / "run"
    with pytest.raises(RuntimeError, match="after one simulated day"):
        main(["run", str(SMOKE), "--out", str(out), "--quiet"])
    assert not out.exists()
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_run_that_fails_while_writing_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: pd.DataFrame, *a: object, **kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    out = tmp_path / "runs" / "run"
    code = main(["run", str(SMOKE), "--set", "run.duration=1d", "--out", str(out), "--quiet"])
    assert code == 2  # a full disk is the user's problem: a message, not a traceback
    assert "disk full" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no folder, no hidden .partial, no parent made
