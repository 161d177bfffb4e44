"""The commitment question: what a fixed budget spent over a term buys on each generation at a
site. Plain rows for the command line, the report and a CSV; figures are in
:mod:`sim.report.commitment`.

For each generation of ``commitment.generations`` the scenario's site is rebuilt with every hall
of that generation (``racks: fill``, workloads on it, inference at the generation's natural
precision: :func:`sim.build.with_natural_precision`), which gives its domains, fabric, capital by
asset class (sim.build's cost plan, so the same prices, estimates and overrides as a run) and the
performance model's rates. Then, per year of the full site:

* capital: the annuity of each asset class at the WACC (:func:`sim.tco.annuity_usd_per_year`);
* operations: maintenance x capital, fixed opex x IT capacity, software x GPUs;
* energy: provisioned IT power x the activity power at ``utilization`` (training power while
  busy, idle power otherwise) x PUE x hours x the run's mean energy price.

The budget buys ``budget / (term x site cost a year)`` sites' worth (a fraction, or several
sites): that many GPUs for the term, their GPU-hours, the IT and facility power they need, and
at ``utilization``: the output tokens the counted service would serve at its latency targets if
they all served it (its planned capacity per domain times ``slo_capacity_share``, the share of
it at which the request level still meets the p99 TTFT and TPOT targets,
:func:`sim.serving.capacity.load_at_slo`: the capacity at the SLO that a run's summary and
``aifactory compare`` report; the plan alone where it has no targets), or the pre-training
runs (the counted job: its tokens at its GPU count's rate; called "frontier" runs from
:data:`FRONTIER_FLOP` of training compute) they would train if they all trained. Both are what
the whole commitment buys spent one way; they are alternatives, not a sum. Units: USD, W,
GPU-hours, tokens.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from sim.build import build, unknown_prices, with_natural_precision
from sim.catalog.hardware import catalog
from sim.config.loader import LoadedScenario, ScenarioError
from sim.config.schema import CommitmentConfig
from sim.serving.capacity import load_at_slo
from sim.tco import annuity_usd_per_year
from sim.units import HOUR_S, YEAR_S

__all__ = ["FRONTIER_FLOP", "check_commitment", "commitment_rows"]

#: Training compute from which a run is called frontier-scale: the EU AI Act's presumption of
#: a general-purpose model with systemic risk, 1e25 FLOP (Regulation (EU) 2024/1689, Art. 51(2)).
#: Below it the table says "pre-training runs" (an 8B model is not a frontier run).
FRONTIER_FLOP = 1e25


def _site_for(loaded: LoadedScenario, hardware: str) -> LoadedScenario:
    """The scenario with every hall of ``hardware`` (filled) and every workload on it."""
    sc = loaded.scenario
    halls = tuple(
        h.model_copy(update={"hardware": hardware, "racks": "fill"}) for h in sc.facility.halls
    )
    w = sc.workloads
    workloads = w.model_copy(
        update={
            "pretraining": tuple(j.model_copy(update={"hardware": None}) for j in w.pretraining),
            "posttraining": tuple(j.model_copy(update={"hardware": None}) for j in w.posttraining),
            "inference": tuple(j.model_copy(update={"hardware": None}) for j in w.inference),
        }
    )
    scenario = sc.model_copy(
        update={
            "facility": sc.facility.model_copy(update={"halls": halls}),
            "workloads": workloads,
        }
    )
    return with_natural_precision(replace(loaded, scenario=scenario))


def check_commitment(loaded: LoadedScenario, commitment: CommitmentConfig | None = None) -> None:
    """Raise :class:`ScenarioError` (key path and reason) if the commitment names a service, a
    pre-training job or a generation the scenario does not have."""
    c = commitment if commitment is not None else loaded.scenario.commitment
    if c is None:
        raise loaded.error(("commitment",), "the scenario has no commitment section")
    sc = loaded.scenario
    names = [v.name for v in sc.workloads.inference]
    if c.service is not None and c.service not in names:
        raise loaded.error(
            ("commitment", "service"),
            f"no inference service '{c.service}'; the scenario's: {', '.join(names) or 'none'}",
        )
    jobs = [j.name for j in sc.workloads.pretraining]
    if c.training_run is not None and c.training_run not in jobs:
        raise loaded.error(
            ("commitment", "training_run"),
            f"no pre-training job '{c.training_run}'; the scenario's: {', '.join(jobs) or 'none'}",
        )
    # Every generation's row builds its own site and would keep a bad price key as a note:
    # refuse it once, as validate and run do.
    bad_prices = unknown_prices(sc, [*catalog(), *sc.hardware])
    if bad_prices:
        raise ScenarioError(loaded.source, bad_prices, loaded.lines)
    known = set(catalog()) | set(sc.hardware)
    for i, g in enumerate(c.generations):
        if g not in known:
            raise loaded.error(
                ("commitment", "generations", i),
                f"unknown hardware '{g}'; known: {', '.join(sorted(known))}",
            )


def commitment_rows(
    loaded: LoadedScenario, commitment: CommitmentConfig | None = None
) -> list[dict[str, Any]]:
    """One row per generation, in order of release (module docstring). ``commitment``: the
    question (default: the scenario's ``commitment`` section). A generation the site cannot
    hold the workloads on keeps its row with ``note`` saying why and no figures."""
    check_commitment(loaded, commitment)
    c = commitment if commitment is not None else loaded.scenario.commitment
    assert c is not None
    years = c.term_s / YEAR_S
    rows = [_row(loaded, g, c, years) for g in c.generations]
    bought = [r["gpus"] for r in rows if "gpus" in r]
    if not bought:
        # no generation can hold the workloads: a table of dashes answers nothing; the reasons,
        # once each (a problem of the scenario itself is the same for every generation)
        first = next(r for r in rows if r["note"])
        raise loaded.error(
            (),
            f"no generation can hold the scenario's workloads; on {first['generation']}:"
            f" {first['note']}"
            + (f" (none of the other {len(rows) - 1} can either)" if len(rows) > 1 else ""),
        )
    if max(bought) < 1.0:
        # a fraction of one GPU is no answer to a capacity question: most likely a missing
        # suffix ('$5' for '$5B'); refused rather than printed as a table of zeros
        raise loaded.error(
            ("commitment", "budget"),
            f"${c.budget_usd:,.6g} buys less than one GPU of any generation over the term (at"
            f" most {max(bought):.2g}); give the budget with its scale, e.g. '$5B' or '$300M'",
        )
    order = {g: i for i, g in enumerate(c.generations)}
    return sorted(
        rows,
        key=lambda r: (r["year"] if r["year"] is not None else 9999, order[r["generation"]]),
    )


def _row(loaded: LoadedScenario, g: str, c: CommitmentConfig, years: float) -> dict[str, Any]:
    spec = catalog().get(g)
    row: dict[str, Any] = {
        "generation": g,
        "display_name": spec.display_name if spec is not None else g,
        "year": spec.year if spec is not None else None,
        "budget_usd": c.budget_usd,
        "term_years": years,
        "utilization": c.utilization,
        "note": "",
    }
    try:
        plan = build(_site_for(loaded, g))
    except ScenarioError as exc:
        first = exc.problems[0] if exc.problems else None
        row["note"] = "the site cannot hold the workload on it: " + (
            first.message if first is not None else str(exc)
        )
        return row
    costs = plan.costs
    price = next(p for p in costs.prices if p.hardware == g)
    capital = sum(a.capital_usd for a in costs.assets)
    annual_capital = sum(
        annuity_usd_per_year(a.capital_usd, costs.wacc, a.life_s / YEAR_S) for a in costs.assets
    )
    gpus = plan.total_gpus
    annual_ops = (
        costs.maintenance_per_year * capital
        + costs.fixed_opex_usd_per_w_year * costs.facility_capacity_w
        + costs.software_usd_per_gpu_year * gpus
    )
    act = plan.facility.activity[0]
    u = c.utilization
    it_w = plan.provisioned_it_power_w
    facility_w = it_w * plan.facility.pue
    mean_w = facility_w * (u * act.training + (1.0 - u) * act.idle)
    annual_energy = mean_w * YEAR_S / 3.6e9 * costs.energy_price_usd_per_mwh
    annual = annual_capital + annual_ops + annual_energy
    share = c.budget_usd / (years * annual)
    gpu_hours = share * gpus * years * YEAR_S / HOUR_S
    row |= {
        "price_usd": price.usd,
        "price_basis": price.basis,
        "price_note": price.note,
        "site_gpus": gpus,
        "site_annual_usd": annual,
        "site_capital_usd": capital,
        "usd_per_gpu_hour": annual / (gpus * YEAR_S / HOUR_S),
        "sites": share,
        "gpus": share * gpus,
        "capital_usd": share * capital,
        "it_mw": share * it_w / 1e6,
        "facility_mw": share * facility_w / 1e6,
        "gpu_hours": gpu_hours,
        "energy_share": annual_energy / annual,
    }
    svc = _pick(plan.services, c.service)
    if svc is not None:
        domains = share * plan.n_domains
        row["service"] = svc.name
        row["precision"] = next(
            v.precision.value for v in plan.scenario.workloads.inference if v.name == svc.name
        )
        at_slo = _slo_capacity_share(svc)
        row["slo_capacity_share"] = at_slo
        if at_slo is None:
            row["note"] = (
                f"tokens not counted: the SLO attainment of {svc.name} is not estimated here"
                " (agentic sessions behind a separate prefill pool), so neither is its capacity"
                " at its latency targets"
            )
        else:
            per_domain = svc.capacity_tokens_per_s_per_domain * at_slo
            row["tokens"] = per_domain * domains * u * years * YEAR_S
            row["usd_per_million_tokens"] = (
                c.budget_usd / row["tokens"] * 1e6 if row["tokens"] else math.nan
            )
    job = _pick(plan.jobs, c.training_run)
    if job is not None and job.rate > 0:
        run_s = job.work / job.rate
        per_run_gpu_h = job.gpus * run_s / HOUR_S
        row["training_run"] = job.name
        row["run_gpus"] = job.gpus
        row["run_days"] = run_s / 86_400.0
        row["training_runs"] = gpu_hours * u / per_run_gpu_h
        row["run_flop"] = job.model_flops_per_s * run_s
        row["run_frontier"] = row["run_flop"] >= FRONTIER_FLOP
        row["usd_per_training_run"] = (
            c.budget_usd / row["training_runs"] if row["training_runs"] else math.nan
        )
    return row


def _slo_capacity_share(svc: Any) -> float | None:
    """The share of ``svc``'s planned capacity it serves at its latency targets: the request
    level's :func:`~sim.serving.capacity.load_at_slo` over its attainment table (as the run's
    ``slo_capacity_share``), 1 without targets, None where its attainment is not estimated."""
    if svc.slo_unmeasured:
        return None
    if svc.slo is None:
        return 1.0
    return load_at_slo(np.asarray(svc.slo.loads), np.asarray(svc.slo.attainment))


def _pick(items: Any, name: str | None) -> Any:
    items = tuple(items)
    if not items:
        return None
    if name is None:
        return items[0]
    return next((x for x in items if x.name == name), None)
