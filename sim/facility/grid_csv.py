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
exactly one hour apart; every error names the file and line, as for weather files (both are read
by :mod:`sim.facility.hourly_csv`). EIA-930, Electricity Maps and ``gridstatus`` exports (§6.4)
convert to this with a few lines of pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from sim.facility.hourly_csv import hourly_rows, number_in, read_text, run_rows
from sim.facility.weather_csv import WeatherFileError
from sim.units import cut, short

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
        rows = run_rows(self.shown, self.start, self.hours, start, hours, column, GridFileError)
        return self.columns[column][rows].copy()


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
    text = read_text(path, shown, "grid", GridFileError)
    rows = hourly_rows(text, shown, _header, GridFileError, "timestamp_utc,price_usd_per_mwh,...")
    start: datetime | None = None
    names: list[str] = []
    values: list[list[float]] = []
    for _, where, t, row in rows:
        if start is None:
            start = t
            names = [c for c in row if c != "timestamp_utc"]
        values.append([number_in(row, c, GRID_COLUMNS[c], where, GridFileError) for c in names])
    assert start is not None  # hourly_rows raises on a file without data rows
    arr = np.asarray(values, dtype=float)
    return HourlyGrid(shown, start, {c: arr[:, k].copy() for k, c in enumerate(names)})
