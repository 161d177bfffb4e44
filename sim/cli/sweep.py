"""``aifactory sweep``: a scenario over a grid of values and seeds, on Dask.

``aifactory sweep SCENARIO --grid key.path=v1,v2 [--grid ...] [--seeds K] [--set ...]
[--workers N] [--scheduler tcp://host:port] [--out DIR]``, or a sweep file in place of
SCENARIO (``--grid``, ``--seeds`` and ``--set`` then add to it). Grid values are read exactly
like ``--set`` values, and every point is checked before anything runs: a bad key or value is one
message, exit code 2 and no folder. Exit code 0 when every run finished, 1 when some failed (each
recorded with its error in the sweep folder; the others finished).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.cli.options import add_set_option
from sim.cli.outdir import out_problem
from sim.config.loader import ScenarioError
from sim.io import OutputError
from sim.report.style import fmt, money, plural, si
from sim.report.sweep import HEADLINE_KPIS, KPIS, Kpi
from sim.sweep import SweepProgress, plain_progress, rich_progress, sweep

EXIT_OK, EXIT_SOME_FAILED, EXIT_USER_ERROR = 0, 1, 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a scenario over a grid of values and seeds, in parallel (Dask)",
        description="Run every combination of the --grid values, each with --seeds seeds, on a"
        " local Dask cluster (one process per core) or on the cluster at --scheduler. Finished"
        " runs are kept: the same command again runs only what is missing.",
    )
    p.add_argument("scenario", help="scenario YAML, or a sweep file (YAML with a grid: section)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY.PATH=V1,V2,...",
        help="values of one key, e.g. facility.grid_power='3 MW,4 MW' (repeatable: the grid is"
        " every combination)",
    )
    p.add_argument("--seeds", type=int, help="seeds per point, from the scenario's run.seed up")
    add_set_option(p, "a value in every point", "run.duration=30d")
    p.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: one per core; 0: serially, in this process)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask cluster (e.g. tcp://10.0.0.5:8786); its workers must see --out",
    )
    p.add_argument("--out", help="sweep folder (default outputs/<scenario>/sweep-<id>/)")
    p.add_argument(
        "--point-reports",
        action="store_true",
        help="also write each run's report.html (about 5 MB each)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop runs not finished by then (recorded as failed; run again to resume)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress or table")
    p.set_defaults(handler=cmd_sweep)


def _err(console: Console, message: str) -> int:
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_USER_ERROR


def cmd_sweep(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if args.scheduler is not None and args.workers is not None:
        return _err(err, "--workers sizes the local cluster; with --scheduler leave it out")
    if args.workers is not None and args.workers < 0:
        return _err(err, f"--workers: must be 0 or more, got {args.workers}")
    if args.timeout is not None and not args.timeout > 0:
        return _err(err, f"--timeout: must be a positive number of seconds, got {args.timeout}")
    problem = out_problem(args.out, resumable=True)
    if problem:
        return _err(err, problem)
    with contextlib.ExitStack() as stack:
        progress: Any = False
        if not args.quiet:
            if err.is_terminal:
                progress = _lazy_bar(stack, err)
            else:
                progress = plain_progress(lambda line: err.print(line, markup=False))
        try:
            result = sweep(
                args.scenario,
                args.grid or None,
                seeds=args.seeds,
                overrides=args.overrides,
                out=args.out,
                workers=args.workers,
                scheduler=args.scheduler,
                point_reports=args.point_reports,
                progress=progress,
                timeout_s=args.timeout,
            )
        except (ScenarioError, OutputError) as exc:
            return _err(err, str(exc))
    if not args.quiet:
        _print_means(out, result.means, result.params)
        for run_id, error in list(result.errors.items())[:5]:
            err.print(f"failed: {run_id}: {error}", markup=False, soft_wrap=True)
        if len(result.errors) > 5:
            err.print(f"... and {len(result.errors) - 5} more failed runs", markup=False)
    summary = (
        f"{plural(result.ran, 'run')} ran ({result.failed} failed),"
        f" {result.skipped} {'was' if result.skipped == 1 else 'were'} already done"
    )
    out.print(f"{summary}; sweep folder: {result.folder}", markup=False)
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


def _lazy_bar(stack: contextlib.ExitStack, console: Console) -> Any:
    """A progress bar drawn from its first update on (after the input is checked, so an error
    message is not preceded by an empty bar)."""
    shown: list[Any] = []

    def update(p: SweepProgress) -> None:
        if not shown:
            shown.append(stack.enter_context(rich_progress(console=console)))
        shown[0](p)

    return update


def kpi_text(k: Kpi, v: Any) -> str:
    """A KPI as a reader writes it: money as money (``$1.23``, ``$54.1M``), shares as percent
    (``48.3%``), counts with an SI suffix (``780M``), small numbers to three digits."""
    if v is None or v != v:
        return "n/a"
    x = float(v)
    if k.column.endswith("_usd"):
        return money(x)
    if k.scale == 100.0:
        return fmt(x * 100.0, ".1f", "%")
    return si(x) if abs(x) >= 1000 else fmt(x, ".3g")


def _print_means(out: Console, means: Any, params: tuple[str, ...]) -> None:
    t = Table(title="sweep: means across seeds [95% interval]", title_justify="left")
    for p in params:
        t.add_column(p)
    t.add_column("seeds", justify="right")
    kpis = [k for k in KPIS if k.column in HEADLINE_KPIS and f"{k.column}_mean" in means]
    for k in kpis:
        t.add_column(k.label, justify="right")
    for _, r in means.iterrows():
        cells = [str(r[p]) for p in params]
        cells.append(
            f"{int(r['seeds'])}" + (f" ({int(r['failed'])} failed)" if r["failed"] else "")
        )
        for k in kpis:
            m, lo, hi = (r[f"{k.column}_{s}"] for s in ("mean", "ci95_low", "ci95_high"))
            text = kpi_text(k, m)
            if lo == lo and hi == hi:  # not NaN: two seeds or more
                text += f" [{kpi_text(k, lo)}, {kpi_text(k, hi)}]"
            cells.append(text)
        t.add_row(*cells)
    out.print(t)
    sys.stdout.flush()
