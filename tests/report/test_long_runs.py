"""Year-long runs stay readable: daily means (with bands where the spread matters) instead of
8,760 hourly points, counted interruptions, and time axes that line up between figures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from sim.io import RunTables
from sim.report import figures as F
from sim.report.style import TIME_SERIES_MARGIN

DAY, H = 86_400.0, 3600.0
N_DAYS = 365


def _year() -> pd.DataFrame:
    """A year of hourly samples with a daily cycle: 1,000 GPUs, inference 100 at night to 300
    at noon (mean 200), the rest idle or training; IT power and cooling load follow."""
    n = N_DAYS * 24
    hour = np.arange(n) % 24
    cycle = -np.cos(2 * np.pi * hour / 24)  # -1 at midnight, +1 at noon, mean 0
    inf = 200.0 + 100.0 * cycle
    failed = np.where(hour == 0, 24.0, 0.0)  # one hour a day: a mean of 1 GPU
    pre = np.full(n, 500.0)
    demand = 1e6 * (2.0 + cycle)  # 1M to 3M tokens/s, mean 2M
    it = 1e8 + 1e7 * cycle
    return pd.DataFrame(
        {
            "time_s": np.arange(n) * H,
            "interval_s": H,
            "gpus_total": 1000.0,
            "gpus_failed": failed,
            "gpus_pretraining": pre,
            "gpus_posttraining": 0.0,
            "gpus_inference": inf,
            "gpus_idle": 1000.0 - pre - inf - failed,
            "utilization": (pre + inf) / 1000.0,
            "it_power_w": it,
            "facility_power_w": it * 1.2,
            "cooling_load_w": it,
            "service.svc.domains": inf / 100.0,
            "service.svc.demand_tokens_per_s": demand,
            "service.svc.served_tokens_per_s": demand,
            "service.svc.capacity_tokens_per_s": demand * 1.25,
        }
    )


def _by_name(fig: go.Figure) -> dict[str, go.Scatter]:
    return {tr.name: tr for tr in fig.data}


def test_utilization_of_a_year_is_daily_means() -> None:
    fig = F.utilization_figure(_year())
    assert all(len(tr.x) == N_DAYS for tr in fig.data)
    np.testing.assert_allclose(fig.data[0].x[:3], [0.0, 1.0, 2.0])
    by = _by_name(fig)
    np.testing.assert_allclose(by["inference"].y, 20.0)  # the daily cycle averages out
    np.testing.assert_allclose(by["failed"].y, 0.1)  # 1 GPU of 1,000 on average
    np.testing.assert_allclose(sum(np.asarray(tr.y) for tr in fig.data), 100.0)
    assert "means per day" in fig.layout.title.text


def test_short_runs_keep_their_samples(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    for fig in (
        F.utilization_figure(t.traces),
        F.cooling_figure(t.traces, 400e3),
        F.inference_figure(t.traces, t.jobs),
    ):
        assert len(fig.data[0].x) == 4, fig.layout.title.text
        assert "means per" not in fig.layout.title.text
    # a month of hourly samples is still drawn hour by hour (its daily cycle is readable)
    month = _year().iloc[: 30 * 24]
    assert len(F.utilization_figure(month).data[0].x) == 30 * 24


def test_cooling_of_a_year_is_daily_with_the_peak_as_a_band() -> None:
    fig = F.cooling_figure(_year(), capacity_w=1.5e8)
    by = _by_name(fig)
    load, peak = by["cooling load"], by["cooling load, peak in the day"]
    assert len(load.x) == N_DAYS
    np.testing.assert_allclose(load.y, 100.0, rtol=1e-9)  # MW, the daily mean
    np.testing.assert_allclose(peak.y, 110.0)  # the noon peak
    assert peak.fill == "tonexty"
    names = list(by)
    assert names.index("cooling load, peak in the day") == names.index("cooling load") + 1
    # the headroom of the hour closest to the limit, each day, and the title's minimum
    np.testing.assert_allclose(by["headroom (lowest in the day)"].y, 100 * (1 - 110 / 150))
    assert "minimum 26.7%" in fig.layout.title.text


def test_inference_of_a_year_is_daily_means_with_low_to_high_bands() -> None:
    t = _year()
    jobs = pd.DataFrame(
        {
            "name": ["svc"],
            "workload": ["inference"],
            "gpus": [72.0],
            "rate_per_s": [1.0],
            "slo_attainment": [1.0],
        }
    )
    fig = F.inference_figure(t, jobs)
    by = _by_name(fig)
    assert len(by["demand, mean per day"].x) == N_DAYS
    np.testing.assert_allclose(by["demand, mean per day"].y, 2e6)
    np.testing.assert_allclose(by["capacity, mean per day"].y, 2.5e6)
    # each band: an invisible lower edge (daily low), then the filled upper edge (daily high)
    low, high = by["demand, daily low to high (low)"], by["demand, daily low to high"]
    np.testing.assert_allclose(low.y, 1e6)
    np.testing.assert_allclose(high.y, 3e6)
    assert high.fill == "tonexty" and low.showlegend is False
    np.testing.assert_allclose(by["capacity, daily low to high"].y, 3.75e6)
    assert "means per day" in fig.layout.title.text


def test_failed_gpus_of_a_year_are_daily_means() -> None:
    t = _year()
    events = pd.DataFrame(
        {"time_s": [DAY * 10.5, DAY * 11.5], "event": ["failure", "repair"], "subject": ""}
    )
    fig = F.failures_figure(t, events)
    failed = _by_name(fig)["failed GPUs, mean per day"]
    assert len(failed.x) == N_DAYS
    np.testing.assert_allclose(failed.y, 1.0)
    assert fig.layout.yaxis2.tickmode == "auto"


def test_many_interruptions_are_counted_per_day_in_a_panel(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    end_s = 100 * DAY
    jobs = t.jobs.copy()
    pre = jobs["name"] == "pre-a"
    jobs.loc[pre, ["submit_s", "first_start_s"]] = 5 * DAY
    jobs.loc[pre, ["state", "finish_s"]] = ["finished", 60 * DAY]
    # 3 interruptions a day on days 10 to 59
    times = np.repeat(np.arange(10, 60) * DAY, 3) + 3600.0
    events = pd.DataFrame(
        {
            "time_s": times,
            "event": "interrupted",
            "subject": "pre-a",
            "workload": "pretraining",
            "domain": 0,
            "value": 1.0,
            "detail": "",
        }
    )
    fig = F.job_timeline_figure(jobs, events, end_s)
    counts = _by_name(fig)["pre-a interruptions"]
    assert counts.mode == "lines" and counts.yaxis == "y2"  # the panel under the bars
    y = np.asarray(counts.y, dtype=float)
    assert len(y) == 100 and np.nansum(y) == len(times)
    np.testing.assert_allclose(y[10:60], 3.0)
    np.testing.assert_allclose(y[5:10], 0.0)  # in the factory, not interrupted
    assert np.isnan(y[:5]).all() and np.isnan(y[60:]).all()  # not in the factory: a gap
    assert fig.layout.yaxis2.title.text == "events (per day)"
    assert not any(getattr(tr, "mode", None) == "markers" for tr in fig.data)
    # a few: markers on the run's bar, per day, with their count
    few = F.job_timeline_figure(jobs, events[events["time_s"] < 12 * DAY], end_s)
    marks = _by_name(few)["interruptions"]
    assert marks.mode == "markers" and list(marks.customdata) == [3, 3]
    np.testing.assert_allclose(marks.x, [10.5, 11.5])


def test_time_series_figures_share_legend_place_margins_and_time_axis(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    timed = [(s, f) for s, f in F.figures_for(t) if s.id != "cost"]
    assert {s.id for s, _ in timed} == {
        "utilization",
        "power",
        "cooling",
        "throttle",
        "grid",
        "timeline",
        "inference",
        "failures",
        "reliability",
        "cost-trace",
    }
    end_days = 4 / 24
    for spec, fig in timed:
        legend, margin = fig.layout.legend, fig.layout.margin
        assert (legend.orientation, legend.yref, legend.yanchor) == ("h", "container", "bottom")
        assert (margin.l, margin.r) == (TIME_SERIES_MARGIN["l"], TIME_SERIES_MARGIN["r"])
        for key in fig.layout:
            if key.startswith("xaxis"):
                assert fig.layout[key].range == pytest.approx((0.0, end_days)), spec.id
                assert fig.layout[key].domain == (0.0, 1.0), spec.id
            if key.startswith("yaxis") and fig.layout[key].side == "right":
                assert fig.layout[key].automargin is False, spec.id  # cannot widen the margin
