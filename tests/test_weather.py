"""Weather: the synthetic model against its site normals (facility.md §2.1-2.2), heat waves,
determinism, Stull's wet-bulb, the CSV file (round trip and every error pinned), the
``facility.weather`` keys and their interplay with ``facility.pue`` (messages pinned)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import MINIMAL_SCENARIO

from sim.config.climate import SITE_NAMES, ConstantWeather, CsvWeather, SyntheticWeather
from sim.config.loader import ScenarioError
from sim.facility.weather import (
    SITES,
    add_heat_waves,
    csv_weather,
    stull_wet_bulb,
    synthetic_temperatures,
    synthetic_weather,
    wet_bulb,
)
from sim.facility.weather_csv import WeatherFileError, format_weather_csv, read_weather_csv
from sim.rng import RandomStreams
from sim.runner import prepare
from sim.units import DAY_S, HOUR_S

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "scenarios" / "weather" / "abilene_synthetic.csv"
YEAR_H = 8760


def _years(site: str, years: int, seed: int = 0, **kw: float) -> tuple[np.ndarray, np.ndarray]:
    return synthetic_temperatures(SITES[site], years * YEAR_H, np.random.default_rng(seed), **kw)


# --------------------------------------------------------------------------- synthetic model


def test_site_names_match_the_schema() -> None:
    assert tuple(SITES) == SITE_NAMES


@pytest.mark.parametrize("site", SITE_NAMES)
def test_mean_and_seasonal_amplitude_over_years(site: str) -> None:
    """Without random heat waves, ten years reproduce T̄ within 0.5 °C and the seasonal
    half-amplitude A within 0.5 °C (a least-squares fit of the daily means on the annual cosine;
    the AR(1) anomaly with σ = 2.5 °C leaves ~0.1 °C of noise in each)."""
    s = SITES[site]
    dry, _ = _years(site, 10, wave_rate_per_year=0.0)
    daily = dry.reshape(-1, 24).mean(axis=1)
    d = np.arange(daily.size)
    basis = np.column_stack(
        [np.ones(d.size), np.cos(2 * np.pi * (d - s.peak_day) / 365), np.sin(2 * np.pi * d / 365)]
    )
    mean, amp, _ = np.linalg.lstsq(basis, daily, rcond=None)[0]
    assert mean == pytest.approx(s.mean_c, abs=0.5)
    assert amp == pytest.approx(s.half_amplitude_c, abs=0.5)


def test_random_heat_waves_warm_the_year_a_little() -> None:
    """6 waves/yr of ~4 d, lifted 1.04 x 2.5 + 1.4 = 4.0 °C: ~+0.26 °C on the annual mean."""
    with_waves, _ = _years("abilene", 10)
    without, _ = _years("abilene", 10, wave_rate_per_year=0.0)
    assert with_waves.mean() - without.mean() == pytest.approx(6 * 4 * 4.0 / 365, abs=0.1)


@pytest.mark.parametrize("site", SITE_NAMES)
def test_diurnal_range_in_january_and_july(site: str) -> None:
    """The daily range (max − min over the day) is the site's January / July range within
    0.2 °C (the anomaly and waves are constant over a day; R moves slowly with the season)."""
    s = SITES[site]
    dry, _ = _years(site, 1)
    days = dry.reshape(-1, 24)
    ranges = days.max(axis=1) - days.min(axis=1)
    assert ranges[:31].mean() == pytest.approx(s.diurnal_range_jan_c, abs=0.2)
    assert ranges[181:212].mean() == pytest.approx(s.diurnal_range_jul_c, abs=0.2)
    assert np.argmax(days[200]) == 15  # the daily peak at h* = 15 local time


def test_explicit_heat_waves_raise_the_given_hours_by_the_excess() -> None:
    cfg = SyntheticWeather.model_validate(
        {
            "kind": "synthetic",
            "site": "lulea",
            "heat_waves": [{"start": "180 d", "length": "7 d", "excess": "10 C"}],
        }
    )
    plain = cfg.model_copy(update={"heat_waves": ()})
    hot = synthetic_weather(cfg, 365 * DAY_S, np.random.default_rng(3))
    base = synthetic_weather(plain, 365 * DAY_S, np.random.default_rng(3))
    diff = hot.dry_bulb_c - base.dry_bulb_c
    wave = slice(180 * 24, 187 * 24)
    assert diff[wave] == pytest.approx(10.0)
    assert np.count_nonzero(diff) == 7 * 24
    # the dew point is kept, so the wet-bulb rises, but less than the dry-bulb
    dwet = hot.wet_bulb_c[wave] - base.wet_bulb_c[wave]
    assert (dwet > 0).all() and (dwet < 10.0).all()
    # the design temperature ignores the stress case
    assert hot.design_dry_bulb_c == base.design_dry_bulb_c


def test_overlapping_explicit_waves_add() -> None:
    cfg = SyntheticWeather.model_validate(
        {
            "kind": "synthetic",
            "site": "ashburn",
            "heat_waves": [
                {"start": "1 h", "length": "2 h", "excess": 3},
                {"start": "2 h", "length": "2 h", "excess": "-1 degC"},
            ],
        }
    )
    out = add_heat_waves(np.zeros(6), cfg.heat_waves)
    assert out.tolist() == [0.0, 3.0, 2.0, -1.0, 0.0, 0.0]


def test_same_seed_same_weather_other_seed_other_weather() -> None:
    cfg = SyntheticWeather(kind="synthetic", site="phoenix")
    a = synthetic_weather(cfg, 30 * DAY_S, RandomStreams(7)["weather"])
    b = synthetic_weather(cfg, 30 * DAY_S, RandomStreams(7)["weather"])
    c = synthetic_weather(cfg, 30 * DAY_S, RandomStreams(8)["weather"])
    assert np.array_equal(a.dry_bulb_c, b.dry_bulb_c)
    assert np.array_equal(a.wet_bulb_c, b.wet_bulb_c)
    assert not np.array_equal(a.dry_bulb_c, c.dry_bulb_c)


def test_a_run_shorter_than_a_year_is_a_prefix_with_a_yearly_design() -> None:
    cfg = SyntheticWeather(kind="synthetic", site="abilene")
    short = synthetic_weather(cfg, 3 * DAY_S + 1, RandomStreams(1)["weather"])
    year = synthetic_weather(cfg, 365 * DAY_S, RandomStreams(1)["weather"])
    assert short.times_s.tolist() == [k * HOUR_S for k in range(73)]  # covers the run's end
    assert np.array_equal(short.dry_bulb_c, year.dry_bulb_c[:73])
    assert short.design_dry_bulb_c == year.design_dry_bulb_c
    # Abilene's 0.4% design dry-bulb: ~38 °C (the normal July high is 35.0 °C [F21])
    assert 36.0 < year.design_dry_bulb_c < 41.0
    assert short.index(0.0) == 0 and short.index(3600.0) == 1 and short.index(1e12) == 72


def test_year_offset_starts_the_run_later_in_the_year() -> None:
    cfg = SyntheticWeather.model_validate(
        {"kind": "synthetic", "site": "abilene", "year_offset": "181 d"}
    )
    july = synthetic_weather(cfg, 10 * DAY_S, RandomStreams(0)["weather"])
    assert july.dry_bulb_c.mean() > 22.0  # a July mean is ~29 °C; January's ~8 °C


# --------------------------------------------------------------------------- wet-bulb


def test_stull_check_value() -> None:
    assert float(stull_wet_bulb(35.0, 40.0)) == pytest.approx(24.5, abs=0.05)  # Stull (2011)


def test_wet_bulb_is_never_above_dry_bulb() -> None:
    t = np.array([-35.0, -10.0, 0.0, 20.0, 45.0])
    assert (wet_bulb(t, t + 5.0) <= t).all()
    assert float(wet_bulb(np.array(20.0), np.array(20.0))) == pytest.approx(20.0, abs=0.3)


# --------------------------------------------------------------------------- CSV


def test_the_sample_file_reads_and_is_labelled_synthetic() -> None:
    f = read_weather_csv(SAMPLE)
    assert f.hours == YEAR_H and f.humidity_column == "dew_point_c"
    assert f.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert "SYNTHETIC" in SAMPLE.read_text()[:200]


@pytest.mark.parametrize("column", ["dew_point_c", "rh_pct", "wet_bulb_c"])
def test_csv_round_trip(tmp_path: Path, column: str) -> None:
    dry, dew = _years("ashburn", 1)
    dry, dew = dry[:500], dew[:500]
    wet = wet_bulb(dry, dew)
    humidity = {"dew_point_c": dew, "rh_pct": 100 * np.ones(500) * 0.5, "wet_bulb_c": wet}
    path = tmp_path / "w.csv"
    start = datetime(2024, 7, 1, 0, 0, tzinfo=UTC)
    path.write_text(format_weather_csv(start, dry, column, humidity[column], "made here", 3))
    cfg = CsvWeather(kind="csv", path="w.csv")
    w = csv_weather(cfg, 100 * HOUR_S, tmp_path)
    assert w.dry_bulb_c == pytest.approx(dry[:100], abs=5e-4)
    if column == "dew_point_c":
        assert w.wet_bulb_c == pytest.approx(wet[:100], abs=5e-3)
    elif column == "wet_bulb_c":
        assert w.wet_bulb_c == pytest.approx(wet[:100], abs=5e-4)
    else:
        assert w.wet_bulb_c == pytest.approx(stull_wet_bulb(dry[:100], 50.0), abs=5e-3)
    later = csv_weather(
        cfg.model_copy(update={"start": datetime(2024, 7, 2, 1, tzinfo=UTC)}), 10 * HOUR_S, tmp_path
    )
    assert later.dry_bulb_c == pytest.approx(dry[25:35], abs=5e-4)


GOOD = "timestamp_utc,dry_bulb_c,rh_pct\n2025-01-01T00:00Z,1,50\n2025-01-01T01:00Z,2,50\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ":? no header line"),
        ("# only a comment\n", ":? no header line"),
        ("timestamp_utc,dry_bulb_c,rh_pct\n", ":? no data rows after the header"),
        ("timestamp,dry_bulb_c,rh_pct\n", ":1: unknown column 'timestamp'; expected timestamp_utc"),
        ("timestamp_utc,dry_bulb_c\n", ":1: the header has 0 humidity columns"),
        ("timestamp_utc,rh_pct\n", ":1: the header has no dry_bulb_c column"),
        ("timestamp_utc,dry_bulb_c,rh_pct,wet_bulb_c\n", ":1: the header has 2 humidity columns"),
        ("timestamp_utc,dry_bulb_c,rh_pct,rh_pct\n", ":1: column rh_pct appears twice"),
        (GOOD + "2025-01-01T02:00Z,3\n", ":4: expected 3 values .*, got 2"),
        (GOOD + "yesterday,3,50\n", ":4: 'yesterday' is not an ISO 8601 timestamp"),
        (GOOD + "2025-01-01T02:00Z,warm,50\n", ":4: dry_bulb_c 'warm' is not a number in"),
        (GOOD + "2025-01-01T02:00Z,nan,50\n", ":4: dry_bulb_c 'nan' is not a number"),
        (GOOD + "2025-01-01T02:00Z,3,120\n", r":4: rh_pct '120' is not a number in \[0, 100\]"),
        (GOOD + "2025-01-01T01:00Z,3,50\n", ":4: timestamp 2025-01-01T01:00Z is not after"),
        (GOOD + "2025-01-01T00:30Z,3,50\n", ":4: timestamp 2025-01-01T00:30Z is not after"),
        (GOOD + "2025-01-01T05:00Z,3,50\n", ":4: rows must be one hour apart: 3 hours are missing"),
        (GOOD + "2025-01-01T01:30Z,3,50\n", ":4: rows must be one hour apart: .* is 30 min after"),
    ],
)
def test_csv_errors_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "w.csv"
    path.write_text(text)
    with pytest.raises(WeatherFileError, match="^" + re.escape(str(path)) + message):
        read_weather_csv(path)


def test_csv_file_errors(tmp_path: Path) -> None:
    with pytest.raises(WeatherFileError, match=r"nope\.csv: weather file not found"):
        read_weather_csv(tmp_path / "nope.csv")
    with pytest.raises(WeatherFileError, match=": is not a regular file"):
        read_weather_csv(tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(WeatherFileError, match=r"bin\.csv: not UTF-8 text"):
        read_weather_csv(tmp_path / "bin.csv")


def test_csv_shorter_than_the_run_and_a_start_outside_it(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text(GOOD)
    cfg = CsvWeather(kind="csv", path="w.csv")
    with pytest.raises(
        WeatherFileError, match="the run needs 3 hours of weather but the file has 2"
    ):
        csv_weather(cfg, 3 * HOUR_S, tmp_path)
    late = cfg.model_copy(update={"start": datetime(2025, 1, 1, 5, tzinfo=UTC)})
    with pytest.raises(
        WeatherFileError,
        match=re.escape(
            "start 2025-01-01T05:00Z is not a row of the file (it covers 2025-01-01T00:00Z to"
            " 2025-01-01T01:00Z)"
        ),
    ):
        csv_weather(late, HOUR_S, tmp_path)


# --------------------------------------------------------------------------- scenario keys

BASE = MINIMAL_SCENARIO
Writer = Callable[..., Path]


def _error(path: Path, *overrides: str) -> str:
    with pytest.raises(ScenarioError) as info:
        prepare(path, overrides=overrides)
    return str(info.value)


def test_a_scenario_reads_its_csv_relative_to_its_folder(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    (path.parent / "weather").mkdir()
    (path.parent / "weather" / "a.csv").write_text(SAMPLE.read_text())
    _, plan = prepare(
        path,
        overrides=("facility.pue=weather", "facility.weather={kind: csv, path: weather/a.csv}"),
    )
    w = plan.facility.weather
    assert w is not None and w.dry_bulb_c.shape == (48,)
    assert w.dry_bulb_c == pytest.approx(read_weather_csv(SAMPLE).dry_bulb_c[:48])


def test_weather_mode_plan(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    _, plan = prepare(
        path,
        overrides=("facility.pue=weather", "facility.weather={kind: synthetic, site: abilene}"),
    )
    fac = plan.facility
    assert fac.pue_model == "weather" and fac.weather is not None
    assert len(fac.hall_cooling) == len(plan.halls) == 1
    assert fac.pue == pytest.approx(fac.hall_cooling[0].design_pue())
    _, again = prepare(
        path,
        overrides=("facility.pue=weather", "facility.weather={kind: synthetic, site: abilene}"),
    )
    assert again.facility.weather is not None
    assert np.array_equal(fac.weather.dry_bulb_c, again.facility.weather.dry_bulb_c)


def test_constant_pue_has_no_weather(write_scenario: Writer) -> None:
    _, plan = prepare(write_scenario(BASE))
    assert plan.facility.pue == 1.2 and plan.facility.pue_model == "constant"
    assert plan.facility.weather is None and plan.facility.hall_cooling == ()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("facility.weather={kind: synthetic, site: abilene}",),
            "facility.weather: weather drives the PUE only with facility.pue: weather (the PUE"
            " is the constant 1.2 here, so it would change nothing)",
        ),
        (
            ("facility.halls[0].cooling=dlc_w45_dry",),
            "facility.halls[0].cooling: cooling is used only with facility.pue: weather",
        ),
        (
            ("facility.halls[0].design_ambient=35 C",),
            "facility.halls[0].design_ambient: design_ambient is used only with facility.pue",
        ),
        (("facility.pue=weather",), "facility.pue: pue: weather needs facility.weather"),
        (("facility.pue=sunny",), "facility.pue: expected a number in [1, 3] or 'weather'"),
        (
            ("facility.pue=weather", "facility.weather={kind: rain}"),
            "facility.weather: kind: expected 'synthetic', 'csv' or 'constant', got 'rain'",
        ),
        (
            ("facility.pue=weather", "facility.weather={kind: synthetic, site: paris}"),
            "facility.weather.site: expected 'abilene', 'ashburn', 'phoenix' or 'lulea', got"
            " 'paris'",
        ),
        (
            ("facility.pue=weather", "facility.weather={kind: synthetic}"),
            "facility.weather.site: required key is missing",
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: constant, dry_bulb: 20 F, wet_bulb: 2}",
            ),
            "facility.weather.dry_bulb: cannot read '20 F' as a temperature: write degrees Celsius",
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: constant, dry_bulb: 70, wet_bulb: 2}",
            ),
            "facility.weather.dry_bulb: 70 °C is outside the plausible range [-90 °C, 60 °C]",
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: constant, dry_bulb: 20, wet_bulb: 21}",
            ),
            "facility.weather.wet_bulb: the wet-bulb temperature (21 °C) cannot be above the"
            " dry-bulb (20 °C)",
        ),
        (
            ("facility.pue=weather", "facility.weather={kind: csv, path: none.csv}"),
            "facility.weather.path: ",  # then the CSV's own message, with its path
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: synthetic, site: lulea, heat_waves: [{start: 3 d,"
                " length: 1 d, excess: 5}]}",
            ),
            "facility.weather.heat_waves[0].start: the heat wave starts at 3 d, after the run"
            " ends (2 d): it would change nothing",
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: synthetic, site: lulea, heat_waves: [{start: 1 d,"
                " length: 1 d, excess: 50}]}",
            ),
            "facility.weather.heat_waves[0].excess: 50 °C is outside the plausible range",
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: synthetic, site: lulea, heat_waves: [{start: 1 d,"
                " length: 1, excess: 5}]}",
            ),
            "facility.weather.heat_waves[0].length: 1 has no unit",
        ),
        (
            (
                "facility.pue=weather",
                "facility.weather={kind: constant, dry_bulb: 58, wet_bulb: 2}",
            ),
            "facility.weather: the design dry-bulb temperature 58.0 °C (the 99.6th percentile of"
            " the weather) is not below the 55 °C at which dlc_w32_dry rejects heat",
        ),
    ],
)
def test_weather_key_errors(
    write_scenario: Writer, overrides: tuple[str, ...], message: str
) -> None:
    assert ("--set: " + message) in _error(write_scenario(BASE), *overrides)


def test_csv_error_in_a_scenario_names_the_csv_line(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    (path.parent / "w.csv").write_text(GOOD + "2025-01-01T03:00Z,3,50\n")
    msg = _error(path, "facility.pue=weather", "facility.weather={kind: csv, path: w.csv}")
    assert msg == (
        f"--set: facility.weather.path: {path.parent / 'w.csv'}:4: rows must be one hour apart:"
        " 1 hours are missing after 2025-01-01T01:00Z (line 3)"
    )


def test_weather_written_in_the_file_is_blamed_on_its_line(write_scenario: Writer) -> None:
    text = BASE.replace(
        "  grid_power: 1 MW\n",
        "  grid_power: 1 MW\n  weather: {kind: constant, dry_bulb: 20, wet_bulb: 15}\n",
    )
    path = write_scenario(text)
    assert _error(path).startswith(f"{path}:6: facility.weather: weather drives the PUE only")


@pytest.mark.parametrize("text", ["35 C", "35 °C", "35degC", "35 deg C", 35, "3.5e1 C", "35"])
def test_celsius_spellings(text: str | int) -> None:
    cfg = ConstantWeather.model_validate({"kind": "constant", "dry_bulb": text, "wet_bulb": 20})
    assert cfg.dry_bulb_c == 35.0
