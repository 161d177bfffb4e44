"""Total cost of ownership of a run: what each time bin cost, by component and by use, and who
used it. Pure functions of the trace table and plain facts (:class:`sim.contract.CostFacts`).

**Capital** (``CostFacts.assets``: compute, network, storage, facility shell, electrical,
mechanical) is repaid as an *annuity*: an asset of capital P, life n years and cost of capital r
(``wacc``) costs ``P r / (1 - (1 + r)^-n)`` a year (``P / n`` at r = 0), spread evenly over time
(:func:`annuity_usd_per_year`). It accrues whether the hardware is busy, idle or failed.

**Operations**: energy is the engine's integral of grid import x the hourly price (facility power,
so PUE counts; a battery's flow shifts it in time); maintenance is ``maintenance_per_year`` x
capital; fixed opex ``fixed_opex_usd_per_w_year`` x the facility's IT capacity; software
``software_usd_per_gpu_year`` x installed GPUs; repairs ``repair_usd_per_failure`` x the hardware
failures in the bin (domain and compute-tray failures; not planned maintenance).

**Attribution** (every dollar lands somewhere; :func:`cost_columns` keeps the sum exact):

* capacity costs (capital, maintenance, fixed opex, software) by GPU-seconds: the GPUs held by
  pre-training, post-training and inference, the idle ones (less the hot spares the scheduler
  holds back, ``spare``), and the failed ones;
* energy by modelled activity power: each group's GPUs x its activity fraction of provisioned
  power (training; inference between idle and full load by the services' served share of their
  capacity; idle; failed), scaled to the bin's actual energy cost;
* repairs to failed capacity.

The facility energy of the inference share is split among the services by the same activity
weight computed per service (:func:`service_energy_mwh`), for their tokens per MWh.

Within a workload class, each job or service gets the class's cost in proportion to the
GPU-hours it held (:func:`job_costs`); the part of a training job's cost spent in wall time its
power throttle cost it (``slowdown_throttle_s`` x its GPUs) is *throttled* capacity, shown apart.
With several generations in one factory the per-bin split uses the fleet's average cost per
GPU-second (the traces have no per-generation GPU states). Units: USD, seconds, watts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.contract import SERVICE, CostFacts, RunFacts, entity_column
from sim.units import HOUR_S, YEAR_S

__all__ = [
    "CAPITAL_KINDS",
    "COMPONENTS",
    "USES",
    "annuity_usd_per_year",
    "capital_usd_per_s",
    "cost_columns",
    "cost_facts_of",
    "job_costs",
    "service_energy_mwh",
]

#: Asset classes of the capital, and the trace column of each one's cost per bin.
CAPITAL_KINDS = (
    "compute",
    "network",
    "storage",
    "facility_shell",
    "facility_electrical",
    "facility_mechanical",
)
#: Cost components (trace column ``<name>_usd`` except energy, ``energy_cost_usd``).
COMPONENTS = (
    "capital_compute",
    "capital_network",
    "capital_storage",
    "capital_facility",
    "energy_cost",
    "maintenance",
    "fixed_opex",
    "software",
    "repair",
)
#: Where each dollar of a bin lands (trace column ``cost_<use>_usd``).
USES = ("pretraining", "posttraining", "inference", "idle", "spare", "failed")


def annuity_usd_per_year(capital_usd: float, rate: float, life_years: float) -> float:
    """The level yearly payment that repays ``capital_usd`` over ``life_years`` at ``rate`` a
    year: ``P r / (1 - (1 + r)^-n)``; straight-line ``P / n`` at rate 0."""
    if life_years <= 0:
        raise ValueError(f"an asset's life must be positive, got {life_years:g} years")
    if rate == 0:
        return capital_usd / life_years
    return capital_usd * rate / (1.0 - (1.0 + rate) ** -life_years)


def cost_facts_of(facts: RunFacts) -> CostFacts:
    """``facts["costs"]``, or for facts made by hand without it the older straight-line model:
    compute (domains x price), network as a share of it, and the facility, at no cost of capital
    and no operating cost but energy."""
    if "costs" in facts:
        return facts["costs"]
    compute = 0.0
    for h in facts["halls"]:
        price = h["domain_price_usd"]
        compute += h["domains"] * (price if price is not None else math.nan)
    capacity = sum(h["it_power_capacity_mw"] for h in facts["halls"]) * 1e6
    it_life, fac_life = facts["it_amortization_s"], facts["facility_amortization_s"]
    return {
        "wacc": 0.0,
        "assets": [
            {"kind": "compute", "capital_usd": compute, "life_s": it_life, "note": ""},
            {
                "kind": "network",
                "capital_usd": compute * facts["network_capex_fraction"],
                "life_s": it_life,
                "note": "",
            },
            {
                "kind": "facility_electrical",
                "capital_usd": facts["facility_capex_usd_per_w"] * capacity,
                "life_s": fac_life,
                "note": "",
            },
        ],
        "prices": [],
        "maintenance_per_year": 0.0,
        "fixed_opex_usd_per_w_year": 0.0,
        "repair_usd_per_failure": 0.0,
        "software_usd_per_gpu_year": 0.0,
        "facility_capacity_w": capacity,
        "activity": {"idle": 0.24, "training": 0.70, "inference_full_load": 0.60, "failed": 0.0},
        "spare_gpus": 0.0,
        "pretraining_flops_per_token": {},
    }


def capital_usd_per_s(cf: CostFacts) -> dict[str, float]:
    """Each asset class's annuity per second (NaN where a price is unknown)."""
    out = dict.fromkeys(CAPITAL_KINDS, 0.0)
    for a in cf["assets"]:
        years = a["life_s"] / YEAR_S
        out[a["kind"]] += annuity_usd_per_year(a["capital_usd"], cf["wacc"], years) / YEAR_S
    return out


