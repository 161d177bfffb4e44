"""Friendly quantities in, SI floats out.

Scenario and catalog files may write ``"1 GW"``, ``"132 kW"``, ``"30 d"``, ``"5 min"``,
``"$80/MWh"``, ``"3.35 TB/s"``, ``"400 Gb/s"`` or ``"2.5 PFLOPS"``. This module turns such a value
into a float in the unit the caller names (watt, second, USD/MWh, byte/s, ...) exactly once, at load
time; everything inside the simulator is then a plain float whose unit is in its name.

The grammar is strict, so that a typo is an error and never a different quantity:

* exactly one number, then a unit expression made of known unit words (:data:`UNIT_WORDS`)
  joined by ``/``, ``*`` or spaces, each optionally raised to an integer power (``^2``, ``**2``);
  ``80 / d`` (a rate), ``1/s``, ``3.35 TB/s`` and ``2.5 PFLOPS`` are all of this form. ``2 dd``
  (pint would read deci-days) and ``30 min 2`` (a second number) are refused, and so are brackets;
* ``$80/MWh``, ``$ 80/MWh``, ``80 $/MWh`` and ``80 USD/MWh`` mean the same;
* ``50%`` is 0.5 where a plain number is expected;
* ``<prefix>b`` is bits (``400 Gb/s``), never pint's gilbert or barn;
* strings longer than :data:`MAX_QUANTITY_CHARS` are refused before any parsing.

Plain numbers are taken to be already in the target unit, unless the caller asks for a unit
(``require_unit=True``; the scenario schema does for durations and rates, where a bare ``8`` is a
guess: 8 per second or per day?). A bare ``0`` is zero in any unit and always accepted.

Parsing of the checked expression is done by pint, with ``FLOP`` (``FLOPS = FLOP/s``), ``USD`` and
``token`` as dimensions of our own. The registry is built lazily on the first string that needs
it (building it takes a few tenths of a second).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

__all__ = [
    "DAY_S",
    "HOUR_S",
    "MAX_QUANTITY_CHARS",
    "MINUTE_S",
    "UNIT_WORDS",
    "WEEK_S",
    "YEAR_S",
    "QuantityError",
    "cut",
    "parse_quantity",
    "quantity",
    "short",
]

# Time constants, in seconds: the one place they are defined (simulation time is seconds).
MINUTE_S = 60.0
HOUR_S = 3_600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
YEAR_S = 365 * DAY_S  # a planning year: 365 days, no leap day

#: Longest quantity string read; the longest real one ("3.35 TB/s", "$11.7/W") is ~15 characters.
MAX_QUANTITY_CHARS = 64

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_WORD = r"[A-Za-zµ_]+"
_TERM = rf"{_WORD}(?:\s*(?:\^|\*\*)\s*-?\d+)?"
_UNIT_EXPR = rf"(?:/\s*)?{_TERM}(?:\s*(?:/|\*|\s)\s*{_TERM})*"
_QUANTITY = re.compile(rf"^(?P<num>{_NUMBER})\s*(?P<unit>{_UNIT_EXPR})?$")
_PERCENT = re.compile(rf"^(?P<num>{_NUMBER})\s*%$")
_DOLLAR_FIRST = re.compile(rf"^\$\s*(?P<num>{_NUMBER})\s*(?P<rest>.*)$")
_BITS = re.compile(r"^([kMGTPE]?)b$")
#: a magnitude right after a dollar amount: ``$300k``, ``$3.9M``, ``$30B`` (only there: ``3 M``
#: alone is no unit)
_MONEY_SCALE = re.compile(r"^(k|M|B|bn)(?![A-Za-z])")
_MONEY_SUFFIX = {"k": 1e3, "M": 1e6, "B": 1e9, "bn": 1e9}

_DECIMAL = ("", "k", "M", "G", "T", "P", "E")
_BINARY = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_TIME_WORDS = (
    *("s", "sec", "second", "seconds", "ms", "us", "µs", "ns", "min", "minute", "minutes"),
    *("h", "hr", "hour", "hours", "d", "day", "days", "week", "weeks", "yr", "year", "years"),
)
_PLAIN_WORDS = (
    *("W", "watt", "watts", "kilowatt", "kilowatts", "megawatt", "megawatts", "gigawatt"),
    *("gigawatts", "Wh", "J", "byte", "bytes", "bit", "bits", "FLOP", "FLOPS", "flop", "flops"),
    *("USD", "usd", "dollar", "dollars", "token", "tokens", "tok", "percent", "Hz"),
    *("m", "km"),  # fibre lengths (network.scale_across distances)
)

#: Every word a quantity may use: time units (no prefixes: ``dd`` is not deci-days), and SI
#: prefixes k..E (and Ki..Ei for bytes) on watts, watt-hours, bytes, bits and FLOP(S).
UNIT_WORDS: frozenset[str] = frozenset(
    [
        *_TIME_WORDS,
        *_PLAIN_WORDS,
        *(p + base for p in _DECIMAL for base in ("W", "Wh", "B", "b", "bit", "FLOP", "FLOPS")),
        *(p + "B" for p in _BINARY),
        "kHz",
        "MHz",
        "GHz",
    ]
)

_EXAMPLE = {
    "s": "30 min",
    "1/s": "12 / d",
    "W": "1.2 GW",
    "USD/MWh": "$80/MWh",
    "USD/W": "$11.7/W",
    "USD": "$270000",
    "byte/s": "3.35 TB/s",
    "bit/s": "400 Gb/s",
    "m": "10 km",
    "byte": "80 GB",
    "FLOP/s": "2.5 PFLOPS",
}


_TIME_HINT = "; time units are s, ms, min, h, d, week, year"


class QuantityError(ValueError):
    """A value that is not a quantity of the expected dimension."""


def cut(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (with the full length said), for names in messages."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for echoing user input in a message."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text):,} characters)"
    if isinstance(value, list | tuple | dict):
        return f"a {type(value).__name__} of {len(value):,} entries"
    out = repr(value)
    return out if len(out) <= limit else out[:limit] + "..."


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint  # local: costs ~0.4 s, only paid when a string needs parsing

    ureg: Any = pint.UnitRegistry(on_redefinition="raise", autoconvert_offset_to_baseunit=True)
    ureg.define("FLOP = [flop] = flop")
    ureg.define("FLOPS = FLOP / second = flops")
    ureg.define("USD = [currency] = usd = dollar")
    ureg.define("token = [token] = tokens = tok")
    return ureg


def _example(unit: str) -> str:
    return _EXAMPLE.get(unit, "0.5" if unit in ("", "dimensionless", "1") else f"1 {unit}")


def _split(text: str, unit: str) -> tuple[float, str]:
    """The number and the checked unit expression of ``text`` (dollar signs moved to ``USD``)."""
    shown = short(text)
    if "(" in text or ")" in text or "[" in text or "]" in text:
        raise QuantityError(
            f"cannot read {shown} as a quantity: brackets are not allowed; write one number and"
            f" one unit, e.g. {_example(unit)!r}"
        )
    m = _DOLLAR_FIRST.match(text)
    if m:
        num, rest = m.group("num"), m.group("rest")
        scale = _MONEY_SCALE.match(rest)  # $3.9M, $30B, $300k/MW/year: money magnitudes
        if scale:
            num = repr(float(num) * _MONEY_SUFFIX[scale.group(1)])
            rest = rest[scale.end() :]
        text = f"{num} USD {rest}".strip()
    if text.count("$") > 1:
        raise QuantityError(f"cannot read {shown} as a quantity: more than one '$'")
    text = re.sub(r"\s*\$\s*", " USD ", text).strip()
    m = _QUANTITY.match(text)
    if not m:
        raise QuantityError(
            f"cannot read {shown} as a quantity: expected one number and one unit, e.g."
            f" {_example(unit)!r}"
        )
    words = re.findall(_WORD, m.group("unit") or "")
    for w in words:
        if w not in UNIT_WORDS:
            raise QuantityError(
                f"cannot read {shown} as a quantity: unknown unit {short(w, 20)} (e.g."
                f" {_example(unit)!r}{_TIME_HINT if unit in ('s', '1/s') else ''})"
            )
    expr = re.sub(_WORD, lambda mm: _BITS.sub(r"\1bit", mm.group(0)), m.group("unit") or "")
    return float(m.group("num")), expr.strip()


@lru_cache(maxsize=1024)
def _parse_string(text: str, unit: str, require_unit: bool) -> float:
    if len(text) > MAX_QUANTITY_CHARS:
        raise QuantityError(
            f"a quantity is at most {MAX_QUANTITY_CHARS} characters, got {len(text):,}"
            f" ({short(text, 20)})"
        )
    plain = unit in ("", "dimensionless", "1")
    try:
        # YAML reads 3e6 (no dot) as a string: a bare number is in the target unit
        return _bare(float(text), unit, require_unit, text)
    except ValueError as exc:
        if isinstance(exc, QuantityError):
            raise
    m = _PERCENT.match(text)
    if m and plain:
        return float(m.group("num")) / 100.0
    number, expr = _split(text, unit)
    if not expr:
        return _bare(number, unit, require_unit, text)
    ureg = _registry()
    import pint

    try:
        q = (
            ureg.Quantity(number, ureg.parse_units(expr.lstrip("/").strip()) ** -1)
            if (expr.startswith("/"))
            else ureg.Quantity(number, ureg.parse_units(expr))
        )
    except Exception as exc:  # pint raises many kinds (and AssertionError) on odd input
        raise QuantityError(f"cannot read {short(text)} as a quantity ({exc})") from None
    try:
        return float(q.to(unit).magnitude) if not plain else float(q.to("").magnitude)
    except pint.errors.DimensionalityError:
        want = unit if not plain else "a plain number"
        kind = _kind(ureg, q.units)
        raise QuantityError(
            f"{short(text)} is in {q.units:~}{f' ({kind})' if kind else ''}, expected a quantity"
            f" in {want}"
        ) from None


#: Names of the kinds of quantity a scenario gives, for a value of the wrong kind (``'1 GWh'
#: is in GWh (an energy)``) in place of pint's dimensions (``[mass] * [length] ** 2 / ...``).
_KINDS = (
    ("W", "a power"),
    ("J", "an energy"),
    ("s", "a time"),
    ("1/s", "a rate per time"),
    ("m", "a length"),
    ("byte", "an amount of data"),
    ("byte/s", "a bandwidth"),
    ("USD", "money"),
    ("USD/J", "a price of energy"),
    ("USD/W", "a price of power"),
    ("g/J", "an emission intensity"),
    ("FLOP", "an amount of computation"),
    ("FLOP/s", "a computation rate"),
    ("degC", "a temperature"),
)


def _kind(ureg: Any, units: Any) -> str | None:
    dim = ureg.Quantity(1.0, units).dimensionality
    for ref, name in _KINDS:
        if ureg.Quantity(1.0, ref).dimensionality == dim:
            return name
    return None


def _bare(value: float, unit: str, require_unit: bool, shown: Any) -> float:
    if require_unit and value != 0 and math.isfinite(value):
        raise QuantityError(
            f"{short(shown)} has no unit; write it with one, e.g. {_example(unit)!r}"
            " (a bare number would be a guess)"
        )
    return value


def parse_quantity(value: Any, unit: str, *, require_unit: bool = False) -> float:
    """Return ``value`` as a float in ``unit``.

    ``value`` may be an int or float (taken as already in ``unit``, unless ``require_unit``) or
    a string with a unit (``"1.2 GW"``). Raises :class:`QuantityError` with a readable reason
    otherwise.
    """
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity in {unit or 'a plain number'}, got {value!r}")
    if isinstance(value, int | float):
        if isinstance(value, int) and abs(value) > 10**300:
            raise QuantityError(f"{short(value)} is not a finite number")
        out = _bare(float(value), unit, require_unit, value)
    elif isinstance(value, str):
        out = _parse_string(value.strip(), unit, require_unit)
    else:
        raise QuantityError(
            f"expected a number or a string with a unit ({unit or 'dimensionless'}),"
            f" got {type(value).__name__}"
        )
    if not math.isfinite(out):
        raise QuantityError(f"{short(value)} is not a finite number")
    return out


def quantity(unit: str, *, require_unit: bool = False) -> Any:
    """A pydantic ``BeforeValidator`` that reads a field as a quantity in ``unit``::

    Seconds = Annotated[float, quantity("s", require_unit=True), Field(ge=0)]
    """
    from pydantic import BeforeValidator

    return BeforeValidator(lambda v: parse_quantity(v, unit, require_unit=require_unit))
