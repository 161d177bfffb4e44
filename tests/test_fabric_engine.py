"""The fabric inside a run: placement by policy, spans, and contention that slows jobs.

Small fabrics with answers computed by hand: 16 GB200 NVL72 racks in units of 2 racks and pods
of 2 units (4 pods), the pod uplinks oversubscribed 1:16 (a pod's uplink carries a quarter of a
rack's NIC traffic). A job of 4 racks fits one pod: packed, it crosses nothing; spread, it has
one rack in every pod, gets a quarter of its NIC across the pod uplinks and is slowed (Llama 3.1
70B at a global batch of 256 sequences exposes its data-parallel sync). Two jobs that
cross the same uplinks share them max-min fairly, and a job's share comes back when the other
ends, without losing work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sim.build import Plan
from sim.engine.core import Engine
from sim.engine.fabric import max_min_fair
from sim.engine.kernel import later
from sim.engine.workloads import Phase

Builder = Callable[..., dict[str, Any]]
PlanOf = Callable[..., Plan]


def fabric_scenario(
    tiny_scenario: Builder,
    plan_of: PlanOf,
    placement: str,
    jobs: list[dict[str, Any]],
    pod_ratio: float = 16.0,
) -> Plan:
    data = tiny_scenario(racks=16, duration="3 d", pretraining=jobs)
    data["network"] = {
        "kind": "fat_tree",
        "placement": placement,
        "unit_domains": 2,
        "pod_units": 2,
        "oversubscription": {"unit": 1, "pod": pod_ratio},
    }
    return plan_of(data)


def job(name: str, racks: int, submit: str = "0 s", tokens: float = 2e10) -> dict[str, Any]:
    return {
        "name": name,
        "model": "llama3.1-70b",
        "gpus": 72 * racks,
        "global_batch": 256,
        "tokens": tokens,
        "submit_at": submit,
        "checkpoint_interval": "1 h",
        "checkpoint_write": "1 min",
    }


def run(plan: Plan) -> Engine:
    e = Engine(plan)
    e.run()
    return e


def test_max_min_fair_by_hand() -> None:
    assert max_min_fair(10.0, [2.0, 3.0]) == [2.0, 3.0]  # room for all
    assert max_min_fair(10.0, [2.0, 8.0, 8.0]) == [2.0, 4.0, 4.0]  # the small flow is served
    assert max_min_fair(9.0, [6.0, 6.0, 6.0]) == [3.0, 3.0, 3.0]


@pytest.mark.parametrize(("placement", "units", "pods"), [("pack", 2, 1), ("spread", 4, 4)])
def test_placement_spans(
    tiny_scenario: Builder, plan_of: PlanOf, placement: str, units: int, pods: int
) -> None:
    plan = fabric_scenario(tiny_scenario, plan_of, placement, [job("a", 4)])
    e = run(plan)
    (a,) = e.jobs
    assert a.spans[:2] == [units, pods]
    if placement == "pack":
        assert a.slowdown_s[1] == 0.0  # inside one pod: nothing crossed
    else:
        assert a.slowdown_s[1] > 0.0  # its traffic crossed the 1:4 pod uplinks
    assert a.phase == Phase.DONE and a.lost_work == 0.0


def test_spread_is_slower_than_pack_and_a_wider_uplink_helps(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    finish = {}
    for placement, ratio in (("pack", 16.0), ("spread", 16.0), ("spread", 1.0)):
        plan = fabric_scenario(tiny_scenario, plan_of, placement, [job("a", 4)], ratio)
        (a,) = run(plan).jobs
        finish[placement, ratio] = a.finish_s
    assert finish["spread", 16.0] > finish["spread", 1.0] == finish["pack", 16.0]


def test_jobs_crossing_the_same_uplinks_share_them_and_get_their_share_back(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """Two spread jobs cross every pod uplink: while both run, each gets half of what it got
    alone (its demand exceeds the uplink either way), so its network factor falls; when the
    short one ends, the long one's factor comes back to its value alone. No work is lost."""
    jobs = [job("long", 4, tokens=4e10), job("short", 4, submit="2 h", tokens=5e9)]
    plan = fabric_scenario(tiny_scenario, plan_of, "spread", jobs)
    e = Engine(plan)
    e._setup()
    long_, short = e.jobs
    e.env.run(until=3600.0)
    alone = long_.factors[1]
    assert alone < 1.0
    e.env.run(until=2 * 3600.0 + 60.0)
    assert short.phase == Phase.RUNNING
    both = long_.factors[1]
    assert both < alone
    assert e.fabric is not None and long_ in e.fabric.crossing and short in e.fabric.crossing
    e.env.run(until=e.end_s)
    e._close()
    assert short.phase == Phase.DONE and long_.phase == Phase.DONE
    assert long_.lost_work == 0.0 and short.lost_work == 0.0
    assert long_.slowdown_s[1] > 0.0


