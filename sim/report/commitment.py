"""The commitment question drawn: what a fixed budget buys on each generation at a site.

Input is the rows of :func:`sim.commitment.commitment_rows` (plain dicts, in order of release;
also ``summary.json``'s ``commitment``). One bar per generation in its generation's colour in
each panel: GPUs, the power they need, GPU-hours, output tokens served and frontier training
runs (each spent wholly one way), and the fully loaded cost per GPU-hour. A generation priced by
estimate is marked ``*``; one the site cannot hold the workload on has no bar and its reason in
the table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.report.style import axis, generation_color, money, si, styled

__all__ = ["commitment_figure", "commitment_table_html"]

#: (key, panel title, axis title, scale, label of a bar)
_PANELS: tuple[tuple[str, str, str, float, Callable[[float], str]], ...] = (
    ("gpus", "GPUs it buys", axis("GPUs", "count"), 1.0, si),
    ("facility_mw", "facility power it needs", axis("power", "MW"), 1.0, lambda v: f"{v:,.0f}"),
    ("gpu_hours", "GPU-hours over the term", axis("GPU-hours", "count"), 1.0, si),
    ("tokens", "output tokens, all serving", axis("tokens", "count"), 1.0, si),
    (
        "training_runs",
        "frontier runs, all training",
        axis("runs", "count"),
        1.0,
        lambda v: f"{v:,.1f}",
    ),
    ("usd_per_gpu_hour", "fully loaded cost", axis("cost", "$ per GPU-hour"), 1.0, money),
)


def _label(row: dict[str, Any]) -> str:
    star = "*" if row.get("price_basis") == "estimate" else ""
    return f"{row['generation']}{star}"


def _num(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def commitment_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Six panels of bars, one bar per generation (module docstring)."""
    ncols = 3
    nrows = math.ceil(len(_PANELS) / ncols)
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[p[1] for p in _PANELS],
        vertical_spacing=0.2,
        horizontal_spacing=0.09,
    )
    gens = [r["generation"] for r in rows]
    colors = [generation_color(g, gens) for g in gens]
    labels = [_label(r) for r in rows]
    for i, (key, title, ytitle, scale, fmt_) in enumerate(_PANELS):
        row, col = divmod(i, ncols)
        values = [_num(r, key) for r in rows]
        ys = [v * scale if v is not None else None for v in values]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=ys,
                marker={"color": colors},
                text=[fmt_(v) if v is not None else "does not fit" for v in ys],
                textposition="outside",
                cliponaxis=False,
                showlegend=False,
                name=title,
                hovertemplate="%{x}: %{text}<extra>" + title + "</extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
        fig.update_yaxes(title_text=ytitle, row=row + 1, col=col + 1)
    first = rows[0] if rows else {}
    budget = money(first.get("budget_usd"))
    years = first.get("term_years")
    term = f"{years:g} years" if isinstance(years, float | int) else "the term"
    return styled(fig, f"What {budget} over {term} buys", height=330 * nrows + 120)


_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("year", "released", lambda v: str(v) if v is not None else ""),
    ("price_usd", "price per domain", money),
    ("usd_per_gpu_hour", "$ per GPU-hour (loaded)", lambda v: money(v, "GPU-h")),
    ("gpus", "GPUs", lambda v: f"{v:,.0f}" if v is not None else "-"),
    ("facility_mw", "facility MW", lambda v: f"{v:,.0f}" if v is not None else "-"),
    ("gpu_hours", "GPU-hours", si),
    ("precision", "serving precision", lambda v: str(v or "")),
    ("tokens", "tokens, all serving", si),
    ("usd_per_million_tokens", "$ per M tokens", money),
    (
        "training_runs",
        "frontier runs, all training",
        lambda v: f"{v:,.1f}" if v is not None else "-",
    ),
    ("run_days", "days per run", lambda v: f"{v:,.1f}" if v is not None else "-"),
    ("energy_share", "energy share of cost", lambda v: f"{v:.0%}" if v is not None else "-"),
)


def commitment_table_html(rows: list[dict[str, Any]]) -> str:
    """The rows as an HTML table, generations as columns; notes (estimates, misfits) below."""
    head = "".join(f"<th>{html.escape(_label(r))}</th>" for r in rows)
    body = []
    for key, title, f in _COLUMNS:
        cells = "".join(
            f"<td>{html.escape(f(r.get(key)) if r.get(key) is not None else '-')}</td>"
            for r in rows
        )
        body.append(f"<tr><th>{html.escape(title)}</th>{cells}</tr>")
    notes = [
        f"{html.escape(r['generation'])}: {html.escape(str(r.get('price_note') or ''))}"
        for r in rows
        if r.get("price_basis") == "estimate"
    ] + [f"{html.escape(r['generation'])}: {html.escape(r['note'])}" for r in rows if r.get("note")]
    foot = (
        '<p class="meta">* price estimated (no sourced price): ' + "; ".join(notes) + "</p>"
        if notes
        else ""
    )
    return (
        f'<table class="data"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{foot}"
    )
