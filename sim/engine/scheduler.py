"""Scheduling policies, chosen by name in the scenario (``scheduler.policy``).

``priority_gang``: jobs wait in one FIFO queue per priority class; a job starts only when all of
its domains are available at once (gang scheduling). Classes are served highest first. A job
that does not fit may preempt running work of *lower*, preemptible classes (most recently started
first, which loses the least work); if even that is not enough it keeps its place and smaller
jobs behind it may start in the gaps (backfill). Backfill into a lower, preemptible class is
taken back as soon as enough has accumulated; within one class there is no reservation yet, so
a big job can wait long behind a stream of small ones of its own class (known limitation).
``spare_domains`` per hardware type are held back from new starts and used only to replace
failed domains. A job that lost domains and found no replacement may wait holding the rest of
its gang (``reliability.recovery: wait_for_repair`` or ``take_spare``): it is served first at
every ``try_start``, from free domains, a hall's hot spares (``take_spare``: the fleet holds
them apart, :mod:`sim.engine.fleet`), or by preempting lower work. It claims what it can get
each time, and restarts when it has all it lost: a domain freed or repaired goes to it before
any queue or service can take it, so a run waiting for several domains is not starved by
higher-class services that take domains one at a time (which parked a frontier run for 8-11
hours at twice the default inference demand before). A run shrunk by ``shrink_elastic`` is
served the same way while it runs on fewer replicas: it grows back (``replaced``) when it has
claimed every domain it lost.

**Placement across generations.** A job that did not name a hardware type carries its
:class:`~sim.engine.workloads.Option` on each type of the site, ordered at build or arrival by
the scenario's ``scheduler.hardware_policy`` (:data:`HARDWARE_POLICIES`). At each start it takes
the first option whose gang is free now (and that the power caps admit); when none is, the first
where preempting lower work makes room. The scheduler is work-conserving across types: a job
never waits for its preferred type while another can run it now, as a Slurm job submitted to
several partitions starts in whichever can start it earliest (Slurm ``sbatch --partition``
with a list). A job chooses again at every restart from the queue (after a preemption or a
requeue): its work is in units that do not depend on the hardware. Cost per start:
O(hardware types), never O(domains).

The policy decides; it acts through two verbs of an :class:`Executor` (the training lifecycle:
``start`` a queued job, ``preempt`` a running one) and reads counts from the
:class:`~sim.engine.fleet.Fleet`, which keeps the index of preemptible jobs as holdings change.
Nothing calls back into the policy to keep its books: the engine only asks it to ``enqueue`` a
job and to ``try_start``, and a workload that needs domains now asks for a ``replacement`` or a
``grant``. It never scans the fleet.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Protocol

from sim.engine.fleet import Fleet
from sim.engine.workloads import Job, Option, Phase, Workload

__all__ = ["HARDWARE_POLICIES", "SCHEDULERS", "Executor", "PriorityGangScheduler", "order_options"]

#: How a job that names no hardware ranks the site's types (lower key first; ties keep the
#: halls' order). ``fastest_completion`` (the default): the shortest uninterrupted run, work /
#: rate on that type, so new generations take the work they finish soonest and older halls take
#: what does not fit there; ``lowest_cost``: the run's cost, run time x domains x the type's
#: cost per domain-second (capital amortisation plus energy, sim.build); ``first_fit``: the
#: halls' order, the plain first fit of a list of partitions.
HARDWARE_POLICIES = ("fastest_completion", "lowest_cost", "first_fit")


def order_options(
    policy: str, options: list[Option], work: float, cost_per_domain_s: tuple[float, ...]
) -> list[Option]:
    """``options`` keyed and sorted by ``policy`` for a job of ``work`` units (stable: ties keep
    the halls' order)."""
    if policy == "first_fit":
        return options
    if policy == "fastest_completion":
        return sorted(options, key=lambda o: work / o.rate)
    return sorted(options, key=lambda o: work / o.rate * o.domains * cost_per_domain_s[o.hw])


class Executor(Protocol):
    def start(self, job: Job) -> None: ...

    def preempt(self, victim: Workload) -> None: ...

    def replaced(self, job: Job) -> None: ...

    def claim(self, job: Job, k: int) -> None: ...


class PriorityGangScheduler:
    name = "scheduler"

    def __init__(self, fleet: Fleet, executor: Executor, n_classes: int, spares: int) -> None:
        self.fleet = fleet
        self.executor = executor
        self.queues: list[list[Job]] = [[] for _ in range(n_classes)]
        self.victims = fleet.victims
        self.victim_domains = fleet.victim_domains
        self.spares = spares
        self.preempted = 0  # preemptions ordered so far
        #: no new job starts while set (the power controller refuses placements over a cap);
        #: replacements of failed domains and services' replicas are not new placements
        self.blocked = False
        #: may this job start now? (the power controller's admission: it refuses a start that
        #: would take the site or a hall over a cap)
        self.admits: Callable[[Job], bool] = lambda _job: True
        #: does the power controller refuse every start of a gang of at least ``domains`` on
        #: hardware ``hw`` in class ``rank`` now, whatever the job? (``(rank, hw, domains)``;
        #: a cheap bound :attr:`admits` agrees with, so a class none of whose gangs the caps
        #: admit is not walked while a cap binds)
        self.refuses_all: Callable[[int, int, int], bool] = lambda _rank, _hw, _domains: False
        #: does admission in class ``rank`` depend on a job's gang alone? (not where the power
        #: controller defers the class: each job there counts its own wait)
        self.by_gang: Callable[[int], bool] = lambda _rank: True
        #: what a job that lost domains and finds none does (``reliability.recovery``)
        self.recovery = "wait_for_repair"
        #: jobs holding a partial gang after a failure, with the domains each waits for (in
        #: the order they began to wait); served before any queue at every ``try_start``
        self.awaiting: dict[Job, int] = {}
        #: per class, the gangs its queue holds: {hardware: {domains: jobs}} (a job with
        #: hardware options counts once per option), so a class none of whose gangs fits what
        #: is free or preemptible is skipped without walking its queue
        self.sizes: list[dict[int, dict[int, int]]] = [{} for _ in range(n_classes)]
        #: per class, the queued jobs with hardware options (a walk's memo of refused gangs
        #: does not cover them: each option is tried in turn)
        self.optioned = [0] * n_classes

    def enqueue(self, job: Job) -> None:
        """Queue ``job`` in its class by submit time: a job that was preempted or lost its gang
        to a failure keeps its original place, ahead of work submitted after it (FIFO)."""
        job.phase = Phase.WAITING
        self._count_queued(job, +1)
        q = self.queues[job.class_rank]
        key = (job.submit_at_s, job.index)
        if not q or (q[-1].submit_at_s, q[-1].index) <= key:
            q.append(job)  # the usual case: a new submission goes last
        else:
            bisect.insort(q, job, key=lambda j: (j.submit_at_s, j.index))

    def _n_gangs(self, rank: int) -> int:
        """Distinct (hardware, domains) gangs queued in class ``rank``."""
        return sum(len(sizes) for sizes in self.sizes[rank].values())

    def _count_queued(self, job: Job, sign: int) -> None:
        if job.options:
            self.optioned[job.class_rank] += sign
        by_hw = self.sizes[job.class_rank]
        gangs = [(o.hw, o.domains) for o in job.options] if job.options else [(job.hw, job.domains)]
        for hw, k in gangs:
            sizes = by_hw.setdefault(hw, {})
            n = sizes.get(k, 0) + sign
            if n:
                sizes[k] = n
            else:
                del sizes[k]

    def _may_start(self, rank: int) -> bool:
        """Whether any gang queued in class ``rank`` fits in the free domains (less the spares)
        and those preemptible below it, on its hardware, and, where nothing is preemptible,
        passes the power caps' admission (:attr:`refuses_all`): O(distinct gang sizes), not
        O(queue). When none does, no job of the class can start, so its queue is not walked (a
        month of thousands of queued post-training jobs cost a walk per event before; while a
        cap binds, the admission was asked for every queued job at every event, 3.2 million
        times in the live year of ``benchmarks/engine.py``)."""
        fleet = self.fleet
        for hw, sizes in self.sizes[rank].items():
            if not sizes:
                continue
            least = min(sizes)
            below = self._preemptible_below(hw, rank)
            if least <= fleet.n_free(hw) - self.spares + below:
                if below == 0 and self.refuses_all(rank, hw, least):
                    # nothing to preempt, so every start would go into free domains, and the
                    # power caps' admission refuses even the smallest gang (a larger one
                    # draws more): none of this hardware starts
                    continue
                return True
        return False

    # --------------------------------------------------------------- capacity

    def _preemptible_below(self, hw: int, rank: int) -> int:
        return sum(self.victim_domains[hw][rank + 1 :])

    def _make_room(self, hw: int, rank: int, need: int) -> bool:
        """Preempt lower-class preemptible jobs until ``need`` domains are free on ``hw``."""
        if self.fleet.n_free(hw) >= need:
            return True
        if self.fleet.n_free(hw) + self._preemptible_below(hw, rank) < need:
            return False
        for r in range(len(self.queues) - 1, rank, -1):
            running = self.victims[hw][r]
            while running and self.fleet.n_free(hw) < need:
                self.preempted += 1
                self.executor.preempt(next(reversed(running)))
            if self.fleet.n_free(hw) >= need:
                return True
        return self.fleet.n_free(hw) >= need

    def _available(self, hw: int) -> int:
        """Domains a replacement can have now: free ones and the halls' hot spares."""
        return self.fleet.n_free(hw) + self.fleet.n_spare[hw]

    def _serve_awaiting(self) -> None:
        """Give jobs waiting for replacements what is free now (hot spares included) and what
        preempting lower work frees, as far as it goes: a job claims what it can and restarts
        once it has all it waits for. Replacements are not new placements, so the power
        controller's block does not hold them back."""
        fleet = self.fleet
        for job in list(self.awaiting):
            need = self.awaiting.get(job, 0)
            if not need:
                continue  # preempted (or grown) while an earlier one was served: not waiting
            hw = job.hw
            avail = self._available(hw)
            if avail < need:
                reach = min(need, avail + self._preemptible_below(hw, job.class_rank))
                if reach > avail:
                    self._make_room(hw, job.class_rank, reach - fleet.n_spare[hw])
                    avail = self._available(hw)
            k = min(avail, need)
            if k == need:
                del self.awaiting[job]
                self.executor.replaced(job)
            elif k > 0:
                self.awaiting[job] = need - k
                self.executor.claim(job, k)

    def try_start(self) -> None:
        """Serve jobs waiting for replacements, then start every queued job that fits now,
        highest class first, then backfill."""
        if self.awaiting:
            self._serve_awaiting()
        if self.blocked:
            return
        fleet = self.fleet
        for rank, q in enumerate(self.queues):
            if not q or not self._may_start(rank):
                continue  # no gang of it fits: the queue is not walked
            # gangs (hardware, domains) refused since the last start of this walk: nothing
            # changed since, so a job of the same gang is refused too (where admission asks
            # about the gang alone: not in a deferrable class, whose jobs each count a wait)
            refused: set[tuple[int, int]] | None = set() if self.by_gang(rank) else None
            i = 0
            while i < len(q):
                job = q[i]
                if job.options:
                    placed = self._place(job, rank)
                else:
                    gang = (job.hw, job.domains)
                    if refused is not None and gang in refused:
                        i += 1
                        continue
                    usable = fleet.n_free(job.hw) - self.spares
                    # a start into free domains passes the power caps' admission; one that
                    # preempts lower work frees that work's power (the controller reacts if it
                    # is not enough)
                    preempted = self.preempted
                    if job.domains <= usable:
                        placed = self.admits(job)
                    else:
                        placed = self._make_room(job.hw, rank, job.domains + self.spares)
                    # (a refusal that preempted nothing changed nothing)
                    if not placed and refused is not None and self.preempted == preempted:
                        refused.add(gang)
                        if not self.optioned[rank] and len(refused) == self._n_gangs(rank):
                            break  # every gang queued in the class was refused: none starts
                if placed:
                    del q[i]
                    self._count_queued(job, -1)
                    self.executor.start(job)
                    if refused:
                        refused.clear()  # the start changed what is free and drawn
                    if not self._may_start(rank):
                        break  # nothing left of this class fits: the rest is not walked
                else:
                    i += 1

    def _use(self, job: Job, opt: Option) -> None:
        if job.hw != opt.hw or job.domains != opt.domains or job.base_rate != opt.rate:
            job.use(opt)
            job.halls = self.fleet.halls_of_hw[opt.hw]

    def _place(self, job: Job, rank: int) -> bool:
        """Choose ``job``'s hardware among its options (best first): the first whose gang is
        free now and admitted by the power caps, else the first where preempting lower work
        makes room. Leaves the job set to the chosen option; False when none can start it."""
        fleet = self.fleet
        spares = self.spares
        for opt in job.options:
            if opt.domains <= fleet.n_free(opt.hw) - spares:
                self._use(job, opt)
                if self.admits(job):
                    return True
        for opt in job.options:
            need = opt.domains + spares
            free = fleet.n_free(opt.hw)
            # a type with the gang free was refused by the power caps above: not preempted for
            if free < need <= free + self._preemptible_below(opt.hw, rank):
                self._use(job, opt)
                if self._make_room(opt.hw, rank, need):
                    return True
        return False

    def replacement(self, job: Workload, k: int = 1) -> bool:
        """Can ``k`` domains be found for ``job`` (free, a hot spare, or by preempting lower
        work)?"""
        if self._available(job.hw) >= k:
            return True
        return self._make_room(job.hw, job.class_rank, k - self.fleet.n_spare[job.hw])

    def grant(self, job: Workload, k: int) -> int:
        """How many of ``k`` more domains ``job`` (a service) can have now, preempting if needed.

        Preempts only when that yields at least one domain beyond the spares."""
        hw = job.hw
        free = self.fleet.n_free(hw) - self.spares
        if free < k:
            reachable = free + self._preemptible_below(hw, job.class_rank)
            if reachable > max(free, 0):
                self._make_room(hw, job.class_rank, min(k, reachable) + self.spares)
        return max(0, min(k, self.fleet.n_free(hw) - self.spares))


SCHEDULERS: dict[str, Callable[..., PriorityGangScheduler]] = {
    "priority_gang": PriorityGangScheduler,
}
