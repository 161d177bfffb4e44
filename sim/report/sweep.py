"""A sweep's results as tables and figures: one row per run, means across seeds, sensitivity.

Pure functions of tables (no I/O): :mod:`sim.sweep` calls :func:`sweep_row` on the worker that
ran a point (so only this small row travels back to the client, never the run's tables), gathers
the rows into the sweep table and hands it to :func:`seed_means`, :func:`sensitivity` and
:func:`render_sweep_report`.

The sweep table has one row per point and seed: ``point`` (the point's id: a hash of its resolved
scenario without the seed), ``seed``, ``run_id``, ``status`` (``finished`` or ``failed``),
``error``, one column per swept key (the value as written in the grid, e.g. ``3 MW``), the
same key with the suffix :data:`VALUE_SUFFIX` (the resolved SI value where it is a number, for
plotting), then the KPIs of :data:`KPIS` (the columns of
:func:`sim.report.compare.comparison_table`, plus availability, energy, failures, waits).

**Means across seeds** (:func:`seed_means`): for each point, the mean of each KPI over its
finished seeds and a 95% confidence interval of that mean, ``mean +- t(0.975, n-1) * s /
sqrt(n)`` (Student's t, ``s`` the sample standard deviation over seeds): the seeds are
independent replications (independent random streams), so the interval says how much of a
difference between points is noise. With one seed the interval is unknown (NaN).

**Sensitivity** (:func:`sensitivity`, the tornado chart): for each swept key, the *main effect*
on a KPI: the KPI's mean at each of the key's values, averaged over seeds and over every value of
the other keys (the full grid is balanced, so each value sees the same mix of the others); the
bar runs from the lowest to the highest of these means, drawn against the mean of the whole
sweep. Keys are ordered by the width of their bar: the input that moves the KPI most is on top.
Interactions between keys are averaged out, not shown; the per-key figures show them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.io import RunTables
from sim.report.compare import comparison_table
from sim.report.html import figure_section, html_page
from sim.report.style import axis, fmt, generation_color, styled

__all__ = [
    "HEADLINE_KPIS",
    "KPIS",
    "VALUE_SUFFIX",
    "Kpi",
    "kpi_figure",
    "main_effects",
    "render_sweep_report",
    "seed_means",
    "sensitivity",
    "sweep_row",
    "tornado_figure",
]

#: Suffix of the column holding a swept key's resolved value (SI) next to its text.
VALUE_SUFFIX = ":value"


@dataclass(frozen=True)
class Kpi:
    """A KPI column of the sweep table: its name, what it is, and its axis title (unit)."""

    column: str
    label: str
    axis: str
    scale: float = 1.0


#: KPI columns of the sweep table, in order (units in the names).
KPIS: tuple[Kpi, ...] = (
    Kpi("inference_tokens_per_day", "inference tokens per day", axis("tokens", "per day")),
    Kpi("pretraining_tokens_per_day", "pre-training tokens per day", axis("tokens", "per day")),
    Kpi(
        "cost_per_million_tokens_usd",
        "cost per million tokens (blended)",
        axis("cost", "$ per million tokens"),
    ),
    Kpi("training_run_days", "training-run time (projected if unfinished)", axis("time", "days")),
    Kpi(
        "inference_tokens_per_mwh",
        "inference output tokens per MWh (site energy)",
        axis("tokens", "per MWh"),
    ),
    Kpi(
        "pretraining_tokens_per_mwh",
        "pre-training tokens per MWh (site energy)",
        axis("tokens", "per MWh"),
    ),
    Kpi("utilization", "utilization", axis("GPUs in use", "%"), 100.0),
    Kpi("availability", "availability", axis("GPUs not failed", "%"), 100.0),
    Kpi("training_goodput", "training goodput", axis("goodput", "%"), 100.0),
    Kpi("training_mfu", "training MFU", axis("MFU", "%"), 100.0),
    Kpi("pretraining_ettr", "pre-training ETTR", axis("ETTR", "%"), 100.0),
    Kpi("average_pue", "average PUE", "PUE"),
    Kpi("facility_energy_mwh", "facility energy", axis("energy", "MWh")),
    Kpi("peak_facility_power_mw", "peak facility power", axis("power", "MW")),
    Kpi("emissions_tco2", "emissions", axis("emissions", "tCO2eq")),
    Kpi("cost_per_gpu_hour_usd", "cost per GPU-hour", axis("cost", "$ per GPU-hour")),
    Kpi("total_cost_usd", "total cost", axis("cost", "$")),
    Kpi("failures", "failures", axis("failures", "count")),
    Kpi("posttraining_mean_wait_hours", "post-training mean wait", axis("wait", "hours")),
    Kpi("posttraining_preemptions", "post-training preemptions", axis("preemptions", "count")),
    Kpi("hours_over_grid_cap", "hours over the grid cap", axis("time", "hours")),
)
_BY_COLUMN = {k.column: k for k in KPIS}

#: The KPIs of the tornado chart: what a planner asks first.
HEADLINE_KPIS: tuple[str, ...] = (
    "inference_tokens_per_day",
    "cost_per_million_tokens_usd",
    "training_run_days",
    "utilization",
    "inference_tokens_per_mwh",
)


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def sweep_row(tables: RunTables) -> dict[str, Any]:
    """The KPIs of one finished run (the KPI columns of a sweep table row, plus ``hardware``,
    ``gpus``, ``training_run_projected`` and per-service costs), as plain JSON-able data."""
    row = comparison_table({"run": tables}).iloc[0].to_dict()
    s = tables.summary
    e = s["energy"]
    pc = s.get("power_control") or {}
    out: dict[str, Any] = {str(k): v for k, v in row.items() if k not in ("scenario", "run")}
    out.update(
        {
            "availability": _num(s.get("availability")),
            "facility_energy_mwh": _num(e.get("facility_mwh")),
            "peak_facility_power_mw": _num(e.get("peak_facility_power_mw")),
            "emissions_tco2": _num(e.get("emissions_tco2")),
            "pretraining_ettr": _ettr(s.get("pretraining_runs") or []),
            "failures": _num(s["reliability"].get("failures")),
            "posttraining_mean_wait_hours": _num(s["posttraining"].get("mean_wait_hours")),
            "posttraining_preemptions": _num(s["posttraining"].get("preemptions")),
            "hours_over_grid_cap": _num(pc.get("hours_over_grid_cap")),
        }
    )
    clean: dict[str, Any] = {}
    for k, v in out.items():
        if isinstance(v, np.generic):
            v = v.item()
        clean[str(k)] = v
    return clean


def _ettr(runs: list[dict[str, Any]]) -> float:
    """The pre-training runs' ETTR (kept compute time over wall time since first start), each
    run weighted by its GPUs: one run's own ETTR when there is one; NaN without runs."""
    got = [(r["ettr"], r["gpus"]) for r in runs if r.get("ettr") is not None]
    weight = sum(g for _, g in got)
    return sum(e * g for e, g in got) / weight if weight else math.nan


