"""Friendly quantities in, SI floats out.

Scenario and catalog files may write ``"1 GW"``, ``"132 kW"``, ``"30 d"``, ``"5 min"``,
``"$80/MWh"``, ``"3.35 TB/s"``, ``"400 Gb/s"`` or ``"2.5 PFLOPS"``. This module turns such a value
into a float in the unit the caller names (watt, second, USD/MWh, byte/s, ...) exactly once, at load
time; everything inside the simulator is then a plain float whose unit is in its name.

Parsing is done by pint (a units library), with three additions of our own:

* ``FLOP`` is a dimension of its own and ``FLOPS = FLOP/s``, so ``"989 TFLOPS"`` works;
* ``USD`` is a currency dimension; ``"$80/MWh"`` is read as ``"80 USD/MWh"``;
* pint reads ``Gb`` as gilbert (a unit of magnetomotive force). In this field ``Gb/s`` always
  means gigabits per second, so ``<prefix>b`` directly after a number is rewritten to
  ``<prefix>bit`` before parsing.

Plain numbers are taken to be already in the target unit. The unit registry is built lazily on
the first string that needs it (building it takes a few tenths of a second).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

__all__ = [
    "DAY_S",
    "HOUR_S",
    "MINUTE_S",
    "WEEK_S",
    "YEAR_S",
    "QuantityError",
    "parse_quantity",
    "quantity",
]

# Time constants, in seconds: the one place they are defined (simulation time is seconds).
MINUTE_S = 60.0
HOUR_S = 3_600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
YEAR_S = 365 * DAY_S  # a planning year: 365 days, no leap day

_DOLLAR = re.compile(r"^\s*\$\s*([-+0-9.eE]+)\s*(.*)$")
_BITS = re.compile(r"(?<=[\d\s])([kKMGTPE]?)b(?=\s*(/|$|\*|per\b))")
_PERCENT = re.compile(r"^\s*([-+0-9.eE]+)\s*%\s*$")


class QuantityError(ValueError):
    """A value that is not a quantity of the expected dimension."""


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint  # local: costs ~0.4 s, only paid when a string needs parsing

    ureg: Any = pint.UnitRegistry(on_redefinition="raise", autoconvert_offset_to_baseunit=True)
    ureg.define("FLOP = [flop] = flop")
    ureg.define("FLOPS = FLOP / second = flops")
    ureg.define("USD = [currency] = usd = dollar")
    ureg.define("token = [token] = tokens = tok")
    return ureg


def _normalise(text: str) -> str:
    m = _DOLLAR.match(text)
    if m:
        rest = m.group(2).strip()
        text = f"{m.group(1)} USD{(' ' + rest) if rest and not rest.startswith('/') else rest}"
    return _BITS.sub(lambda mm: f"{mm.group(1)}bit", text)


@lru_cache(maxsize=4096)
def _parse_string(text: str, unit: str) -> float:
    try:
        # YAML reads 3e6 (no dot) as a string: a bare number is in the target unit
        return float(text)
    except ValueError:
        pass
    m = _PERCENT.match(text)
    if m and unit in ("", "dimensionless", "1"):
        return float(m.group(1)) / 100.0
    ureg = _registry()
    import pint

    try:
        q = ureg.Quantity(_normalise(text))
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, SyntaxError) as exc:
        raise QuantityError(f"cannot read {text!r} as a quantity ({exc})") from None
    try:
        value = float(q.to(unit).magnitude) if unit else float(q.to("dimensionless").magnitude)
    except pint.errors.DimensionalityError:
        want = unit or "a plain number"
        raise QuantityError(
            f"{text!r} is in {q.units:~} ({q.dimensionality}), expected a quantity in {want}"
        ) from None
    return value


def parse_quantity(value: Any, unit: str) -> float:
    """Return ``value`` as a float in ``unit``.

    ``value`` may be an int or float (taken as already in ``unit``) or a string with a unit
    (``"1.2 GW"``). Raises :class:`QuantityError` with a readable reason otherwise.
    """
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity in {unit or 'a plain number'}, got {value!r}")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        out = _parse_string(value.strip(), unit)
    else:
        raise QuantityError(
            f"expected a number or a string with a unit ({unit or 'dimensionless'}),"
            f" got {type(value).__name__}"
        )
    if not math.isfinite(out):
        raise QuantityError(f"{value!r} is not a finite number")
    return out


def quantity(unit: str) -> Any:
    """A pydantic ``BeforeValidator`` that reads a field as a quantity in ``unit``::

    Seconds = Annotated[float, quantity("s"), Field(ge=0)]
    """
    from pydantic import BeforeValidator

    return BeforeValidator(lambda v: parse_quantity(v, unit))