def test_a_non_blocking_fabric_changes_nothing_but_reports_spans(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    data = tiny_scenario(racks=16, duration="2 d", pretraining=[job("a", 4)])
    plain = Engine(plan_of(data))
    plain.run()
    data["network"] = {"kind": "non_blocking"}
    nb = Engine(plan_of(data))
    nb.run()
    (a,), (b,) = plain.jobs, nb.jobs
    assert a.finish_s == b.finish_s and b.slowdown_s[1] == 0.0
    rows = nb.job_rows()
    assert rows[0]["span_sites"] == 1  # a non-blocking fabric has only its sites as tiers
    assert np.isnan(rows[0]["span_units"]) and np.isnan(rows[0]["span_pods"])


def test_a_placement_on_a_non_blocking_fabric_is_refused(
    tiny_scenario: Builder, write_scenario: Callable[..., Any]
) -> None:
    """It would change nothing (no tiers to place on), so it is an error, not a silent no-op;
    the default written into a run folder's scenario copy still loads."""
    from sim.config.loader import ScenarioError
    from sim.runner import prepare

    data = tiny_scenario()
    data["network"] = {"kind": "non_blocking", "placement": "spread"}
    with pytest.raises(ScenarioError, match="would change nothing"):
        prepare(write_scenario(data))
    data["network"] = {"kind": "non_blocking", "placement": "pack"}
    prepare(write_scenario(data))


def failing_fabric(
    tiny_scenario: Builder, plan_of: PlanOf, kind: str = "rail_optimized", **failures: Any
) -> Plan:
    """A spread job across the pods of a non-blocking fabric, with switch and link failures
    on (domain failures off, so only the network acts)."""
    data = tiny_scenario(
        racks=16,
        duration="2 d",
        pretraining=[job("a", 4, tokens=2e10)],
        reliability={"failure_rate_per_1000_node_days": 0},
    )
    data["network"] = {
        "kind": kind,
        "placement": "spread",
        "unit_domains": 2,
        "pod_units": 2,
        "oversubscription": {"unit": 1, "pod": 1},
        "failures": {"switch_annual_failure_rate": 0.0, "link_failures_per_1000_gpu_years": 0.0}
        | failures,
    }
    return plan_of(data)


def test_a_spine_failure_slows_the_jobs_crossing_its_pod_until_its_repair(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """On a non-blocking pod tier nothing binds; a spine down takes 1/spines of the pod's
    capacity (the downlink), the spread job crossing it slows, and the repair restores it."""
    plan = failing_fabric(tiny_scenario, plan_of)
    e = Engine(plan)
    e._setup()
    (a,) = e.jobs
    e.env.run(until=3600.0)
    fab = e.fabric
    assert fab is not None and a in fab.running
    before = a.factors[1]  # only the switch hops' latency: nothing binds
    assert before == pytest.approx(1.0, abs=1e-4)
    pod = int(fab.parent[0][a.net_units[0]])
    # every spine of that pod but one goes down: the pod keeps 1/spines of its capacity
    ff = e.fabric_failures
    assert ff is not None and ff.spines_per_pod >= 2
    fab.degrade("spine", pod, -(ff.spines_per_pod - 1) / ff.spines_per_pod)
    assert fab._capacity(fab.pod_tier, pod) == pytest.approx(
        float(fab.downlink[fab.pod_tier][pod]) / ff.spines_per_pod
    )
    assert a.factors[1] < before - 1e-3
    fab.degrade("spine", pod, (ff.spines_per_pod - 1) / ff.spines_per_pod)
    assert a.factors[1] == before and fab._capacity(fab.pod_tier, pod) == float("inf")
    e.env.run(until=e.end_s)
    e._close()
    assert a.phase == Phase.DONE and a.lost_work == 0.0 and a.slowdown_s[1] > 0.0


def test_a_leaf_failure_interrupts_the_jobs_under_it_and_its_repair_restores_the_unit(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan = failing_fabric(tiny_scenario, plan_of, repair_time="1 h")
    e = Engine(plan)
    e._setup()
    (a,) = e.jobs
    ff, fab = e.fabric_failures, e.fabric
    assert ff is not None and fab is not None
    e.env.run(until=3600.0)
    unit = a.net_units[0]
    d = ff.unit_first[unit]
    # the stream's next failure is a leaf under the job: drawn by hand at a known domain
    ff._pick = lambda: d  # type: ignore[method-assign]
    later(e.env, 1.0, ff._fail, "leaf")
    e.env.run(until=3602.0)
    assert a.interruptions == 1 and a.phase == Phase.RESTARTING
    assert fab.unit_health[unit] == pytest.approx(1.0 - 1.0 / ff.leaves_per_unit)
    assert ff.counts["leaf"] == 1
    assert a.factors[2] < 1.0  # its GPUs lost a rail: the degraded factor, not the network one
    e.env.run(until=e.end_s)
    e._close()
    assert fab.unit_health[unit] == 1.0  # repaired an hour later
    assert a.factors[2] == 1.0 and a.slowdown_s[2] > 0.0
    ev = e.rec.events_table()
    assert (ev["event"] == "network_failure").sum() == 1
    assert ((ev["event"] == "interrupted") & (ev["detail"] == "network")).sum() == 1
    assert a.phase == Phase.DONE


def test_failure_rates_follow_the_switch_count_and_the_gpus(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    plan = failing_fabric(
        tiny_scenario,
        plan_of,
        switch_annual_failure_rate=0.078,
        link_failures_per_1000_gpu_years=12,
    )
    e = Engine(plan)
    ff = e.fabric_failures
    assert ff is not None and plan.fabric is not None
    year = 365.25 * 86_400.0
    leaves = sum(plan.fabric.switches["unit"].values())
    spines = sum(plan.fabric.switches["pod"].values())
    assert ff.rates["leaf"] == pytest.approx(0.078 * leaves / year)
    assert ff.rates["spine"] == pytest.approx(0.078 * spines / year)
    assert ff.rates["link"] == pytest.approx(12 / 1000 * 16 * 72 / year)


def test_no_network_failures_without_reliability(tiny_scenario: Builder, plan_of: PlanOf) -> None:
    data = tiny_scenario(racks=16, pretraining=[job("a", 4)])  # reliability off
    data["network"] = {"kind": "rail_optimized"}
    e = Engine(plan_of(data))
    assert e.fabric_failures is None


def test_llama3_405b_on_its_real_network_packed_and_spread(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """validation.md A.1: Llama 3 405B on 16,384 H100 (TP 8, PP 16, DP 128, global batch
    2,048 x 8,192 tokens) on Meta's fabric: 16 GPUs per rack under one switch, pods of 192
    racks (3,072 GPUs) at full bisection, 1:7 between pods. Packed, the job keeps its published
    400 TFLOP/s per GPU within the A.1 tolerance (10%); spread by a topology-blind scheduler
    (consecutive ranks in different pods), its data-parallel and pipeline traffic crosses the
    1:7 tier and it slows by about a tenth."""
    data = tiny_scenario(
        racks=3072,
        hardware="h100_sxm",
        duration="1 d",
        pretraining=[
            {
                "name": "llama3-405b",
                "model": "llama3.1-405b",
                "gpus": 16384,
                "global_batch": 2048,
                "seq_len": 8192,
                "precision": "bf16",
                "tokens": 1e13,
                "checkpoint_interval": "1 h",
                "layout": {"tp": 8, "pp": 16, "zero_stage": 2},
            }
        ],
    )
    tflops = {}
    for placement in ("pack", "spread"):
        data["network"] = {
            "kind": "fat_tree",
            "placement": placement,
            "unit_domains": 2,
            "pod_units": 192,
            "oversubscription": {"unit": 1, "pod": 7},
        }
        plan = plan_of(data)
        e = Engine(plan)
        e._setup()
        e.env.run(until=600.0)
        (j,) = e.jobs
        assert j.phase == Phase.RUNNING
        tflops[placement] = plan.jobs[0].model_flops_per_s / 16384 * j.factors[1] / 1e12
        if placement == "pack":
            assert j.spans[1] == 6  # 16,384 GPUs fill 5 1/3 pods of 3,072
    assert abs(tflops["pack"] / 400.0 - 1.0) <= 0.10
    assert tflops["spread"] < 0.92 * tflops["pack"]


def test_a_layout_that_does_not_divide_the_job_is_a_clear_error(
    tiny_scenario: Builder, write_scenario: Callable[..., Any]
) -> None:
    from sim.config.loader import ScenarioError
    from sim.runner import prepare

    bad = job("a", 4) | {"layout": {"tp": 7}}
    data = tiny_scenario(racks=16, pretraining=[bad])
    with pytest.raises(ScenarioError, match="does not divide"):
        prepare(write_scenario(data))


def test_a_replacement_outside_its_placement_is_followed(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A packed 4-rack job fills one pod; a rack fails and the replacement comes from another
    pod: its spans, groups and network factor follow the move at its restart."""
    plan = fabric_scenario(tiny_scenario, plan_of, "pack", [job("a", 4)])
    e = Engine(plan)
    e._setup()
    e.env.run(until=600.0)
    (a,) = e.jobs
    assert a.spans[:2] == [2, 1] and a.factors[1] == 1.0
    d = int(a.held.all()[0])
    e.power.batch()
    e.reliability.fail(d, 3600.0)
    e.power.flush(e.env.now)
    e.env.run(until=600.0 + plan.reliability.restart_overhead_s + 1.0)
    assert a.phase == Phase.RUNNING
    assert a.spans[:2] == [3, 2]  # the replacement is in another unit and pod
    assert a.factors[1] < 1.0  # and its traffic now crosses the 1:16 pod uplinks


@pytest.mark.parametrize("placement", ["pack", "random"])
def test_a_fabric_run_is_deterministic(
    tiny_scenario: Builder, plan_of: PlanOf, placement: str
) -> None:
    """Same scenario and seed, same results bit for bit: placement (random draws from its own
    stream), failures of switches and links, and shares."""
    from sim.runner import simulate

    data = tiny_scenario(
        racks=16,
        duration="3 d",
        pretraining=[job("a", 4, tokens=4e10), job("b", 4, submit="6 h", tokens=2e10)],
        reliability={"failure_rate_per_1000_node_days": 200},
    )
    data["network"] = {
        "kind": "fat_tree",
        "placement": placement,
        "unit_domains": 2,
        "pod_units": 2,
        "oversubscription": {"unit": 1, "pod": 16},
        "failures": {"switch_annual_failure_rate": 1.0, "link_failures_per_1000_gpu_years": 900},
    }
    runs = [simulate(plan_of(data))[0] for _ in range(2)]
    a, b = runs
    assert a.jobs.equals(b.jobs) and a.traces.equals(b.traces) and a.events.equals(b.events)
    assert a.fabric.equals(b.fabric) and a.summary == b.summary
    assert (a.events["event"] == "network_failure").any()


@pytest.mark.parametrize(("written", "ratio"), [("1:7", 7.0), ("7:1", 7.0), ("7", 7.0)])
def test_an_oversubscription_written_as_a_ratio_is_read_as_one(
    tiny_scenario: Builder, write_scenario: Callable[..., Any], written: str, ratio: float
) -> None:
    """YAML 1.1 reads 1:7 as the base-60 number 67; the scenario loader does not."""
    from sim.runner import prepare

    text = (
        "name: os\nfacility:\n  grid_power: 5 MW\n  pue: 1.2\n"
        "  halls: [{name: h, hardware: gb200_nvl72, racks: 16}]\n"
        f"network: {{kind: fat_tree, oversubscription: {{unit: 1, pod: {written}}}}}\n"
    )
    loaded, _ = prepare(write_scenario(text))
    oversubscription = loaded.scenario.network.oversubscription
    assert oversubscription is not None and oversubscription.pod == ratio


def test_a_problem_under_a_set_override_is_blamed_on_the_override(chdir_root: Any) -> None:
    """The override changed a key under the one the message is about: it says --set, not a
    line of the file that has nothing to do with it."""
    from sim.config.loader import ScenarioError
    from sim.runner import prepare

    with pytest.raises(ScenarioError) as info:
        prepare("scenarios/smoke.yaml", overrides=["workloads.pretraining.0.layout.tp=7"])
    assert str(info.value).startswith("--set: workloads.pretraining[0]: ")


def _fresh_fabric_check(fab: Any) -> None:
    """The fabric's kept state against what a recomputation from scratch finds."""
    running = list(fab.running)
    for j in running:
        assert sorted(j.net_keys) == sorted(fab._keys(j))
    want: dict[tuple[int, int], dict[Any, float]] = {}
    for j in running:
        for key, demand in j.net_keys:
            want.setdefault(key, {})[j] = demand
    assert {k: v for k, v in fab.group_jobs.items() if v} == want
    used = [0.0] * len(fab.tiers)
    for key, at in want.items():
        offered, cap, got = fab.group_alloc[key]
        capacity = fab._capacity(*key)
        if np.isfinite(capacity):
            shares = max_min_fair(capacity, list(at.values()))
            assert got == pytest.approx(dict(zip(at, shares, strict=True)), rel=1e-12)
            assert cap == capacity
            used[key[0]] += offered
    assert fab.used == pytest.approx(used, rel=1e-9, abs=1e-3)
    for j in running:
        factor, degraded = j.factors[1], j.factors[2]
        kept = fab.paths.pop(j, None)  # found again from the shares, not from its kept path
        fab._factor(j)
        assert j.factors[1] == factor and j.factors[2] == degraded
        if kept is not None and kept[0] == fab.allocs:  # its kept path is the one found
            assert fab.paths[j][5] == kept[5]
    for u in range(len(fab.unit_health)):
        assert fab._touching("leaf", u) == {j for j in running if u in j.net_units_set}
    for p in range(len(fab.pod_health)):
        assert fab._touching("spine", p) == {j for j in running if p in j.net_pods_set}


def test_the_shares_kept_between_changes_are_those_found_afresh(
    tiny_scenario: Builder, plan_of: PlanOf
) -> None:
    """A start, stop, failure or repair updates only the groups it changes (and a switch
    change finds the jobs under it from where they are filed): at every step the keys, the
    shares, the loads and the factors are those a recomputation from scratch gives."""
    data = tiny_scenario(
        racks=16,
        duration="2 d",
        pretraining=[
            job("a", 4, tokens=2e10),
            job("b", 4, submit="1 h", tokens=1e10),
            job("c", 4, submit="3 h", tokens=1e10),
        ],
        reliability={"failure_rate_per_1000_node_days": 300},
    )
    data["network"] = {
        "kind": "fat_tree",
        "placement": "spread",
        "unit_domains": 2,
        "pod_units": 2,
        "oversubscription": {"unit": 1, "pod": 16},
        "failures": {"switch_annual_failure_rate": 0.0, "link_failures_per_1000_gpu_years": 0.0},
    }
    e = Engine(plan_of(data))
    e._setup()
    fab, ff = e.fabric, e.fabric_failures
    assert fab is not None and ff is not None
    rng = np.random.default_rng(7)
    checked = 0
    for step in range(1, 60):
        e.env.run(until=step * 1800.0)
        # a switch or link fails or comes back by hand, somewhere (repairs restore it)
        kind = ("leaf", "spine", "link")[step % 3]
        n = {"leaf": len(fab.unit_health), "spine": len(fab.pod_health), "link": fab.fleet.n}
        index = int(rng.integers(0, n[kind]))
        fab.degrade(kind, index, -0.5)
        _fresh_fabric_check(fab)
        later(e.env, 2700.0, lambda c: fab.degrade(*c.value), (kind, index, 0.5))
        checked += len(fab.running)
    e.env.run(until=e.end_s)
    _fresh_fabric_check(fab)
    assert checked > 20 and fab.recomputes > 20
