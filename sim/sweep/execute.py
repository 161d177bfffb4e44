"""Run a sweep: locally on a Dask ``LocalCluster`` by default, on a user's cluster, or serially.

The sweep folder (``--out``; default ``outputs/<scenario>/sweep-<id>``, the id a hash of the
sweep's run ids, so the same command finds the same folder)::

    sweep.yaml             the sweep as run (a sweep file: run it again to resume)
    runs/<run_id>/         one run folder per point and seed, written by the worker that ran it
    failed/<run_id>.json   the error of a run that failed (removed once it finishes)
    sweep.parquet, .csv    one row per point and seed: status, swept values, KPIs
    means.parquet, .csv    one row per point: KPI means and 95% intervals across seeds
    report.html            the sweep report (sim.report.sweep)

**Nothing lost.** Each run's folder is written atomically by the process that ran it as soon as
it finishes, so a sweep stopped at any moment keeps every finished run; running the same sweep
again (same command, or ``aifactory sweep OUT/sweep.yaml --out OUT``) skips every run whose
folder is complete and runs only the rest; a larger grid reuses the points it shares with the
old one (run ids are content hashes, :mod:`sim.sweep.spec`). A run that fails is recorded with
its error (``failed/``, the table's ``status`` and ``error``) and the others go on. A worker
that dies (killed, out of memory, a lost machine) takes its task with it; the Dask scheduler gives
the task to another worker, up to its ``distributed.scheduler.allowed-failures`` (3 by default)
before the run is recorded as failed. ``retries`` also re-runs a task whose call itself raised
(it does not re-run a failed simulation: that returns its error, it does not raise).

**Where it runs.** ``workers=None``: a ``LocalCluster`` with one single-threaded worker process
per core (the engine is pure Python: processes, not threads, run it in parallel); ``workers=N``:
N of them; ``workers=0``: serially in this process, no Dask (for a debugger, or a baseline).
``scheduler="tcp://host:port"`` (or a ``distributed.Client``): that cluster, and nothing else
changes. Its workers need this package installed and must see the sweep folder at the same path
(a shared file system), as they write the run folders themselves; the client only receives each
run's row of KPIs, never its tables.

A sweep writes into its folder from one client at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.config.loader import Problem, ScenarioError
from sim.io import (
    OutputError,
    RunTables,
    read_run,
    remove_file,
    remove_partials,
    write_file,
)
from sim.report.sweep import KPIS, VALUE_SUFFIX, render_sweep_report, seed_means
from sim.sweep.point import Outcome, finished_row, run_point
from sim.sweep.spec import (
    RunTask,
    SweepSpec,
    check_seeds,
    grid_from_mapping,
    is_sweep_file,
    load_sweep_file,
    parse_grid,
    resolve,
    with_folders,
)

if TYPE_CHECKING:  # distributed is imported only when a sweep runs on Dask
    from distributed import Client

__all__ = [
    "SweepProgress",
    "SweepResult",
    "build_spec",
    "cluster_client",
    "describe",
    "plain_progress",
    "rich_progress",
    "sweep",
    "sweep_table",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[["SweepProgress"], None]

#: Progress (with the number of runs running, asked of the scheduler) is redrawn at least this
#: often, seconds.
POLL_S = 1.0
#: Pause between looks at the finished runs when none has ended, seconds.
WAKE_S = 0.05
#: Budget for connecting to a scheduler, starting a local cluster and closing them.
CONNECT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep stands: runs ``done`` and ``failed`` in this call, ``running`` now,
    ``skipped`` (finished by an earlier call), of ``total``; ``left_s`` estimates the time left
    from the pace of this call's runs (None before the first one ends)."""

    total: int
    done: int
    running: int
    failed: int
    skipped: int
    elapsed_s: float

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.done - self.failed

    @property
    def left_s(self) -> float | None:
        ended = self.done + self.failed
        if ended == 0:
            return None
        return self.remaining * self.elapsed_s / ended


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep call: its folder and tables, and what this call did (``ran`` runs, of
    which ``failed`` failed; ``skipped`` were finished before)."""

    folder: Path
    spec: SweepSpec
    table: pd.DataFrame
    means: pd.DataFrame
    ran: int
    skipped: int
    failed: int
    errors: dict[str, str] = field(default_factory=dict)
    #: run id -> ``host:pid`` of the process that ran it, for the runs of this call
    ran_on: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> tuple[str, ...]:
        return self.spec.params

    def run_folder(self, run_id: str) -> Path:
        return self.folder / "runs" / run_id

    def tables(self, run_id: str) -> RunTables:
        """One run's tables, read from its folder (a run that failed: its error)."""
        failed = self.table[(self.table["run_id"] == run_id) & (self.table["status"] != "finished")]
        if len(failed):
            raise OutputError(f"run {run_id} failed: {failed['error'].iloc[0]}")
        return read_run(self.run_folder(run_id))

    def summaries(self) -> pd.DataFrame:
        """Every finished run's ``summary.json`` flattened to one row (``energy.facility_mwh``;
        named list items as ``inference_services.<name>.<key>``), with ``point``, ``seed``,
        ``run_id`` and the swept values; read from the run folders, one at a time."""
        rows = []
        for _, r in self.table[self.table["status"] == "finished"].iterrows():
            path = self.run_folder(str(r["run_id"])) / "summary.json"
            summary = json.loads(path.read_text("utf-8"))
            named = {
                f"{part}.{item['name']}.{k}": v
                for part in ("pretraining_runs", "inference_services")
                for item in summary.get(part, [])
                for k, v in item.items()
                if k != "name" and not isinstance(v, dict | list)
            }
            normalized = pd.json_normalize(summary).iloc[0].to_dict()
            flat: dict[str, Any] = {
                str(k): v for k, v in normalized.items() if not isinstance(v, list)
            }
            keys: dict[str, Any] = {"point": r["point"], "seed": r["seed"], "run_id": r["run_id"]}
            keys.update({p: r[p] for p in self.params})
            keys.update(flat)
            keys.update(named)
            rows.append(keys)
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the spec


