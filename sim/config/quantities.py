"""Annotated pydantic field types for friendly quantities, converted to SI once at load time.

``Seconds`` accepts ``3600``, ``"1 h"`` or ``"60 min"`` and stores ``3600.0``; the unit is in the
attribute name at the point of use (``duration_s``). See :mod:`sim.units` for the parser.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from sim.units import parse_quantity


def _q(unit: str) -> Any:
    return BeforeValidator(lambda v: parse_quantity(v, unit))


Seconds = Annotated[float, _q("s"), Field(ge=0)]
PositiveSeconds = Annotated[float, _q("s"), Field(gt=0)]
Watts = Annotated[float, _q("W"), Field(gt=0)]
UsdPerMWh = Annotated[float, _q("USD/MWh"), Field(ge=0)]
UsdPerWatt = Annotated[float, _q("USD/W"), Field(ge=0)]
Usd = Annotated[float, _q("USD"), Field(ge=0)]
PerSecond = Annotated[float, _q("1/s"), Field(gt=0)]
BytesPerS = Annotated[float, _q("byte/s"), Field(gt=0)]
Fraction = Annotated[float, _q(""), Field(ge=0, le=1)]
PositiveNumber = Annotated[float, _q(""), Field(gt=0)]
