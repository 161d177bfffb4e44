"""Tier (b): work accounting under random rate changes, failures, preemptions and repairs.

Hypothesis draws a sequence of actions (rate factors, failures with a repair time, direct
preemptions) applied by hand at given times to a tiny run of four pre-training jobs of two
classes (a high-class job arriving later preempts low, preemptible ones). At the end, every job's
work is reconstructed here, independently of the engine's progress accounting, from its event
rows and the rate factors applied: running segments begin at ``started`` (or ``restarted`` plus
the restart overhead) and end at ``interrupted``, ``preempted``, ``finished`` or the run's end;
the compute windows of a segment starting at ``s`` are ``[s + k(I + w), s + k(I + w) + I)``;
work is the integral of ``base_rate x prod(factors)`` over them. Then:

* work kept + work lost = work computed, and a finished job kept exactly its ``work``;
* each ``interrupted``/``preempted`` row's value is the work since the segment's last
  checkpoint, and they add up to ``work_lost``;
* the ``checkpointed`` rows are exactly the predicted cycle ends (each counted once, strictly
  increasing) and their number is the job's ``checkpoints``; with the rate never changed,
  ``checkpoints x rate x I`` bounds the kept work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, partial
from itertools import pairwise
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.build import Plan
from sim.config.loader import load_scenario
from sim.contract import RATE_FACTORS
from sim.engine.core import Engine
from sim.engine.fleet import FAILED
from sim.engine.kernel import later
from sim.engine.workloads import Job, Phase
from sim.runner import prepare

H = 3600.0
#: (name, gpus, class, submit, checkpoint interval, write, cycles of work at the base rate)
JOBS = [
    ("a", 288, "low", 0.0, 2 * H, 120.0, 6.3),
    ("b", 144, "low", 0.0, 1 * H, 60.0, 9.7),
    ("c", 144, "high", 8 * H, 1 * H, 30.0, 5.2),
    ("d", 72, "high", 0.0, 3 * H, 300.0, 4.6),
]


@cache
def the_plan() -> Plan:
    def data(tokens: dict[str, float]) -> dict[str, Any]:
        return {
            "name": "props",
            "run": {"duration": "2 d", "sample_interval": "1 h", "seed": 0},
            "facility": {
                "grid_power": 6 * 132e3 * 1.1 * 1.2 * 1.05 + 1.0,
                "pue": 1.2,
                "halls": [{"name": "hall1", "hardware": "gb200_nvl72", "racks": 6}],
            },
            "workloads": {
                "pretraining": [
                    {
                        "name": n,
                        "model": "llama3.1-8b",
                        "gpus": g,
                        "tokens": tokens.get(n, 1e12),
                        "class": c,
                        "submit_at": f"{s} s",
                        "checkpoint_interval": f"{i} s",
                        "checkpoint_write": f"{w} s",
                    }
                    for n, g, c, s, i, w, _ in JOBS
                ]
            },
            "scheduler": {"classes": [{"name": "high"}, {"name": "low", "preemptible": True}]},
            "reliability": {"enabled": False, "restart_overhead": "10 min"},
        }

    def plan(d: dict[str, Any]) -> Plan:
        return prepare(load_scenario(text=yaml.safe_dump(d), source="props.yaml"))[1]

    first = plan(data({}))
    tokens = {
        pj.name: cycles * pj.rate * pj.checkpoint_interval_s
        for pj, (*_, cycles) in zip(first.jobs, JOBS, strict=True)
    }
    return plan(data(tokens))


@dataclass(frozen=True)
class Action:
    t: int
    kind: str  # "rate", "fail" or "preempt"
    job: int
    domain: int
    factor: str
    value: float
    power_scale: float | None
    repair_s: int


actions = st.lists(
    st.builds(
        Action,
        t=st.integers(0, 40 * 3600),
        kind=st.sampled_from(["rate", "rate", "fail", "preempt"]),
        job=st.integers(0, len(JOBS) - 1),
        domain=st.integers(0, 5),
        factor=st.sampled_from(RATE_FACTORS),
        value=st.sampled_from([0.25, 0.5, 0.8, 1.0, 1.0, 1.6]),
        power_scale=st.sampled_from([None, 0.5, 1.0]),
        repair_s=st.integers(600, 10 * 3600),
    ),
    max_size=14,
)


def apply(e: Engine, a: Action, log: dict[str, list[tuple[float, str, float]]]) -> None:
    job = e.jobs[a.job]
    now = e.env.now
    if a.kind == "rate":
        if job.phase == Phase.DONE:  # a finished job's rate can no longer change
            with pytest.raises(ValueError, match="has finished"):
                e.training.set_rate_factor(job, a.factor, a.value, power_scale=a.power_scale)
            return
        e.training.set_rate_factor(job, a.factor, a.value, power_scale=a.power_scale)
        log[job.name].append((now, a.factor, a.value))
    elif a.kind == "fail":
        if e.fleet.state[a.domain] != FAILED:
            e.reliability.fail(a.domain, float(a.repair_s))
    elif job.held.size and job.phase in (Phase.RUNNING, Phase.RESTARTING):
        e.power.batch()
        e.training.preempt(job)
        e.scheduler.try_start()
        e.power.flush(now)


def apply_at(e: Engine, a: Action, log: dict[str, list[Any]], _ev: Any) -> None:
    apply(e, a, log)


def rate_pieces(job: Job, log: list[tuple[float, str, float]]) -> list[tuple[float, float]]:
    """(from time, rate) pieces of the job's rate, from the factors applied to it."""
    factors = dict.fromkeys(RATE_FACTORS, 1.0)
    pieces = [(-math.inf, job.base_rate)]
    for t, f, v in log:
        factors[f] = v
        rate = job.base_rate * math.prod(factors.values())
        if pieces[-1][0] == t:
            pieces[-1] = (t, rate)
        else:
            pieces.append((t, rate))
    return pieces