def build_spec(
    scenario: str | Path | SweepSpec | None = None,
    grid: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    overrides: Sequence[str] = (),
) -> SweepSpec:
    """A :class:`SweepSpec` from a scenario path (or a sweep file, or a spec) and a grid given as
    ``{key: [values]}`` or ``["key=v1,v2", ...]``; ``grid`` adds keys to a sweep file's grid
    (a key in both: the values given here), ``seeds`` and ``overrides`` replace and extend."""
    if isinstance(scenario, SweepSpec):
        base = scenario
    elif scenario is not None and is_sweep_file(scenario):
        base = load_sweep_file(scenario)
    else:
        base = SweepSpec(scenario=None if scenario is None else str(scenario))
    if grid is None:
        axes: tuple[Any, ...] = ()
    elif isinstance(grid, Mapping):
        axes = grid_from_mapping(grid, "grid")
    else:
        axes = parse_grid(list(grid))
    new_keys = {a.key for a in axes}
    merged = tuple(a for a in base.grid if a.key not in new_keys) + tuple(axes)
    return SweepSpec(
        scenario=base.scenario,
        grid=merged,
        seeds=base.seeds if seeds is None else check_seeds(seeds),
        overrides=(*base.overrides, *overrides),
        source=base.source,
    )


def _no_twins(tasks: Sequence[RunTask], source: str) -> None:
    """Two grid values that resolve to the same scenario (``3 MW`` and ``3000 kW``) would be one
    run under two names: refuse, naming both."""
    seen: dict[str, RunTask] = {}
    for t in tasks:
        other = seen.setdefault(t.run_id, t)
        if other is not t:
            raise ScenarioError(
                source,
                [
                    Problem(
                        (),
                        f"{_where(other)} and {_where(t)} are the same scenario; drop one of"
                        " the values",
                    )
                ],
                {},
            )


def _where(t: RunTask) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in t.params.items()) + f", seed {t.seed}]"


def _default_out(tasks: Sequence[RunTask], root: Path) -> Path:
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(t.run_id for t in tasks)).encode()).hexdigest()
    return root / str(tasks[0].scenario.get("name", "sweep")) / f"sweep-{digest[:12]}"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "sweep.yaml").is_file():
        raise OutputError(
            f"{out} is not empty and is not a sweep folder (no sweep.yaml); choose another --out"
        )


