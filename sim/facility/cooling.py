"""Cooling plants: PUE and heat-rejection capacity of a hall as functions of the outdoor air and
the hall's load (facility.md §1.3, §1.4, §9).

PUE of one archetype at outdoor temperature X (dry- or wet-bulb, by archetype) and load
fraction L = IT power / the hall's IT capacity::

    PUE(X, L) = 1 + e + f + m(X)/COP + o/L        m(X) = clamp((X − X_sw)/dX, 0, 1)

e: electrical losses, f: pumps, CDUs, fans, m: the share of heat rejected mechanically (chillers)
with coefficient of performance COP, o: lighting and miscellaneous. All are fractions of IT
power at full load. facility.md writes ``+ o``; here o is a *fixed* power, o x the hall's IT
capacity, so at partial load it weighs more (assumption: lights and offices do not follow the
IT load); at L = 1 the two agree. e, f and m/COP are taken proportional to IT power
(assumption: UPS and fan losses also have fixed parts, not modelled). At L = 0 the PUE is
undefined; :meth:`HallCooling.facility_power_w` gives the power at any load.

Heat-rejection capacity (§1.4): ``Q(X) = Q_design (T_return − X)/(T_return − X_design)``,
clamped to [0, Q_plant]; Q_plant defaults to Q_design (the plant is not oversized, assumption).

A hall may have two parts (hybrid racks): a liquid archetype and an ``air_chiller_econ`` share
for the heat that goes to room air. The parts' cooling terms (f + m/COP) are weighted by their
heat shares; e and o are those of the main archetype. The hall removes the IT heat its tightest
part allows: capacity = Q_design x min over parts of Q_part(X)/Q_part,design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ARCHETYPES",
    "Archetype",
    "CoolingPart",
    "HallCooling",
    "capacity_fraction",
    "cooling_capacity_w",
    "mechanical_share",
    "pue",
    "pue_array",
]


@dataclass(frozen=True)
class Archetype:
    """A cooling plant design (facility.md §1.3 table, §9 ``pue_model.archetypes``)."""

    name: str
    x: Literal["dry_bulb", "wet_bulb"]  # the outdoor temperature that drives the plant
    x_switch_c: float  # X_sw: above it chillers take a share of the heat
    band_c: float  # dX: from no to all heat rejected mechanically
    electrical_loss: float  # e
    fans_pumps: float  # f
    cop: float  # chillers' coefficient of performance
    other: float  # o, at full load
    return_c: float  # T_return of the heat-rejection formula (§1.4)
    source: str


_SECTION = "facility.md §1.3/§9"
_CHILLER_RETURN = (
    "T_return 55 °C: with chillers the heat is rejected at their condensing temperature, ~50-55"
    " °C for an air-cooled condenser at full lift (assumption)"
)
#: The four archetypes, by scenario name (``halls[].cooling``).
ARCHETYPES: dict[str, Archetype] = {
    "dlc_w45_dry": Archetype(
        "dlc_w45_dry",
        "dry_bulb",
        37.0,
        5.0,
        0.03,
        0.02,
        5.0,
        0.01,
        55.0,
        f"{_SECTION}: DLC, W45 loop, dry coolers (Rubin-class); X_sw 45 − 8 °C approach [F13]"
        " [F16]; T_return 55 °C loop outlet [F13]",
    ),
    "dlc_w32_dry": Archetype(
        "dlc_w32_dry",
        "dry_bulb",
        24.0,
        5.0,
        0.03,
        0.02,
        5.0,
        0.01,
        55.0,
        f"{_SECTION}: DLC, W32 loop, dry coolers and trim chillers (GB200-class);"
        f" {_CHILLER_RETURN}",
    ),
    "dlc_w32_tower": Archetype(
        "dlc_w32_tower",
        "wet_bulb",
        27.0,
        5.0,
        0.03,
        0.03,
        6.0,
        0.01,
        35.0,
        f"{_SECTION}: DLC, W32 loop, cooling towers + HX; X_sw 32 − 3 (tower) − 2 (HX) °C [F17];"
        " T_return 35 °C leaving condenser water, the usual chiller rating point (assumption)",
    ),
    "air_chiller_econ": Archetype(
        "air_chiller_econ",
        "dry_bulb",
        24.0,
        6.0,
        0.04,
        0.06,
        4.5,
        0.01,
        55.0,
        f"{_SECTION}: air-cooled hall, CRAH + chillers + air economizer (H100 HGX); COP 4.5 [F8]"
        f" (weak); {_CHILLER_RETURN}",
    ),
}


def mechanical_share(arch: Archetype, x_c: ArrayLike) -> np.ndarray:
    """m(X): the share of heat rejected by chillers at outdoor temperature ``x_c``."""
    return np.clip((np.asarray(x_c, dtype=float) - arch.x_switch_c) / arch.band_c, 0.0, 1.0)


def pue_array(arch: Archetype, x_c: ArrayLike, load_fraction: ArrayLike = 1.0) -> np.ndarray:
    """PUE of ``arch`` at outdoor temperature ``x_c`` and ``load_fraction`` (> 0; 0 gives inf)."""
    load = np.asarray(load_fraction, dtype=float)
    cooling = arch.fans_pumps + mechanical_share(arch, x_c) / arch.cop
    with np.errstate(divide="ignore"):
        return 1.0 + arch.electrical_loss + cooling + arch.other / load


def pue(arch: Archetype, x_c: float, load_fraction: float = 1.0) -> float:
    """PUE of ``arch`` at one outdoor temperature and load fraction (> 0)."""
    if not load_fraction > 0:
        raise ValueError(f"load_fraction must be > 0, got {load_fraction!r}")
    return float(pue_array(arch, x_c, load_fraction))


def capacity_fraction(
    return_c: float, x_c: ArrayLike, x_design_c: float, plant_fraction: float = 1.0
) -> np.ndarray:
    """Q(X)/Q_design = (T_return − X)/(T_return − X_design), clamped to [0, Q_plant/Q_design]."""
    if not x_design_c < return_c:
        raise ValueError(
            f"the design temperature ({x_design_c:g} °C) must be below T_return ({return_c:g} °C)"
        )
    ratio = (return_c - np.asarray(x_c, dtype=float)) / (return_c - x_design_c)
    return np.clip(ratio, 0.0, plant_fraction)


def cooling_capacity_w(
    design_w: float,
    return_c: float,
    x_c: float,
    x_design_c: float,
    plant_w: float | None = None,
) -> float:
    """Heat (W) a plant designed for ``design_w`` at ``x_design_c`` rejects at ``x_c`` (§1.4)."""
    plant = 1.0 if plant_w is None else plant_w / design_w
    return design_w * float(capacity_fraction(return_c, x_c, x_design_c, plant))


@dataclass(frozen=True)
class CoolingPart:
    """One plant of a hall: its archetype, its share of the hall's heat, its design X."""

    archetype: Archetype
    heat_share: float
    x_design_c: float


