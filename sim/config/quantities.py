"""Annotated pydantic field types for friendly quantities, converted to SI once at load time,
and the plausible ranges every number of a scenario must lie in.

``Seconds`` accepts ``"1 h"`` or ``"60 min"`` and stores ``3600.0``; the unit is in the attribute
name at the point of use (``duration_s``). Durations and rates need a unit in the scenario (a bare
``8`` is a guess); they are written back with their SI unit (``"3600.0 s"``, ``"0.001 / s"``) in
a run folder's resolved ``scenario.yaml``, so that file loads again. See :mod:`sim.units` for
the parser.

:func:`within` bounds a number to a plausible range and says the range (and why) in its message.
Ranges are generous, since users model futures, but bounded: an absurd magnitude is a typo, and
the engine's memory and time grow with several of them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from sim.units import DAY_S, HOUR_S, MINUTE_S, YEAR_S, quantity, short

__all__ = [
    "DAY_S",
    "YEAR_S",
    "BitsPerS",
    "BytesPerS",
    "Count",
    "Metres",
    "Number",
    "PerSecond",
    "Plain",
    "Seconds",
    "UsdPerMWh",
    "UsdPerWatt",
    "Watts",
    "show",
    "within",
]

_SCALES: dict[str, tuple[tuple[float, str], ...]] = {
    "s": ((YEAR_S, "years"), (DAY_S, "d"), (HOUR_S, "h"), (MINUTE_S, "min"), (1.0, "s")),
    "W": ((1e12, "TW"), (1e9, "GW"), (1e6, "MW"), (1e3, "kW"), (1.0, "W")),
    "1/s": ((1.0, "/ s"),),
    "byte/s": ((1e15, "PB/s"), (1e12, "TB/s"), (1e9, "GB/s"), (1.0, "B/s")),
    "bit/s": ((1e15, "Pb/s"), (1e12, "Tb/s"), (1e9, "Gb/s"), (1.0, "b/s")),
    "m": ((1e3, "km"), (1.0, "m")),
}


def show(value: float, unit: str = "") -> str:
    """``value`` (SI) in a readable unit: ``show(7776000, "s") == "90 d"``."""
    if unit == "1/s" and 0 < value < 1:
        return f"{value * DAY_S:.4g} / d"
    for scale, name in _SCALES.get(unit, ()):
        if abs(value) >= scale or scale == 1.0:
            return f"{value / scale:.4g} {name}"
    return f"{value:.4g}{' ' + unit if unit else ''}"


def within(
    lo: float,
    hi: float,
    unit: str = "",
    why: str = "",
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """An ``AfterValidator`` that keeps a number (already SI) in ``[lo, hi]`` (or open ends)."""

    def check(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        x = float(v)
        bad = (
            not math.isfinite(x)
            or (x <= lo if lo_open else x < lo)
            or (x >= hi if hi_open else x > hi)
        )
        if bad:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            got = short(v) if not math.isfinite(x) else show(x, unit)
            raise ValueError(
                f"{got} is outside the plausible range {left}{show(lo, unit)},"
                f" {show(hi, unit)}{right}" + (f" ({why})" if why else "")
            )
        return v

    return AfterValidator(check)


def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {v!r}")
    return v


def _whole(v: Any) -> Any:
    """Integers only: ``true`` is not 1 and ``2.5`` is not 2; ``512.0`` and ``"1e3"`` are fine."""
    if isinstance(v, bool):
        raise ValueError(f"expected a whole number, got {v!r}")
    if isinstance(v, float | str):
        try:
            x = float(v)
        except ValueError:
            raise ValueError(f"expected a whole number, got {short(v)}") from None
        if not math.isfinite(x) or x != int(x):
            raise ValueError(f"expected a whole number, got {short(v)}")
        return int(x)
    return v


#: a plain number (not a boolean), finite and bounded by the field's ``within``
Number = Annotated[float, BeforeValidator(_no_bool)]
#: a whole number (not a boolean)
Count = Annotated[int, BeforeValidator(_whole)]


def _with_unit(unit: str) -> Any:
    return PlainSerializer(lambda v: v if v == 0 else f"{v!r} {unit}", when_used="json")


#: a duration in seconds; a unit is required (bare 0 is fine)
Seconds = Annotated[float, quantity("s", require_unit=True), _with_unit("s")]
#: a rate in 1/s (``"12 / d"``); a unit is required
PerSecond = Annotated[float, quantity("1/s", require_unit=True), _with_unit("/ s")]
Watts = Annotated[float, quantity("W")]
UsdPerMWh = Annotated[float, quantity("USD/MWh")]
UsdPerWatt = Annotated[float, quantity("USD/W")]
BytesPerS = Annotated[float, quantity("byte/s")]
#: a line rate in bits/s (``"400 Gb/s"``); a unit is required (a bare 400 would be a guess)
BitsPerS = Annotated[float, quantity("bit/s", require_unit=True), _with_unit("bit/s")]
#: a length in metres (``"10 km"``); a unit is required
Metres = Annotated[float, quantity("m", require_unit=True), _with_unit("m")]
#: a plain number that may be written ``"3e12"`` or ``"50%"``
Plain = Annotated[float, quantity("")]