# --------------------------------------------------------------------------- clusters


@contextlib.contextmanager
def cluster_client(
    workers: int | None = None, scheduler: str | Client | None = None
) -> Iterator[Client]:
    """A Dask client: to ``scheduler`` (an address, or a client used as it is), else to a new
    ``LocalCluster`` of ``workers`` single-threaded processes (default: one per core). What this
    made is closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise OutputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close(timeout=CONNECT_TIMEOUT_S)
        return
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        raise ValueError(f"a local cluster needs at least one worker, got {n}")
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        timeout=CONNECT_TIMEOUT_S,
    )
    try:
        client = Client(cluster, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        try:
            yield client
        finally:
            client.close(timeout=CONNECT_TIMEOUT_S)
    finally:
        cluster.close(timeout=CONNECT_TIMEOUT_S)


def _running(client: Client, keys: set[str]) -> int:
    """Runs of ours that workers are processing now (at most each worker's threads)."""
    try:
        processing = client.processing()
        threads = client.nthreads()
    except Exception:  # progress only: never let a status call stop the sweep
        return 0
    return sum(
        min(sum(1 for k in ks if str(k) in keys), threads.get(w, 1)) for w, ks in processing.items()
    )


def _dask_outcome(future: Any, task: RunTask) -> Outcome:
    from distributed import KilledWorker

    if future.status == "finished":
        out: Outcome = future.result(timeout=CONNECT_TIMEOUT_S)
        return out
    if future.status == "error":
        exc = future.exception(timeout=CONNECT_TIMEOUT_S)
        if isinstance(exc, KilledWorker):
            msg = f"the workers running it died each time (the scheduler's allowed-failures); {exc}"
        else:
            msg = f"{type(exc).__name__}: {exc}"
        return Outcome(task.run_id, "failed", {}, msg)
    return Outcome(task.run_id, "failed", {}, f"the cluster {future.status} it")


def _run_on_dask(
    client: Client,
    todo: Sequence[RunTask],
    record: Callable[[Outcome], None],
    tick: Callable[[int], None],
    deadline: float | None,
    retries: int,
) -> None:
    from distributed import as_completed

    futures = {
        client.submit(
            run_point, t, key=f"aifactory-sweep-{t.run_id}", pure=False, retries=retries
        ): t
        for t in todo
    }
    pending = set(futures)
    keys = {str(f.key) for f in futures}
    ended = as_completed(list(futures), loop=client.loop, raise_errors=False)
    last_tick = -math.inf
    try:
        while pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            batch = ended.next_batch(block=False)
            for f in batch:
                pending.discard(f)
                keys.discard(str(f.key))
                record(_dask_outcome(f, futures[f]))
            if batch or now - last_tick >= POLL_S:
                tick(_running(client, keys))
                last_tick = now
            if not batch:
                time.sleep(WAKE_S)
    finally:
        if pending:
            client.cancel(list(pending))
    for f in pending:
        t = futures[f]
        record(Outcome(t.run_id, "failed", {}, "not finished within the sweep's timeout"))


def _run_serially(
    todo: Sequence[RunTask],
    record: Callable[[Outcome], None],
    tick: Callable[[int], None],
    deadline: float | None,
) -> None:
    for i, t in enumerate(todo):
        if deadline is not None and time.monotonic() >= deadline:
            for rest in todo[i:]:
                record(Outcome(rest.run_id, "failed", {}, "not run within the sweep's timeout"))
            return
        tick(1)
        record(run_point(t))
    tick(0)


# --------------------------------------------------------------------------- the table


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """One dtype per column (text, nullable booleans, numbers) so parquet accepts the table."""
    for col in df.columns:
        vals = [
            v for v in df[col] if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        if vals and all(isinstance(v, bool) for v in vals):
            df[col] = df[col].astype("boolean")
        elif vals and all(isinstance(v, str) for v in vals):
            df[col] = df[col].where(df[col].notna(), "").astype("string")
        elif not vals and col in ("error", "hardware"):
            df[col] = df[col].fillna("").astype("string")
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def sweep_table(
    tasks: Sequence[RunTask], rows: Mapping[str, dict[str, Any]], errors: Mapping[str, str]
) -> pd.DataFrame:
    """One row per task, in grid order then seed (see :mod:`sim.report.sweep`)."""
    records = []
    params = list(tasks[0].params) if tasks else []
    for t in tasks:
        rec: dict[str, Any] = {
            "point": t.point_id,
            "seed": t.seed,
            "run_id": t.run_id,
            "status": "finished" if t.run_id in rows else "failed",
            "error": errors.get(t.run_id, "") if t.run_id not in rows else "",
        }
        rec.update(t.params)
        rec.update({p + VALUE_SUFFIX: t.values.get(p) for p in params})
        rec.update(rows.get(t.run_id, {}))
        records.append(rec)
    df = pd.DataFrame(records)
    first = ["point", "seed", "run_id", "status", "error", *params]
    first += [p + VALUE_SUFFIX for p in params] + ["hardware"]
    kpis = [k.column for k in KPIS if k.column in df]
    rest = [c for c in df.columns if c not in first and c not in kpis]
    for c in first:
        if c not in df:
            df[c] = ""
    return _typed(df[[*first, *kpis, *rest]].copy())


# --------------------------------------------------------------------------- the sweep


def sweep(
    scenario: str | Path | SweepSpec | None = None,
    grid: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | Client | None = None,
    point_reports: bool = False,
    report: bool = True,
    progress: bool | ProgressFn = False,
    timeout_s: float | None = None,
    retries: int = 2,
    outputs_root: str | Path = "outputs",
) -> SweepResult:
    """Run every point of a grid over seeds and write the sweep folder (module docstring).

    ``scenario``: a scenario file (None: the built-in default), a sweep file or a
    :class:`SweepSpec`; ``grid``: ``{"facility.grid_power": ["3 MW", "4 MW"]}`` or
    ``["facility.grid_power=3 MW,4 MW"]``; ``seeds``: a count (from the scenario's seed up) or
    the seeds; ``overrides``: ``--set`` items for every point. ``point_reports`` writes each
    run's ``report.html`` too (5 MB and half a second each; ``aifactory report`` makes one
    later); ``report=False`` skips the sweep's ``report.html`` (a notebook that draws its own
    figures). ``progress=True`` shows a progress display; a callable receives
    :class:`SweepProgress`. ``timeout_s``: runs not finished by then are stopped and recorded as
    failed (a rerun resumes them).

    Bad input (a key, a value, the seeds) raises :class:`~sim.config.loader.ScenarioError`
    before anything runs or is written; an unusable ``out`` raises
    :class:`~sim.io.OutputError`.
    """
    spec = build_spec(scenario, grid, seeds=seeds, overrides=overrides)
    tasks = resolve(spec)
    _no_twins(tasks, spec.source)
    folder = Path(out) if out is not None else _default_out(tasks, Path(outputs_root))
    _check_out(folder)
    if workers is not None and workers < 0:
        raise ScenarioError("--workers", [Problem((), f"must be 0 or more, got {workers}")], {})
    tasks = with_folders(tasks, folder / "runs", point_reports)
    write_file(folder, "sweep.yaml", spec.as_yaml())

    rows: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    todo: list[RunTask] = []
    for t in tasks:
        row = finished_row(t.folder)
        if row is None:
            todo.append(t)
        else:
            rows[t.run_id] = row
            remove_file(folder / "failed" / f"{t.run_id}.json")
    skipped = len(rows)

    t0 = time.monotonic()
    counts = {"done": 0, "failed": 0, "running": 0}
    notify = _progress_fn(progress)

    def tick(running: int) -> None:
        counts["running"] = running
        if notify is not None:
            notify(
                SweepProgress(
                    total=len(tasks),
                    done=counts["done"],
                    running=running,
                    failed=counts["failed"],
                    skipped=skipped,
                    elapsed_s=time.monotonic() - t0,
                )
            )

    by_id = {t.run_id: t for t in tasks}
    ran_on: dict[str, str] = {}

    def record(o: Outcome) -> None:
        t = by_id[o.run_id]
        if o.where:
            ran_on[o.run_id] = o.where
        if o.status == "finished":
            rows[o.run_id] = o.row
            errors.pop(o.run_id, None)
            remove_file(folder / "failed" / f"{o.run_id}.json")
            counts["done"] += 1
        else:
            errors[o.run_id] = o.error
            counts["failed"] += 1
            failure = {
                "run_id": o.run_id,
                "point": t.point_id,
                "seed": t.seed,
                "params": t.params,
                "error": o.error,
                "traceback": o.traceback,
                "where": o.where,
            }
            write_file(folder / "failed", f"{o.run_id}.json", json.dumps(failure, indent=1))
        tick(max(0, counts["running"] - 1))

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with _display(progress) as shown:
        if shown is not None:
            notify = shown
        tick(0)
        if todo and workers == 0 and scheduler is None:
            _run_serially(todo, record, tick, deadline)
        elif todo:
            with cluster_client(workers, scheduler) as client:
                _run_on_dask(client, todo, record, tick, deadline, retries)
    remove_partials(folder / "runs")

    table = sweep_table(tasks, rows, errors)
    means = seed_means(table, spec.params)
    name = str(tasks[0].scenario.get("name", "sweep")) if tasks else "sweep"
    write_file(folder, "sweep.parquet", table)
    write_file(folder, "sweep.csv", table.to_csv(index=False))
    write_file(folder, "means.parquet", means)
    write_file(folder, "means.csv", means.to_csv(index=False))
    if report:
        title = f"Sweep of {name}: {len(tasks)} runs"
        write_file(folder, "report.html", render_sweep_report(table, means, spec.params, title))
    else:
        remove_file(folder / "report.html")  # an earlier call's would no longer match the table
    return SweepResult(
        folder=folder,
        spec=spec,
        table=table,
        means=means,
        ran=counts["done"] + counts["failed"],
        skipped=skipped,
        failed=counts["failed"],
        errors=dict(errors),
        ran_on=ran_on,
    )


def _progress_fn(progress: bool | ProgressFn) -> ProgressFn | None:
    if callable(progress) and not isinstance(progress, bool):
        return progress
    return None


@contextlib.contextmanager
def _display(progress: bool | ProgressFn) -> Iterator[ProgressFn | None]:
    if progress is True:
        with rich_progress() as update:
            yield update
    else:
        yield None


def _left(s: float | None) -> str:
    if s is None:
        return "time left: -"
    if s < 90:
        return f"~{s:.0f} s left"
    if s < 5400:
        return f"~{s / 60:.0f} min left"
    return f"~{s / 3600:.1f} h left"


def describe(p: SweepProgress) -> str:
    """``12/40 done, 2 running, 1 failed, 5 already done, ~3 min left``."""
    text = f"{p.done + p.skipped}/{p.total} done, {p.running} running, {p.failed} failed"
    if p.skipped:
        text += f" ({p.skipped} from before)"
    return f"{text}, {_left(p.left_s)}"


@contextlib.contextmanager
def rich_progress(console: Any = None) -> Iterator[ProgressFn]:
    """A rich progress display (terminal or Jupyter): a bar of runs ended, with done, running,
    failed and the time left. It redraws on each update only (no refresh thread)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        TextColumn("{task.fields[text]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task("sweep", total=None, text="starting")

        def update(p: SweepProgress) -> None:
            bar.update(
                task, total=p.total, completed=p.done + p.failed + p.skipped, text=describe(p)
            )
            bar.refresh()

        yield update


def plain_progress(write: Callable[[str], None], every_s: float = 10.0) -> ProgressFn:
    """Progress as plain lines (logs, no terminal): one when a run ends, at most one per
    ``every_s`` otherwise."""
    state = {"ended": -1, "at": -math.inf}

    def update(p: SweepProgress) -> None:
        ended = p.done + p.failed
        now = time.monotonic()
        if ended != state["ended"] or now - state["at"] >= every_s:
            state["ended"], state["at"] = ended, now
            write(describe(p))

    return update
