"""One function per figure: run tables (DataFrames) in, a plotly ``Figure`` out, no I/O.

Every figure uses :mod:`sim.report.style` (template, colours, units in axis titles; time in days
since the start of the run). :data:`FIGURES` is the registry the HTML report walks: each entry is
an id, a section title, how to draw the figure from :class:`~sim.io.RunTables` and whether the
run has the data for it. A figure whose data is absent is left out of the report.

Adding a figure is one function here and one line in :data:`FIGURES`::

    def queue_figure(traces: pd.DataFrame) -> go.Figure: ...

    FigureSpec("queues", "Queues", lambda t: queue_figure(t.traces),
               lambda t: _has(t.traces, "jobs_waiting_pretraining")),
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.contract import (
    FABRIC_TIER,
    FAILURE_CAUSE,
    HALL,
    PRIORITY_CLASS,
    SERVICE,
    TRACE,
    entity_column,
    parse_entity_column,
)
from sim.io import RunTables
from sim.report.fabric import has_placement, placement_figure
from sim.report.kpis import capex_known
from sim.report.style import (
    SERIES_COLORS,
    TIER_COLORS,
    WORKLOAD_COLORS,
    axis,
    class_color,
    fmt,
    hall_color,
    money,
    plural,
    styled,
    time_series_styled,
)
from sim.units import DAY_S, HOUR_S

__all__ = [
    "FIGURES",
    "MAX_POINTS",
    "FigureSpec",
    "cap_dips",
    "cooling_capacity_w",
    "cooling_figure",
    "cost_figure",
    "cost_trace_figure",
    "failures_figure",
    "figures_for",
    "grid_figure",
    "hall_cooling_figure",
    "inference_figure",
    "job_timeline_figure",
    "power_figure",
    "throttle_figure",
    "throttled",
    "uplink_load_figure",
    "utilization_figure",
]

#: GPU states (the cost figure's "by use" stack, bottom to top).
GPU_STATES = ("pretraining", "posttraining", "inference", "failed", "idle")
#: GPU states stacked in the utilization figure, bottom to top: failed GPUs at the bottom, so
#: the edge of their thin band is their own count, not the daily cycle of the areas below it.
UTILIZATION_STACK = ("failed", "pretraining", "posttraining", "inference", "idle")
#: The trace column of each GPU state.
_STATE_COLUMNS = {
    "pretraining": TRACE["gpus_pretraining"].name,
    "posttraining": TRACE["gpus_posttraining"].name,
    "inference": TRACE["gpus_inference"].name,
    "failed": TRACE["gpus_failed"].name,
    "idle": TRACE["gpus_idle"].name,
}
_LABELS = {
    "pretraining": "pre-training",
    "posttraining": "post-training",
    "inference": "inference",
    "failed": "failed",
    "idle": "idle",
}
TIME_AXIS = axis("time", "days")


def _has(df: pd.DataFrame, *cols: str) -> bool:
    return len(df) > 0 and all(c in df.columns for c in cols)


def _days(traces: pd.DataFrame) -> np.ndarray:
    return traces["time_s"].to_numpy(dtype=float) / DAY_S


def _end_s(traces: pd.DataFrame) -> float:
    return float((traces["time_s"] + traces["interval_s"]).max()) if len(traces) else 0.0


def _twmean(traces: pd.DataFrame, col: str) -> float:
    w = traces["interval_s"].to_numpy(dtype=float)
    return float(np.sum(traces[col].to_numpy(dtype=float) * w) / np.sum(w))


# --------------------------------------------------------------------------- time series

#: At most this many points per line: a longer trace (a year of hourly samples is 8,760) is
#: drawn as means over coarser bins (:data:`_COARSE_BINS`), so lines stay lines. A month of
#: hourly samples (720) is drawn as it is: its daily cycle is still readable.
MAX_POINTS = 800
#: Bins a long trace is drawn in, finest first. No bin between an hour and a day: means over a
#: few hours still follow the daily inference cycle, which a year of them draws as a solid block.
_COARSE_BINS = ((HOUR_S, "hour"), (DAY_S, "day"), (7 * DAY_S, "week"))


def _coarse_bin(traces: pd.DataFrame, max_points: int) -> tuple[float, str] | None:
    """(width in s, name) of the finest coarse bin leaving at most ``max_points`` points; None
    when the trace is short enough to draw as it is."""
    if len(traces) <= max_points:
        return None
    end_s = _end_s(traces)
    for width_s, name in _COARSE_BINS:
        if end_s / width_s <= max_points:
            return width_s, name
    return _COARSE_BINS[-1]


def _rebin(
    traces: pd.DataFrame, cols: list[str], width_s: float
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Bin starts (s) and, per bin of ``width_s``, the time-weighted mean (energy is kept), the
    minimum and the maximum of each column."""
    b = np.floor(traces["time_s"].to_numpy(dtype=float) / width_s)
    w = traces["interval_s"].to_numpy(dtype=float)
    values = traces[cols].astype(float).reset_index(drop=True)
    weight = pd.Series(w).groupby(b).sum()
    mean = values.mul(w, axis=0).groupby(b).sum().div(weight, axis=0)
    grouped = values.groupby(b)
    return weight.index.to_numpy(dtype=float) * width_s, mean, grouped.min(), grouped.max()


@dataclass(frozen=True)
class _Series:
    """Trace columns as drawn: the samples themselves (``per == ""``), or, for a long trace, the
    time-weighted mean, the lowest and the highest value per coarse bin (``per``: its name)."""

    x: np.ndarray  # start of each point, days
    mean: pd.DataFrame
    lo: pd.DataFrame
    hi: pd.DataFrame
    per: str

    def y(self, col: str, which: str = "mean") -> np.ndarray:
        return getattr(self, which)[col].to_numpy(dtype=float)


def _series(traces: pd.DataFrame, cols: list[str], max_points: int) -> _Series:
    coarse = _coarse_bin(traces, max_points)
    if coarse is None:
        v = traces[cols].astype(float).reset_index(drop=True)
        return _Series(_days(traces), v, v, v, "")
    start_s, mean, lo, hi = _rebin(traces, cols, coarse[0])
    return _Series(start_s / DAY_S, mean, lo, hi, coarse[1])


def _band(
    fig: go.Figure, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, name: str, color: str, **kw: Any
) -> None:
    """A shaded band from ``lo`` up to ``hi`` (two traces: an invisible lower edge, then the
    upper edge filled down to it), one legend entry."""
    group = kw.pop("legendgroup", name)
    show = kw.pop("showlegend", True)
    hover = kw.pop("hovertemplate", None)
    edge = {"width": 0, "shape": "hv"}
    fig.add_trace(
        go.Scatter(
            x=x,
            y=lo,
            name=name + " (low)",
            legendgroup=group,
            showlegend=False,
            mode="lines",
            line=edge,
            hovertemplate=hover,
        ),
        **kw,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=hi,
            name=name,
            legendgroup=group,
            showlegend=show,
            mode="lines",
            line=edge,
            fill="tonexty",
            fillcolor=color,
            hovertemplate=hover,
        ),
        **kw,
    )


def _per_title(series: _Series) -> str:
    return f", means per {series.per}" if series.per else ""


def _timed(fig: go.Figure, title: str, end_s: float, height: int = 420) -> go.Figure:
    """A figure with time in days on x, from the start to the end of the run, styled with the
    legend below (the same place in every such figure, so their time axes line up). The plot
    spans the full width between the margins: a secondary y axis lives in the right margin, not
    in a slice of the plot's width (make_subplots' default)."""
    fig.update_xaxes(range=[0.0, end_s / DAY_S], domain=[0.0, 1.0])
    return time_series_styled(fig, title, height)


# --------------------------------------------------------------------------- utilization


def utilization_figure(traces: pd.DataFrame, max_points: int = MAX_POINTS) -> go.Figure:
    """Share of installed GPUs by workload class (and idle, failed) over time, stacked to 100%,
    failed GPUs at the bottom (:data:`UTILIZATION_STACK`). A long trace is drawn as means per
    day (or week): GPU-hours are kept, the daily cycle of inference is averaged out."""
    states = [st for st in UTILIZATION_STACK if _STATE_COLUMNS[st] in traces]
    series = _series(traces, ["gpus_total"] + [_STATE_COLUMNS[st] for st in states], max_points)
    total = series.y("gpus_total")
    fig = go.Figure()
    for state in states:
        gpus = series.y(_STATE_COLUMNS[state])
        fig.add_trace(
            go.Scatter(
                x=series.x,
                y=np.divide(gpus * 100.0, total, out=np.zeros_like(gpus), where=total > 0),
                customdata=gpus,
                name=_LABELS[state],
                mode="lines",
                line={"width": 0.5, "color": WORKLOAD_COLORS[state], "shape": "hv"},
                stackgroup="gpus",
                hovertemplate="%{y:.1f}% (%{customdata:,.0f} GPUs)",
            )
        )
    util = _twmean(traces, "utilization") if "utilization" in traces else float("nan")
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("share of installed GPUs", "%"), range=[0, 100])
    title = f"GPU utilization by workload{_per_title(series)} (mean {fmt(util, '.1%')})"
    return _timed(fig, title, _end_s(traces))


