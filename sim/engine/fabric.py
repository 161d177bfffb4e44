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
(``span_<tier>s`` in ``jobs.parquet``); per tier, ``fabric.<tier>.uplink_load``: the traffic the
crossing jobs are given over the capacity of the uplinks they cross.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.contract import FABRIC_TIER, entity_column
from sim.perf.network import NetworkPath, PathTier
from sim.record import Recorder

if TYPE_CHECKING:
    from sim.catalog.hardware import HardwareSpec
    from sim.engine.fleet import Fleet
    from sim.engine.training import Training
    from sim.engine.workloads import Job
    from sim.network import Fabric
    from sim.perf.training import TrainingEstimate

__all__ = ["FabricState", "max_min_fair", "network_model"]


def network_model(
    estimate: TrainingEstimate,
    hw: HardwareSpec,
    tier_names: tuple[str, ...],
    latency_s: tuple[float, ...],
) -> Callable[[list[tuple[int, float, float]]], float]:
    """The ``network`` rate factor of a job as a function of the tiers it crosses.

    The path (:class:`~sim.perf.network.NetworkPath`) is the NIC at the domain boundary (the
    flat path the job's base rate was estimated on) and then each crossed tier with the job's
    GPUs per group there (the mean over its groups) and its per-GPU share; the factor is the
    step time on the flat path over the step time on this one (tens of microseconds)."""
    nic = hw.scaleout_bandwidth_bits_per_s / 8.0
    first = PathTier(gpus_below=hw.domain_gpus, bytes_per_s_per_gpu=nic, name="nic")

    def factor(tiers: list[tuple[int, float, float]]) -> float:
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
    ) -> None:
        self.fabric = fabric
        self.fleet = fleet
        self.now = now
        self.tiers = fabric.tier_names
        self.domain_group = [np.asarray(g, dtype=np.int64) for g in fabric.domain_group]
        self.parent = [np.asarray(p, dtype=np.int64) for p in fabric.parent]
        self.uplink = [np.asarray(u, dtype=np.float64) for u in fabric.uplink_bytes_per_s]
        link = np.asarray(fabric.gpu_link_bytes_per_s, dtype=np.float64)
        #: per-GPU NIC line rate of each hardware type (bytes/s)
        self.rate_of_hw = [
            float(link[ids[0]]) if ids.shape[0] else 0.0
            for ids in (np.flatnonzero(fleet.domain_hw == h) for h in range(len(fleet.gpus_of_hw)))
        ]
        #: tiers where some uplink is finite: only there can a job be slowed
        self.finite = [t for t, u in enumerate(self.uplink) if np.isfinite(u).any()]
        #: running jobs that cross a finite tier, with their groups: {job: [(tier, groups,
        #: gpus per group)]}
        self.crossing: dict[Job, list[tuple[int, list[int], list[float]]]] = {}
        self.training: Training | None = None
        #: load traces of the tiers that can bind (a non-blocking fabric has none)
        self.ch_load = {
            t: rec.channel(entity_column(FABRIC_TIER, self.tiers[t], "uplink_load"))
            for t in self.finite
        }
        self.loads = [0.0] * len(self.tiers)
        self.recomputes = 0

    # ------------------------------------------------------------------ placement

    def spans(self, ids: np.ndarray) -> list[int]:
        """Groups the domains ``ids`` touch at each tier."""
        units = np.unique(self.domain_group[0][ids])
        out = [int(units.shape[0])]
        groups = units
        for parent in self.parent:
            groups = np.unique(parent[groups])
            out.append(int(groups.shape[0]))
        return out

    def activity(self, job: Job, sign: int) -> None:
        """``job`` starts (+1) or stops (-1) running: update the shares of the jobs crossing.

        Its spans and groups are found when it was given a new gang (``job.placed`` set by
        :meth:`~sim.engine.training.Training.start`): O(its domains) in numpy, once per
        placement. A restart in place after a failure (one replacement domain among its
        domains) keeps the groups of its placement (the replacement comes from wherever the
        placement policy finds one; the approximation is one domain of the gang)."""
        if sign > 0:
            if job.placed:
                job.placed = False
                ids = job.held.all()
                job.spans = self.spans(ids)
                job.net_groups = self._groups(job, ids) if job.network is not None else []
            if job.network is None:
                return
            if not job.net_groups:
                self._set(job, 1.0)
                return
            self.crossing[job] = job.net_groups
        elif self.crossing.pop(job, None) is None:
            return
        self._recompute()

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

    def _recompute(self) -> None:
        """Max-min fair shares at every group crossed, then each crossing job's path."""
        self.recomputes += 1
        flows: dict[tuple[int, int], list[tuple[Job, float]]] = {}
        for job, groups in self.crossing.items():
            rate = self.rate_of_hw[job.hw]
            for t, gs, gp in groups:
                for g, n in zip(gs, gp, strict=True):
                    flows.setdefault((t, g), []).append((job, n * rate))
        share: dict[tuple[Job, int], float] = {}  # per-GPU bytes/s at a tier, slowest group
        used = [0.0] * len(self.tiers)
        cap_sum = [0.0] * len(self.tiers)
        for (t, g), fl in flows.items():
            cap = float(self.uplink[t][g])
            got = max_min_fair(cap, [d for _, d in fl]) if np.isfinite(cap) else [d for _, d in fl]
            if np.isfinite(cap):
                used[t] += sum(got)
                cap_sum[t] += cap
            for (job, d), a in zip(fl, got, strict=True):
                rate = self.rate_of_hw[job.hw]
                per_gpu = a / (d / rate)
                key = (job, t)
                share[key] = min(share.get(key, per_gpu), per_gpu)
        for job, groups in self.crossing.items():
            rate = self.rate_of_hw[job.hw]
            gpus = job.domains * self.fleet.gpus_of_hw[job.hw]
            tiers = []
            for t, gs, _ in groups:
                tiers.append((t, gpus / len(gs), share.get((job, t), rate)))
            assert job.network is not None
            self._set(job, job.network(tiers))
        now = self.now()
        for t in self.finite:
            load = used[t] / cap_sum[t] if cap_sum[t] > 0 else 0.0
            if load != self.loads[t]:
                self.loads[t] = load
                self.ch_load[t].set(now, load)

    def _set(self, job: Job, factor: float) -> None:
        """Set ``job``'s network factor (a job that is not running yet takes it into its run;
        nothing happens when it is unchanged)."""
        assert self.training is not None
        self.training.set_rate_factor(job, "network", factor)

    def stats(self) -> dict[str, Any]:
        return {"recomputes": self.recomputes}

    def placement_rows(self, hall_names: tuple[str, ...]) -> dict[str, Any]:
        """Columns of ``fabric.parquet`` (:data:`sim.contract.FABRIC_COLUMNS`): one row per
        group of the innermost tier, where it is and who holds most of its domains now."""
        from sim.engine.fleet import FAILED, FREE

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
