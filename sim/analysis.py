"""KPIs from the run tables: pure functions of DataFrames and plain data, no model objects.

Definitions (all time-weighted over the run unless said otherwise):

* utilization: share of installed GPUs held by any workload;
* availability: share of installed GPUs not failed;
* training goodput: GPU-hours of kept training compute (work done / rate x GPUs) over GPU-hours
  held by training jobs; what is lost to restarts, checkpoint stalls, lost work and waiting for
  replacements is the difference;
* ETTR of a pre-training run: kept compute time over wall time since its first start
  (validation.md §B.1);
* MFU: achieved model FLOP/s over the dense peak of the GPUs running training;
* cost per GPU-hour: (amortized capital + energy) / installed GPU-hours;
* cost per million tokens of a service: its share of GPU-hours x cost per GPU-hour / tokens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["service_rows", "summarize"]

HOUR_S = 3600.0
DAY_S = 86_400.0


def _twmean(traces: pd.DataFrame, col: str) -> float:
    w = traces["interval_s"].to_numpy()
    return float(np.sum(traces[col].to_numpy() * w) / np.sum(w))


def _integral(traces: pd.DataFrame, col: str) -> float:
    return float(np.sum(traces[col].to_numpy() * traces["interval_s"].to_numpy()))


def _clean(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def service_rows(traces: pd.DataFrame, services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One jobs-table row per inference service, from its trace columns."""
    rows = []
    for s in services:
        p = f"service.{s['name']}."
        demand = _integral(traces, p + "demand_tokens_per_s")
        served = _integral(traces, p + "served_tokens_per_s")
        domain_s = _integral(traces, p + "domains")
        rows.append(
            {
                "name": s["name"],
                "workload": "inference",
                "class": s["class"],
                "hardware": s["hardware"],
                "gpus": float(np.max(traces[p + "domains"])) * s["domain_gpus"],
                "work": demand,
                "work_unit": "output_tokens",
                "work_done": served,
                "held_gpu_hours": domain_s * s["domain_gpus"] / HOUR_S,
                "slo_attainment": served / demand if demand > 0 else math.nan,
                "rate_per_s": s["capacity_tokens_per_s_per_domain"] / s["domain_gpus"],
                "state": "serving",
            }
        )
    return rows


def summarize(
    traces: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame, facts: dict[str, Any]
) -> dict[str, Any]:
    """Headline KPIs of one run (the content of ``summary.json``)."""
    duration = float(traces["interval_s"].sum())
    gpus = float(traces["gpus_total"].iloc[0])
    gpu_hours = gpus * duration / HOUR_S
    it_energy = _integral(traces, "it_power_w") / 3.6e9
    fac_energy = float(traces["facility_energy_mwh"].sum())
    energy_cost = float(traces["energy_cost_usd"].sum())
    # NaN (a generation without a sourced price) must stay unknown, not be skipped as zero
    capex = float(traces["capex_cost_usd"].sum(skipna=False))
    total_cost = energy_cost + capex
    per_gpu_hour = total_cost / gpu_hours if gpu_hours else math.nan

    train = jobs[jobs["workload"].isin(["pretraining", "posttraining"])]
    held = float(train["held_gpu_hours"].sum())
    useful = float(train["useful_gpu_hours"].sum())
    peak = _integral(traces, "training_peak_flops_per_s")
    mfu = _integral(traces, "training_model_flops_per_s") / peak if peak > 0 else math.nan

    pre = jobs[jobs["workload"] == "pretraining"]
    runs = []
    for _, r in pre.iterrows():
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
            }
        )
    post = jobs[jobs["workload"] == "posttraining"]
    services = []
    svc_rows = jobs[jobs["workload"] == "inference"]
    for _, r in svc_rows.iterrows():
        tokens = float(r["work_done"])
        cost = float(r["held_gpu_hours"]) * per_gpu_hour
        services.append(
            {
                "name": r["name"],
                "output_tokens": tokens,
                "tokens_per_day": tokens / (duration / DAY_S),
                "slo_attainment": _clean(float(r["slo_attainment"])),
                "gpu_hours": float(r["held_gpu_hours"]),
                "cost_per_million_tokens_usd": _clean(cost / tokens * 1e6) if tokens else None,
            }
        )
    ev = events["event"]
    out: dict[str, Any] = {
        "scenario": facts["scenario"],
        "seed": facts["seed"],
        "duration_days": duration / DAY_S,
        "factory": {
            "halls": facts["halls"],
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
        },
        "tokens": {
            "pretraining_tokens_done": float(pre["work_done"].sum()) if len(pre) else 0.0,
            "inference_output_tokens": float(svc_rows["work_done"].sum()) if len(svc_rows) else 0,
        },
        "cost": {
            "total_usd": _clean(total_cost),
            "capex_usd": _clean(capex),
            "energy_usd": energy_cost,
            "per_gpu_hour_usd": _clean(per_gpu_hour),
            "idle_capacity_usd": _clean(per_gpu_hour * _integral(traces, "gpus_idle") / HOUR_S),
        },
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
        "reliability": {
            "failures": int((ev == "failure").sum()),
            "repairs": int((ev == "repair").sum()),
            "job_interruptions": int((ev == "interrupted").sum()),
            "failures_per_day": float((ev == "failure").sum()) / (duration / DAY_S),
        },
    }
    return out