def kpi_columns(table: pd.DataFrame) -> list[str]:
    """The KPI columns of :data:`KPIS` present in ``table``, in order."""
    return [k.column for k in KPIS if k.column in table.columns]


def _finished(table: pd.DataFrame) -> pd.DataFrame:
    if "status" not in table:
        return table
    return table[table["status"] == "finished"]


def _ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and the 95% Student-t confidence interval of the mean (NaN bounds for n < 2)."""
    v = values[np.isfinite(values)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, math.nan
    from scipy import stats  # here: a second of imports that a worker never needs

    half = float(stats.t.ppf(0.975, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def seed_means(table: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """One row per point: its swept values, ``seeds`` (finished seeds), ``failed`` (seeds that
    failed), and for each KPI ``<kpi>_mean``, ``<kpi>_ci95_low``, ``<kpi>_ci95_high``."""
    kpis = kpi_columns(table)
    rows = []
    for point, runs in table.groupby("point", sort=False):
        ok = _finished(runs)
        first = runs.iloc[0]
        row: dict[str, Any] = {"point": point}
        for p in params:
            row[p] = first[p]
            if p + VALUE_SUFFIX in runs:
                row[p + VALUE_SUFFIX] = first[p + VALUE_SUFFIX]
        row["hardware"] = ok["hardware"].iloc[0] if len(ok) and "hardware" in ok else ""
        row["seeds"] = len(ok)
        row["failed"] = len(runs) - len(ok)
        for k in kpis:
            mean, lo, hi = _ci(ok[k].to_numpy(dtype=float))
            row[f"{k}_mean"], row[f"{k}_ci95_low"], row[f"{k}_ci95_high"] = mean, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def main_effects(table: pd.DataFrame, param: str, kpi: str, by: str | None = None) -> pd.DataFrame:
    """The KPI's mean at each value of ``param`` (over seeds and the other keys' values), with
    the 95% interval across seeds: rows ``value`` (text), ``x`` (number, NaN if none),
    ``mean``, ``ci95_low``, ``ci95_high``, ``seeds``; one group per value of ``by`` if given
    (a column of that name).

    The interval: per seed, the KPI is first averaged over the other keys' values, then the
    seeds' averages give the mean and interval (so it is an interval across replications)."""
    return _effects(table, param, [kpi], by)[kpi]