# --------------------------------------------------------------------------- power

#: Caps drawn against the facility power, and their legend names.
_CAPS = ((TRACE["grid_cap_w"].name, "grid cap"),)


def _hall_columns(traces: pd.DataFrame, quantity: str = "it_power_w") -> list[tuple[str, str]]:
    """``(column, hall)`` of each hall's ``quantity`` column, in table order (the scenario's)."""
    out = []
    for col in traces.columns:
        parsed = parse_entity_column(str(col))
        if parsed is not None and parsed[0] is HALL and parsed[2] == quantity:
            out.append((str(col), parsed[1]))
    return out


#: At most this many demand-response calls are shaded (each is a shape on every panel).
MAX_SHADED_CALLS = 200


def cap_dips(traces: pd.DataFrame, col: str = "grid_cap_w") -> list[tuple[float, float]]:
    """``(start, end)`` in s of each stretch of bins where the cap ``col`` is below its highest
    value: the demand-response calls (a bin partly in a call has a lower mean cap, so it counts).
    Neighbouring bins merge into one stretch."""
    if col not in traces or traces.empty:
        return []
    cap = traces[col].to_numpy(dtype=float)
    top = float(np.nanmax(cap)) if np.isfinite(cap).any() else float("nan")
    low = np.isfinite(cap) & (cap < top * (1 - 1e-9))
    start = traces["time_s"].to_numpy(dtype=float)
    end = start + traces["interval_s"].to_numpy(dtype=float)
    out: list[tuple[float, float]] = []
    for i in np.flatnonzero(low):
        if out and start[i] <= out[-1][1] + 1e-6:
            out[-1] = (out[-1][0], float(end[i]))
        else:
            out.append((float(start[i]), float(end[i])))
    return out


def _shade_calls(fig: go.Figure, calls: list[tuple[float, float]]) -> None:
    """Shade the demand-response calls on every panel, with one legend entry."""
    for a, b in calls[:MAX_SHADED_CALLS]:
        fig.add_vrect(
            x0=a / DAY_S,
            x1=b / DAY_S,
            fillcolor=SERIES_COLORS["demand_response"],
            line_width=0,
            layer="below",
            row="all",
            col=1,
        )
    if calls:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                name=f"demand-response call ({len(calls)})",
                mode="markers",
                marker={"symbol": "square", "size": 12, "color": "rgba(214, 39, 40, 0.25)"},
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )


def power_figure(
    traces: pd.DataFrame, provisioned_it_w: float | None = None, max_points: int = MAX_POINTS
) -> go.Figure:
    """Where the power goes: IT power of each hall, stacked, and on top the facility overhead
    (cooling and losses: facility - IT power), so the top of the stack is the facility power
    drawn from the grid; against the grid cap and the provisioned IT power. PUE below.

    Halls are the ``site.<hall>.it_power_w`` columns (a run without them: the site's IT power
    as one area). A trace of more than ``max_points`` bins (a year of hourly bins) is drawn as
    means per hour, day or week (the finest that fits), with a band from the mean up
    to the highest facility power in each bin (the peak against the cap), and the lowest cap in
    each bin. ``provisioned_it_w``: the IT power the halls are built for (dotted), if known.
    """
    it_col, fac_col = TRACE["it_power_w"].name, TRACE["facility_power_w"].name
    pue_col = TRACE["pue"].name
    halls = _hall_columns(traces)
    # one hall's facility power is the site's: a panel of them only for two halls or more
    hall_fac = _hall_columns(traces, "facility_power_w")
    hall_fac = hall_fac if len(hall_fac) >= 2 else []
    caps = [(c, name) for c, name in _CAPS if c in traces]
    cols = [c for c, _ in halls] + [it_col, fac_col] + [c for c, _ in caps]
    cols += [c for c, _ in hall_fac] + ([pue_col] if pue_col in traces else [])
    series = _series(traces, cols, max_points)
    x, mean, lo, hi = series.x, series.mean, series.lo, series.hi
    it = mean[it_col].to_numpy(dtype=float)
    fac = mean[fac_col].to_numpy(dtype=float)
    rows = 3 if hall_fac else 2
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.55, 0.25, 0.2] if hall_fac else [0.7, 0.3],
        vertical_spacing=0.06,
    )

    def area(y: np.ndarray, name: str, color: str) -> None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y / 1e6,
                name=name,
                mode="lines",
                line={"width": 0.5, "color": color, "shape": "hv"},
                fillcolor=color,
                stackgroup="power",
                hovertemplate="%{y:,.1f} MW",
            ),
            row=1,
            col=1,
        )

    def line(y: np.ndarray, name: str, color: str, dash: str = "solid", **kw: Any) -> None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y / 1e6,
                name=name,
                mode="lines",
                line={"color": color, "dash": dash, "shape": "hv", **kw},
                hovertemplate="%{y:,.1f} MW",
            ),
            row=1,
            col=1,
        )

    parts = np.zeros_like(it)
    for i, (col, hall) in enumerate(halls):
        y = mean[col].to_numpy(dtype=float)
        parts += y
        area(y, f"{hall} IT", hall_color(i))
    rest = it - parts
    if not halls or np.max(np.abs(rest), initial=0.0) > 1e-3 * np.max(np.abs(it), initial=0.0):
        area(rest, "IT outside the halls" if halls else "IT power", SERIES_COLORS["it_power"])
    area(fac - it, "overhead (cooling, losses)", SERIES_COLORS["overhead"])
    line(fac, "facility power", SERIES_COLORS["facility_power"], width=1.5)
    if series.per:  # from the mean up to the peak of each bin: a band
        fig.add_trace(
            go.Scatter(
                x=x,
                y=hi[fac_col].to_numpy(dtype=float) / 1e6,
                name=f"facility power, peak in the {series.per}",
                mode="lines",
                line={"color": SERIES_COLORS["facility_power"], "width": 0.5, "shape": "hv"},
                fill="tonexty",
                fillcolor="rgba(148, 103, 189, 0.3)",
                hovertemplate="%{y:,.1f} MW",
            ),
            row=1,
            col=1,
        )
    for col, name in caps:
        y = (lo if series.per else mean)[col].to_numpy(dtype=float)
        line(y, name, SERIES_COLORS["cap"], "dash")
    if provisioned_it_w is not None:
        fig.add_trace(
            go.Scatter(
                x=[x[0], _end_s(traces) / DAY_S],
                y=[provisioned_it_w / 1e6] * 2,
                name="provisioned IT",
                mode="lines",
                line={"color": SERIES_COLORS["provisioned"], "dash": "dot"},
                hovertemplate="%{y:,.1f} MW",
            ),
            row=1,
            col=1,
        )
    for i, (col, hall) in enumerate(hall_fac):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean[col].to_numpy(dtype=float) / 1e6,
                name=f"{hall} facility",
                showlegend=False,  # the colour of the hall's IT area above, named on hover
                mode="lines",
                line={"color": hall_color(i), "width": 1.2, "shape": "hv"},
                hovertemplate="%{y:,.1f} MW",
            ),
            row=2,
            col=1,
        )
    pue_y = np.full_like(fac, np.nan)
    pue_top = pue_y
    if pue_col in traces:
        pue_y = (
            traces[pue_col].to_numpy(dtype=float)
            if not series.per
            else np.divide(fac, it, out=np.full_like(fac, np.nan), where=it > 0)
        )
        pue_top = pue_y
        if series.per:  # the spread of the hourly PUE in each bin (the daily cycle of cooling)
            pue_top = series.y(pue_col, "hi")
            _band(
                fig,
                x,
                series.y(pue_col, "lo"),
                pue_top,
                "PUE, daily low to high" if series.per == "day" else "PUE, low to high",
                "rgba(140, 86, 75, 0.2)",
                hovertemplate="%{y:.3f}",
                row=rows,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=pue_y,
                name="PUE",
                mode="lines",
                line={"color": SERIES_COLORS["pue"], "width": 1.5, "shape": "hv"},
                hovertemplate="%{y:.3f}",
            ),
            row=rows,
            col=1,
        )
    calls = cap_dips(traces) if caps else []
    _shade_calls(fig, calls)
    it_j = float(np.sum(traces[it_col] * traces["interval_s"]))
    fac_j = float(np.sum(traces[fac_col] * traces["interval_s"]))
    pue = fac_j / it_j if it_j > 0 else None
    fig.update_xaxes(title_text=TIME_AXIS, row=rows, col=1)
    fig.update_yaxes(title_text=axis("power", "MW"), rangemode="tozero", row=1, col=1)
    if hall_fac:
        fig.update_yaxes(title_text=axis("hall facility", "MW"), title_font_size=11, row=2, col=1)
    # PUE from 1 (no overhead) up, so a constant PUE is a flat line, not magnified noise
    top = float(np.nanmax(pue_top)) if np.isfinite(pue_top).any() else 1.0
    fig.update_yaxes(
        title_text=axis("PUE", "facility / IT"),
        title_font_size=11,
        range=[min(1.0, top) - 0.02, max(top, 1.0) * 1.05 + 0.02],
        tickformat=".2f",
        row=rows,
        col=1,
    )
    title = (
        f"Power by hall against the grid cap{_per_title(series)} (average PUE {fmt(pue, '.2f')})"
    )
    if calls:
        title += f"; shaded: {plural(len(calls), 'demand-response call')}"
    fig = _timed(fig, title, _end_s(traces), 680 if hall_fac else 560)
    # up to 11 legend entries: three rows below the time axis, not over its title
    fig.update_layout(margin={"b": 150}, height=int(fig.layout.height) + 30)
    return fig


