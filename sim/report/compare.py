"""Runs side by side: a comparison table, comparison figures and a self-contained HTML page.

Input is ``{label: RunTables}`` (finished run folders read with :func:`sim.io.read_run`, or
fresh runs); the order of the dict is the order of the columns and bars. Each run is coloured
by its generation (the hardware with the most GPUs, :data:`~sim.report.style.GENERATION_COLORS`)
in every figure, so H100 is the same green here as in any other report.

Columns of :func:`comparison_table` (one row per run; units in the names):

* ``hardware``, ``gpus``, ``domains``, ``it_mw`` (provisioned IT power), ``days`` simulated;
* ``inference_tokens_per_day`` (output tokens served: demand-limited), next to the capacity-based
  ``inference_capacity_tokens_per_day`` (what the held domains could serve) and
  ``factory_capacity_tokens_per_day`` (if every domain served the services' mix,
  :func:`~sim.report.kpis.capacity_tokens_per_day`), and ``cost_per_million_tokens_at_capacity_usd``
  (the whole factory's cost a day over that capacity); ``pretraining_tokens_per_day``;
* ``cost_per_million_tokens_usd`` (all services: their cost over their tokens) and
  ``service.<service>.cost_per_million_tokens_usd`` per service (the family
  :data:`~sim.contract.COMPARED_SERVICE`, see :func:`service_cost_columns`); NaN when a price
  is unknown;
* ``service.<service>.capacity_tokens_per_day_per_mw``: what the service could sustain at its
  latency targets, output tokens a day per MW of its domains' provisioned IT power (capacity,
  not the demand it was given; :func:`sim.analysis.summarize`), and
  ``service.<service>.capacity_tokens_per_day_per_domain``; NaN for a run without them;
  ``service.<service>.slo_attainment`` (share of its requests that met the latency targets; NaN
  where not estimated) and ``service.<service>.over_capacity_share`` (share of the run its
  demand exceeded the capacity it held);
* ``training_run``, ``training_run_days`` (submission to completion of the first pre-training
  run), ``training_run_projected`` (True when it did not finish in the window and the time is
  projected from its progress);
* ``service.<service>.precision``, ``.kv_cache``, ``.runtime`` (text; empty for a run folder
  written before they were recorded): what the service was served with, so that a column
  served at FP4 is not read as the same service as one at FP8 (:func:`serving_differences`
  says so), and ``.limited_by`` and ``.batch``: what bounds its replicas' batch (``max_seqs``:
  the engine's cap ``serving.max_seqs``, not the hardware) and the batch;
* ``inference_tokens_per_mwh`` and ``pretraining_tokens_per_mwh``: inference output tokens, and
  apart pre-training tokens, per MWh of the whole site's facility energy (never summed: a
  generated token and a processed training token are different work);
* ``utilization``, ``training_goodput``, ``training_mfu`` (fractions), ``average_pue``,
  ``cost_per_gpu_hour_usd``, ``total_cost_usd``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import yaml
from plotly.subplots import make_subplots

from sim.catalog.hardware import catalog
from sim.contract import COMPARED_SERVICE, entity_column, parse_entity_column
from sim.io import RunTables
from sim.report.html import figure_section, html_page
from sim.report.kpis import (
    blended_cost_per_million_tokens_usd,
    capacity_tokens_per_day,
    capex_known,
    main_hardware,
    release_year,
    service_costs_per_million_tokens_usd,
    training_run_days,
)
from sim.report.scenario_text import scenario_as_written
from sim.report.style import axis, fmt, generation_color, money, si, styled
from sim.units import DAY_S

__all__ = [
    "KPI_BARS",
    "by_release",
    "cell_text",
    "comparison_figures",
    "comparison_table",
    "duration_differences",
    "estimated_mark",
    "estimated_notes",
    "kpi_bars_figure",
    "render_comparison",
    "run_colors",
    "service_cost_columns",
    "service_cost_figure",
    "service_rows",
    "serving_differences",
    "timeseries_figure",
]

#: The headline metrics drawn as bars: (column, subplot title, axis title with unit, scale,
#: how the bar's label is written).
KPI_BARS: tuple[tuple[str, str, str, float, Callable[[float], str]], ...] = (
    ("inference_tokens_per_day", "tokens per day served", axis("tokens", "per day"), 1.0, si),
    (
        "factory_capacity_tokens_per_day",
        "tokens per day, whole factory serving",
        axis("tokens", "per day"),
        1.0,
        si,
    ),
    (
        "cost_per_million_tokens_usd",
        "cost per million tokens (blended)",
        axis("cost", "$ per million tokens"),
        1.0,
        money,
    ),
    (
        "cost_per_million_tokens_at_capacity_usd",
        "cost per million tokens, whole factory serving",
        axis("cost", "$ per million tokens"),
        1.0,
        money,
    ),
    (
        "training_run_days",
        "training-run time (~: projected)",
        axis("time", "days"),
        1.0,
        lambda v: fmt(v, ",.1f"),
    ),
    (
        "inference_tokens_per_mwh",
        "inference output tokens per MWh (site)",
        axis("tokens", "per MWh"),
        1.0,
        si,
    ),
    ("utilization", "utilization", axis("GPUs in use", "%"), 100.0, lambda v: fmt(v, ".1f", "%")),
    ("gpus", "GPUs at the same power", axis("GPUs", "count"), 1.0, si),
)


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def comparison_table(runs: dict[str, RunTables]) -> pd.DataFrame:
    """One row per run (index: its label) with the comparison metrics (see module docstring), in
    the order of ``runs`` (:func:`by_release` orders runs by their generation's release)."""
    services: list[str] = []
    for t in runs.values():
        for s in t.summary.get("inference_services", []):
            if s["name"] not in services:
                services.append(s["name"])
    rows = []
    for label, t in runs.items():
        s = t.summary
        f = s["factory"]
        days = float(s["duration_days"])
        tok = s["tokens"]
        fac_mwh = float(s["energy"]["facility_mwh"])
        known = capex_known(t.traces)
        run_name, run_days, projected = training_run_days(t)
        per_svc = service_costs_per_million_tokens_usd(t)
        held_cap, factory_cap = capacity_tokens_per_day(t)
        total = s["cost"]["total_usd"] if known else None
        row: dict[str, Any] = {
            "run": label,
            "scenario": s["scenario"],
            "hardware": main_hardware(s),
            "gpus": int(f["gpus"]),
            "domains": int(f["domains"]),
            "it_mw": float(f["provisioned_it_power_mw"]),
            "days": days,
            "year": release_year(main_hardware(s)),
            "inference_tokens_per_day": float(tok["inference_output_tokens"]) / days,
            "inference_capacity_tokens_per_day": _nan(held_cap),
            "factory_capacity_tokens_per_day": _nan(factory_cap),
            "cost_per_million_tokens_at_capacity_usd": (
                float(total) / days / factory_cap * 1e6
                if total is not None and factory_cap
                else math.nan
            ),
            "pretraining_tokens_per_day": float(tok["pretraining_tokens_done"]) / days,
            "cost_per_million_tokens_usd": _nan(blended_cost_per_million_tokens_usd(t)),
            "training_run": run_name,
            "training_run_days": _nan(run_days),
            "training_run_projected": bool(projected),
            # apart, never summed (module docstring); from the token counts, so run folders
            # written before the summary split them compare too
            "inference_tokens_per_mwh": (
                float(tok["inference_output_tokens"]) / fac_mwh if fac_mwh > 0 else math.nan
            ),
            "pretraining_tokens_per_mwh": (
                float(tok["pretraining_tokens_done"]) / fac_mwh if fac_mwh > 0 else math.nan
            ),
            "utilization": float(s["utilization"]),
            "training_goodput": _nan(s.get("training_goodput")),
            "training_mfu": _nan(s.get("training_mfu")),
            "average_pue": _nan(s["energy"].get("average_pue")),
            "cost_per_gpu_hour_usd": _nan(s["cost"]["per_gpu_hour_usd"] if known else None),
            "total_cost_usd": _nan(s["cost"]["total_usd"] if known else None),
            # hardware priced by a flagged estimate, not a sourced price (docs/costs.md §1.1)
            "estimated_prices": ", ".join(s["cost"].get("estimated_prices") or []),
        }
        capacity = {c["name"]: c for c in s.get("inference_services", [])}
        for name in services:
            row[_cost_column(name)] = _nan(per_svc.get(name))
            got = capacity.get(name, {})
            for q in SERVICE_QUANTITIES:
                row[entity_column(COMPARED_SERVICE, name, q)] = _nan(got.get(q))
            for q in SERVICE_TEXTS:
                row[entity_column(COMPARED_SERVICE, name, q)] = str(got.get(q) or "")
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


#: per-service columns of the comparison table: capacity (tokens a day at the SLO), the share of
#: requests that met the latency targets, the share of the run demand exceeded capacity, and
#: the batch of its replicas
SERVICE_QUANTITIES = (
    "capacity_tokens_per_day_per_mw",
    "capacity_tokens_per_day_per_domain",
    "slo_attainment",
    "over_capacity_share",
    "batch",
)
#: per-service text columns: what it was served with and what bounds its batch
SERVICE_TEXTS = ("precision", "kv_cache", "runtime", "limited_by")
#: the text columns whose difference between runs changes what a service is (a warning)
SERVED_WITH = ("precision", "kv_cache", "runtime")


def by_release(runs: dict[str, RunTables]) -> dict[str, RunTables]:
    """``runs`` ordered by the release year of each run's generation (its hardware with the most
    GPUs), oldest first; runs of the same year, and generations the catalog does not know
    (last), keep their order."""
    items = list(runs.items())

    def key(item: tuple[int, tuple[str, RunTables]]) -> tuple[int, int]:
        i, (_, t) = item
        year = release_year(main_hardware(t.summary))
        return (year if year is not None else 10_000, i)

    return {label: t for _, (label, t) in sorted(enumerate(items), key=key)}


def _cost_column(service: str) -> str:
    return entity_column(COMPARED_SERVICE, service, "cost_per_million_tokens_usd")


def service_cost_columns(table: pd.DataFrame) -> list[tuple[str, str]]:
    """``(column, service)`` of each per-service cost column of a comparison table, in order."""
    out = []
    for col in table.columns:
        parsed = parse_entity_column(str(col), (COMPARED_SERVICE,))
        if parsed is not None and parsed[2] == "cost_per_million_tokens_usd":
            out.append((str(col), parsed[1]))
    return out


#: per service, after its cost per million tokens: (quantity, label, cell format)
_SERVICE_ROWS = (
    ("capacity_tokens_per_day_per_mw", "capacity at SLO, tok/day per MW IT", "si"),
    ("slo_attainment", "SLO attainment", ".1%"),
    ("over_capacity_share", "time over capacity", ".0%"),
)


def _text(table: pd.DataFrame, run: Any, service: str, q: str) -> str:
    c = entity_column(COMPARED_SERVICE, service, q)
    v = table.at[run, c] if c in table.columns else ""
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else str(v)


def _served_with(table: pd.DataFrame, run: Any, service: str) -> str:
    """``FP8, reserved KV, fused runtime``; n/a for a run that does not record them."""
    precision = _text(table, run, service, "precision")
    kv, runtime = _text(table, run, service, "kv_cache"), _text(table, run, service, "runtime")
    parts = [precision.upper() or "precision n/a"]
    if kv:
        parts.append(f"{kv} KV")
    if runtime:
        parts.append(f"{runtime} runtime")
    return ", ".join(parts)


def _batch_text(table: pd.DataFrame, run: Any, service: str) -> str:
    """``1,024 (max_seqs: engine cap)``: sequences per replica and what bounds them; n/a where
    not recorded."""
    limited = _text(table, run, service, "limited_by")
    if not limited:
        return "n/a"
    c = entity_column(COMPARED_SERVICE, service, "batch")
    b = _nan(table.at[run, c]) if c in table.columns else math.nan
    why = ": engine cap" if limited == "max_seqs" else ""
    return f"{int(b):,} ({limited}{why})" if math.isfinite(b) else f"({limited}{why})"


def serving_differences(table: pd.DataFrame) -> list[str]:
    """One warning per service that the runs serve differently (its precision, KV-cache
    policy or runtime; runs that do not record one are left out): its tokens per day, cost
    and capacity then compare the precision (or engine) as well as the hardware."""
    out = []
    hinted = False  # the hint on how precisions are chosen is given once, not per service
    for _, service in service_cost_columns(table):
        for q in SERVED_WITH:
            seen = {str(r): _text(table, r, service, q) for r in table.index}
            seen = {r: v for r, v in seen.items() if v}
            if len(set(seen.values())) > 1:
                shown = ", ".join(
                    f"{(v.upper() if q == 'precision' else v)} in {r}" for r, v in seen.items()
                )
                what = {"precision": "precisions", "kv_cache": "KV-cache policies"}.get(
                    q, "serving runtimes"
                )
                hint = ""
                if q == "precision" and not hinted:
                    hinted = True
                    hint = (
                        " (compare --inference-precision scenario runs scenarios at the"
                        " precision they name; run folders keep theirs)"
                    )
                out.append(
                    f"service {service} is served with different {what}: {shown}; its"
                    f" figures compare the {what} as well as the hardware{hint}"
                )
    return out


def duration_differences(table: pd.DataFrame) -> list[str]:
    """A warning when the runs cover different spans: their per-day and per-MWh figures are
    averages over different stretches of the year (weather, demand's weekly cycle, failures,
    the queue filling up at the start), so they compare the spans as well as the hardware."""
    days = {str(r): _nan(table.at[r, "days"]) for r in table.index}
    if len(set(days.values())) <= 1:
        return []
    shown = ", ".join(f"{d:.3g} day{'' if d == 1 else 's'} in {r}" for r, d in days.items())
    return [
        f"the runs cover different durations ({shown}): their per-day and per-MWh figures"
        " average over different spans; run them for the same duration"
        " (--set run.duration=...) to compare the hardware alone"
    ]


def service_rows(table: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """``(service, label, cells)`` of the comparison table's rows per service, in order: what it
    was served with (precision, KV-cache policy, runtime) and what bounds its batch, its cost
    per million tokens, its capacity at the SLO (per MW of the racks' provisioned IT power),
    the share of its requests that met the targets and the share of the run it was over
    capacity (capacity alone flatters a run that missed its targets)."""
    out = []
    for col, service in service_cost_columns(table):
        out.append((service, "served at", [_served_with(table, r, service) for r in table.index]))
        out.append(
            (
                service,
                "batch per replica (bound)",
                [_batch_text(table, r, service) for r in table.index],
            )
        )
        out.append((service, "cost per M tokens", [money(table.at[r, col]) for r in table.index]))
        for q, label, spec in _SERVICE_ROWS:
            c = entity_column(COMPARED_SERVICE, service, q)
            if c in table.columns:
                out.append((service, label, [cell_text(table.at[r, c], spec) for r in table.index]))
    return out


def run_colors(table: pd.DataFrame) -> dict[str, str]:
    """Run label -> the colour of its generation."""
    hws = [str(h) for h in table["hardware"]]
    return {str(r): generation_color(h, hws) for r, h in zip(table.index, hws, strict=True)}


def _dashes(table: pd.DataFrame) -> dict[str, str]:
    """Runs of the same generation share a colour; later ones get a different dash."""
    styles = ("solid", "dash", "dot", "dashdot", "longdash")
    seen: dict[str, int] = {}
    out = {}
    for r, h in zip(table.index, table["hardware"], strict=True):
        n = seen.get(h, 0)
        seen[h] = n + 1
        out[str(r)] = styles[n % len(styles)]
    return out


def kpi_bars_figure(table: pd.DataFrame) -> go.Figure:
    """The headline metrics of :data:`KPI_BARS`, one bar per run in its generation's colour.

    Unknown values (NaN, e.g. a cost without a price) are drawn as "n/a"; projected training
    times are marked "~".
    """
    ncols = 3
    nrows = math.ceil(len(KPI_BARS) / ncols)
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[bar[1] for bar in KPI_BARS],
        vertical_spacing=0.22,
        horizontal_spacing=0.09,
    )
    colors = run_colors(table)
    labels = [str(r) for r in table.index]
    for i, (col, title, ytitle, scale, label) in enumerate(KPI_BARS):
        row, c = divmod(i, ncols)
        values = table[col].to_numpy(dtype=float) * scale
        text = [label(v) for v in values]
        if col == "training_run_days":  # "~": projected from progress, not finished
            text = [
                ("~" if p and math.isfinite(v) else "") + t
                for t, v, p in zip(text, values, table["training_run_projected"], strict=True)
            ]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=np.where(np.isfinite(values), values, 0.0),
                marker={"color": [colors[r] for r in labels]},
                text=text,
                textposition="outside",
                cliponaxis=False,
                name=title,
                showlegend=False,
                hovertemplate="%{x}: %{text}<extra>" + title + "</extra>",
            ),
            row=row + 1,
            col=c + 1,
        )
        fig.update_yaxes(title_text=ytitle, row=row + 1, col=c + 1)
    fig.update_layout(hovermode="closest")
    return styled(fig, "Headline metrics", height=330 * nrows + 120)


