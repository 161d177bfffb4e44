"""Power, cooling, throttling and grid figures and the power-control KPI cards, on the small
hand-made tables (4 hourly bins, one hall; see conftest.py) and a few columns changed by hand."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from sim.io import RunTables
from sim.report import figures as F
from sim.report.html import render_report

H, DAY = 3600.0, 86_400.0


def _by_name(fig: go.Figure) -> dict[str, go.Scatter]:
    return {tr.name: tr for tr in fig.data}


def _with_call(traces: pd.DataFrame) -> pd.DataFrame:
    """The small traces with a demand-response call in the third hour (cap 500 -> 350 kW) and
    the hall split in two (east 3/4, west 1/4 of the IT and facility power)."""
    it, fac = traces["site.hall1.it_power_w"], traces["site.hall1.facility_power_w"]
    return traces.drop(columns=[c for c in traces if c.startswith("site.hall1.")]).assign(
        grid_cap_w=[500e3, 500e3, 350e3, 500e3],
        **{
            "site.east.it_power_w": it * 0.75,
            "site.west.it_power_w": it * 0.25,
            "site.east.facility_power_w": fac * 0.75,
            "site.west.facility_power_w": fac * 0.25,
        },
    )


def test_power_shades_calls_and_draws_hall_facility_and_pue_in_panels(
    small_tables: Callable[..., RunTables],
) -> None:
    traces = _with_call(small_tables().traces)
    assert F.cap_dips(traces) == [(2 * H, 3 * H)]
    assert F.cap_dips(small_tables().traces) == []  # a steady cap: no call
    fig = F.power_figure(traces)
    by = _by_name(fig)
    # the cap is a step line that dips in the call, which is shaded on every panel
    np.testing.assert_allclose(by["grid cap"].y, [0.5, 0.5, 0.35, 0.5])
    assert by["grid cap"].line.shape == "hv"
    assert "demand-response call (1)" in by
    assert len(fig.layout.shapes) == 3  # one per panel
    assert fig.layout.shapes[0].x0 == pytest.approx(2 / 24)
    assert fig.layout.shapes[0].x1 == pytest.approx(3 / 24)
    assert "shaded: 1 demand-response call" in fig.layout.title.text
    # each hall's facility power in a panel of its own, PUE in the bottom one
    np.testing.assert_allclose(by["east facility"].y, [0.1875, 0.28125, 0.225, 0.15])
    assert by["east facility"].yaxis == by["west facility"].yaxis == "y2"
    assert by["PUE"].yaxis == "y3" and by["grid cap"].yaxis == "y"
    assert fig.layout.yaxis2.title.text == "hall facility (MW)"
    assert fig.layout.yaxis3.title.text == "PUE (facility / IT)"
    assert fig.layout.yaxis3.range[0] < 1.0 < 1.25 < fig.layout.yaxis3.range[1]


def test_power_of_a_long_run_draws_the_pue_spread_as_a_band(
    small_tables: Callable[..., RunTables],
) -> None:
    traces = small_tables().traces.assign(pue=[1.1, 1.2, 1.4, 1.3])
    by = _by_name(F.power_figure(traces, max_points=2))
    band = by["PUE, daily low to high"]
    np.testing.assert_allclose(by["PUE, daily low to high (low)"].y, [1.1])
    np.testing.assert_allclose(band.y, [1.4])
    assert band.fill == "tonexty" and band.yaxis == by["PUE"].yaxis == "y2"


def test_hall_cooling_heat_against_capacity_with_the_outdoor_air(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    fig = F.hall_cooling_figure(t.traces, t.summary)
    by = _by_name(fig)
    assert list(by) == [
        "outdoor dry-bulb",
        "outdoor wet-bulb",
        "heat (IT power)",
        "cooling capacity",
    ]
    np.testing.assert_allclose(by["outdoor dry-bulb"].y, [20, 25, 30, 22])
    np.testing.assert_allclose(by["heat (IT power)"].y, [0.2, 0.3, 0.24, 0.16])
    np.testing.assert_allclose(by["cooling capacity"].y, 0.4)
    assert by["heat (IT power)"].yaxis == by["cooling capacity"].yaxis == "y2"
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "outdoor air (hottest hour 30.0 °C)",
        "hall1: peak heat 75% of capacity, 0 h over",
    ]
    assert fig.layout.yaxis.title.text == "air (°C)"
    assert fig.layout.yaxis2.title.text == "heat (MW)"
    # a capacity that derates to 250 kW in the heat: the second hour is over it (counted from
    # the trace when the summary does not say)
    hot = t.traces.assign(**{"site.hall1.cooling_capacity_w": [400e3, 250e3, 400e3, 400e3]})
    fig = F.hall_cooling_figure(hot)
    assert fig.layout.annotations[1].text == "hall1: peak heat 120% of capacity, 1 h over"
    # without weather (NaN temperatures): the halls alone
    dry = t.traces.assign(outdoor_dry_bulb_c=np.nan, outdoor_wet_bulb_c=np.nan)
    fig = F.hall_cooling_figure(dry, t.summary)
    assert list(_by_name(fig)) == ["heat (IT power)", "cooling capacity"]
    # the report draws it for a run with per-hall capacity, the site-wide figure otherwise
    spec = next(s for s in F.FIGURES if s.id == "cooling")
    assert "Heat by hall" in spec.draw(t).layout.title.text
    old = dataclasses.replace(t, traces=t.traces.drop(columns=["site.hall1.cooling_capacity_w"]))
    assert "Cooling headroom" in spec.draw(old).layout.title.text


def test_hall_cooling_of_a_long_run_is_daily_with_bands(
    small_tables: Callable[..., RunTables],
) -> None:
    fig = F.hall_cooling_figure(small_tables().traces, max_points=2)
    by = _by_name(fig)
    np.testing.assert_allclose(by["heat (IT power), mean per day"].y, [0.225])
    np.testing.assert_allclose(by["heat, peak in the day"].y, [0.3])
    np.testing.assert_allclose(by["cooling capacity (lowest in the day)"].y, [0.4])
    np.testing.assert_allclose(by["dry-bulb, daily low to high"].y, [30.0])
    assert "means per day" in fig.layout.title.text


def test_throttle_clock_by_class_and_hours_lost(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    assert F.throttled(t.traces)
    assert not F.throttled(small_tables(training=False).traces)
    # hours lost from the summary: pre-a 720 s, two post-training jobs 360 s each
    lost = t.summary["power_control"]["hours_lost_to_throttle_by_class"]
    assert lost == pytest.approx({"pretraining": 0.2, "posttraining": 0.2})
    fig = F.throttle_figure(t.traces, t.summary)
    by = _by_name(fig)
    assert list(by) == ["inference", "pretraining (0.2 h lost)", "posttraining (0.2 h lost)"]
    np.testing.assert_allclose(by["pretraining (0.2 h lost)"].y, [100, 80, 100, 100])
    np.testing.assert_allclose(by["posttraining (0.2 h lost)"].y, [100, 60, 100, 100])
    np.testing.assert_allclose(by["inference"].y, 100)
    assert fig.layout.yaxis.title.text == "clock (% of full)"
    title = fig.layout.title.text
    assert "under the throttle policy" in title and "posttraining 0.2 h lost" in title
    # a loss of float residue is no loss; a call is shaded
    summary = copy.deepcopy(t.summary)
    summary["power_control"]["hours_lost_to_throttle_by_class"] = {"pretraining": 1e-16}
    fig = F.throttle_figure(_with_call(t.traces), summary)
    assert "pretraining" in _by_name(fig) and "lost" not in fig.layout.title.text
    assert "demand-response call (1)" in _by_name(fig)
    # a long run: daily means with a band down to the day's lowest clock
    by = _by_name(F.throttle_figure(t.traces, t.summary, max_points=2))
    np.testing.assert_allclose(by["posttraining, lowest in the day (low)"].y, [60.0])
    np.testing.assert_allclose(by["posttraining (0.2 h lost), mean per day"].y, [90.0])


def test_grid_price_carbon_cost_and_emissions(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    traces = t.traces.assign(energy_price_usd_per_mwh=[50.0, 50.0, 150.0, 50.0])
    traces["energy_cost_usd"] = traces["facility_energy_mwh"] * traces["energy_price_usd_per_mwh"]
    fig = F.grid_figure(traces)
    by = _by_name(fig)
    # a 4-hour run: totals per hour, as bars, against the hourly price and intensity
    cost, tco2 = by["energy cost per hour"], by["emissions per hour"]
    assert isinstance(cost, go.Bar) and isinstance(tco2, go.Bar)
    np.testing.assert_allclose(cost.y, [12.5, 18.75, 45.0, 10.0])  # 0.25 MWh x $50 ...
    np.testing.assert_allclose(tco2.y, traces["emissions_tco2"])
    np.testing.assert_allclose(by["energy price"].y, [50, 50, 150, 50])
    np.testing.assert_allclose(by["carbon intensity"].y, 400.0)
    assert by["energy price"].yaxis == "y2" and by["carbon intensity"].yaxis == "y4"
    # the level is a line of its own above the bars, not hidden in the top edge
    assert fig.layout.yaxis2.range[1] > 150 and fig.layout.yaxis.range[1] > 45
    assert fig.layout.yaxis.title.text == "cost ($ per hour)"
    assert fig.layout.yaxis3.title.text == "emissions (tCO2eq per hour)"
    title = fig.layout.title.text
    assert title.startswith("Energy cost $86.25 ($76.7/MWh on average), emissions 0.45 tCO2eq")
    assert "(400 g/kWh)" in title
    # the smoke grid's figure is in the report of every run with the columns
    assert "grid" in {s.id for s, _ in F.figures_for(t)}


def test_grid_of_a_year_is_daily_totals_and_bands() -> None:
    n = 365 * 24
    hour = np.arange(n) % 24
    price = np.where((hour >= 15) & (hour < 21), 140.0, 40.0)
    energy = np.full(n, 100.0)  # MWh per hour
    year = pd.DataFrame(
        {
            "time_s": np.arange(n) * H,
            "interval_s": H,
            "facility_energy_mwh": energy,
            "energy_price_usd_per_mwh": price,
            "energy_cost_usd": energy * price,
            "carbon_intensity_g_per_kwh": 400.0,
            "emissions_tco2": energy * 0.4,
        }
    )
    fig = F.grid_figure(year)
    by = _by_name(fig)
    cost = by["energy cost per day"]
    assert cost.mode == "lines" and len(cost.x) == 365
    np.testing.assert_allclose(cost.y, (6 * 140 + 18 * 40) * 100 / 1e3)  # $k per day
    assert fig.layout.yaxis.title.text == "cost ($k per day)"
    np.testing.assert_allclose(by["emissions per day"].y, 24 * 40.0)
    np.testing.assert_allclose(by["energy price, mean per day"].y, 65.0)
    np.testing.assert_allclose(by["energy price, daily low to high (low)"].y, 40.0)
    np.testing.assert_allclose(by["energy price, daily low to high"].y, 140.0)


def _note(page: str, label: str) -> tuple[str, str]:
    m = re.search(
        rf'<div class="label">{label}</div><div class="value">([^<]*)</div>'
        r'<div class="note">([^<]*)<',
        page,
    )
    assert m is not None, label
    return m.group(1), m.group(2)


def test_kpi_cards_of_power_control_and_emissions(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()
    page = render_report(t)
    value, note = _note(page, "power control")
    assert value == "throttle, 4 actions"
    assert note == (
        "0 h over the grid cap; 0.5 h over hall limits (hall1 0.5 h);"
        " throttle cost posttraining 0.2 h, pretraining 0.2 h;"
        " below full clock pretraining 1 h, posttraining 1 h"
    )
    value, note = _note(page, "emissions")
    assert value == f"{t.summary['energy']['emissions_tco2']:,.0f} tCO2eq"
    assert note.startswith("400 g/kWh on average; ") and note.endswith(" tokens per tCO2eq")
    # each kind of token apart, never their sum (review of issue 12)
    assert "inference output tokens per tCO2eq" in note and "pre-training tokens per" in note
    _, note = _note(page, "facility energy")
    assert note.endswith(" tokens per MWh")
    # a run folder from before these keys still renders, without the new cards
    old = dataclasses.replace(t, summary=copy.deepcopy(t.summary))
    del old.summary["power_control"], old.summary["energy"]["emissions_tco2"]
    for k in [k for k in old.summary["tokens"] if k.endswith(("_per_mwh", "_per_tco2"))]:
        del old.summary["tokens"][k]
    page = render_report(old)
    assert ">power control<" not in page and ">emissions<" not in page
    assert _note(page, "facility energy")[1].endswith(" tokens per MWh")
