"""Jobs and services as the engine sees them: small objects with fluid progress accounting.

A training job advances at ``rate`` work units per second (tokens for pre-training, seconds of
uninterrupted run time for post-training) while RUNNING. The rate is the job's ``base_rate``
times named factors (:data:`sim.contract.RATE_FACTORS`: throttle, network, degraded hardware);
a factor can change at any time without losing work (:meth:`Job.set_factor`).

**Checkpoints.** A job checkpoints after every ``ckpt_interval_s`` of *compute wall time*, and
each checkpoint stalls it for ``ckpt_write_s``: a cycle is ``I + w`` of wall time whatever the
rate, so a throttled job checkpoints as often as before, each checkpoint saving what was computed
in its cycle (less work per checkpoint, the same exposure to failures). The state of a running
job is its position ``pos`` in the current cycle (``[0, I)`` computing, ``[I, I + w)`` writing)
and the work ``unsaved`` computed in the cycle so far, both as of ``t_upd``. Progress is brought
up to date only when something changes (start, rate change, interrupt, finish), never per step
or per checkpoint: :meth:`Job.advance` counts the completed checkpoints in closed form. A
failure or a preemption loses ``unsaved``; a rate change keeps it.

**Slowdown by factor.** Over compute time ``dt`` at factors ``f_i``, the job is
``dt (1 - prod f_i)`` of wall time behind its base rate; that time is split among the factors in
proportion to ``ln f_i`` (so the split is exact and independent of the order of the factors) and
reported per factor in the jobs table.
"""

from __future__ import annotations

import functools
import math
from array import array
from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from scipy.ndimage import maximum_filter1d

from sim.contract import RATE_FACTORS
from sim.engine.fleet import IndexStack

__all__ = ["FACTOR_INDEX", "Job", "Option", "Phase", "Service", "Workload", "trailing_max"]

#: position of each named rate factor in :attr:`Job.factors`
FACTOR_INDEX = {name: i for i, name in enumerate(RATE_FACTORS)}


class Phase(IntEnum):
    PENDING = 0  # not yet submitted
    WAITING = 1  # queued for domains
    RESTARTING = 2  # holds domains, paying the restart overhead
    RUNNING = 3  # holds domains, making progress
    DONE = 4
    PAUSED = 5  # holds domains, progress kept in memory, not computing (power control)
    AWAITING = 6  # lost a domain, holds the rest, waits for a replacement (recovery)


class Workload:
    """Anything that holds domains: a job or a service.

    ``hall_n[h]`` is the number of its domains in hall ``h`` (kept by the fleet); ``draw_w`` is
    its power above idle per domain (set by the power accounting), 0 when it draws idle power.
    """

    kind: str = ""
    victim = False  # may the scheduler preempt it?

    def __init__(
        self,
        name: str,
        hw: int,
        class_rank: int,
        preemptible: bool,
        slot: np.ndarray | array[int],
        capacity: int,
        n_halls: int,
    ) -> None:
        self.index = -1
        self.name = name
        self.hw = hw
        self.class_rank = class_rank
        self.preemptible = preemptible
        self.held = IndexStack(capacity, slot)
        self.hall_n = [0] * n_halls
        self.halls: list[int] = []  # halls of its hardware type (set when registered)
        self.draw_w = 0.0
        self.drawn_w = [0.0] * n_halls  # watts above idle now counted per hall
        self.held_domain_s = 0.0
        self.alloc_start = 0.0

    def account_hold(self, now: float) -> None:
        """Add the domain-seconds held since the last change; called before the holding changes."""
        self.held_domain_s += (now - self.alloc_start) * self.held.size
        self.alloc_start = now


class Option(NamedTuple):
    """One hardware type a job may run on, with what it needs and does there: its gang of
    ``domains`` (``gpus`` computing), its base ``rate`` in the job's work units per second, its
    model and peak FLOP/s and its network model on that type (None: not modelled). The
    scheduler's hardware policy orders a job's options
    (:func:`sim.engine.scheduler.order_options`)."""

    hw: int
    domains: int
    gpus: int
    rate: float
    model_flops_per_s: float = 0.0
    peak_flops_per_s: float = 0.0
    network: Any = None