def service_cost_figure(table: pd.DataFrame) -> go.Figure:
    """Cost per million output tokens of each inference service, one bar group per run."""
    cols = service_cost_columns(table)
    services = [s for _, s in cols]
    colors = run_colors(table)
    fig = go.Figure()
    for r in table.index:
        values = table.loc[r, [c for c, _ in cols]].to_numpy(dtype=float)
        fig.add_trace(
            go.Bar(
                x=services,
                y=[v if math.isfinite(v) else None for v in values],
                name=str(r),
                marker={"color": colors[str(r)]},
                text=[money(v) for v in values],
                textposition="outside",
                hovertemplate="%{x}: %{text}/M tokens<extra>" + str(r) + "</extra>",
            )
        )
    fig.update_layout(barmode="group", hovermode="closest")
    fig.update_xaxes(title_text="inference service")
    fig.update_yaxes(title_text=axis("cost", "$ per million tokens"), type="log")
    return styled(fig, "Cost per million tokens by service (log scale)")


def timeseries_figure(
    runs: dict[str, RunTables],
    table: pd.DataFrame,
    column: str,
    title: str,
    ytitle: str,
    scale: float,
) -> go.Figure:
    """One trace column over time, one line per run in its generation's colour."""
    colors, dashes = run_colors(table), _dashes(table)
    fig = go.Figure()
    for label, t in runs.items():
        if column not in t.traces:
            continue
        fig.add_trace(
            go.Scatter(
                x=t.traces["time_s"].to_numpy(dtype=float) / DAY_S,
                y=t.traces[column].to_numpy(dtype=float) * scale,
                name=label,
                mode="lines",
                line={"color": colors[label], "dash": dashes[label], "shape": "hv"},
            )
        )
    fig.update_xaxes(title_text=axis("time", "days"))
    fig.update_yaxes(title_text=ytitle, rangemode="tozero")
    return styled(fig, title)


