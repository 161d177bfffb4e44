"""Scenario keys for the outdoor weather and the halls' cooling: ``facility.weather`` and the
names of the site presets and cooling archetypes, with every default and its source.

Temperatures are degrees Celsius in names ending ``_c``. A scenario writes them as plain numbers
(°C) or as strings with a Celsius unit: ``"35 C"``, ``"35 °C"``, ``"35 degC"``. Celsius is read
here and not by :mod:`sim.units`: pint reads a bare ``C`` as coulomb, and a temperature is an
offset unit that the quantity grammar there does not need elsewhere. Fahrenheit is refused rather
than converted, so that a difference (``excess: 10``) can never be read with an offset.

Source keys ``[Fxx]`` are those of ``shared/reference/facility.md`` (§ numbers refer to it). The
site normals and the archetype parameters are model data with their sources in
:mod:`sim.facility.weather` and :mod:`sim.facility.cooling`; the names here must match them
(a test checks it).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from sim.config.grid import absolute_path
from sim.config.quantities import Number, PerSecond, Plain, Seconds, within
from sim.units import DAY_S, YEAR_S, short

__all__ = [
    "ARCHETYPE_NAMES",
    "DEFAULT_ARCHETYPE",
    "HYBRID_AIR_SHARE",
    "SITE_NAMES",
    "AirShare",
    "ArchetypeName",
    "Celsius",
    "CelsiusDelta",
    "ConstantWeather",
    "CsvWeather",
    "HeatWave",
    "SiteName",
    "SyntheticWeather",
    "WeatherConfig",
]

SiteName = Literal["abilene", "ashburn", "phoenix", "lulea"]
SITE_NAMES: tuple[str, ...] = ("abilene", "ashburn", "phoenix", "lulea")

ArchetypeName = Literal["dlc_w45_dry", "dlc_w32_dry", "dlc_w32_tower", "air_chiller_econ"]
ARCHETYPE_NAMES: tuple[str, ...] = (
    "dlc_w45_dry",
    "dlc_w32_dry",
    "dlc_w32_tower",
    "air_chiller_econ",
)

#: A hall's cooling archetype when the scenario does not name one, by the catalog's ``cooling``
#: of its hardware (facility.md §1.3, §8): liquid and hybrid racks on a W32 loop with dry coolers
#: (GB200 facility water is not in NVIDIA's primary documents: W32 is the reference sheet's
#: assumption); air-cooled servers in a CRAH + chiller + economizer hall; ``air_or_liquid``
#: platforms (HGX B200/B300) as air, the form the catalog names first. The catalog does not
#: record a facility-water class, so Rubin-class racks get W32 too: write
#: ``cooling: dlc_w45_dry`` for a 45 °C loop ([F13]).
DEFAULT_ARCHETYPE: dict[str, str] = {
    "liquid": "dlc_w32_dry",
    "hybrid": "dlc_w32_dry",
    "air": "air_chiller_econ",
    "air_or_liquid": "air_chiller_econ",
}

#: Share of a hybrid rack's heat that goes to room air (GB200 NVL72: liquid for GPU, CPU, NIC,
#: NVSwitch; air for the rest). The split was not found; 15% is facility.md §1.3's assumption.
HYBRID_AIR_SHARE = 0.15

_MAX_CHARS = 64
_CELSIUS = re.compile(
    r"^(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>°\s*C|C|degC|deg\s+C)?$"
)


def _celsius(v: Any) -> Any:
    """A number (°C) or a string ``"35 C"``, ``"35 °C"``, ``"35 degC"`` -> float °C."""
    if isinstance(v, bool):
        raise ValueError(f"expected a temperature in °C, got {v!r}")
    if isinstance(v, int | float):
        x = float(v)
    elif isinstance(v, str):
        text = v.strip()
        m = _CELSIUS.match(text) if len(text) <= _MAX_CHARS else None
        if m is None:
            raise ValueError(
                f"cannot read {short(v)} as a temperature: write degrees Celsius, e.g. '35 C',"
                " '35 °C', '35 degC' or 35"
            )
        x = float(m.group("num"))
    else:
        raise ValueError(f"expected a temperature in °C, got {type(v).__name__}")
    if not math.isfinite(x):
        raise ValueError(f"{short(v)} is not a finite temperature")
    return x


#: An outdoor temperature in °C; the range spans the records (−89 °C Vostok, 57 °C Death Valley).
Celsius = Annotated[
    float,
    BeforeValidator(_celsius),
    within(-90, 60, "°C", "beyond the coldest and hottest air ever measured"),
]
#: A temperature difference in K (written in °C like a temperature).
CelsiusDelta = Annotated[
    float,
    BeforeValidator(_celsius),
    within(-30, 30, "°C", "the 2021 Pacific Northwest heat wave was ~20 °C over normal highs"),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class HeatWave(_Model):
    """An explicit heat wave (a stress case): ``excess`` °C added to every hour of
    [start, start + length), on top of the model or file. Overlapping waves add up; a negative
    excess is a cold spell. Stress cases in facility.md §2.1-2.2: +4-5 °C for a month (Abilene
    July 2022, Phoenix July 2023), +10 °C for 14 days (Luleå July 2025)."""

    start_s: Annotated[
        Seconds, within(0, 100 * YEAR_S, "s", "a century is beyond any planning horizon")
    ] = Field(alias="start", description="time after the run's start")
    length_s: Annotated[
        Seconds, within(0, 366 * DAY_S, "s", "a heat wave lasts days to weeks", lo_open=True)
    ] = Field(alias="length")
    excess_c: CelsiusDelta = Field(alias="excess")


_WAVES = Field(default=(), max_length=1000, description="explicit heat waves (stress cases)")


class SyntheticWeather(_Model):
    """Hourly weather from the synthetic model of facility.md §2.2 for a site preset (§2.1):
    seasonal and daily cycles, an AR(1) daily anomaly, Poisson heat waves in the warm season,
    wet-bulb from a seasonal dew point (Stull 2011 [F29]). Drawn from the ``weather`` random
    stream of ``run.seed``."""

    kind: Literal["synthetic"]
    site: SiteName
    year_offset_s: Annotated[
        Seconds, within(0, 366 * DAY_S, "s", "a time of the year", hi_open=True)
    ] = Field(
        default=0.0,
        alias="year_offset",
        description="time of the year at the run's start; 0 d = 1 January 00:00 local time",
    )
    anomaly_phi: Annotated[
        Plain, within(0, 1, "", "an AR(1) coefficient of 1 never returns to normal", hi_open=True)
    ] = Field(
        default=0.7,
        description="day-to-day persistence of the weather anomaly (facility.md §2.2, assumption)",
    )
    anomaly_sigma_c: CelsiusDelta = Field(
        default=2.5,
        alias="anomaly_sigma",
        description="standard deviation of the daily anomaly, 2-3 °C (facility.md §2.2,"
        " assumption)",
    )
    heat_wave_rate_per_s: Annotated[
        PerSecond, within(0, 100 / YEAR_S, "1/s", "heat waves are a few a year")
    ] = Field(
        default=6 / YEAR_S,
        alias="heat_wave_rate",
        description="random heat waves per year: US 50-metro average 6/yr in the 2010s-2020s"
        " [F25]; 0 for none",
    )
    heat_wave_length_s: Annotated[
        Seconds, within(DAY_S, 90 * DAY_S, "s", "heat waves last days to weeks")
    ] = Field(default=4 * DAY_S, alias="heat_wave_length", description="mean length, ~4 d [F25]")
    heat_wave_intensity_c: CelsiusDelta = Field(
        default=1.4,
        alias="heat_wave_intensity",
        description="mean excess of heat-wave days over the local 85th-percentile threshold,"
        " +2.5 °F = +1.4 °C [F25]",
    )
    heat_waves: tuple[HeatWave, ...] = _WAVES


class CsvWeather(_Model):
    """Hourly weather from a CSV file with the header ``timestamp_utc,dry_bulb_c`` and one of
    ``dew_point_c``, ``rh_pct``, ``wet_bulb_c`` (facility.md §2.3; see
    :mod:`sim.facility.weather_csv`). ``path`` is relative to the scenario file (to the working
    folder for a scenario given as text). The run starts at the first row, or at the row of
    ``start``; a file shorter than the run is an error (never repeated: a wrap-around would put a
    seam in the weather). A run folder's ``scenario.yaml`` holds the path made absolute, so it
    loads again from there."""

    kind: Literal["csv"]
    path: Annotated[str, BeforeValidator(absolute_path)] = Field(min_length=1, max_length=1000)
    start: datetime | None = Field(
        default=None, description="UTC timestamp of the run's first hour; default: the first row"
    )
    heat_waves: tuple[HeatWave, ...] = _WAVES


class ConstantWeather(_Model):
    """The same outdoor air at every hour: for tests and for a fixed operating point."""

    kind: Literal["constant"]
    dry_bulb_c: Celsius = Field(alias="dry_bulb")
    wet_bulb_c: Celsius = Field(alias="wet_bulb")

    @field_validator("wet_bulb_c")
    @classmethod
    def _not_above_dry(cls, v: float, info: ValidationInfo) -> float:
        dry = info.data.get("dry_bulb_c")
        if dry is not None and v > dry:
            raise ValueError(
                f"the wet-bulb temperature ({v:g} °C) cannot be above the dry-bulb ({dry:g} °C)"
            )
        return v


WeatherConfig = Annotated[
    SyntheticWeather | CsvWeather | ConstantWeather, Field(discriminator="kind")
]

#: The air share of a hall (a fraction of its heat).
AirShare = Annotated[Number, within(0, 1, "", "a share of the hall's heat", hi_open=True)]
