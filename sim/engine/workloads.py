"""Jobs and services as the engine sees them: small objects with fluid progress accounting.

A training job advances at a constant ``rate`` (work units per second: tokens for pre-training,
seconds of uninterrupted run time for post-training) while RUNNING. It checkpoints every
``ckpt_interval_s`` of compute, each checkpoint stalling it for ``ckpt_write_s``; a cycle is
therefore ``I + w`` long and saves ``rate x I`` of work. Progress is brought up to date only when
the job's state changes (start, interrupt, finish), never per step or per checkpoint: checkpoint
times are computed in closed form when a running segment ends.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any

import numpy as np

from sim.engine.fleet import IndexStack

__all__ = ["Job", "Phase", "Service", "Workload"]


class Phase(IntEnum):
    PENDING = 0  # not yet submitted
    WAITING = 1  # queued for domains
    RESTARTING = 2  # holds domains, paying the restart overhead
    RUNNING = 3  # holds domains, making progress
    DONE = 4


class Workload:
    """Anything that holds domains: a job or a service."""

    kind: str = ""

    def __init__(
        self,
        index: int,
        name: str,
        hw: int,
        class_rank: int,
        preemptible: bool,
        slot: np.ndarray,
        capacity: int,
    ) -> None:
        self.index = index
        self.name = name
        self.hw = hw
        self.class_rank = class_rank
        self.preemptible = preemptible
        self.held = IndexStack(capacity, slot)


class Job(Workload):
    def __init__(
        self,
        index: int,
        name: str,
        kind: str,
        hw: int,
        class_rank: int,
        preemptible: bool,
        slot: np.ndarray,
        *,
        domains: int,
        gpus: int,
        submit_at_s: float,
        work: float,
        rate: float,
        ckpt_interval_s: float,
        ckpt_write_s: float,
        model_flops_per_s: float = 0.0,
        peak_flops_per_s: float = 0.0,
        stream: str = "",
    ) -> None:
        super().__init__(index, name, hw, class_rank, preemptible, slot, domains)
        self.kind = kind
        self.stream = stream
        self.domains = domains
        self.gpus = gpus
        self.submit_at_s = submit_at_s
        self.work = work
        self.rate = rate
        self.ckpt_interval_s = ckpt_interval_s
        self.ckpt_write_s = ckpt_write_s
        self.model_flops_per_s = model_flops_per_s
        self.peak_flops_per_s = peak_flops_per_s
        cycle = ckpt_interval_s + ckpt_write_s
        #: average rate over a checkpoint cycle (stalls included): what the traces show
        self.effective_rate = rate * ckpt_interval_s / cycle
        self.phase = Phase.PENDING
        self.done_work = 0.0  # saved in the last checkpoint (or finished)
        self.seg_start = 0.0  # when the current RUNNING segment began
        self.alloc_start = 0.0  # when the current holding of domains began
        self.first_start: float = math.nan
        self.finish_s: float = math.nan
        self.wake: Any = None
        self.proc: Any = None
        # statistics
        self.interruptions = 0
        self.preemptions = 0
        self.starts = 0
        self.checkpoints = 0
        self.lost_work = 0.0
        self.held_domain_s = 0.0
        self.running_s = 0.0  # wall time spent RUNNING (includes work later lost)

    def wall_to_finish(self) -> float:
        """Wall time from the start of a RUNNING segment to completion, checkpoint stalls in."""
        rem = self.work - self.done_work
        compute = rem / self.rate
        n_ckpt = max(0, math.ceil(rem / (self.rate * self.ckpt_interval_s) - 1e-12) - 1)
        return compute + n_ckpt * self.ckpt_write_s

    def end_segment(self, now: float) -> tuple[int, float]:
        """Close the RUNNING segment at ``now`` without finishing: keep checkpointed work.

        Returns (checkpoints completed in the segment, work lost since the last one).
        """
        elapsed = now - self.seg_start
        self.running_s += elapsed
        cycle = self.ckpt_interval_s + self.ckpt_write_s
        n_full = int(elapsed // cycle)
        saved = min(n_full * self.rate * self.ckpt_interval_s, self.work - self.done_work)
        into = elapsed - n_full * cycle
        lost = self.rate * min(into, self.ckpt_interval_s)
        self.done_work += saved
        self.lost_work += lost
        return n_full, lost

    def checkpoint_times(self, n: int) -> list[float]:
        cycle = self.ckpt_interval_s + self.ckpt_write_s
        return [self.seg_start + k * cycle for k in range(1, n + 1)]


class Service(Workload):
    """An inference service: holds whole domains, scaled to demand at each control tick."""

    kind = "inference"

    def __init__(
        self,
        index: int,
        name: str,
        hw: int,
        class_rank: int,
        preemptible: bool,
        slot: np.ndarray,
        capacity_domains: int,
        *,
        capacity_per_domain: float,
        max_load: float,
        min_domains: int,
        interval_s: float,
        demand: np.ndarray,
        tolerance: float = 0.0,
        stabilization_s: float = 0.0,
    ) -> None:
        super().__init__(index, name, hw, class_rank, preemptible, slot, capacity_domains)
        self.capacity_per_domain = capacity_per_domain
        self.max_load = max_load
        self.min_domains = min_domains
        self.interval_s = interval_s
        self.demand = demand  # output tokens/s demanded at each control tick
        #: domains needed at each tick: enough for the demand at ``max_load``, at least the floor
        need = np.maximum(
            min_domains, np.ceil(demand / (capacity_per_domain * max_load) - 1e-9)
        ).astype(np.int64)
        #: target per tick: the highest need over the trailing stabilization window, so a
        #: scale-up is immediate and a scale-down waits until the window has passed (HPA rule)
        window = int(stabilization_s // interval_s) + 1
        target = need.copy()
        for lag in range(1, min(window, need.shape[0])):
            np.maximum(target[lag:], need[:-lag], out=target[lag:])
        self.target = target
        self.tolerance = tolerance
        self.ch_domains: Any = None
