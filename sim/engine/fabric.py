"""The fabric at run time (component ``fabric``): placement spans and contention shares.

The fabric (:mod:`sim.network`) is a tree of groups above the scale-up domains, innermost tier
first (scalable unit, pod, building, site), each group with an uplink of finite capacity where
the tier is oversubscribed or a scale-across link. A training job whose domains sit in more than
one group of a tier sends its data-parallel (and, if its groups are split, pipeline and expert)
traffic across those groups' uplinks.

**Contention** (network-and-serving.md A3, "Crossing an oversubscribed tier": a max-min fair
share of the tier's uplink among the flows crossing it): when a job starts or stops running,
every running job that crosses a tier gets, at each group it uses, a max-min fair share of the
group's uplink among the jobs crossing it there, each job asking for its GPUs in the group times
its per-GPU NIC rate (all of them send at once in the cross-tier stage of a hierarchical
collective). Its per-GPU share at a tier is the smallest over its groups (a synchronous
collective waits for its slowest group). The shares are recomputed when jobs start, end, pause,
move (a restart after a failure on replacement domains) or are preempted, never per step.

**Rate**: the performance model turns the job's path (per tier: its GPUs per group and its
per-GPU share, :class:`~sim.perf.network.NetworkPath`) into a step time; the job's ``network``
rate factor is the step time on a flat, full-rate NIC over the step time on its path, set
through :meth:`~sim.engine.training.Training.set_rate_factor`, so no work is lost.

Jobs without a performance model (post-training streams give sizes and durations, not models)
and services are not slowed and do not contend: their traffic is not modelled (stated
limitation). Cost per change: O(crossing jobs x their groups); jobs inside one group of every
finite tier cost nothing.

Outputs: per job the units, pods, buildings and sites it spans at its last start
(``span_<tier>s`` in ``jobs.parquet``), the wall time its ``network`` factor cost it (contention
and placement) and its ``degraded`` factor (failed leaves and links under it); per tier,
``fabric.<tier>.uplink_load``: the offered load, what the crossing jobs ask (all of their GPUs
sending at once) over the capacity of the uplinks they cross (7 on a 1:7 tier crossed by every
GPU below it).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.contract import FABRIC_TIER, entity_column
from sim.engine.fleet import FAILED, FREE
from sim.engine.kernel import Call, later
from sim.engine.reliability import draw_duration
from sim.engine.workloads import Job
from sim.perf.network import NetworkPath, PathTier
from sim.record import EventKind, Recorder

if TYPE_CHECKING:
    from sim.catalog.hardware import HardwareSpec
    from sim.config.schema import NetworkFailures
    from sim.engine.fleet import Fleet
    from sim.engine.reliability import Reliability
    from sim.engine.training import Training
    from sim.network import Fabric
    from sim.perf.training import TrainingEstimate

__all__ = [
    "REPLACE_EXACT_DOMAINS",
    "FabricFailures",
    "FabricState",
    "max_min_fair",
    "network_model",
]

#: jobs of at most this many domains find their spans and groups again when a replacement
#: domain lies outside their placement's units (for larger ones one domain is a small share,
#: and finding them again would cost O(domains) at every failure: at 2,048 racks, one every
#: ~20 minutes)
REPLACE_EXACT_DOMAINS = 256

#: gangs of at most this many domains find their groups with Python sets and counts (numpy's
#: unique costs more below a few hundred domains)
SMALL_GANG = 256

#: network states a job's factor remembers (a bound on memory; cleared when full)
MEMO_STATES = 4096

#: a job's path as its network model reads it: per crossed tier, (tier, GPUs per group,
#: per-GPU bytes/s)
PathTiers = list[tuple[int, float, float]]


def network_model(
    estimate: TrainingEstimate,
    hw: HardwareSpec,
    tier_names: tuple[str, ...],
    latency_s: tuple[float, ...],
) -> Callable[[list[tuple[int, float, float]], float], float]:
    """The ``network`` rate factor of a job as a function of the tiers it crosses.

    The path (:class:`~sim.perf.network.NetworkPath`) is the NIC at the domain boundary (the
    flat path the job's base rate was estimated on) and then each crossed tier with the job's
    GPUs per group there (the mean over its groups) and its per-GPU share; ``nic_scale`` is the
    share of its GPUs' links that are up (failed leaves or links under it). The factor is the
    step time on the flat path over the step time on this one (tens of microseconds; a state
    seen before is remembered)."""
    full = hw.scaleout_bandwidth_bits_per_s / 8.0
    # the same few states recur (a leaf fails and is repaired, a neighbour starts and ends):
    # over the default year on a rail-optimized fabric, 12,790 calls had 109 distinct inputs
    memo: dict[tuple[tuple[tuple[int, float, float], ...], float], float] = {}

    def factor(tiers: list[tuple[int, float, float]], nic_scale: float = 1.0) -> float:
        key = (tuple(tiers), nic_scale)
        got = memo.get(key)
        if got is None:
            if len(memo) >= MEMO_STATES:
                memo.clear()
            got = memo[key] = _factor(tiers, nic_scale)
        return got

    def _factor(tiers: list[tuple[int, float, float]], nic_scale: float) -> float:
        nic = full * nic_scale
        first = PathTier(gpus_below=hw.domain_gpus, bytes_per_s_per_gpu=nic, name="nic")
        path = NetworkPath(
            (
                first,
                *(
                    PathTier(
                        gpus_below=max(float(hw.domain_gpus), g),
                        bytes_per_s_per_gpu=min(b, nic),
                        latency_s=latency_s[t],
                        name=tier_names[t],
                    )
                    for t, g, b in tiers
                ),
            )
        )
        return min(1.0, estimate.rate_factor_on(path))

    return factor


def max_min_fair(capacity: float, demands: list[float]) -> list[float]:
    """Max-min fair shares of ``capacity`` among flows asking ``demands`` (water filling)."""
    n = len(demands)
    if sum(demands) <= capacity:
        return list(demands)
    out = [0.0] * n
    left = capacity
    order = sorted(range(n), key=lambda i: demands[i])
    for k, i in enumerate(order):
        fair = left / (n - k)
        give = min(demands[i], fair)
        out[i] = give
        left -= give
    return out


class FabricState:
    name = "fabric"

    def __init__(
        self,
        fabric: Fabric,
        fleet: Fleet,
        rec: Recorder,
        now: Callable[[], float],
        degradable: bool = False,
    ) -> None:
        self.fabric = fabric
        self.fleet = fleet
        self.rec = rec
        self.now = now
        self.tiers = fabric.tier_names
        self.domain_group = [np.asarray(g, dtype=np.int64) for g in fabric.domain_group]
        self.parent = [np.asarray(p, dtype=np.int64) for p in fabric.parent]
        self.parent_lists = [p.tolist() for p in self.parent]
        self.unit_list: list[int] = self.domain_group[0].tolist()
        self.uplink = [np.asarray(u, dtype=np.float64) for u in fabric.uplink_bytes_per_s]
        self.downlink = [np.asarray(d, dtype=np.float64) for d in fabric.downlink_bytes_per_s]
        #: the same as lists (scalar reads on the failure path)
        self.uplink_lists: list[list[float]] = [u.tolist() for u in self.uplink]
        self.downlink_lists: list[list[float]] = [d.tolist() for d in self.downlink]
        link = np.asarray(fabric.gpu_link_bytes_per_s, dtype=np.float64)
        #: per-GPU NIC line rate of each hardware type (bytes/s)
        self.rate_of_hw = [
            float(link[ids[0]]) if ids.shape[0] else 0.0
            for ids in (np.flatnonzero(fleet.domain_hw == h) for h in range(len(fleet.gpus_of_hw)))
        ]
        self.unit_tier = self.tiers.index("unit") if "unit" in self.tiers else -1
        self.pod_tier = self.tiers.index("pod") if "pod" in self.tiers else -1
        #: health of each unit's leaves, each pod's spines and each domain's links (1: all up)
        self.unit_health = [1.0] * (len(self.uplink[0]) if self.unit_tier == 0 else 0)
        self.sick_units: set[int] = set()  # units with a leaf down now
        self.pod_health = [1.0] * (len(self.uplink[self.pod_tier]) if self.pod_tier >= 0 else 0)
        #: the units of each pod (a spine failure changes their capacity)
        self.pod_units: list[list[int]] = [[] for _ in self.pod_health]
        if self.unit_tier >= 0 and self.pod_health:
            for u, p in enumerate(self.parent_lists[self.unit_tier]):
                self.pod_units[p].append(u)
        #: the domains with a link down now, with their health (a job's share of its links is
        #: the smallest health among those it holds: O(links down), not O(its domains))
        self.sick_links: dict[int, float] = {}
        #: tiers whose uplinks can bind: finite ones, and the switched tiers when switches fail
        switched = {self.unit_tier, self.pod_tier} - {-1} if degradable else set()
        self.finite = sorted(
            {t for t, u in enumerate(self.uplink) if np.isfinite(u).any()} | switched
        )
        #: running jobs with a network model: {job: [(tier, groups, gpus per group)]} for the
        #: tiers it crosses (possibly none: it is still slowed by failed links under it)
        self.running: dict[Job, list[tuple[int, list[int], list[float]]]] = {}
        #: running jobs by the units and pods of their placement (a switch failure finds the
        #: jobs under it there), and whether a job is filed under all of them
        self.unit_jobs: dict[int, dict[Job, None]] = {}
        self.pod_jobs: dict[int, dict[Job, None]] = {}
        self.filed: dict[Job, bool] = {}
        self.training: Training | None = None
        #: load traces of the tiers that can bind (a non-blocking fabric has none)
        self.ch_load = {
            t: rec.channel(entity_column(FABRIC_TIER, self.tiers[t], "uplink_load"))
            for t in self.finite
        }
        self.loads = [0.0] * len(self.tiers)
        self.recomputes = 0
        #: jobs crossing each group (tier, group) with their demand (bytes/s), and each group's
        #: allocation: (traffic given, capacity counted in the load, {job: bytes/s})
        self.group_jobs: dict[tuple[int, int], dict[Job, float]] = {}
        self.group_alloc: dict[tuple[int, int], tuple[float, float, dict[Job, float]]] = {}
        #: reallocations so far: a job's path read from the allocations stands while this
        #: count, its keys and its groups do (:meth:`_factor`)
        self.allocs = 0
        #: per running job: (the count, its keys and groups, its hardware and size its path
        #: was read at, the path's tiers); keys and groups are compared by identity (both
        #: are replaced when they change, never changed in place)
        self.paths: dict[Job, tuple[int, object, object, int, int, PathTiers]] = {}
        self.used = [0.0] * len(self.tiers)
        self.cap_sum = [0.0] * len(self.tiers)
        self.version = 0  # bumped when a switch or link changes: every factor is stale
        #: per tier, the groups with a finite uplink now
        self.finite_now = [set(np.flatnonzero(np.isfinite(u)).tolist()) for u in self.uplink]
        #: ``pack`` is a topology-aware scheduler and launcher: a job's ranks follow the
        #: fabric, so consecutive ranks share a group and only the shard of a hierarchical
        #: collective crosses each tier. ``spread`` and ``random`` are topology-blind:
        #: consecutive ranks land in different groups, one domain at a time
        #: (docs/performance-model.md, "Network path": rank order matters as much as placement)
        self.ranks_in_order = fabric.placement == "pack"

    @property
    def crossing(self) -> dict[Job, list[tuple[int, list[int], list[float]]]]:
        """The running jobs that cross a tier that can bind."""
        return {j: g for j, g in self.running.items() if g}

    # ------------------------------------------------------------------ placement

    def spans(self, ids: np.ndarray) -> list[int]:
        """Groups the domains ``ids`` touch at each tier (sets for a small job: numpy's unique
        costs more than the work below a few hundred domains)."""
        if ids.shape[0] <= SMALL_GANG:
            groups = set(self.domain_group[0][ids].tolist())
            out = [len(groups)]
            for parent in self.parent_lists:
                groups = {parent[g] for g in groups}
                out.append(len(groups))
            return out
        units = np.unique(self.domain_group[0][ids])
        out = [int(units.shape[0])]
        arr = units
        for parent in self.parent:
            arr = np.unique(parent[arr])
            out.append(int(arr.shape[0]))
        return out

    def _place_small(self, job: Job, ids: np.ndarray) -> None:
        """:meth:`spans` and, for a job with a network model, its units, pods and groups
        (:meth:`_groups`), in one pass over a small gang's domains: its domains per unit
        counted, then per group tier by tier from those counts."""
        # (its units read in numpy: a small array of them, not a Python int per domain)
        units = self.domain_group[0][ids].tolist()
        if job.network is None:  # its spans only: sets of groups
            groups = set(units)
            n = len(groups)
            spans = [n]
            for parent in self.parent_lists:
                if n > 1:  # (inside one group, it is inside one group of every tier above)
                    groups = set(map(parent.__getitem__, groups))
                    n = len(groups)
                spans.append(n)
            job.spans = spans
            return
        counts: dict[int, int] = Counter(units)
        per_tier = [counts]
        for parent in self.parent_lists:
            up: dict[int, int] = {}
            for g, n in counts.items():
                p = parent[g]
                up[p] = up.get(p, 0) + n
            per_tier.append(up)
            counts = up
        job.spans = [len(c) for c in per_tier]
        job.net_units = sorted(per_tier[0])
        if self.parent:
            job.net_pods_set = set(per_tier[1])
        gpus = self.fleet.gpus_of_hw[job.hw]
        out = []
        for t in self.finite:
            if len(per_tier[t]) > 1:
                at = per_tier[t]
                gs = sorted(at)
                out.append((t, gs, [float(at[g] * gpus) for g in gs]))
        job.net_groups = out

    def activity(self, job: Job, sign: int) -> None:
        """``job`` starts (+1) or stops (-1) running: update the shares where it changes them.

        Its spans and groups are found when it was given a new gang (``job.placed`` set by
        :meth:`~sim.engine.training.Training.start`): O(its domains) in numpy, once per
        placement. A restart in place after a failure (one replacement domain among its
        domains) keeps the groups of its placement (the replacement comes from wherever the
        placement policy finds one; the approximation is one domain of the gang).

        Only groups whose uplink is finite now are shared (a healthy non-blocking group gives
        every job its full rate). A share at a group depends only on the jobs at that group,
        so a start or stop changes the factors of the job and of its neighbours (the jobs
        sharing one of its finite groups) only; a job with no neighbours that restarts with
        nothing changed keeps its factor, at O(its finite groups)."""
        if sign > 0:
            if job in self.running and not job.placed:
                return  # a restart in place: it kept its share through the restart
            if job.placed:
                job.placed = False
                # a view of its domains (no copy): read here, never kept
                ids = job.held.peek(job.held.size)
                if ids.shape[0] > SMALL_GANG:
                    job.spans = self.spans(ids)
                    if job.network is not None:
                        units = np.unique(self.domain_group[0][ids])
                        job.net_units = units.tolist()
                        if self.parent:
                            job.net_pods_set = set(np.unique(self.parent[0][units]).tolist())
                        job.net_groups = self._groups(job, ids)
                else:
                    self._place_small(job, ids)
                if job.network is not None:
                    job.net_units_set = set(job.net_units)
                    job.net_version = -1  # a new placement: its keys and factor are to be found
                    self.filed[job] = False
            if job.network is None:
                return
            self.running[job] = job.net_groups
            if not self.filed.get(job, False):
                self._file(job)
            if job.net_version != self.version:
                job.net_keys = self._keys(job)
            for key, demand in job.net_keys:
                self.group_jobs.setdefault(key, {})[job] = demand
            near = self._neighbours(job)
            if near or job.net_version != self.version:
                self._update({job, *near}, [k for k, _ in job.net_keys])
            elif job.net_keys:
                self._update(set(), [k for k, _ in job.net_keys])
        else:
            self._leave(job)

    def _leave(self, job: Job) -> None:
        """``job`` stops using its groups: the jobs left there share them again."""
        if self.running.pop(job, None) is None:
            return
        self.paths.pop(job, None)
        # its keys and factor were current while it ran (a change under it rekeyed it at once):
        # they are as of now, and stale if a switch or link changes before it runs again
        job.net_version = self.version
        for key, _ in job.net_keys:
            at = self.group_jobs.get(key)
            if at is not None:
                at.pop(job, None)
        if job.net_keys:
            self._update(self._neighbours(job), [k for k, _ in job.net_keys])

    def moved(self, job: Job, new: int) -> None:
        """``job`` restarts in place on replacement domain ``new``. Where the replacement lies
        outside the units of its placement and the job is small (at most
        :data:`REPLACE_EXACT_DOMAINS` domains, where one domain is a visible share), its spans,
        groups and share are found again at its restart; a larger job keeps those of its
        placement (one domain among hundreds, an approximation)."""
        if job.domains > REPLACE_EXACT_DOMAINS or not job.spans:
            return
        if self.unit_list[new] in job.net_units_set:
            return
        job.placed = True
        self._leave(job)  # it leaves its old groups now

    def _keys(self, job: Job) -> list[tuple[tuple[int, int], float]]:
        """The groups ``job`` crosses whose uplink is finite now, with its demand there."""
        rate = self.rate_of_hw[job.hw]
        out: list[tuple[tuple[int, int], float]] = []
        for t, gs, gp in job.net_groups:
            finite = self.finite_now[t]
            if finite:
                out.extend([((t, g), n * rate) for g, n in zip(gs, gp, strict=True) if g in finite])
        return out

    def _refresh_finite(self, t: int, groups: list[int]) -> None:
        """Whether each of ``groups`` of tier ``t`` has a finite uplink now."""
        finite = self.finite_now[t]
        for g in groups:
            if math.isfinite(self._capacity(t, g)):
                finite.add(g)
            else:
                finite.discard(g)

    def _neighbours(self, job: Job) -> set[Job]:
        out: set[Job] = set()
        for key, _ in job.net_keys:
            at = self.group_jobs.get(key)
            if at:
                out.update(at)
        out.discard(job)
        return out

    def _groups(self, job: Job, ids: np.ndarray) -> list[tuple[int, list[int], list[float]]]:
        gpus = self.fleet.gpus_of_hw[job.hw]
        out = []
        for t in self.finite:
            g = self.domain_group[t][ids]
            uniq, counts = np.unique(g, return_counts=True)
            if uniq.shape[0] > 1:
                out.append((t, uniq.tolist(), (counts * gpus).astype(np.float64).tolist()))
        return out

    # ------------------------------------------------------------------ shares

    def _capacity(self, t: int, g: int) -> float:
        """Uplink capacity of group ``g`` of tier ``t`` now: its base (the downlink where the
        tier is non-blocking) times the share of its switches that are up."""
        health = 1.0
        if t == self.unit_tier and self.unit_health:
            health = self.unit_health[g]
            if self.pod_health:
                health *= self.pod_health[self.parent_lists[t][g]]
        elif t == self.pod_tier and self.pod_health:
            health = self.pod_health[g]
        cap = self.uplink_lists[t][g]
        if health >= 1.0:
            return cap
        if not math.isfinite(cap):
            cap = self.downlink_lists[t][g]
        return cap * health

    def _nic_scale(self, job: Job) -> float:
        """Share of its GPUs' links a job has: its units' leaves and its domains' links."""
        scale = 1.0
        if self.sick_units:  # (a few units at a time: looked up in its units, not crossed)
            health, units = self.unit_health, job.net_units_set
            for u in self.sick_units:
                if u in units and health[u] < scale:
                    scale = health[u]
        if self.sick_links:
            holder, me = self.fleet.holder_of, job.index
            for d, h in self.sick_links.items():
                if h < scale and holder[d] == me:  # (most links down share one health)
                    scale = h
        return scale

    def _allocate(self, key: tuple[int, int]) -> None:
        """Max-min fair shares of group ``key``'s uplink among the jobs crossing it now; the
        tier's load totals follow."""
        t = key[0]
        self.allocs += 1
        old = self.group_alloc.pop(key, None)
        if old is not None:
            used, cap, _ = old
            self.used[t] -= used
            self.cap_sum[t] -= cap
        at = self.group_jobs.get(key)
        if not at:
            self.group_jobs.pop(key, None)
            return
        cap = self._capacity(*key)
        demands = list(at.values())
        if math.isfinite(cap):
            got = max_min_fair(cap, demands)
            offered = sum(demands)
            self.used[t] += offered
            self.cap_sum[t] += cap
            self.group_alloc[key] = (offered, cap, dict(zip(at, got, strict=True)))
        else:
            self.group_alloc[key] = (0.0, 0.0, dict(at))

    def _update(self, jobs: set[Job], keys: list[tuple[int, int]]) -> None:
        """Reallocate the groups ``keys``, then set the factors of ``jobs``."""
        self.recomputes += 1
        # only the groups ``keys`` changed (a job came or went there, or their capacity did):
        # the other groups of ``jobs`` keep their shares, which their factors read
        for key in dict.fromkeys(keys):
            self._allocate(key)
        for job in jobs:
            self._factor(job)
        now = self.now()
        for t in self.finite:
            load = self.used[t] / self.cap_sum[t] if self.cap_sum[t] > 1e-9 else 0.0
            if abs(load - self.loads[t]) > 1e-12:
                self.loads[t] = load
                self.ch_load[t].set(now, load)

    def _factor(self, job: Job) -> None:
        """``job``'s network factor from its shares (per tier the smallest over its groups;
        a group with an infinite uplink gives the full rate). The path read from the shares
        is kept while no group is reallocated and its keys stand: a link failing or coming
        back under it (two thirds of the calls in the rail-optimized year, on a job of 2,048
        domains) changes only its NIC share, at O(links down), not O(its keys)."""
        job.net_version = self.version
        rate = self.rate_of_hw[job.hw]
        nic = self._nic_scale(job)
        groups = job.net_groups
        if not groups and nic == 1.0:
            self._set(job, 1.0)
            return
        keys = job.net_keys
        got = self.paths.get(job)
        if (
            got is not None
            and got[0] == self.allocs
            and got[1] is keys
            and got[2] is groups
            and got[3] == job.hw
            and got[4] == job.domains
        ):
            # nothing was reallocated since its path was read (a link under it failed or
            # came back: only its ``nic`` changed): the same tiers
            tiers = got[5]
        else:
            per_tier: dict[int, float] = {}
            group_alloc = self.group_alloc
            for key, demand in keys:
                alloc = group_alloc.get(key)
                if alloc is not None and alloc[1] > 0.0:
                    per_gpu = alloc[2][job] / demand * rate
                    t = key[0]
                    per_tier[t] = min(per_tier.get(t, rate), per_gpu)
            dg = self.fleet.gpus_of_hw[job.hw]
            gpus = job.domains * dg
            tiers = [
                (t, gpus / len(gs) if self.ranks_in_order else dg, per_tier.get(t, rate))
                for t, gs, _ in groups
            ]
            if job in self.running:
                self.paths[job] = (self.allocs, keys, groups, job.hw, job.domains, tiers)
        assert job.network is not None
        contended = job.network(tiers, 1.0)
        self._set(job, contended)
        # failed leaves and links under the job: its `degraded` factor (the rest is `network`)
        degraded = job.network(tiers, nic) / contended if nic < 1.0 else 1.0
        assert self.training is not None
        self.training.set_rate_factor(job, "degraded", min(1.0, degraded))

    def _set(self, job: Job, factor: float) -> None:
        """Set ``job``'s network factor (a job that is not running yet takes it into its run;
        nothing happens when it is unchanged)."""
        assert self.training is not None
        self.training.set_rate_factor(job, "network", factor)

    # ------------------------------------------------------------------ failures

    def degrade(self, kind: str, index: int, delta: float) -> None:
        """A switch or link failed (``delta`` < 0) or came back (> 0): ``kind`` is ``leaf``
        (unit ``index``), ``spine`` (pod ``index``) or ``link`` (domain ``index``); the
        shares are recomputed. Health never falls below a trickle (0.1%), so a unit or pod
        that lost every switch is cut off in effect without dividing by zero."""
        if kind == "leaf":
            self.unit_health[index] = h = max(1e-3, min(1.0, self.unit_health[index] + delta))
            if h < 1.0:
                self.sick_units.add(index)
            else:
                self.sick_units.discard(index)
            changed = {(self.unit_tier, index)}
            self._refresh_finite(self.unit_tier, [index])
        elif kind == "spine":
            self.pod_health[index] = max(1e-3, min(1.0, self.pod_health[index] + delta))
            changed = {(self.pod_tier, index)}
            self._refresh_finite(self.pod_tier, [index])
            if self.unit_tier >= 0:
                units = self.pod_units[index]
                changed.update((self.unit_tier, u) for u in units)
                self._refresh_finite(self.unit_tier, units)
        else:
            # a GPU's link: no group's capacity changes, only the holder's share of its own
            # links (its ``degraded`` factor), so its shares stay and nothing else is stale
            h = max(1e-3, min(1.0, self.sick_links.get(index, 1.0) + delta))
            if h < 1.0:
                self.sick_links[index] = h
            else:
                self.sick_links.pop(index, None)
            for job in self._touching(kind, index):
                self._factor(job)
            h = self.fleet.holder_of[index]
            w = self.fleet.holders[h] if h >= 0 else None
            if isinstance(w, Job) and w.network is not None and w not in self.running:
                # interrupted by the failure (it left before the link went down): its factor
                # is found again when it restarts, with the link down
                w.net_version = -1
            return
        # the jobs that are not running see the change when they run again (their version is
        # behind); of the running ones only those under the switch have groups that changed
        self.version += 1
        touched = self._touching(kind, index)
        if touched:
            self._rekey(touched, changed)

    def _file(self, job: Job) -> None:
        """File ``job`` under the units and pods of its placement (again: a job found there
        while it was not running was taken out of that one group only)."""
        self.filed[job] = True
        for groups, filed in ((job.net_units, self.unit_jobs), (job.net_pods_set, self.pod_jobs)):
            for g in groups:
                at = filed.get(g)
                if at is None:
                    filed[g] = at = {}  # (not setdefault: no dict made per group per start)
                at[job] = None

    def _touching(self, kind: str, index: int) -> set[Job]:
        """The running jobs with domains under the unit, pod or domain that changed: those
        filed there (O(jobs placed there), not O(running jobs)); a job filed there that is not
        running is taken out (it is filed again when it runs)."""
        if kind in ("leaf", "spine"):
            at = (self.unit_jobs if kind == "leaf" else self.pod_jobs).get(index)
            if not at:
                return set()
            leaf = kind == "leaf"
            out = set()
            for j in list(at):
                if index in (j.net_units_set if leaf else j.net_pods_set):
                    if j in self.running:
                        out.add(j)
                        continue
                    self.filed[j] = False
                del at[j]  # not running, or filed under an earlier placement
            return out
        h = self.fleet.holder_of[index]
        w = self.fleet.holders[h] if h >= 0 else None
        return {w} if isinstance(w, Job) and w in self.running else set()

    def _rekey(self, jobs: set[Job], changed: set[tuple[int, int]]) -> None:
        """``jobs``' finite groups again (the capacity of the groups ``changed`` changed under
        them), and their shares. Only the changed groups are reallocated: the others keep
        their jobs, demands and capacity, so their shares stand."""
        keys: set[tuple[int, int]] = set()
        finite_now = self.finite_now
        for job in jobs:
            old = {key for key, _ in job.net_keys if key in changed}
            # its demand at the changed groups it crosses whose uplink is finite now (the
            # others keep their keys: O(its keys), not O(its groups))
            rate = self.rate_of_hw[job.hw]
            new: dict[tuple[int, int], float] = {}
            for t, gs, gp in job.net_groups:
                for key in changed:
                    if key[0] == t and key[1] in finite_now[t]:
                        i = bisect_left(gs, key[1])  # (its groups are sorted)
                        if i < len(gs) and gs[i] == key[1]:
                            new[key] = gp[i] * rate
            if old or new:
                kept = [kd for kd in job.net_keys if kd[0] not in changed]
                job.net_keys = kept + list(new.items())
            for key in old - new.keys():
                at = self.group_jobs.get(key)
                if at is not None:
                    at.pop(job, None)
            for key, demand in new.items():
                self.group_jobs.setdefault(key, {})[job] = demand
            keys |= old
            keys.update(new)
        self._update(jobs, list(keys))

    def stats(self) -> dict[str, Any]:
        return {"recomputes": self.recomputes}

    def placement_rows(self, hall_names: tuple[str, ...]) -> dict[str, Any]:
        """Columns of ``fabric.parquet`` (:data:`sim.contract.FABRIC_COLUMNS`): one row per
        group of the innermost tier, where it is and who holds most of its domains now."""
        fleet = self.fleet
        unit = self.domain_group[0]
        n = int(self.uplink[0].shape[0])
        tier_of = {name: t for t, name in enumerate(self.tiers)}
        cols: dict[str, Any] = {"unit": np.arange(n, dtype=np.int64)}
        for name in ("pod", "building", "site"):
            t = tier_of.get(name)
            if t is None:
                cols[name] = np.full(n, -1, dtype=np.int64)
                continue
            g = np.arange(n, dtype=np.int64)
            for p in self.parent[:t]:
                g = p[g]
            cols[name] = g
        order = np.argsort(unit, kind="stable")
        bounds = np.searchsorted(unit[order], np.arange(n))
        first = order[np.minimum(bounds, order.shape[0] - 1)]
        cols["hall"] = np.asarray(hall_names, dtype=object)[fleet.domain_hall[first]]
        cols["domains"] = np.bincount(unit, minlength=n)
        cols["free"] = np.bincount(unit, weights=fleet.state == FREE, minlength=n).astype(np.int64)
        cols["failed"] = np.bincount(unit, weights=fleet.state == FAILED, minlength=n).astype(
            np.int64
        )
        holder = fleet.holder
        held = holder >= 0
        names = np.array([w.name for w in fleet.holders] + [""], dtype=object)
        kinds = np.array([w.kind for w in fleet.holders] + [""], dtype=object)
        # the main holder of each unit: the most frequent (unit, holder) pair
        top = np.full(n, -1, dtype=np.int64)
        count = np.zeros(n, dtype=np.int64)
        if held.any():
            pairs = unit[held] * (len(fleet.holders) + 1) + holder[held]
            uniq, c = np.unique(pairs, return_counts=True)
            u = uniq // (len(fleet.holders) + 1)
            h = uniq % (len(fleet.holders) + 1)
            order = np.lexsort((-c, u))  # per unit, the largest count first
            u, h, c = u[order], h[order], c[order]
            firsts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
            top[u[firsts]] = h[firsts]
            count[u[firsts]] = c[firsts]
        cols["holder"] = names[top]
        cols["holder_workload"] = kinds[top]
        cols["held"] = count
        return cols


class FabricFailures:
    """Switch and link failures (component ``fabric``; rates in
    :class:`~sim.config.schema.NetworkFailures`): three superposed Poisson streams, a failure
    picking its leaf's unit or its spine's pod with probability proportional to the domains in
    it (units and pods of one fabric have equal switch counts per domain) and a link's domain
    uniformly. Effects by scope (the failure's switch or link is out until its repair):

    * leaf: the unit's GPUs keep ``1 - 1/leaves`` of their links; its running jobs are
      interrupted (NCCL times out) and restart in place; a unit whose last leaf fails has its
      domains taken out of service (they fail and are repaired with the switch);
    * spine: the pod's uplink capacities fall by ``1/spines``; jobs are slowed, not stopped;
    * link: the domain keeps ``1 - 1/GPUs`` of its links; the job holding it is interrupted.
    """

    def __init__(
        self,
        env: Any,
        cfg: NetworkFailures,
        state: FabricState,
        training: Training,
        reliability: Reliability,
        rec: Recorder,
        rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.state = state
        self.training = training
        self.reliability = reliability
        self.rec = rec
        self.rng = rng
        fab = state.fabric
        fleet = state.fleet
        self.n_units = len(state.unit_health)
        self.n_pods = len(state.pod_health)
        leaves = sum(fab.switches.get("unit", {}).values())
        spines = sum(fab.switches.get("pod", {}).values())
        self.leaves_per_unit = max(1, round(leaves / self.n_units)) if self.n_units else 1
        self.spines_per_pod = max(1, round(spines / self.n_pods)) if self.n_pods else 1
        year = 365.25 * 86_400.0
        gpus = float(np.asarray(fab.domain_gpus).sum())
        self.rates = {
            "leaf": cfg.switch_annual_failure_rate * leaves / year if self.n_units else 0.0,
            "spine": cfg.switch_annual_failure_rate * spines / year if self.n_pods else 0.0,
            "link": cfg.link_failures_per_1000_gpu_years / 1000.0 * gpus / year,
        }
        self.counts = dict.fromkeys(self.rates, 0)
        unit = state.domain_group[0]
        # each unit's domains: a contiguous range (groups are ranges of domain indices)
        self.unit_first = np.searchsorted(unit, np.arange(max(self.n_units, 1))).tolist()
        self.unit_end = np.searchsorted(unit, np.arange(max(self.n_units, 1)), "right").tolist()
        self.fleet = fleet

    def start(self) -> None:
        for kind, rate in self.rates.items():
            if rate > 0:
                self._arm(kind)

    def _arm(self, kind: str) -> None:
        if self.rates[kind] <= 0:
            return
        gap = float(self.rng.exponential(1.0 / self.rates[kind]))
        later(self.env, gap, self._fail, kind)

    def _fail(self, call: Call) -> None:
        kind = call.value
        self.counts[kind] += 1
        st = self.state
        d = self._pick()
        repair = draw_duration(self.cfg.repair_time, self.rng)
        now = self.env.now
        power = self.fleet.power
        power.batch()
        if kind == "leaf":
            u = st.unit_list[d]
            index, delta = u, -1.0 / self.leaves_per_unit
            self.rec.event(now, EventKind.NETWORK_FAILURE, f"unit {u}", "", d, detail="leaf")
            if st.unit_health[u] + delta <= 1e-9:  # its last leaf: the unit is cut off
                self._cut_off(u, repair)
            else:
                self._interrupt(range(self.unit_first[u], self.unit_end[u]))
        elif kind == "spine":
            index = st.parent_lists[0][st.unit_list[d]]
            delta = -1.0 / self.spines_per_pod
            self.rec.event(now, EventKind.NETWORK_FAILURE, f"pod {index}", "", d, detail="spine")
        else:
            index, delta = d, -1.0 / self.fleet.gpus_of_hw[self.fleet.hw_of[d]]
            self.rec.event(now, EventKind.NETWORK_FAILURE, f"domain {d}", "", d, detail="link")
            self._interrupt((d,))
        st.degrade(kind, index, delta)
        power.flush(now)
        later(self.env, repair, self._repair, (kind, index, -delta))
        self._arm(kind)

    def _pick(self) -> int:
        """A domain, uniformly: the failed switch is its unit's leaf or its pod's spine."""
        return int(self.rng.integers(0, self.fleet.n))

    def _repair(self, call: Call) -> None:
        kind, index, delta = call.value
        now = self.env.now
        self.rec.event(now, EventKind.NETWORK_REPAIR, f"{kind} {index}", "", -1, detail=kind)
        power = self.fleet.power
        power.batch()
        self.state.degrade(kind, index, delta)
        power.flush(now)

    def _interrupt(self, domains: Any) -> None:
        """The running jobs holding any of ``domains`` time out and restart in place."""
        fleet = self.fleet
        seen: set[int] = set()
        for d in domains:
            h = fleet.holder_of[d]
            if h < 0 or h in seen:
                continue
            seen.add(h)
            w = fleet.holders[h]
            if isinstance(w, Job):
                self.training.network_interrupt(w, d)

    def _cut_off(self, u: int, repair_s: float) -> None:
        """Every domain of unit ``u`` lost its last leaf: out of service until the repair."""
        fleet = self.fleet
        for d in range(self.unit_first[u], self.unit_end[u]):
            if fleet.state_of[d] != FAILED:
                self.reliability.fail(d, repair_s)

    def stats(self) -> dict[str, Any]:
        return {
            "leaf_failures": self.counts["leaf"],
            "spine_failures": self.counts["spine"],
            "link_failures": self.counts["link"],
            "expected_per_day": {k: r * 86_400.0 for k, r in self.rates.items()},
        }