class Job(Workload):
    def __init__(
        self,
        name: str,
        kind: str,
        hw: int,
        class_rank: int,
        preemptible: bool,
        slot: np.ndarray | array[int],
        n_halls: int,
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
        persist_s: float = 0.0,
        restore_s: float = 0.0,
        work_unit: str = "",
    ) -> None:
        super().__init__(name, hw, class_rank, preemptible, slot, domains, n_halls)
        self.kind = kind
        self.work_unit = work_unit or ("tokens" if kind == "pretraining" else "run_seconds")
        #: the hardware types it may run on, best first by the scheduler's hardware policy;
        #: empty when it can run on ``hw`` only (it named it, or the site has one type)
        self.options: list[Option] = []
        self.victim = preemptible
        self.stream = stream
        self.domains = domains
        self.gpus = gpus
        self.submit_at_s = submit_at_s
        self.work = work
        self.base_rate = rate
        self.rate = rate
        self.factors = [1.0] * len(RATE_FACTORS)
        #: the factors' split of the slowdown (:meth:`charge_slowdown`), None until needed
        self._split: tuple[float, tuple[tuple[int, float], ...]] | None = None
        self.ckpt_interval_s = ckpt_interval_s
        self.ckpt_write_s = ckpt_write_s  # the stall per checkpoint
        #: async checkpoints: from a snapshot until it is durable (0: durable when written)
        self.persist_s = persist_s
        self.restore_s = restore_s  # reading the checkpoint back at each restart
        self.restore_lost_s = 0.0
        self.seg_ckpts = 0  # checkpoints since the running segment began
        self.fell_back = 0.0  # work of an async checkpoint found not durable at the last stop
        self.model_flops_per_s = model_flops_per_s  # at the base rate
        self.peak_flops_per_s = peak_flops_per_s
        #: share of a checkpoint cycle spent computing: traces show rate x this (stalls included)
        self.duty = ckpt_interval_s / (ckpt_interval_s + ckpt_write_s)
        self.phase = Phase.PENDING
        self.done_work = 0.0  # saved in a checkpoint (or finished)
        self.unsaved = 0.0  # computed since the last checkpoint, as of t_upd
        self.pos = 0.0  # position in the checkpoint cycle, as of t_upd
        self.t_upd = 0.0
        self.token = 0  # bumped to cancel the pending finish or restart event
        #: checkpoints on the way to completion, their cycle start, compute time left
        self.finish_plan: tuple[int, float, float] = (0, 0.0, 0.0)
        #: the completion event pending (its token and time) and when the job is due now
        self.finish_token = -1
        self.finish_at = math.inf
        self.finish_due = math.inf
        self.power_scale = 1.0  # share of its full draw above idle (< 1 under a throttle)
        self.first_start: float = math.nan
        self.finish_s: float = math.nan
        # statistics
        self.interruptions = 0
        self.preemptions = 0
        self.starts = 0
        self.checkpoints = 0
        self.lost_work = 0.0
        self.running_s = 0.0  # wall time spent RUNNING (includes work later lost)
        self.slowdown_s = [0.0] * len(RATE_FACTORS)
        # goodput accounting (sim.engine.training.Training.interrupt)
        self.planned_interruptions = 0
        self.interruptions_by_cause: dict[str, int] = {}
        self.detection_lost_s = 0.0  # wall time from faults to their detection
        #: the restart under way: (its start, detection, other delay, overhead, restore), all
        #: charged when it began; a failure or preemption that cuts it short takes back the
        #: part not spent (:meth:`~sim.engine.training.Training.cut_restart`)
        self.restart_plan: tuple[float, float, float, float, float] | None = None
        self.pending_detection_s = 0.0
        self.restart_lost_s = 0.0  # wall time paying restart overheads
        self.recompute_lost_s = 0.0  # compute time of the work lost (at the rate it ran)
        self.domain_wait_s = 0.0  # wall time after its first start waiting for domains
        self.wait_since = math.nan  # when it began waiting for domains (after a failure)
        self.awaiting_domains = 0  # replacements it waits for (Phase.AWAITING)
        self.pending_delay_s = 0.0  # detection still to pay when its replacements come
        self.fail_hall = -1  # hall of its last failed domain (a hot spare is taken there)
        #: recovery ``shrink_elastic``: per hardware type, what it can run on after losing
        #: domains (:class:`sim.build.ElasticShrink`; empty: it does not shrink)
        self.elastic: dict[int, Any] = {}
        self.shrunk_since = math.nan  # when it last shrank (NaN: at full size)
        self.shrunk_domains = 0  # domains its replicas occupy while shrunk
        self.shrunk_gpus = 0  # GPUs of its replicas while shrunk
        self.shrunk_s = 0.0  # wall time shrunk (until it grew back, or the end)
        self.shrinks = 0  # shrink episodes (full size -> shrunk)
        self.reshrinks = 0  # shrunk again on fewer replicas within an episode
        self.act_domains = 0  # domains counted in the running levels when it last began
        #: the network factor of a placement: called with [(tier, GPUs per group, per-GPU
        #: bytes/s)] for the tiers it crosses and the share of its links that are up
        #: (:mod:`sim.engine.fabric`); None: not modelled
        self.network: Callable[[list[tuple[int, float, float]], float], float] | None = None
        self.net_units: list[int] = []  # fabric units of its placement
        self.net_units_set: set[int] = set()  # the same, for lookups
        self.net_pods_set: set[int] = set()  # the pods of those units
        self.net_version = -1  # the fabric's version its network factor was found at
        self.net_keys: list[tuple[tuple[int, int], float]] = []  # finite groups, its demand
        self.spans: list[int] = []  # groups its domains touched per fabric tier, at its last start
        self.placed = False  # given a new gang since it last ran (its spans are to be found)
        self.hold_paused = False  # paused when it failed: it restarts into PAUSED
        self.net_groups: list[tuple[int, list[int], list[float]]] = []  # crossed, per tier

    def use(self, opt: Option) -> None:
        """Take on option ``opt`` (its hardware, gang, rates and network model) for its next
        start; only while it holds no domain. Its work is in units that do not depend on the
        hardware (tokens, steps), so progress carries over; its rate factors are kept."""
        assert self.held.size == 0
        self.hw = opt.hw
        self.domains = opt.domains
        self.gpus = opt.gpus
        self.base_rate = opt.rate
        self.model_flops_per_s = opt.model_flops_per_s
        self.peak_flops_per_s = opt.peak_flops_per_s
        self.network = opt.network
        self.net_version = -1
        rate = opt.rate
        for f in self.factors:
            rate *= f
        self.rate = rate
        self._split = None

    # ------------------------------------------------------------------ progress

    def begin(self, now: float) -> None:
        """Start a RUNNING segment: a fresh checkpoint cycle (the restart loaded the last one)."""
        self.t_upd = now
        self.pos = 0.0
        self.unsaved = 0.0
        self.seg_ckpts = 0

    def advance(self, now: float) -> tuple[int, float]:
        """Bring progress up to ``now`` at the current rate.

        Returns (checkpoints completed, start of the cycle they count from): the k-th of them
        completed at ``start + k x (I + w)``.
        """
        e = now - self.t_upd
        if e <= 0.0:
            return 0, now
        self.running_s += e
        interval, write = self.ckpt_interval_s, self.ckpt_write_s
        cycle = interval + write
        r = self.rate
        pos = self.pos
        base_t = self.t_upd - pos  # start of the current cycle
        if pos == 0.0 and self.unsaved == 0.0:
            # from a cycle start: the plain closed form (the common case, kept exact)
            n = int(e // cycle)
            into = e - n * cycle
            compute = n * interval + min(into, interval)
            self.done_work += min(n * r * interval, self.work - self.done_work)
            self.unsaved = r * min(into, interval)
        else:
            end = pos + e
            if end < cycle:
                n = 0
                into = end
                compute = max(0.0, min(end, interval) - min(pos, interval))
                self.unsaved += r * compute
            else:
                first = max(0.0, interval - pos)
                rest = end - cycle
                n_more = int(rest // cycle)
                into = rest - n_more * cycle
                n = 1 + n_more
                saved = self.unsaved + r * first + n_more * r * interval
                self.done_work += min(saved, self.work - self.done_work)
                compute = first + n_more * interval + min(into, interval)
                self.unsaved = r * min(into, interval)
        self.pos = into
        self.t_upd = now
        self.checkpoints += n
        self.seg_ckpts += n
        self.charge_slowdown(compute)
        return n, base_t

    def charge_slowdown(self, compute_s: float) -> None:
        """Charge ``compute_s`` of compute at the current factors to the factors: the job fell
        ``compute_s (1 - prod f)`` behind its base rate, split in proportion to ``ln f``
        (``-dt expm1(s) / s x ln f`` with ``s = sum ln f``, and ``-dt ln f`` in the limit
        ``s -> 0``: stable when the factors nearly cancel)."""
        split = self._split
        if split is None:  # the factors changed: find the split once (it is per factor set)
            split = self._split = _slowdown_split(tuple(self.factors))
        if not split[1]:
            return
        per_log = -compute_s * split[0]
        for i, lg in split[1]:
            self.slowdown_s[i] += per_log * lg

    def drop_unsaved(self) -> float:
        """Lose the work since the last checkpoint (a paused job hit by a failure or a
        preemption); returns it."""
        lost = self.unsaved
        self.lost_work += lost
        self.unsaved = 0.0
        self.pos = 0.0
        return lost

    def stop(self, now: float) -> tuple[int, float, float]:
        """End the RUNNING segment (interrupt): returns (checkpoints, cycle start, work lost).

        Asynchronous checkpoints: a failure less than ``persist_s`` after the last snapshot
        (``pos``, the time into the cycle that began when the snapshot ended) finds that
        checkpoint not yet durable, so the job falls back to the one before and loses the
        interval between them too (at the current rate; the first snapshot of a segment
        follows the restore point, which is durable)."""
        n, first = self.advance(now)
        lost = self.unsaved
        self.fell_back = 0.0
        if self.persist_s > 0.0 and self.seg_ckpts and self.pos < self.persist_s:
            back = min(self.rate * self.ckpt_interval_s, self.done_work)
            self.done_work -= back
            lost += back
            self.fell_back = back
        self.lost_work += lost
        self.unsaved = 0.0
        self.pos = 0.0
        return n, first, lost

    def to_finish(self) -> tuple[float, int]:
        """Wall time from ``t_upd`` to completion at the current rate, and the checkpoints
        completed on the way (none is written at the very end: the job is done)."""
        r = self.rate
        interval, write = self.ckpt_interval_s, self.ckpt_write_s
        rem = self.work - self.done_work - self.unsaved
        t = 0.0
        n = 0
        # work within this of the total is float residue: the job is done (or nearly) then
        eps = 1e-12 * self.work
        if rem <= eps:  # done: no checkpoint is written at the very end, even mid-write
            return 0.0, 0
        if not (self.pos == 0.0 and self.unsaved == 0.0):
            if self.pos < interval:
                avail = (interval - self.pos) * r
                if rem <= avail + eps:
                    return max(rem, 0.0) / r, 0
                rem -= avail
                t = interval - self.pos + write
            else:
                t = interval + write - self.pos
            n = 1
        n_more = max(0, math.ceil(rem / (r * interval) - 1e-12) - 1)
        return t + rem / r + n_more * write, n + n_more

    def set_factor(self, index: int, value: float) -> None:
        """Set one rate factor; the caller brings progress up to date first if RUNNING."""
        self.factors[index] = value
        rate = self.base_rate
        for f in self.factors:
            rate *= f
        self.rate = rate
        self._split = None


class Service(Workload):
    """An inference service: holds whole domains, scaled to demand at each control tick.

    Its capacity per domain is a base capacity times named factors, like a job's rate.
    """

    kind = "inference"

    def __init__(
        self,
        name: str,
        hw: int,
        class_rank: int,
        preemptible: bool,
        slot: np.ndarray | array[int],
        capacity_domains: int,
        n_halls: int,
        *,
        capacity_per_domain: float,
        max_load: float,
        min_domains: int,
        interval_s: float,
        demand: np.ndarray,
        tolerance: float = 0.0,
        stabilization_s: float = 0.0,
        slo_table: tuple[np.ndarray, np.ndarray] | None = None,
        latency_table: dict[str, np.ndarray] | None = None,
        slo_unmeasured: bool = False,
        tokens_per_request: np.ndarray,
        replicas_per_domain: float,
        prompt_cache_hit: float,
        client_timeout_s: float,
        ttft_target_s: float | None = None,
    ) -> None:
        super().__init__(name, hw, class_rank, preemptible, slot, capacity_domains, n_halls)
        #: the fluid backlog (sim.engine.backlog): its clients give up after this wait; the
        #: backlog (tokens) at ``queue_t``, and the demand and capacity in force since then
        self.client_timeout_s = client_timeout_s
        self.ttft_target_s = ttft_target_s
        self.queue_tokens = 0.0
        self.queue_t = 0.0
        self.queue_demand = 0.0
        self.queue_capacity = 0.0
        self.queue_gen = 0  # the current "backlog drained" wake-up (older ones are stale)
        #: generated (output + reasoning) tokens per request at each control tick, replicas
        #: per domain and the prompt-cache hit rate: they turn the token levels into request
        #: levels and replicas after the run (Autoscaler.levels)
        self.tokens_per_request = tokens_per_request
        self.replicas_per_domain = replicas_per_domain
        self.prompt_cache_hit = prompt_cache_hit
        #: (loads, attainment): the request level's share of requests meeting the targets
        #: against the load on the held capacity (None: no latency targets)
        self.slo_table = slo_table
        #: the request level's p50/p99 TTFT and TPOT over the same loads (None: no targets)
        self.latency_table = latency_table
        self.slo_unmeasured = slo_unmeasured  # targets, but nothing estimates attainment
        self.base_capacity = capacity_per_domain
        self.capacity_per_domain = capacity_per_domain
        self.factors = [1.0] * len(RATE_FACTORS)
        self.max_load = max_load
        self.min_domains = min_domains
        self.interval_s = interval_s
        self.demand = demand  # output tokens/s demanded at each control tick
        self.window = int(stabilization_s // interval_s) + 1
        self.demand_list = demand.tolist()
        self.target = self.targets()
        self.live = False  # targets computed per tick (after a capacity change)
        self.window_q: deque[tuple[int, int]] = deque()  # (tick, need), needs decreasing
        self.tolerance = tolerance
        self.tick = -1  # index of the last control tick (its demand is in force)
        self.desired = 0
        self.ch_domains: Any = None
        self.ch_capacity: Any = None
        self.load_w = 0.0  # power above idle of its load, all halls together
        self.power_scale = 1.0  # share of the full-clock draw per domain of load (DVFS)
        self.slope = 1.0  # facility watts per IT watt of its load (its halls' slopes)
        self.ch_halls: Any = None  # its domains per hall (a row channel)
        self.ch_power_scale: Any = None  # its clock's power scale (a channel)
        self.target_list: list[int] = []

    def needs(self, demand: np.ndarray, capacity_per_domain: float) -> np.ndarray:
        """Domains needed for ``demand`` at ``max_load``, at least the floor. The ceiling
        forgives float noise relative to the value (an exact 3 stays 3, a tiny demand needs
        one domain)."""
        x = demand / (capacity_per_domain * self.max_load)
        return np.maximum(self.min_domains, np.ceil(x * (1.0 - 1e-9))).astype(np.int64)

    def need_now(self, k: int) -> int:
        x = self.demand_list[k] / (self.capacity_per_domain * self.max_load)
        return max(self.min_domains, math.ceil(x * (1.0 - 1e-9)))

    def targets(self) -> np.ndarray:
        """Domains wanted at each tick at the base capacity: the highest need over the trailing
        stabilization window, so a scale-up is immediate and a scale-down waits until the
        window has passed (the Kubernetes HPA rule). O(ticks), whatever the window."""
        return trailing_max(self.needs(self.demand, self.capacity_per_domain), self.window)

    def go_live(self) -> None:
        """Switch to targets computed tick by tick (the capacity changed, so the precomputed
        ones no longer hold): the window keeps the needs of the past ticks as they were."""
        if self.live:
            return
        self.live = True
        k = self.tick
        needs = self.needs(self.demand[max(0, k - self.window + 1) : k + 1], self.base_capacity)
        first = max(0, k - self.window + 1)
        for j, n in enumerate(needs.tolist()):
            self._push_need(first + j, n)

    def _push_need(self, k: int, need: int) -> None:
        q = self.window_q
        while q and q[-1][1] <= need:
            q.pop()
        q.append((k, need))
        while q[0][0] <= k - self.window:
            q.popleft()

    def live_target(self, k: int) -> int:
        """Target at tick ``k`` from the needs of the window (each at the capacity of its
        tick)."""
        self._push_need(k, self.need_now(k))
        return self.window_q[0][1]


@functools.lru_cache(maxsize=1024)
def _slowdown_split(factors: tuple[float, ...]) -> tuple[float, tuple[tuple[int, float], ...]]:
    """``(expm1(s) / s, ((i, ln f_i) for the factors not 1))`` of a job's rate factors (see
    :meth:`Job.charge_slowdown`); no factors when all are 1 (nothing to charge). A pure
    function of the factors, cached: the power controller sets a whole class to one clock, so
    its jobs share their factors."""
    if all(f == 1.0 for f in factors):
        return 1.0, ()
    logs = [math.log(f) for f in factors]
    s = math.fsum(logs)
    return (
        math.expm1(s) / s if abs(s) > 1e-12 else 1.0,
        tuple((i, lg) for i, lg in enumerate(logs) if lg),
    )


def trailing_max(x: np.ndarray, window: int) -> np.ndarray:
    """``out[k] = max(x[max(0, k - window + 1) : k + 1])`` in O(len(x)) (x >= 0)."""
    if window <= 1 or x.shape[0] == 0:
        return x.copy()
    origin = window - 1 - window // 2  # shifts scipy's centred window to the trailing one
    return maximum_filter1d(x, size=window, origin=origin, mode="constant", cval=0)
