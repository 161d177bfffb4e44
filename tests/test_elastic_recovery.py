"""Recovery ``shrink_elastic`` (a run continues on the whole data-parallel replicas it still
holds), the ETTR trace against the jobs table, and the reliability summary's polish (planned
maintenance apart from failures, idle hot spares); docs/reliability.md.

The shrink scenarios are small enough to compute by hand: Llama 3.1 8B on 4 GB200 racks (288
GPUs), layout TP4 x PP2 (8 GPUs a replica, DP 36), global batch 288 (8 micro-batches per
replica), checkpoints every 30 min with free writes and restores, restart 10 min, no
detection, one failure at 1 h (on a checkpoint: nothing is lost) and no free rack.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from engine_helpers import at, finish, run_stepped, started
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_invariants import check_accounting, check_events, check_traces, factories

from sim.analysis import _apart
from sim.build import Plan
from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.config.loader import ScenarioError
from sim.engine.core import Engine
from sim.engine.workloads import FACTOR_INDEX, Job, Phase
from sim.perf import estimate_training
from sim.report.html import render_report

Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]

H = 3600.0
EPS = 1e-6
RESTART = 600.0
WORK = 2e11  # tokens: about 7.7 h at the full rate


def _rel(policy: str, **kw: Any) -> dict[str, Any]:
    cause = {"name": "x", "rate_per_1000_node_days": 0.0, "scope": "gpu", "detection": "0 s"}
    return {"causes": [cause], "maintenance": None, "recovery": policy, **kw}


def _job(**kw: Any) -> dict[str, Any]:
    return {
        "name": "j",
        "model": "llama3.1-8b",
        "gpus": 288,
        "tokens": WORK,
        "global_batch": 288,
        "layout": {"tp": 4, "pp": 2},
        "checkpoint_interval": "30 min",
        "checkpoint_write": "0 s",
        "checkpoint_restore": "0 s",
        **kw,
    }


def _scenario(tiny: Builder, policy: str, **rel: Any) -> dict[str, Any]:
    data = tiny(racks=4, duration="2 d", reliability=_rel(policy, **rel), restart_overhead="10 min")
    data["workloads"]["pretraining"] = [_job()]
    return data


def _fail_at(e: Engine, t: float, repair_s: float, k: int = 0) -> None:
    """Fail the ``k``-th domain job j holds at ``t`` for ``repair_s``."""

    def hit() -> None:
        (j,) = e.jobs
        e.reliability.fail(int(j.held.all()[k]), repair_s, "x")

    at(e, t, hit)


def _run(
    plan: Plan, repairs: list[tuple[float, float]], look: dict[float, str] | None = None
) -> tuple[Job, dict[str, Any]]:
    """Run ``plan`` with failures ``(time, repair)``; ``look`` samples the job at times."""
    e = started(plan)
    seen: dict[str, Any] = {}
    for t, r in repairs:
        _fail_at(e, t, r)
    for t, key in (look or {}).items():

        def sample(key: str = key) -> None:
            (j,) = e.jobs
            seen[key] = (j.phase, j.held.size, j.awaiting_domains, j.rate / j.base_rate)
            seen[key + "_gpus"] = e.training.running["pretraining"]

        at(e, t, sample)
    finish(e)
    (j,) = e.jobs
    return j, seen


def test_a_shrunk_replica_count_and_rate_come_from_the_performance_model(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """3 racks hold 216 GPUs: 27 whole replicas of 8 (3 racks). The global batch is kept: 288
    sequences over 27 replicas is ceil(10.67) = 11 micro-batches for the slowest, so the rate
    factor is the full step over the performance model's step at DP 27 with 297 sequences;
    close to 8 / 11 (the bubble and the gradient sync do not grow), below 27 / 36."""
    plan = plan_of(_scenario(tiny_scenario, "shrink_elastic"))
    sh = plan.jobs[0].elastic
    assert sh is not None and (sh.dp, sh.replica_gpus) == (36, 8)
    kept, domains, factor = sh(3)
    model, spec = get_model("llama3.1-8b"), catalog()["gb200_nvl72"]
    assert (sh.precision, sh.seq_len) == ("fp8", 8192)  # the job's defaults
    full = estimate_training(
        model, spec, 288, "fp8", seq_len=8192, global_batch=288, layout=sh.layout
    )
    small = estimate_training(
        model,
        spec,
        216,
        "fp8",
        seq_len=8192,
        global_batch=297,
        layout=replace(sh.layout, dp=27, recompute="auto"),
    )
    assert (kept, domains) == (27, 3)
    assert factor == pytest.approx(full.step_time_s / small.step_time_s, rel=1e-12)
    assert 8 / 11 <= factor < 27 / 36
    # per_replica: each replica keeps its 8 micro-batches, a step trains 216 of 288 sequences
    data = _scenario(tiny_scenario, "shrink_elastic", elastic_batch="per_replica")
    per = plan_of(data).jobs[0].elastic
    assert per is not None and not per.keep_global_batch
    same = estimate_training(
        model,
        spec,
        216,
        "fp8",
        seq_len=8192,
        global_batch=216,
        layout=replace(sh.layout, dp=27, recompute="auto"),
    )
    expected = 216 / 288 * full.step_time_s / same.step_time_s
    assert per(3) == (27, 3, pytest.approx(expected, rel=1e-12))
    assert per(3)[2] > factor
    assert sh(4) == (36, 4, 1.0)
    assert sh(0) == (0, 0, 0.0)
    # another recovery policy plans no shrink at all
    assert plan_of(_scenario(tiny_scenario, "wait_for_repair")).jobs[0].elastic is None


def test_a_long_repair_shrink_finishes_earlier_and_keeps_all_its_work(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A 6 h repair. wait_for_repair computes nothing from 1 h to the repair (7 h) and the
    restart after it; shrink_elastic restarts at once on 27 replicas (1 h 10 min), runs at
    factor f until the repair, claims the rack, writes a checkpoint (free here) and restarts
    at full size (7 h 10 min): both resume full at 7 h 10 min, and the shrunk job is ahead by
    the 21,000 s it ran at f, so it finishes 21,000 f s earlier. No work is lost."""
    out = {}
    for policy in ("wait_for_repair", "shrink_elastic"):
        plan = plan_of(_scenario(tiny_scenario, policy))
        out[policy] = _run(plan, [(H, 6 * H)], {2 * H: "shrunk", 7 * H + 1: "growing"})
    f = plan.jobs[0].elastic(3)[2]  # type: ignore[misc]
    (wait, _), (shrink, seen) = out["wait_for_repair"], out["shrink_elastic"]
    shrunk_for = 7 * H - (H + RESTART)
    assert wait.finish_s - shrink.finish_s == pytest.approx(shrunk_for * f, rel=1e-9)
    for j in (wait, shrink):
        assert j.phase == Phase.DONE and j.done_work == WORK and j.lost_work == 0.0
    # while shrunk it runs on 3 racks (216 GPUs) at f and waits for the fourth
    assert seen["shrunk"] == (Phase.RUNNING, 3, 1, pytest.approx(f))
    assert seen["shrunk_gpus"] == 216
    assert seen["growing"] == (Phase.RESTARTING, 4, 0, 1.0)
    assert (shrink.shrinks, shrink.shrunk_s) == (1, 6 * H)
    assert shrink.slowdown_s[FACTOR_INDEX["elastic"]] == pytest.approx(shrunk_for * (1 - f))
    assert (shrink.restart_lost_s, shrink.domain_wait_s) == (2 * RESTART, 0.0)
    assert (wait.restart_lost_s, wait.domain_wait_s) == (RESTART, 6 * H)


