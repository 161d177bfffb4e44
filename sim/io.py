"""The run folder: written atomically, read back for reports and comparisons.

Layout (DESIGN.md, "Outputs"): ``scenario.yaml`` (resolved), ``traces.parquet``,
``events.parquet``, ``jobs.parquet``, ``fabric.parquet`` (placement on the fabric),
``summary.json``, ``report.html``. Files are first written into a hidden temporary folder
beside the target, which is renamed into place only when every file is complete, so an
interrupted or failed run never leaves a folder that looks complete.
Only this module writes to ``outputs/``.

Reading checks the shape of every file before anything uses it (a damaged or hand-edited run
folder is a user error naming the file): sizes are bounded, ``scenario.yaml`` is read with the
scenario loader's bounds, ``summary.json`` must have the sections and value types a run writes,
and the tables their columns.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.config.loader import ScenarioError, read_yaml

__all__ = [
    "RUN_FILES",
    "OutputError",
    "RunTables",
    "default_run_dir",
    "read_run",
    "remove_file",
    "remove_partials",
    "write_comparison",
    "write_file",
    "write_report",
    "write_run",
    "write_serving_run",
]

RUN_FILES = (
    "scenario.yaml",
    "traces.parquet",
    "events.parquet",
    "jobs.parquet",
    "fabric.parquet",
    "summary.json",
)
#: Files a run folder written by an earlier version may lack (read as empty tables).
OPTIONAL_RUN_FILES = ("fabric.parquet",)


class OutputError(Exception):
    """The run folder cannot be written or read (a user-facing problem)."""


@dataclass(frozen=True)
class RunTables:
    scenario: dict[str, Any]
    traces: pd.DataFrame
    events: pd.DataFrame
    jobs: pd.DataFrame
    summary: dict[str, Any]
    #: one row per unit of the fabric (:data:`sim.contract.FABRIC_COLUMNS`); empty for tables
    #: made by hand or a run folder written before the fabric existed
    fabric: pd.DataFrame = field(default_factory=pd.DataFrame)


def default_run_dir(root: Path, scenario_name: str, seed: int, stamp: str) -> Path:
    """``root/<scenario>/<stamp>-seed<seed>``, made unique with a counter if it exists."""
    base = root / scenario_name / f"{stamp}-seed{seed}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _partial_dir(parent: Path, name: str) -> Path:
    """A new hidden folder beside the target, made with ``mkdir`` so that it gets the usual
    permissions of the user's umask (``tempfile.mkdtemp`` would make it private, 0700)."""
    tmp = parent / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    tmp.mkdir()
    return tmp


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _write_atomically(target: Path, what: str, fill: Callable[[Path], None]) -> Path:
    """Create folder ``target`` atomically: ``fill`` writes into a hidden temporary folder that is
    renamed into place only when it is complete; on any failure nothing is left behind.
    ``target`` must not exist, or be an empty folder."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OutputError(f"{target} already exists and is not empty; choose another --out")
    shown = target
    target = target.resolve()  # "." has no name to put a hidden folder beside
    parent = target.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = _partial_dir(parent, target.name)
    except OSError as exc:
        raise OutputError(
            f"cannot create the {what} folder {shown}: {exc.strerror or exc}"
        ) from None
    try:
        fill(tmp)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # the parents this call made, innermost first, if still empty
            try:
                p.rmdir()
            except OSError:
                break
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write the {what} folder {target}: {exc}") from None
        raise
    return shown


def write_run(target: Path, tables: RunTables, extra_files: dict[str, str] | None = None) -> Path:
    """Write the run folder at ``target`` atomically; ``target`` must not exist (or be empty)."""

    def fill(tmp: Path) -> None:
        (tmp / "scenario.yaml").write_text(
            yaml.safe_dump(tables.scenario, sort_keys=False, allow_unicode=True), "utf-8"
        )
        tables.traces.to_parquet(tmp / "traces.parquet", index=False)
        tables.events.to_parquet(tmp / "events.parquet", index=False)
        tables.jobs.to_parquet(tmp / "jobs.parquet", index=False)
        tables.fabric.to_parquet(tmp / "fabric.parquet", index=False)
        (tmp / "summary.json").write_text(
            json.dumps(tables.summary, indent=2, default=_json_default, allow_nan=True) + "\n",
            "utf-8",
        )
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, "utf-8")

    return _write_atomically(target, "run", fill)


#: Largest text file of a run folder read (a year-long gigawatt run writes ~100 kB).
MAX_TEXT_BYTES = 50_000_000

_NUM, _STR, _LIST = "number", "text", "list"
#: The sections and value types of ``summary.json`` that reports and comparisons read.
SUMMARY_SHAPE: dict[str, Any] = {
    "scenario": _STR,
    "seed": _NUM,
    "duration_days": _NUM,
    "factory": {
        "halls": _LIST,
        "gpus": _NUM,
        "domains": _NUM,
        "provisioned_it_power_mw": _NUM,
        "grid_power_mw": _NUM,
    },
    "utilization": _NUM,
    "utilization_by_workload": {"pretraining": _NUM, "posttraining": _NUM, "inference": _NUM},
    "availability": _NUM,
    "energy": {"it_mwh": _NUM, "facility_mwh": _NUM, "peak_facility_power_mw": _NUM},
    "tokens": dict,
    "cost": {"total_usd": _NUM, "energy_usd": _NUM, "capex_usd": _NUM},
    "pretraining_runs": _LIST,
    "posttraining": {"submitted": _NUM, "finished": _NUM, "preemptions": _NUM},
    "inference_services": _LIST,
    "reliability": {"failures": _NUM, "job_interruptions": _NUM, "failures_per_day": _NUM},
}
#: Columns every run's tables have (traces add one column per service and hardware).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "traces.parquet": ("time_s", "interval_s", "gpus_total", "utilization", "it_power_w"),
    "events.parquet": ("time_s", "event", "subject", "workload", "domain", "value", "detail"),
    "jobs.parquet": ("name", "workload", "class", "hardware", "state", "gpus", "domains"),
    "fabric.parquet": ("unit", "pod", "building", "site", "hall", "holder", "held"),
}


def _shape_problem(value: Any, shape: Any, path: str) -> str | None:
    """What is wrong with ``value`` against ``shape`` (None if nothing)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            where = f"{path}: " if path else ""
            return f"{where}expected a JSON object, got {type(value).__name__}"
        for key, sub in shape.items():
            where = f"{path}.{key}" if path else key
            if key not in value:
                return f"missing {where}"
            problem = _shape_problem(value[key], sub, where)
            if problem:
                return problem
        return None
    ok = {
        _NUM: value is None or (isinstance(value, int | float) and not isinstance(value, bool)),
        _STR: isinstance(value, str),
        _LIST: isinstance(value, list) and all(isinstance(v, dict) for v in value),
        dict: isinstance(value, dict),
    }[shape]
    if ok:
        return None
    want = {_NUM: "a number", _STR: "text", _LIST: "a list of objects", dict: "an object"}[shape]
    return f"{path}: expected {want}, got {type(value).__name__}"


