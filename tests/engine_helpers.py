"""Helpers for tests that drive the engine by hand (``from engine_helpers import ...``).

* ``started(plan)`` -> an engine set up (workloads submitted, processes started), not run;
  ``at(e, t, action)`` schedules ``action()`` at simulated time ``t``; ``finish(e)`` steps the
  run to its end and closes it (levels and traces recorded), as :meth:`Engine.run` would;
* ``run_stepped(monkeypatch, plan, check, before=...)`` -> the tables of
  ``sim.runner.simulate(plan)`` with the engine stepped one SimPy event at a time, ``before``
  scripting it after setup and ``check(engine)`` called after setup and after every event (or
  only once every event of an instant is done);
* ``brute_force_halls(e)`` -> the IT power of each hall summed domain by domain from the fleet's
  state, following the rule in the docstring of :mod:`sim.engine.power` (not the engine's
  incremental formula);
* ``MINIMAL_SCENARIO`` -> the smallest scenario text that runs, for file-level tests;
* ``estimate_cli(argv)`` -> the exit code of ``aifactory estimate ...`` run in-process (``argv``
  from ``estimate`` on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import sim.runner
from sim.build import Plan
from sim.engine.core import Engine
from sim.engine.fleet import FAILED, FREE
from sim.engine.kernel import later
from sim.engine.workloads import Job, Phase, Service
from sim.io import RunTables


def started(plan: Plan) -> Engine:
    e = Engine(plan)
    e._setup()
    return e


def at(e: Engine, t: float, action: Callable[[], None]) -> None:
    """Run ``action()`` at simulated time ``t``."""
    later(e.env, t - e.env.now, lambda _ev: action())


def finish(e: Engine) -> None:
    while e.env.peek() < e.end_s:
        e.env.step()
    e._close()


def run_stepped(
    monkeypatch: pytest.MonkeyPatch,
    plan: Plan,
    check: Callable[[Engine], None] | None = None,
    *,
    before: Callable[[Engine], None] | None = None,
    per_instant: bool = False,
) -> RunTables:
    """Simulate ``plan`` through :func:`sim.runner.simulate` (the whole pipeline: traces, jobs,
    summary) one event at a time: ``before(engine)`` runs after setup (to schedule actions with
    :func:`at`), then ``check(engine)`` after setup and after every event, or with
    ``per_instant`` only once the last event of each instant is done."""

    class Stepped(Engine):
        def run(self, progress: Any = None, step_s: float = 0.0) -> None:
            self._setup()
            if before is not None:
                before(self)
            if check is not None:
                check(self)
            while self.env.peek() < self.end_s:
                self.env.step()
                if check is not None and (not per_instant or self.env.peek() > self.env.now):
                    check(self)
            self._close()

    with monkeypatch.context() as m:
        m.setattr(sim.runner, "Engine", Stepped)
        tables, _ = sim.runner.simulate(plan)
    return tables


def brute_force_halls(e: Engine) -> list[float]:
    """IT power of each hall, summed domain by domain from the fleet's state."""
    plan = e.plan
    fac = plan.facility
    out = []
    for hall in plan.halls:
        p = plan.hw_specs[hall.hw_index].domain_power_w
        out.append(fac.it_overhead_fraction * hall.n_domains * p)
    for d in range(plan.n_domains):
        h = int(plan.domain_hall[d])
        hw = int(plan.domain_hw[d])
        p = plan.hw_specs[hw].domain_power_w
        ap = fac.activity[hw]
        state = int(e.fleet.state[d])
        if state == FAILED:
            out[h] += p * ap.failed
            continue
        if state == FREE:
            assert e.fleet.holder[d] == -1
            out[h] += p * ap.idle
            continue
        w = e.fleet.holders[int(e.fleet.holder[d])]
        if isinstance(w, Job):
            if w.phase == Phase.RUNNING:
                out[h] += p * (ap.idle + (ap.training - ap.idle) * w.power_scale)
            else:
                assert w.phase in (Phase.RESTARTING, Phase.AWAITING), (w.name, w.phase)
                out[h] += p * ap.idle
        else:
            assert isinstance(w, Service)
            held = w.held.size
            # every held domain busy while a backlog waits (sim.engine.backlog)
            load = (
                held if w.queue_tokens > 0 else min(w.demand[w.tick] / w.capacity_per_domain, held)
            )
            load *= w.power_scale  # a throttled service draws less per domain of load
            out[h] += p * (ap.idle + (ap.inference_full_load - ap.idle) * load / held)
    return out


#: The smallest scenario text that runs: one hall of 4 GB200 racks for 2 days, no failures
#: (file-level tests add or change keys in it).
MINIMAL_SCENARIO = """\
name: t
run:
  duration: 2 d
facility:
  grid_power: 1 MW
  halls:
    - name: h1
      hardware: gb200_nvl72
      racks: 4
reliability:
  enabled: false
"""


def estimate_cli(argv: list[str]) -> int:
    """``aifactory estimate ...`` in-process (``argv`` without ``aifactory``): its exit code."""
    import argparse

    from sim.cli.estimate import add_parser

    parser = argparse.ArgumentParser(prog="aifactory")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code
