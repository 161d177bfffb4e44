"""``aifactory commitment SCENARIO``: what a fixed commitment buys on each generation at a site.

Reads the scenario's ``commitment`` section (``--budget``, ``--term``, ``--generations`` and
``--utilization`` override it, or ask the question of a scenario without one), answers it with
:func:`sim.commitment.commitment_rows`, prints the table and writes ``commitment.html`` and
``commitment.csv`` into ``--out`` (default ``outputs/commitment/<UTC time>/``).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from sim.catalog.hardware import catalog
from sim.cli.options import add_set_option
from sim.cli.outdir import out_problem
from sim.commitment import commitment_rows
from sim.config.loader import (
    LoadedScenario,
    Problem,
    ScenarioError,
    clean_message,
    load_scenario,
)
from sim.config.schema import CommitmentConfig
from sim.io import OutputError, write_comparison
from sim.report.commitment import runs_label
from sim.report.html import render_commitment
from sim.report.style import money, si
from sim.units import QuantityError, parse_quantity

EXIT_OK, EXIT_USER_ERROR = 0, 2

#: ``--budget``: an optional ``$``, a number (thousands may be grouped with commas, an exponent
#: is allowed), an optional scale K, M, B or T in either case, spaces anywhere between them.
_BUDGET = re.compile(
    r"^\$?\s*(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"\s*(?P<scale>[kKmMbBtT])?$"
)
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
BUDGET_FORMS = "'$30B', '30B', '2.5 B', '$300m', '5M', '5e9' or '$30,000,000,000'"


def parse_budget(text: str) -> float:
    """The USD amount of a ``--budget`` such as ``$30B``, ``2.5 B``, ``$300m``, ``5M``, ``5e9``
    or ``30,000,000,000`` (see :data:`_BUDGET`; K, M, B, T are 1e3, 1e6, 1e9, 1e12), or any
    amount the scenario's ``budget`` key reads (``$1bn``, ``30e9 USD``).
    :class:`ScenarioError` against ``--budget``, naming the accepted forms, for anything else;
    whether the amount is in range is the scenario schema's to say."""
    m = _BUDGET.match(text.strip())
    value = math.nan
    if m:
        value = float(m.group("num").replace(",", ""))
        if m.group("scale"):
            value *= _SCALE[m.group("scale").lower()]
    else:
        # what the scenario's ``budget`` key reads still reads here ('$1bn', '30e9 USD')
        with contextlib.suppress(QuantityError):
            value = parse_quantity(text.strip(), "USD")
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ScenarioError(
            "--budget",
            [
                Problem(
                    (),
                    f"cannot read {shown!r} as an amount of US dollars; give an optional $, a"
                    " number and an optional scale K, M, B or T (thousand, million, billion,"
                    f" trillion; any case), e.g. {BUDGET_FORMS}",
                )
            ],
            {},
        )
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "commitment",
        help="what a fixed commitment (e.g. $30B over 5 years) buys on each generation",
        description="What a fixed budget, spent on the whole cost of ownership over a term,"
        " buys on each hardware generation at the scenario's site: GPUs, GPU-hours, power,"
        " tokens served at the service's latency targets and pre-training runs.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="a scenario YAML (its site and costs)")
    p.add_argument(
        "--budget",
        help="the commitment in US dollars, e.g. '$30B', '2.5 B', '$300m', '5e9' (K, M, B, T in"
        " any case; default: the scenario's)",
    )
    p.add_argument("--term", help="over how long, e.g. '5 years' (default: the scenario's)")
    p.add_argument("--generations", help="comma-separated hardware names (default: the scenario's)")
    p.add_argument("--utilization", help="share of GPU-hours doing useful work, e.g. 0.8")
    p.add_argument("--out", help="write here (default outputs/commitment/<time>/)")
    add_set_option(p, "a value in the scenario", "costs.wacc=0.08")
    p.set_defaults(handler=cmd_commitment)