# --------------------------------------------------------------------------- cooling


def cooling_capacity_w(scenario: dict[str, Any], summary: dict[str, Any]) -> float | None:
    """Heat-rejection capacity of the site: each hall's ``cooling_capacity`` where the scenario
    gives it, else the hall's IT power capacity (all IT power becomes heat, and a hall is built
    to reject the heat of the IT it is provisioned for). None when unknown."""
    it_mw = {h["name"]: h.get("it_power_capacity_mw") for h in summary["factory"]["halls"]}
    total = 0.0
    for hall in scenario.get("facility", {}).get("halls", []):
        cap = hall.get("cooling_capacity")
        if cap is None:
            mw = it_mw.get(hall.get("name"))
            if mw is None:
                return None
            cap = float(mw) * 1e6
        total += float(cap)
    return total or None


def cooling_figure(
    traces: pd.DataFrame, capacity_w: float | None = None, max_points: int = MAX_POINTS
) -> go.Figure:
    """Cooling load against the heat-rejection capacity, and the headroom left (%).

    The capacity is the ``cooling_capacity_w`` trace when the run has one (weather-dependent
    cooling), else the constant ``capacity_w``. A long trace is drawn as means per day (or
    week) with a band up to the peak load of each day, the lowest capacity of the day and the
    lowest headroom of the day (the hour that came closest to the limit); the title's minimum
    is over every sample.
    """
    work = pd.DataFrame({"load": traces["cooling_load_w"].to_numpy(dtype=float)})
    if "cooling_capacity_w" in traces:
        work["cap"] = traces["cooling_capacity_w"].to_numpy(dtype=float)
    elif capacity_w is not None:
        work["cap"] = float(capacity_w)
    if "cap" in work:
        cap_w = work["cap"].to_numpy(dtype=float)
        work["headroom"] = np.divide(
            (cap_w - work["load"].to_numpy()) * 100.0,
            cap_w,
            out=np.zeros_like(cap_w),
            where=cap_w > 0,
        )
    work["time_s"] = traces["time_s"].to_numpy(dtype=float)
    work["interval_s"] = traces["interval_s"].to_numpy(dtype=float)
    cols = [c for c in ("load", "cap", "headroom") if c in work]
    series = _series(work, cols, max_points)
    x = series.x
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=x,
            y=series.y("load") / 1e6,
            name="cooling load",
            mode="lines",
            fill="tozeroy",
            line={"color": SERIES_COLORS["cooling_load"], "shape": "hv"},
            hovertemplate="%{y:,.1f} MW",
        ),
        secondary_y=False,
    )
    if series.per:  # from the mean load up to the peak of each bin
        fig.add_trace(
            go.Scatter(
                x=x,
                y=series.y("load", "hi") / 1e6,
                name=f"cooling load, peak in the {series.per}",
                mode="lines",
                line={"color": SERIES_COLORS["cooling_load"], "width": 0.5, "shape": "hv"},
                fill="tonexty",
                fillcolor="rgba(23, 190, 207, 0.25)",
                hovertemplate="%{y:,.1f} MW",
            ),
            secondary_y=False,
        )
    title = f"Cooling load{_per_title(series)} (capacity not modelled)"
    if "cap" in work:
        low = " (lowest in the " + series.per + ")" if series.per else ""
        fig.add_trace(
            go.Scatter(
                x=x,
                y=series.y("cap", "lo") / 1e6,
                name="heat-rejection capacity" + low,
                mode="lines",
                line={"color": SERIES_COLORS["cap"], "dash": "dash", "shape": "hv"},
                hovertemplate="%{y:,.1f} MW",
            ),
            secondary_y=False,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=series.y("headroom", "lo"),
                name="headroom" + low,
                mode="lines",
                line={"color": SERIES_COLORS["headroom"], "width": 1, "shape": "hv"},
                hovertemplate="%{y:.1f}%",
            ),
            secondary_y=True,
        )
        least = float(np.min(work["headroom"])) if len(work) else float("nan")
        title = f"Cooling headroom{_per_title(series)} (minimum {fmt(least, '.1f', '%')})"
        fig.update_yaxes(
            title_text=axis("headroom", "% of capacity"),
            showgrid=False,
            range=[0, 100],
            tickmode="auto",
            secondary_y=True,
        )
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("heat", "MW"), rangemode="tozero", secondary_y=False)
    return _timed(fig, title, _end_s(traces))


def _hours_over(traces: pd.DataFrame, load: str, cap: str) -> float:
    """Hours of the bins whose mean ``load`` exceeds their mean ``cap``."""
    over = traces[load].to_numpy(dtype=float) > traces[cap].to_numpy(dtype=float)
    return float(np.sum(traces["interval_s"].to_numpy(dtype=float)[over])) / HOUR_S


def _has_weather(traces: pd.DataFrame) -> bool:
    col = TRACE["outdoor_dry_bulb_c"].name
    return col in traces and bool(np.isfinite(traces[col].to_numpy(dtype=float)).any())


