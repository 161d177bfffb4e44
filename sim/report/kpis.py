"""Derived headline numbers shared by the report and the comparison (pure functions of tables).

``summary.json`` (:func:`sim.analysis.summarize`) holds the KPIs; this module adds the few that
readers of a report or a comparison want on top of them, with one rule: a cost that depends on
an unknown price (a domain without a sourced capital cost, e.g. Rubin Ultra NVL576, whose
``capex_cost_usd`` trace is NaN) is *unknown*, reported as None (``n/a``), never as a smaller
number that silently leaves the capital out.

Units are in the names: ``_usd``, ``_per_day``, ``_per_mwh``, ``_days``, ``_mw``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.catalog.hardware import catalog
from sim.contract import SERVICE, entity_column
from sim.io import RunTables
from sim.units import DAY_S

__all__ = [
    "blended_cost_per_million_tokens_usd",
    "capacity_tokens_per_day",
    "capex_known",
    "main_hardware",
    "release_year",
    "service_costs_per_million_tokens_usd",
    "training_run_days",
]


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def capex_known(traces: pd.DataFrame) -> bool:
    """True when every hardware generation in the run has a capital cost (no NaN in the trace)."""
    if "capex_cost_usd" not in traces:
        return False
    return bool(np.isfinite(traces["capex_cost_usd"].to_numpy(dtype=float)).all())


def main_hardware(summary: dict[str, Any]) -> str:
    """The hardware with the most GPUs in the factory (the run's generation), "" if unknown."""
    halls = summary.get("factory", {}).get("halls", [])
    gpus: dict[str, float] = {}
    for h in halls:
        gpus[h["hardware"]] = gpus.get(h["hardware"], 0.0) + float(h.get("gpus", 0))
    return max(gpus, key=lambda k: gpus[k]) if gpus else ""


def service_costs_per_million_tokens_usd(tables: RunTables) -> dict[str, float | None]:
    """Cost per million output tokens of each inference service; None where unknown."""
    known = capex_known(tables.traces)
    return {
        s["name"]: (_finite(s.get("cost_per_million_tokens_usd")) if known else None)
        for s in tables.summary.get("inference_services", [])
    }


def blended_cost_per_million_tokens_usd(tables: RunTables) -> float | None:
    """All inference services together: their cost over their output tokens, per million."""
    if not capex_known(tables.traces):
        return None
    cost = tokens = 0.0
    for s in tables.summary.get("inference_services", []):
        per_m = _finite(s.get("cost_per_million_tokens_usd"))
        if per_m is None:
            continue
        cost += per_m * s["output_tokens"] / 1e6
        tokens += s["output_tokens"]
    return cost / tokens * 1e6 if tokens > 0 else None


def training_run_days(tables: RunTables) -> tuple[str, float | None, bool]:
    """The first pre-training run (earliest submission): name, days from submission to
    completion, and whether that time is projected.

    A finished run reports its completion time. A run still going at the end of the simulated
    window is projected linearly from its progress so far (time since submission over the
    fraction of tokens done): an estimate, flagged by the third value. ("", None, False) when the
    run has no pre-training; None days when there is no progress to project from.
    """
    jobs = tables.jobs
    if "workload" not in jobs:
        return "", None, False
    pre = jobs[jobs["workload"] == "pretraining"].sort_values("submit_s", kind="stable")
    if pre.empty:
        return "", None, False
    r = pre.iloc[0]
    name = str(r["name"])
    if r["state"] == "finished" and math.isfinite(float(r["finish_s"])):
        return name, (float(r["finish_s"]) - float(r["submit_s"])) / DAY_S, False
    end_s = float(tables.summary.get("duration_days", 0.0)) * DAY_S
    work, done = float(r["work"]), float(r["work_done"])
    if not (work > 0 and done > 0) or float(r["submit_s"]) >= end_s:
        return name, None, True
    return name, (end_s - float(r["submit_s"])) / (done / work) / DAY_S, True


def release_year(hardware: str) -> int | None:
    """The catalog's release year of a generation (None for a scenario's own entry)."""
    spec = catalog().get(hardware)
    return spec.year if spec is not None else None


def capacity_tokens_per_day(tables: RunTables) -> tuple[float | None, float | None]:
    """Capacity-based inference figures, next to the demand-limited tokens served:

    * ``held``: output tokens a day the services' held domains could serve (the mean of their
      capacity traces): what autoscaling provisioned;
    * ``factory``: output tokens a day if every domain of the factory served the services' mix:
      all domains x the services' capacity per domain, blended by the tokens each served (a
      harmonic mean: a token of a slow service takes more domain-time).

    (None, None) without services or traces of their capacity."""
    tr = tables.traces
    services = [s["name"] for s in tables.summary.get("inference_services", [])]
    held = 0.0
    time_per_token = 0.0  # domain-seconds per token, weighted by tokens served
    served_total = 0.0
    for name in services:
        cap_c = entity_column(SERVICE, name, "capacity_tokens_per_s")
        dom_c = entity_column(SERVICE, name, "domains")
        srv_c = entity_column(SERVICE, name, "served_tokens_per_s")
        if cap_c not in tr or dom_c not in tr or srv_c not in tr:
            return None, None
        dt = tr["interval_s"].to_numpy(dtype=float)
        cap = tr[cap_c].to_numpy(dtype=float)
        dom = tr[dom_c].to_numpy(dtype=float)
        held += float(np.sum(cap * dt)) / float(np.sum(dt)) * DAY_S
        busy = float(np.sum(dom * dt))
        if busy <= 0:
            continue
        per_domain = float(np.sum(cap * dt)) / busy  # tokens/s one domain serves
        served = float(np.sum(tr[srv_c].to_numpy(dtype=float) * dt))
        if per_domain > 0 and served > 0:
            time_per_token += served / per_domain
            served_total += served
    if not services:
        return None, None
    domains = float(tables.summary.get("factory", {}).get("domains", 0))
    factory = domains * served_total / time_per_token * DAY_S if time_per_token > 0 else None
    return held, factory