def comparison_figures(
    runs: dict[str, RunTables], table: pd.DataFrame
) -> list[tuple[str, str, go.Figure]]:
    """(id, section title, figure) for every comparison figure that has data."""
    out = [("kpis", "Headline metrics", kpi_bars_figure(table))]
    if service_cost_columns(table):
        out.append(("service-cost", "Cost per token by service", service_cost_figure(table)))
    out.append(
        (
            "utilization",
            "Utilization over time",
            timeseries_figure(
                runs, table, "utilization", "GPU utilization", axis("GPUs in use", "%"), 100.0
            ),
        )
    )
    out.append(
        (
            "power",
            "Facility power over time",
            timeseries_figure(
                runs, table, "facility_power_w", "Facility power", axis("power", "MW"), 1e-6
            ),
        )
    )
    return out


# --------------------------------------------------------------------------- HTML

_TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("hardware", "hardware", ""),
    ("gpus", "GPUs", ",.0f"),
    ("it_mw", "IT MW", ",.0f"),
    ("days", "days simulated", ".3g"),
    ("year", "released", "year"),
    ("inference_tokens_per_day", "inference tokens/day (served)", "si"),
    ("inference_capacity_tokens_per_day", "tokens/day the held domains could serve", "si"),
    ("factory_capacity_tokens_per_day", "tokens/day, whole factory serving", "si"),
    ("pretraining_tokens_per_day", "pre-training tokens/day", "si"),
    ("cost_per_million_tokens_usd", "$ per M tokens (blended, served)", "money"),
    ("cost_per_million_tokens_at_capacity_usd", "$ per M tokens, whole factory serving", "money"),
    ("training_run_days", "training-run days", ",.1f"),
    ("inference_tokens_per_mwh", "inference output tokens per MWh (site energy)", "si"),
    ("pretraining_tokens_per_mwh", "pre-training tokens per MWh (site energy)", "si"),
    ("utilization", "utilization", ".1%"),
    ("training_goodput", "training goodput", ".1%"),
    ("training_mfu", "MFU", ".1%"),
    ("average_pue", "PUE", ".2f"),
    ("cost_per_gpu_hour_usd", "$ per GPU-hour (fully loaded)", "money"),
    ("total_cost_usd", "cost of the run", "money"),
)