def hall_cooling_figure(
    traces: pd.DataFrame, summary: dict[str, Any] | None = None, max_points: int = MAX_POINTS
) -> go.Figure:
    """Each hall's heat (its IT power: all of it becomes heat) against the heat it can reject
    now (``site.<hall>.cooling_capacity_w``, which derates in the heat under ``pue: weather``),
    one panel per hall, under a panel of the outdoor air (dry-bulb, wet-bulb) when the run has
    weather. Each hall's panel title gives its peak heat as a share of its capacity and its hours
    over capacity (``energy.halls.<hall>.hours_over_cooling_capacity`` from the summary, else
    counted over the trace's bins). A long trace is drawn as means per day (or week) with a band
    up to the peak heat of each day and the lowest capacity of the day; the outdoor air with a
    band from the day's low to its high.
    """
    caps = dict((hall, col) for col, hall in _hall_columns(traces, "cooling_capacity_w"))
    halls = [(col, hall) for col, hall in _hall_columns(traces) if hall in caps]
    dry, wet = TRACE["outdoor_dry_bulb_c"].name, TRACE["outdoor_wet_bulb_c"].name
    weather = _has_weather(traces)
    cols = [c for c, _ in halls] + [caps[h] for _, h in halls]
    cols += [dry] + ([wet] if wet in traces else []) if weather else []
    series = _series(traces, cols, max_points)
    x, per = series.x, series.per
    known = (summary or {}).get("energy", {}).get("halls", {}) or {}
    titles = []
    if weather:
        hot = float(np.nanmax(traces[dry].to_numpy(dtype=float)))
        titles.append(f"outdoor air (hottest hour {hot:.1f} °C)")
    for col, hall in halls:
        it = traces[col].to_numpy(dtype=float)
        cap = traces[caps[hall]].to_numpy(dtype=float)
        share = np.divide(it, cap, out=np.full_like(it, np.nan), where=cap > 0)
        peak = float(np.nanmax(share)) if np.isfinite(share).any() else float("nan")
        hours = known.get(hall, {}).get("hours_over_cooling_capacity")
        if hours is None:
            hours = _hours_over(traces, col, caps[hall])
        titles.append(
            f"{hall}: peak heat {fmt(peak, '.0%')} of capacity,"
            f" {fmt(hours, ',.0f' if hours >= 10 else '.2g')} h over"
        )
    rows = len(halls) + (1 if weather else 0)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.35 / max(rows, 1)),
        subplot_titles=titles,
    )
    row = 1
    if weather:
        if per:
            _band(
                fig,
                x,
                series.y(dry, "lo"),
                series.y(dry, "hi"),
                "dry-bulb, daily low to high" if per == "day" else "dry-bulb, low to high",
                "rgba(230, 85, 13, 0.2)",
                hovertemplate="%{y:.1f} °C",
                row=1,
                col=1,
            )
        for col, name, color, dash in (
            (dry, "outdoor dry-bulb", SERIES_COLORS["dry_bulb"], "solid"),
            (wet, "outdoor wet-bulb", SERIES_COLORS["wet_bulb"], "dot"),
        ):
            if col in series.mean:
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=series.y(col),
                        name=f"{name}, mean per {per}" if per else name,
                        mode="lines",
                        line={"color": color, "width": 1.2, "dash": dash, "shape": "hv"},
                        hovertemplate="%{y:.1f} °C",
                    ),
                    row=1,
                    col=1,
                )
        fig.update_yaxes(title_text=axis("air", "°C"), row=1, col=1)
        row = 2
    for i, (col, hall) in enumerate(halls):
        r = row + i
        fig.add_trace(
            go.Scatter(
                x=x,
                y=series.y(col) / 1e6,
                name=f"heat (IT power), mean per {per}" if per else "heat (IT power)",
                legendgroup="heat",
                showlegend=i == 0,
                mode="lines",
                fill="tozeroy",
                line={"color": SERIES_COLORS["cooling_load"], "width": 1, "shape": "hv"},
                hovertemplate=hall + ": %{y:,.1f} MW",
            ),
            row=r,
            col=1,
        )
        if per:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=series.y(col, "hi") / 1e6,
                    name=f"heat, peak in the {per}",
                    legendgroup="peak",
                    showlegend=i == 0,
                    mode="lines",
                    line={"color": SERIES_COLORS["cooling_load"], "width": 0.5, "shape": "hv"},
                    fill="tonexty",
                    fillcolor="rgba(23, 190, 207, 0.25)",
                    hovertemplate=hall + ": %{y:,.1f} MW",
                ),
                row=r,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=series.y(caps[hall], "lo" if per else "mean") / 1e6,
                name="cooling capacity" + (f" (lowest in the {per})" if per else ""),
                legendgroup="cap",
                showlegend=i == 0,
                mode="lines",
                line={"color": SERIES_COLORS["cap"], "dash": "dash", "shape": "hv"},
                hovertemplate=hall + " capacity: %{y:,.1f} MW",
            ),
            row=r,
            col=1,
        )
        fig.update_yaxes(title_text=axis("heat", "MW"), rangemode="tozero", row=r, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=rows, col=1)
    title = f"Heat by hall against cooling capacity{_per_title(series)}"
    if weather:
        title += ", with the outdoor air"
    return _timed(fig, title, _end_s(traces), height=60 + 190 * rows)


def _has_hall_cooling(traces: pd.DataFrame) -> bool:
    caps = {hall for _, hall in _hall_columns(traces, "cooling_capacity_w")}
    return _has(traces, "time_s", "interval_s") and any(
        hall in caps for _, hall in _hall_columns(traces)
    )


# --------------------------------------------------------------------------- power control


def _class_columns(traces: pd.DataFrame) -> list[tuple[str, str]]:
    """``(column, class)`` of each priority class's clock column, in table order."""
    out = []
    for col in traces.columns:
        parsed = parse_entity_column(str(col))
        if parsed is not None and parsed[0] is PRIORITY_CLASS and parsed[2] == "clock":
            out.append((str(col), parsed[1]))
    return out


def _hours(h: float) -> str:
    """``874 h``, ``28 h``, ``0.41 h``: hours, whole above 10."""
    return fmt(h, ",.0f" if abs(h) >= 10 else ".2g", " h")


#: Below this many hours a class's throttle loss is float residue, not a loss.
_NO_LOSS_H = 1e-6


def throttled(traces: pd.DataFrame) -> bool:
    """True when any priority class ran below its full clock in some bin."""
    return any(
        float(np.nanmin(traces[col].to_numpy(dtype=float), initial=1.0)) < 1 - 1e-9
        for col, _ in _class_columns(traces)
    )


def throttle_figure(
    traces: pd.DataFrame, summary: dict[str, Any] | None = None, max_points: int = MAX_POINTS
) -> go.Figure:
    """The clock of each priority class's running training work under power control (% of the
    full clock; 100% when not throttled or when none runs), with demand-response calls shaded.
    Each class's legend entry and the title give the job-hours the throttle cost it
    (``power_control.hours_lost_to_throttle_by_class``: the wall time added to its jobs,
    summed over them). A long trace is drawn as means per day (or week) with a band down to
    the lowest clock of each day."""
    classes = _class_columns(traces)
    series = _series(traces, [c for c, _ in classes], max_points)
    per = series.per
    lost = (summary or {}).get("power_control", {}).get("hours_lost_to_throttle_by_class", {})
    lost = {k: float(v) for k, v in (lost or {}).items() if float(v) > _NO_LOSS_H}
    fig = make_subplots(rows=1, cols=1)
    for i, (col, cls) in enumerate(classes):
        color = class_color(cls, i)
        label = cls + (f" ({_hours(lost[cls])} lost)" if cls in lost else "")
        _percent_line(fig, series, col, cls, label, color, "lo", "", f"{cls}, lowest in the {per}")
    calls = cap_dips(traces)
    _shade_calls(fig, calls)
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("clock", "% of full"), range=[0, 105])
    policy = (summary or {}).get("power_control", {}).get("policy")
    title = f"Clock by priority class{_per_title(series)}"
    if policy:
        title += f" under the {policy} policy"
    if lost:
        title += ": " + ", ".join(f"{c} {_hours(h)} lost" for c, h in lost.items())
    return _timed(fig, title, _end_s(traces), 360)


def _percent_line(
    fig: go.Figure,
    series: Any,
    col: str,
    name: str,
    label: str,
    color: str,
    top: str,
    dash: str,
    band_label: str,
) -> None:
    """One share (1 = 100%) of ``series`` as a % line; a long trace (means per day or week)
    gets a band in the line's colour from its lowest value up to the mean (``top="lo"``) or
    up to its highest (``top="hi"``)."""
    x, per = series.x, series.per
    if per:
        upper = series.y(col) if top == "lo" else series.y(col, "hi")
        _band(
            fig,
            x,
            series.y(col, "lo") * 100.0,
            upper * 100.0,
            band_label,
            _rgba(color, 0.2),
            hovertemplate="%{y:.0f}%",
            row=1,
            col=1,
        )
    line = {"color": color, "width": 1.5, "shape": "hv"} | ({"dash": dash} if dash else {})
    fig.add_trace(
        go.Scatter(
            x=x,
            y=series.y(col) * 100.0,
            name=label + (f", mean per {per}" if per else ""),
            mode="lines",
            line=line,
            hovertemplate=name + ": %{y:.1f}%",
        ),
        row=1,
        col=1,
    )


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


# --------------------------------------------------------------------------- fabric


def _tier_columns(traces: pd.DataFrame) -> list[tuple[str, str]]:
    """``(column, tier)`` of each fabric tier's uplink load column, innermost tier first (only
    tiers whose uplinks can bind have one)."""
    out = []
    for col in traces.columns:
        parsed = parse_entity_column(str(col))
        if parsed is not None and parsed[0] is FABRIC_TIER and parsed[2] == "uplink_load":
            out.append((str(col), parsed[1]))
    rank = {t: i for i, t in enumerate(TIER_COLORS)}
    return sorted(out, key=lambda ct: rank.get(ct[1], len(rank)))