def _effects(
    table: pd.DataFrame, param: str, kpis: Sequence[str], by: str | None
) -> dict[str, pd.DataFrame]:
    """:func:`main_effects` of several KPIs at once (one grouping of the table)."""
    ok = _finished(table)
    order = {v: i for i, v in enumerate(dict.fromkeys(table[param]))}
    col = param + VALUE_SUFFIX
    xs = dict(zip(table[param], table[col], strict=True)) if col in table else {}
    groups = [param] if by is None else [by, param]
    columns = ["value", "mean", "ci95_low", "ci95_high", "seeds", "x", *([by] if by else [])]
    per_seed = ok.groupby([*groups, "seed"], sort=False)[list(kpis)].mean()
    out: dict[str, pd.DataFrame] = {}
    for k in kpis:
        rows = []
        if len(per_seed):
            levels = list(range(len(groups)))
            for keys, values in per_seed[k].groupby(level=levels, sort=False):
                v = values.to_numpy(dtype=float)
                mean, lo, hi = _ci(v)
                keys_t = keys if isinstance(keys, tuple) else (keys,)
                value = keys_t[-1]
                row = {"value": value, "mean": mean, "ci95_low": lo, "ci95_high": hi}
                row["seeds"] = int(np.isfinite(v).sum())
                row["x"] = _num(xs.get(value))
                if by is not None:
                    row[by] = keys_t[0]
                rows.append(row)
        eff = pd.DataFrame(rows, columns=columns)
        eff["order"] = eff["value"].map(order)
        out[k] = (
            eff.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
        )
    return out


def sensitivity(table: pd.DataFrame, params: Sequence[str], kpi: str) -> pd.DataFrame:
    """For each swept key: ``low`` and ``high`` (the lowest and highest main-effect means of the
    KPI, see module docstring), the values they occur at, and ``swing = high - low``; sorted by
    swing, widest first. ``baseline`` is the mean over the whole sweep (finished runs)."""
    ok = _finished(table)
    base = float(np.nanmean(ok[kpi].to_numpy(dtype=float))) if len(ok) else math.nan
    rows = []
    for p in params:
        eff = main_effects(table, p, kpi)
        eff = eff[np.isfinite(eff["mean"].to_numpy(dtype=float))]
        if eff.empty:
            continue
        lo = eff.loc[eff["mean"].idxmin()]
        hi = eff.loc[eff["mean"].idxmax()]
        rows.append(
            {
                "param": p,
                "low": float(lo["mean"]),
                "low_at": str(lo["value"]),
                "high": float(hi["mean"]),
                "high_at": str(hi["value"]),
                "swing": float(hi["mean"]) - float(lo["mean"]),
                "baseline": base,
            }
        )
    out = pd.DataFrame(
        rows, columns=["param", "low", "low_at", "high", "high_at", "swing", "baseline"]
    )
    return out.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def _varies(values: pd.Series) -> bool:
    """True when a KPI differs between runs (beyond float rounding)."""
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and bool(np.ptp(v) > 1e-12 * max(1.0, float(np.abs(v).max())))


def _hardware_varies(table: pd.DataFrame) -> bool:
    ok = _finished(table)
    return "hardware" in ok and ok["hardware"].nunique() > 1


