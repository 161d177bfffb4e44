"""Cooling: archetype PUE against facility.md §1.3's table, load dependence, the §1.4 capacity
derate, hybrid halls, the default archetype by hardware and the cooling keys' errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sim.config.climate import ARCHETYPE_NAMES, HYBRID_AIR_SHARE
from sim.config.loader import ScenarioError
from sim.facility.cooling import (
    ARCHETYPES,
    CoolingPart,
    HallCooling,
    capacity_fraction,
    cooling_capacity_w,
    mechanical_share,
    pue,
    pue_array,
)
from sim.runner import prepare

Writer = Callable[..., Path]


def test_archetype_names_match_the_schema() -> None:
    assert tuple(ARCHETYPES) == ARCHETYPE_NAMES


@pytest.mark.parametrize(
    ("name", "free", "full"),
    [
        ("dlc_w45_dry", 1.06, 1.26),
        ("dlc_w32_dry", 1.06, 1.26),
        ("dlc_w32_tower", 1.07, 1.24),
        ("air_chiller_econ", 1.11, 1.33),
    ],
)
def test_pue_at_m0_and_m1_is_the_table(name: str, free: float, full: float) -> None:
    a = ARCHETYPES[name]
    assert pue(a, a.x_switch_c - 10) == pytest.approx(free, abs=0.005)
    assert pue(a, a.x_switch_c + a.band_c + 10) == pytest.approx(full, abs=0.005)
    assert float(mechanical_share(a, a.x_switch_c + a.band_c / 2)) == pytest.approx(0.5)


def test_fixed_loads_weigh_more_at_partial_load() -> None:
    a = ARCHETYPES["dlc_w32_dry"]
    assert pue(a, 10.0, 0.5) == pytest.approx(1.06 + 0.01)  # o / 0.5 = 0.02
    assert pue_array(a, np.array([10.0, 30.0]), np.array([1.0, 0.25])) == pytest.approx(
        [1.06, 1.05 + 0.2 + 0.04]
    )
    with pytest.raises(ValueError, match="load_fraction must be > 0"):
        pue(a, 10.0, 0.0)


def test_capacity_derate_example() -> None:
    """W45 loop, return 55 °C, designed for 37 °C: at 42 °C, 13/18 = 72% (facility.md §1.4)."""
    assert cooling_capacity_w(100.0, 55.0, 42.0, 37.0) == pytest.approx(100 * 13 / 18)
    assert cooling_capacity_w(100.0, 55.0, 20.0, 37.0) == 100.0  # no more than the plant
    assert cooling_capacity_w(100.0, 55.0, 20.0, 37.0, plant_w=120.0) == pytest.approx(120.0)
    assert cooling_capacity_w(100.0, 55.0, 60.0, 37.0) == 0.0
    with pytest.raises(ValueError, match=r"design temperature \(56 °C\) must be below"):
        capacity_fraction(55.0, 40.0, 56.0)


def test_hybrid_hall_blends_cooling_and_is_limited_by_its_tightest_part() -> None:
    liquid, air = ARCHETYPES["dlc_w32_dry"], ARCHETYPES["air_chiller_econ"]
    hall = HallCooling((CoolingPart(liquid, 0.85, 37.0), CoolingPart(air, 0.15, 37.0)), 1e6, 1e6)
    # all free cooling: 1 + e(0.03) + 0.85 x 0.02 + 0.15 x 0.06 + o(0.01)
    assert float(hall.pue(10.0, 5.0, 1.0)) == pytest.approx(1.066)
    assert float(hall.facility_power_w(10.0, 5.0, 5e5)) == pytest.approx(5e5 * 1.056 + 1e4)
    assert float(hall.facility_power_w(10.0, 5.0, 0.0)) == pytest.approx(1e4)  # lights on
    # at 40 °C: both parts fully mechanical; capacity (55 − 40)/(55 − 37) of design
    assert float(hall.pue(40.0, 20.0, 1.0)) == pytest.approx(
        1.04 + 0.85 * (0.02 + 0.2) + 0.15 * (0.06 + 1 / 4.5)
    )
    assert float(hall.capacity_w(40.0, 20.0)) == pytest.approx(1e6 * 15 / 18)
    arr = hall.capacity_w(np.array([30.0, 46.0]), np.array([20.0, 20.0]))
    assert arr == pytest.approx([1e6, 1e6 * 9 / 18])
    assert hall.design_pue() == pytest.approx(float(hall.pue(37.0, 0.0, 1.0)))


def test_tower_hall_follows_the_wet_bulb() -> None:
    tower = ARCHETYPES["dlc_w32_tower"]
    hall = HallCooling((CoolingPart(tower, 1.0, 25.0),), 1e6, 1e6)
    assert float(hall.pue(45.0, 20.0, 1.0)) == pytest.approx(1.07)  # hot, dry: still free
    assert float(hall.capacity_w(45.0, 30.0)) == pytest.approx(1e6 * 5 / 10)


# --------------------------------------------------------------------------- in a scenario

BASE = """\
name: t
run:
  duration: 2 d
