"""Tier (a): tiny scenarios with exact expected events; RNG streams and the demand model.

Expected times are derived from the plan (``plan.jobs[i].rate``, checkpoint interval and write
time) so these tests do not depend on the performance model's numbers: token counts are chosen
as a multiple of ``rate x checkpoint_interval``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.build import Plan
from sim.engine.reliability import draw_durations
from sim.engine.services import demand_series
from sim.engine.workloads import Job
from sim.io import RunTables
from sim.rng import RandomStreams

H = 3600.0
DAY = 86_400.0
Run = Callable[..., tuple[Plan, RunTables]]
Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-6)


def rows(tables: RunTables, subject: str | None = None) -> list[tuple[str, str]]:
    ev = tables.events
    if subject is not None:
        ev = ev[ev["subject"] == subject]
    return list(zip(ev["event"], ev["subject"], strict=True))


def times(tables: RunTables, subject: str, event: str) -> list[float]:
    ev = tables.events
    return ev[(ev["subject"] == subject) & (ev["event"] == event)]["time_s"].tolist()


def job_row(tables: RunTables, name: str) -> pd.Series:
    jobs = tables.jobs
    return jobs[jobs["name"] == name].iloc[0]


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def pretrain(name: str, gpus: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "model": "llama3.1-8b", "gpus": gpus, "tokens": 1e12, **kw}


def with_cycles(data: dict[str, Any], plan: Plan, cycles: dict[str, float]) -> dict[str, Any]:
    """Set each named job's tokens to ``cycles x rate x checkpoint_interval``."""
    by_name = {j.name: j for j in plan.jobs}
    for job in data["workloads"]["pretraining"]:
        if job["name"] in cycles:
            pj = by_name[job["name"]]
            job["tokens"] = cycles[job["name"]] * pj.rate * pj.checkpoint_interval_s
    return data


# --------------------------------------------------------------------------- one job alone


@pytest.mark.parametrize(
    ("hardware", "gpus", "write"),
    [
        ("gb200_nvl72", 256, "1 min"),
        ("gb200_nvl72", 256, 0),
        ("gb200_nvl72", 256, "auto"),
        ("toy", 32, "1 min"),
    ],
)
def test_single_pretraining_job_exact_events(
    tiny_scenario: Builder,
    plan_of: PlanOf,
    run_scenario: Run,
    toy_node: dict[str, Any],
    hardware: str,
    gpus: int,
    write: str | int,
) -> None:
    inline = toy_node if hardware == "toy" else None
    data = tiny_scenario(
        hardware=hardware,
        inline_hardware=inline,
        pretraining=[
            pretrain(
                "p", gpus, submit_at="30 min", checkpoint_interval="1 h", checkpoint_write=write
            )
        ],
    )
    data = with_cycles(data, plan_of(data), {"p": 3.5})
    plan, t = run_scenario(data)
    pj = plan.jobs[0]
    interval, w, s = pj.checkpoint_interval_s, pj.checkpoint_write_s, 1800.0
    assert interval == H
    if write == "1 min":
        assert w == 60.0
    finish = s + 3.5 * interval + 3 * w

    assert rows(t) == [("submitted", "p"), ("started", "p")] + [("checkpointed", "p")] * 3 + [
        ("finished", "p")
    ]
    assert t.events["time_s"].tolist() == [
        approx(x)
        for x in [s, s, s + (interval + w), s + 2 * (interval + w), s + 3 * (interval + w), finish]
    ]
    ev = t.events
    assert ev[ev["event"] == "started"]["value"].iloc[0] == gpus
    assert ev[ev["event"] == "finished"]["value"].iloc[0] == approx(pj.work)

    r = job_row(t, "p")
    domain_gpus = plan.hw_specs[0].domain_gpus
    assert r["state"] == "finished"
    assert r["domains"] == pj.domains == math.ceil(gpus / domain_gpus)
    assert (r["first_start_s"], r["finish_s"], r["wait_s"]) == (s, approx(finish), 0.0)
    assert (r["work_done"], r["work_lost"]) == (approx(pj.work), 0.0)
    assert (r["interruptions"], r["preemptions"], r["restarts"]) == (0, 0, 0)
    wall = finish - s
    assert r["held_gpu_hours"] == approx(pj.domains * domain_gpus * wall / H)
    assert r["useful_gpu_hours"] == approx(gpus * 3.5 * interval / H)
    assert r["ettr"] == approx(3.5 * interval / wall)

    # traces: the held GPUs and the tokens level, binned exactly (1 h bins)
    held = pj.domains * domain_gpus
    eff = pj.rate * interval / (interval + w)
    for k, row in t.traces.iterrows():
        b0, b1 = row["time_s"], row["time_s"] + row["interval_s"]
        share = overlap(b0, b1, s, finish) / (b1 - b0)
        assert row["gpus_pretraining"] == pytest.approx(held * share, rel=1e-9, abs=1e-9), k
        assert row["gpus_pretraining_running"] == pytest.approx(held * share, rel=1e-9, abs=1e-9)
        assert row["pretraining_tokens_per_s"] == pytest.approx(eff * share, rel=1e-9, abs=1e-3)
        assert row["jobs_waiting_pretraining"] == 0

    run = t.summary["pretraining_runs"][0]
    assert run["state"] == "finished"
    assert run["completion_days"] == approx((finish - s) / DAY)