def work_in(pieces: list[tuple[float, float]], a: float, b: float) -> float:
    total = 0.0
    for i, (t, r) in enumerate(pieces):
        t1 = pieces[i + 1][0] if i + 1 < len(pieces) else math.inf
        lo, hi = max(t, a), min(t1, b)
        if hi > lo:
            total += r * (hi - lo)
    return total


def check_job(e: Engine, job: Job, row: dict[str, Any], log: list[Any]) -> None:
    interval, write = job.ckpt_interval_s, job.ckpt_write_s
    cycle = interval + write
    restart = e.plan.reliability.restart_overhead_s + job.restore_s  # then the restore
    pieces = rate_pieces(job, log)
    ev = e.rec.events_table()
    ev = ev[ev["subject"] == job.name]

    def compute_work(s: float, t: float) -> float:
        """Work computed in the segment begun at ``s`` from ``s`` to ``t``."""
        total, k = 0.0, 0
        while s + k * cycle < t:
            a = s + k * cycle
            total += work_in(pieces, a, min(a + interval, t))
            k += 1
        return total

    computed = lost_total = 0.0
    predicted: list[float] = []
    seg: float | None = None
    for when, kind, value in zip(ev["time_s"], ev["event"], ev["value"], strict=True):
        if kind == "started":
            seg = when
        elif kind == "restarted":
            seg = when + restart
        elif kind in ("interrupted", "preempted", "finished", "unfinished"):
            if seg is not None and when > seg:
                n = int((when - seg) // cycle)
                if kind == "finished" and seg + n * cycle == when:
                    n -= 1  # no checkpoint at the very end: the job is done
                predicted += [seg + k * cycle for k in range(1, n + 1)]
                computed += compute_work(seg, when)
                unsaved = compute_work(seg, when) - compute_work(seg, seg + n * cycle)
            else:
                unsaved = 0.0  # never began computing (paying the restart overhead)
            if kind in ("interrupted", "preempted"):
                assert value == pytest.approx(unsaved, rel=1e-9, abs=1e-3), (job.name, when)
                lost_total += value
            seg = None

    assert row["work_lost"] == pytest.approx(lost_total, rel=1e-9, abs=1e-3)
    done = row["work_done"]
    assert 0.0 <= done <= job.work * (1 + 1e-12)
    if row["state"] == "finished":
        assert done == job.work
        assert computed == pytest.approx(job.work + lost_total, rel=1e-9)
    else:
        assert done < job.work
        assert computed == pytest.approx(done + lost_total, rel=1e-9, abs=1e-3)

    ckpts = ev[ev["event"] == "checkpointed"]["time_s"].tolist()
    assert ckpts == [pytest.approx(t, rel=1e-12, abs=1e-6) for t in predicted], job.name
    assert len(ckpts) == row["checkpoints"] == job.checkpoints
    assert all(b > a for a, b in pairwise(ckpts))
    if all(v == 1.0 for _, _, v in log):  # the rate never changed
        saved = row["checkpoints"] * job.base_rate * interval
        assert saved <= done * (1 + 1e-12) + 1e-3
        if row["state"] != "finished":
            assert done <= saved + job.base_rate * interval * (1 + 1e-12)


@settings(derandomize=True, max_examples=30, deadline=None, database=None)
@given(actions)
def test_work_is_kept_lost_or_left_and_each_checkpoint_counted_once(
    script: list[Action],
) -> None:
    e = Engine(the_plan())
    e._setup()
    log: dict[str, list[tuple[float, str, float]]] = {n: [] for n, *_ in JOBS}
    for a in script:
        later(e.env, float(a.t), partial(apply_at, e, a, log))
    while e.env.peek() < e.end_s:
        e.env.step()
    e._close()
    rows = {r["name"]: r for r in e.job_rows()}
    for job in e.jobs:
        check_job(e, job, rows[job.name], log[job.name])
