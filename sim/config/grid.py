"""Scenario keys for the grid: the energy price and carbon intensity over the run
(``costs.energy_price``, ``costs.carbon_intensity``) and demand-response events
(``facility.demand_response``), with every default and its source.

Each is turned into hourly arrays or a step function at build time (:mod:`sim.facility.grid`,
``Plan.grid``): the price sets the energy cost of each hour, the carbon intensity its emissions,
and demand response lowers the grid import cap the power controller must keep the facility under.

Source keys ``[Fxx]`` are those of ``shared/reference/facility.md`` (§ numbers refer to it),
``[Sxx]`` those of ``shared/reference/hardware.md``.

Conventions. Simulation time 0 is midnight at the start of a Monday, local time (as for the
inference demand profile), so hour ``h`` of day ``d`` is ``t = d x 1 d + h x 1 h`` and days 5 and 6
of each week are the weekend. Carbon intensity is life-cycle gCO2eq per kWh drawn from the grid,
written as a plain number (``377``) or with its unit (``"377 g/kWh"``, ``"377 gCO2/kWh"``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.config.quantities import (
    Count,
    PerSecond,
    Plain,
    Seconds,
    UsdPerMWh,
    Watts,
    within,
)
from sim.units import DAY_S, HOUR_S, YEAR_S, short

__all__ = [
    "CARBON_G_PER_KWH",
    "CarbonIntensity",
    "CarbonProfile",
    "DemandResponse",
    "DemandResponseEvent",
    "EnergyPrice",
    "GridCsv",
    "GridName",
    "PriceProfile",
    "RandomDemandResponse",
    "absolute_path",
]

GridName = Literal[
    "us", "ercot", "pjm", "caiso", "miso", "spp", "nyiso", "tva", "bpa", "sweden", "norway"
]
#: Annual 2024 averages of life-cycle carbon intensity, gCO2eq/kWh, Electricity Maps as packaged
#: by co2.js (facility.md §6.3, [F65]); ``us`` is the US average.
CARBON_G_PER_KWH: dict[str, float] = {
    "us": 409.0,
    "ercot": 377.0,
    "pjm": 403.0,
    "caiso": 229.0,
    "miso": 487.0,
    "spp": 451.0,
    "nyiso": 302.0,
    "tva": 380.0,
    "bpa": 109.0,
    "sweden": 23.0,
    "norway": 33.0,
}

_PRICE_WHY = "20 times ERCOT's $5,000/MWh price cap [F62]"
#: A price level of a profile: averages are not negative.
PriceLevel = Annotated[UsdPerMWh, within(0, 100_000, "", _PRICE_WHY)]
_CARBON_WHY = "2,000 g/kWh is twice a coal plant's life-cycle emissions"
_CARBON = re.compile(
    r"^(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:g|gCO2|gCO2e|gCO2eq)\s*/\s*kWh$"
)


def _g_per_kwh(v: Any) -> Any:
    """A number (g/kWh) or ``"377 g/kWh"`` -> float."""
    if isinstance(v, bool):
        raise ValueError(f"expected a carbon intensity in g/kWh, got {v!r}")
    if isinstance(v, str):
        m = _CARBON.match(v.strip()) if len(v) <= 64 else None
        if m is None:
            raise ValueError(
                f"cannot read {short(v)} as a carbon intensity: write gCO2eq per kWh, e.g. 377,"
                f" '377 g/kWh', or a grid name ({', '.join(CARBON_G_PER_KWH)})"
            )
        v = float(m.group("num"))
    if isinstance(v, int | float) and not math.isfinite(float(v)):
        raise ValueError(f"{short(v)} is not a finite carbon intensity")
    return v


#: A carbon intensity in gCO2eq/kWh.
GramsPerKwh = Annotated[float, BeforeValidator(_g_per_kwh), within(0, 2000, "g/kWh", _CARBON_WHY)]
#: An hour of the day, the start or end of a window.
Hour = Annotated[Count, within(0, 24, "", "an hour of the day")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def _check_window(hours: tuple[int, int]) -> tuple[int, int]:
    if hours[0] % 24 == hours[1] % 24:
        raise ValueError(
            f"the window [{hours[0]}, {hours[1]}) is empty or the whole day: give [start, end)"
            " hours with start != end (start > end wraps past midnight)"
        )
    return hours


class PriceProfile(_Model):
    """A time-of-day price: ``peak`` from ``peak_hours[0]`` to ``peak_hours[1]`` (local hours,
    end excluded; start > end wraps past midnight) on weekdays, ``base`` otherwise. Levels for
    reference: PJM wholesale $77.78/MWh (Q1 2025) to $136.53/MWh (Q1 2026) (hardware.md §6,
    [S70], weak); ERCOT North day-ahead $27.33/MWh (2024), $55.50 (2023) [F63]; US industrial
    retail $80.6/MWh (2023) [S68]. No default levels: a site's tariff is the user's to give."""

    kind: Literal["profile"]
    base_usd_per_mwh: PriceLevel = Field(alias="base", description="off-peak price")
    peak_usd_per_mwh: PriceLevel = Field(alias="peak", description="price in peak hours")
    peak_hours: tuple[Hour, Hour] = Field(
        default=(15, 21),
        description="[start, end) local hours of the weekday peak; 15-21 (assumption) spans"
        " ERCOT's 4CP peaks (3:00-5:30 pm, [F60] weak), CAISO's 6 pm premium [F64] and ERCOT's"
        " most costly hour after sunset (8 pm, 20 Aug 2024, [F63])",
    )
    weekend: Literal["base", "weekday"] = Field(
        default="base",
        description="'base': Saturday and Sunday at the base price all day (wholesale on-peak"
        " blocks are weekdays only, assumption); 'weekday': weekends follow the weekday shape",
    )

    @field_validator("peak_hours")
    @classmethod
    def _window(cls, v: tuple[int, int]) -> tuple[int, int]:
        return _check_window(v)


class CarbonProfile(_Model):
    """A time-of-day carbon intensity: ``peak`` in ``peak_hours`` (local, end excluded; start >
    end wraps past midnight) every day, ``base`` otherwise. Published hourly curves for ERCOT and
    PJM were not found (facility.md §6.3, §8); in CAISO gas supplies ~15% of load at 1 pm in
    spring and 60-70% at 6 pm in winter ([F66], weak), so evenings are the dirty hours there.
    No defaults: use the annual average (a constant or a grid name) when the shape is unknown."""

    kind: Literal["profile"]
    base_g_per_kwh: GramsPerKwh = Field(alias="base", description="outside the peak hours")
    peak_g_per_kwh: GramsPerKwh = Field(alias="peak", description="in the peak hours")
    peak_hours: tuple[Hour, Hour] = Field(description="[start, end) local hours, every day")

    @field_validator("peak_hours")
    @classmethod
    def _window(cls, v: tuple[int, int]) -> tuple[int, int]:
        return _check_window(v)


def absolute_path(v: Any, info: ValidationInfo) -> Any:
    """A file path relative to the scenario's folder, made absolute when the loader passes that
    folder (``context={"base_dir": ...}``), so that a run folder's resolved ``scenario.yaml``
    still finds the file. Without a context (a scenario built in code) the path is kept."""
    base = (info.context or {}).get("base_dir") if isinstance(v, str) else None
    if base is None or not v.strip():
        return v
    p = Path(v)
    return v if p.is_absolute() else str((Path(base) / p).absolute())


class GridCsv(_Model):
    """Hourly values from a CSV file with the header ``timestamp_utc`` and ``price_usd_per_mwh``
    and/or ``carbon_g_per_kwh`` (:mod:`sim.facility.grid_csv`; one file may serve both keys).
    ``path`` is relative to the scenario file (to the working folder for a scenario given as
    text) and written back absolute in a run folder's ``scenario.yaml``. The run starts at the
    first row, or at the row of ``start``; a file shorter than the run is an error (never
    repeated). Sources of such files: facility.md §6.4 (EIA-930, Electricity Maps, gridstatus)."""

    kind: Literal["csv"]
    path: Annotated[str, BeforeValidator(absolute_path)] = Field(min_length=1, max_length=1000)
    start: datetime | None = Field(
        default=None, description="UTC timestamp of the run's first hour; default: the first row"
    )


def _form(scalar: str) -> Any:
    def kind(v: Any) -> str | None:
        if isinstance(v, dict):
            k = v.get("kind")
            return k if k in ("profile", "csv") else None
        if isinstance(v, BaseModel):
            return str(getattr(v, "kind", ""))
        if scalar == "carbon" and isinstance(v, str) and v.strip() in CARBON_G_PER_KWH:
            return "grid"
        return "constant"

    return kind


_PRICE_FORMS = "a price ('$80/MWh'), {kind: profile, base, peak} or {kind: csv, path}"
_CARBON_FORMS = (
    "g/kWh (377), a grid name (" + ", ".join(CARBON_G_PER_KWH) + "), {kind: profile, base, peak,"
    " peak_hours} or {kind: csv, path}"
)

#: ``costs.energy_price``: a constant, a time-of-day profile or an hourly CSV column.
EnergyPrice = Annotated[
    Annotated[UsdPerMWh, within(0, 100_000, "", _PRICE_WHY), Tag("constant")]
    | Annotated[PriceProfile, Tag("profile")]
    | Annotated[GridCsv, Tag("csv")],
    Discriminator(
        _form("price"),
        custom_error_type="price_form",
        custom_error_message=f"expected {_PRICE_FORMS}",
    ),
]

#: ``costs.carbon_intensity``: a constant, a named grid's annual average, a profile or a CSV.
CarbonIntensity = Annotated[
    Annotated[GramsPerKwh, Tag("constant")]
    | Annotated[GridName, Tag("grid")]
    | Annotated[CarbonProfile, Tag("profile")]
    | Annotated[GridCsv, Tag("csv")],
    Discriminator(
        _form("carbon"),
        custom_error_type="carbon_form",
        custom_error_message=f"expected {_CARBON_FORMS}",
    ),
]


# --------------------------------------------------------------------------- demand response

_LONGEST_CALL = "DR calls last hours; the longest trial held 10 h [F47]"
_NOTICE_WHY = "notice is 30 min to 24 h (facility.md §6.1)"


class DemandResponseEvent(_Model):
    """A demand-response call: the grid import cap is ``grid_power - shed`` during
    ``[start, start + length)``; the site is told ``notice`` before ``start`` (at the run's start
    if that is earlier), which a controller may use to prepare (checkpoint, drain). Events may
    not overlap (one utility does not call twice at once; two calls that add would be a larger
    shed); ``shed`` is at most ``grid_power`` (a cap of 0 is full curtailment, Texas SB 6
    [F58]); ``start`` lies in the run (checked at build time with the key path)."""

    start_s: Annotated[
        Seconds, within(0, 100 * YEAR_S, "s", "a century is beyond any planning horizon")
    ] = Field(alias="start", description="time after the run's start")
    length_s: Annotated[Seconds, within(0, 7 * DAY_S, "s", _LONGEST_CALL, lo_open=True)] = Field(
        alias="length"
    )
    shed_w: Annotated[Watts, within(0, 100e9, "W", "100 GW", lo_open=True)] = Field(
        alias="shed", description="reduction of the grid import cap, e.g. '150 MW'"
    )
    notice_s: Annotated[Seconds, within(0, 7 * DAY_S, "s", _NOTICE_WHY)] = Field(
        default=2 * HOUR_S,
        alias="notice",
        description="warning before the start: PJM load management 30 min-2 h ([F61], weak);"
        " voluntary programmes ≥24 h ([F58], weak)",
    )


class RandomDemandResponse(_Model):
    """Demand-response calls drawn at build time from the ``grid`` random stream of
    ``run.seed``: a Poisson number over the run at ``rate``, on distinct days chosen uniformly,
    each starting at a uniform time in ``start_hours`` (local) and lasting ``mean_length / 2``
    plus an exponential time of mean ``mean_length / 2`` (assumption: 1-4 h around a 2 h mean,
    facility.md §6.1). A call that would run into the next one is cut at the next one's start.
    Each sheds ``shed_fraction`` of ``grid_power``. Seasons are not modelled (assumption)."""

    kind: Literal["random"]
    rate_per_s: Annotated[
        PerSecond, within(0, 365 / YEAR_S, "1/s", "at most one call a day", lo_open=True)
    ] = Field(
        default=15 / YEAR_S,
        alias="rate",
        description="calls per year, e.g. '15 / year': 10-20 a year (facility.md §6.1, §9; Duke"
        " 'Rethinking Load Growth': 22-88 curtailed hours a year at 0.25-1% [F56])",
    )
    mean_length_s: Annotated[
        Seconds, within(60, 2 * DAY_S, "s", "calls last 1-4 h, trials up to 10 h [F47]")
    ] = Field(
        default=2 * HOUR_S,
        alias="mean_length",
        description="mean call length, ~2 h at 0.5% curtailment [F56]",
    )
    shed_fraction: Annotated[
        Plain, within(0, 1, "", "a share of the grid import cap", lo_open=True)
    ] = Field(
        default=0.3,
        description="shed as a share of grid_power: 25-35% of IT (Emerald AI trials −25% for"
        " 3 h and −30-35% [F47]; facility.md §6.1, §9)",
    )
    notice_s: Annotated[Seconds, within(0, 7 * DAY_S, "s", _NOTICE_WHY)] = Field(
        default=2 * HOUR_S,
        alias="notice",
        description="warning before each call: PJM 30 min-2 h ([F61], weak)",
    )
    start_hours: tuple[Hour, Hour] = Field(
        default=(14, 20),
        description="[start, end) local hours in which calls begin: late afternoon and evening"
        " (ERCOT 4CP 3:00-5:30 pm [F60] weak; PJM's 24 Dec 2022 response 2-4 pm [F61];"
        " facility.md §6.1)",
    )

    @model_validator(mode="after")
    def _hours(self) -> RandomDemandResponse:
        lo, hi = self.start_hours
        if not lo < hi:
            raise ValueError(f"start_hours [{lo}, {hi}) must have start < end within one day")
        return self


def _dr_form(v: Any) -> str | None:
    if isinstance(v, list | tuple):
        return "events"
    if isinstance(v, dict | RandomDemandResponse):
        return "random"
    return None


#: ``facility.demand_response``: a list of events or a random generator.
DemandResponse = Annotated[
    Annotated[tuple[DemandResponseEvent, ...], Field(max_length=10_000), Tag("events")]
    | Annotated[RandomDemandResponse, Tag("random")],
    Discriminator(
        _dr_form,
        custom_error_type="demand_response_form",
        custom_error_message="expected a list of events [{start, length, shed, notice}] or"
        " {kind: random, rate, mean_length, shed_fraction, notice}",
    ),
]