def _text(folder: Path, name: str) -> str:
    path = folder / name
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise OutputError(f"{path}: larger than {MAX_TEXT_BYTES:,} bytes; not a run folder file")
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputError(f"{path}: damaged, not UTF-8 text ({exc.reason})") from None


def _table(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:  # ArrowInvalid is a ValueError
        raise OutputError(f"{path}: damaged, not a readable parquet table ({exc})") from None
    missing = [c for c in TABLE_COLUMNS[name] if c not in df.columns]
    if missing:
        raise OutputError(f"{path}: damaged, missing columns {', '.join(missing)}")
    return df


def read_run(folder: Path | str) -> RunTables:
    """Load a finished run folder, checking the shape of each file; :class:`OutputError` names
    the damaged file."""
    folder = Path(folder)
    missing = [f for f in RUN_FILES if f not in OPTIONAL_RUN_FILES and not (folder / f).is_file()]
    if missing:
        raise OutputError(f"{folder} is not a complete run folder (missing {', '.join(missing)})")
    try:
        try:
            scenario = read_yaml(_text(folder, "scenario.yaml"), str(folder / "scenario.yaml"))
        except ScenarioError as exc:
            raise OutputError(f"{exc} (a damaged run folder)") from None
        if not isinstance(scenario, dict):
            raise OutputError(
                f"{folder / 'scenario.yaml'}: damaged, expected a mapping (the scenario as run),"
                f" got {type(scenario).__name__}"
            )
        try:
            summary = json.loads(_text(folder, "summary.json"))
        except ValueError as exc:
            raise OutputError(f"{folder / 'summary.json'}: damaged, not JSON ({exc})") from None
        problem = _shape_problem(summary, SUMMARY_SHAPE, "")
        if problem:
            raise OutputError(f"{folder / 'summary.json'}: damaged, {problem}")
        return RunTables(
            scenario=scenario,
            traces=_table(folder, "traces.parquet"),
            events=_table(folder, "events.parquet"),
            jobs=_table(folder, "jobs.parquet"),
            summary=summary,
            fabric=(
                _table(folder, "fabric.parquet")
                if (folder / "fabric.parquet").is_file()
                else pd.DataFrame()
            ),
        )
    except OSError as exc:
        raise OutputError(f"{folder} cannot be read: {exc}") from None


def write_comparison(target: Path, files: dict[str, str]) -> Path:
    """Write a comparison folder (``comparison.html``, ``comparison.csv``) atomically."""

    def fill(tmp: Path) -> None:
        for name, text in files.items():
            (tmp / name).write_text(text, "utf-8")

    return _write_atomically(target, "comparison", fill)


def write_serving_run(target: Path, tables: dict[str, pd.DataFrame], files: dict[str, str]) -> Path:
    """Write an ``aifactory serve-sim`` folder atomically: each table as ``<name>.parquet`` and
    each text file (``summary.json``, ``report.html``) as given."""

    def fill(tmp: Path) -> None:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        for name, text in files.items():
            (tmp / name).write_text(text, "utf-8")

    return _write_atomically(target, "serving run", fill)


def write_report(folder: Path | str, text: str) -> Path:
    """Replace ``report.html`` of a finished run folder atomically (:func:`write_file`)."""
    return write_file(folder, "report.html", text)


def write_file(folder: Path | str, name: str, content: str | pd.DataFrame) -> Path:
    """Write (or replace) one file of a folder atomically, creating the folder: text as UTF-8, a
    table as parquet. Written beside the target under a hidden name and renamed over it, so a
    reader sees the old file or the new one, never half of one (a sweep's table, report, state)."""
    folder = Path(folder)
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {exc}") from None
    tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    try:
        if isinstance(content, pd.DataFrame):
            content.to_parquet(tmp, index=False)
        else:
            tmp.write_text(content, "utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def remove_file(path: Path | str) -> None:
    """Remove one file if it is there (a sweep's failure record once its run has finished)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot remove {path}: {exc}") from None


def remove_partials(folder: Path | str) -> list[Path]:
    """Remove the hidden ``.<name>.<pid>.<id>.partial`` folders and files that writers killed
    mid-way (SIGKILL, a lost machine) left in ``folder``; only call it when no writer is at work
    there. Returns what was removed."""
    folder = Path(folder)
    gone: list[Path] = []
    if not folder.is_dir():
        return gone
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(".partial"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            gone.append(p)
    return gone
