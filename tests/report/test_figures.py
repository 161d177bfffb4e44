"""Figure functions on small hand-made tables: traces, axes (units in titles), predicates."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from sim.catalog.hardware import catalog
from sim.io import RunTables
from sim.report import figures as F
from sim.report.kpis import training_run_days
from sim.report.style import (
    GENERATION_COLORS,
    axis,
    duration,
    fmt,
    generation_color,
    hall_color,
    money,
    plural,
    si,
)

UNIT = re.compile(r"\(.+\)$")


def _names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def _titles(fig: go.Figure, which: str) -> list[str]:
    """Every non-empty axis title of kind 'x' or 'y' in the figure's layout."""
    out = []
    for key in fig.layout:
        if key.startswith(f"{which}axis") and fig.layout[key].title.text:
            out.append(fig.layout[key].title.text)
    return out


def _all_axes_have_units(fig: go.Figure) -> None:
    titles = _titles(fig, "x") + _titles(fig, "y")
    assert titles
    for t in titles:
        if t in ("run", "inference service"):  # categorical axes: no unit
            continue
        assert UNIT.search(t), f"axis title without a unit: {t!r}"


def test_utilization_stacks_every_state_to_100_percent(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    fig = F.utilization_figure(t.traces)
    # failed GPUs at the bottom: the edge of their thin band is their own count
    assert _names(fig) == ["failed", "pre-training", "post-training", "inference", "idle"]
    assert all(tr.stackgroup == "gpus" for tr in fig.data)
    np.testing.assert_allclose(sum(np.asarray(tr.y) for tr in fig.data), 100.0)
    np.testing.assert_allclose(fig.data[0].y, [0.0, 0.0, 100 / 3, 0.0])
    np.testing.assert_allclose(fig.data[1].y, [100 / 3, 100 / 3, 100 / 3, 0.0])
    assert fig.layout.yaxis.title.text == "share of installed GPUs (%)"
    assert fig.layout.xaxis.title.text == "time (days)"
    np.testing.assert_allclose(fig.data[0].x, np.arange(4) / 24)
    assert "mean" in fig.layout.title.text
    _all_axes_have_units(fig)


def test_power_stacks_halls_and_overhead_against_the_caps(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    fig = F.power_figure(t.traces, provisioned_it_w=400e3)
    assert _names(fig) == [
        "hall1 IT",
        "overhead (cooling, losses)",
        "facility power",
        "grid cap",
        "provisioned IT",
        "PUE",
    ]
    hall, overhead, facility, cap = fig.data[:4]
    # the hall's IT power and the overhead on top of it add up to the facility power
    assert hall.stackgroup == overhead.stackgroup == "power"
    np.testing.assert_allclose(hall.y, [0.2, 0.3, 0.24, 0.16])
    np.testing.assert_allclose(overhead.y, [0.05, 0.075, 0.06, 0.04])
    np.testing.assert_allclose(np.add(hall.y, overhead.y), facility.y)
    np.testing.assert_allclose(cap.y, 0.5)
    assert hall.fillcolor == hall_color(0)
    assert fig.layout.yaxis.title.text == "power (MW)"
    assert fig.layout.yaxis2.title.text == "PUE (facility / IT)"
    assert fig.data[-1].yaxis == "y2"
    assert "average PUE 1.25" in fig.layout.title.text
    _all_axes_have_units(fig)
    # without a provisioned figure, no dotted line
    assert "provisioned IT" not in _names(F.power_figure(t.traces))


def test_power_of_two_halls_and_a_run_without_hall_columns(
    small_tables: Callable[..., RunTables],
) -> None:
    traces = small_tables().traces
    split = traces.drop(columns=["site.hall1.it_power_w"]).assign(
        **{"site.east.it_power_w": traces["it_power_w"] * 0.75},
        **{"site.west.it_power_w": traces["it_power_w"] * 0.25},
    )
    fig = F.power_figure(split)
    assert _names(fig)[:3] == ["east IT", "west IT", "overhead (cooling, losses)"]
    assert fig.data[0].fillcolor != fig.data[1].fillcolor
    np.testing.assert_allclose(fig.data[1].y, [0.05, 0.075, 0.06, 0.04])
    # an older run folder without per-hall columns: the site's IT power as one area
    bare = F.power_figure(traces.drop(columns=["site.hall1.it_power_w"]))
    assert _names(bare)[:2] == ["IT power", "overhead (cooling, losses)"]
    np.testing.assert_allclose(bare.data[0].y, [0.2, 0.3, 0.24, 0.16])


def test_power_of_a_long_run_is_binned_with_the_peak_as_a_band(
    small_tables: Callable[..., RunTables],
) -> None:
    # 4 hourly bins drawn with at most 2 points: means per day (one bin), energy kept
    t = small_tables()
    fig = F.power_figure(t.traces, max_points=2)
    names = _names(fig)
    assert "facility power, peak in the day" in names
    assert "means per day" in fig.layout.title.text
    by = dict(zip(names, fig.data, strict=True))
    assert by["hall1 IT"].x == (0.0,)
    np.testing.assert_allclose(by["hall1 IT"].y, [0.225])  # mean of 0.2, 0.3, 0.24, 0.16
    np.testing.assert_allclose(by["facility power"].y, [0.225 * 1.25])
    peak = by["facility power, peak in the day"]
    np.testing.assert_allclose(peak.y, [0.3 * 1.25])
    assert peak.fill == "tonexty"  # a band down to the mean facility power drawn before it
    assert names.index("facility power") == names.index(peak.name) - 1
    np.testing.assert_allclose(by["PUE"].y, [1.25])
    # a year of hourly bins: daily means, 365 points
    year = pd.DataFrame(
        {
            "time_s": np.arange(8760) * 3600.0,
            "interval_s": 3600.0,
            "it_power_w": 1e8,
            "site.a.it_power_w": 1e8,
            "facility_power_w": 1.2e8,
            "grid_cap_w": 2e8,
        }
    )
    fig = F.power_figure(year)
    assert len(fig.data[0].x) == 365 and "means per day" in fig.layout.title.text
    np.testing.assert_allclose(fig.data[0].y, 100.0)


def test_cooling_headroom_against_capacity(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    cap = F.cooling_capacity_w(t.scenario, t.summary)
    assert cap == pytest.approx(400e3)  # no cooling_capacity: the hall's IT capacity
    fig = F.cooling_figure(t.traces, cap)
    assert _names(fig) == ["cooling load", "heat-rejection capacity", "headroom"]
    np.testing.assert_allclose(fig.data[2].y, [50.0, 25.0, 40.0, 60.0])
    assert "minimum 25.0%" in fig.layout.title.text
    assert fig.layout.yaxis.title.text == "heat (MW)"
    _all_axes_have_units(fig)
    # a weather-dependent capacity trace wins over the constant
    traces = t.traces.assign(cooling_capacity_w=600e3)
    np.testing.assert_allclose(F.cooling_figure(traces, cap).data[1].y, 0.6)
    # unknown capacity: the load alone
    bare = F.cooling_figure(t.traces, None)
    assert _names(bare) == ["cooling load"]
    assert "not modelled" in bare.layout.title.text


def test_job_timeline_bars_and_interruptions(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    fig = F.job_timeline_figure(t.jobs, t.events, end_s=4 * 3600.0)
    assert _names(fig) == ["waiting", "pre-training", "post-training", "interruptions"]
    waiting, pre, post, marks = fig.data
    assert list(waiting.y) == ["pre-a", "rl#1", "rl#2"]
    # the unfinished pre-training run is drawn to the end of the run, hatched
    assert pre.base[0] == 0.0 and pre.x[0] == pytest.approx(4 / 24)
    assert pre.marker.pattern.shape[0] == "/"
    assert post.x == pytest.approx((1 / 24, 1 / 24))
    assert list(marks.y) == ["pre-a"] and list(marks.customdata) == [1]
    assert fig.layout.xaxis.title.text == "time (days)"
    _all_axes_have_units(fig)
    # too many post-training jobs: only the pre-training runs, and the title says why
    many = small_tables(n_posttraining=5)
    fig = F.job_timeline_figure(many.jobs, many.events, 4 * 3600.0, max_posttraining=3)
    assert list(fig.data[0].y) == ["pre-a"]
    assert "5 post-training jobs are not drawn" in fig.layout.title.text


def test_inference_demand_served_capacity_and_slo(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    fig = F.inference_figure(t.traces, t.jobs)
    assert _names(fig) == ["demand", "served", "capacity"]
    np.testing.assert_allclose(fig.data[0].y, [1000, 2000, 3000, 1000])
    np.testing.assert_allclose(fig.data[2].y, 2500.0)  # 1 domain x 2,500 tokens/s
    assert fig.layout.annotations[0].text == "svc: SLO attainment 85.7%"
    assert fig.layout.yaxis.title.text == "output (tokens/s)"
    _all_axes_have_units(fig)


def test_failures_per_day_and_failed_gpus(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    fig = F.failures_figure(t.traces, t.events)
    assert _names(fig) == ["failures", "repairs", "job interruptions", "failed GPUs"]
    # a 4-hour run is binned per hour
    assert list(fig.data[0].y) == [0, 0, 1, 0]
    assert list(fig.data[1].y) == [0, 0, 0, 1]
    assert fig.layout.yaxis.title.text == "events (per hour)"
    assert fig.layout.yaxis2.title.text == "failed (GPUs)"
    assert "(1 failure, " in fig.layout.title.text
    # the right axis has round ticks of its own, not ones synchronised with the left axis
    assert fig.layout.yaxis2.tickmode == "auto"
    _all_axes_have_units(fig)


def test_cost_breakdown_and_cost_per_token(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    fig = F.cost_figure(t.traces, t.summary)
    names = _names(fig)
    assert names[:3] == ["capital: compute", "capital: network", "capital: facility"]
    assert {"energy", "pre-training", "inference", "idle"} <= set(names)
    # both breakdowns add up to the same total
    bars = [tr for tr in fig.data if tr.xaxis == "x"]
    by_kind = sum(tr.y[0] for tr in bars if tr.y[0] is not None)
    by_use = sum(tr.y[1] for tr in bars if tr.y[1] is not None)
    assert by_kind == pytest.approx(by_use)
    assert by_kind == pytest.approx(t.summary["cost"]["total_usd"] / 1e6)
    used, idle = (tr for tr in fig.data if tr.xaxis == "x2")
    assert list(used.x) == ["svc"]
    svc = t.summary["inference_services"][0]
    assert used.y[0] == pytest.approx(svc["cost_per_million_tokens_usd"])
    assert used.y[0] + idle.y[0] == pytest.approx(svc["cost_per_million_tokens_with_idle_usd"])
    assert fig.layout.yaxis.title.text == "cost ($M)"
    assert fig.layout.yaxis2.title.text == "cost ($ per million tokens)"
    _all_axes_have_units(fig)


def test_cost_with_unknown_capital_is_not_a_smaller_number(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables(capex_known=False)
    fig = F.cost_figure(t.traces, t.summary)
    assert not any(n.startswith("capital") for n in _names(fig))
    assert "energy" in _names(fig)
    assert "n/a" in fig.layout.title.text
    assert fig.data[-1].y == (None,)


def test_predicates_leave_out_figures_without_data(small_tables: Callable[..., RunTables]) -> None:
    full = {spec.id for spec, _ in F.figures_for(small_tables(fabric=True))}
    assert full == {s.id for s in F.FIGURES}
    # without a fabric: every figure but the fabric's
    ids = {spec.id for spec, _ in F.figures_for(small_tables())}
    assert ids == {s.id for s in F.FIGURES} - {"placement", "uplinks"}
    bare = small_tables(failures=False, inference=False, training=False)
    ids = {spec.id for spec, _ in F.figures_for(bare)}
    # no training: nothing throttled
    assert ids == {"utilization", "power", "cooling", "grid", "cost", "cost-trace"}


def test_registry_is_well_formed() -> None:
    ids = [s.id for s in F.FIGURES]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", i) for i in ids)
    assert all(s.title for s in F.FIGURES)


def test_style_helpers() -> None:
    assert axis("power", "MW") == "power (MW)"
    assert fmt(None) == fmt(float("nan")) == "n/a"
    assert fmt(0.1234, ".1%") == "12.3%"
    assert money(1.43e5) == "$143k" and money(5.41e7) == "$54.1M" and money(None) == "n/a"
    assert si(5.32e13) == "53.2T" and si(float("inf")) == "n/a"
    # durations in the unit that fits: a mean wait of 0.0021 h is seconds
    assert duration(0.0021) == "7.6 s" and duration(0.018) == "1.1 min"
    assert duration(0.5) == "30 min" and duration(5.25) == "5.2 h" and duration(30) == "30 h"
    assert duration(84) == "3.5 d" and duration(0) == "0 s" and duration(None) == "n/a"
    assert plural(1, "post-training stream") == "1 post-training stream"
    assert plural(2, "run") == "2 runs" and plural(1234, "failure") == "1,234 failures"
    assert plural(0, "analysis", "analyses") == "0 analyses"
    # every catalog generation has its colour, and the colours are distinct
    assert set(catalog()) <= set(GENERATION_COLORS)
    assert len(set(GENERATION_COLORS.values())) == len(GENERATION_COLORS)
    assert generation_color("h100_sxm") == GENERATION_COLORS["h100_sxm"]
    a, b = generation_color("x", ["x", "y"]), generation_color("y", ["x", "y"])
    assert a != b and a not in GENERATION_COLORS.values()


def test_training_run_days_finished_and_projected(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    name, days, projected = training_run_days(t)
    # a quarter of the tokens in 4 hours: 16 hours in all, projected
    assert (name, projected) == ("pre-a", True)
    assert days == pytest.approx(16 / 24)
    assert training_run_days(small_tables(training=False)) == ("", None, False)


def test_failures_over_a_long_run_are_lines(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    day = 86_400.0
    traces = t.traces.iloc[[0]].assign(time_s=0.0, interval_s=100 * day)
    events = t.events.assign(time_s=t.events["time_s"] * 200)  # spread over the 100 days
    fig = F.failures_figure(traces, events)
    assert [type(tr).__name__ for tr in fig.data[:3]] == ["Scatter"] * 3
    assert len(fig.data[0].y) == 100 and sum(fig.data[0].y) == 1
    assert fig.layout.yaxis.title.text == "events (per day)"
