"""One run of a sweep, on whichever process runs it (a Dask worker, or the client when serial).

:func:`run_point` validates the task's resolved scenario, builds, simulates and writes the run
folder itself, atomically (:func:`sim.io.write_run`), with ``kpis.json`` beside the usual files:
the run's row of the sweep table. Only that small row (an :class:`Outcome`) travels back to the
client, never the tables. A folder that already holds ``kpis.json`` is a finished run (written by
an earlier sweep, or by an attempt whose worker died after writing it): its row is read back and
nothing is run again.

A run that fails returns its error instead of raising, so the failure is recorded and the other
runs go on: a :class:`~sim.config.loader.ScenarioError` (a combination of values that does not
build, such as a job larger than the factory that a smaller grid value makes) as its message,
anything else with its traceback. Only the death of the process itself is left to Dask, which
runs the task again elsewhere (:mod:`sim.sweep.execute`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.config.loader import LoadedScenario, ScenarioError
from sim.config.schema import Scenario
from sim.io import OutputError, write_run
from sim.report.html import render_report
from sim.report.sweep import sweep_row
from sim.runner import prepare, simulate
from sim.sweep.spec import RunTask

__all__ = ["KPIS_FILE", "Outcome", "finished_row", "run_point"]

#: The run's row of the sweep table, written into its run folder with the other files.
KPIS_FILE = "kpis.json"


@dataclass(frozen=True)
class Outcome:
    """What came of one run: ``status`` ``finished`` (with its KPI ``row``) or ``failed`` (with
    ``error`` and, for an unexpected exception, its ``traceback``)."""

    run_id: str
    status: str
    row: dict[str, Any]
    error: str = ""
    traceback: str = ""
    wall_s: float = 0.0
    #: host and process that ran it (not part of the results)
    where: str = ""
    #: True when the folder was already complete and nothing ran
    reused: bool = False


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """NaN as null, so that ``kpis.json`` is strict JSON."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def finished_row(folder: Path | str) -> dict[str, Any] | None:
    """The KPI row of a finished run folder, None if the folder is not one (absent, being written,
    or damaged: then it is run again)."""
    path = Path(folder) / KPIS_FILE
    try:
        row = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict):
        return None
    return {k: (math.nan if v is None else v) for k, v in row.items()}


def run_point(task: RunTask) -> Outcome:
    """Run one sweep task and write its folder (see module docstring)."""
    where = f"{socket.gethostname()}:{os.getpid()}"
    done = finished_row(task.folder)
    if done is not None:
        return Outcome(task.run_id, "finished", done, where=where, reused=True)
    t0 = time.perf_counter()
    try:
        scenario = Scenario.model_validate(task.scenario, context={"base_dir": Path.cwd()})
        loaded = LoadedScenario(scenario=scenario, source=task.label)
        _loaded, plan = prepare(loaded)
        tables, _stats = simulate(plan)
        row = sweep_row(tables)
        files = {KPIS_FILE: json.dumps(_json_safe(row), indent=1) + "\n"}
        if task.write_report:
            files["report.html"] = render_report(tables)
        write_run(Path(task.folder), tables, extra_files=files)
    except (ScenarioError, OutputError) as exc:
        done = finished_row(task.folder)  # another attempt of this task wrote it meanwhile
        if done is not None:
            return Outcome(task.run_id, "finished", done, where=where, reused=True)
        return Outcome(task.run_id, "failed", {}, str(exc), "", time.perf_counter() - t0, where)
    except Exception as exc:
        return Outcome(
            task.run_id,
            "failed",
            {},
            f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
            time.perf_counter() - t0,
            where,
        )
    return Outcome(task.run_id, "finished", row, wall_s=time.perf_counter() - t0, where=where)