def cell_text(v: Any, spec: str) -> str:
    """A table cell: ``si`` counts, ``money``, ``year`` (a release year), or a format spec;
    ``n/a`` for an unknown number."""
    if spec == "si":
        return si(v)
    if spec == "money":
        return money(v)
    if spec == "year":
        return f"{int(v)}" if v is not None and v == v else "n/a"
    if not spec:
        return str(v)
    return fmt(v, spec)


def _display_name(hw: str) -> str:
    spec = catalog().get(hw)
    return spec.display_name if spec is not None and spec.display_name else hw


def estimated_mark(table: pd.DataFrame, run: Any) -> str:
    """``*`` after a run's hardware when any of its prices is an estimate."""
    return "*" if table.at[run, "estimated_prices"] else ""


def estimated_notes(table: pd.DataFrame) -> list[str]:
    """One line per run priced (in part) by an estimate: ``* run: price estimated (...)``."""
    return [
        f"* {r}: price estimated (no sourced price) for {table.at[r, 'estimated_prices']!s}"
        for r in table.index
        if table.at[r, "estimated_prices"]
    ]


def _table_html(table: pd.DataFrame) -> str:
    colors = run_colors(table)
    head = "".join(f"<th>{html.escape(str(r))}</th>" for r in table.index)
    rows = []
    for col, label, spec in _TABLE_COLUMNS:
        cells = []
        for r in table.index:
            v = table.at[r, col]
            if col == "hardware":
                text = (
                    f'<span class="swatch" style="background:{colors[str(r)]}"></span>'
                    f"{html.escape(_display_name(str(v)))}{estimated_mark(table, r)}"
                )
            else:
                text = html.escape(cell_text(v, spec))
                if col == "training_run_days" and bool(table.at[r, "training_run_projected"]):
                    text += " (projected)" if text != "n/a" else ""
            cells.append(f"<td>{text}</td>")
        rows.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    for service, label, texts in service_rows(table):
        cells = [f"<td>{html.escape(text)}</td>" for text in texts]
        rows.append(f"<tr><th>{html.escape(f'{service}: {label}')}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="data"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _scenario_yaml(resolved: dict[str, Any]) -> str:
    return yaml.safe_dump(scenario_as_written(resolved), sort_keys=False, allow_unicode=True)


def render_comparison(runs: dict[str, RunTables]) -> str:
    """The complete ``comparison.html``: table, figures and each run's scenario."""
    table = comparison_table(runs)
    figs = comparison_figures(runs, table)
    nav = " ".join(f'<a href="#fig-{i}">{html.escape(title)}</a>' for i, title, _ in figs)
    scenarios = "\n".join(
        f"<details><summary>{html.escape(label)}: {html.escape(str(t.summary['scenario']))}"
        f"</summary><pre>{html.escape(_scenario_yaml(t.scenario))}</pre>"
        "</details>"
        for label, t in runs.items()
    )
    body = "\n".join(
        [
            "<header>",
            f"<h1>Comparison of {len(runs)} runs</h1>",
            f'<p class="meta">{html.escape(", ".join(runs))}</p>',
            f'<nav><a href="#table">Table</a> {nav} <a href="#scenarios">Scenarios</a></nav>',
            "</header>",
            '<section id="table"><h2>Side by side</h2>',
            _table_html(table),
            *(f'<p class="meta">{html.escape(n)}</p>' for n in estimated_notes(table)),
            *(
                f'<p class="meta"><strong>warning:</strong> {html.escape(w)}</p>'
                for w in [*duration_differences(table), *serving_differences(table)]
            ),
            '<p class="meta">Training-run time is submission to completion of the first'
            " pre-training run, projected from its progress when it did not finish in the"
            " simulated window. Inference output tokens and pre-training tokens per MWh are"
            " each over the whole site's facility energy, apart (never summed); a service's"
            " own tokens per MWh, over the energy attributed to it, is in its run's summary."
            " n/a: unknown (e.g. no sourced rack price).</p>",
            "</section>",
            *(figure_section(i, title, fig) for i, title, fig in figs),
            '<section id="scenarios"><h2>Scenarios as run</h2>',
            scenarios,
            "</section>",
        ]
    )
    return html_page("aifactory comparison", body)
