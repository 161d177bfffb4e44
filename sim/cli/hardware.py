"""``aifactory hardware [NAME]``: show the hardware catalog, or one entry with its sources."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sim.catalog.hardware import HardwareSpec, Precision, Provenance, catalog, catalog_sources
from sim.catalog.prices import domain_price

EXIT_OK = 0
EXIT_USER_ERROR = 2

_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_UNITS = {  # last component of a field path -> display unit
    "hbm_bytes": "B",
    "memory_bytes": "B",
    "hbm_bandwidth_bytes_per_s": "B/s",
    "memory_bandwidth_bytes_per_s": "B/s",
    "scaleup_bandwidth_bytes_per_s": "B/s",
    "scaleout_bandwidth_bits_per_s": "b/s",
    "gpu_tdp_w": "W",
    "domain_power_w": "W",
    "domain_price_usd": "USD",
}
_PRECISIONS = (Precision.BF16, Precision.FP8, Precision.FP4)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "hardware",
        help="show the hardware catalog (or one entry with its sources)",
        description="List the packaged hardware catalog; with NAME, show that entry in full:"
        " every number with its unit, sources, range, weak flag and note.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="catalog entry, e.g. gb200_nvl72")
    p.set_defaults(handler=cmd_hardware)


def cmd_hardware(args: argparse.Namespace) -> int:
    entries = catalog()
    name: str | None = getattr(args, "name", None)
    console = _console()
    if name is None:
        console.print(_catalog_table(entries))
        return EXIT_OK
    key = name.strip().lower().replace("-", "_")
    if key not in entries:
        known = sorted(entries)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        sys.stderr.write(f"error: unknown hardware '{name}'; known: {', '.join(known)}{hint}\n")
        return EXIT_USER_ERROR
    _print_entry(console, key, entries[key], catalog_sources())
    return EXIT_OK


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=200)


# --- formatting ------------------------------------------------------------------------------


def fmt_si(value: float, unit: str) -> str:
    """``8e12, "B/s"`` -> ``"8 TB/s"``; ``3.4e6, "USD"`` -> ``"$3.4M"``."""
    if unit == "USD":
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"${value / scale:.4g}{suffix}"
        return f"${value:.4g}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def _unit_of(path: str) -> str | None:
    if path.split(".")[-2:-1] == ["peak_flops"]:
        return "FLOP/s"
    return _UNITS.get(path.rsplit(".", 1)[-1])


def _fmt_value(path: str, value: Any, spec: HardwareSpec | None = None) -> str:
    if path.startswith("efficiency.") and isinstance(value, int | float):
        if path.endswith("_s") or "_latency_s." in path:  # a kernel time (microseconds)
            return f"{value * 1e6:.2f} µs"
        return f"{value:.2f}"  # a fraction of the part's own peak
    if path.startswith("activity_power.") and isinstance(value, int | float):
        # a fraction of domain_power_w; the watts it stands for make it readable
        watts = f" ({fmt_si(value * spec.domain_power_w, 'W')})" if spec is not None else ""
        return f"{value:.2f}{watts}"
    unit = _unit_of(path)
    if unit is not None and isinstance(value, int | float):
        return fmt_si(float(value), unit)
    return str(value.value if hasattr(value, "value") else value)


def _cell(spec: HardwareSpec, path: str, value: float | None, scale: float, digits: int) -> Text:
    """A table cell in a fixed unit; weak values get a trailing ``*``."""
    if value is None:
        return Text("—", style="dim")
    weak = spec.provenance.get(path, Provenance()).weak
    return Text(f"{value / scale:,.{digits}f}" + ("*" if weak else ""))


def _catalog_table(entries: dict[str, HardwareSpec]) -> Table:
    table = Table(
        title="Hardware catalog (dense FLOP/s per GPU package)",
        caption="* weakly sourced or derived; ~ price estimated by the rule of"
        " sim/catalog/prices.py (no sourced price); `aifactory hardware NAME` shows sources",
    )
    headers = ["name", "display name", "status", "year", "GPUs\n/domain"]
    headers += [f"{p.value.upper()}\nPF/s" for p in _PRECISIONS]
    headers += ["HBM\nGB", "HBM\nTB/s", "scale-up\nTB/s", "NIC\nGb/s", "GPU TDP\nW"]
    headers += ["domain\nkW", "cooling", "domain\nprice"]
    for h in headers:
        left = h in ("name", "display name", "status", "cooling")
        table.add_column(
            h,
            justify="left" if left else "right",
            no_wrap=h != "display name",
            min_width=30 if h == "display name" else None,
        )
    sourced = catalog()
    for name, s in entries.items():
        if s.domain_price_usd is not None:
            weak = "*" if _weak(s, "domain_price_usd") else ""
            price = Text(fmt_si(s.domain_price_usd, "USD") + weak)
        else:  # the estimate a run uses (sim.catalog.prices), marked as such
            price = Text("~" + fmt_si(domain_price(name, s, sourced).usd, "USD"), style="yellow")
        row: list[Text] = [
            Text(name, style="bold"),
            Text(s.display_name),
            Text(s.status),
            Text(str(s.year) if s.year is not None else "—"),
            Text(str(s.domain_gpus)),
        ]
        row += [
            _cell(s, f"peak_flops.{p.value}", s.peak_flops.get(p), 1e15, 2) for p in _PRECISIONS
        ]
        row += [
            _cell(s, "hbm_bytes", s.hbm_bytes, 1e9, 0),
            _cell(s, "hbm_bandwidth_bytes_per_s", s.hbm_bandwidth_bytes_per_s, 1e12, 2),
            _cell(s, "scaleup_bandwidth_bytes_per_s", s.scaleup_bandwidth_bytes_per_s, 1e12, 2),
            _cell(s, "scaleout_bandwidth_bits_per_s", s.scaleout_bandwidth_bits_per_s, 1e9, 0),
            _cell(s, "gpu_tdp_w", s.gpu_tdp_w, 1.0, 0),
            _cell(s, "domain_power_w", s.domain_power_w, 1e3, 1),
            Text(s.cooling.value),
            price,
        ]
        table.add_row(*row)
    return table


def _weak(spec: HardwareSpec, path: str) -> bool:
    return spec.provenance.get(path, Provenance()).weak


def _source_order(key: str) -> tuple[int, str]:
    digits = key.lstrip("S")
    return (int(digits), key) if digits.isdigit() else (10**9, key)


def _fields(spec: HardwareSpec) -> list[tuple[str, Any]]:
    """Every field of an entry as ``(dotted path, value)``, in model order."""
    out: list[tuple[str, Any]] = []
    for field in HardwareSpec.model_fields:
        if field == "provenance":
            continue
        value = getattr(spec, field)
        if field == "peak_flops":
            out += [(f"peak_flops.{p.value}", value[p]) for p in _PRECISIONS if p in value]
        elif field == "activity_power":
            out += [(f"{field}.{k}", getattr(value, k)) for k in type(value).model_fields]
        elif field == "efficiency":
            for k in type(value).model_fields:
                v = getattr(value, k)
                if isinstance(v, dict):
                    out += [(f"{field}.{k}.{p.value}", v[p]) for p in _PRECISIONS if p in v]
                else:
                    out.append((f"{field}.{k}", v))
        elif field == "prefill_accelerator":
            if value is None:
                continue
            for sub in type(value).model_fields:
                v = getattr(value, sub)
                if sub == "peak_flops":
                    out += [(f"{field}.peak_flops.{p.value}", v[p]) for p in _PRECISIONS if p in v]
                else:
                    out.append((f"{field}.{sub}", v))
        else:
            out.append((field, value))
    return out


def _print_entry(console: Console, name: str, spec: HardwareSpec, sources: dict[str, str]) -> None:
    table = Table(title=f"{name}: {spec.display_name}", show_lines=True)
    for col in ("field", "value", "range", "weak", "sources"):
        table.add_column(col, no_wrap=col != "value", max_width=28 if col == "value" else None)
    table.add_column("note", overflow="fold", ratio=1)
    cited: list[str] = []
    for path, value in _fields(spec):
        prov = spec.provenance.get(path)
        rng = ""
        if prov is not None and prov.range is not None:
            rng = " – ".join(_fmt_value(path, x, spec) for x in prov.range)
        srcs = list(prov.sources) if prov is not None else []
        cited += [k for k in srcs if k not in cited]
        shown = "—" if value is None else _fmt_value(path, value, spec)
        note = prov.note if prov is not None else ""
        if path == "domain_price_usd" and value is None:
            quote = domain_price(name, spec, catalog())
            shown = "~" + _fmt_value(path, quote.usd, spec)
            note = quote.note + " (sim/catalog/prices.py; a run uses it, flagged)"
        table.add_row(
            Text(path, style="bold"),
            Text(shown),
            Text(rng),
            Text("weak" if prov is not None and prov.weak else "", style="yellow"),
            Text(", ".join(srcs)),
            Text(note),
        )
    console.print(table)
    if cited:
        src_table = Table(title="Sources", show_header=False, box=None)
        src_table.add_column("key", style="bold", no_wrap=True)
        src_table.add_column("citation", overflow="fold")
        for key in sorted(cited, key=_source_order):
            src_table.add_row(Text(key), Text(sources.get(key, "(missing from sources table)")))
        console.print(src_table)