@pytest.mark.parametrize(("repair_s", "ahead_s"), [(20 * 60.0, 600.0), (5 * 60.0, 0.0)])
def test_a_short_repair_shows_the_restart_costs(
    tiny_scenario: Builder, plan_of: PlanOf, repair_s: float, ahead_s: float
) -> None:
    """A short repair leaves little to gain: with 20 min the shrunk job runs 10 min at f
    between its two restarts (ahead by 600 f s); with 5 min the rack is back during the
    shrink's restart, which begins again at full size, so both resume together (at 1 h
    15 min) and the shrunk job has paid 5 min more of restarts for nothing."""
    out = {}
    for policy in ("wait_for_repair", "shrink_elastic"):
        plan = plan_of(_scenario(tiny_scenario, policy))
        out[policy] = _run(plan, [(H, repair_s)])[0]
    f = plan.jobs[0].elastic(3)[2]  # type: ignore[misc]
    wait, shrink = out["wait_for_repair"], out["shrink_elastic"]
    assert wait.finish_s - shrink.finish_s == pytest.approx(ahead_s * f, abs=1e-6)
    assert wait.restart_lost_s == RESTART
    assert shrink.restart_lost_s == pytest.approx(RESTART + min(repair_s, RESTART))
    assert shrink.done_work == WORK and shrink.lost_work == 0.0


