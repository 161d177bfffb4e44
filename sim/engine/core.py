"""The engine: wires the components of one run of a :class:`~sim.build.Plan` and runs it.

A fluid discrete-event model: state changes are events and between events every rate is
constant. Only the workloads an event touches are brought up to date, so the cost of an event
does not grow with the number of domains. The components, each one concept with a stable dotted
name (used as the ``source`` of its rows in ``events.parquet``):

============== ======================================== =====================================
name           what it owns                             module
============== ======================================== =====================================
``fleet``      domains, free pools, who holds what      :mod:`sim.engine.fleet`
``scheduler``  queues, gang starts, preemption, spares  :mod:`sim.engine.scheduler`
``workloads``  training jobs' lifecycle and rates       :mod:`sim.engine.training`
               post-training arrivals                   :mod:`sim.engine.arrivals`
``autoscaler`` inference services' replicas and load    :mod:`sim.engine.services`
``reliability`` failures and repairs                    :mod:`sim.engine.reliability`
``power``      IT and facility power per hall and site  :mod:`sim.engine.power`
``site.<hall>`` a hall's power level                    :mod:`sim.engine.power`
============== ======================================== =====================================

The engine reads the typed plan only (never the raw scenario). Recording is
:class:`~sim.record.Recorder`; result rows are :mod:`sim.engine.results`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from sim.build import Plan, PlannedJob
from sim.contract import SERVICE, entity_column
from sim.engine.arrivals import run_arrivals
from sim.engine.control import PowerController
from sim.engine.fabric import FabricFailures, FabricState, network_model
from sim.engine.fleet import Fleet
from sim.engine.kernel import Call, events_processed, gc_paused, later, new_environment
from sim.engine.placement import LocatedPool
from sim.engine.power import Climate, HallPower, Power
from sim.engine.reliability import Reliability
from sim.engine.results import job_rows
from sim.engine.scheduler import SCHEDULERS
from sim.engine.services import Autoscaler, demand_series
from sim.engine.training import Training
from sim.engine.workloads import Job, Option, Service
from sim.record import Recorder, merge_times
from sim.rng import RandomStreams
from sim.units import DAY_S

__all__ = ["Engine"]


def _climate(plan: Plan) -> Climate | None:
    """Each hall's facility slope, fixed load and cooling capacity at every weather step (None
    with a constant PUE): the plan's weather through each hall's cooling (:mod:`sim.facility`)."""
    fac = plan.facility
    if fac.pue_model != "weather" or fac.weather is None:
        return None
    w = fac.weather
    db, wb = w.dry_bulb_c, w.wet_bulb_c
    return Climate(
        step_s=w.step_s,
        dry_bulb_c=db.tolist(),
        wet_bulb_c=wb.tolist(),
        slope=[(1.0 + hc.overhead_per_it(db, wb)).tolist() for hc in fac.hall_cooling],
        fixed_w=[hc.main.other * hc.it_capacity_w for hc in fac.hall_cooling],
        capacity_w=[np.asarray(hc.capacity_w(db, wb)).tolist() for hc in fac.hall_cooling],
    )


class Engine:
    """One simulation run of a :class:`~sim.build.Plan`."""

    def __init__(self, plan: Plan, seed: int | None = None) -> None:
        self.plan = plan
        self.seed = plan.run.seed if seed is None else seed
        self.streams = RandomStreams(self.seed)
        self.env = new_environment()
        self.rec = Recorder()
        self.end_s = plan.run.duration_s
        fac = plan.facility
        gpus = tuple(s.domain_gpus for s in plan.hw_specs)
        self.power = Power(
            [
                HallPower(
                    name=h.name,
                    hw=h.hw_index,
                    n_domains=h.n_domains,
                    domain_power_w=plan.hw_specs[h.hw_index].domain_power_w,
                    idle=fac.activity[h.hw_index].idle,
                    training=fac.activity[h.hw_index].training,
                    inference_full_load=fac.activity[h.hw_index].inference_full_load,
                    failed=fac.activity[h.hw_index].failed,
                    overhead_w=fac.it_overhead_fraction
                    * h.n_domains
                    * plan.hw_specs[h.hw_index].domain_power_w,
                    cooling_capacity_w=h.cooling_capacity_w,
                )
                for h in plan.halls
            ],
            fac.pue,
            self.rec,
            _climate(plan),
        )
        n_cls = len(plan.scheduler.class_names)
        self.fleet = Fleet(
            plan.domain_hw, plan.domain_hall, gpus, len(plan.halls), self.rec, self.power, n_cls
        )
        self.fabric = self._fabric(plan)
        if plan.reliability.enabled and plan.reliability.hot_spares:
            self.fleet.hold_spares(list(plan.reliability.hot_spares))
        self.training = Training(
            self.env, self.fleet, self.power, self.rec, plan.reliability.restart_overhead_s
        )
        self.training.fabric = self.fabric
        if self.fabric is not None:
            self.fabric.training = self.training
        self.training.set_classes(plan.scheduler.class_names)
        self.scheduler = SCHEDULERS[plan.scheduler.policy](
            self.fleet, self.training, n_cls, plan.scheduler.spare_domains
        )
        self.scheduler.recovery = plan.reliability.recovery
        self.training.elastic_min_share = plan.reliability.elastic_min_share
        self.training.scheduler = self.scheduler
        self.control = PowerController(
            self.env,
            fac.power_control,
            plan.grid.cap_at(0.0),
            [h.it_power_capacity_w for h in plan.halls],
            self.power,
            self.training,
            self.scheduler,
            self.fleet,
            self.rec,
        )
        self.autoscaler = Autoscaler(
            self.env,
            self.fleet,
            self.power,
            self.scheduler,
            self.rec,
            self.end_s,
            plan.run.sample_interval_s,
        )
        self.control.autoscaler = self.autoscaler
        self.reliability = Reliability(
            self.env,
            plan.reliability,
            gpus,
            self.fleet,
            self.training,
            self.autoscaler,
            self.scheduler,
            self.rec,
            self.streams,
            tuple((h.first_domain, h.n_domains) for h in plan.halls),
        )
        self.fabric_failures: FabricFailures | None = None
        nf = plan.reliability.network_failures
        if nf is not None and self.fabric is not None:
            self.fabric_failures = FabricFailures(
                self.env,
                nf,
                self.fabric,
                self.training,
                self.reliability,
                self.rec,
                self.streams["network_failures"],
            )

    def _fabric(self, plan: Plan) -> FabricState | None:
        """The fabric's run-time state; on a fabric with tiers that can bind (not
        ``non_blocking``) the free domains are kept per location and placed by the policy."""
        fab = plan.fabric
        if fab is None:
            return None
        if fab.kind != "non_blocking":
            unit_of = array("q", fab.domain_group[0].astype(np.int64).tolist())
            parents = tuple(p.astype(np.int64).tolist() for p in fab.parent)
            n_groups = tuple(int(u.shape[0]) for u in fab.uplink_bytes_per_s)
            rng = self.streams["placement"]
            for h in range(len(self.fleet.free)):
                ids = np.flatnonzero(plan.domain_hw == h).astype(np.int64)
                self.fleet.free[h] = LocatedPool(
                    ids, unit_of, parents, n_groups, fab.placement, rng
                )
        return FabricState(
            fab,
            self.fleet,
            self.rec,
            lambda: self.env.now,
            degradable=plan.reliability.network_failures is not None,
        )

    @property
    def jobs(self) -> list[Job]:
        return self.training.jobs

    @property
    def services(self) -> list[Service]:
        return self.autoscaler.services

    @property
    def model_events(self) -> int:
        """Failures and repairs processed."""
        return self.reliability.model_events

    @property
    def events(self) -> int:
        """SimPy events processed so far."""
        return events_processed(self.env)

    # ------------------------------------------------------------------ setup and run

    def _network(self, pj: PlannedJob) -> Any:
        """The network model of job plan ``pj`` on its hardware (None: not modelled)."""
        fab = self.plan.fabric
        if (
            self.fabric is not None
            and self.fabric.finite
            and fab is not None
            and pj.model is not None
            and pj.model.network is not None
        ):
            return network_model(
                pj.model, self.plan.hw_specs[pj.hw_index], fab.tier_names, fab.uplink_latency_s
            )
        return None

    def _setup(self) -> None:
        env = self.env
        plan = self.plan
        fleet = self.fleet
        for pj in plan.jobs:
            job = self.training.add(
                Job(
                    pj.name,
                    "pretraining",
                    pj.hw_index,
                    pj.class_rank,
                    pj.preemptible,
                    fleet.slot,
                    fleet.n_halls,
                    domains=pj.domains,
                    gpus=pj.gpus,
                    submit_at_s=pj.submit_at_s,
                    work=pj.work,
                    rate=pj.rate,
                    ckpt_interval_s=pj.checkpoint_interval_s,
                    ckpt_write_s=pj.checkpoint_stall_s,
                    persist_s=pj.checkpoint_persist_s,
                    restore_s=pj.checkpoint_restore_s,
                    model_flops_per_s=pj.model_flops_per_s,
                    peak_flops_per_s=pj.peak_flops_per_s,
                )
            )
            job.network = self._network(pj)
            job.elastic = {
                p.hw_index: p.elastic for p in (pj, *pj.alternatives) if p.elastic is not None
            }
            if pj.alternatives:
                job.options = [
                    Option(
                        p.hw_index,
                        p.domains,
                        p.gpus,
                        p.rate,
                        p.model_flops_per_s,
                        p.peak_flops_per_s,
                        self._network(p),
                    )
                    for p in (pj, *pj.alternatives)
                ]
            later(env, pj.submit_at_s, partial(self.training.submit, job))
        for ps in plan.services:
            n_ticks = math.ceil(self.end_s / ps.control_interval_s) + 1
            demand = demand_series(ps, n_ticks, self.streams[f"demand.{ps.name}"])
            per_request = np.full(n_ticks, ps.tokens_per_request)
            if ps.reasoning_ramp is not None:  # reasoning length changing over the run
                factor = ps.tokens_factor(np.arange(n_ticks) * ps.control_interval_s)
                demand = demand * factor
                per_request = per_request * factor
            self.autoscaler.add(
                Service(
                    ps.name,
                    ps.hw_index,
                    ps.class_rank,
                    ps.preemptible,
                    fleet.slot,
                    plan.domains_of(ps.hw_index),
                    fleet.n_halls,
                    capacity_per_domain=ps.capacity_tokens_per_s_per_domain,
                    max_load=ps.max_load,
                    min_domains=ps.min_domains,
                    interval_s=ps.control_interval_s,
                    demand=demand,
                    tolerance=ps.autoscale_tolerance,
                    stabilization_s=ps.scale_down_stabilization_s,
                    slo_table=None
                    if ps.slo is None
                    else (np.asarray(ps.slo.loads), np.asarray(ps.slo.attainment)),
                    latency_table=None if ps.slo is None else ps.slo.latencies(),
                    slo_unmeasured=ps.slo_unmeasured,
                    tokens_per_request=per_request,
                    replicas_per_domain=ps.replicas_per_domain,
                    prompt_cache_hit=ps.prompt_cache_hit,
                    client_timeout_s=ps.client_timeout_s,
                    ttft_target_s=ps.ttft_s,
                )
            )
        # Services tick first: at time 0 they claim their replicas before the gangs are placed.
        self.autoscaler.start()
        for st in plan.streams:
            env.process(
                run_arrivals(
                    env,
                    st,
                    plan.scheduler,
                    fleet,
                    self.training,
                    self.streams,
                )
            )
        if plan.reliability.enabled:
            self.reliability.start()
        if self.fabric_failures is not None:
            self.fabric_failures.start()
        self.power.start_weather(env)
        d = plan.facility.power_control.defer
        if d is not None:
            names = plan.scheduler.class_names
            signal = (
                plan.grid.price_usd_per_mwh if d.signal == "price" else plan.grid.carbon_g_per_kwh
            )
            self.control.set_deferral({names.index(c) for c in d.classes}, signal, plan.grid.step_s)
        for t, cap in plan.grid.cap_changes:
            if t > 0.0:  # demand-response calls: the import cap steps down and back up
                later(env, t, self._cap_change, cap)
        for ev in plan.grid.events:  # their notice: admission looks ahead to the lower cap
            if ev.notified_at_s < ev.start_s:
                later(env, ev.notified_at_s, self._announce, ev)

    def run(
        self, progress: Callable[[float, int], None] | None = None, step_s: float = DAY_S
    ) -> None:
        """Run to the scenario's end; ``progress(sim_time_s, events)`` after each ``step_s``.

        The cyclic garbage collector is paused for the run (:func:`~sim.engine.kernel.gc_paused`).
        """
        with gc_paused():
            self._setup()
            t = 0.0
            while t < self.end_s:
                t = min(t + step_s, self.end_s)
                self.env.run(until=t)
                if progress is not None:
                    progress(t, self.events)
            self._close()

    def _close(self) -> None:
        self.training.close(self.end_s)
        served = {}
        for svc in self.services:
            levels = self.autoscaler.levels(svc)
            served[svc.name] = levels[entity_column(SERVICE, svc.name, "served_tokens_per_s")]
            for name, (times, values) in levels.items():
                self.rec.add_level(name, times, values)
        for name, (times, values) in self.power.hall_levels(served).items():
            self.rec.add_level(name, times, values)
        self._grid_levels()
        self.rec.discard(self.power.ch)
        self.rec.discard(self.control.ch_flow)
        for svc in self.services:
            self.rec.discard(svc.ch_halls)
            self.rec.discard(svc.ch_power_scale)

    def _cap_change(self, call: Call) -> None:
        self.control.set_cap(call.value)

    def _announce(self, call: Call) -> None:
        ev = call.value
        self.control.announce(ev.start_s, self.plan.grid.cap_at(ev.start_s))

    def _grid_levels(self) -> None:
        """Grid import (facility power less the battery's flow), and the energy cost and
        emission rates: grid import times the hourly price and carbon intensity, exact step
        functions on the union of their change times."""
        grid = self.plan.grid
        n = len(self.plan.halls)
        ft, rows = self.power.ch.matrix()
        fv = rows[:, n + 1]
        bt = np.frombuffer(self.control.ch_flow.times, dtype=np.float64)
        bv = np.frombuffer(self.control.ch_flow.values, dtype=np.float64)
        ht = np.arange(len(grid.price_usd_per_mwh), dtype=np.float64) * grid.step_s
        t = merge_times(ft, ht, bt)
        flow = bv[np.searchsorted(bt, t, side="right") - 1]
        f = fv[np.searchsorted(ft, t, side="right") - 1] - flow
        self.rec.add_level("grid_import_w", t, f)
        self.rec.add_level("battery_flow_w", t, flow)
        k = np.searchsorted(ht, t, side="right") - 1
        price, carbon = grid.price_usd_per_mwh[k], grid.carbon_g_per_kwh[k]
        self.rec.add_level("energy_price_usd_per_mwh", t, price)
        self.rec.add_level("carbon_intensity_g_per_kwh", t, carbon)
        self.rec.add_level("_energy_cost_usd_per_s", t, f * price / 3.6e9)
        self.rec.add_level("_emissions_tco2_per_s", t, f * carbon / 3.6e12)

    # ------------------------------------------------------------------ results

    def fabric_stats(self) -> dict[str, Any]:
        out = self.fabric.stats() if self.fabric is not None else {}
        if self.fabric_failures is not None:
            out["network_failures"] = self.fabric_failures.stats()
        return out

    def fabric_rows(self) -> dict[str, Any]:
        """Where each group of the fabric's innermost tier is and who holds it now."""
        if self.fabric is None:
            return {}
        return self.fabric.placement_rows(tuple(h.name for h in self.plan.halls))

    def job_rows(self) -> list[dict[str, Any]]:
        """One row per job (pre- and post-training) with its outcome."""
        plan = self.plan
        return job_rows(
            self.jobs,
            plan.hw_names,
            tuple(s.domain_gpus for s in plan.hw_specs),
            tuple(s.gpu_tdp_w for s in plan.hw_specs),
            plan.scheduler.class_names,
            self.end_s,
            plan.fabric.tier_names if plan.fabric is not None else (),
            sum(c.rate_per_gpu_s for c in plan.reliability.causes if c.effect != "maintenance")
            if plan.reliability.enabled
            else 0.0,
        )