@dataclass(frozen=True)
class HallCooling:
    """A hall's cooling: its parts (the main one first), the heat it rejects at design
    conditions and the IT capacity its fixed loads (o) scale with."""

    parts: tuple[CoolingPart, ...]
    design_capacity_w: float
    it_capacity_w: float

    @property
    def main(self) -> Archetype:
        return self.parts[0].archetype

    def _x(self, part: CoolingPart, dry_bulb_c: ArrayLike, wet_bulb_c: ArrayLike) -> np.ndarray:
        return np.asarray(dry_bulb_c if part.archetype.x == "dry_bulb" else wet_bulb_c, float)

    def overhead_per_it(self, dry_bulb_c: ArrayLike, wet_bulb_c: ArrayLike) -> np.ndarray:
        """Facility power per watt of IT, less 1 and the fixed loads: e + Σ share (f + m/COP)."""
        total = np.asarray(self.main.electrical_loss, dtype=float)
        for p in self.parts:
            a = p.archetype
            m = mechanical_share(a, self._x(p, dry_bulb_c, wet_bulb_c))
            total = total + p.heat_share * (a.fans_pumps + m / a.cop)
        return total

    def facility_power_w(
        self, dry_bulb_c: ArrayLike, wet_bulb_c: ArrayLike, it_power_w: ArrayLike
    ) -> np.ndarray:
        """Facility power (W) of the hall: IT x (1 + e + cooling) + o x IT capacity."""
        it = np.asarray(it_power_w, dtype=float)
        return it * (1.0 + self.overhead_per_it(dry_bulb_c, wet_bulb_c)) + (
            self.main.other * self.it_capacity_w
        )

    def pue(
        self, dry_bulb_c: ArrayLike, wet_bulb_c: ArrayLike, load_fraction: ArrayLike
    ) -> np.ndarray:
        """PUE at the given outdoor air and load fraction (> 0; 0 gives inf)."""
        load = np.asarray(load_fraction, dtype=float)
        with np.errstate(divide="ignore"):
            return 1.0 + self.overhead_per_it(dry_bulb_c, wet_bulb_c) + self.main.other / load

    def design_pue(self) -> float:
        """PUE at full load with every part at its design outdoor temperature: what the grid
        connection must carry per watt of IT in the design hour."""
        total = 1.0 + self.main.electrical_loss + self.main.other
        for p in self.parts:
            a = p.archetype
            total += p.heat_share * (
                a.fans_pumps + float(mechanical_share(a, p.x_design_c)) / a.cop
            )
        return total

    def capacity_w(self, dry_bulb_c: ArrayLike, wet_bulb_c: ArrayLike) -> np.ndarray:
        """IT heat (W) the hall can reject at the given outdoor air: its tightest part."""
        frac: np.ndarray | None = None
        for p in self.parts:
            f = capacity_fraction(
                p.archetype.return_c, self._x(p, dry_bulb_c, wet_bulb_c), p.x_design_c
            )
            frac = f if frac is None else np.minimum(frac, f)
        assert frac is not None
        return self.design_capacity_w * frac
