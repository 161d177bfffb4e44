"""Post-training arrivals (one process per stream, ``workloads.<stream>``).

Jobs arrive as a Poisson process at the stream's rate between its start and stop times; each
draws its size (domains) and its uninterrupted run time (or its work: RL steps drawn from
``rl.steps``) from the stream's distributions, in blocks of
:data:`~sim.engine.reliability.BLOCK` draws from the stream's own random stream.
A job's work is in the stream's unit (seconds of uninterrupted run time at rate 1 for a stream
given by ``duration``); its rate on each hardware type comes from the plan. A stream that names no
hardware gives each job an option per type, ranked for that job's work and size by the
scheduler's hardware policy (:func:`sim.engine.scheduler.order_options`).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.build import PlannedScheduler, PlannedStream
from sim.engine.fleet import Fleet
from sim.engine.reliability import BLOCK, draw_durations
from sim.engine.scheduler import order_options
from sim.engine.training import Training
from sim.engine.workloads import Job, Option
from sim.rng import RandomStreams

__all__ = ["draw_work", "run_arrivals"]


def fleet_use(job: Job, opt: Option, fleet: Fleet) -> None:
    """Set a new ``job`` to its best option (what it reports until it first starts)."""
    job.use(opt)
    job.halls = fleet.halls_of_hw[opt.hw]


def draw_work(st: PlannedStream, rng: np.random.Generator, n: int) -> np.ndarray:
    """The work of the stream's next ``n`` jobs: uninterrupted run times (``duration``), or
    the work each job draws (``work_draw``: RL steps from a distribution, rounded to whole
    steps, at least 1), or the stream's fixed work (tokens, RL steps; nothing is drawn, so the
    stream's later draws are those of a stream without it)."""
    if st.duration is not None:
        return draw_durations(st.duration, rng, n)
    d = st.work_draw
    if d is None:
        return np.full(n, st.work)
    if d.kind == "exponential":
        x = rng.exponential(d.mean, n)
    else:
        sigma2 = math.log1p(d.cv**2)
        x = rng.lognormal(math.log(d.mean) - sigma2 / 2.0, math.sqrt(sigma2), n)
    return np.maximum(1.0, np.rint(x))


def run_arrivals(
    env: simpy.Environment,
    st: PlannedStream,
    sched: PlannedScheduler,
    fleet: Fleet,
    training: Training,
    streams: RandomStreams,
) -> Generator[Any, Any, None]:
    rng = streams[f"arrivals.{st.name}"]
    sizes = np.arange(len(st.size_values))  # which size: its domains and rate on each type
    weights = np.asarray(st.size_weights)
    choices = st.options if len(st.options) > 1 else ()
    n = 0
    if st.start_at_s > 0:
        yield env.timeout(st.start_at_s)
    while True:
        gaps = rng.exponential(1.0 / st.arrival_rate_per_s, BLOCK)
        picks = rng.choice(sizes, size=BLOCK, p=weights)
        durations = draw_work(st, rng, BLOCK)
        for gap, k, duration in zip(gaps.tolist(), picks.tolist(), durations.tolist(), strict=True):
            yield env.timeout(gap)
            if env.now >= st.stop_at_s:
                return
            n += 1
            domains = st.size_values[k]
            job = training.add(
                Job(
                    f"{st.name}#{n}",
                    "posttraining",
                    st.hw_index,
                    st.class_rank,
                    st.preemptible,
                    fleet.slot,
                    fleet.n_halls,
                    domains=domains,
                    gpus=domains * st.domain_gpus,
                    submit_at_s=env.now,
                    work=duration,
                    rate=st.rates[k],
                    ckpt_interval_s=st.checkpoint_interval_s,
                    ckpt_write_s=st.checkpoint_write_s,
                    restore_s=st.checkpoint_restore_s,
                    stream=st.name,
                    work_unit=st.work_unit,
                )
            )
            if choices:
                options = [
                    Option(
                        o.hw_index, o.size_values[k], o.size_values[k] * o.domain_gpus, o.rates[k]
                    )
                    for o in choices
                ]
                job.options = order_options(
                    sched.hardware_policy, options, duration, sched.cost_per_domain_s
                )
                fleet_use(job, job.options[0], fleet)
            training.submit(job)
