"""The one look of every figure: template, colours, units in axis titles, number formatting.

Colours are fixed per *meaning*, so a colour says the same thing in every figure and report:

* :data:`GENERATION_COLORS`: one colour per catalog hardware name, used wherever runs or halls of
  different generations appear side by side (comparisons, per-hall traces);
* :data:`WORKLOAD_COLORS`: one colour per GPU state or workload class (pre-training,
  post-training, inference, idle, failed);
* :data:`SERIES_COLORS`: recurring quantities (IT power, facility power, caps, cost parts);
* :data:`HALL_COLORS`: the data halls of one site, in the order of the scenario (shades of the
  IT-power blue, dark and light alternating so neighbouring stacked areas stand apart);
* :data:`TIER_COLORS`: the tiers of the fabric (unit, pod, building, site);
* :func:`holder_colors`: one colour per job or service holding GPUs, a shade of its workload's
  colour picked by its name, so a placement view reads as workloads first and jobs second, and a
  job has the same colour in every run.

Axis titles always carry their unit in parentheses (``"power (MW)"``): :func:`axis` builds them.
Time axes are in days since the start of the run. Nothing here touches plotly's global state
(no template registration): :func:`styled` applies :data:`TEMPLATE` to one figure.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "CLASS_COLORS",
    "GENERATION_COLORS",
    "HALL_COLORS",
    "SERIES_COLORS",
    "TEMPLATE",
    "TIER_COLORS",
    "TIME_SERIES_LEGEND",
    "TIME_SERIES_MARGIN",
    "WORKLOAD_COLORS",
    "axis",
    "class_color",
    "duration",
    "fmt",
    "generation_color",
    "hall_color",
    "holder_colors",
    "money",
    "plural",
    "si",
    "styled",
    "time_series_styled",
]


#: Catalog hardware name -> colour. Greens for Hopper, blues for Blackwell, purples for Rubin,
#: reds for AMD: neighbouring generations of a family are told apart by lightness.
GENERATION_COLORS: dict[str, str] = {
    "h100_sxm": "#7cb342",
    "h200_sxm": "#33691e",
    "b200_hgx": "#4fc3f7",
    "b300_hgx": "#0288d1",
    "gb200_nvl72": "#1e88e5",
    "gb300_nvl72": "#0d47a1",
    "vr200_nvl144": "#8e24aa",
    "vr200_nvl144_cpx": "#ba68c8",
    "rubin_ultra_nvl576": "#4a148c",
    "mi300x": "#e53935",
    "mi355x": "#b71c1c",
}

#: Colours for hardware not in the catalog (inline scenario entries), assigned in order.
_FALLBACK_COLORS = ("#ff8f00", "#00897b", "#6d4c41", "#546e7a", "#d81b60", "#c0ca33")

#: GPU states and workload classes.
WORKLOAD_COLORS: dict[str, str] = {
    "pretraining": "#1f77b4",
    "posttraining": "#ff7f0e",
    "inference": "#2ca02c",
    "idle": "#d9d9d9",
    "failed": "#d62728",
}

SERIES_COLORS: dict[str, str] = {
    "it_power": "#1f77b4",
    "facility_power": "#9467bd",
    "overhead": "#fdd0a2",
    "cap": "#d62728",
    "provisioned": "#7f7f7f",
    "pue": "#8c564b",
    "cooling_load": "#17becf",
    "headroom": "#2ca02c",
    "demand": "#7f7f7f",
    "served": "#2ca02c",
    "capacity": "#1f77b4",
    "failures": "#d62728",
    "repairs": "#2ca02c",
    "interruptions": "#8d6e63",
    "capex": "#455a64",
    "energy": "#fbc02d",
    "idle_cost": "#d9d9d9",
    "dry_bulb": "#e6550d",
    "wet_bulb": "#fd8d3c",
    "price": "#b8860b",
    "carbon": "#636363",
    "emissions": "#969696",
    "demand_response": "rgba(214, 39, 40, 0.10)",
}

#: Priority classes, by name where the default scheduler names them (the colours of their
#: workloads), else in order.
CLASS_COLORS: dict[str, str] = {
    "inference": "#2ca02c",
    "pretraining": "#1f77b4",
    "posttraining": "#ff7f0e",
}
_CLASS_FALLBACK = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f")

#: Data halls in scenario order (cycled beyond eight).
HALL_COLORS = (
    "#08519c",
    "#6baed6",
    "#2171b5",
    "#9ecae1",
    "#0e7c86",
    "#4292c6",
    "#17becf",
    "#c6dbef",
)

#: Tiers of the fabric, innermost first (:mod:`sim.network`).
TIER_COLORS: dict[str, str] = {
    "unit": "#17becf",
    "pod": "#9467bd",
    "building": "#e377c2",
    "site": "#8c564b",
}

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": "Helvetica, Arial, sans-serif", "size": 13, "color": "#222"},
        title={"x": 0.0, "xanchor": "left", "font": {"size": 16}},
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=[
            "#1f77b4",
            "#ff7f0e",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#8c564b",
            "#e377c2",
            "#7f7f7f",
            "#bcbd22",
            "#17becf",
        ],
        xaxis={"showgrid": True, "gridcolor": "#eee", "zeroline": False, "linecolor": "#999"},
        yaxis={"showgrid": True, "gridcolor": "#eee", "zeroline": False, "linecolor": "#999"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0},
        hovermode="x unified",
        margin={"l": 70, "r": 30, "t": 90, "b": 60},
    )
)


def axis(quantity: str, unit: str | None = None) -> str:
    """An axis title with its unit: ``axis("power", "MW") == "power (MW)"``."""
    return f"{quantity} ({unit})" if unit else quantity


def styled(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    """Apply the report template and a title to ``fig`` (in place) and return it."""
    fig.update_layout(template=TEMPLATE, title={"text": title}, height=height)
    return fig


#: Every figure with a time axis has its legend below the plot, horizontal, and the same left and
#: right margins (room for a secondary y axis), so the time axes of the figures of one page line
#: up under each other. The legend is anchored to the bottom of the figure (container
#: coordinates) in a bottom margin with room for two rows of entries.
TIME_SERIES_LEGEND: dict[str, Any] = {
    "orientation": "h",
    "x": 0.0,
    "xanchor": "left",
    "y": 0.0,
    "yanchor": "bottom",
    "yref": "container",
    "traceorder": "normal",
}
TIME_SERIES_MARGIN: dict[str, int] = {"l": 80, "r": 90, "t": 70, "b": 120}


def time_series_styled(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    """:func:`styled` for a figure with a time axis: legend below the plot and the shared margins
    (:data:`TIME_SERIES_LEGEND`, :data:`TIME_SERIES_MARGIN`). ``height`` is as for
    :func:`styled`: the figure is made taller by what its margins add, so the plot keeps its
    size."""
    m, base = TIME_SERIES_MARGIN, TEMPLATE.layout.margin
    styled(fig, title, height + m["t"] + m["b"] - int(base.t) - int(base.b))
    fig.update_layout(legend=TIME_SERIES_LEGEND, margin=m)
    # a secondary axis on the right fits in the margin: it must not widen it for its figure
    fig.update_yaxes(automargin=False, selector={"side": "right"})
    return fig


def generation_color(hardware: str, others: list[str] | None = None) -> str:
    """The colour of a hardware generation; unknown names get a stable fallback colour.

    ``others``: the unknown names in the same figure, in order, so that two unknown generations
    in one comparison get different colours.
    """
    if hardware in GENERATION_COLORS:
        return GENERATION_COLORS[hardware]
    unknown = [h for h in (others or [hardware]) if h not in GENERATION_COLORS]
    i = unknown.index(hardware) if hardware in unknown else 0
    return _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]


def class_color(name: str, index: int) -> str:
    """The colour of a priority class: its workload's colour for the default class names, else
    one by its ``index`` in the scheduler's list."""
    return CLASS_COLORS.get(name, _CLASS_FALLBACK[index % len(_CLASS_FALLBACK)])