def uplink_load_figure(
    traces: pd.DataFrame, summary: dict[str, Any] | None = None, max_points: int = MAX_POINTS
) -> go.Figure:
    """Offered load on the fabric's uplinks by tier over time (% of their capacity): what the
    jobs crossing a tier's uplinks that can bind ask, over those uplinks' capacity, one line
    per tier (``fabric.<tier>.uplink_load``; tiers whose uplinks cannot bind have none). Above
    100% the uplinks are contended and the jobs crossing them are slowed (700% on a 1:7 tier
    that all of its GPUs cross). A long trace is
    drawn as means per day (or week) with a band from the lowest to the highest load of each
    day. The title gives each tier's mean and the hours the network cost each workload
    (``network.hours_lost_to_network_by_workload``)."""
    tiers = _tier_columns(traces)
    series = _series(traces, [c for c, _ in tiers], max_points)
    per = series.per
    fig = make_subplots(rows=1, cols=1)
    means = []
    for i, (col, tier) in enumerate(tiers):
        color = TIER_COLORS.get(tier, SERIES_COLORS["capacity"])
        # dashed further out: tiers crossed by the same jobs carry the same load
        _percent_line(
            fig,
            series,
            col,
            tier,
            f"{tier} uplinks",
            color,
            "hi",
            _DASHES[i % len(_DASHES)],
            f"{tier}, {'daily ' if per == 'day' else ''}low to high",
        )
        means.append(f"{tier} {fmt(_twmean(traces, col), '.0%')}")
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("uplink load", "% of capacity"), rangemode="tozero")
    lost = (summary or {}).get("network", {}).get("hours_lost_to_network_by_workload") or {}
    lost = {k: float(v) for k, v in lost.items() if abs(float(v)) > _NO_LOSS_H}
    title = f"Uplink load by fabric tier{_per_title(series)} (mean {', '.join(means)})"
    if lost:
        title += "; network cost " + ", ".join(
            f"{_LABELS.get(k, k)} {_hours(h)}" for k, h in lost.items()
        )
    return _timed(fig, title, _end_s(traces), 360)


# --------------------------------------------------------------------------- grid


#: Grid columns the grid figure needs.
_GRID_COLUMNS = (
    TRACE["energy_price_usd_per_mwh"].name,
    TRACE["carbon_intensity_g_per_kwh"].name,
    TRACE["energy_cost_usd"].name,
    TRACE["emissions_tco2"].name,
)


def _totals(traces: pd.DataFrame, col: str, per_s: float, n: int) -> np.ndarray:
    """Sum of ``col`` over the trace rows starting in each of ``n`` bins of ``per_s``."""
    b = np.floor(traces["time_s"].to_numpy(dtype=float) / per_s).astype(int)
    b = np.clip(b, 0, n - 1)
    return np.bincount(b, weights=traces[col].to_numpy(dtype=float), minlength=n)


def grid_figure(traces: pd.DataFrame, max_points: int = MAX_POINTS) -> go.Figure:
    """What the grid charged: energy cost and emissions per day (per hour in runs under two days)
    on the left axes, against the energy price and the carbon intensity in force on the right.
    Totals are bars for up to 60 bins, step lines beyond (a year). Price and intensity are drawn
    per sample, or for a long trace as means per day (or week) with a band from the lowest to
    the highest hour."""
    price, carbon, cost, tco2 = _GRID_COLUMNS
    end_s = _end_s(traces)
    per_s, per = (DAY_S, "day") if end_s >= 2 * DAY_S else (HOUR_S, "hour")
    n = max(int(np.ceil(end_s / per_s - 1e-9)), 1)
    edges = np.arange(n) * per_s
    as_bars = n <= 60
    series = _series(traces, [price, carbon], max_points)
    cost_sum, tco2_sum = _totals(traces, cost, per_s, n), _totals(traces, tco2, per_s, n)
    scale, unit = next(
        ((d, u) for d, u in ((1e6, "$M"), (1e3, "$k")) if np.max(cost_sum, initial=0) >= d),
        (1.0, "$"),
    )
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        specs=[[{"secondary_y": True}], [{"secondary_y": True}]],
    )
    for r, (total, name, color, hover, level, lname, lcolor, lhover) in enumerate(
        (
            (
                cost_sum / scale,
                f"energy cost per {per}",
                SERIES_COLORS["energy"],
                "%{y:,.3g} " + unit,
                price,
                "energy price",
                SERIES_COLORS["price"],
                "$%{y:,.1f}/MWh",
            ),
            (
                tco2_sum,
                f"emissions per {per}",
                SERIES_COLORS["emissions"],
                "%{y:,.4g} tCO2eq",
                carbon,
                "carbon intensity",
                SERIES_COLORS["carbon"],
                "%{y:,.0f} g/kWh",
            ),
        ),
        start=1,
    ):
        fig.add_trace(
            go.Bar(
                x=(edges + per_s / 2) / DAY_S,
                y=total,
                name=name,
                marker={"color": color, "opacity": 0.7},
                hovertemplate=hover,
            )
            if as_bars
            else go.Scatter(
                x=edges / DAY_S,
                y=total,
                name=name,
                mode="lines",
                line={"color": color, "width": 1, "shape": "hv"},
                hovertemplate=hover,
            ),
            row=r,
            col=1,
            secondary_y=False,
        )
        if series.per:
            _band(
                fig,
                series.x,
                series.y(level, "lo"),
                series.y(level, "hi"),
                f"{lname}, daily low to high" if series.per == "day" else f"{lname}, low to high",
                _rgba(lcolor, 0.2),
                hovertemplate=lhover,
                row=r,
                col=1,
                secondary_y=True,
            )
        fig.add_trace(
            go.Scatter(
                x=series.x,
                y=series.y(level),
                name=lname + (f", mean per {series.per}" if series.per else ""),
                mode="lines",
                line={"color": lcolor, "width": 1.5, "shape": "hv"},
                hovertemplate=lhover,
            ),
            row=r,
            col=1,
            secondary_y=True,
        )

    # the totals fill the lower part of each panel and the level above them, so a level that is
    # constant is a line of its own, not one hidden in the top edge or along the bars' tops
    def top(y: np.ndarray, scale: float) -> list[float]:
        finite = y[np.isfinite(y)]
        return [0.0, (float(np.max(finite)) if finite.size else 0.0) * scale or 1.0]

    right = {"showgrid": False, "tickmode": "auto", "title_font_size": 11}
    for r, total, level, left_title, right_title in (
        (1, cost_sum / scale, price, axis("cost", f"{unit} per {per}"), axis("price", "$/MWh")),
        (2, tco2_sum, carbon, axis("emissions", f"tCO2eq per {per}"), axis("intensity", "g/kWh")),
    ):
        fig.update_yaxes(
            title_text=left_title, range=top(total, 1.35), row=r, col=1, secondary_y=False
        )
        fig.update_yaxes(
            title_text=right_title,
            range=top(series.y(level, "hi"), 1.08),
            row=r,
            col=1,
            secondary_y=True,
            **right,
        )
    fig.update_xaxes(title_text=TIME_AXIS, row=2, col=1)
    fig.update_layout(barmode="overlay", bargap=0.15)
    energy = (
        float(traces[TRACE["facility_energy_mwh"].name].sum())
        if (TRACE["facility_energy_mwh"].name in traces)
        else float("nan")
    )
    total_cost, total_t = float(np.sum(cost_sum)), float(np.sum(tco2_sum))
    avg_price = total_cost / energy if energy > 0 else None
    avg_g = total_t * 1e6 / (energy * 1e3) if energy > 0 else None
    title = (
        f"Energy cost {money(total_cost)} ({fmt(avg_price, ',.1f', prefix='$')}/MWh on average),"
        f" emissions {fmt(total_t, ',.0f' if total_t >= 100 else '.3g')} tCO2eq"
        f" ({fmt(avg_g, ',.0f')} g/kWh)"
    )
    return _timed(fig, title, end_s, 520)


# --------------------------------------------------------------------------- job timeline


def _timeline_jobs(jobs: pd.DataFrame, end_s: float, max_posttraining: int) -> pd.DataFrame:
    train = jobs[jobs["workload"].isin(["pretraining", "posttraining"])]
    train = train[train["submit_s"] < end_s]
    if (train["workload"] == "posttraining").sum() > max_posttraining:
        train = train[train["workload"] == "pretraining"]
    return train.sort_values("submit_s", kind="stable")


#: Event kinds marked on the job timeline: (event, legend name, marker symbol, colour).
_JOB_MARKS = (
    ("interrupted", "interruptions", "x", SERIES_COLORS["failures"]),
    ("preempted", "preemptions", "triangle-down", "#444"),
)
#: Line dashes telling apart the runs' count lines on the job timeline.
_DASHES = ("solid", "dot", "dash", "dashdot", "longdash", "longdashdot")


