"""Read the hourly grid file: energy price and/or carbon intensity by hour (facility.md §6.4).

The file is CSV text (UTF-8) with a header line and one row per hour::

    # lines starting with '#' are comments, blank lines are skipped
    timestamp_utc,price_usd_per_mwh,carbon_g_per_kwh
    2025-07-01T00:00Z,31.20,352
    2025-07-01T01:00Z,28.75,348

* ``timestamp_utc``: ISO 8601; a timestamp without an offset is UTC, one with an offset is
  converted to UTC; the value holds for the hour that starts there;
* ``price_usd_per_mwh``: energy price, USD/MWh, in [-1,000, 100,000] (real-time prices go
  negative: 13.2% of CAISO's intervals in April 2023 [F64]; ERCOT caps offers at $5,000 [F62]);
* ``carbon_g_per_kwh``: life-cycle carbon intensity, gCO2eq/kWh, in [0, 2,000].

At least one of the two value columns; columns in any order, no other column (a misspelt one
would be lost). ``costs.energy_price: {kind: csv}`` reads the price column and
``costs.carbon_intensity: {kind: csv}`` the carbon column, so one file may serve both. Rows are
exactly one hour apart; every error names the file and line, as for weather files (whose reading
helpers this module shares, :mod:`sim.facility.weather_csv`). EIA-930, Electricity Maps and
``gridstatus`` exports (§6.4) convert to this with a few lines of pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sim.facility.weather_csv import WeatherFileError, _iso, _read_text, _utc
from sim.units import HOUR_S, cut, short

__all__ = ["GRID_COLUMNS", "GridFileError", "HourlyGrid", "read_grid_csv"]

#: Value columns and their plausible ranges.
GRID_COLUMNS: dict[str, tuple[float, float]] = {
    "price_usd_per_mwh": (-1000.0, 100_000.0),
    "carbon_g_per_kwh": (0.0, 2000.0),
}
_EXPECTED = "timestamp_utc and one or both of price_usd_per_mwh, carbon_g_per_kwh"


class GridFileError(WeatherFileError):
    """A grid file that cannot be used; ``str()`` names the file (and line)."""


@dataclass(frozen=True, eq=False)
class HourlyGrid:
    """The rows of a grid file: hour ``k`` is ``start + k h`` (UTC)."""

    shown: str
    start: datetime
    columns: dict[str, np.ndarray]

    @property
    def hours(self) -> int:
        return int(next(iter(self.columns.values())).shape[0])

    def values(self, column: str, start: datetime | None, hours: int, key: str) -> np.ndarray:
        """``column`` over a run of ``hours`` hours from ``start`` (default: the first row);
        ``key`` is the scenario key that asks for it, named in the error if it is missing."""
        if column not in self.columns:
            raise GridFileError(
                f"{self.shown}: {key} needs a {column} column; the file has"
                f" {', '.join(self.columns)}"
            )
        first = 0
        end = self.start.timestamp() + (self.hours - 1) * HOUR_S
        covers = f"it covers {_iso(self.start)} to {_iso(datetime.fromtimestamp(end, UTC))}"
        if start is not None:
            offset = (_utc(start) - self.start).total_seconds() / HOUR_S
            if offset != int(offset) or not 0 <= offset < self.hours:
                raise GridFileError(
                    f"{self.shown}: start {_iso(_utc(start))} is not a row of the file ({covers})"
                )
            first = int(offset)
        if first + hours > self.hours:
            raise GridFileError(
                f"{self.shown}: the run needs {hours:,} hours of {column} but the file has"
                f" {self.hours - first:,} from its start row ({covers}); a file is never"
                " repeated: give a longer file, an earlier start or a shorter run.duration"
            )
        return self.columns[column][first : first + hours].copy()


def _header(cells: list[str], where: str) -> list[str]:
    for c in cells:
        if c != "timestamp_utc" and c not in GRID_COLUMNS:
            raise GridFileError(f"{where}: unknown column {short(c, 40)}; expected {_EXPECTED}")
    dup = sorted({c for c in cells if cells.count(c) > 1})
    if dup:
        raise GridFileError(f"{where}: column {dup[0]} appears twice")
    if "timestamp_utc" not in cells or len(cells) < 2:
        what = "no timestamp_utc column" if "timestamp_utc" not in cells else "no value column"
        raise GridFileError(f"{where}: the header has {what}; expected {_EXPECTED}")
    return cells


def read_grid_csv(path: Path, shown: str | None = None) -> HourlyGrid:
    """Read an hourly grid file; raises :class:`GridFileError` naming file and line."""
    shown = cut(shown if shown is not None else str(path), 200)
    try:
        text = _read_text(path, shown, "grid")
    except WeatherFileError as exc:
        raise GridFileError(str(exc)) from None
    columns: list[str] | None = None
    start: datetime | None = None
    prev: datetime | None = None
    prev_line = 0
    values: list[list[float]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{shown}:{n}"
        cells = [c.strip() for c in line.split(",")]
        if columns is None:
            columns = _header(cells, where)
            continue
        if len(cells) != len(columns):
            raise GridFileError(
                f"{where}: expected {len(columns)} values ({', '.join(columns)}), got {len(cells)}"
            )
        row = dict(zip(columns, cells, strict=True))
        try:
            t = _utc(datetime.fromisoformat(row["timestamp_utc"]))
        except ValueError:
            raise GridFileError(
                f"{where}: {short(row['timestamp_utc'], 40)} is not an ISO 8601 timestamp"
                " (e.g. 2025-07-01T15:00Z)"
            ) from None
        if prev is None:
            start = t
        else:
            step = (t - prev).total_seconds()
            if step <= 0:
                raise GridFileError(
                    f"{where}: timestamp {_iso(t)} is not after {_iso(prev)} (line {prev_line});"
                    " rows must be in time order, one per hour"
                )
            if step != HOUR_S:
                gap = (
                    f"{step / HOUR_S - 1:g} hours are missing after {_iso(prev)} (line {prev_line})"
                    if step % HOUR_S == 0
                    else f"{_iso(t)} is {step / 60:g} min after the previous row (line {prev_line})"
                )
                raise GridFileError(f"{where}: rows must be one hour apart: {gap}")
        prev, prev_line = t, n
        out = []
        for col in columns:
            if col == "timestamp_utc":
                continue
            try:
                x = float(row[col])
            except ValueError:
                x = math.nan
            lo, hi = GRID_COLUMNS[col]
            if not lo <= x <= hi:  # also false for nan
                raise GridFileError(
                    f"{where}: {col} {short(row[col], 40)} is not a number in [{lo:g}, {hi:g}]"
                )
            out.append(x)
        values.append(out)
    if columns is None:
        raise GridFileError(f"{shown}: no header line (timestamp_utc,price_usd_per_mwh,...)")
    if start is None:
        raise GridFileError(f"{shown}: no data rows after the header")
    arr = np.asarray(values, dtype=float)
    names = [c for c in columns if c != "timestamp_utc"]
    return HourlyGrid(shown, start, {c: arr[:, k].copy() for k, c in enumerate(names)})
