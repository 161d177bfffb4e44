"""SIGINT and SIGTERM end a run with one line and exit 130/143, leaving nothing behind (issue 8).

Two subprocess runs (a real signal to a real process) and in-process checks that a signal while
the run folder is being written removes the hidden ``.partial`` folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
EXE = Path(sys.executable).with_name("aifactory")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_run_prints_one_line(tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            str(EXE),
            "run",
            str(SMOKE),
            "--set",
            "run.duration=5 years",
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(2.5)  # past imports and loading, inside the engine
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stderr == "interrupted\n"
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_writing_leaves_no_partial_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sig: int,
    code: int,
) -> None:
    real = pd.DataFrame.to_parquet

    def interrupted(self: pd.DataFrame, path: Any, *args: Any, **kw: Any) -> Any:
        if Path(path).name == "events.parquet":
            os.kill(os.getpid(), sig)
            time.sleep(1)  # the handler runs here
        return real(self, path, *args, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    out = tmp_path / "nested" / "run"
    assert (
        main(["run", str(SMOKE), "--set", "run.duration=6 h", "--out", str(out), "--quiet"]) == code
    )
    assert capsys.readouterr().err == "interrupted\n"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM)
    )