facility:
  grid_power: 2 MW
  pue: weather
  weather: {kind: constant, dry_bulb: 30 C, wet_bulb: 20 C}
  halls:
    - name: h1
      hardware: gb200_nvl72
      racks: 4
    - name: h2
      hardware: h100_sxm
      racks: 4
reliability:
  enabled: false
"""


def test_default_archetypes_by_hardware(write_scenario: Writer) -> None:
    _, plan = prepare(write_scenario(BASE))
    gb200, h100 = plan.facility.hall_cooling
    assert [p.archetype.name for p in gb200.parts] == ["dlc_w32_dry", "air_chiller_econ"]
    assert [p.heat_share for p in gb200.parts] == [1 - HYBRID_AIR_SHARE, HYBRID_AIR_SHARE]
    assert [p.archetype.name for p in h100.parts] == ["air_chiller_econ"]
    assert gb200.parts[0].x_design_c == 30.0  # a constant weather is its own design point
    assert gb200.design_capacity_w == plan.halls[0].it_power_capacity_w
    assert plan.facility.pue == pytest.approx(max(gb200.design_pue(), h100.design_pue()))


def test_cooling_keys_override_the_defaults(write_scenario: Writer) -> None:
    text = BASE.replace(
        "      racks: 4\n    - name: h2",
        "      racks: 4\n      cooling: dlc_w45_dry\n      design_ambient: 35 C\n"
        "      air_share: 0\n      cooling_capacity: 1 MW\n    - name: h2",
    )
    _, plan = prepare(write_scenario(text))
    hall = plan.facility.hall_cooling[0]
    assert [(p.archetype.name, p.heat_share, p.x_design_c) for p in hall.parts] == [
        ("dlc_w45_dry", 1.0, 35.0)
    ]
    assert hall.design_capacity_w == 1e6


def test_cooling_key_errors(write_scenario: Writer) -> None:
    def error(*overrides: str) -> str:
        with pytest.raises(ScenarioError) as info:
            prepare(write_scenario(BASE), overrides=overrides)
        return str(info.value)

    assert "facility.halls[0].cooling: expected 'dlc_w45_dry', 'dlc_w32_dry'," in error(
        "facility.halls[0].cooling=dlc_w50"
    )
    assert (
        "facility.halls[1].air_share: an air_chiller_econ hall sends all its heat to air"
        " already" in error("facility.halls[1].air_share=0.2")
    )
    assert "facility.halls[0].air_share: 1 is outside the plausible range [0, 1)" in error(
        "facility.halls[0].air_share=1"
    )
    assert (
        "facility.halls[0].design_ambient: the design dry-bulb temperature 56.0 °C is not below"
        " the 55 °C at which dlc_w32_dry rejects heat"
        in error("facility.halls[0].design_ambient=56")
    )
