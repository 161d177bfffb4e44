"""Post-training arrivals (one process per stream, ``workloads.<stream>``).

Jobs arrive as a Poisson process at the stream's rate between its start and stop times; each
draws its size (domains) and its uninterrupted run time from the stream's distributions, in
blocks of :data:`~sim.engine.reliability.BLOCK` draws from the stream's own random stream.
A post-training job's work is measured in seconds of uninterrupted run time (rate 1).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.build import PlannedStream
from sim.engine.fleet import Fleet
from sim.engine.reliability import BLOCK, draw_durations
from sim.engine.training import Training
from sim.engine.workloads import Job
from sim.rng import RandomStreams

__all__ = ["run_arrivals"]


def run_arrivals(
    env: simpy.Environment,
    st: PlannedStream,
    domain_gpus: int,
    fleet: Fleet,
    training: Training,
    streams: RandomStreams,
) -> Generator[Any, Any, None]:
    rng = streams[f"arrivals.{st.name}"]
    sizes = np.asarray(st.size_values)
    weights = np.asarray(st.size_weights)
    n = 0
    if st.start_at_s > 0:
        yield env.timeout(st.start_at_s)
    while True:
        gaps = rng.exponential(1.0 / st.arrival_rate_per_s, BLOCK)
        picks = rng.choice(sizes, size=BLOCK, p=weights)
        durations = draw_durations(st.duration, rng, BLOCK)
        for gap, domains, duration in zip(
            gaps.tolist(), picks.tolist(), durations.tolist(), strict=True
        ):
            yield env.timeout(gap)
            if env.now >= st.stop_at_s:
                return
            n += 1
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
                    gpus=domains * domain_gpus,
                    submit_at_s=env.now,
                    work=duration,
                    rate=1.0,
                    ckpt_interval_s=st.checkpoint_interval_s,
                    ckpt_write_s=st.checkpoint_write_s,
                    restore_s=st.checkpoint_restore_s,
                    stream=st.name,
                )
            )
            training.submit(job)
