"""Annotated pydantic field types for friendly quantities, converted to SI once at load time.

``Seconds`` accepts ``3600``, ``"1 h"`` or ``"60 min"`` and stores ``3600.0``; the unit is in the
attribute name at the point of use (``duration_s``). See :mod:`sim.units` for the parser.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sim.units import quantity

Seconds = Annotated[float, quantity("s"), Field(ge=0)]
PositiveSeconds = Annotated[float, quantity("s"), Field(gt=0)]
Watts = Annotated[float, quantity("W"), Field(gt=0)]
UsdPerMWh = Annotated[float, quantity("USD/MWh"), Field(ge=0)]
UsdPerWatt = Annotated[float, quantity("USD/W"), Field(ge=0)]
Usd = Annotated[float, quantity("USD"), Field(ge=0)]
PerSecond = Annotated[float, quantity("1/s"), Field(gt=0)]
BytesPerS = Annotated[float, quantity("byte/s"), Field(gt=0)]
Fraction = Annotated[float, quantity(""), Field(ge=0, le=1)]
PositiveNumber = Annotated[float, quantity(""), Field(gt=0)]