def test_below_the_minimum_share_it_waits_for_repair(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """27 of 36 replicas is 0.75 of the run: with elastic_min_share 0.8 it waits whole, as
    under wait_for_repair, and finishes at the same time."""
    plan = plan_of(_scenario(tiny_scenario, "shrink_elastic", elastic_min_share=0.8))
    j, seen = _run(plan, [(H, 6 * H)], {2 * H: "after"})
    w, _ = _run(plan_of(_scenario(tiny_scenario, "wait_for_repair")), [(H, 6 * H)])
    assert seen["after"] == (Phase.AWAITING, 3, 1, 1.0)
    assert (j.shrinks, j.shrunk_s, j.domain_wait_s) == (0, 0.0, 6 * H)
    assert j.finish_s == w.finish_s


def test_a_second_failure_shrinks_it_further_and_it_grows_back_once_whole(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """Failures at 1 h (repair 6 h) and 2 h (repair 2 h): it shrinks to 27 replicas, then to
    18 (0.5 of 36, the minimum), claims the rack repaired at 4 h and keeps running on 18 (a
    grow waits for everything it lost), and grows back at 7 h."""
    plan = plan_of(_scenario(tiny_scenario, "shrink_elastic"))
    e = started(plan)
    _fail_at(e, H, 6 * H)
    _fail_at(e, 2 * H, 2 * H)
    seen: dict[str, Any] = {}

    def look(key: str) -> None:
        (j,) = e.jobs
        seen[key] = (j.phase, j.held.size, j.awaiting_domains, j.rate / j.base_rate)

    at(e, 3 * H, lambda: look("18"))
    at(e, 5 * H, lambda: look("claimed"))
    at(e, 8 * H, lambda: look("full"))
    finish(e)
    (j,) = e.jobs
    f18 = plan.jobs[0].elastic(2)[2]  # type: ignore[misc]
    assert seen["18"] == (Phase.RUNNING, 2, 2, pytest.approx(f18))
    assert seen["claimed"] == (Phase.RUNNING, 3, 1, pytest.approx(f18))
    assert seen["full"] == (Phase.RUNNING, 4, 0, 1.0)
    # one episode (full -> shrunk -> full), shrunk again once within it
    assert (j.shrinks, j.reshrinks, j.shrunk_s) == (1, 1, 6 * H)
    assert j.phase == Phase.DONE and j.done_work == WORK


def test_a_restart_only_fault_while_shrunk_restarts_on_the_shrunk_replicas(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A software fault at 2 h, while the run is shrunk to 27 replicas (216 GPUs): it restarts
    in place on those 216 GPUs, not on the 288 of its full size; one shrink episode."""
    plan = plan_of(_scenario(tiny_scenario, "shrink_elastic"))

    def before(e: Engine) -> None:
        _fail_at(e, H, 6 * H)

        def soft() -> None:
            (j,) = e.jobs
            e.training.interrupt(j, int(j.held.all()[0]), lost_domains=0, cause="software")

        at(e, 2 * H, soft)

    t = run_stepped(monkeypatch, plan, before=before, per_instant=True)
    restarts = t.events[(t.events["event"] == "restarted") & (t.events["subject"] == "j")]
    assert restarts["detail"].tolist() == ["shrunk", "in_place", "grown"]
    assert restarts["value"].tolist() == [216, 216, 288]
    (row,) = t.jobs[t.jobs["name"] == "j"].to_dict("records")
    assert (row["shrinks"], row["reshrinks"], row["interruptions"]) == (1, 0, 2)


def test_jobs_table_summary_and_ettr_trace_of_a_shrunk_run(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs table and the summary carry the shrinks and the time shrunk; the ETTR trace
    ends at the table's ETTR."""
    plan = plan_of(_scenario(tiny_scenario, "shrink_elastic"))
    t = run_stepped(monkeypatch, plan, before=lambda e: _fail_at(e, H, 6 * H), per_instant=True)
    (row,) = t.jobs[t.jobs["name"] == "j"].to_dict("records")
    since = row["finish_s"] - row["first_start_s"]
    assert (row["shrinks"], row["shrunk_s"]) == (1, 6 * H)
    assert row["shrunk_share"] == pytest.approx(6 * H / since)
    (run,) = t.summary["pretraining_runs"]
    assert (run["shrinks"], run["shrunk_hours"]) == (1, 6.0)
    assert run["shrunk_share"] == pytest.approx(row["shrunk_share"])
    assert t.summary["reliability"]["recovery"] == "shrink_elastic"
    assert t.traces["pretraining_ettr"].iloc[-1] == pytest.approx(row["ettr"], rel=1e-12)
    restarts = t.events[(t.events["event"] == "restarted") & (t.events["subject"] == "j")]
    assert restarts["detail"].tolist() == ["shrunk", "grown"]
    assert restarts["value"].tolist() == [216, 288]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_ettr_trace_ends_at_the_jobs_table_ettr(
    tiny_scenario: Builder, run_scenario: Callable[..., Any], mode: str
) -> None:
    """A run with dozens of failures (each cuts a checkpoint cycle short, where the traced
    throughput spreads the stall over the cycle): the trace's last value is the table's ETTR,
    to float precision; async checkpoints that fall back included."""
    cause = {"name": "x", "rate_per_1000_node_days": 300.0, "scope": "gpu", "detection": "30 s"}
    rel = {"causes": [cause], "maintenance": None, "repair_time": "1 h"}
    data = tiny_scenario(racks=6, duration="4 d", reliability=rel)
    job = {"name": "j", "model": "llama3.1-8b", "gpus": 288, "tokens": 1e14}
    job |= {"checkpoint_interval": "30 min", "checkpoint_write": "2 min", "checkpoint_mode": mode}
    data["workloads"]["pretraining"] = [job]
    _plan, t = run_scenario(data)
    (row,) = t.jobs.to_dict("records")
    assert row["interruptions"] >= 20
    assert t.traces["pretraining_ettr"].iloc[-1] == pytest.approx(row["ettr"], rel=1e-12)
    ettr = t.traces["pretraining_ettr"].to_numpy()
    assert all(0.0 <= x <= 1.0 for x in ettr if not math.isnan(x))


def test_planned_maintenance_is_reported_apart_from_failures(
    tiny_scenario: Builder, run_scenario: Callable[..., Any]
) -> None:
    cause = {"name": "x", "rate_per_1000_node_days": 100.0, "scope": "node"}
    rel = {"causes": [cause], "maintenance": {"rate_per_1000_node_days": 100.0}}
    data = tiny_scenario(racks=6, duration="4 d", reliability=rel)
    data["workloads"]["pretraining"] = [_job(tokens=1e14)]
    _plan, t = run_scenario(data)
    s = t.summary["reliability"]
    ev = t.events
    drains = ((ev["event"] == "failure") & (ev["detail"] == "maintenance")).sum()
    assert drains > 0 and s["maintenance_drains"] == drains
    assert "maintenance" not in s["failures_by_cause"]
    assert "maintenance" not in s["domain_hours_failed_by_cause"]
    assert s["maintenance_domain_hours"] > 0
    assert sum(s["failures_by_cause"].values()) == s["failures"]
    # the job's counts: unplanned interruptions by cause sum to its interruptions; the drains
    # that stopped it are its planned interruptions, in no cause (jobs table, summary, report)
    (row,) = t.jobs[t.jobs["name"] == "j"].to_dict("records")
    by = json.loads(row["interruptions_by_cause"])
    assert row["planned_interruptions"] > 0 and "maintenance" not in by
    assert sum(by.values()) == row["interruptions"] > 0
    (run,) = t.summary["pretraining_runs"]
    assert run["interruptions_by_cause"] == by
    inter = ev[ev["event"] == "interrupted"]
    planned = int((inter["detail"] == "maintenance").sum())
    assert s["planned_job_interruptions"] == planned == row["planned_interruptions"]
    assert s["job_interruptions"] == len(inter) - planned == row["interruptions"]
    section = render_report(t).split('id="reliability"')[1].split("</section>")[0]
    assert "maintenance" not in section.split("<tbody>")[1]  # never among a run's main causes
    assert "maintenance drains (not failures)" in section


def test_hot_spares_that_would_sit_idle(
    tiny_scenario: Builder, run_scenario: Callable[..., Any], plan_of: PlanOf
) -> None:
    """Inference only: no job can ever take a spare (refused). No failure in the run (a rate
    of 0, a sweep's baseline): allowed, and the summary says they sat idle."""
    svc = {"name": "chat", "model": "llama3.1-8b", "demand": {"mean_requests_per_s": 1.0}}
    svc |= {"input_tokens": 1000, "output_tokens": 200}
    rel = _rel("take_spare", hot_spares=1)
    data = tiny_scenario(racks=4, reliability=rel, inference=[svc])
    with pytest.raises(ScenarioError, match=r"reliability\.hot_spares.*inference only.*sit idle"):
        plan_of(data)
    data = tiny_scenario(racks=4, duration="1 d", reliability=rel)
    data["workloads"]["pretraining"] = [_job(gpus=72, global_batch=72)]
    _plan, t = run_scenario(data)
    assert any("1 hot spares were held apart" in w for w in t.summary["warnings"])


@settings(
    max_examples=int(os.environ.get("AIFACTORY_HYPOTHESIS_EXAMPLES", "10")),
    deadline=None,
    database=None,
    derandomize=not os.environ.get("AIFACTORY_HYPOTHESIS_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_invariants_hold_under_shrink_elastic(
    data: st.DataObject, tiny_scenario: Builder, run_scenario: Callable[..., Any]
) -> None:
    """The random small factories of ``test_invariants`` (GPUs, energy and work conserved,
    every job accounted for) under ``shrink_elastic`` and a high failure rate, so that runs
    shrink, fail again while shrunk, get preempted or finish shrunk; and the ETTR trace ends
    at the jobs table's (weighted over the runs)."""
    scenario = data.draw(factories(tiny_scenario), label="scenario")
    rel = scenario["reliability"]
    if not rel.get("enabled", True):
        rel = {"restart_overhead": rel["restart_overhead"], "repair_time": "8 h"}
    rel["failure_rate_per_1000_node_days"] = 400.0
    rel["recovery"] = "shrink_elastic"
    rel["elastic_min_share"] = data.draw(st.sampled_from([0.0, 0.5]), label="min_share")
    scenario["reliability"] = rel
    # a run on every rack it may have, from the start: it is the one that shrinks
    racks = scenario["facility"]["halls"][0]["racks"] - scenario["scheduler"]["spare_domains"]
    big = {"name": "big", "model": "llama3.1-8b", "gpus": 72 * racks, "tokens": 5e12}
    scenario["workloads"]["pretraining"].append(big)
    plan, t = run_scenario(scenario)
    check_traces(plan, t)
    check_events(plan, t)
    check_accounting(plan, t)
    pre = t.jobs[(t.jobs["workload"] == "pretraining") & t.jobs["first_start_s"].notna()]
    if len(pre):
        end = plan.scenario.run.duration_s
        stop = np.where(pre["state"] == "finished", pre["finish_s"], end)
        since = stop - pre["first_start_s"].to_numpy()
        assert (pre["shrunk_s"].to_numpy() <= since + EPS).all()
        kept = float(pre["work_done"].sum())
        wall = float((pre["rate_per_s"] * since).sum())
        if wall > 0:
            assert t.traces["pretraining_ettr"].iloc[-1] == pytest.approx(kept / wall, rel=1e-9)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"elastic_batch": "per_replica"}, "elastic_batch applies under recovery: shrink_elastic"),
        ({"elastic_min_share": 0.2}, "elastic_min_share applies under recovery: shrink_elastic"),
        ({"recovery": "shrink_elastic", "elastic_batch": "local"}, "reliability.elastic_batch"),
        ({"enabled": False, "hot_spares": 1, "recovery": "take_spare"}, "reliability is disabled"),
        ({"enabled": False, "recovery": "shrink_elastic"}, r"reliability\.recovery: .*disabled"),
        (
            {"enabled": False, "recovery": "shrink_elastic", "elastic_batch": "per_replica"},
            r"reliability\.recovery: shrink_elastic .*disabled",
        ),
        (
            {"recovery": "shrink_elastic", "elastic_min_share": 1.0},
            r"reliability\.elastic_min_share: must be below 1",
        ),
    ],
)
def test_elastic_keys_that_would_change_nothing_are_refused(
    tiny_scenario: Builder, plan_of: PlanOf, patch: dict[str, Any], message: str
) -> None:
    data = tiny_scenario(reliability=_rel("wait_for_repair") | patch)
    with pytest.raises(ScenarioError, match=message):
        plan_of(data)