def job_timeline_figure(
    jobs: pd.DataFrame,
    events: pd.DataFrame,
    end_s: float,
    max_posttraining: int = 60,
    max_marked_bins: int = 40,
) -> go.Figure:
    """Gantt chart of training runs: waiting, then running, with interruptions and preemptions.

    All pre-training runs are shown; post-training jobs too when there are at most
    ``max_posttraining`` of them (a year has thousands: the utilization figure shows those).
    Interruptions and preemptions are counted per day (per hour in runs under two days). When
    every run has them on at most ``max_marked_bins`` days, each such day is a marker on the
    run's bar (its count on hover); more would merge into a solid bar (a 147k-GPU run is
    interrupted dozens of times a day), so then they are a count line per run and kind in a
    panel under the bars, on the same time axis.
    """
    shown = _timeline_jobs(jobs, end_s, max_posttraining)
    n_post = int((jobs["workload"] == "posttraining").sum())
    names = shown["name"].astype(str).tolist()
    per_s, per = (DAY_S, "day") if end_s >= 2 * DAY_S else (HOUR_S, "hour")
    counts = {}
    for kind, *_ in _JOB_MARKS:
        ev = events[(events["event"] == kind) & events["subject"].isin(set(names))]
        if not ev.empty:
            counts[kind] = (
                ev.assign(bin=np.floor(ev["time_s"].to_numpy(dtype=float) / per_s))
                .groupby(["subject", "bin"], sort=False)
                .size()
                .reset_index(name="n")
            )
    dense = any(int(c.groupby("subject").size().max()) > max_marked_bins for c in counts.values())
    spans = {
        str(n): (float(a), float(b) if np.isfinite(b) else end_s)
        for n, a, b in zip(shown["name"], shown["submit_s"], shown["finish_s"], strict=True)
    }
    bars_h = min(220 + 24 * len(names), 1600)
    if dense:
        fig = make_subplots(
            rows=2,
            cols=1,
            shared_xaxes=True,
            row_heights=[bars_h, 200],
            vertical_spacing=0.08,
        )
    else:
        fig = make_subplots(rows=1, cols=1)
    _job_bars(fig, shown, names, end_s)
    for kind, label, symbol, color in _JOB_MARKS:
        if kind not in counts:
            continue
        c = counts[kind]
        if not dense:
            fig.add_trace(
                go.Scatter(
                    x=(c["bin"].to_numpy(dtype=float) + 0.5) * per_s / DAY_S,
                    y=c["subject"].astype(str).tolist(),
                    mode="markers",
                    name=label,
                    marker={"symbol": symbol, "color": color, "size": 8},
                    customdata=c["n"].to_numpy(),
                    hovertemplate="%{y}: %{customdata} " + kind + f" in the {per}<extra></extra>",
                ),
                row=1,
                col=1,
            )
            continue
        edges = np.arange(0.0, end_s + per_s, per_s)
        for i, run in enumerate(n for n in names if n in set(c["subject"])):
            mine = c[c["subject"] == run]
            # a count (zero too) only while the run is in the factory: a gap elsewhere
            submit, finish = spans[run]
            y = np.where((edges[1:] > submit) & (edges[:-1] < finish), 0.0, np.nan)
            idx = mine["bin"].to_numpy(dtype=int)
            ok = (idx >= 0) & (idx < len(y))
            y[idx[ok]] = mine["n"].to_numpy(dtype=float)[ok]
            fig.add_trace(
                go.Scatter(
                    x=edges[:-1] / DAY_S,
                    y=y,
                    name=f"{run} {label}",
                    mode="lines",
                    line={
                        "color": color,
                        "width": 1,
                        "shape": "hv",
                        "dash": _DASHES[i % len(_DASHES)],
                    },
                    hovertemplate=f"{run}: %{{y:,}} {label} per {per}<extra></extra>",
                ),
                row=2,
                col=1,
            )
    title = "Training runs"
    if n_post > max_posttraining:
        title += f" (the {n_post:,} post-training jobs are not drawn; see utilization)"
    fig.update_layout(barmode="overlay", hovermode="closest")
    rows = 2 if dense else 1
    fig.update_xaxes(title_text=TIME_AXIS, row=rows, col=1)
    fig.update_yaxes(
        title_text="run",
        autorange="reversed",
        categoryorder="array",
        categoryarray=names,
        row=1,
        col=1,
    )
    if dense:
        fig.update_yaxes(title_text=axis("events", f"per {per}"), rangemode="tozero", row=2, col=1)
    return _timed(fig, title, end_s, bars_h + (200 if dense else 0))


def _job_bars(fig: go.Figure, shown: pd.DataFrame, names: list[str], end_s: float) -> None:
    """The bars of :func:`job_timeline_figure`: waiting, then running (hatched: unfinished)."""
    submit = shown["submit_s"].to_numpy(dtype=float)
    start = shown["first_start_s"].to_numpy(dtype=float)
    finish = shown["finish_s"].to_numpy(dtype=float)
    started = np.isfinite(start)
    stop = np.where(np.isfinite(finish), finish, end_s)
    wait_end = np.where(started, start, end_s)
    fig.add_trace(
        go.Bar(
            y=names,
            base=submit / DAY_S,
            x=(wait_end - submit) / DAY_S,
            orientation="h",
            name="waiting",
            marker={"color": WORKLOAD_COLORS["idle"]},
            hovertemplate="%{y}: waiting %{x:.2f} d<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for kind in ("pretraining", "posttraining"):
        m = (shown["workload"] == kind).to_numpy() & started
        if not m.any():
            continue
        done = (shown["state"] == "finished").to_numpy()[m]
        frac = shown["work_done"].to_numpy(dtype=float)[m] / shown["work"].to_numpy(dtype=float)[m]
        fig.add_trace(
            go.Bar(
                y=[n for n, k in zip(names, m, strict=True) if k],
                base=start[m] / DAY_S,
                x=(stop[m] - start[m]) / DAY_S,
                orientation="h",
                name=_LABELS[kind],
                marker={
                    "color": WORKLOAD_COLORS[kind],
                    "pattern": {"shape": ["" if d else "/" for d in done]},
                },
                customdata=np.column_stack([frac * 100.0, done]),
                hovertemplate="%{y}: %{x:.2f} d, %{customdata[0]:.0f}% done<extra></extra>",
            ),
            row=1,
            col=1,
        )


def _has_training(t: RunTables) -> bool:
    if not _has(t.jobs, "workload", "submit_s", "first_start_s") or t.traces.empty:
        return False
    return not _timeline_jobs(t.jobs, _end_s(t.traces), 60).empty


# --------------------------------------------------------------------------- inference


def _services(jobs: pd.DataFrame) -> pd.DataFrame:
    return jobs[jobs["workload"] == "inference"] if "workload" in jobs else jobs.iloc[:0]


def inference_figure(
    traces: pd.DataFrame, jobs: pd.DataFrame, max_points: int = MAX_POINTS
) -> go.Figure:
    """Per inference service: demand, tokens served and serving capacity (output tokens/s).

    Capacity is the ``service.<name>.capacity_tokens_per_s`` trace if the run has one, else
    domains held x capacity per domain (the service's ``rate_per_s`` x GPUs per domain). The
    subplot title gives the service's SLO attainment (tokens served / tokens demanded). A long
    trace is drawn as means per day (or week), with the range from the lowest to the highest
    demand and capacity of each day as bands (capacity follows the daily cycle of demand: a
    mean capacity against peak demand would say nothing).
    """
    svcs = _services(jobs)
    names = [str(n) for n in svcs["name"]]
    slo = svcs["slo_attainment"].to_numpy(dtype=float)
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / max(len(names), 1)),
        subplot_titles=[
            f"{n}: SLO attainment {fmt(s, '.1%')}" for n, s in zip(names, slo, strict=True)
        ],
    )
    per = ""
    for i, (_, svc) in enumerate(svcs.iterrows(), start=1):
        col = {q: entity_column(SERVICE, str(svc["name"]), q) for q in SERVICE.quantities}
        if col["capacity_tokens_per_s"] in traces:
            cap = traces[col["capacity_tokens_per_s"]].to_numpy(dtype=float)
        else:
            domains = traces[col["domains"]].to_numpy(dtype=float)
            peak = float(np.max(domains)) if len(domains) else 0.0
            per_domain = float(svc["rate_per_s"]) * float(svc["gpus"]) / peak if peak else 0.0
            cap = domains * per_domain
        work = pd.DataFrame(
            {
                "time_s": traces["time_s"].to_numpy(dtype=float),
                "interval_s": traces["interval_s"].to_numpy(dtype=float),
                "demand": traces[col["demand_tokens_per_s"]].to_numpy(dtype=float),
                "served": traces[col["served_tokens_per_s"]].to_numpy(dtype=float),
                "capacity": cap,
            }
        )
        series = _series(work, ["demand", "served", "capacity"], max_points)
        per = series.per
        if per:
            for key, name, rgba in (
                ("capacity", "capacity", "rgba(31, 119, 180, 0.15)"),
                ("demand", "demand", "rgba(127, 127, 127, 0.3)"),
            ):
                _band(
                    fig,
                    series.x,
                    series.y(key, "lo"),
                    series.y(key, "hi"),
                    f"{name}, daily low to high" if per == "day" else f"{name}, low to high",
                    rgba,
                    legendgroup=f"{key}-range",
                    showlegend=i == 1,
                    hovertemplate="%{y:.3s} tokens/s",
                    row=i,
                    col=1,
                )
        for key, dash in (("demand", "dot"), ("served", "solid"), ("capacity", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=series.x,
                    y=series.y(key),
                    name=f"{key}, mean per {per}" if per else key,
                    legendgroup=key,
                    showlegend=i == 1,
                    mode="lines",
                    line={"color": SERIES_COLORS[key], "dash": dash, "shape": "hv"},
                    hovertemplate="%{y:.3s} tokens/s",
                ),
                row=i,
                col=1,
            )
        fig.update_yaxes(title_text=axis("output", "tokens/s"), rangemode="tozero", row=i, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=len(names), col=1)
    title = f"Inference demand vs capacity{', means per ' + per if per else ''}"
    return _timed(fig, title, _end_s(traces), height=140 + 240 * len(names))


