"""The report of a request-level serving run (``aifactory serve-sim``): one self-contained page.

Pure functions of tables: ``requests`` (one row per request, :func:`sim.serving.metrics.
requests_table`), ``levels`` (one row per time bin, :func:`sim.serving.metrics.levels_table`) and
the ``summary`` dict. Figures: the latency CDFs (TTFT, TPOT, end-to-end) with the targets drawn,
throughput against arrivals over time, the queue and the running batch, and the KV-cache
occupancy. Time axes are in minutes since the start of the run.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.report.html import figure_section, html_page
from sim.report.style import SERIES_COLORS, axis, fmt, latency, styled, time_series_styled

__all__ = ["has_targets", "latency_cdf_figure", "levels_figure", "render_serving_report"]

#: Most points drawn per CDF line (quantiles): the shape survives, the page stays small.
CDF_POINTS = 400
_COLORS = {"ttft_s": "#1e88e5", "tpot_s": "#43a047", "e2e_s": "#8e24aa"}
_NAMES = {"ttft_s": "time to first token", "tpot_s": "time per output token", "e2e_s": "end to end"}


def _cdf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.zeros(0), np.zeros(0)
    q = np.linspace(0.0, 1.0, min(CDF_POINTS, x.size))
    return np.quantile(x, q), q


def latency_cdf_figure(requests: pd.DataFrame, summary: dict[str, Any]) -> go.Figure:
    """Cumulative distributions of TTFT, TPOT and end-to-end latency (ms / s), log x axes."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[_NAMES[k] for k in _COLORS])
    slo = summary.get("slo") or {}
    for col, key in enumerate(_COLORS, start=1):
        scale, unit = (1e3, "ms") if key == "tpot_s" else (1.0, "s")
        xs, q = _cdf(requests[key].to_numpy(dtype=np.float64) * scale)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=q,
                mode="lines",
                name=_NAMES[key],
                line={"color": _COLORS[key]},
                hovertemplate=f"%{{x:.4g}} {unit}: %{{y:.1%}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        target = slo.get(key)
        if target is not None:
            fig.add_vline(
                x=target * scale,
                line={"color": SERIES_COLORS.get("cap", "#e53935"), "dash": "dash"},
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=axis("latency", unit), type="log", row=1, col=col)
    fig.update_yaxes(tickformat=".0%")
    fig.update_yaxes(title_text=axis("share of requests"), row=1, col=1)
    styled(fig, "Latency distributions (dashed: p99 targets)", height=420)
    fig.update_layout(showlegend=False, hovermode="closest")
    return fig


def levels_figure(levels: pd.DataFrame) -> go.Figure:
    """Throughput against arrivals, the queue and the batch, KV occupancy, over time."""
    minutes = levels["time_s"].to_numpy(dtype=np.float64) / 60.0
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=["throughput", "requests waiting and running", "KV cache"],
    )
    fig.add_trace(
        go.Scatter(
            x=minutes, y=levels["output_tokens_per_s"], name="output tokens/s", mode="lines"
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=minutes, y=levels["waiting"], name="waiting", mode="lines"), row=2, col=1
    )
    fig.add_trace(
        go.Scatter(x=minutes, y=levels["running"], name="running", mode="lines"), row=2, col=1
    )
    fig.add_trace(
        go.Scatter(x=minutes, y=levels["kv_occupancy"], name="KV occupancy", mode="lines"),
        row=3,
        col=1,
    )
    fig.update_yaxes(title_text=axis("tokens/s"), row=1, col=1)
    fig.update_yaxes(title_text=axis("requests"), row=2, col=1)
    fig.update_yaxes(title_text=axis("share of capacity"), tickformat=".0%", row=3, col=1)
    fig.update_xaxes(title_text=axis("time", "min"), row=3, col=1)
    return time_series_styled(fig, "Throughput, queue and KV cache over time", height=640)