def hall_color(index: int) -> str:
    """The colour of the ``index``-th hall of a site (0-based, scenario order)."""
    return HALL_COLORS[index % len(HALL_COLORS)]


def holder_colors(holders: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One colour per holder, from ``(name, workload)`` pairs in order of importance (largest
    first): a shade of the workload's colour (:data:`WORKLOAD_COLORS`, :func:`_shade`) picked
    by the holder's name (CRC-32: the same in every run and process, so a job has one colour in
    every figure and report it appears in, side by side too). Where two names pick the same
    shade, the less important takes the next free one, so distinct holders get distinct
    colours (up to the several thousand shades of a workload); never the colours of idle or
    failed GPUs. A workload without a colour of its own gets grey-violet shades."""
    out: dict[str, str] = {}
    used = {WORKLOAD_COLORS["idle"], WORKLOAD_COLORS["failed"]}
    for name, workload in holders:
        if name in out:
            continue
        base = WORKLOAD_COLORS.get(workload, "#7b6f9e")
        i = zlib.crc32(name.encode("utf-8")) % _SHADES
        color = _shade(base, i)
        for _ in range(64):  # the next free shade
            if color not in used:
                break
            i = (i + 1) % _SHADES
            color = _shade(base, i)
        used.add(color)
        out[name] = color
    return out


#: Shades of a workload's colour a holder's name picks from.
_SHADES = 8192
#: The R2 sequence (Roberts 2018): the most even spread of points over a square, here the
#: lightness and hue of a workload's shades, so neighbours in the order differ most.
_R2 = (0.754_877_666_2, 0.569_840_290_9)


def _shade(hex_color: str, i: int) -> str:
    """The ``i``-th shade of a colour (the 0th is the colour itself): lightness in 0.28-0.72
    and hue within ±0.025 of the colour's (so orange never turns the red of failed GPUs), at
    least 0.55 saturation."""
    if i == 0:
        return hex_color
    h = hex_color.lstrip("#")
    r, g, b = (int(h[k : k + 2], 16) / 255.0 for k in (0, 2, 4))
    hue, _, sat = colorsys.rgb_to_hls(r, g, b)
    light = 0.28 + 0.44 * ((0.5 + i * _R2[0]) % 1.0)
    hue = (hue + 0.05 * (((0.5 + i * _R2[1]) % 1.0) - 0.5)) % 1.0
    rgb = colorsys.hls_to_rgb(hue, light, max(sat, 0.55))
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def fmt(x: Any, spec: str = ",.3g", unit: str = "", prefix: str = "") -> str:
    """Format a KPI value; None or NaN (unknown) reads ``n/a``, never a misleading number."""
    if x is None:
        return "n/a"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "n/a"
    return f"{prefix}{v:{spec}}{unit}"


def money(usd: Any, per: str = "") -> str:
    """Dollars as money: ``$143k``, ``$54.1M``, ``$1.23B``, ``$1.73``, ``$0.0531``; ``per``
    appends a unit (``money(1.73, "GPU-h")`` is ``$1.73/GPU-h``); ``n/a`` if unknown."""
    if usd is None:
        return "n/a"
    try:
        v = float(usd)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    unit = f"/{per}" if per else ""
    sign = "-" if v < 0 else ""
    a = abs(v)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div * 0.9995:
            return f"{sign}${_sig3(a / div)}{suffix}{unit}"
    if a >= 1 or a == 0:
        return f"{sign}${a:,.2f}{unit}" if a < 100 else f"{sign}${a:,.0f}{unit}"
    return f"{sign}${a:.3g}{unit}"


def _sig3(x: float) -> str:
    """Three significant digits without an exponent: 1.23, 12.3, 123, 1,230."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def si(x: Any, digits: int = 3) -> str:
    """A count with an SI suffix: ``53.2T``, ``4.85G``, ``413k``; ``n/a`` if unknown."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    v = float(x)
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.{digits}g}{suffix}"
    return f"{v:.{digits}g}"


def duration(hours: Any) -> str:
    """A duration in the unit that fits its magnitude: ``7.6 s``, ``1.1 min``, ``5.2 h``,
    ``3.5 d``; ``n/a`` if unknown. Two significant digits below 10, whole numbers above."""
    if hours is None or not math.isfinite(float(hours)):
        return "n/a"
    s = float(hours) * 3600.0
    for div, unit, below in ((1.0, "s", 60.0), (60.0, "min", 3600.0), (3600.0, "h", 48 * 3600.0)):
        if abs(s) < below:
            return f"{_digits(s / div)} {unit}"
    return f"{_digits(s / 86_400.0)} d"


def _digits(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.2g}" if abs(v) < 10 else f"{v:,.0f}"


def plural(n: Any, word: str, many: str | None = None) -> str:
    """``1 interruption``, ``2 interruptions``, ``1,234 post-training streams``: a count with its
    noun singular or plural (``many``: an irregular plural)."""
    k = int(n)
    return f"{k:,} {word if k == 1 else (many or word + 's')}"
