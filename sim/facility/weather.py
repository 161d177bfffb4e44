"""Outdoor weather over a run: hourly dry-bulb and wet-bulb temperature (°C).

Three sources, chosen by ``facility.weather.kind``:

* ``synthetic``: the model of facility.md §2.2 for a site preset of §2.1/§9,

  ``T(d, h) = T̄ + A cos(2π(d − d*)/365) + (R(d)/2) cos(2π(h − h*)/24) + ε_d + H(d)``

  with d the day of the year (0 = 1 January), h the local hour, d* = 200, h* = 15 (§9,
  assumption); R(d) the diurnal range, moved from its January to its July value along the same
  seasonal cosine (assumption); ε_d an AR(1) daily anomaly, φ = 0.7, stationary standard
  deviation σ = 2.5 °C (assumption), constant over the day; H(d) heat waves: a Poisson number a
  year (6 [F25]) starting uniformly in the 123 days centred on d*, lasting 1 + Poisson(mean − 1)
  days (mean 4 [F25]), each day lifted to the local 85th-percentile threshold plus the mean
  intensity (+1.4 °C [F25]): by 1.04 σ + 1.4 °C over its normal (derived: 1.04 σ is the 85th
  percentile of the anomaly). Overlapping random waves do not add.
  Humidity: facility.md has no humidity normals. The dew point follows a seasonal cosine per
  site (January and July values below, assumption, except Phoenix July), held through the day
  (air keeps its moisture while it warms, so relative humidity falls in the afternoon) and
  never above the air temperature; wet-bulb by Stull (2011) [F29] from T and the relative
  humidity (Magnus formula).
* ``csv``: an hourly file, :mod:`sim.facility.weather_csv`.
* ``constant``: fixed dry- and wet-bulb temperatures.

Explicit heat waves from the scenario are added on top, hour by hour (dew point kept, so the
wet-bulb rises less than the dry-bulb). The design temperatures (the 99.6th percentile, the 0.4%
design condition of facility.md §1.4, §9) come from the weather *without* the explicit waves, so a
stress case is not designed away, and for the synthetic model from at least a full year, so they
do not depend on the run length.

All draws come from the generator passed in (the ``weather`` stream of the run's seed): the same
generator state gives the same weather.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.config.climate import ConstantWeather, CsvWeather, HeatWave, SyntheticWeather
from sim.facility.weather_csv import HourlyFile, read_weather_csv
from sim.units import DAY_S, HOUR_S, YEAR_S

__all__ = [
    "DESIGN_PERCENTILE",
    "SITES",
    "Site",
    "Weather",
    "add_heat_waves",
    "constant_weather",
    "csv_weather",
    "dew_point",
    "hours_for",
    "relative_humidity",
    "stull_wet_bulb",
    "synthetic_temperatures",
    "synthetic_weather",
    "wet_bulb",
]

#: Percentile of the hourly weather taken as the plant's design condition: the 0.4% (35 h/yr)
#: design temperature (facility.md §1.4, §9).
DESIGN_PERCENTILE = 99.6
#: Hours of synthetic weather the design temperature is taken from, at least.
_DESIGN_HOURS = int(YEAR_S // HOUR_S)
#: The 85th percentile of a standard normal: the EPA heat-wave threshold [F25] in units of σ.
_Z85 = 1.0364333894937898
#: Heat waves start in the 123 days centred on the seasonal peak (mid-May to mid-September at
#: d* = 200; assumption, the US heat-wave season [F25]).
_SEASON_HALF_DAYS = 61


@dataclass(frozen=True)
class Site:
    """Normals of a site preset (°C). ``dew_point_*``: January and July mean dew points."""

    name: str
    mean_c: float
    half_amplitude_c: float
    diurnal_range_jan_c: float
    diurnal_range_jul_c: float
    dew_point_jan_c: float
    dew_point_jul_c: float
    source: str
    peak_day: float = 200.0  # d*, ≈19 July (facility.md §2.2, §9)
    peak_hour: float = 15.0  # h*, local time (facility.md §2.2, §9)


_DEW = "dew points: typical values, assumption (no humidity normals in facility.md)"
#: Site presets, facility.md §2.1 and §9.
SITES: dict[str, Site] = {
    "abilene": Site("abilene", 18.2, 10.7, 13.8, 12.2, -3.0, 17.0, f"[F20][F21]; {_DEW}"),
    "ashburn": Site(
        "ashburn", 14.4, 12.2, 7.8, 10.0, -5.0, 19.0, f"[F22] (DCA normals as proxy); {_DEW}"
    ),
    "phoenix": Site(
        "phoenix",
        24.0,
        10.1,
        12.2,
        13.9,
        0.0,
        13.0,
        "[F23]; July dew point 13 °C derived from ~20 monsoon days (mean dew point ≥12.8 °C) in"
        " July [F23]; January dew point assumption",
    ),
    "lulea": Site("lulea", 3.5, 12.5, 8.0, 10.0, -15.0, 11.0, f"[F24] (weak); {_DEW}"),
}


@dataclass(frozen=True, eq=False)
class Weather:
    """Hourly outdoor air over a run. Value ``k`` holds over ``[times_s[k], times_s[k] +
    step_s)``; the arrays cover the whole run (their last hour contains its end)."""

    source: str
    times_s: np.ndarray  # float64, k x step_s
    dry_bulb_c: np.ndarray  # float64
    wet_bulb_c: np.ndarray  # float64
    design_dry_bulb_c: float
    design_wet_bulb_c: float
    step_s: float = HOUR_S

    def index(self, t_s: float) -> int:
        """The weather step that holds at simulation time ``t_s`` (clamped to the arrays)."""
        return min(max(int(t_s // self.step_s), 0), len(self.times_s) - 1)


def hours_for(duration_s: float) -> int:
    """Hourly steps that cover a run of ``duration_s``."""
    return max(1, math.ceil(duration_s / HOUR_S - 1e-9))


# --------------------------------------------------------------------------- humidity


def _saturation_hpa(t_c: np.ndarray) -> np.ndarray:
    # Magnus formula over water, Alduchov & Eskridge (1996) coefficients
    return 6.1094 * np.exp(17.625 * t_c / (243.04 + t_c))


def relative_humidity(t_c: np.ndarray, dew_point_c: np.ndarray) -> np.ndarray:
    """Relative humidity (%) of air at ``t_c`` with dew point ``dew_point_c`` (Magnus)."""
    t = np.asarray(t_c, dtype=float)
    td = np.minimum(np.asarray(dew_point_c, dtype=float), t)
    return 100.0 * _saturation_hpa(td) / _saturation_hpa(t)


def dew_point(t_c: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Dew point (°C) of air at ``t_c`` and relative humidity ``rh_pct`` (Magnus, inverted)."""
    t = np.asarray(t_c, dtype=float)
    g = np.log(np.clip(np.asarray(rh_pct, dtype=float), 0.1, 100.0) / 100.0) + 17.625 * t / (
        243.04 + t
    )
    return 243.04 * g / (17.625 - g)