def _card(label: str, value: str, note: str = "") -> str:
    return (
        f'<div class="kpi"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div>'
        f'<div class="note">{html.escape(note)}</div></div>'
    )


def has_targets(slo: dict[str, Any]) -> bool:
    """Whether a serve-sim summary's ``slo`` has a latency target (without one, every request
    "meets" them: its attainment says nothing and is shown n/a)."""
    return slo.get("ttft_s") is not None or slo.get("tpot_s") is not None


def _ms(x: Any) -> str:
    return latency(x)


def render_serving_report(
    requests: pd.DataFrame, levels: pd.DataFrame, summary: dict[str, Any]
) -> str:
    """The whole page as a string (no I/O)."""
    r = summary["requests"]
    th = summary["throughput"]
    slo = summary["slo"]
    cards = [
        _card(
            "requests",
            f"{r['served']:,} served",
            f"{r['arrived']:,} arrived, {r['dropped']:,} dropped, {r['queued']:,} queued at the"
            f" end; {r['preempted']:,} preempted",
        ),
        _card(
            "throughput (completed requests)",
            f"{fmt(th['output_tokens_per_s'], ',.0f')} tok/s",
            "output tokens of the requests completed in the run;"
            f" {fmt(th['requests_per_s'], ',.3g')} req/s"
            + (
                f"; {fmt(th['generated_tokens_per_s'], ',.0f')} tok/s generated (in flight too)"
                if th.get("generated_tokens_per_s") is not None
                else ""
            )
            + (
                f"; {fmt(th['output_tokens_per_s_per_gpu'], ',.0f')} tok/s per GPU"
                if th.get("output_tokens_per_s_per_gpu")
                else ""
            ),
        ),
        _card(
            "TTFT p50 / p99",
            f"{_ms(summary['ttft_s']['p50'])} / {_ms(summary['ttft_s']['p99'])}",
            f"target {_ms(slo['ttft_s'])}" if slo.get("ttft_s") else "no target",
        ),
        _card(
            "TPOT p50 / p99",
            f"{_ms(summary['tpot_s']['p50'])} / {_ms(summary['tpot_s']['p99'])}",
            f"target {_ms(slo['tpot_s'])}" if slo.get("tpot_s") else "no target",
        ),
        _card(
            "SLO attainment",
            fmt(slo.get("attainment"), ".1%") if has_targets(slo) else "n/a",
            "share of settled requests within both targets"
            if has_targets(slo)
            else "the service has no latency targets",
        ),
        _card(
            "KV cache",
            f"{fmt(summary['kv_cache']['mean_occupancy'], '.0%')} mean",
            f"peak {fmt(summary['kv_cache']['max_occupancy'], '.0%')} of"
            f" {summary['kv_cache']['capacity_tokens']:,} tokens ({summary['engine']['kv_cache']})",
        ),
        _card(
            "prompt cache",
            fmt(summary["prompt_cache"]["hit_rate"], ".1%"),
            "share of prompt tokens whose prefill was skipped",
        ),
    ]
    svc = summary["service"]
    meta = (
        f"service {svc['name']}: {svc['model']} {svc['precision']} on {svc['hardware']},"
        f" TP{svc['tp']} x EP{svc['ep']} per replica; {summary['arrivals']};"
        f" {summary['duration_s'] / 60:,.0f} min simulated, seed {summary['seed']}"
    )
    body = (
        "<header>\n"
        f"<h1>{html.escape(summary['scenario'])}: serving {html.escape(svc['name'])}</h1>\n"
        f'<p class="meta">{html.escape(meta)}</p>\n</header>\n'
        f'<div class="kpis">{"".join(cards)}</div>\n'
        + figure_section("latency", "Latency", latency_cdf_figure(requests, summary))
        + figure_section("levels", "Over time", levels_figure(levels))
    )
    return html_page(f"{summary['scenario']}: serving {svc['name']}", body)