def _question(args: argparse.Namespace, loaded: LoadedScenario) -> CommitmentConfig:
    given = loaded.scenario.commitment
    data: dict[str, Any] = given.model_dump(mode="json", by_alias=True) if given else {}
    if args.budget is not None:
        data["budget"] = parse_budget(args.budget)
    if args.term is not None:
        data["term"] = args.term
    if args.generations is not None:
        data["generations"] = [g.strip() for g in args.generations.split(",") if g.strip()]
        # Checked here so a bad name is reported against --generations, not the scenario file.
        known = set(catalog()) | set(loaded.scenario.hardware)
        for g in data["generations"]:
            if g not in known:
                close = difflib.get_close_matches(g, sorted(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ScenarioError(
                    "--generations",
                    [
                        Problem(
                            (), f"unknown hardware '{g}'{hint}; known: {', '.join(sorted(known))}"
                        )
                    ],
                    {},
                )
    if args.utilization is not None:
        data["utilization"] = args.utilization
    if "budget" not in data:
        raise ScenarioError(
            "--budget",
            [Problem((), "the scenario has no commitment section: give --budget (e.g. '$30B')")],
            {},
        )
    try:
        return CommitmentConfig.model_validate(data)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in e["loc"])
        msg = clean_message(str(e["msg"]))
        raise ScenarioError("--" + where, [Problem((), msg)], {}) from None


def cmd_commitment(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    out_dir = Path(args.out) if args.out is not None else None
    problem = out_problem(args.out)
    if problem:
        err.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    try:
        loaded = load_scenario(args.scenario, args.overrides)
        question = _question(args, loaded)
        rows = commitment_rows(loaded, question)
    except ScenarioError as exc:
        if args.budget is not None and [p.loc for p in exc.problems] == [("commitment", "budget")]:
            exc = ScenarioError("--budget", [Problem((), exc.problems[0].message)], {})
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    target = out_dir or (
        Path("outputs") / "commitment" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    title = f"{loaded.scenario.name}: {money(question.budget_usd)} commitment"
    try:
        folder = write_comparison(
            target,
            {
                "commitment.html": render_commitment(rows, title),
                "commitment.csv": pd.DataFrame(rows).to_csv(index=False),
            },
        )
    except OutputError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    _print(out, rows, title)
    out.print(f"commitment: {folder}", markup=False)
    return EXIT_OK


def _cell(row: dict[str, Any], key: str, f: Any) -> str:
    v = row.get(key)
    return f(v) if v is not None else "-"


def _print(out: Console, rows: list[dict[str, Any]], title: str) -> None:
    t = Table(title=title, title_justify="left")
    t.add_column("")
    for r in rows:
        star = "*" if r.get("price_basis") == "estimate" else ""
        t.add_column(f"{r['generation']}{star}", justify="right")
    lines: list[tuple[str, str, Any]] = [
        ("released", "year", str),
        ("price per domain", "price_usd", money),
        ("fully loaded", "usd_per_gpu_hour", lambda v: money(v, "GPU-h")),
        ("GPUs it buys", "gpus", lambda v: f"{v:,.0f}"),
        ("facility power (MW)", "facility_mw", lambda v: f"{v:,.0f}"),
        ("GPU-hours", "gpu_hours", si),
        ("serving precision", "precision", str),
        ("served at the SLO, of plan", "slo_capacity_share", lambda v: f"{v:.0%}"),
        ("output tokens, all serving", "tokens", si),
        ("cost per M tokens", "usd_per_million_tokens", money),
        (runs_label(rows), "training_runs", lambda v: f"{v:,.1f}"),
        ("days per run", "run_days", lambda v: f"{v:,.1f}"),
    ]
    for label, key, f in lines:
        t.add_row(label, *(_cell(r, key, f) for r in rows))
    out.print(t)
    for r in rows:
        if r.get("price_basis") == "estimate":
            out.print(f"* {r['generation']}: {r.get('price_note')}", markup=False)
        if r.get("note"):
            out.print(f"{r['generation']}: {r['note']}", markup=False)
    sys.stdout.flush()
