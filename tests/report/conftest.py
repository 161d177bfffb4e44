"""Fixtures for the report tests: small hand-made run tables and one real smoke run.

``small_tables(**kw)`` builds the five run tables by hand (4 hourly bins, 8 GPUs in one domain
kind, one pre-training run, two post-training jobs, one inference service, one failure), with
``summary.json`` computed by :func:`sim.analysis.summarize` from them, so the figures are tested
on numbers a reader can check by eye; ``small_tables(fabric=True)`` adds a fabric of three units
in two pods (``fabric.parquet``, a pod uplink load trace, the pre-training run's spans and network
slowdown, ``summary.network``).

``smoke_dir`` is the smoke scenario as it is (a ``non_blocking`` fabric); ``fabric_dir`` is the
same site on a fat tree (:data:`FABRIC_OVERRIDES`) with a pre-training run spread over its four
pods, still running at the end and slowed by the oversubscribed pod uplinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.analysis import failures_per_bin, summarize
from sim.contract import JOB_NUMBER_COLUMNS, JOB_TEXT_COLUMNS, RunFacts
from sim.io import RunTables
from sim.runner import run
from sim.tco import cost_columns

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
H = 3600.0
#: The smoke site on a fat tree of 8 units of 2 racks in 4 pods, pod uplinks at 1:16, and a
#: pre-training run of 4 racks spread over the 4 pods (tests/test_fabric_engine.py's case).
FABRIC_OVERRIDES = (
    "run.duration=1d",
    "network.kind=fat_tree",
    "network.placement=spread",
    "network.unit_domains=2",
    "network.pod_units=2",
    "network.oversubscription.pod=16",
    "workloads.pretraining.0.model=llama3.1-70b",
    "workloads.pretraining.0.gpus=288",
    "workloads.pretraining.0.global_batch=256",
    "workloads.pretraining.0.tokens=2e11",
)


def _small(
    *,
    failures: bool = True,
    inference: bool = True,
    training: bool = True,
    capex_known: bool = True,
    n_posttraining: int = 2,
    fabric: bool = False,
) -> RunTables:
    n = 4
    t = np.arange(n) * H
    total = np.full(n, 216.0)  # three 72-GPU domains
    pre = np.array([72.0, 72.0, 72.0, 0.0]) if training else np.zeros(n)
    post = np.array([0.0, 72.0, 0.0, 0.0]) if training else np.zeros(n)
    failed = np.array([0.0, 0.0, 72.0 if failures else 0.0, 0.0])
    inf = np.full(n, 72.0) if inference else np.zeros(n)
    idle = total - pre - post - inf - failed
    it = np.array([200e3, 300e3, 240e3, 160e3])
    traces = pd.DataFrame(
        {
            "time_s": t,
            "interval_s": np.full(n, H),
            "gpus_total": total,
            "gpus_idle": idle,
            "gpus_failed": failed,
            "gpus_pretraining": pre,
            "gpus_posttraining": post,
            "gpus_inference": inf,
            "utilization": (pre + post + inf) / total,
            "it_power_w": it,
            "site.hall1.it_power_w": it,
            "site.hall1.facility_power_w": it * 1.25,
            "site.hall1.cooling_capacity_w": np.full(n, 400e3),
            "pue": np.full(n, 1.25),
            "facility_power_w": it * 1.25,
            "grid_cap_w": np.full(n, 500e3),
            "cooling_load_w": it,
            "training_model_flops_per_s": pre * 1e15,
            "training_peak_flops_per_s": pre * 2.5e15,
            "facility_energy_mwh": it * 1.25 * H / 3.6e9,
            "energy_cost_usd": it * 1.25 * H / 3.6e9 * 80.0,
            "energy_price_usd_per_mwh": np.full(n, 80.0),
            "carbon_intensity_g_per_kwh": np.full(n, 400.0),
            "outdoor_dry_bulb_c": np.array([20.0, 25.0, 30.0, 22.0]),
            "outdoor_wet_bulb_c": np.array([15.0, 17.0, 19.0, 16.0]),
            # training throttled in the second hour (pre-training to 80%, post-training to 60%)
            "class.inference.clock": np.ones(n),
            "class.pretraining.clock": np.array([1.0, 0.8, 1.0, 1.0]) if training else np.ones(n),
            "class.posttraining.clock": np.array([1.0, 0.6, 1.0, 1.0]) if training else np.ones(n),
            "emissions_tco2": it * 1.25 * H / 3.6e12 * 400.0,
        }
    )
    jobs_rows: list[dict[str, Any]] = []
    events_rows: list[tuple[float, str, str, str, int, float, str]] = []
    if training:
        jobs_rows.append(
            {
                "name": "pre-a",
                "workload": "pretraining",
                "class": "pretraining",
                "slowdown_throttle_s": 720.0,
                "state": "running",
                "gpus": 72.0,
                "hardware": "gb200_nvl72",
                "submit_s": 0.0,
                "first_start_s": 0.0,
                "finish_s": math.nan,
                "work": 1e12,
                "work_done": 2.5e11,
                "ettr": 0.9,
                "interruptions": 1.0,
                "preemptions": 0.0,
                "mfu_when_running": 0.4,
                "held_gpu_hours": 216.0,
                "useful_gpu_hours": 200.0,
                "wait_s": 0.0,
            }
        )
        events_rows += [(0.0, "submitted", "pre-a", "pretraining", -1, 72.0, "")]
        events_rows += [(0.0, "started", "pre-a", "pretraining", -1, 72.0, "")]
        for i in range(n_posttraining):
            name = f"rl#{i + 1}"
            submit = H * (0.5 + i * 0.1)
            jobs_rows.append(
                {
                    "name": name,
                    "workload": "posttraining",
                    "class": "posttraining",
                    "slowdown_throttle_s": 360.0,
                    "state": "finished",
                    "gpus": 72.0,
                    "hardware": "gb200_nvl72",
                    "submit_s": submit,
                    "first_start_s": H,
                    "finish_s": 2 * H,
                    "work": H,
                    "work_done": H,
                    "ettr": 1.0,
                    "interruptions": 0.0,
                    "preemptions": 0.0,
                    "mfu_when_running": math.nan,
                    "held_gpu_hours": 72.0,
                    "useful_gpu_hours": 72.0,
                    "wait_s": H - submit,
                }
            )
    if failures:
        events_rows += [
            (2 * H + 10.0, "failure", "pre-a" if training else "", "pretraining", 0, math.nan, ""),
            (3 * H, "repair", "", "", 0, math.nan, ""),
        ]
        if training:
            events_rows.append((2 * H + 10.0, "interrupted", "pre-a", "pretraining", 0, 1e9, ""))
    if inference:
        demand = np.array([1000.0, 2000.0, 3000.0, 1000.0])
        served = np.minimum(demand, [1000.0, 2000.0, 2000.0, 1000.0])
        traces["service.svc.domains"] = inf / 72.0
        traces["service.svc.demand_tokens_per_s"] = demand
        traces["service.svc.served_tokens_per_s"] = served
        jobs_rows.append(
            {
                "name": "svc",
                "workload": "inference",
                "state": "serving",
                "gpus": 72.0,
                "hardware": "gb200_nvl72",
                "work": float(np.sum(demand * H)),
                "work_done": float(np.sum(served * H)),
                "held_gpu_hours": 288.0,
                "slo_attainment": float(np.sum(served) / np.sum(demand)),
                "rate_per_s": 2500.0 / 72.0,  # 2,500 tokens/s per domain
            }
        )
    if fabric:
        traces["fabric.pod.uplink_load"] = np.array([0.5, 1.0, 0.25, 0.0])
        if training:
            jobs_rows[0] |= {
                "span_units": 2.0,
                "span_pods": 2.0,
                "span_buildings": 1.0,
                "span_sites": 1.0,
                "slowdown_network_s": 1800.0,
            }
    jobs = pd.DataFrame(jobs_rows)
    for col in (*JOB_TEXT_COLUMNS, *JOB_NUMBER_COLUMNS):
        if col not in jobs:
            jobs[col] = pd.Series(dtype="string" if col in JOB_TEXT_COLUMNS else "float64")
    events = pd.DataFrame.from_records(
        events_rows, columns=["time_s", "event", "subject", "workload", "domain", "value", "detail"]
    )
    facts: RunFacts = {
        "scenario": "small",
        "seed": 0,
        "domains": 3,
        "provisioned_it_power_w": 400e3,
        "grid_power_w": 500e3,
        "energy_price_usd_per_mwh": 80.0,
        "facility_capex_usd_per_w": 11.7,
        "network_capex_fraction": 0.33,
        "it_amortization_s": 5 * 365 * 86_400.0,
        "facility_amortization_s": 15 * 365 * 86_400.0,
        "halls": [
            {
                "name": "hall1",
                "hardware": "gb200_nvl72",
                "domains": 3,
                "gpus": 216,
                "it_power_capacity_mw": 0.4,
                "domain_price_usd": 3.9e6 if capex_known else None,
            }
        ],
        "services": [],
        "control": {
            "policy": "throttle",
            "actions": 4,
            "site_over_cap_s": 0.0,
            "hall_over_limit_s": [1800.0],
            "paused_at_end": 0,
            "deferred_jobs": 0,
            "longest_over_s": 0.0,
            "nothing_left_to_shed": False,
        },
    }
    fabric_table = pd.DataFrame()
    if fabric:
        facts["network"] = {
            "kind": "fat_tree",
            "placement": "spread",
            "tiers": ["unit", "pod", "building", "site"],
            "bisection_tbps": {"unit": 43.2, "pod": 1.35, "building": 43.2, "site": 43.2},
            "switches": {"unit": {"quantum2_qm9700": 9}, "pod": {"quantum2_qm9700": 2}},
            "links": {"unit": 216, "pod": 216},
            "switch_power_w": 11 * 1848.0,
            "optics_power_w": 216 * 17.5 + 216 * 17.0,
            "capex_usd": None,
            "capex_note": "no sourced switch prices",
            "recomputes": 3,
        }
        # at the end: pre-a on unit 0 (pod 0), the service on unit 1 (pod 0), unit 2 free
        fabric_table = pd.DataFrame(
            {
                "unit": [0, 1, 2],
                "pod": [0, 0, 1],
                "building": [0, 0, 0],
                "site": [0, 0, 0],
                "hall": ["hall1"] * 3,
                "domains": [1, 1, 1],
                "free": [0, 0, 1],
                "failed": [0, 0, 0],
                "holder": ["pre-a", "svc", ""],
                "holder_workload": ["pretraining", "inference", ""],
                "held": [1, 1, 0],
            }
        )
    if failures:  # the rack failed for 'gpu' from 2 h + 10 s to 3 h (what the runner derives)
        traces["cause.gpu.domains_out"] = [0.0, 0.0, (H - 10.0) / H, 0.0]
    # the cost columns as a run derives them (sim.tco; the older straight-line model, as these
    # facts carry no `costs`): a domain without a price makes every capital cost NaN
    for col, values in cost_columns(traces, facts, failures_per_bin(events, t)).items():
        traces[col] = values
    traces["cost_so_far_usd"] = np.cumsum(traces["cost_usd"].to_numpy())
    summary = summarize(traces, events, jobs, facts)
    scenario = {
        "name": "small",
        "description": "hand-made tables",
        "run": {"duration": f"{4 * H} s", "sample_interval": f"{H} s", "seed": 0},
        "facility": {
            "grid_power": 500e3,
            "halls": [{"name": "hall1", "hardware": "gb200_nvl72", "cooling_capacity": None}],
        },
    }
    return RunTables(
        scenario=scenario,
        traces=traces,
        events=events,
        jobs=jobs,
        summary=summary,
        fabric=fabric_table,
    )


@pytest.fixture(scope="session")
def small_tables() -> Callable[..., RunTables]:
    return _small


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished smoke run folder (written by the runner, so it has report.html)."""
    folder = tmp_path_factory.mktemp("smoke") / "run"
    result = run(SMOKE, out=folder)
    assert result.folder == folder
    return folder


@pytest.fixture(scope="session")
def fabric_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke site on a fat tree (:data:`FABRIC_OVERRIDES`), written with its report."""
    folder = tmp_path_factory.mktemp("fabric") / "run"
    run(SMOKE, overrides=FABRIC_OVERRIDES, out=folder)
    return folder


@pytest.fixture(scope="session")
def fabric_tables(fabric_dir: Path) -> RunTables:
    from sim.io import read_run

    return read_run(fabric_dir)


@pytest.fixture(scope="session")
def smoke_tables(smoke_dir: Path) -> RunTables:
    from sim.io import read_run

    return read_run(smoke_dir)