def _has_inference(t: RunTables) -> bool:
    svcs = _services(t.jobs) if "workload" in t.jobs else t.jobs.iloc[:0]
    if svcs.empty:
        return False
    return all(
        _has(
            t.traces,
            *(
                entity_column(SERVICE, str(n), q)
                for q in ("demand_tokens_per_s", "served_tokens_per_s", "domains")
            ),
        )
        for n in svcs["name"]
    )


# --------------------------------------------------------------------------- failures


def failures_figure(
    traces: pd.DataFrame, events: pd.DataFrame, max_points: int = MAX_POINTS
) -> go.Figure:
    """Failures, repairs and job interruptions per day (per hour in runs under two days), and
    failed GPUs over time (means per day or week in a long trace). Counts are bars for up to 60
    bins, step lines beyond (a year)."""
    end_s = _end_s(traces)
    per_s = DAY_S if end_s >= 2 * DAY_S else HOUR_S
    per = "day" if per_s == DAY_S else "hour"
    edges = np.arange(0.0, end_s + per_s, per_s)
    as_bars = len(edges) - 1 <= 60
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for kind, name, color in (
        ("failure", "failures", SERIES_COLORS["failures"]),
        ("repair", "repairs", SERIES_COLORS["repairs"]),
        ("interrupted", "job interruptions", SERIES_COLORS["interruptions"]),
    ):
        t = events.loc[events["event"] == kind, "time_s"].to_numpy(dtype=float)
        counts, _ = np.histogram(t, bins=edges)
        hover = "%{y:,} " + name + f" per {per}<extra></extra>"
        trace = (
            go.Bar(
                x=(edges[:-1] + per_s / 2) / DAY_S,
                y=counts,
                name=name,
                marker={"color": color},
                hovertemplate=hover,
            )
            if as_bars
            else go.Scatter(
                x=edges[:-1] / DAY_S,
                y=counts,
                name=name,
                mode="lines",
                line={"color": color, "width": 1, "shape": "hv"},
                hovertemplate=hover,
            )
        )
        fig.add_trace(trace, secondary_y=False)
    if "gpus_failed" in traces:
        failed = _series(traces, ["gpus_failed"], max_points)
        fig.add_trace(
            go.Scatter(
                x=failed.x,
                y=failed.y("gpus_failed"),
                name=f"failed GPUs, mean per {failed.per}" if failed.per else "failed GPUs",
                mode="lines",
                line={"color": "#444", "width": 1, "shape": "hv"},
                hovertemplate="%{y:,.0f} GPUs",
            ),
            secondary_y=True,
        )
    n = int((events["event"] == "failure").sum())
    fig.update_layout(barmode="group", bargap=0.15)
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("events", f"per {per}"), secondary_y=False)
    # ticks of its own (round numbers), not ones synchronised with the left axis
    fig.update_yaxes(
        title_text=axis("failed", "GPUs"),
        showgrid=False,
        rangemode="tozero",
        tickmode="auto",
        secondary_y=True,
    )
    title = f"Failures and repairs ({plural(n, 'failure')}, {n / (end_s / DAY_S):,.1f}/day)"
    return _timed(fig, title, end_s)


# --------------------------------------------------------------------------- cost


#: Cost components, in stacking order: (trace column, label, colour).
_COST_PARTS = (
    ("capital_compute_usd", "capital: compute", "#263238"),
    ("capital_network_usd", "capital: network", "#455a64"),
    ("capital_storage_usd", "capital: storage", "#607d8b"),
    ("capital_facility_usd", "capital: facility", "#90a4ae"),
    ("energy_cost_usd", "energy", SERIES_COLORS["energy"]),
    ("maintenance_usd", "maintenance", "#8d6e63"),
    ("fixed_opex_usd", "staff and fixed", "#a1887f"),
    ("software_usd", "software", "#bcaaa4"),
    ("repair_usd", "repairs", "#d7ccc8"),
)
#: Where the money went, in stacking order: (trace column, label, colour).
_COST_USES = (
    ("cost_pretraining_usd", "pre-training", WORKLOAD_COLORS["pretraining"]),
    ("cost_posttraining_usd", "post-training", WORKLOAD_COLORS["posttraining"]),
    ("cost_inference_usd", "inference", WORKLOAD_COLORS["inference"]),
    ("cost_failed_usd", "failed", WORKLOAD_COLORS["failed"]),
    ("cost_spare_usd", "spare", "#bdbdbd"),
    ("cost_idle_usd", "idle", WORKLOAD_COLORS["idle"]),
)


def cost_figure(traces: pd.DataFrame, summary: dict[str, Any]) -> go.Figure:
    """Where the money went, and what a token costs.

    Left: the run's total cost (its TCO: capital annuities and every operating cost, sim.tco)
    split two ways: by component (capital by asset class, energy, maintenance, staff, software,
    repairs) and by use (the GPUs and energy of each workload class, failed, spare and idle
    capacity; the throttled part of training is inside its class here). Right: cost per million
    output tokens of each inference service: what it used, and its share of idle capacity
    stacked on top. When a domain has no capital price (hand-made tables) the capital part, the
    total and costs per token are unknown: they are left out and the title says "n/a".
    """
    known = capex_known(traces)
    energy = float(traces["energy_cost_usd"].sum())
    total = float(traces["cost_usd"].sum()) if known and "cost_usd" in traces else None
    gpu_hours = float(np.sum(traces["gpus_total"] * traces["interval_s"])) / HOUR_S
    per_gpu_hour = total / gpu_hours if total is not None and gpu_hours > 0 else None
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        subplot_titles=("total cost", "cost per million output tokens"),
    )
    cats = ["by component", "by use"]
    parts: list[tuple[str, list[float | None], str]] = []
    for col, label, color in _COST_PARTS:
        if col not in traces or (col != "energy_cost_usd" and not known):
            continue
        v = energy if col == "energy_cost_usd" else float(traces[col].sum())
        if v > 0:
            parts.append((label, [v, None], color))
    if known:
        for col, label, color in _COST_USES:
            if col in traces and float(traces[col].sum()) > 0:
                parts.append((label, [None, float(traces[col].sum())], color))
    for name, ys, color in parts:
        fig.add_trace(
            go.Bar(
                x=cats,
                y=[y / 1e6 if y is not None else None for y in ys],
                name=name,
                marker={"color": color},
                hovertemplate=name + ": $%{y:,.2f}M<extra></extra>",
            ),
            row=1,
            col=1,
        )
    svcs = summary.get("inference_services", [])
    names = [s["name"] for s in svcs]
    per_m = [s.get("cost_per_million_tokens_usd") if known else None for s in svcs]
    loaded = [s.get("cost_per_million_tokens_with_idle_usd") if known else None for s in svcs]
    idle_part = [
        (w - u) if w is not None and u is not None else None
        for u, w in zip(per_m, loaded, strict=True)
    ]
    fig.add_trace(
        go.Bar(
            x=names,
            y=per_m,
            name="$ per M tokens: what it used",
            marker={"color": WORKLOAD_COLORS["inference"]},
            text=[money(v) for v in per_m],
            textposition="inside",
            showlegend=False,
            hovertemplate="%{x}: $%{y:.4g}/M tokens on what it used<extra></extra>",
        ),
        row=1,
        col=2,
    )
    if any(v is not None for v in idle_part):
        fig.add_trace(
            go.Bar(
                x=names,
                y=idle_part,
                name="its share of idle capacity",
                marker={"color": WORKLOAD_COLORS["idle"]},
                text=[f"{money(w)} loaded" for w in loaded],
                textposition="outside",
                showlegend=False,
                hovertemplate="%{x}: +$%{y:.4g}/M tokens for idle capacity<extra></extra>",
            ),
            row=1,
            col=2,
        )
    # the legend goes above the subplot titles
    fig.update_layout(barmode="stack", hovermode="closest", legend={"y": 1.14}, margin={"t": 120})
    fig.update_yaxes(title_text=axis("cost", "$M"), row=1, col=1)
    fig.update_yaxes(title_text=axis("cost", "$ per million tokens"), row=1, col=2)
    fig.update_xaxes(title_text="inference service", row=1, col=2)
    title = f"Cost: {money(total)} in total, {money(per_gpu_hour, 'GPU-h')} fully loaded"
    if not known:
        title += " (capital cost n/a: a domain has no price)"
    return styled(fig, title)