def test_power_follows_the_activity_of_the_domains(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    data = tiny_scenario(
        pretraining=[
            pretrain("p", 256, submit_at="2 h", checkpoint_interval="1 h", checkpoint_write=0)
        ]
    )
    data = with_cycles(data, plan_of(data), {"p": 3.0})
    plan, t = run_scenario(data)
    fac = plan.facility
    ap = fac.activity[0]  # the generation's catalog fractions (no scenario override)
    assert ap.source == "catalog"
    assert ap == dataclasses.replace(ap, **plan.hw_specs[0].activity_power.model_dump())
    p = plan.hw_specs[0].domain_power_w
    n = plan.n_domains
    overhead = fac.it_overhead_fraction * n * p
    idle_it = n * p * ap.idle + overhead
    busy_it = n * p * ap.training + overhead  # the job holds all 4 domains
    tr = t.traces.set_index("time_s")
    assert tr.loc[0.0, "it_power_w"] == approx(idle_it)
    assert tr.loc[3 * H, "it_power_w"] == approx(busy_it)
    assert tr.loc[3 * H, "facility_power_w"] == approx(busy_it * fac.pue)
    assert tr.loc[10 * H, "it_power_w"] == approx(idle_it)
    assert tr["pue"].to_numpy() == pytest.approx(fac.pue, rel=1e-12)
    assert t.summary["energy"]["average_pue"] == approx(fac.pue)


# --------------------------------------------------------------------------- preemption


def test_higher_class_preempts_a_preemptible_job_exact_events(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    data = tiny_scenario(
        duration="2 d",
        pretraining=[
            pretrain("low", 256, **{"class": "low"}, checkpoint_interval="1 h", checkpoint_write=0),
            pretrain(
                "high",
                128,
                **{"class": "high"},
                submit_at="2.5 h",
                checkpoint_interval="1 h",
                checkpoint_write="30 s",
            ),
        ],
        scheduler={"classes": [{"name": "high"}, {"name": "low", "preemptible": True}]},
    )
    data = with_cycles(data, plan_of(data), {"low": 4.5, "high": 1.5})
    plan, t = run_scenario(data)
    low, high = plan.jobs
    assert (low.preemptible, high.preemptible) == (True, False)
    interval, wh = H, high.checkpoint_write_s
    restart = plan.scenario.reliability.restart_overhead_s
    tp = 2.5 * H  # the high job arrives half-way through the low job's third interval
    f_high = tp + 1.5 * interval + wh
    # the low job runs again after its restart overhead and reading its checkpoint back
    seg = f_high + restart + low.checkpoint_restore_s
    f_low = seg + 2.5 * interval

    expected = [
        (0.0, "submitted", "low"),
        (0.0, "started", "low"),
        (H, "checkpointed", "low"),
        (2 * H, "checkpointed", "low"),
        (tp, "submitted", "high"),
        (tp, "preempted", "low"),
        (tp, "started", "high"),
        (tp + interval + wh, "checkpointed", "high"),
        (f_high, "finished", "high"),
        (f_high, "restarted", "low"),
        (seg + interval, "checkpointed", "low"),
        (seg + 2 * interval, "checkpointed", "low"),
        (f_low, "finished", "low"),
    ]
    assert rows(t) == [(e, s) for _, e, s in expected]
    assert t.events["time_s"].tolist() == [approx(x) for x, _, _ in expected]

    lost = low.rate * 0.5 * interval  # the work since the last checkpoint at 2 h
    assert t.events[t.events["event"] == "preempted"]["value"].iloc[0] == approx(lost)
    r = job_row(t, "low")
    assert (r["preemptions"], r["restarts"], r["interruptions"]) == (1, 1, 0)
    assert r["work_lost"] == approx(lost)
    assert r["work_done"] == approx(low.work)
    gpus = 4 * 72
    assert r["held_gpu_hours"] == approx(gpus * (tp + (f_low - f_high)) / H)
    assert job_row(t, "high")["held_gpu_hours"] == approx(2 * 72 * (f_high - tp) / H)
    tr = t.traces.set_index("time_s")
    assert tr.loc[3 * H, "jobs_waiting_pretraining"] == 1  # low waits while high runs
    assert tr.loc[2 * H, "jobs_waiting_pretraining"] == approx(0.5)  # half of the bin


def test_pretraining_preempts_posttraining_stream_and_loses_work_since_checkpoint(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    data = tiny_scenario(
        duration="1 d",
        seed=4,
        posttraining=[
            {
                "name": "rl",
                "arrival_rate": "20 / h",
                "gpus": 72,
                "duration": "10 h",
                "stop_at": "1 h",
                "checkpoint_interval": "1 h",
            }
        ],
        pretraining=[pretrain("big", 128, submit_at="3.25 h", tokens=1e11)],
    )
    _, t = run_scenario(data)
    ev = t.events
    tp = 3.25 * H
    pre = ev[ev["event"] == "preempted"]
    assert len(pre) == 2  # 4 single-domain jobs run, the 2-domain job needs two of them
    assert (pre["time_s"] == tp).all()
    started = ev[(ev["event"] == "started") & (ev["workload"] == "posttraining")]
    # most recently started first
    order = started.set_index("subject")["time_s"]
    victims = pre["subject"].tolist()
    running = order[order < tp].sort_values(ascending=False).index.tolist()
    assert victims == running[:2]
    for _, p in pre.iterrows():
        start = order[p["subject"]]
        # post-training checkpoints are counted per job, not logged as event rows
        assert times(t, p["subject"], "checkpointed") == []
        n_ckpt = int((tp - start) // H)
        since = tp - (start + n_ckpt * H)
        assert p["value"] == approx(since)  # post-training work is run seconds, rate 1
        r = job_row(t, p["subject"])
        assert r["work_lost"] == approx(since)
        assert r["preemptions"] == 1
        assert r["checkpoints"] >= n_ckpt  # plus those after its restart
    # the pre-training job starts at once, in the same instant
    assert times(t, "big", "started") == [tp]
    i_pre = pre.index.max()
    i_start = ev[(ev["event"] == "started") & (ev["subject"] == "big")].index[0]
    assert i_start > i_pre


def test_backfill_lets_a_small_job_start_in_the_gap(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    data = tiny_scenario(
        pretraining=[
            pretrain("x", 192, checkpoint_interval="1 h", checkpoint_write=0),  # 3 domains
            pretrain(
                "y", 256, submit_at="30 min", checkpoint_interval="1 h", checkpoint_write=0
            ),  # 4 domains: must wait
            pretrain(
                "z", 64, submit_at="1 h", checkpoint_interval="1 h", checkpoint_write=0
            ),  # 1 domain: fits in the gap
        ]
    )
    data = with_cycles(data, plan_of(data), {"x": 2.0, "y": 1.0, "z": 3.0})
    _, t = run_scenario(data)
    assert times(t, "x", "started") == [0.0]
    assert times(t, "z", "started") == [H]
    assert times(t, "x", "finished") == [approx(2 * H)]
    assert times(t, "z", "finished") == [approx(4 * H)]
    # y needs all four domains: it waits for z, not only for x
    assert times(t, "y", "started") == [approx(4 * H)]
    assert job_row(t, "y")["wait_s"] == approx(3.5 * H)


def test_spare_domains_are_held_back_from_new_starts(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    data = tiny_scenario(
        pretraining=[pretrain("x", 192, tokens=1e15), pretrain("z", 64, submit_at="1 h")],
        scheduler={"spare_domains": 1},
    )
    _, t = run_scenario(data)
    assert rows(t, "z") == [("submitted", "z"), ("unfinished", "z")]
    r = job_row(t, "z")
    assert (r["state"], r["work_done"]) == ("waiting", 0.0)
    assert math.isnan(r["first_start_s"])
    assert t.events[t.events["event"] == "unfinished"]["time_s"].tolist()[-1] == 2 * DAY


def test_job_submitted_after_the_end_is_not_submitted(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    _, t = run_scenario(
        tiny_scenario(duration="2 d", pretraining=[pretrain("late", 64, submit_at="3 d")])
    )
    assert rows(t) == []
    assert job_row(t, "late")["state"] == "not_submitted"


def test_unfinished_job_reports_its_progress(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    data = tiny_scenario(
        duration="10 h",
        sample_interval="1 h",
        pretraining=[pretrain("p", 256, checkpoint_interval="1 h", checkpoint_write=0)],
    )
    data = with_cycles(data, plan_of(data), {"p": 100.0})
    plan, t = run_scenario(data)
    pj = plan.jobs[0]
    assert rows(t) == [("submitted", "p"), ("started", "p")] + [("checkpointed", "p")] * 10 + [
        ("unfinished", "p")
    ]
    done = t.events[t.events["event"] == "unfinished"]["value"].iloc[0]
    assert done == approx(pj.rate * 10 * H)
    r = job_row(t, "p")
    assert (r["state"], r["work_done"], r["work_lost"]) == ("running", approx(done), 0.0)


def test_services_claim_their_replicas_before_training_at_time_zero(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    data = tiny_scenario(
        pretraining=[pretrain("p", 256)],  # would take all 4 domains
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "demand": {"mean_requests_per_s": 1, "noise_cv": 0},
                "input_tokens": 100,
                "output_tokens": 100,
                "min_domains": 1,
            }
        ],
    )
    _, t = run_scenario(data)
    assert (t.traces["service.chat.domains"] == 1).all()
    assert rows(t, "p") == [("submitted", "p"), ("unfinished", "p")]  # 3 racks left: it waits


# --------------------------------------------------------------------------- inference


def test_service_follows_its_demand_and_is_capped_by_the_factory(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    svc_cfg = {
        "name": "chat",
        "model": "llama3.1-8b",
        "input_tokens": 100,
        "output_tokens": 100,
        "min_domains": 1,
        "control_interval": "1 h",
        "autoscale_tolerance": 0,
        "scale_down_stabilization": 0,
        "demand": {"mean_requests_per_s": 1.0, "noise_cv": 0},
        # no backlog: what the capacity cannot serve at once is dropped, so served is
        # min(demand, capacity) (the backlog: tests/test_backlog.py, test_fleet_outputs.py)
        "client_timeout": 0,
    }
    data = tiny_scenario(duration="3 d", inference=[svc_cfg])
    cap = plan_of(data).services[0].capacity_tokens_per_s_per_domain
    # demand swings around 3 domains' worth: the daily peak needs more than the 4 racks
    svc_cfg["demand"]["mean_requests_per_s"] = 3.0 * cap * 0.85 / 100
    plan, t = run_scenario(data)
    ps = plan.services[0]
    n = len(t.traces)
    demand = demand_series(ps, n, np.random.default_rng(0))
    need = np.maximum(1, np.ceil(demand / (cap * ps.max_load) - 1e-9))
    domains = np.minimum(need, plan.n_domains)
    served = np.minimum(demand, domains * cap)
    tr = t.traces
    np.testing.assert_allclose(tr["service.chat.demand_tokens_per_s"], demand, rtol=1e-12)
    np.testing.assert_array_equal(tr["service.chat.domains"], domains)
    np.testing.assert_allclose(tr["service.chat.served_tokens_per_s"], served, rtol=1e-12)
    assert (need > plan.n_domains).any()  # the cap was hit at some tick
    assert (domains < plan.n_domains).any()  # and the service shrank at others
    row = job_row(t, "chat")
    assert row["work"] == approx(float(np.sum(demand * 3600.0)))
    assert row["work_done"] == approx(float(np.sum(served * 3600.0)))
    assert t.summary["inference_services"][0]["slo_attainment"] == approx(
        float(served.sum() / demand.sum())
    )


def test_inference_only_scenario_runs(tiny_scenario: Builder, run_scenario: Run) -> None:
    data = tiny_scenario(
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "input_tokens": 100,
                "output_tokens": 100,
                "demand": {"mean_requests_per_s": 1},
            }
        ]
    )
    _, t = run_scenario(data)
    assert t.summary["training_goodput"] is None


def test_idle_factory_runs(tiny_scenario: Builder, run_scenario: Run) -> None:
    _, t = run_scenario(tiny_scenario())
    assert t.summary["utilization"] == 0.0


def chat(**kw: Any) -> dict[str, Any]:
    return {
        "name": "chat",
        "model": "llama3.1-8b",
        "input_tokens": 100,
        "output_tokens": 100,
        "autoscale_tolerance": 0,
        **kw,
    }


def test_scale_down_waits_for_the_stabilization_window(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    svc_cfg = chat(
        control_interval="5 min",
        scale_down_stabilization="15 min",
        demand={"mean_requests_per_s": 1.0, "noise_cv": 0, "peak_to_trough": 4},
    )
    data = tiny_scenario(racks=6, duration="1 d", sample_interval="5 min", inference=[svc_cfg])
    cap = plan_of(data).services[0].capacity_tokens_per_s_per_domain
    svc_cfg["demand"]["mean_requests_per_s"] = 2.5 * cap * 0.85 / 100
    plan, t = run_scenario(data)
    ps = plan.services[0]
    demand = demand_series(ps, len(t.traces), np.random.default_rng(0))
    need = np.maximum(ps.min_domains, np.ceil(demand / (cap * ps.max_load) - 1e-9))
    # the target is the highest need of the last 15 minutes (this tick and the 3 before)
    target = np.array([need[max(0, k - 3) : k + 1].max() for k in range(len(need))])
    domains = t.traces["service.chat.domains"].to_numpy()
    np.testing.assert_array_equal(domains, np.minimum(target, plan.n_domains))
    assert (target > need).any()  # some scale-downs were held back
    drops = np.flatnonzero(np.diff(domains) < 0)
    assert len(drops) > 0
    for k in drops:  # a drop only after the need has been lower for the whole window
        assert (need[k - 2 : k + 2] <= domains[k + 1]).all()


def test_service_scale_up_preempts_posttraining(
    tiny_scenario: Builder, plan_of: PlanOf, run_scenario: Run
) -> None:
    svc_cfg = chat(
        control_interval="1 h",
        scale_down_stabilization=0,
        min_domains=0,
        demand={"mean_requests_per_s": 1.0, "noise_cv": 0},
    )
    stream = {
        "name": "rl",
        "arrival_rate": "30 / h",
        "gpus": 72,
        "duration": "20 h",
        "stop_at": "1 h",
        "checkpoint_interval": "1 h",
    }
    data = tiny_scenario(duration="1 d", inference=[svc_cfg], posttraining=[stream])
    cap = plan_of(data).services[0].capacity_tokens_per_s_per_domain
    svc_cfg["demand"]["mean_requests_per_s"] = 1.5 * cap * 0.85 / 100
    plan, t = run_scenario(data)
    ps = plan.services[0]
    demand = demand_series(ps, len(t.traces), np.random.default_rng(0))
    need = np.maximum(0, np.ceil(demand / (cap * ps.max_load) - 1e-9))
    domains = t.traces["service.chat.domains"].to_numpy()
    np.testing.assert_array_equal(domains, np.minimum(need, plan.n_domains))
    ev = t.events
    pre = ev[ev["event"] == "preempted"]
    assert len(pre) >= 1
    assert (pre["workload"] == "posttraining").all()
    assert (pre["time_s"] % 3600 == 0).all()  # at the service's control ticks
    first = pre.drop_duplicates("subject")  # before any restart: one segment since start
    for _, p in first.iterrows():
        start = times(t, p["subject"], "started")[0]
        # checkpoints every hour of run time since the start: lost = time since the last one
        assert p["value"] == pytest.approx((p["time_s"] - start) % H, abs=1e-6)


def test_posttraining_arrivals_stay_inside_their_window(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    stream = {
        "name": "rl",
        "arrival_rate": "2 / h",
        "gpus": {"distribution": "choice", "values": [72, 144], "weights": [1, 3]},
        "duration": {"distribution": "exponential", "mean": "2 h"},
        "start_at": "6 h",
        "stop_at": "30 h",
    }
    _, t = run_scenario(tiny_scenario(seed=2, posttraining=[stream]))
    sub = t.events[t.events["event"] == "submitted"]
    assert len(sub) > 10
    assert (sub["time_s"] >= 6 * H).all() and (sub["time_s"] < 30 * H).all()
    assert set(sub["value"]) <= {72.0, 144.0}
    assert sub["subject"].tolist() == [f"rl#{k}" for k in range(1, len(sub) + 1)]
    post = t.jobs[t.jobs["workload"] == "posttraining"]
    assert (post["stream"] == "rl").all()
    assert (post["work_unit"] == "run_seconds").all()
    assert len(post) == len(sub)


def test_a_spare_replaces_a_failed_domain_in_place(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    data = tiny_scenario(
        duration="3 d",
        seed=3,
        reliability={"failure_rate_per_1000_node_days": 60, "repair_time": "6 h"},
        scheduler={"spare_domains": 1},
        pretraining=[pretrain("p", 192, tokens=1e15)],  # 3 domains, runs past the end
    )
    plan, t = run_scenario(data)
    ev = t.events[t.events["subject"] == "p"]
    kinds = ev["event"].tolist()
    first = kinds.index("interrupted")
    # the spare was free: the job restarts in place, without going back to the queue
    assert kinds[first + 1] == "restarted"
    assert ev.iloc[first + 1]["detail"] == "in_place"
    assert ev.iloc[first + 1]["time_s"] == ev.iloc[first]["time_s"]
    check_lost_work(plan, t)


# --------------------------------------------------------------------------- failures


def _delays(plan: Plan) -> dict[str, float]:
    """Each cause's delay before the restart overhead: its detection time."""
    return {c.name: c.detection_s for c in plan.reliability.causes}


def check_failure_consistency(plan: Plan, t: RunTables, repair_s: float | None) -> None:
    """Interruptions match failures on held domains (restart-only faults and tray swaps have no
    failure row); failures and repairs alternate; unplanned repairs take ``repair_s``."""
    ev = t.events
    end = plan.scenario.run.duration_s
    restart_only = {c.name for c in plan.reliability.causes if c.effect == "restart"}
    tray = ev[ev["event"] == "tray_failure"]
    fails = ev[ev["event"] == "failure"]
    inter = ev[(ev["event"] == "interrupted") & ~ev["detail"].isin(list(restart_only))]
    inter = inter[
        ~inter.set_index(["time_s", "domain"]).index.isin(
            tray.set_index(["time_s", "domain"]).index
        )
    ]
    on_jobs = fails[fails["workload"].isin(["pretraining", "posttraining"])]
    assert list(zip(inter["time_s"], inter["domain"], inter["subject"], strict=True)) == list(
        zip(on_jobs["time_s"], on_jobs["domain"], on_jobs["subject"], strict=True)
    )
    for d in range(plan.n_domains):
        seq = ev[(ev["domain"] == d) & ev["event"].isin(["failure", "repair"])]
        kinds = seq["event"].tolist()
        assert kinds[::2] == ["failure"] * len(kinds[::2]), d
        assert kinds[1::2] == ["repair"] * len(kinds[1::2]), d
        ts = seq["time_s"].tolist()
        planned = (seq["detail"] == "maintenance").tolist()
        for i in range(0, len(ts), 2):
            if planned[i] or repair_s is None:
                continue
            if i + 1 < len(ts):
                assert ts[i + 1] == approx(ts[i] + repair_s)
            else:
                assert ts[i] + repair_s >= end  # not repaired: the run ended first
    assert (fails["domain"] >= 0).all() and (fails["domain"] < plan.n_domains).all()


def check_lost_work(plan: Plan, t: RunTables) -> None:
    """Each interruption or preemption loses exactly the work since the last checkpoint (a
    planned one loses nothing); a restart begins after the fault's detection (and, planned,
    the checkpoint write) and the restart overhead."""
    restart = plan.scenario.reliability.restart_overhead_s
    delays = _delays(plan)
    jobs = {j.name: j for j in plan.jobs}
    ev = t.events
    for name, grp in ev[ev["workload"] == "pretraining"].groupby("subject", sort=False):
        pj = jobs[str(name)]
        seg: float | None = None  # when the running segment begins (None: not holding)
        last = -math.inf
        total = 0.0
        delay, lost_at = 0.0, -math.inf
        for when, kind, value, detail in zip(
            grp["time_s"], grp["event"], grp["value"], grp["detail"], strict=True
        ):
            if kind == "started":
                seg, last = when, when
            elif kind == "restarted":
                seg = when + restart + pj.checkpoint_restore_s + max(0.0, delay - (when - lost_at))
                last = seg
            elif kind == "checkpointed":
                last = when
            elif kind in ("interrupted", "preempted"):
                assert seg is not None
                if when <= seg or detail == "maintenance":
                    expected = 0.0  # still paying the restart overhead, or saved before it
                else:
                    expected = pj.rate * min(when - max(seg, last), pj.checkpoint_interval_s)
                assert value == pytest.approx(expected, rel=1e-9, abs=1e-3), (name, when)
                total += value
                delay = delays.get(str(detail), 0.0) if kind == "interrupted" else 0.0
                if detail == "maintenance":
                    delay += pj.checkpoint_write_s
                lost_at = when
                seg = math.inf  # computing nothing until its restart row
        assert job_row(t, str(name))["work_lost"] == pytest.approx(total, rel=1e-9, abs=1e-3)


@pytest.mark.parametrize("seed", [3, 11])
def test_failures_interrupt_jobs_and_are_repaired(
    tiny_scenario: Builder, run_scenario: Run, seed: int
) -> None:
    data = tiny_scenario(
        duration="3 d",
        seed=seed,
        reliability={"failure_rate_per_1000_node_days": 100, "repair_time": "4 h"},
        pretraining=[
            pretrain("p", 192, tokens=2e12, checkpoint_interval="1 h", checkpoint_write="1 min")
        ],
    )
    plan, t = run_scenario(data)
    ev = t.events
    assert (ev["event"] == "failure").sum() >= 3  # the test needs some failures to mean much
    assert (ev["event"] == "interrupted").sum() >= 1
    check_failure_consistency(plan, t, repair_s=4 * H)
    check_lost_work(plan, t)
    s = t.summary["reliability"]
    assert s["failures"] == (ev["event"] == "failure").sum()
    assert s["repairs"] == (ev["event"] == "repair").sum()
    assert s["job_interruptions"] == job_row(t, "p")["interruptions"]
    # failed GPUs in the traces: the exact integral of the failure/repair intervals
    failed_s = 0.0
    for d in range(plan.n_domains):
        seq = ev[(ev["domain"] == d) & ev["event"].isin(["failure", "repair"])]["time_s"].tolist()
        seq = [*seq, plan.scenario.run.duration_s] if len(seq) % 2 else seq
        failed_s += sum(b - a for a, b in zip(seq[::2], seq[1::2], strict=True))
    tr = t.traces
    assert float((tr["gpus_failed"] * tr["interval_s"]).sum()) == pytest.approx(
        failed_s * 72, rel=1e-9
    )


def test_failures_with_a_lognormal_repair_time_are_consistent(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    data = tiny_scenario(
        racks=6,
        duration="4 d",
        seed=5,
        reliability={"failure_rate_per_1000_node_days": 60},
        pretraining=[pretrain("p", 256, tokens=3e12, checkpoint_interval="30 min")],
        posttraining=[{"name": "rl", "arrival_rate": "6 / d", "gpus": 72, "duration": "5 h"}],
    )
    plan, t = run_scenario(data)
    assert (t.events["event"] == "failure").sum() >= 3
    check_failure_consistency(plan, t, repair_s=None)
    check_lost_work(plan, t)


def test_failure_stream_does_not_depend_on_the_workload(
    tiny_scenario: Builder, run_scenario: Run
) -> None:
    """Failures and repairs have their own streams: adding work changes neither."""
    rel = {"failure_rate_per_1000_node_days": 100}
    a = tiny_scenario(duration="3 d", seed=9, reliability=rel, pretraining=[pretrain("p", 64)])
    b = tiny_scenario(
        duration="3 d",
        seed=9,
        reliability=rel,
        pretraining=[pretrain("p", 128, submit_at="1 h")],
        posttraining=[{"name": "rl", "arrival_rate": "10 / d", "gpus": 72, "duration": "3 h"}],
    )
    _, ta = run_scenario(a)
    _, tb = run_scenario(b)

    def fr(t: RunTables) -> list[tuple[str, float, int]]:
        ev = t.events[t.events["event"].isin(["failure", "repair"])]
        return list(zip(ev["event"], ev["time_s"], ev["domain"], strict=True))

    assert len(fr(ta)) > 0
    assert fr(ta) == fr(tb)


# --------------------------------------------------------------------------- job arithmetic


def make_job(work: float, rate: float = 2.0, interval: float = 10.0, write: float = 1.0) -> Job:
    return Job(
        "j",
        "pretraining",
        0,
        0,
        False,
        np.zeros(4, dtype=np.int64),
        1,
        domains=1,
        gpus=1,
        submit_at_s=0.0,
        work=work,
        rate=rate,
        ckpt_interval_s=interval,
        ckpt_write_s=write,
    )


def test_job_wall_time_includes_the_checkpoint_stalls() -> None:
    assert make_job(work=2.0 * 10 * 3.5).to_finish() == (approx(35.0 + 3 * 1.0), 3)
    assert make_job(work=2.0 * 10 * 3).to_finish() == (approx(30.0 + 2 * 1.0), 2)
    assert make_job(work=2.0 * 5).to_finish() == (approx(5.0), 0)


@pytest.mark.parametrize(
    ("elapsed", "n", "lost"),
    [
        (0.0, 0, 0.0),
        (4.0, 0, 8.0),
        (10.5, 0, 20.0),
        (11.0, 1, 0.0),
        (13.0, 1, 4.0),
        (22.0, 2, 0.0),
        (21.5, 1, 20.0),
    ],
)
def test_job_end_segment_keeps_the_checkpointed_work(elapsed: float, n: int, lost: float) -> None:
    job = make_job(work=1000.0)
    job.begin(5.0)
    got_n, cycle_start, got_lost = job.stop(5.0 + elapsed)
    assert (got_n, got_lost) == (n, approx(lost))
    assert job.done_work == approx(n * 2.0 * 10)
    assert job.checkpoints == n
    assert cycle_start == 5.0  # the k-th checkpoint completed at 5 + 11 k


# --------------------------------------------------------------------------- random streams


def test_streams_repeat_for_the_same_seed() -> None:
    a, b = RandomStreams(42), RandomStreams(42)
    np.testing.assert_array_equal(a["failures"].random(8), b["failures"].random(8))
    assert a["failures"] is a["failures"]


def test_adding_a_stream_does_not_change_another() -> None:
    a = RandomStreams(7)
    first = a["failures"].random(16)
    b = RandomStreams(7)
    b["arrivals.rl"].random(1000)  # a new stream, drawn from first
    b["demand.chat"].random(3)
    np.testing.assert_array_equal(b["failures"].random(16), first)


def test_streams_differ_by_name_and_by_seed() -> None:
    x = RandomStreams(1)["failures"].random(8)
    assert not np.array_equal(x, RandomStreams(1)["repairs"].random(8))
    assert not np.array_equal(x, RandomStreams(2)["failures"].random(8))


def test_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="seed must be >= 0"):
        RandomStreams(-1)


# --------------------------------------------------------------------------- demand model


@pytest.fixture(scope="module")
def service(plan_of: PlanOf, tiny_scenario: Builder) -> Any:
    data = tiny_scenario(
        inference=[
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "input_tokens": 100,
                "output_tokens": 400,
                "demand": {"mean_requests_per_s": 10},
            }
        ]
    )
    ps = plan_of(data).services[0]
    return dataclasses.replace(ps, control_interval_s=300.0, noise_cv=0.0, tokens_per_request=400.0)


def test_demand_mean_over_a_week(service: Any) -> None:
    n = int(7 * DAY / service.control_interval_s)
    d = demand_series(service, n, np.random.default_rng(0))
    assert d.mean() == pytest.approx(10 * 400, rel=0.01)


def test_demand_daily_cycle(service: Any) -> None:
    per_day = int(DAY / service.control_interval_s)
    d = demand_series(service, per_day, np.random.default_rng(0))  # a Monday
    r = service.peak_to_trough
    assert d.max() / d.min() == pytest.approx(r, rel=1e-9)
    hour = np.argmax(d) * service.control_interval_s / H
    assert hour == pytest.approx(service.peak_hour)
    assert np.argmin(d) * service.control_interval_s / H == pytest.approx(
        (service.peak_hour + 12) % 24
    )


def test_demand_weekend_level(service: Any) -> None:
    per_day = int(DAY / service.control_interval_s)
    d = demand_series(service, 7 * per_day, np.random.default_rng(0)).reshape(7, per_day)
    assert d[5].mean() / d[0].mean() == pytest.approx(service.weekend_factor, rel=1e-9)
    np.testing.assert_allclose(d[0], d[4], rtol=1e-12)  # every weekday alike


def test_demand_growth_compounds_yearly(service: Any) -> None:
    grown = dataclasses.replace(service, growth_per_year=1.0, control_interval_s=365 * DAY)
    d = demand_series(grown, 2, np.random.default_rng(0))
    assert d[1] / d[0] == pytest.approx(2.0 * _weekly(1, grown) / _weekly(0, grown), rel=1e-9)


def _weekly(k: int, svc: Any) -> float:
    """Weekday/weekend factor at tick k (the daily cycle is the same at midnight)."""
    day = int(k * svc.control_interval_s // DAY) % 7
    w = 7.0 / (5.0 + 2.0 * svc.weekend_factor)
    return svc.weekend_factor * w if day >= 5 else w


def test_demand_noise_has_mean_one(service: Any) -> None:
    noisy = dataclasses.replace(service, noise_cv=0.3)
    n = int(28 * DAY / service.control_interval_s)
    quiet = demand_series(service, n, np.random.default_rng(0))
    d = demand_series(noisy, n, np.random.default_rng(123))
    ratio = d / quiet
    assert ratio.mean() == pytest.approx(1.0, abs=0.02)
    assert ratio.std() == pytest.approx(0.3, rel=0.1)


def test_fixed_durations_draw_no_random_numbers() -> None:
    from sim.config.schema import FixedDuration

    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out = draw_durations(FixedDuration(distribution="fixed", value="5 s"), rng, 3)
    np.testing.assert_array_equal(out, [5.0, 5.0, 5.0])
    assert rng.bit_generator.state == state


@pytest.mark.parametrize(
    "dist",
    [
        {"distribution": "fixed", "value": "5 s"},
        {"distribution": "exponential", "mean": "3 h"},
        {"distribution": "lognormal", "mean": "2 d", "cv": 1.0},
    ],
)
def test_one_duration_is_the_first_of_a_block_of_one(dist: dict[str, Any]) -> None:
    """``draw_duration`` gives what ``draw_durations(..., 1)[0]`` gives and leaves the stream
    where it leaves it (the fabric's repairs draw one at a time, interleaved with others)."""
    from pydantic import TypeAdapter

    from sim.config.schema import DurationDist
    from sim.engine.reliability import draw_duration

    d = TypeAdapter(DurationDist).validate_python(dist)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    one = [draw_duration(d, a) for _ in range(1000)]
    assert one == [float(draw_durations(d, b, 1)[0]) for _ in range(1000)]
    assert a.bit_generator.state == b.bit_generator.state


def test_lognormal_durations_have_the_given_mean() -> None:
    from sim.config.schema import LognormalDuration

    dist = LognormalDuration(distribution="lognormal", mean="100 s", cv=0.5)
    out = draw_durations(dist, np.random.default_rng(1), 200_000)
    assert out.mean() == pytest.approx(100.0, rel=0.01)
    assert out.std() / out.mean() == pytest.approx(0.5, rel=0.02)
