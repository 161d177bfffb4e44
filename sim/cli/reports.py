"""``aifactory report`` and ``aifactory compare``.

``report RUN_DIR`` rebuilds ``report.html`` of a finished run folder from its tables.
``compare A B ...`` puts scenarios (run now, in memory, with ``--seed``/``--set``) and finished
run folders (read as they are) side by side: it writes ``comparison.html`` and
``comparison.csv`` into ``--out`` (default ``outputs/compare/<UTC time>/``) and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.build import with_natural_precision
from sim.cli.options import add_set_option
from sim.cli.outdir import out_problem
from sim.config.loader import ScenarioError, load_scenario
from sim.io import OutputError, RunTables, read_run, write_comparison, write_report
from sim.report.compare import (
    by_release,
    cell_text,
    comparison_table,
    duration_differences,
    estimated_mark,
    estimated_notes,
    render_comparison,
    service_rows,
    serving_differences,
)
from sim.report.html import render_report
from sim.runner import prepare, progress_bar, simulate

EXIT_OK, EXIT_USER_ERROR = 0, 2


def add_parsers(sub: Any) -> None:
    r = sub.add_parser(
        "report",
        help="rebuild report.html of a finished run folder",
        description="Rebuild the self-contained report.html of a run folder from its tables.",
    )
    r.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `aifactory run`")
    r.set_defaults(handler=cmd_report)

    c = sub.add_parser(
        "compare",
        help="compare scenarios or finished run folders side by side",
        description="Run scenarios (or read finished run folders) and compare them, oldest"
        " generation first: tokens per day served and what the factory could serve, cost per"
        " million tokens, training-run time, inference and pre-training tokens per MWh,"
        " utilization, cost per GPU-hour; per service, the precision and engine it was served"
        " with and what bounds its batch (a warning when the runs serve it differently).",
    )
    c.add_argument(
        "inputs",
        nargs="+",
        metavar="SCENARIO_OR_RUN_DIR",
        help="scenario YAML files (run now) or run folders (read); at least two",
    )
    c.add_argument("--out", help="write the comparison here (default outputs/compare/<time>/)")
    c.add_argument(
        "--inference-precision",
        choices=("natural", "scenario", "fp8", "fp4", "bf16"),
        default="natural",
        help="precision of the inference services of the scenarios run: 'natural' (default)"
        " gives a service that names none its hardware's natural one (FP4 on Blackwell and"
        " later, else FP8); 'scenario' keeps the scenario's (FP8 by default); fp8/fp4/bf16"
        " force one where the hardware has it",
    )
    c.add_argument("--seed", type=int, help="root random seed for the scenarios run")
    add_set_option(c, "a value in every scenario run", "run.duration=3d")
    c.set_defaults(handler=cmd_compare)


def _err(console: Console, message: str) -> int:
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_USER_ERROR


def cmd_report(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    folder = Path(args.run_dir)
    if not folder.is_dir():
        return _err(err, f"{folder} is not a run folder (no such directory)")
    try:
        tables = read_run(folder)
        target = write_report(folder, _rendered(folder, lambda: render_report(tables)))
    except OutputError as exc:
        return _err(err, str(exc))
    Console(highlight=False).print(str(target), markup=False)
    return EXIT_OK


def _rendered(folder: Path | str, render: Callable[[], str]) -> str:
    """``render()``, with a value of an unexpected shape deep in a hand-edited run folder (one
    that passed :func:`read_run`'s checks) reported as a damaged folder, not a traceback."""
    try:
        return render()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise _rendered_error(str(folder), exc) from None


def _labels(names: list[str]) -> list[str]:
    """Short unique labels: a prefix common to all names up to a ``_`` or ``-`` is dropped
    (``generation_h100`` -> ``h100``); repeated names get ``#2``, ``#3`` in order."""
    distinct = list(dict.fromkeys(names))
    # a common prefix only where the names differ (one scenario run twice keeps its name)
    prefix = distinct[0] if len(distinct) > 1 else ""
    for n in distinct[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind("_"), prefix.rfind("-")) + 1
    if cut and all(len(n) > cut for n in names):
        names = [n[cut:] for n in names]
    out: list[str] = []
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n}#{seen[n]}")
    return out


