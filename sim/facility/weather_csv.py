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

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

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
MAX_WEATHER_BYTES = 50_000_000
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
        first = 0
        end = self.start.timestamp() + (self.hours - 1) * HOUR_S
        covers = f"it covers {_iso(self.start)} to {_iso(datetime.fromtimestamp(end, UTC))}"
        if start is not None:
            offset = (_utc(start) - self.start).total_seconds() / HOUR_S
            if offset != int(offset) or not 0 <= offset < self.hours:
                raise WeatherFileError(
                    f"{self.shown}: start {_iso(_utc(start))} is not a row of the file ({covers})"
                )
            first = int(offset)
        if first + hours > self.hours:
            raise WeatherFileError(
                f"{self.shown}: the run needs {hours:,} hours of weather but the file has"
                f" {self.hours - first:,} from its start row ({covers}); a file is never"
                " repeated: give a longer file, an earlier start or a shorter run.duration"
            )
        return slice(first, first + hours)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def _read_text(path: Path, shown: str, what: str = "weather") -> str:
    """The text of an hourly CSV file (also read by :mod:`sim.facility.grid_csv`, ``what``
    naming the kind of file in messages)."""

    def fail(message: str) -> WeatherFileError:
        return WeatherFileError(f"{shown}: {message}")

    try:
        if not path.exists():
            raise fail(f"{what} file not found")
        if not path.is_file():
            raise fail(f"is not a regular file, expected a {what} CSV file")
        with path.open("rb") as f:
            data = f.read(MAX_WEATHER_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_WEATHER_BYTES:
        raise fail(f"the file is larger than {MAX_WEATHER_BYTES:,} bytes (a century of hours)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _header(cells: list[str], where: str) -> tuple[list[str], str]:
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
    return cells, humid[0]


def read_weather_csv(path: Path, shown: str | None = None) -> HourlyFile:
    """Read an hourly weather file; raises :class:`WeatherFileError` naming file and line."""
    shown = cut(shown if shown is not None else str(path), 200)
    text = _read_text(path, shown)
    columns: list[str] | None = None
    humidity = ""
    start: datetime | None = None
    prev: datetime | None = None
    prev_line = 0
    values: list[tuple[float, float]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{shown}:{n}"
        cells = [c.strip() for c in line.split(",")]
        if columns is None:
            columns, humidity = _header(cells, where)
            continue
        if len(cells) != len(columns):
            raise WeatherFileError(
                f"{where}: expected {len(columns)} values ({', '.join(columns)}), got {len(cells)}"
            )
        row = dict(zip(columns, cells, strict=True))
        try:
            t = _utc(datetime.fromisoformat(row["timestamp_utc"]))
        except ValueError:
            raise WeatherFileError(
                f"{where}: {short(row['timestamp_utc'], 40)} is not an ISO 8601 timestamp"
                " (e.g. 2025-07-01T15:00Z)"
            ) from None
        if prev is None:
            start = t
        else:
            step = (t - prev).total_seconds()
            if step <= 0:
                raise WeatherFileError(
                    f"{where}: timestamp {_iso(t)} is not after {_iso(prev)} (line {prev_line});"
                    " rows must be in time order, one per hour"
                )
            if step != HOUR_S:
                gap = (
                    f"{step / HOUR_S - 1:g} hours are missing after {_iso(prev)} (line {prev_line})"
                    if step % HOUR_S == 0
                    else f"{_iso(t)} is {step / 60:g} min after the previous row (line {prev_line})"
                )
                raise WeatherFileError(f"{where}: rows must be one hour apart: {gap}")
        prev, prev_line = t, n
        out = []
        for col in ("dry_bulb_c", humidity):
            try:
                x = float(row[col])
            except ValueError:
                x = math.nan
            lo, hi = _RANGE[col]
            if not lo <= x <= hi:  # also false for nan
                raise WeatherFileError(
                    f"{where}: {col} {short(row[col], 40)} is not a number in [{lo:g}, {hi:g}]"
                )
            out.append(x)
        values.append((out[0], out[1]))
    if columns is None:
        raise WeatherFileError(f"{shown}: no header line (timestamp_utc,dry_bulb_c,...)")
    if start is None:
        raise WeatherFileError(f"{shown}: no data rows after the header")
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
    t0 = _utc(start).timestamp()
    lines = [f"# {c}".rstrip() for c in comment.splitlines()]
    lines.append(f"timestamp_utc,dry_bulb_c,{humidity_column}")
    for k, (db, h) in enumerate(zip(dry_bulb_c.tolist(), humidity.tolist(), strict=True)):
        stamp = _iso(datetime.fromtimestamp(t0 + k * HOUR_S, UTC))
        lines.append(f"{stamp},{db:.{decimals}f},{h:.{decimals}f}")
    return "\n".join(lines) + "\n"