def test_shrink_elastic_without_a_pretraining_run_is_refused(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """Post-training jobs have no layout to shrink: the key would change nothing."""
    data = _scenario(tiny_scenario, "shrink_elastic", elastic_batch="per_replica")
    data["workloads"]["pretraining"] = []
    with pytest.raises(ScenarioError, match=r"reliability\.recovery: shrink_elastic.*has none"):
        plan_of(data)


def test_too_many_hot_spares_is_one_error_not_its_consequences(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    data = _scenario(tiny_scenario, "take_spare", hot_spares=50)
    with pytest.raises(ScenarioError) as exc:
        plan_of(data)
    text = str(exc.value)
    assert "leave no domain to run on" in text and "spare_domains" not in text


def test_the_waiting_warning_tells_share_and_limit_apart_and_advises_by_policy(
    tiny_scenario: Builder, plan_of: PlanOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shares that round alike get the decimals to differ (5.3% against 5%, not 5% against
    5%); a run under requeue that waited 6 h of about 13 is told of wait_for_repair and
    shrink_elastic."""
    assert _apart(0.053, 0.05) == ("5.3%", "5%")
    assert _apart(0.0504, 0.05) == ("5.04%", "5%")
    assert _apart(0.12, 0.05) == ("12%", "5%")
    assert _apart(0.06, 0.055) == ("6.0%", "5.5%")
    plan = plan_of(_scenario(tiny_scenario, "requeue"))
    t = run_stepped(monkeypatch, plan, before=lambda e: _fail_at(e, H, 6 * H), per_instant=True)
    (w,) = [w for w in t.summary["warnings"] if "waiting for domains" in w]
    assert "(more than 5%)" in w
    assert "wait_for_repair" in w and "shrink_elastic" in w