def _capital_total(cf: CostFacts) -> float:
    return float(sum(a["capital_usd"] for a in cf["assets"]))


def cost_columns(
    traces: pd.DataFrame,
    facts: RunFacts,
    failures_per_bin: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The cost columns of the trace table, by component and by use (module docstring).

    ``traces`` needs ``interval_s``, ``gpus_total``, the ``gpus_*`` states, ``energy_cost_usd``
    and the services' ``capacity``/``served`` columns; ``failures_per_bin`` the domain failures
    in each bin (None: none). The ``cost_<use>_usd`` columns sum to ``cost_usd`` in every bin.
    """
    cf = cost_facts_of(facts)
    dt = traces["interval_s"].to_numpy(dtype=float)
    n = len(dt)
    rates = capital_usd_per_s(cf)
    out: dict[str, np.ndarray] = {}
    out["capital_compute_usd"] = np.full(n, rates["compute"]) * dt
    out["capital_network_usd"] = np.full(n, rates["network"]) * dt
    out["capital_storage_usd"] = np.full(n, rates["storage"]) * dt
    fac = rates["facility_shell"] + rates["facility_electrical"] + rates["facility_mechanical"]
    out["capital_facility_usd"] = np.full(n, fac) * dt
    gpus_total = traces["gpus_total"].to_numpy(dtype=float)
    out["maintenance_usd"] = np.full(n, cf["maintenance_per_year"] * _capital_total(cf) / YEAR_S)
    out["maintenance_usd"] *= dt
    out["fixed_opex_usd"] = (
        np.full(n, cf["fixed_opex_usd_per_w_year"] * cf["facility_capacity_w"] / YEAR_S) * dt
    )
    out["software_usd"] = cf["software_usd_per_gpu_year"] * gpus_total / YEAR_S * dt
    failures = np.zeros(n) if failures_per_bin is None else failures_per_bin.astype(float)
    out["repair_usd"] = cf["repair_usd_per_failure"] * failures
    capex = (
        out["capital_compute_usd"]
        + out["capital_network_usd"]
        + out["capital_storage_usd"]
        + out["capital_facility_usd"]
    )
    out["capex_cost_usd"] = capex
    energy = traces["energy_cost_usd"].to_numpy(dtype=float)
    capacity_cost = capex + out["maintenance_usd"] + out["fixed_opex_usd"] + out["software_usd"]
    out["cost_usd"] = capacity_cost + energy + out["repair_usd"]

    # ---------------------------------------------------------------- attribution
    gpus = _use_gpus(traces, cf)
    states = sum(gpus.values())
    share = _gpu_shares(gpus)
    e_share = _energy_shares(traces, facts, cf, gpus, share)
    for k in USES:
        col = capacity_cost * share[k] + energy * e_share[k]
        if k == "failed":
            col = col + out["repair_usd"]
        out[f"cost_{k}_usd"] = col
    # a bin with no GPUs at all (none installed) puts its cost on idle, so the sum holds
    orphan = np.asarray(states <= 0)
    if orphan.any():
        out["cost_idle_usd"] = np.where(orphan, out["cost_usd"], out["cost_idle_usd"])
    return out


def _use_gpus(traces: pd.DataFrame, cf: CostFacts) -> dict[str, np.ndarray]:
    """GPUs of each use per bin (the hot spares apart from the idle ones)."""
    # a time-weighted mean of a count: float residue can leave it a hair below zero
    idle_all = np.maximum(traces["gpus_idle"].to_numpy(dtype=float), 0.0)
    spare = np.minimum(idle_all, cf["spare_gpus"])
    return {
        "pretraining": traces["gpus_pretraining"].to_numpy(dtype=float),
        "posttraining": traces["gpus_posttraining"].to_numpy(dtype=float),
        "inference": traces["gpus_inference"].to_numpy(dtype=float),
        "idle": idle_all - spare,
        "spare": spare,
        "failed": traces["gpus_failed"].to_numpy(dtype=float),
    }


def _gpu_shares(gpus: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    states = sum(gpus.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {k: np.where(states > 0, g / states, 0.0) for k, g in gpus.items()}


def _energy_shares(
    traces: pd.DataFrame,
    facts: RunFacts,
    cf: CostFacts,
    gpus: dict[str, np.ndarray],
    share: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each use's share of the bin's energy: its GPUs x its activity fraction of provisioned
    power, over the sum (the GPU share where nothing draws)."""
    a = cf["activity"]
    load = _serving_load(traces, facts)
    inf_frac = a["idle"] + (a["inference_full_load"] - a["idle"]) * load
    weight = {
        "pretraining": gpus["pretraining"] * a["training"],
        "posttraining": gpus["posttraining"] * a["training"],
        "inference": gpus["inference"] * inf_frac,
        "idle": gpus["idle"] * a["idle"],
        "spare": gpus["spare"] * a["idle"],
        "failed": gpus["failed"] * a["failed"],
    }
    wsum = sum(weight.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            k: np.where(wsum > 0, w / np.where(wsum > 0, wsum, 1.0), share[k])
            for k, w in weight.items()
        }


def service_energy_mwh(traces: pd.DataFrame, facts: RunFacts) -> dict[str, float]:
    """Facility energy (MWh, PUE included) attributed to each inference service over the run.

    The inference share of each bin's energy is the one :func:`cost_columns` prices (activity
    power: GPUs x a fraction between idle and full load by the served share of capacity); it is
    split among the services by the same weight computed per service, its GPUs (domains x
    domain GPUs) x ``idle + (full load - idle) x served / capacity``, so the services' energies
    sum to the inference share. Facility energy is attributed in proportion to IT power (one PUE
    for the bin). Services whose trace columns are missing (tables made by hand) are left out.
    """
    cf = cost_facts_of(facts)
    gpus = _use_gpus(traces, cf)
    inf_share = _energy_shares(traces, facts, cf, gpus, _gpu_shares(gpus))["inference"]
    energy = traces["facility_energy_mwh"].to_numpy(dtype=float) * inf_share
    a = cf["activity"]
    weights: dict[str, np.ndarray] = {}
    for s in facts["services"]:
        cols = [
            entity_column(SERVICE, s["name"], q)
            for q in ("domains", "capacity_tokens_per_s", "served_tokens_per_s")
        ]
        if not all(c in traces for c in cols):
            continue
        dom, cap, served = (traces[c].to_numpy(dtype=float) for c in cols)
        with np.errstate(invalid="ignore", divide="ignore"):
            load = np.clip(np.where(cap > 0, served / np.where(cap > 0, cap, 1.0), 0.0), 0.0, 1.0)
        frac = a["idle"] + (a["inference_full_load"] - a["idle"]) * load
        weights[s["name"]] = dom * s["domain_gpus"] * frac
    total = sum(weights.values(), np.zeros(len(traces)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            name: float(
                np.sum(np.where(total > 0, energy * w / np.where(total > 0, total, 1.0), 0))
            )
            for name, w in weights.items()
        }


def _serving_load(traces: pd.DataFrame, facts: RunFacts) -> np.ndarray:
    """Output tokens served over what the services' held domains could serve, per bin (0 when
    nothing is held): it places inference power between idle and full load."""
    served = np.zeros(len(traces))
    cap = np.zeros(len(traces))
    for s in facts["services"]:
        c = entity_column(SERVICE, s["name"], "capacity_tokens_per_s")
        v = entity_column(SERVICE, s["name"], "served_tokens_per_s")
        if c in traces and v in traces:
            served += traces[v].to_numpy(dtype=float)
            cap += traces[c].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(cap > 0, served / np.where(cap > 0, cap, 1.0), 0.0), 0.0, 1.0)


def job_costs(traces: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    """Each job's and service's cost: its class's cost (``cost_<workload>_usd`` summed over the
    run) in proportion to the GPU-hours it held. Columns ``name``, ``workload``, ``cost_usd``,
    ``throttled_usd`` (the part spent in wall time its throttle cost it; training jobs). A class
    whose jobs held nothing keeps its cost (it shows in the by-use totals)."""
    rows: list[dict[str, Any]] = []
    for kind in ("pretraining", "posttraining", "inference"):
        sel = jobs[jobs["workload"] == kind]
        col = f"cost_{kind}_usd"
        if not len(sel) or col not in traces:
            continue
        total = float(traces[col].sum())
        held = sel["held_gpu_hours"].to_numpy(dtype=float)
        held = np.where(np.isfinite(held), held, 0.0)
        hsum = float(held.sum())
        cost = total * held / hsum if hsum > 0 else np.zeros(len(sel))
        if "slowdown_throttle_s" in sel and kind != "inference":
            lost = sel["slowdown_throttle_s"].to_numpy(dtype=float)
            lost_gpu_h = np.where(np.isfinite(lost), np.maximum(lost, 0.0), 0.0) / HOUR_S
            lost_gpu_h *= sel["gpus"].to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = np.where(held > 0, np.clip(lost_gpu_h / held, 0.0, 1.0), 0.0)
        else:
            frac = np.zeros(len(sel))
        for name, c, f in zip(sel["name"].tolist(), cost.tolist(), frac.tolist(), strict=True):
            rows.append({"name": name, "workload": kind, "cost_usd": c, "throttled_usd": c * f})
    return pd.DataFrame(rows, columns=["name", "workload", "cost_usd", "throttled_usd"])