def cost_trace_figure(traces: pd.DataFrame, max_points: int = MAX_POINTS) -> go.Figure:
    """Cost per day over time by use (stacked): what each workload class, failed, spare and
    idle capacity cost in each bin, in $k per day; the top of the stack is the whole factory."""
    cols = [c for c, _, _ in _COST_USES if c in traces]
    rates = traces[["time_s", "interval_s"]].copy()
    dt = traces["interval_s"].to_numpy(dtype=float)
    for c in cols:  # $k per day in each bin: a rate, so coarser bins average it exactly
        rates[c] = traces[c].to_numpy(dtype=float) / dt * DAY_S / 1e3
    series = _series(rates, cols, max_points)
    fig = go.Figure()
    for col, label, color in _COST_USES:
        if col not in traces:
            continue
        per_day = series.y(col)
        fig.add_trace(
            go.Scatter(
                x=series.x,
                y=per_day,
                name=label,
                mode="lines",
                line={"width": 0.5, "color": color, "shape": "hv"},
                stackgroup="cost",
                hovertemplate=label + ": $%{y:,.1f}k/day<extra></extra>",
            )
        )
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("cost", "$k per day"), rangemode="tozero")
    total = float(traces["cost_usd"].sum())
    days = float(traces["interval_s"].sum()) / DAY_S
    title = f"Cost over time by use ({money(total / days if days else None)} a day)"
    return _timed(fig, title, _end_s(traces))


# --------------------------------------------------------------------------- registry


def _cause_columns(traces: pd.DataFrame) -> list[tuple[str, str]]:
    """``(column, cause)`` of the trace's ``cause.<name>.domains_out`` columns."""
    out = []
    for c in traces.columns:
        parsed = parse_entity_column(str(c))
        if parsed is not None and parsed[0] is FAILURE_CAUSE:
            out.append((str(c), parsed[1]))
    return out


def reliability_figure(traces: pd.DataFrame, max_points: int = MAX_POINTS) -> go.Figure:
    """ETTR of the pre-training runs so far (``pretraining_ettr``, left axis) and the domains
    out of service by cause, failed and in repair (``cause.<name>.domains_out``, stacked, right
    axis). A long trace is drawn as means per day or week."""
    causes = _cause_columns(traces)
    cols = (["pretraining_ettr"] if "pretraining_ettr" in traces else []) + [c for c, _ in causes]
    series = _series(traces, cols, max_points)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for i, (col, cause) in enumerate(causes):
        fig.add_trace(
            go.Scatter(
                x=series.x,
                y=series.mean[col],
                # planned maintenance is drawn with the causes but named apart: not a failure
                name="planned maintenance (domains drained)"
                if cause == "maintenance"
                else f"{cause} (domains out)",
                mode="lines",
                stackgroup="out",
                line={"width": 0.5, "color": class_color(cause, i)},
                hovertemplate="%{y:,.1f} domains out<extra>" + cause + "</extra>",
            ),
            secondary_y=True,
        )
    if "pretraining_ettr" in traces:
        fig.add_trace(
            go.Scatter(
                x=series.x,
                y=series.mean["pretraining_ettr"],
                name="pre-training ETTR so far",
                mode="lines",
                line={"color": "#222", "width": 2},
                hovertemplate="ETTR %{y:.3f}<extra></extra>",
            ),
            secondary_y=False,
        )
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=axis("ETTR so far", "share"), range=[0, 1.02], secondary_y=False)
    fig.update_yaxes(title_text=axis("domains out of service", "domains"), secondary_y=True)
    return _timed(fig, f"ETTR and domains out by cause{_per_title(series)}", _end_s(traces), 420)


@dataclass(frozen=True)
class FigureSpec:
    """One report figure: ``draw`` makes it from the run tables when ``has_data`` says the run
    has what it needs."""

    id: str
    title: str
    draw: Callable[[RunTables], go.Figure]
    has_data: Callable[[RunTables], bool]


def _provisioned_it_w(t: RunTables) -> float | None:
    mw = t.summary.get("factory", {}).get("provisioned_it_power_mw")
    return float(mw) * 1e6 if mw is not None else None


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "utilization",
        "Utilization by workload",
        lambda t: utilization_figure(t.traces),
        lambda t: _has(t.traces, "time_s", "interval_s", "gpus_total", "gpus_idle"),
    ),
    FigureSpec(
        "power",
        "Power and PUE",
        lambda t: power_figure(t.traces, _provisioned_it_w(t)),
        lambda t: _has(t.traces, "time_s", "interval_s", "it_power_w", "facility_power_w"),
    ),
    FigureSpec(
        "cooling",
        "Cooling headroom",
        # per hall against its (weather-derated) capacity when the run has those columns; an
        # older run: the site's load against the scenario's capacity
        lambda t: (
            hall_cooling_figure(t.traces, t.summary)
            if _has_hall_cooling(t.traces)
            else cooling_figure(t.traces, cooling_capacity_w(t.scenario, t.summary))
        ),
        lambda t: _has(t.traces, "time_s", "interval_s", "cooling_load_w"),
    ),
    FigureSpec(
        "throttle",
        "Throttling by priority class",
        lambda t: throttle_figure(t.traces, t.summary),
        lambda t: _has(t.traces, "time_s", "interval_s") and throttled(t.traces),
    ),
    FigureSpec(
        "grid",
        "Energy price, carbon, cost and emissions",
        lambda t: grid_figure(t.traces),
        lambda t: _has(t.traces, "time_s", "interval_s", *_GRID_COLUMNS),
    ),
    FigureSpec(
        "timeline",
        "Training runs",
        lambda t: job_timeline_figure(t.jobs, t.events, _end_s(t.traces)),
        _has_training,
    ),
    FigureSpec(
        "placement",
        "Placement on the fabric",
        lambda t: placement_figure(t.fabric, t.scenario),
        lambda t: has_placement(t.fabric),
    ),
    FigureSpec(
        "uplinks",
        "Uplink load by fabric tier",
        lambda t: uplink_load_figure(t.traces, t.summary),
        lambda t: _has(t.traces, "time_s", "interval_s") and bool(_tier_columns(t.traces)),
    ),
    FigureSpec(
        "inference",
        "Inference demand, capacity and SLO",
        lambda t: inference_figure(t.traces, t.jobs),
        _has_inference,
    ),
    FigureSpec(
        "failures",
        "Failures and repairs",
        lambda t: failures_figure(t.traces, t.events),
        lambda t: _has(t.events, "event") and bool((t.events["event"] == "failure").any()),
    ),
    FigureSpec(
        "reliability",
        "ETTR and domains out by cause",
        lambda t: reliability_figure(t.traces),
        lambda t: (
            _has(t.traces, "time_s", "interval_s")
            and (
                bool(_cause_columns(t.traces))
                or bool(t.traces.get("pretraining_ettr", pd.Series()).notna().any())
            )
        ),
    ),
    FigureSpec(
        "cost",
        "Cost and cost per token",
        lambda t: cost_figure(t.traces, t.summary),
        lambda t: _has(t.traces, "energy_cost_usd", "capex_cost_usd", "gpus_total"),
    ),
    FigureSpec(
        "cost-trace",
        "Cost over time by use",
        lambda t: cost_trace_figure(t.traces),
        lambda t: (
            _has(t.traces, "cost_usd", *(c for c, _, _ in _COST_USES)) and capex_known(t.traces)
        ),
    ),
)


def figures_for(tables: RunTables) -> list[tuple[FigureSpec, go.Figure]]:
    """Every registered figure whose data is in the run, in registry order."""
    return [(spec, spec.draw(tables)) for spec in FIGURES if spec.has_data(tables)]
