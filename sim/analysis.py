"""Traces, costs and KPIs from the recorded levels: pure functions of tables and plain data.

:func:`derive_traces` turns the binned levels the engine recorded (GPUs by state, power per hall
and for the site, throughput, queues, per-service domains, capacity, demand and served tokens)
into ``traces.parquet``: everything it adds is linear in those levels, so bin means stay exact.
Energy is the integral of facility power; energy cost is facility energy x price; capital is
repaid as an annuity at the cost of capital and every cost lands on a use (:mod:`sim.tco`).
Column meanings are in :mod:`sim.contract`.

KPI definitions (all time-weighted over the run unless said otherwise):

* utilization: share of installed GPUs held by any workload;
* availability: share of installed GPUs not failed;
* training goodput: GPU-hours of kept training compute (work done / rate x GPUs) over GPU-hours
  held by training jobs; what is lost to restarts, checkpoint stalls, lost work and waiting for
  replacements is the difference;
* ETTR of a pre-training run: kept compute time over wall time since its first start
  (validation.md §B.1);
* MFU: achieved model FLOP/s over the dense peak of the GPUs running training;
* cost per GPU-hour (fully loaded): every cost of the run / installed GPU-hours; per busy GPU-hour:
  over the GPU-hours held by a workload;
* tokens per MWh of a service: its output tokens over the facility energy attributed to it
  (its share of the modelled activity power, :func:`sim.tco.service_energy_mwh`);
* tokens per MWh of the site: inference output tokens, and apart pre-training tokens, each over
  the whole site's facility energy (never their sum: a processed training token and a generated
  output token are different work);
* cost per million tokens of a service: the cost attributed to what it used (its GPU-hours and
  their energy) over its output tokens; its share of idle capacity (idle and spare GPUs, in
  proportion to the GPU-hours it held among all workloads) is shown apart and in the loaded
  figure.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from sim.contract import (
    FABRIC_TIER,
    FAILURE_CAUSE,
    HALL,
    PRIORITY_CLASS,
    RATE_FACTORS,
    SERVICE,
    TRACE,
    CostSummary,
    NetworkFacts,
    PretrainingRunSummary,
    ReliabilitySummary,
    RunFacts,
    ServiceFacts,
    ServiceSummary,
    Summary,
    entity_column,
    parse_entity_column,
    slowdown_column,
)
from sim.tco import (
    USES,
    annuity_usd_per_year,
    capital_usd_per_s,
    cost_columns,
    cost_facts_of,
    job_costs,
    service_energy_mwh,
)
from sim.units import DAY_S, HOUR_S, YEAR_S

#: the cause that planned maintenance drains carry in events (``sim.build`` names them so; a
#: scenario cannot give a failure cause this name)
MAINTENANCE = "maintenance"

__all__ = [
    "capex_usd_per_s",
    "derive_traces",
    "failed_by_cause",
    "failures_per_bin",
    "goodput",
    "pretraining_ettr",
    "service_rows",
    "summarize",
    "with_reliability_traces",
]


#: A service whose demand exceeds the capacity it holds at its latency targets for more than
#: this share of the run gets a warning in the summary: what it cannot serve at once waits in
#: its backlog or is given up, so over that time its requests miss their targets. The same 5%
#: as a training run's default ``reliability.waiting_warning_share`` (waiting for domains).
OVER_CAPACITY_WARNING_SHARE = 0.05
#: warn when a service within its capacity still meets its latency targets for fewer of its
#: requests than this (a planning threshold: the capacity is planned at the targets' p99, so a
#: service within it should meet them for ~99%)
SLO_WARNING_ATTAINMENT = 0.90
#: warn when more of a service's requests than this exceed the model's context (cut to fit)
CONTEXT_WARNING_SHARE = 0.01

#: event pairs that take hardware out of service and bring it back (their detail: the cause)
_OUT = {"failure": 1.0, "repair": -1.0, "tray_failure": 1.0, "tray_repair": -1.0}


def failed_by_cause(
    events: pd.DataFrame, end_s: float, interval_s: float, trays: bool = False
) -> pd.DataFrame:
    """Mean domains out of service in each bin of ``interval_s``, one column per cause (from
    the failure and repair rows, exact time-weighted means); ``trays``: compute trays swapped
    and in repair (``spare_tray``) instead of whole domains. Rows are bins from 0 (``time_s``)."""
    kinds = ("tray_failure", "tray_repair") if trays else ("failure", "repair")
    ev = events[events["event"].isin(kinds)]
    edges = np.arange(0.0, end_s, interval_s)
    edges = np.append(edges, end_s)
    out = pd.DataFrame({"time_s": edges[:-1]})
    for cause, grp in ev.groupby("detail", sort=True):
        t = grp["time_s"].to_numpy(dtype=np.float64)
        level = np.cumsum(grp["event"].map(_OUT).to_numpy(dtype=np.float64))
        # integral of the step function at each change time, then at the bin edges (linear
        # between changes, so interpolation is exact)
        dt = np.diff(np.append(t, end_s))
        cum = np.concatenate(([0.0], np.cumsum(level * dt)))
        at = np.interp(edges, np.append(t, end_s), cum, left=0.0)
        out[str(cause)] = np.diff(at) / np.diff(edges)
    return out


def pretraining_ettr(traces: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame) -> np.ndarray:
    """ETTR of the pre-training runs so far at the end of each trace bin: the work each run had
    kept by then, over the sum of each run's base rate x its wall time since its first start
    (until it finished). NaN before the first start.

    The work kept is read from the runs' ``checkpointed``, ``finished`` and ``unfinished`` rows,
    whose values are each run's cumulative kept work (the engine's own figures:
    :meth:`sim.engine.training.Training._checkpoints`): at a bin's end, each run's last such
    row. So the last value is, by construction, the jobs table's ETTR (``work_done`` over base
    rate x wall time, with the work in progress at the end, which the ``unfinished`` row
    carries), over all runs weighted by base rate x wall time. Before, the work computed was
    integrated from ``pretraining_tokens_per_s``, a level that spreads each checkpoint's stall
    over its cycle: every cycle cut short by a failure was then undercounted by up to one
    write's work, about 0.01 of ETTR after a few dozen failures. Between checkpoints the
    work in progress is not counted (it is not kept yet); a maintenance drain's checkpoint (no
    row) and an async checkpoint found not durable show at the run's next row."""
    t0 = traces["time_s"].to_numpy(dtype=np.float64)
    t1 = t0 + traces["interval_s"].to_numpy(dtype=np.float64)
    pre = jobs[jobs["workload"] == "pretraining"]
    ev = events[
        events["event"].isin(["checkpointed", "finished", "unfinished"])
        & events["subject"].isin(pre["name"].tolist())
    ]
    kept = np.zeros(len(t1))
    for _name, grp in ev.groupby("subject", sort=True):
        when = grp["time_s"].to_numpy(dtype=np.float64)
        order = np.argsort(when, kind="stable")
        when = when[order]
        value = grp["value"].to_numpy(dtype=np.float64)[order]
        k = np.searchsorted(when, t1, side="right")
        kept += np.where(k > 0, value[np.maximum(k - 1, 0)], 0.0)
    wall = np.zeros(len(t1))
    for _, r in pre.iterrows():
        start, rate = float(r["first_start_s"]), float(r["rate_per_s"])
        if not math.isfinite(start) or not rate > 0:
            continue
        end = float(r["finish_s"]) if r["state"] == "finished" else math.inf
        wall += rate * np.clip(np.minimum(t1, end) - start, 0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wall > 0, kept / wall, np.nan)