def _load(args: argparse.Namespace, err: Console) -> list[tuple[str, RunTables]] | int:
    """Read run folders and run scenarios; an exit code on the first user error."""
    for p in args.inputs:
        if not Path(p).exists():
            return _err(err, f"{p}: no such scenario file or run folder")
    if all(Path(p).is_dir() for p in args.inputs):
        given = [
            flag
            for flag, on in (
                ("--set", bool(args.overrides)),
                ("--seed", args.seed is not None),
                ("--inference-precision", args.inference_precision != "natural"),
            )
            if on
        ]
        if given:
            return _err(
                err,
                f"{', '.join(given)} act on the scenarios compare runs, and every input here is"
                " a run folder, read as it was run: leave them out (or give a scenario file)",
            )
    show = err.is_terminal
    loaded: list[tuple[str, RunTables]] = []
    folders: dict[int, str] = {}  # entry -> its run folder's name
    for p in args.inputs:
        path = Path(p)
        if path.is_dir():
            try:
                tables = read_run(path)
            except OutputError as exc:
                return _err(err, str(exc))
            loaded.append((str(tables.summary.get("scenario", path.name)), tables))
            folders[len(loaded) - 1] = path.resolve().name
            continue
        try:
            scenario = load_scenario(path, args.overrides)
            if args.inference_precision != "scenario":
                force = None if args.inference_precision == "natural" else args.inference_precision
                scenario = with_natural_precision(scenario, force)
            _sc, plan = prepare(scenario, seed=args.seed)
        except ScenarioError as exc:
            return _err(err, str(exc))
        with contextlib.ExitStack() as stack:
            update = None
            if show:
                update = stack.enter_context(
                    progress_bar(plan.scenario.name, plan.scenario.run.duration_s, console=err)
                )
            tables, _stats = simulate(plan, progress=update)
        loaded.append((plan.scenario.name, tables))
    return _by_folder(loaded, folders)


def _by_folder(
    loaded: list[tuple[str, RunTables]], folders: dict[int, str]
) -> list[tuple[str, RunTables]]:
    """Runs of one scenario read from folders are named by their folders (``over`` and
    ``over0``, two ``--set`` variants of one scenario) when that tells them all apart;
    otherwise by the scenario, numbered."""
    names = [n for n, _ in loaded]
    repeated = [i for i, n in enumerate(names) if names.count(n) > 1]
    new = [folders[i] if i in repeated and i in folders else n for i, n in enumerate(names)]
    if len(set(new)) < len(new):
        return loaded
    return [(n, t) for n, (_, t) in zip(new, loaded, strict=True)]


def cmd_compare(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if len(args.inputs) < 2:
        return _err(err, "compare needs at least two scenarios or run folders")
    problem = out_problem(args.out)
    if problem:
        return _err(err, problem)
    loaded = _load(args, err)
    if isinstance(loaded, int):
        return loaded
    labels = _labels([name for name, _ in loaded])
    runs = by_release({label: t for label, (_, t) in zip(labels, loaded, strict=True)})
    target = (
        Path(args.out)
        if args.out is not None
        else Path("outputs") / "compare" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    where = ", ".join(p for p in args.inputs if Path(p).is_dir()) or "a run"
    try:
        table = comparison_table(runs)
        html_text = _rendered(where, lambda: render_comparison(runs))
        folder = write_comparison(
            target, {"comparison.html": html_text, "comparison.csv": table.to_csv()}
        )
    except OutputError as exc:
        return _err(err, str(exc))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return _err(err, str(_rendered_error(where, exc)))
    _print_table(out, table)
    out.print(f"comparison: {folder}", markup=False)
    return EXIT_OK


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("hardware", "hardware", ""),
    ("year", "released", "year"),
    ("gpus", "GPUs", ",.0f"),
    ("it_mw", "IT power provisioned (MW)", ",.0f"),
    ("days", "days simulated", ".3g"),
    ("inference_tokens_per_day", "inference tokens per day (served)", "si"),
    ("inference_capacity_tokens_per_day", "  the held domains could serve", "si"),
    ("factory_capacity_tokens_per_day", "  the whole factory could serve", "si"),
    ("pretraining_tokens_per_day", "pre-training tokens per day", "si"),
    ("cost_per_million_tokens_usd", "cost per million tokens (blended, served)", "money"),
    ("cost_per_million_tokens_at_capacity_usd", "  whole factory serving", "money"),
    ("training_run_days", "training-run time (days)", ",.1f"),
    ("inference_tokens_per_mwh", "inference output tokens per MWh (site energy)", "si"),
    ("pretraining_tokens_per_mwh", "pre-training tokens per MWh (site energy)", "si"),
    ("utilization", "utilization", ".1%"),
    ("training_goodput", "training goodput", ".1%"),
    ("cost_per_gpu_hour_usd", "cost per GPU-hour (fully loaded)", "money"),
    ("total_cost_usd", "cost of the run", "money"),
)


def _print_table(out: Console, table: Any) -> None:
    t = Table(title="comparison", title_justify="left")
    t.add_column("metric")
    for r in table.index:
        t.add_column(str(r), justify="right")
    for col, label, spec in _ROWS:
        cells = []
        for r in table.index:
            v = table.at[r, col]
            text = cell_text(v, spec) + (estimated_mark(table, r) if col == "hardware" else "")
            if col == "training_run_days" and bool(table.at[r, "training_run_projected"]):
                text += " (projected)" if text != "n/a" else ""
            cells.append(text)
        t.add_row(label, *cells)
    for service, label, cells in service_rows(table):
        t.add_row(f"  {label}, {service}", *cells)
    out.print(t)
    for note in estimated_notes(table):
        out.print(note, markup=False)
    for w in [*duration_differences(table), *serving_differences(table)]:
        out.print(f"warning: {w}", markup=False)
    sys.stdout.flush()


def _rendered_error(where: str, exc: Exception) -> OutputError:
    return OutputError(
        f"{where}: damaged, summary.json or a table has a value of an unexpected shape"
        f" ({type(exc).__name__}: {str(exc)[:200]})"
    )
