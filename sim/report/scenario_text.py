"""The resolved scenario written as a user would write it, for the report's "Scenario as run".

``resolved_dict`` holds SI numbers (``grid_power: 3000000.0``, ``it_amortization: 157680000.0 s``,
``energy_price: 80.0``). :func:`scenario_as_written` walks it alongside the schema and writes each
quantity with its unit in the size that reads: ``3 MW``, ``1825 d``, ``$80/MWh``, ``$3.9M``,
``2 TB/s``, ``8 / d``. The text reads back to the same values (a year is written in days:
the loader's year is 365.25 d and the schema's planning year 365 d). Units come from the field
names (``_w``, ``_usd``, ``_usd_per_mwh``, ...; STYLE.md: units in names) and, for values the
schema already writes with a unit (``"3600.0 s"``, ``"9.26e-05 / s"``, ``"4e+11 bit/s"``,
``"2000.0 m"``), from that unit. Anything else is left as it is.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel

from sim.config.schema import Scenario
from sim.units import DAY_S, HOUR_S

__all__ = ["scenario_as_written"]

_NUMBER_UNIT = re.compile(r"^(-?[0-9.]+(?:e[+-]?[0-9]+)?) (s|/ s|bit/s|m)$")


def _g(x: float) -> str:
    """The fewest significant digits (6 at least) that read back as ``x``: 1825, 0.05, 3.9."""
    for digits in (6, 10, 15):
        text = f"{x:.{digits}g}"
        if float(text) == x:
            return text
    return repr(x)


def _scaled(v: float, steps: tuple[tuple[float, str], ...], space: str = " ") -> str:
    """``v`` in the largest step it reaches (the last step otherwise)."""
    for div, unit in steps:
        if abs(v) >= div:
            return f"{_g(v / div)}{space}{unit}"
    div, unit = steps[-1]
    return f"{_g(v / div)}{space}{unit}"


def duration_text(seconds: float) -> str:
    """Seconds in the largest of d, h, min, s, ms that gives a number with at most two
    decimals (``1825 d``, ``30 min``, ``50 ms``); else the largest it reaches."""
    if seconds == 0:
        return "0 s"
    steps = ((DAY_S, "d"), (HOUR_S, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "us"))
    for div, unit in steps:
        x = seconds / div
        if abs(x) >= 1 and abs(x - round(x, 2)) <= 1e-9 * abs(x):
            return f"{_g(x)} {unit}"
    return _scaled(seconds, steps)


def rate_text(per_s: float) -> str:
    """A rate per second in the first of s, min, h, d where it is at least 1 with at most two
    decimals (``20 / s``, ``8 / d``); else the first where it is at least 1."""
    steps = ((1.0, "s"), (60.0, "min"), (HOUR_S, "h"), (DAY_S, "d"))
    for mult, unit in steps:
        x = per_s * mult
        if abs(x) >= 1 and abs(x - round(x, 2)) <= 1e-9 * abs(x):
            return f"{_g(x)} / {unit}"
    for mult, unit in steps:
        if abs(per_s * mult) >= 1:
            return f"{_g(per_s * mult)} / {unit}"
    return f"{_g(per_s * DAY_S)} / d"


_WATTS = ((1e9, "GW"), (1e6, "MW"), (1e3, "kW"), (1.0, "W"))
_BYTES = ((1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1.0, "B/s"))
_BITS = ((1e12, "Tb/s"), (1e9, "Gb/s"), (1e6, "Mb/s"), (1.0, "bit/s"))
_METRES = ((1e3, "km"), (1.0, "m"))
_DOLLARS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def _dollars(v: float) -> str:
    return "$" + _scaled(v, _DOLLARS, space="")


#: field-name suffix -> how its number is written (longest suffixes first)
_BY_NAME: tuple[tuple[str, Any], ...] = (
    ("_usd_per_mwh", lambda v: f"{_dollars(v)}/MWh"),
    ("_usd_per_w_year", lambda v: f"{_dollars(v)}/W/year"),
    ("_usd_per_gpu_year", lambda v: f"{_dollars(v)}/year"),  # per GPU, as the key says
    ("_usd_per_failure", _dollars),
    ("_usd_per_w", lambda v: f"{_dollars(v)}/W"),
    ("_usd", _dollars),
    ("_bytes_per_s", lambda v: _scaled(v, _BYTES)),
    ("_w", lambda v: _scaled(v, _WATTS)),
    ("_c", lambda v: f"{_g(v)} degC"),
)


def _unit_string(v: str) -> str:
    m = _NUMBER_UNIT.match(v)
    if m is None:
        return v
    x, unit = float(m.group(1)), m.group(2)
    if unit == "s":
        return duration_text(x)
    if unit == "/ s":
        return rate_text(x)
    if unit == "bit/s":
        return _scaled(x, _BITS)
    return _scaled(x, _METRES)


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in typing.get_args(tp) for m in _models_in(a)]


def _value(v: Any, name: str, annotation: Any) -> Any:
    if isinstance(v, str):
        return _unit_string(v)
    if isinstance(v, list):
        return [_value(x, name, annotation) for x in v]
    if isinstance(v, dict):
        models = _models_in(annotation)
        for m in models:
            keys = {f.alias or n for n, f in m.model_fields.items()} | set(m.model_fields)
            if set(v) <= keys:
                return _walk(v, m)
        if name == "prices":  # costs.prices: hardware or switch -> USD per unit
            return {k: _dollars(x) if _is_number(x) else x for k, x in v.items()}
        return {k: _value(x, "", None) for k, x in v.items()}
    if _is_number(v) and name:
        for suffix, write in _BY_NAME:
            if name.endswith(suffix):
                return write(float(v))
    return v


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _walk(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    by_key = {}
    for n, f in model.model_fields.items():
        by_key[n] = (n, f.annotation)
        if f.alias:
            by_key[f.alias] = (n, f.annotation)
    out = {}
    for k, v in data.items():
        name, annotation = by_key.get(k, ("", None))
        out[k] = _value(v, name, annotation)
    return out


def scenario_as_written(resolved: dict[str, Any]) -> dict[str, Any]:
    """``resolved`` (the run's ``scenario.yaml``: SI, every default filled in) with every
    quantity written with its unit (module docstring)."""
    return _walk(resolved, Scenario)