def stull_wet_bulb(t_c: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Wet-bulb temperature (°C) from air temperature and relative humidity, Stull (2011) [F29].

    The fit is valid for RH 5-99% and T −20…50 °C; inputs are clamped to that box and the result
    is never above the air temperature (outside the box the fit would put it there)."""
    t_in = np.asarray(t_c, dtype=float)
    t = np.clip(t_in, -20.0, 50.0)
    rh = np.clip(np.asarray(rh_pct, dtype=float), 5.0, 99.0)
    tw = (
        t * np.arctan(0.151977 * np.sqrt(rh + 8.313659))
        + np.arctan(t + rh)
        - np.arctan(rh - 1.676331)
        + 0.00391838 * rh**1.5 * np.arctan(0.023101 * rh)
        - 4.686035
    )
    return np.minimum(tw, t_in)


def wet_bulb(t_c: np.ndarray, dew_point_c: np.ndarray) -> np.ndarray:
    """Wet-bulb (°C) from air temperature and dew point: Stull on the Magnus humidity."""
    return stull_wet_bulb(t_c, relative_humidity(t_c, dew_point_c))


# --------------------------------------------------------------------------- synthetic model


def synthetic_temperatures(
    site: Site,
    hours: int,
    rng: np.random.Generator,
    *,
    offset_h: int = 0,
    phi: float = 0.7,
    sigma_c: float = 2.5,
    wave_rate_per_year: float = 6.0,
    wave_mean_days: float = 4.0,
    wave_intensity_c: float = 1.4,
) -> tuple[np.ndarray, np.ndarray]:
    """Dry-bulb and dew point (°C) for ``hours`` hours from ``offset_h`` hours after 1 January
    00:00 local time (the model of this module's docstring). Draws: one normal per day for the
    anomaly, then per year a Poisson count and the starts and lengths of its heat waves."""
    t_h = offset_h + np.arange(hours, dtype=np.int64)
    day = t_h // 24
    first, last = int(day[0]), int(day[-1])
    n_days = last - first + 1
    days = np.arange(first, last + 1, dtype=float)
    season = np.cos(2 * np.pi * (days - site.peak_day) / 365.0)

    z = rng.standard_normal(n_days)
    eps = np.empty(n_days)
    eps[0] = sigma_c * z[0]  # start in the stationary distribution
    innovation = sigma_c * math.sqrt(1.0 - phi * phi)
    for k in range(1, n_days):
        eps[k] = phi * eps[k - 1] + innovation * z[k]

    lift = np.zeros(n_days)
    wave_lift = _Z85 * sigma_c + wave_intensity_c
    for year in range(first // 365, last // 365 + 1):
        n = int(rng.poisson(wave_rate_per_year))
        season_start = year * 365 + int(site.peak_day) - _SEASON_HALF_DAYS
        starts = season_start + rng.integers(0, 2 * _SEASON_HALF_DAYS + 1, size=n)
        lengths = 1 + rng.poisson(max(wave_mean_days - 1.0, 0.0), size=n)
        for s, n_d in zip(starts.tolist(), lengths.tolist(), strict=True):
            lo, hi = max(s, first) - first, min(s + n_d, last + 1) - first
            if lo < hi:
                lift[lo:hi] = wave_lift

    mean_range = 0.5 * (site.diurnal_range_jan_c + site.diurnal_range_jul_c)
    half_swing = 0.5 * (site.diurnal_range_jul_c - site.diurnal_range_jan_c)
    daily = site.mean_c + site.half_amplitude_c * season + eps + lift
    diurnal_range = mean_range + half_swing * season
    idx = day - first
    hour = (t_h % 24).astype(float)
    dry = daily[idx] + 0.5 * diurnal_range[idx] * np.cos(2 * np.pi * (hour - site.peak_hour) / 24.0)
    td_mean = 0.5 * (site.dew_point_jan_c + site.dew_point_jul_c)
    td_half = 0.5 * (site.dew_point_jul_c - site.dew_point_jan_c)
    dew = np.minimum(td_mean + td_half * season[idx], dry)
    return dry, dew


def add_heat_waves(values_c: np.ndarray, waves: Iterable[HeatWave]) -> np.ndarray:
    """``values_c`` (hourly from t = 0) with each wave's excess added over [start, start +
    length); hours are counted whole when they start inside the wave."""
    out = np.array(values_c, dtype=float)
    for w in waves:
        lo = math.ceil(w.start_s / HOUR_S - 1e-9)
        hi = math.ceil((w.start_s + w.length_s) / HOUR_S - 1e-9)
        out[max(lo, 0) : max(hi, 0)] += w.excess_c
    return out


def _design(values: np.ndarray) -> float:
    return float(np.percentile(values, DESIGN_PERCENTILE))


def _times(hours: int) -> np.ndarray:
    return np.arange(hours, dtype=float) * HOUR_S


def synthetic_weather(
    cfg: SyntheticWeather, duration_s: float, rng: np.random.Generator
) -> Weather:
    """The synthetic model for ``cfg.site`` over a run of ``duration_s``."""
    site = SITES[cfg.site]
    hours = hours_for(duration_s)
    dry, dew = synthetic_temperatures(
        site,
        max(hours, _DESIGN_HOURS),
        rng,
        offset_h=round(cfg.year_offset_s / HOUR_S),
        phi=cfg.anomaly_phi,
        sigma_c=cfg.anomaly_sigma_c,
        wave_rate_per_year=cfg.heat_wave_rate_per_s * YEAR_S,
        wave_mean_days=cfg.heat_wave_length_s / DAY_S,
        wave_intensity_c=cfg.heat_wave_intensity_c,
    )
    design_db, design_wb = _design(dry), _design(wet_bulb(dry, dew))
    run_dry = add_heat_waves(dry[:hours], cfg.heat_waves)
    return Weather(
        source=f"synthetic {site.name} ({site.source})",
        times_s=_times(hours),
        dry_bulb_c=run_dry,
        wet_bulb_c=wet_bulb(run_dry, dew[:hours]),
        design_dry_bulb_c=design_db,
        design_wet_bulb_c=design_wb,
    )


def constant_weather(cfg: ConstantWeather, duration_s: float) -> Weather:
    hours = hours_for(duration_s)
    return Weather(
        source="constant",
        times_s=_times(hours),
        dry_bulb_c=np.full(hours, cfg.dry_bulb_c),
        wet_bulb_c=np.full(hours, cfg.wet_bulb_c),
        design_dry_bulb_c=cfg.dry_bulb_c,
        design_wet_bulb_c=cfg.wet_bulb_c,
    )


def csv_weather(cfg: CsvWeather, duration_s: float, base_dir: Path | None) -> Weather:
    """Weather from ``cfg.path`` (relative to ``base_dir``, the scenario's folder). Raises
    :class:`~sim.facility.weather_csv.WeatherFileError` naming the file and line."""
    p = Path(cfg.path)
    path = p if p.is_absolute() or base_dir is None else base_dir / p
    hours = hours_for(duration_s)
    f: HourlyFile = read_weather_csv(path, shown=str(path))
    rows = f.rows_for(cfg.start, hours)
    if f.humidity_column == "wet_bulb_c":
        # no dew point to keep: an explicit heat wave raises the dry-bulb only
        wet_all = np.minimum(f.humidity, f.dry_bulb_c)
        run_dry = add_heat_waves(f.dry_bulb_c[rows], cfg.heat_waves)
        run_wet = np.minimum(wet_all[rows], run_dry)
    else:
        dew = (
            f.humidity
            if f.humidity_column == "dew_point_c"
            else dew_point(f.dry_bulb_c, f.humidity)
        )
        wet_all = wet_bulb(f.dry_bulb_c, dew)
        run_dry = add_heat_waves(f.dry_bulb_c[rows], cfg.heat_waves)
        run_wet = wet_bulb(run_dry, dew[rows])
    return Weather(
        source=f"csv {path}",
        times_s=_times(hours),
        dry_bulb_c=run_dry,
        wet_bulb_c=run_wet,
        design_dry_bulb_c=_design(f.dry_bulb_c),
        design_wet_bulb_c=_design(wet_all),
    )