def kpi_figure(table: pd.DataFrame, param: str, kpis: Sequence[str]) -> go.Figure:
    """Each KPI against one swept key: the mean over seeds (and the other keys) with its 95%
    interval as error bars; one line per hardware generation, in its colour, where the
    generation varies across the sweep (else one line in the generation's colour)."""
    ncols = 3
    nrows = max(1, math.ceil(len(kpis) / ncols))
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[_BY_COLUMN[k].label for k in kpis],
        vertical_spacing=0.5 / nrows if nrows > 1 else 0.2,
        horizontal_spacing=0.13,
    )
    ok = _finished(table)
    by = "hardware" if _hardware_varies(table) else None
    hws = [str(h) for h in dict.fromkeys(ok["hardware"])] if "hardware" in ok else [""]
    order = [str(v) for v in dict.fromkeys(table[param])]
    col = param + VALUE_SUFFIX
    xs = (
        dict(zip(table[param].astype(str), table[col].to_numpy(dtype=float), strict=True))
        if col in table
        else {}
    )
    numeric = bool(order) and all(math.isfinite(xs.get(v, math.nan)) for v in order)
    traces, rows, cols, layout = [], [], [], {}
    effects = _effects(table, param, kpis, by)
    for i, k in enumerate(kpis):
        r, c = divmod(i, ncols)
        kpi = _BY_COLUMN[k]
        eff = effects[k]
        groups = [(h, eff[eff["hardware"] == h]) for h in hws] if by else [(hws[0], eff)]
        for h, g in groups:
            if g.empty:
                continue
            values = g["value"].astype(str)
            traces.append(
                go.Scatter(
                    x=[xs[v] for v in values] if numeric else values,
                    y=g["mean"] * kpi.scale,
                    mode="lines+markers",
                    name=h or "runs",
                    legendgroup=h,
                    showlegend=i == 0,
                    line={"color": generation_color(h, hws)},
                    error_y={
                        "type": "data",
                        "array": (g["ci95_high"] - g["mean"]) * kpi.scale,
                        "arrayminus": (g["mean"] - g["ci95_low"]) * kpi.scale,
                        "visible": True,
                    },
                    text=values,
                    customdata=g["seeds"],
                    hovertemplate=f"{param}=%{{text}}: %{{y:.4g}} ({kpi.axis}),"
                    " %{customdata} seeds<extra>%{fullData.name}</extra>",
                )
            )
            rows.append(r + 1)
            cols.append(c + 1)
        n = "" if i == 0 else str(i + 1)
        xaxis: dict[str, Any] = {"title": {"text": param}}
        if numeric:
            xaxis.update(tickvals=[xs[v] for v in order], ticktext=order)
        else:
            xaxis.update(type="category", categoryorder="array", categoryarray=order)
        layout[f"xaxis{n}"] = xaxis
        layout[f"yaxis{n}"] = {"title": {"text": kpi.axis}}
    if traces:
        fig.add_traces(traces, rows=rows, cols=cols)
    fig.update_layout(layout)
    fig.update_layout(
        hovermode="closest",
        legend={"title": {"text": "generation"}, "orientation": "v", "x": 1.02, "y": 1.0},
        margin={"r": 160},
    )
    return styled(fig, f"KPIs against {param}", height=330 * nrows + 120)


def tornado_figure(table: pd.DataFrame, params: Sequence[str], kpis: Sequence[str]) -> go.Figure:
    """One tornado per headline KPI: for each swept key, a bar from the lowest to the highest
    main-effect mean, as a change from the sweep's mean in %, widest on top (module docstring).
    Each bar is labelled with the values at its low and high ends."""
    ok = _finished(table)
    kpis = [k for k in kpis if np.isfinite(ok[k].to_numpy(dtype=float)).any()]
    n = max(1, len(kpis))
    effects = {k: sensitivity(table, params, k).iloc[::-1] for k in kpis}  # widest on top
    titles = []
    for k in kpis:
        kpi, sens = _BY_COLUMN[k], effects[k]
        base = float(sens["baseline"].iloc[0]) if len(sens) else math.nan
        titles.append(
            f"{kpi.label}: change from the sweep mean ({fmt(base * kpi.scale, '.4g')}"
            f" {kpi.axis.rsplit('(', 1)[-1].rstrip(')')}), %"
        )
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles, vertical_spacing=min(0.35 / n, 0.15))
    for i, k in enumerate(kpis):
        kpi, sens = _BY_COLUMN[k], effects[k]
        if sens.empty:
            continue
        base = float(sens["baseline"].iloc[0])
        scale = 100 / abs(base) if math.isfinite(base) and base != 0.0 else math.nan
        lo, hi = (sens["low"] - base) * scale, (sens["high"] - base) * scale
        fig.add_trace(
            go.Bar(
                y=sens["param"],
                x=hi - lo,
                base=lo,
                orientation="h",
                marker={"color": "#4C78A8"},
                showlegend=False,
                text=[f"{a} -> {b}" for a, b in zip(sens["low_at"], sens["high_at"], strict=True)],
                textposition="auto",
                customdata=np.stack([sens["low"] * kpi.scale, sens["high"] * kpi.scale], axis=-1),
                hovertemplate="%{y}: %{customdata[0]:.4g} to %{customdata[1]:.4g}"
                f" ({html.escape(kpi.axis)}); lowest at -> highest at: %{{text}}<extra></extra>",
            ),
            row=i + 1,
            col=1,
        )
        fig.update_xaxes(zeroline=True, zerolinewidth=2, row=i + 1, col=1)
    longest = max((len(p) for p in params), default=10)
    fig.update_layout(hovermode="closest", bargap=0.35, margin={"l": min(420, 20 + 7 * longest)})
    return styled(fig, "Sensitivity: which input moves each headline KPI most", 230 * n + 120)