def with_reliability_traces(
    traces: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame
) -> pd.DataFrame:
    """``traces`` with ``pretraining_ettr`` (:func:`pretraining_ettr`) and, per failure cause,
    ``cause.<name>.domains_out`` (:func:`failed_by_cause` on the trace's bins)."""
    out = traces.copy()
    out["pretraining_ettr"] = pretraining_ettr(traces, events, jobs)
    if len(out):
        t0 = out["time_s"].to_numpy(dtype=np.float64)
        end = float(t0[-1] + out["interval_s"].iloc[-1])
        step = float(out["interval_s"].iloc[0])
        by = failed_by_cause(events, end, step)
        if len(by) == len(out):
            for c in by.columns:
                if c != "time_s":
                    out[entity_column(FAILURE_CAUSE, str(c), "domains_out")] = by[c].to_numpy()
    return out


def _count(v: Any) -> int:
    """A count column of a row (0 where a table made without it has NaN)."""
    return int(v) if v is not None and not pd.isna(v) else 0


def _causes(v: Any) -> dict[str, int]:
    """The JSON ``interruptions_by_cause`` of a row ({} where missing)."""
    return dict(json.loads(v)) if isinstance(v, str) and v.startswith("{") else {}


def _apart(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` as percentages with the fewest decimals (up to 3) that tell them
    apart: 5.3% against 5%, never 5% against 5%."""
    d = next((d for d in range(3) if f"{value:.{d}%}" != f"{limit:.{d}%}"), 3)
    return f"{value:.{d}%}", f"{limit:.{min(d, _decimals(limit))}%}"


def _decimals(share: float) -> int:
    """The decimals a share needs as a percentage (0.05: 0, 0.055: 1), at most 3."""
    return next((d for d in range(3) if round(share * 100, d) == round(share * 100, 6)), 3)


def _unplanned(by: dict[str, int]) -> dict[str, int]:
    """Interruptions by cause without planned maintenance (a run folder from before counted its
    drains there; they are ``planned_interruptions``)."""
    return {k: v for k, v in by.items() if k != MAINTENANCE}


def goodput(row: pd.Series) -> dict[str, float]:
    """Wall hours a training job lost, by kind: detection, restart, recomputation of the work
    lost, waiting for domains (after its first start), checkpoint stalls."""
    ckpt = float(row["checkpoints"]) * float(row["checkpoint_write_s"])
    return {
        "detection": float(row["detection_lost_s"]) / HOUR_S,
        "restart": float(row["restart_lost_s"]) / HOUR_S,
        "restore": float(row.get("restore_lost_s", 0.0)) / HOUR_S,
        "recomputation": float(row["recompute_lost_s"]) / HOUR_S,
        "waiting_for_domains": float(row["domain_wait_s"]) / HOUR_S,
        "checkpoint_stalls": ckpt / HOUR_S,
    }


def capex_usd_per_s(facts: RunFacts) -> float:
    """Capital cost per second: the annuities of every asset class (:mod:`sim.tco`).

    NaN when a domain has no price (hand-made facts only: a run prices every generation).
    """
    return float(sum(capital_usd_per_s(cost_facts_of(facts)).values()))


def failures_per_bin(events: pd.DataFrame | None, starts: np.ndarray) -> np.ndarray:
    """Hardware failures that need a repair in each trace bin (bins start at ``starts``): domain
    failures and compute-tray failures (a tray swapped for a spare is repaired too), not planned
    maintenance (its cost is ``maintenance_per_year``'s) nor software restarts (no failure row)."""
    out = np.zeros(len(starts))
    if events is None or not len(events) or not len(starts):
        return out
    ev = events[events["event"].isin(["failure", "tray_failure"])]
    if "detail" in ev:
        ev = ev[ev["detail"] != MAINTENANCE]
    t = ev["time_s"].to_numpy(dtype=float)
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    np.add.at(out, idx, 1.0)
    return out


def derive_traces(
    levels: pd.DataFrame, facts: RunFacts, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The trace table of ``traces.parquet`` from the binned levels of a run (``events``: its
    event table, for the repair cost of each bin's failures)."""
    col = TRACE
    # columns gathered first and framed once (inserting them one by one fragments the frame)
    cols: dict[str, Any] = {c: levels[c] for c in (col["time_s"].name, col["interval_s"].name)}
    total = float(sum(h["gpus"] for h in facts["halls"]))
    held = sum(levels[col[f"gpus_{k}"].name].to_numpy() for k in _KINDS)
    failed = levels[col["gpus_failed"].name].to_numpy()
    cols["gpus_total"] = total
    cols["gpus_idle"] = total - failed - held
    cols["gpus_failed"] = failed
    for k in _KINDS:
        cols[f"gpus_{k}"] = levels[f"gpus_{k}"]
    for k in ("pretraining", "posttraining"):
        cols[f"gpus_{k}_running"] = levels[f"gpus_{k}_running"]
    # clipped only against float rounding (-1e-18), the counts themselves are exact
    cols["utilization"] = np.clip(held / total, 0.0, 1.0) if total else 0.0
    it = levels["it_power_w"].to_numpy()
    fac = levels["facility_power_w"].to_numpy()
    cols["it_power_w"] = it
    cols["facility_power_w"] = fac
    for h in facts["halls"]:
        for q in HALL.quantities:
            c = entity_column(HALL, h["name"], q)
            cols[c] = levels[c]
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["pue"] = np.where(it > 0, fac / it, np.nan)
    cols["grid_cap_w"] = levels["grid_cap_w"]
    cols["grid_import_w"] = levels["grid_import_w"]
    cols["battery_flow_w"] = levels["battery_flow_w"]
    cols["cooling_load_w"] = it  # all IT power becomes heat to reject
    for c in ("outdoor_dry_bulb_c", "outdoor_wet_bulb_c"):
        cols[c] = levels[c]
    cols["pretraining_tokens_per_s"] = levels["pretraining_tokens_per_s"]
    zeros = np.zeros(len(levels))
    inf_tokens = zeros.copy()
    inf_flops = zeros.copy()
    for svc in facts["services"]:
        served = levels[entity_column(SERVICE, svc["name"], "served_tokens_per_s")].to_numpy()
        inf_tokens += served
        inf_flops += served * svc["flops_per_output_token"]
        for q in SERVICE.quantities:
            c = entity_column(SERVICE, svc["name"], q)
            cols[c] = levels[c]
    cols["inference_tokens_per_s"] = inf_tokens
    train_flops = levels["training_model_flops_per_s"].to_numpy()
    cols["training_model_flops_per_s"] = train_flops
    cols["achieved_flops_per_s"] = train_flops + inf_flops
    peak = levels["training_peak_flops_per_s"].to_numpy()
    cols["training_peak_flops_per_s"] = peak
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["training_mfu"] = np.where(peak > 0, train_flops / peak, np.nan)
    for k in ("pretraining", "posttraining"):
        cols[f"jobs_waiting_{k}"] = levels[f"jobs_waiting_{k}"]
    for c in levels.columns:
        parsed = parse_entity_column(c)
        if parsed is not None and parsed[0] in (PRIORITY_CLASS, FABRIC_TIER):
            cols[c] = levels[c]
    dt = cols["interval_s"].to_numpy()
    cols["facility_energy_mwh"] = fac * dt / 3.6e9
    cols["energy_price_usd_per_mwh"] = levels["energy_price_usd_per_mwh"]
    cols["energy_cost_usd"] = levels["_energy_cost_usd_per_s"].to_numpy() * dt
    cols["carbon_intensity_g_per_kwh"] = levels["carbon_intensity_g_per_kwh"]
    cols["emissions_tco2"] = levels["_emissions_tco2_per_s"].to_numpy() * dt
    out = pd.DataFrame(cols, index=levels.index)
    fails = failures_per_bin(events, out["time_s"].to_numpy(dtype=float))
    costs = pd.DataFrame(cost_columns(out, facts, fails), index=out.index)
    out = pd.concat([out, costs], axis=1)  # at once: many cost columns, one frame
    out["cost_so_far_usd"] = np.cumsum(out["cost_usd"].to_numpy())
    return out


def _paused_hours(events: pd.DataFrame, jobs: pd.DataFrame, end_s: float) -> dict[str, float]:
    """Job wall-hours spent paused by the power controller, per priority class: from each
    ``paused`` event to the job's next ``resumed``, ``preempted`` or ``finished`` (or the end
    of the run). A failure while paused does not end the pause (the job restarts paused)."""
    ev = events[events["event"].isin(["paused", "resumed", "preempted", "finished"])]
    if not (ev["event"] == "paused").any():
        return {}
    cls = dict(zip(jobs["name"], jobs["class"], strict=True))
    out: dict[str, float] = {}
    for name, rows in ev.groupby("subject", sort=True):
        since: float | None = None
        total = 0.0
        for t, kind in zip(rows["time_s"].tolist(), rows["event"].tolist(), strict=True):
            if kind == "paused":
                since = t if since is None else since
            elif since is not None:
                total += t - since
                since = None
        if since is not None:
            total += end_s - since
        if total > 0:
            c = str(cls.get(name, ""))
            out[c] = out.get(c, 0.0) + total / HOUR_S
    return out


def _below_full_clock(traces: pd.DataFrame) -> dict[str, float]:
    """Hours (of trace bins, weighted by the time below 1) each class ran below full clock."""
    out: dict[str, float] = {}
    for col in traces.columns:
        parsed = parse_entity_column(col)
        if parsed is None or parsed[0] is not PRIORITY_CLASS:
            continue
        below = traces[col].to_numpy() < 1.0 - 1e-9
        hours = float((traces["interval_s"].to_numpy() * below).sum()) / HOUR_S
        if hours > 0:
            out[parsed[1]] = hours
    return out


def _network_summary(
    network: NetworkFacts, traces: pd.DataFrame, train: pd.DataFrame, facts: RunFacts
) -> dict[str, Any]:
    """The fabric's inventory, its power against the IT power, and what it cost the jobs."""
    loads = {}
    for col in traces.columns:
        parsed = parse_entity_column(col)
        if parsed is not None and parsed[0] is FABRIC_TIER:
            loads[parsed[1]] = _clean(float(traces[col].mean()))
    power_w = network["switch_power_w"] + network["optics_power_w"]
    lost: dict[str, float] = {}
    if len(train) and "slowdown_network_s" in train:
        by_kind = train.groupby("workload")["slowdown_network_s"].sum()
        lost = {str(k): float(v) / HOUR_S for k, v in by_kind.items() if abs(v) > 1e-6}
    out: dict[str, Any] = {
        "kind": network["kind"],
        "placement": network["placement"],
        "tiers": network["tiers"],
        "bisection_tbps": network["bisection_tbps"],
        "switches": network["switches"],
        "links": network["links"],
        "power_mw": power_w / 1e6,
        "power_share_of_provisioned_it": (
            power_w / facts["provisioned_it_power_w"] if facts["provisioned_it_power_w"] else None
        ),
        "capex_usd": network["capex_usd"],
        "capex_note": network["capex_note"],
        "mean_uplink_load": loads,
        "hours_lost_to_network_by_workload": lost,
    }
    if "network_failures" in network:
        out["failures"] = network["network_failures"]
    return out


_KINDS = ("pretraining", "posttraining", "inference")


def _twmean(traces: pd.DataFrame, col: str) -> float:
    w = traces["interval_s"].to_numpy()
    return float(np.sum(traces[col].to_numpy() * w) / np.sum(w))


def _integral(traces: pd.DataFrame, col: str) -> float:
    return float(np.sum(traces[col].to_numpy() * traces["interval_s"].to_numpy()))


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def service_rows(traces: pd.DataFrame, facts: RunFacts) -> list[dict[str, Any]]:
    """One jobs-table row per inference service, from its trace columns."""
    rows = []
    for s in facts["services"]:

        def c(q: str, name: str = s["name"]) -> str:
            return entity_column(SERVICE, name, q)

        demand = _integral(traces, c("demand_tokens_per_s"))
        served = _integral(traces, c("served_tokens_per_s"))
        met = (
            _integral(traces, c("slo_met_tokens_per_s"))
            if c("slo_met_tokens_per_s") in traces
            else served
        )
        domain_s = _integral(traces, c("domains"))
        rows.append(
            {
                "name": s["name"],
                "workload": "inference",
                "class": s["priority_class"],
                "hardware": s["hardware"],
                "gpus": float(np.max(traces[c("domains")])) * s["domain_gpus"],
                "work": demand,
                "work_unit": "output_tokens",
                "work_done": served,
                "held_gpu_hours": domain_s * s["domain_gpus"] / HOUR_S,
                "slo_attainment": met / demand if demand > 0 else math.nan,
                "rate_per_s": s["capacity_tokens_per_s_per_domain"] / s["domain_gpus"],
                "state": "serving",
                "capacity_provenance": s.get("capacity_provenance", ""),
            }
        )
    return rows


def _requests(traces: pd.DataFrame, service: str) -> dict[str, float]:
    """Requests arrived, served and dropped by ``service`` over the run (integrals of its request
    rates), those still queued at its end, and its prompt-cache hit rate; {} for tables made by
    hand without those columns."""
    cols = {
        "requests_arrived": "arrivals_requests_per_s",
        "requests_served": "served_requests_per_s",
        "requests_dropped": "dropped_requests_per_s",
    }
    if not all(entity_column(SERVICE, service, q) in traces for q in cols.values()):
        return {}
    out = {k: _integral(traces, entity_column(SERVICE, service, q)) for k, q in cols.items()}
    queued = entity_column(SERVICE, service, "queued_requests")
    if queued in traces and len(traces):  # the backlog at the end of the last bin
        out["requests_queued"] = float(traces[queued].iloc[-1])
    hit = entity_column(SERVICE, service, "prompt_cache_hit_rate")
    if hit in traces and len(traces):
        out["prompt_cache_hit_rate"] = float(traces[hit].iloc[0])
    return out


def _service_facts(facts: RunFacts, service: str) -> ServiceFacts | None:
    """The run facts of ``service`` (None for a service the facts do not list)."""
    return next((s for s in facts["services"] if s["name"] == service), None)


def _engine_of(facts: RunFacts, service: str) -> tuple[str, str, str] | None:
    """(KV-cache policy, serving runtime, prefill) ``service``'s capacity was estimated with,
    from the run facts (None for facts made by hand or by older runs)."""
    s = _service_facts(facts, service)
    if s is None or not s.get("runtime"):
        return None
    return s.get("kv_cache", ""), s["runtime"], s.get("prefill", "colocated")


def _provenance(facts: RunFacts, service: str) -> tuple[str, str] | None:
    """(provenance, source) of ``service``'s capacity from the run facts (None for facts made
    by hand)."""
    s = _service_facts(facts, service)
    if s is None or "capacity_provenance" not in s:
        return None
    return s["capacity_provenance"], s.get("capacity_source", "")


def _capacity(facts: RunFacts, service: str, peak_gpus: float) -> tuple[float, float, float] | None:
    """What ``service`` could sustain at its latency targets, in output tokens a day: per domain
    (its planned capacity per domain times the share of it at which the request level still
    meets the p99 TTFT/TPOT targets, ``slo_capacity_share``: the fluid plan alone can promise
    more than the requests get, at long context most), per MW of its domains' provisioned IT
    power, and with the most domains it held (``peak_gpus`` / domain GPUs). Capacity, not
    demand: generations compare on what they could serve. None for facts made by hand without
    the domain power, and for targets whose attainment is not estimated."""
    s = _service_facts(facts, service)
    if s is None or "domain_power_w" not in s:
        return None
    share = s.get("slo_capacity_share", 1.0)
    if not isinstance(share, float | int):
        return None  # targets whose attainment is not estimated: no capacity at them
    per_domain = s["capacity_tokens_per_s_per_domain"] * share * DAY_S
    peak = peak_gpus / s["domain_gpus"] if math.isfinite(peak_gpus) else 0.0
    return per_domain, per_domain / (s["domain_power_w"] / 1e6), per_domain * peak


def _hall_energy(traces: pd.DataFrame, hall: str) -> dict[str, float]:
    """A hall's energy, and the hours its heat exceeded what its cooling could reject then,
    counted on sample-interval means (the exact time above each hall's limits, which the power
    controller acts on, is ``power_control.hours_over_hall_limit``)."""
    it = traces[entity_column(HALL, hall, "it_power_w")].to_numpy()
    cap = traces[entity_column(HALL, hall, "cooling_capacity_w")].to_numpy()
    over = float(np.sum(traces["interval_s"].to_numpy()[it > cap])) / HOUR_S
    return {
        "it_mwh": _integral(traces, entity_column(HALL, hall, "it_power_w")) / 3.6e9,
        "facility_mwh": _integral(traces, entity_column(HALL, hall, "facility_power_w")) / 3.6e9,
        "hours_over_cooling_capacity": over,
    }


def _cost_summary(
    traces: pd.DataFrame,
    facts: RunFacts,
    costs: pd.DataFrame | None,
    total: float,
    capex: float,
    energy: float,
    gpu_hours: float,
    busy_gpu_hours: float,
) -> CostSummary:
    """The summary's ``cost`` section: capital up front and per GW of IT capacity, its annuities,
    the run's cost by component and by use (summing to the total), and the headline rates."""
    cf = cost_facts_of(facts)
    capital = float(sum(a["capital_usd"] for a in cf["assets"]))
    gw = cf["facility_capacity_w"] / 1e9
    by_asset: dict[str, dict[str, Any]] = {}
    for a in cf["assets"]:
        years = a["life_s"] / YEAR_S
        by_asset[a["kind"]] = {
            "capital_usd": _clean(a["capital_usd"]),
            "life_years": years,
            "annual_usd": _clean(annuity_usd_per_year(a["capital_usd"], cf["wacc"], years)),
            "note": a["note"],
        }
    components = {
        "capital_" + k: _clean(float(traces[f"capital_{k}_usd"].sum(skipna=False)))
        for k in ("compute", "network", "storage", "facility")
        if f"capital_{k}_usd" in traces
    }
    components["energy"] = energy
    for k in ("maintenance", "fixed_opex", "software", "repair"):
        if f"{k}_usd" in traces:
            components[k] = float(traces[f"{k}_usd"].sum())
    by_use: dict[str, float | None] = {}
    throttled = 0.0
    if costs is not None and len(costs):
        throttled = float(costs["throttled_usd"].sum())
    for k in USES:
        col = f"cost_{k}_usd"
        if col in traces:
            v = float(traces[col].sum(skipna=False))
            if k in ("pretraining", "posttraining") and costs is not None:
                v -= float(costs.loc[costs["workload"] == k, "throttled_usd"].sum())
            # below half a cent is floating-point residue of the bins' differences (an idle
            # share of 3e-11 USD when every GPU was busy): none, in every output alike
            if abs(v) < DUST_USD:  # False for NaN, which _clean keeps as unknown
                v = 0.0
            by_use[k] = _clean(v)
    by_use["throttled"] = throttled if abs(throttled) >= DUST_USD else 0.0
    idle = (by_use.get("idle") or 0.0) + (by_use.get("spare") or 0.0)
    prices = {
        p["hardware"]: {"usd": p["usd"], "basis": p["basis"], "note": p["note"]}
        for p in cf["prices"]
    }
    return {
        "total_usd": _clean(total),
        "capex_usd": _clean(capex),
        "energy_usd": energy,
        "per_gpu_hour_usd": _clean(total / gpu_hours) if gpu_hours else None,
        "per_busy_gpu_hour_usd": _clean(total / busy_gpu_hours) if busy_gpu_hours else None,
        "idle_capacity_usd": _clean(idle) if by_use else None,
        "capital_usd": _clean(capital),
        "capital_per_gw_usd": _clean(capital / gw) if gw > 0 else None,
        "annual_capital_usd": _clean(float(sum(capital_usd_per_s(cf).values())) * YEAR_S),
        "wacc": cf["wacc"],
        "by_asset": by_asset,
        "components_usd": components,
        "by_use_usd": by_use,
        "prices": prices,
        "estimated_prices": sorted(h for h, p in prices.items() if p["basis"] == "estimate"),
    }


#: Amounts of money below half a cent: residue of sums and differences, counted as none.
DUST_USD = 0.005


def summarize(
    traces: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame, facts: RunFacts
) -> Summary:
    """Headline KPIs of one run (the content of ``summary.json``)."""
    duration = float(traces["interval_s"].sum())
    gpus = float(traces["gpus_total"].iloc[0])
    gpu_hours = gpus * duration / HOUR_S
    it_energy = _integral(traces, "it_power_w") / 3.6e9
    fac_energy = float(traces["facility_energy_mwh"].sum())
    energy_cost = float(traces["energy_cost_usd"].sum())
    # NaN (a hand-made table without a price) must stay unknown, not be skipped as zero
    capex = float(traces["capex_cost_usd"].sum(skipna=False))
    total_cost = float(traces["cost_usd"].sum(skipna=False)) if "cost_usd" in traces else math.nan
    total_cost / gpu_hours if gpu_hours else math.nan
    costs = job_costs(traces, jobs) if math.isfinite(total_cost) else None
    cost_of = dict(zip(costs["name"], costs["cost_usd"], strict=True)) if costs is not None else {}
    busy_gpu_hours = sum(_integral(traces, f"gpus_{k}") for k in _KINDS) / HOUR_S
    idle_usd = (
        float(traces["cost_idle_usd"].sum() + traces["cost_spare_usd"].sum())
        if "cost_idle_usd" in traces
        else math.nan
    )

    train = jobs[jobs["workload"].isin(["pretraining", "posttraining"])]
    held = float(train["held_gpu_hours"].sum())
    useful = float(train["useful_gpu_hours"].sum())
    peak = _integral(traces, "training_peak_flops_per_s")
    mfu = _integral(traces, "training_model_flops_per_s") / peak if peak > 0 else math.nan

    pre = jobs[jobs["workload"] == "pretraining"]
    runs: list[PretrainingRunSummary] = []
    flops_per_token = cost_facts_of(facts)["pretraining_flops_per_token"]
    for _, r in pre.iterrows():
        run_cost = cost_of.get(r["name"], math.nan)
        flop = float(r["work_done"]) * flops_per_token.get(r["name"], math.nan)
        done = float(r["work_done"]) / float(r["work"]) if float(r["work"]) > 0 else math.nan
        runs.append(
            {
                "name": r["name"],
                "state": r["state"],
                "gpus": int(r["gpus"]),
                "hardware": r["hardware"],
                "tokens": float(r["work"]),
                "tokens_done": float(r["work_done"]),
                "completion_days": _clean((r["finish_s"] - r["submit_s"]) / DAY_S),
                "ettr": _clean(float(r["ettr"])),
                "interruptions": int(r["interruptions"]),
                "mfu_when_running": _clean(float(r["mfu_when_running"])),
                "slowdown_hours": {f: float(r[slowdown_column(f)]) / HOUR_S for f in RATE_FACTORS},
                "power_swing_mw": float(r["power_swing_mw"]),
                "power_swing_with_floor_mw": float(r["power_swing_with_floor_mw"]),
                "planned_interruptions": _count(r.get("planned_interruptions")),
                "interruptions_by_cause": _unplanned(_causes(r.get("interruptions_by_cause"))),
                "hours_lost": goodput(r),
                "shrinks": _count(r.get("shrinks")),
                "reshrinks": _count(r.get("reshrinks")),
                "shrunk_hours": float(r.get("shrunk_s", 0.0)) / HOUR_S,
                "shrunk_share": _clean(float(r.get("shrunk_share", math.nan))),
                "checkpoint_interval_minutes": float(r["checkpoint_interval_s"]) / 60.0,
                "young_daly_interval_minutes": _clean(float(r["young_daly_interval_s"]) / 60.0),
                "expected_mtbf_hours": _clean(float(r["expected_mtbf_s"]) / HOUR_S),
                "cost_usd": _clean(run_cost),
                "projected_cost_usd": _clean(run_cost / done) if done and done > 0 else None,
                "cost_per_1e24_flop_usd": _clean(run_cost / (flop / 1e24)) if flop > 0 else None,
            }
        )
    warnings: list[str] = []
    rel_facts = facts.get("reliability")
    share = rel_facts["waiting_warning_share"] if rel_facts is not None else math.inf
    for _, r in train.iterrows():
        since = float(r["first_start_s"])
        end = float(r["finish_s"]) if r["state"] == "finished" else duration
        if not math.isfinite(since) or end <= since:
            continue
        waited = float(r["domain_wait_s"]) / (end - since)
        if waited > share and r["workload"] == "pretraining":
            spares = rel_facts.get("hot_spares", 0) if rel_facts is not None else 0
            recovery = rel_facts.get("recovery") if rel_facts is not None else None
            advice = (
                f"hold more hot spares per hall (reliability.hot_spares; {spares} held now)"
                if recovery == "take_spare"
                else "hold hot spares per hall (reliability.recovery: take_spare with"
                " reliability.hot_spares)"
            )
            if recovery == "requeue":  # it gave its whole gang back at each failure
                advice = (
                    "keep the gang and claim repaired domains (reliability.recovery:"
                    " wait_for_repair), or run on fewer replicas meanwhile (shrink_elastic),"
                    f" or {advice}"
                )
            got, limit = _apart(waited, share)
            warnings.append(
                f"training run {r['name']} spent {got} of its time since its first start"
                f" waiting for domains (more than {limit}): {advice}, or let lower work be"
                " preempted"
            )
    spares = rel_facts.get("hot_spares", 0) if rel_facts is not None else 0
    if spares and not (events["event"] == "failure").any():
        # a zero failure rate (a sweep's baseline, say) is allowed: the spares then sit idle,
        # which is said here rather than refused
        warnings.append(
            f"{spares:,} hot spares were held apart and no domain failed or was drained in the"
            " run: they sat idle (reliability.hot_spares; a failure rate of 0?)"
        )
    post = jobs[jobs["workload"] == "posttraining"]
    services: list[ServiceSummary] = []
    svc_rows = jobs[jobs["workload"] == "inference"]
    svc_energy = service_energy_mwh(traces, facts) if len(svc_rows) else {}
    for _, r in svc_rows.iterrows():
        tokens = float(r["work_done"])
        cost = cost_of.get(r["name"], math.nan)
        # its share of idle capacity: idle and spare cost by its share of busy GPU-hours
        idle_share = (
            idle_usd * float(r["held_gpu_hours"]) / busy_gpu_hours if busy_gpu_hours else 0.0
        )
        svc: ServiceSummary = {
            "name": r["name"],
            "output_tokens": tokens,
            "tokens_per_day": tokens / (duration / DAY_S),
            "slo_attainment": _clean(float(r["slo_attainment"])),
            "gpu_hours": float(r["held_gpu_hours"]),
            "cost_usd": _clean(cost),
            "cost_per_million_tokens_usd": _clean(cost / tokens * 1e6) if tokens else None,
            "idle_share_usd": _clean(idle_share),
            "cost_per_million_tokens_with_idle_usd": (
                _clean((cost + idle_share) / tokens * 1e6) if tokens else None
            ),
        }
        mwh = svc_energy.get(str(r["name"]))
        if mwh is not None:
            svc["energy_mwh"] = mwh
            svc["tokens_per_mwh"] = _clean(tokens / mwh) if mwh > 0 else None
        svc.update(_requests(traces, str(r["name"])))  # type: ignore[typeddict-item]
        over_col = entity_column(SERVICE, str(r["name"]), "over_capacity")
        explained = False  # a warning already says why the targets are missed
        if over_col in traces:
            over = _integral(traces, over_col) / duration
            svc["over_capacity_share"] = over
            if over > OVER_CAPACITY_WARNING_SHARE:
                att = svc["slo_attainment"]
                met = f"SLO attainment {att:.0%}" if att is not None else "SLO attainment n/a"
                arrived = svc.get("requests_arrived") or 0.0
                dropped = svc.get("requests_dropped") or 0.0
                gone = f"{dropped / arrived:.0%} given up, " if arrived > 0 else ""
                warnings.append(
                    f"inference service {r['name']}: demand exceeded the capacity it held at its"
                    f" latency targets for {over:.0%} of the run (more than"
                    f" {OVER_CAPACITY_WARNING_SHARE:.0%}); what it could not serve at once"
                    " waited in its backlog and was served late, or was given up past its"
                    f" client_timeout ({gone}{met}): give it more domains (more racks, a higher"
                    " priority class, or a lower max_load) or less demand"
                )
            else:
                att = svc["slo_attainment"]
                sf = _service_facts(facts, str(r["name"]))
                at_slo = None if sf is None else sf.get("slo_capacity_share")
                if att is not None and att < SLO_WARNING_ATTAINMENT:
                    head = (
                        f"inference service {r['name']}: only {att:.1%} of its requests met"
                        " their latency targets although demand stayed within the capacity it"
                        f" held (below {SLO_WARNING_ATTAINMENT:.0%}): "
                    )
                    if isinstance(at_slo, float | int) and 0.0 < at_slo < 1.0:
                        # the request level holds the targets up to part of the plan: the plan
                        # (the performance model's capacity) promises more than the requests get
                        why = (
                            "its replicas meet them only up to"
                            f" {at_slo:.0%} of the capacity they were planned at (the request"
                            " level), and the autoscaler fills them further; lower max_load,"
                            " or check with aifactory serve-sim"
                        )
                    elif isinstance(at_slo, float | int) and at_slo >= 1.0:
                        # the replicas hold the targets on the whole plan: what missed was the
                        # time demand spent above it and the backlog that left
                        why = (
                            "its replicas meet them on the whole capacity they were planned at"
                            " (the request level), so the misses come from the intervals when"
                            f" demand exceeded it ({over:.1%} of the run) and the backlog they"
                            " left, whose wait counts against the TTFT target; give it more"
                            " domains or a lower max_load, or check with aifactory serve-sim"
                        )
                    else:
                        # out of reach of the request mix itself (a 2 s TTFT for the longest
                        # prompts, say)
                        why = (
                            "the targets are beyond what this request mix gets even on a lightly"
                            " loaded replica; relax ttft/tpot, shorten the prompts, or check with"
                            " aifactory serve-sim"
                        )
                    warnings.append(head + why)
                    explained = True
        sf = _service_facts(facts, str(r["name"]))
        if not explained and sf is not None and sf.get("slo_capacity_share") == 0.0:
            # a capacity at the SLO of 0 reads as a broken service in compare; say why
            att = svc["slo_attainment"]
            met = f" ({att:.1%} of this run's requests met them)" if att is not None else ""
            warnings.append(
                f"inference service {r['name']}: its capacity at its latency targets is 0:"
                " even on a lightly loaded replica fewer than 99% of requests meet ttft/tpot"
                f" (the request level){met}, and capacity at the SLO counts only load at which"
                " 99% do; relax ttft/tpot, shorten the prompts, or check with aifactory serve-sim"
            )
        clipped = 0.0 if sf is None else float(sf.get("context_clipped_share", 0.0))
        if clipped > CONTEXT_WARNING_SHARE:
            warnings.append(
                f"inference service {r['name']}: {clipped:.1%} of its requests (the long tail of"
                " its prompt and output lengths) exceed the model's context window and are cut"
                " to fit at the request level, which its SLO attainment is estimated from:"
                " shorten input_tokens or output_tokens, or use a model with a longer context"
            )
        prov = _provenance(facts, str(r["name"]))
        if prov is not None:
            svc["capacity_provenance"], svc["capacity_source"] = prov
        engine = _engine_of(facts, str(r["name"]))
        if engine is not None:
            svc["kv_cache"], svc["runtime"], svc["prefill"] = engine
        if sf is not None and sf.get("precision"):
            svc["precision"] = sf["precision"]
        if sf is not None and sf.get("limited_by"):
            svc["limited_by"] = sf["limited_by"]
            if "batch" in sf:
                svc["batch"] = int(sf["batch"])
            if "max_seqs" in sf:
                svc["max_seqs"] = int(sf["max_seqs"])
            if "max_batch_kv" in sf:
                svc["max_batch_kv"] = int(sf["max_batch_kv"])
        cap = _capacity(facts, str(r["name"]), float(r["gpus"]))
        if cap is not None:
            per_domain, per_mw, at_peak = cap
            svc["capacity_tokens_per_day_per_domain"] = per_domain
            svc["capacity_tokens_per_day_per_mw"] = per_mw
            svc["capacity_tokens_per_day_at_peak_domains"] = at_peak
        services.append(svc)
    halls_energy = {h["name"]: _hall_energy(traces, h["name"]) for h in facts["halls"]}
    pre_tokens = float(pre["work_done"].sum()) if len(pre) else 0.0
    inf_tokens = float(svc_rows["work_done"].sum()) if len(svc_rows) else 0.0
    emissions = float(traces["emissions_tco2"].sum())
    out: Summary = {
        "scenario": facts["scenario"],
        "seed": facts["seed"],
        "duration_days": duration / DAY_S,
        "factory": {
            "halls": [
                {k: v for k, v in h.items() if k != "domain_price_usd"} for h in facts["halls"]
            ],
            "gpus": int(gpus),
            "domains": int(facts["domains"]),
            "provisioned_it_power_mw": facts["provisioned_it_power_w"] / 1e6,
            "grid_power_mw": facts["grid_power_w"] / 1e6,
        },
        "utilization": _twmean(traces, "utilization"),
        "utilization_by_workload": {
            k: _twmean(traces, f"gpus_{k}") / gpus
            for k in ("pretraining", "posttraining", "inference")
        },
        "availability": 1.0 - _twmean(traces, "gpus_failed") / gpus,
        "training_goodput": useful / held if held else None,
        "training_mfu": _clean(mfu),
        "energy": {
            "it_mwh": it_energy,
            "facility_mwh": fac_energy,
            "average_pue": fac_energy / it_energy if it_energy else None,
            "peak_facility_power_mw": float(traces["facility_power_w"].max()) / 1e6,
            "average_facility_power_mw": _twmean(traces, "facility_power_w") / 1e6,
            "emissions_tco2": float(traces["emissions_tco2"].sum()),
            "halls": halls_energy,
        },
        "tokens": {
            "pretraining_tokens_done": pre_tokens,
            "inference_output_tokens": inf_tokens,
            # apart, never summed: a training token and an output token are different work
            "inference_output_tokens_per_mwh": _clean(inf_tokens / fac_energy)
            if fac_energy
            else None,
            "pretraining_tokens_per_mwh": _clean(pre_tokens / fac_energy) if fac_energy else None,
            "inference_output_tokens_per_tco2": _clean(inf_tokens / emissions)
            if emissions
            else None,
            "pretraining_tokens_per_tco2": _clean(pre_tokens / emissions) if emissions else None,
        },
        "cost": _cost_summary(
            traces, facts, costs, total_cost, capex, energy_cost, gpu_hours, busy_gpu_hours
        ),
        "pretraining_runs": runs,
        "posttraining": {
            "submitted": len(post),
            "finished": int((post["state"] == "finished").sum()) if len(post) else 0,
            "mean_wait_hours": _clean(float(post["wait_s"].mean()) / HOUR_S) if len(post) else None,
            "preemptions": int(post["preemptions"].sum()) if len(post) else 0,
            # never started by the end: their waits are not in mean_wait_hours (right-censored)
            "waiting_at_end": int((post["state"] == "waiting").sum()) if len(post) else 0,
        },
        "inference_services": services,
        "reliability": _reliability(events, duration, facts),
        "warnings": warnings,
    }
    control = facts.get("control")
    if control is not None:
        lost: dict[str, float] = {}
        if len(train):
            by_cls = train.groupby("class")["slowdown_throttle_s"].sum()
            lost = {str(k): float(v) / HOUR_S for k, v in by_cls.items() if abs(v) > 1e-6}
        out["power_control"] = {
            "policy": control["policy"],
            "actions": control["actions"],
            "hours_over_grid_cap": control["site_over_cap_s"] / HOUR_S,
            "hours_over_hall_limit": {
                h["name"]: s / HOUR_S
                for h, s in zip(facts["halls"], control["hall_over_limit_s"], strict=True)
            },
            "hours_lost_to_throttle_by_class": lost,
            "hours_paused_by_class": _paused_hours(events, jobs, duration),
            "hours_below_full_clock_by_class": _below_full_clock(traces),
            "paused_at_end": control["paused_at_end"],
            "deferred_jobs": control["deferred_jobs"],
            "longest_minutes_over_a_cap": control["longest_over_s"] / 60.0,
            "nothing_left_to_shed": control["nothing_left_to_shed"],
        }
        if control["nothing_left_to_shed"]:
            pc = out["power_control"]
            policy = str(control["policy"])
            ladder = (
                ""
                if "pause" in policy or "preempt" in policy
                else "add pause or preempt to facility.power_control.policy, "
            )
            warnings.append(
                f"power control ({policy}) had nothing left to shed: a cap stayed exceeded"
                " with every class at its lowest clock and nothing left to pause or preempt"
                f" (longest spell over a cap {pc['longest_minutes_over_a_cap']:.0f} min;"
                f" {pc['hours_over_grid_cap']:.1f} h over the grid cap,"
                f" {sum(pc['hours_over_hall_limit'].values()):.1f} hall-hours over hall"
                f" limits): {ladder}lower the oversubscription, or give the halls more cooling"
                " or the site more grid power"
            )
        if "battery" in control:
            bat = control["battery"]
            out["power_control"]["battery"] = bat
            # a battery absorbs a training job's swing up to its power (facility.md §5)
            for run in runs:
                run["power_swing_with_battery_mw"] = max(
                    0.0, run["power_swing_mw"] - bat["power_mw"]
                )
    network = facts.get("network")
    if network is not None:
        out["network"] = _network_summary(network, traces, train, facts)
    return out


def _reliability(events: pd.DataFrame, duration: float, facts: RunFacts) -> ReliabilitySummary:
    """Failures, repairs and interruptions; failures by cause (domain failures, tray swaps and
    restart-only interruptions) and domain-hours out of service by cause. Planned maintenance
    is not a failure: its drains and domain-hours are reported apart (``maintenance_drains``,
    ``maintenance_domain_hours``), never among the causes."""
    ev = events["event"]
    hw = events[ev.isin(["failure", "tray_failure"])]
    by_cause = {str(k): int(v) for k, v in hw.groupby("detail")["detail"].size().items()}
    inter = events[ev == "interrupted"]
    restart_only = inter[
        ~inter.set_index(["time_s", "domain"]).index.isin(hw.set_index(["time_s", "domain"]).index)
    ]
    for k, v in restart_only.groupby("detail")["detail"].size().items():
        by_cause[str(k)] = by_cause.get(str(k), 0) + int(v)
    # planned maintenance drains are logged as failures of cause "maintenance": counted apart
    drains = by_cause.pop(MAINTENANCE, 0)
    unplanned = int(((ev == "failure") & (events["detail"] != MAINTENANCE)).sum())
    hours = {
        str(c): float(v.mean()) * duration / HOUR_S
        for c, v in failed_by_cause(events, duration, duration).items()
        if c != "time_s"
    }
    out: ReliabilitySummary = {
        "failures": unplanned,
        "maintenance_drains": drains,
        "maintenance_domain_hours": hours.pop(MAINTENANCE, 0.0),
        "repairs": int((ev == "repair").sum()),
        "job_interruptions": int(((ev == "interrupted") & (events["detail"] != MAINTENANCE)).sum()),
        "planned_job_interruptions": int(
            ((ev == "interrupted") & (events["detail"] == MAINTENANCE)).sum()
        ),
        "failures_per_day": unplanned / (duration / DAY_S),
        "failures_by_cause": dict(sorted(by_cause.items())),
        "domain_hours_failed_by_cause": hours,
    }
    rel = facts.get("reliability")
    if rel is not None:
        out["tray_failure"] = rel["tray_failure"]
        out["recovery"] = rel["recovery"]
        out["tray_swaps"] = rel["tray_swaps"]
        out["correlated_events"] = rel["correlated_events"]
        out["hot_spares"] = rel.get("hot_spares", 0)
        out["hot_spares_taken"] = rel.get("hot_spares_taken", 0)
    return out
