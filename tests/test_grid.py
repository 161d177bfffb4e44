"""The grid as build-time data (``Plan.grid``): hourly price and carbon intensity (constant,
profile, CSV), the import cap as a step function under demand response (explicit and random), the
errors users see, and that nothing of it changes a run until the engine reads it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from engine_helpers import MINIMAL_SCENARIO

from sim.config.grid import RandomDemandResponse
from sim.config.loader import ScenarioError, load_scenario, resolved_dict
from sim.facility.grid import cap_changes, random_events
from sim.facility.grid_csv import GridFileError, read_grid_csv
from sim.rng import RandomStreams
from sim.runner import prepare, simulate
from sim.units import DAY_S, HOUR_S, YEAR_S

ROOT = Path(__file__).resolve().parents[1]
Writer = Callable[..., Path]
BASE = MINIMAL_SCENARIO
CSV = """\
# test file
timestamp_utc,price_usd_per_mwh,carbon_g_per_kwh
2025-07-07T00:00Z,10,100
2025-07-07T01:00Z,20,200
2025-07-07T02:00Z,-5,300
"""


def _plan(path: Path, *overrides: str):  # type: ignore[no-untyped-def]
    return prepare(path, overrides=overrides)[1]


def _error(path: Path, *overrides: str) -> str:
    with pytest.raises(ScenarioError) as info:
        prepare(path, overrides=overrides)
    return str(info.value)


# --------------------------------------------------------------------------- price and carbon


def test_defaults_are_the_constant_price_and_the_us_average(write_scenario: Writer) -> None:
    g = _plan(write_scenario(BASE)).grid
    assert g.step_s == HOUR_S
    assert g.price_usd_per_mwh.shape == (48,) and g.carbon_g_per_kwh.shape == (48,)
    assert (g.price_usd_per_mwh == 80.0).all()
    assert (g.carbon_g_per_kwh == 409.0).all()
    assert g.cap_changes == ((0.0, 1e6),) and g.events == ()
    assert g.index(0) == 0 and g.index(HOUR_S - 1e-6) == 0 and g.index(HOUR_S) == 1
    assert g.index(-5) == 0 and g.index(10 * DAY_S) == 47


def test_constant_and_named_carbon(write_scenario: Writer) -> None:
    p = write_scenario(BASE)
    plan = _plan(p, "costs.energy_price=$50/MWh", "costs.carbon_intensity=ercot")
    assert (plan.grid.price_usd_per_mwh == 50.0).all()
    assert plan.costs.energy_price_usd_per_mwh == 50.0
    assert (plan.grid.carbon_g_per_kwh == 377.0).all()
    assert (_plan(p, "costs.carbon_intensity=23 g/kWh").grid.carbon_g_per_kwh == 23.0).all()
    assert (_plan(p, "costs.carbon_intensity=33").grid.carbon_g_per_kwh == 33.0).all()


def test_price_profile_by_hour_and_weekday(write_scenario: Writer) -> None:
    text = BASE.replace("2 d", "7 d") + (
        "costs:\n  energy_price: {kind: profile, base: $60/MWh, peak: $140/MWh,"
        " peak_hours: [14, 20]}\n"
    )
    plan = _plan(write_scenario(text))
    price = plan.grid.price_usd_per_mwh
    assert price.shape == (168,)
    assert price[13] == 60 and price[14] == 140 and price[19] == 140 and price[20] == 60
    assert price[4 * 24 + 15] == 140  # Friday
    assert price[5 * 24 + 15] == 60 and price[6 * 24 + 15] == 60  # the weekend is off-peak
    # 5 weekdays x 6 peak hours over 168 hours
    assert plan.costs.energy_price_usd_per_mwh == pytest.approx((30 * 140 + 138 * 60) / 168)
    weekday = text.replace("[14, 20]}", "[14, 20], weekend: weekday}")
    assert _plan(write_scenario(weekday)).grid.price_usd_per_mwh[5 * 24 + 15] == 140


def test_carbon_profile_wraps_past_midnight(write_scenario: Writer) -> None:
    text = BASE + (
        "costs:\n  carbon_intensity: {kind: profile, base: 200, peak: '450 g/kWh',"
        " peak_hours: [22, 3]}\n"
    )
    c = _plan(write_scenario(text)).grid.carbon_g_per_kwh
    assert [c[h] for h in (21, 22, 23, 24, 26, 27)] == [200, 450, 450, 450, 450, 200]


def test_csv_price_and_carbon(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("2 d", "150 min"))
    (path.parent / "g.csv").write_text(CSV)
    plan = _plan(
        path,
        "costs.energy_price={kind: csv, path: g.csv}",
        "costs.carbon_intensity={kind: csv, path: g.csv}",
    )
    assert plan.grid.price_usd_per_mwh.tolist() == [10, 20, -5]
    assert plan.grid.carbon_g_per_kwh.tolist() == [100, 200, 300]
    # the last hour counts for the half of it inside the run
    assert plan.costs.energy_price_usd_per_mwh == pytest.approx((10 + 20 - 2.5) / 2.5)
    with pytest.raises(ScenarioError, match="the run needs 3 hours of carbon_g_per_kwh"):
        prepare(
            path,
            overrides=(
                "costs.carbon_intensity={kind: csv, path: g.csv, start: 2025-07-07T01:00Z}",
            ),
        )
    later = path.parent / "later.yaml"
    later.write_text(BASE.replace("2 d", "2 h"))
    shifted = "costs.carbon_intensity={kind: csv, path: g.csv, start: 2025-07-07T01:00Z}"
    assert _plan(later, shifted).grid.carbon_g_per_kwh.tolist() == [200, 300]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timestamp_utc,price\n", "g.csv:1: unknown column 'price'; expected timestamp_utc and"),
        ("timestamp_utc\n", "g.csv:1: the header has no value column"),
        (
            "timestamp_utc,price_usd_per_mwh\n2025-01-01T00:00Z,1\n2025-01-01T02:00Z,2\n",
            "g.csv:3: rows must be one hour apart: 1 hours are missing after 2025-01-01T00:00Z"
            " (line 2)",
        ),
        (
            "timestamp_utc,carbon_g_per_kwh\n2025-01-01T00:00Z,3000\n",
            "g.csv:2: carbon_g_per_kwh '3000' is not a number in [0, 2000]",
        ),
        (
            "# c\ntimestamp_utc,price_usd_per_mwh\n2025-01-01T00:00Z,x\n",
            "g.csv:3: price_usd_per_mwh 'x' is not a number in [-1000, 100000]",
        ),
        ("timestamp_utc,price_usd_per_mwh\nnoon,1\n", "g.csv:2: 'noon' is not an ISO 8601"),
        ("timestamp_utc,price_usd_per_mwh\n", "g.csv: no data rows after the header"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "g.csv").write_text(text)
    with pytest.raises(GridFileError) as info:
        read_grid_csv(tmp_path / "g.csv", shown="g.csv")
    assert str(info.value).startswith(message)


def test_csv_errors_in_a_scenario(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    (path.parent / "p.csv").write_text("timestamp_utc,price_usd_per_mwh\n2025-01-01T00:00Z,1\n")
    assert _error(path, "costs.carbon_intensity={kind: csv, path: p.csv}") == (
        f"--set: costs.carbon_intensity.path: {path.parent / 'p.csv'}: costs.carbon_intensity"
        " needs a carbon_g_per_kwh column; the file has price_usd_per_mwh"
    )
    assert _error(path, "costs.energy_price={kind: csv, path: none.csv}") == (
        f"--set: costs.energy_price.path: {path.parent / 'none.csv'}: grid file not found"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("costs.energy_price={kind: tariff}", "expected a price ('$80/MWh'), {kind: profile"),
        ("costs.carbon_intensity=texas", "cannot read 'texas' as a carbon intensity"),
        ("costs.carbon_intensity=2500", "2500 g/kWh is outside the plausible range [0 g/kWh,"),
        (
            "costs.energy_price={kind: profile, base: 60, peak: 140, peak_hours: [9, 9]}",
            "the window [9, 9) is empty or the whole day",
        ),
        (
            "costs.carbon_intensity={kind: profile, base: 60, peak: 140}",
            "costs.carbon_intensity.peak_hours: required key is missing",
        ),
        ("facility.demand_response=5", "expected a list of events [{start, length, shed, notice}]"),
    ],
)
def test_key_errors(write_scenario: Writer, override: str, message: str) -> None:
    assert message in _error(write_scenario(BASE), override)


# --------------------------------------------------------------------------- demand response


def test_calls_make_the_cap_a_step_function(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    dr = (
        "facility.demand_response=[{start: 30 h, length: 2 h, shed: 300 kW},"
        " {start: 10 h, length: 4 h, shed: 1 MW, notice: 30 min},"
        " {start: 14 h, length: 1 h, shed: 100 kW}, {start: 47 h, length: 5 h, shed: 1 kW}]"
    )
    g = _plan(path, dr).grid
    assert g.cap_changes == (
        (0.0, 1e6),
        (10 * HOUR_S, 0.0),
        (14 * HOUR_S, 0.9e6),  # the next call starts as the previous one ends
        (15 * HOUR_S, 1e6),
        (30 * HOUR_S, 0.7e6),
        (32 * HOUR_S, 1e6),
        (47 * HOUR_S, 1e6 - 1e3),  # ends after the run: no restore entry
    )
    assert [e.start_s / HOUR_S for e in g.events] == [10, 14, 30, 47]
    assert [e.notified_at_s / HOUR_S for e in g.events] == [9.5, 12, 28, 45]
    assert g.events[0].end_s == 14 * HOUR_S
    assert g.cap_at(10 * HOUR_S - 1) == 1e6 and g.cap_at(10 * HOUR_S) == 0.0
    assert g.cap_at(47.5 * HOUR_S) == 1e6 - 1e3
    early = _plan(path, "facility.demand_response=[{start: 0 h, length: 1 h, shed: 1 kW}]").grid
    assert early.cap_changes == ((0.0, 1e6 - 1e3), (HOUR_S, 1e6))
    assert early.events[0].notified_at_s == 0.0


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        (
            "[{start: 1 d, length: 13 h, shed: 100 kW}, {start: 36 h, length: 1 h, shed: 1 kW}]",
            "facility.demand_response[1].start: the call at 1.5 d overlaps call 0 (1 d for 13 h):"
            " calls may not overlap; make them one call with the shed you mean",
        ),
        (
            "[{start: 2 d, length: 1 h, shed: 1 kW}]",
            "facility.demand_response[0].start: the call starts at 2 d, after the run ends (2 d):"
            " it would change nothing",
        ),
        (
            "[{start: 1 d, length: 1 h, shed: 1.5 MW}]",
            "facility.demand_response[0].shed: a shed of 1.5 MW is more than grid_power (1 MW):"
            " the import cap cannot go below 0",
        ),
        (
            "[{start: 1 d, length: 8 d, shed: 1 kW}]",
            "facility.demand_response[0].length: 8 d is outside the plausible range (0 s, 7 d]",
        ),
    ],
)
def test_bad_calls_are_refused(write_scenario: Writer, calls: str, message: str) -> None:
    assert "--set: " + message in _error(write_scenario(BASE), f"facility.demand_response={calls}")


def test_random_calls_are_deterministic_by_seed(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("2 d", "365 d"))
    rand = "facility.demand_response={kind: random}"
    a = _plan(path, rand, "run.seed=3").grid
    b = _plan(path, rand, "run.seed=3").grid
    c = _plan(path, rand, "run.seed=4").grid
    assert a.events == b.events and a.cap_changes == b.cap_changes
    assert a.events != c.events
    for e in a.events:
        hour = (e.start_s % DAY_S) / HOUR_S
        assert 14 <= hour < 20 and e.start_s % 60 == 0
        assert e.shed_w == pytest.approx(0.3e6) and e.notice_s == 2 * HOUR_S
    starts = [e.start_s for e in a.events]
    assert starts == sorted(starts)
    assert all(x.end_s <= y.start_s for x, y in zip(a.events, a.events[1:], strict=False))


def test_random_calls_have_the_right_mean_count_and_length() -> None:
    cfg = RandomDemandResponse.model_validate({"kind": "random"})
    rng = RandomStreams(0)["grid"]
    years = 100
    counts, lengths = [], []
    for _ in range(years):
        ev = random_events(cfg, 1e9, YEAR_S, rng)
        counts.append(len(ev))
        lengths += [e.end_s - e.start_s for e in ev]
    # Poisson(15) per year: the mean of 100 years is 15 +- 0.39 (1 sigma)
    assert np.mean(counts) == pytest.approx(15, abs=1.5)
    assert np.mean(lengths) == pytest.approx(2 * HOUR_S, rel=0.1)
    assert min(lengths) >= HOUR_S - 60


def test_cap_changes_merge_equal_steps() -> None:
    from sim.facility.grid import GridEvent

    events = [GridEvent(10.0, 20.0, 5.0, 0.0), GridEvent(20.0, 30.0, 5.0, 0.0)]
    assert cap_changes(100.0, events, 100.0) == ((0.0, 100.0), (10.0, 95.0), (30.0, 100.0))


# --------------------------------------------------------------------------- compatibility


def test_resolved_scenario_has_absolute_csv_paths(tmp_path: Path) -> None:
    loaded = load_scenario(ROOT / "scenarios" / "grid" / "smoke_grid.yaml")
    data = resolved_dict(loaded.scenario)
    path = data["costs"]["energy_price"]["path"]
    assert Path(path).is_absolute() and Path(path).exists()
    again = tmp_path / "elsewhere" / "scenario.yaml"
    again.parent.mkdir()
    again.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = prepare(again)[1]
    assert plan.grid.price_usd_per_mwh.tolist()[:2] == [27.0, 27.0]
    assert plan.grid.cap_changes == ((0.0, 3e6), (39 * HOUR_S, 2.4e6), (42 * HOUR_S, 3e6))


def test_weather_csv_path_is_written_absolute(write_scenario: Writer, tmp_path: Path) -> None:
    path = write_scenario(BASE)
    text = (ROOT / "scenarios" / "weather" / "abilene_synthetic.csv").read_text()
    (path.parent / "w.csv").write_text(text)
    loaded = load_scenario(
        path, ["facility.pue=weather", "facility.weather={kind: csv, path: w.csv}"]
    )
    assert resolved_dict(loaded.scenario)["facility"]["weather"]["path"] == str(
        path.parent / "w.csv"
    )


def test_explicit_defaults_run_exactly_like_the_smoke_scenario() -> None:
    """Nothing of the grid is read by the engine yet: writing the defaults out (and a price
    profile whose mean is the default price) changes no table."""
    smoke = ROOT / "scenarios" / "smoke.yaml"
    _, plain = prepare(smoke)
    _, explicit = prepare(
        smoke,
        overrides=(
            "costs.energy_price=$80/MWh",
            "costs.carbon_intensity=us",
            "facility.demand_response=[]",
        ),
    )
    a, _ = simulate(plain)
    b, _ = simulate(explicit)
    import pandas as pd

    for name in ("traces", "events", "jobs"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.summary == b.summary