def _table_html(means: pd.DataFrame, params: Sequence[str]) -> str:
    kpis = [k for k in HEADLINE_KPIS if f"{k}_mean" in means]
    head = "".join(f"<th>{html.escape(p)}</th>" for p in params)
    head += "<th>seeds</th><th>failed</th>"
    head += "".join(f"<th>{html.escape(_BY_COLUMN[k].label)}</th>" for k in kpis)
    rows = []
    for _, r in means.iterrows():
        cells = "".join(f"<td>{html.escape(str(r[p]))}</td>" for p in params)
        cells += f"<td>{int(r['seeds'])}</td><td>{int(r['failed'])}</td>"
        for k in kpis:
            scale = _BY_COLUMN[k].scale
            m, lo, hi = (float(r[f"{k}_{s}"]) * scale for s in ("mean", "ci95_low", "ci95_high"))
            text = fmt(m, ".4g")
            if math.isfinite(lo) and math.isfinite(hi):
                text += f" [{fmt(lo, '.4g')}, {fmt(hi, '.4g')}]"
            cells += f"<td>{html.escape(text)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_sweep_report(
    table: pd.DataFrame, means: pd.DataFrame, params: Sequence[str], title: str
) -> str:
    """The complete sweep ``report.html``: the means with their intervals, the tornado chart and
    each KPI against each swept key (self-contained, plotly.js inline once)."""
    ok = _finished(table)
    known = [k for k in kpi_columns(table) if np.isfinite(ok[k].to_numpy(dtype=float)).any()]
    kpis = [k for k in known if _varies(ok[k])]
    same = [k for k in known if k not in kpis]
    figs: list[tuple[str, str, go.Figure]] = []
    if len(ok):
        headline = [k for k in HEADLINE_KPIS if k in kpis]
        if params and headline:
            figs.append(("tornado", "Sensitivity", tornado_figure(table, params, headline)))
        for i, p in enumerate(params):
            figs.append((f"param-{i}", f"KPIs against {p}", kpi_figure(table, p, kpis)))
    failed = table[table["status"] != "finished"] if "status" in table else table.iloc[:0]
    failures = "".join(
        f"<li><code>{html.escape(str(r['run_id']))}</code>"
        f" ({', '.join(html.escape(f'{p}={r[p]}') for p in params)}, seed {int(r['seed'])}):"
        f" {html.escape(str(r['error']))}</li>"
        for _, r in failed.iterrows()
    )
    nav = " ".join(f'<a href="#fig-{i}">{html.escape(t)}</a>' for i, t, _ in figs)
    body = "\n".join(
        [
            "<header>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{len(table)} runs: {len(ok)} finished, {len(failed)} failed;'
            f" swept: {html.escape(', '.join(params) or 'nothing (seeds only)')}</p>",
            f'<nav><a href="#means">Means</a> {nav}</nav>',
            (
                '<p class="meta">The same in every run (not drawn): '
                + html.escape(", ".join(_BY_COLUMN[k].label for k in same))
                + "</p>"
                if same
                else ""
            ),
            "</header>",
            '<section id="means"><h2>Means across seeds (95% interval)</h2>',
            _table_html(means, params),
            '<p class="meta">Mean over the finished seeds of each point, with the 95% Student-t'
            " interval of the mean in brackets (none with one seed). The full table is"
            " sweep.csv / sweep.parquet; means.csv has every KPI.</p>",
            "</section>",
            *(figure_section(i, t, f) for i, t, f in figs),
            (
                f'<section id="failed"><h2>Failed runs</h2><ul>{failures}</ul></section>'
                if failures
                else ""
            ),
        ]
    )
    return html_page(title, body)
