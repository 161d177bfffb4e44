"""Facility power under weather: each hall's PUE follows the outdoor air through its cooling.

Two halls of different generations and cooling (an air-cooled H100 hall with chillers and an
economizer, a liquid-cooled GB200 hall with dry coolers) under synthetic Phoenix summer weather
with a heat wave. After every event, the site's facility power must equal the sum over halls of
the facility power that :mod:`sim.facility.cooling` gives for the hall's IT power (summed domain
by domain by ``engine_helpers.brute_force_halls``, as in ``test_power_live``) at the outdoor air
of that hour; the recorded traces must hold the same numbers, and the summary's per-hall energy
must add up to the site's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from engine_helpers import brute_force_halls, run_stepped

from sim.build import Plan
from sim.contract import HALL, entity_column
from sim.engine.core import Engine

H = 3600.0
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]
REL = 1e-9


def scenario(tiny_scenario: Builder, plan_of: PlanOf) -> Plan:
    data = tiny_scenario(
        racks=3,
        duration="3 d",
        sample_interval="1 h",
        seed=5,
        reliability={"failure_rate_per_1000_node_days": 100, "repair_time": "4 h"},
        posttraining=[{"name": "rl", "arrival_rate": "10 / d", "gpus": 72, "duration": "6 h"}],
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "hardware": "h100_sxm",
                "input_tokens": 100,
                "output_tokens": 200,
                "min_domains": 2,
                "demand": {"mean_requests_per_s": 50.0, "noise_cv": 0.3},
            }
        ],
    )
    fac = data["facility"]
    fac["halls"].append({"name": "hopper", "hardware": "h100_sxm", "racks": 12})
    fac["grid_power"] = "5 MW"
    fac["pue"] = "weather"
    fac["weather"] = {
        "kind": "synthetic",
        "site": "phoenix",
        "year_offset": "190 d",
        "heat_waves": [{"start": "1 d", "length": "1 d", "excess": "8 C"}],
    }
    plan = plan_of(data)
    assert plan.facility.pue_model == "weather"
    kinds = {hc.main.name for hc in plan.facility.hall_cooling}
    assert len(kinds) == 2, kinds  # two different archetypes
    return plan


def test_site_facility_power_follows_the_weather_through_each_halls_cooling(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = scenario(tiny_scenario, plan_of)
    w = plan.facility.weather
    assert w is not None
    cooling = plan.facility.hall_cooling
    checked = {"events": 0, "hot": 0}

    def check(e: Engine) -> None:
        k = w.index(e.env.now)
        db, wb = float(w.dry_bulb_c[k]), float(w.wet_bulb_c[k])
        halls = brute_force_halls(e)
        fac = [
            float(hc.facility_power_w(db, wb, it)) for hc, it in zip(cooling, halls, strict=True)
        ]
        assert e.power.site_it_w == pytest.approx(math.fsum(halls), rel=REL)
        assert e.power.site_facility_w == pytest.approx(math.fsum(fac), rel=REL), e.env.now
        for h in range(len(halls)):
            assert e.power.hall_facility_w(h) == pytest.approx(fac[h], rel=REL)
            assert e.power.cooling_capacity_w(h) == pytest.approx(
                float(cooling[h].capacity_w(db, wb)), rel=REL
            )
        checked["events"] += 1
        checked["hot"] += db > 45.0

    tables = run_stepped(monkeypatch, plan, check, per_instant=True)
    assert checked["events"] > 300 and checked["hot"] > 0

    tr = tables.traces
    halls_fac = sum(tr[entity_column(HALL, h.name, "facility_power_w")] for h in plan.halls)
    np.testing.assert_allclose(halls_fac, tr["facility_power_w"], rtol=1e-9)
    # the outdoor air of each hourly bin is the weather of that hour
    np.testing.assert_allclose(tr["outdoor_dry_bulb_c"], w.dry_bulb_c[: len(tr)], rtol=1e-12)
    # the heat wave (day 1) derates the heat the halls can reject
    day = (tr["time_s"] // 86_400).astype(int)
    for h in plan.halls:
        cap = tr.groupby(day)[entity_column(HALL, h.name, "cooling_capacity_w")].min()
        assert cap[1] < cap[0], h.name
    e = tables.summary["energy"]
    assert sum(h["facility_mwh"] for h in e["halls"].values()) == pytest.approx(
        e["facility_mwh"], rel=1e-9
    )
    assert e["facility_mwh"] == pytest.approx(
        float((tr["facility_power_w"] * tr["interval_s"]).sum()) / 3.6e9, rel=1e-12
    )
