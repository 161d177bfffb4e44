"""The run folder: written atomically, read back for reports and comparisons.

Layout (DESIGN.md, "Outputs"): ``scenario.yaml`` (resolved), ``traces.parquet``,
``events.parquet``, ``jobs.parquet``, ``summary.json``, ``report.html``. Files are first written
into a hidden temporary folder beside the target, which is renamed into place only when every
file is complete, so an interrupted or failed run never leaves a folder that looks complete.
Only this module writes to ``outputs/``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = [
    "RUN_FILES",
    "OutputError",
    "RunTables",
    "default_run_dir",
    "read_run",
    "write_comparison",
    "write_report",
    "write_run",
]

RUN_FILES = (
    "scenario.yaml",
    "traces.parquet",
    "events.parquet",
    "jobs.parquet",
    "summary.json",
)


class OutputError(Exception):
    """The run folder cannot be written or read (a user-facing problem)."""


@dataclass(frozen=True)
class RunTables:
    scenario: dict[str, Any]
    traces: pd.DataFrame
    events: pd.DataFrame
    jobs: pd.DataFrame
    summary: dict[str, Any]


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
        raise OutputError(f"cannot create the {what} folder under {parent}: {exc}") from None
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
        (tmp / "summary.json").write_text(
            json.dumps(tables.summary, indent=2, default=_json_default, allow_nan=True) + "\n",
            "utf-8",
        )
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, "utf-8")

    return _write_atomically(target, "run", fill)


def read_run(folder: Path | str) -> RunTables:
    """Load a finished run folder."""
    folder = Path(folder)
    missing = [f for f in RUN_FILES if not (folder / f).is_file()]
    if missing:
        raise OutputError(f"{folder} is not a complete run folder (missing {', '.join(missing)})")
    try:
        return RunTables(
            scenario=yaml.safe_load((folder / "scenario.yaml").read_text("utf-8")),
            traces=pd.read_parquet(folder / "traces.parquet"),
            events=pd.read_parquet(folder / "events.parquet"),
            jobs=pd.read_parquet(folder / "jobs.parquet"),
            summary=json.loads((folder / "summary.json").read_text("utf-8")),
        )
    except (
        OSError,
        ValueError,
        yaml.YAMLError,
    ) as exc:  # ArrowInvalid, JSONDecodeError: ValueError
        raise OutputError(f"{folder} has a damaged file: {exc}") from None


def write_comparison(target: Path, files: dict[str, str]) -> Path:
    """Write a comparison folder (``comparison.html``, ``comparison.csv``) atomically."""

    def fill(tmp: Path) -> None:
        for name, text in files.items():
            (tmp / name).write_text(text, "utf-8")

    return _write_atomically(target, "comparison", fill)


def write_report(folder: Path | str, text: str) -> Path:
    """Replace ``report.html`` of a finished run folder atomically: written beside it under a
    hidden name (with the umask's permissions, like the other files), then renamed over it."""
    folder = Path(folder)
    target = folder / "report.html"
    tmp = folder / f".report.html.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    try:
        tmp.write_text(text, "utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
