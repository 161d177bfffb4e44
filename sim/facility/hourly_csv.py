"""The reading shared by the hourly CSV files: weather (facility.md §2.3,
:mod:`sim.facility.weather_csv`) and grid (§6.4, :mod:`sim.facility.grid_csv`).

Both are UTF-8 CSV text with comments (``#``) and blank lines skipped, one header line, then one
row per hour: ``timestamp_utc`` (ISO 8601; no offset means UTC, an offset is converted to UTC),
rows strictly in time order and exactly one hour apart. Every error names the file and line
(``x.csv:57: ...``) and is raised as the caller's error class; only the header check and the
value columns differ between the two kinds of file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sim.units import HOUR_S, short

__all__ = [
    "MAX_HOURLY_BYTES",
    "hourly_rows",
    "iso",
    "number_in",
    "read_text",
    "run_rows",
    "utc",
]

#: Largest hourly file read: a century of hourly rows is ~30 MB.
MAX_HOURLY_BYTES = 50_000_000


def utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive ``t`` is taken to be UTC already."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def iso(t: datetime) -> str:
    """``t`` as written in the files and messages: ``2025-07-01T15:00Z``."""
    return t.strftime("%Y-%m-%dT%H:%MZ")


def read_text(path: Path, shown: str, what: str, error: type[ValueError]) -> str:
    """The text of an hourly CSV file; ``what`` names the kind of file in messages
    (``weather``, ``grid``), failures raise ``error``."""

    def fail(message: str) -> ValueError:
        return error(f"{shown}: {message}")

    try:
        if not path.exists():
            raise fail(f"{what} file not found")
        if not path.is_file():
            raise fail(f"is not a regular file, expected a {what} CSV file")
        with path.open("rb") as f:
            data = f.read(MAX_HOURLY_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_HOURLY_BYTES:
        raise fail(f"the file is larger than {MAX_HOURLY_BYTES:,} bytes (a century of hours)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def hourly_rows(
    text: str,
    shown: str,
    header: Callable[[list[str], str], Sequence[str]],
    error: type[ValueError],
    header_hint: str,
) -> Iterator[tuple[int, str, datetime, dict[str, str]]]:
    """The data rows of an hourly file as ``(line_no, where, timestamp, row)``.

    ``header(cells, where)`` checks the header line (raising ``error``) and returns the column
    names; ``row`` maps each of them to its cell text, in file order. Every row has been checked
    for its number of cells, its timestamp and its step from the previous row; the values are the
    caller's to check. Raises ``error`` if the file has no header line (``header_hint`` shows
    one) or no data rows.
    """
    columns: Sequence[str] | None = None
    prev: datetime | None = None
    prev_line = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{shown}:{n}"
        cells = [c.strip() for c in line.split(",")]
        if columns is None:
            columns = header(cells, where)
            continue
        if len(cells) != len(columns):
            raise error(
                f"{where}: expected {len(columns)} values ({', '.join(columns)}), got {len(cells)}"
            )
        row = dict(zip(columns, cells, strict=True))
        try:
            t = utc(datetime.fromisoformat(row["timestamp_utc"]))
        except ValueError:
            raise error(
                f"{where}: {short(row['timestamp_utc'], 40)} is not an ISO 8601 timestamp"
                " (e.g. 2025-07-01T15:00Z)"
            ) from None
        if prev is not None:
            step = (t - prev).total_seconds()
            if step <= 0:
                raise error(
                    f"{where}: timestamp {iso(t)} is not after {iso(prev)} (line {prev_line});"
                    " rows must be in time order, one per hour"
                )
            if step != HOUR_S:
                gap = (
                    f"{step / HOUR_S - 1:g} hours are missing after {iso(prev)} (line {prev_line})"
                    if step % HOUR_S == 0
                    else f"{iso(t)} is {step / 60:g} min after the previous row (line {prev_line})"
                )
                raise error(f"{where}: rows must be one hour apart: {gap}")
        yield n, where, t, row
        prev, prev_line = t, n
    if columns is None:
        raise error(f"{shown}: no header line ({header_hint})")
    if prev is None:
        raise error(f"{shown}: no data rows after the header")


def number_in(
    row: dict[str, str],
    column: str,
    bounds: tuple[float, float],
    where: str,
    error: type[ValueError],
) -> float:
    """The value of ``column`` in ``row`` as a number in ``bounds`` (inclusive), else ``error``."""
    try:
        x = float(row[column])
    except ValueError:
        x = math.nan
    lo, hi = bounds
    if not lo <= x <= hi:  # also false for nan
        raise error(
            f"{where}: {column} {short(row[column], 40)} is not a number in [{lo:g}, {hi:g}]"
        )
    return x


def run_rows(
    shown: str,
    first: datetime,
    rows: int,
    start: datetime | None,
    hours: int,
    what: str,
    error: type[ValueError],
) -> slice:
    """The rows of a run of ``hours`` hours from ``start`` (default: the first row) in a file of
    ``rows`` hourly rows from ``first``; ``what`` names the values needed in the message."""
    begin = 0
    end = first.timestamp() + (rows - 1) * HOUR_S
    covers = f"it covers {iso(first)} to {iso(datetime.fromtimestamp(end, UTC))}"
    if start is not None:
        offset = (utc(start) - first).total_seconds() / HOUR_S
        if offset != int(offset) or not 0 <= offset < rows:
            raise error(f"{shown}: start {iso(utc(start))} is not a row of the file ({covers})")
        begin = int(offset)
    if begin + hours > rows:
        raise error(
            f"{shown}: the run needs {hours:,} hours of {what} but the file has"
            f" {rows - begin:,} from its start row ({covers}); a file is never"
            " repeated: give a longer file, an earlier start or a shorter run.duration"
        )
    return slice(begin, begin + hours)
