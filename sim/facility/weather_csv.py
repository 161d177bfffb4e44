"""Read (and format) the minimal hourly weather file of facility.md §2.3.

The file is CSV text (UTF-8) with a header line and one row per hour::

    # lines starting with '#' are comments, blank lines are skipped
    timestamp_utc,dry_bulb_c,dew_point_c
    2025-01-01T00:00Z,7.3,-2.1
    2025-01-01T01:00Z,6.9,-2.1

* ``timestamp_utc``: ISO 8601; a timestamp without an offset is UTC, one with an offset is
  converted to UTC;
* ``dry_bulb_c``: air temperature, °C;
* exactly one humidity column: ``dew_point_c`` (°C), ``rh_pct`` (%) or ``wet_bulb_c`` (°C).

Columns may come in any order; no other column is accepted (a misspelt one would otherwise be
lost). Rows are exactly one hour apart: a repeated or earlier timestamp, a gap, or a half-hour step
is an error. Every error names the file and line: ``weather/x.csv:57: ...``. NOAA ISD, TMY3, EPW
and Open-Meteo files (§2.3) convert to this with a few lines of pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sim.facility.hourly_csv import (
    MAX_HOURLY_BYTES,
    hourly_rows,
    iso,
    number_in,
    read_text,
    run_rows,
    utc,
)
from sim.units import HOUR_S, cut, short

__all__ = [
    "HUMIDITY_COLUMNS",
    "MAX_WEATHER_BYTES",
    "HourlyFile",
    "WeatherFileError",
    "format_weather_csv",
    "read_weather_csv",
]

#: Largest weather file read: a century of hourly rows is ~30 MB.
MAX_WEATHER_BYTES = MAX_HOURLY_BYTES
HUMIDITY_COLUMNS = ("dew_point_c", "rh_pct", "wet_bulb_c")
_REQUIRED = ("timestamp_utc", "dry_bulb_c")
#: Plausible values: the records of air temperature; humidity in [0, 100] %.
_RANGE = {
    "dry_bulb_c": (-90.0, 60.0),
    "dew_point_c": (-100.0, 60.0),
    "wet_bulb_c": (-90.0, 60.0),
    "rh_pct": (0.0, 100.0),
}


class WeatherFileError(ValueError):
    """A weather file that cannot be used; ``str()`` names the file (and line)."""


@dataclass(frozen=True, eq=False)
class HourlyFile:
    """The rows of a weather file: hour ``k`` is ``start + k h`` (UTC)."""

    shown: str
    start: datetime
    dry_bulb_c: np.ndarray
    humidity_column: str
    humidity: np.ndarray

    @property
    def hours(self) -> int:
        return int(self.dry_bulb_c.shape[0])

    def rows_for(self, start: datetime | None, hours: int) -> slice:
        """The rows of a run of ``hours`` hours from ``start`` (default: the first row)."""
        return run_rows(
            self.shown, self.start, self.hours, start, hours, "weather", WeatherFileError
        )


def _header(cells: list[str], where: str) -> list[str]:
    expected = "timestamp_utc, dry_bulb_c and one of dew_point_c, rh_pct, wet_bulb_c"
    known = (*_REQUIRED, *HUMIDITY_COLUMNS)
    for c in cells:
        if c not in known:
            raise WeatherFileError(f"{where}: unknown column {short(c, 40)}; expected {expected}")
    dup = sorted({c for c in cells if cells.count(c) > 1})
    if dup:
        raise WeatherFileError(f"{where}: column {dup[0]} appears twice")
    missing = [c for c in _REQUIRED if c not in cells]
    humid = [c for c in cells if c in HUMIDITY_COLUMNS]
    if missing or len(humid) != 1:
        what = f"no {missing[0]} column" if missing else f"{len(humid)} humidity columns"
        raise WeatherFileError(f"{where}: the header has {what}; expected {expected}")
    return cells


def read_weather_csv(path: Path, shown: str | None = None) -> HourlyFile:
    """Read an hourly weather file; raises :class:`WeatherFileError` naming file and line."""
    shown = cut(shown if shown is not None else str(path), 200)
    text = read_text(path, shown, "weather", WeatherFileError)
    rows = hourly_rows(text, shown, _header, WeatherFileError, "timestamp_utc,dry_bulb_c,...")
    start: datetime | None = None
    humidity = ""
    values: list[tuple[float, float]] = []
    for _, where, t, row in rows:
        if start is None:
            start = t
            humidity = next(c for c in row if c in HUMIDITY_COLUMNS)
        values.append(
            (
                number_in(row, "dry_bulb_c", _RANGE["dry_bulb_c"], where, WeatherFileError),
                number_in(row, humidity, _RANGE[humidity], where, WeatherFileError),
            )
        )
    assert start is not None  # hourly_rows raises on a file without data rows
    arr = np.asarray(values, dtype=float)
    return HourlyFile(shown, start, arr[:, 0].copy(), humidity, arr[:, 1].copy())


def format_weather_csv(
    start: datetime,
    dry_bulb_c: np.ndarray,
    humidity_column: str,
    humidity: np.ndarray,
    comment: str = "",
    decimals: int = 1,
) -> str:
    """The text of a weather file (hourly rows from ``start``, UTC); the caller writes it."""
    if humidity_column not in HUMIDITY_COLUMNS:
        raise ValueError(f"humidity_column must be one of {', '.join(HUMIDITY_COLUMNS)}")
    t0 = utc(start).timestamp()
    lines = [f"# {c}".rstrip() for c in comment.splitlines()]
    lines.append(f"timestamp_utc,dry_bulb_c,{humidity_column}")
    for k, (db, h) in enumerate(zip(dry_bulb_c.tolist(), humidity.tolist(), strict=True)):
        stamp = iso(datetime.fromtimestamp(t0 + k * HOUR_S, UTC))
        lines.append(f"{stamp},{db:.{decimals}f},{h:.{decimals}f}")
    return "\n".join(lines) + "\n"
