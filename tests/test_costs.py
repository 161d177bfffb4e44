"""Total cost of ownership (sim.tco, sim.catalog.prices): every dollar attributed, annuities,
energy cost, prices from the catalog, a scenario or a flagged estimate, and a priced fabric."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.catalog.hardware import catalog
from sim.catalog.prices import domain_price
from sim.catalog.switches import optics_catalog, switch_catalog
from sim.config.loader import ScenarioError
from sim.io import RunTables
from sim.runner import prepare, run
from sim.tco import USES, annuity_usd_per_year, job_costs
from sim.units import YEAR_S

SMOKE = Path(__file__).parent.parent / "scenarios" / "smoke.yaml"
FAT_TREE = (
    "network.kind=fat_tree",
    "network.unit_domains=2",
    "network.pod_units=2",
)


def _run(*overrides: str) -> RunTables:
    return run(SMOKE, overrides=overrides, write=False).tables


@pytest.fixture(scope="module")
def smoke() -> RunTables:
    # a repair cost and software licences so that every component is non-zero
    return _run("costs.repair_per_failure=$20000", "costs.software_per_gpu_year=$4500/year")


# --------------------------------------------------------------------------- attribution


def test_attributed_costs_sum_to_the_total_in_every_bin(smoke: RunTables) -> None:
    tr = smoke.traces
    by_use = sum(tr[f"cost_{u}_usd"].to_numpy() for u in USES)
    np.testing.assert_allclose(by_use, tr["cost_usd"].to_numpy(), rtol=1e-12, atol=1e-9)
    parts = ("capex_cost_usd", "energy_cost_usd", "maintenance_usd", "fixed_opex_usd")
    parts += ("software_usd", "repair_usd")
    np.testing.assert_allclose(
        sum(tr[p].to_numpy() for p in parts), tr["cost_usd"].to_numpy(), rtol=1e-12
    )
    assert tr["cost_so_far_usd"].iloc[-1] == pytest.approx(tr["cost_usd"].sum())
    assert (tr[[f"cost_{u}_usd" for u in USES]].to_numpy() >= 0).all()


def test_summary_splits_add_up_and_jobs_carry_their_class(smoke: RunTables) -> None:
    c = smoke.summary["cost"]
    total = c["total_usd"]
    assert sum(c["by_use_usd"].values()) == pytest.approx(total, rel=1e-12)
    assert sum(c["components_usd"].values()) == pytest.approx(total, rel=1e-12)
    ev = smoke.events
    broken = ev[ev["event"].isin(["failure", "tray_failure"]) & (ev["detail"] != "maintenance")]
    assert len(broken) > 0
    assert c["components_usd"]["repair"] == pytest.approx(20_000.0 * len(broken))
    np.testing.assert_array_less(
        -1e-9, smoke.traces["cost_failed_usd"] - smoke.traces["repair_usd"]
    )
    assert c["components_usd"]["software"] > 0
    # each class's jobs share its cost exactly (the services included)
    costs = job_costs(smoke.traces, smoke.jobs)
    for kind in ("pretraining", "posttraining", "inference"):
        got = costs.loc[costs["workload"] == kind, "cost_usd"].sum()
        assert got == pytest.approx(smoke.traces[f"cost_{kind}_usd"].sum(), rel=1e-12)
    svc = smoke.summary["inference_services"][0]
    assert svc["cost_per_million_tokens_usd"] == pytest.approx(
        svc["cost_usd"] / svc["output_tokens"] * 1e6
    )
    assert svc["cost_per_million_tokens_with_idle_usd"] > svc["cost_per_million_tokens_usd"]
    run_ = smoke.summary["pretraining_runs"][0]
    assert run_["cost_per_1e24_flop_usd"] > 0 and run_["cost_usd"] > 0
    busy = c["per_busy_gpu_hour_usd"]
    assert busy > c["per_gpu_hour_usd"] > 0


# --------------------------------------------------------------------------- capital


def test_annuity_matches_the_hand_computed_payment() -> None:
    # $1M over 5 years at 8%: 80,000 / (1 - 1.08^-5) = 80,000 / 0.3194168 = $250,456.45
    assert annuity_usd_per_year(1e6, 0.08, 5) == pytest.approx(250_456.45, abs=0.01)
    assert annuity_usd_per_year(1e6, 0.0, 5) == 200_000.0  # straight-line at no cost of capital
    with pytest.raises(ValueError, match="life must be positive"):
        annuity_usd_per_year(1e6, 0.08, 0)


def test_capital_accrues_as_the_annuity_every_bin() -> None:
    # 1,825 d: five planning years of 365 d (sim.units.YEAR_S; pint's "year" is 365.25 d)
    t = _run("costs.wacc=0.08", "costs.it_amortization=1825 d", "run.duration=1 d")
    compute = 16 * 3.4e6  # 16 GB200 NVL72 racks at the catalog's $3.4M
    per_s = 250_456.45 / 1e6 * compute / YEAR_S
    dt = t.traces["interval_s"].to_numpy()
    np.testing.assert_allclose(t.traces["capital_compute_usd"].to_numpy(), per_s * dt, rtol=1e-7)
    assert t.summary["cost"]["capital_usd"] > compute
    assert t.summary["cost"]["by_asset"]["compute"]["capital_usd"] == compute


def test_energy_cost_is_the_integral_of_facility_power_times_price() -> None:
    for price in (
        "$80/MWh",
        "{kind: profile, base: $40/MWh, peak: $150/MWh, peak_hours: [15, 21]}",
    ):
        t = _run(f"costs.energy_price={price}", "run.duration=2 d").traces
        dt = t["interval_s"].to_numpy()
        # hourly bins on hourly prices: the price is constant within each bin
        integral = t["facility_power_w"].to_numpy() * dt / 3.6e9 * t["energy_price_usd_per_mwh"]
        np.testing.assert_allclose(t["energy_cost_usd"].to_numpy(), integral, rtol=1e-9)
        assert t["energy_price_usd_per_mwh"].nunique() >= 1


# --------------------------------------------------------------------------- prices


def test_scenario_prices_override_the_catalog_without_copying_an_entry() -> None:
    _, plan = prepare(SMOKE, overrides=["costs.prices.gb200_nvl72=$3.9M"])
    (price,) = plan.costs.prices
    assert (price.usd, price.basis) == (3.9e6, "scenario")
    assert plan.costs.assets[0].capital_usd == 16 * 3.9e6


def test_an_unknown_price_name_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match=r"costs\.prices\.gb200_nvl27: unknown hardware"):
        prepare(SMOKE, overrides=["costs.prices.gb200_nvl27=$3.9M"])


def test_generations_without_a_sourced_price_get_a_flagged_estimate() -> None:
    cat = catalog()
    for name in ("rubin_ultra_nvl576", "vr200_nvl144_cpx", "mi300x", "mi355x"):
        assert cat[name].domain_price_usd is None
        q = domain_price(name, cat[name], cat)
        assert q.estimated and q.usd > 0 and "no sourced price" in q.note
    # the rule: $/W of the sourced generation closest in time, here Vera Rubin NVL144 (2026)
    ru = domain_price("rubin_ultra_nvl576", cat["rubin_ultra_nvl576"], cat)
    vr = cat["vr200_nvl144"]
    assert vr.domain_price_usd is not None
    expected = vr.domain_price_usd / vr.domain_power_w * cat["rubin_ultra_nvl576"].domain_power_w
    assert ru.usd == pytest.approx(expected)
    assert domain_price("h100_sxm", cat["h100_sxm"], cat).basis == "catalog"


def test_a_run_on_an_unpriced_generation_has_costs_and_says_they_are_estimated() -> None:
    t = _run(
        "facility.halls.0.hardware=rubin_ultra_nvl576",
        "facility.halls.0.racks=1",
        "facility.grid_power=1 MW",
        "workloads.pretraining=[]",
        "workloads.posttraining=[]",
        "workloads.inference.0.min_domains=1",
        "run.duration=1 d",
    )
    c = t.summary["cost"]
    assert c["estimated_prices"] == ["rubin_ultra_nvl576"]
    assert c["total_usd"] is not None and c["per_gpu_hour_usd"] > 0


# --------------------------------------------------------------------------- network


def test_a_switched_fabric_is_priced_from_its_switches_and_transceivers() -> None:
    _, plan = prepare(SMOKE, overrides=list(FAT_TREE))
    fab = plan.fabric
    sw = switch_catalog()
    optics = optics_catalog()
    expected = sum(
        n * (sw[m].price_usd or math.nan) for by in fab.switches.values() for m, n in by.items()
    )
    for speed, (nic, switch) in fab.optics_ends.items():
        o = optics[speed]
        assert o.nic_end_usd is not None and o.switch_end_usd is not None
        expected += nic * o.nic_end_usd + switch * o.switch_end_usd
    network = next(a for a in plan.costs.assets if a.kind == "network")
    assert network.capital_usd == pytest.approx(expected)
    assert "transceivers" in network.note
    # a switch price from the scenario
    _, cheaper = prepare(SMOKE, overrides=[*FAT_TREE, "costs.prices.quantum2_qm9700=$20000"])
    net2 = next(a for a in cheaper.costs.assets if a.kind == "network")
    n_sw = sum(by.get("quantum2_qm9700", 0) for by in fab.switches.values())
    assert network.capital_usd - net2.capital_usd == pytest.approx(n_sw * 15_000.0)
