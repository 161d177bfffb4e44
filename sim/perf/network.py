"""A job's network path beyond its scale-up domain, and the collectives' times over it.

The engine's fabric (unit -> pod -> building -> site) and its placement decide, for each running
job, how many consecutive ranks stay inside one group of each tier and what share of each
tier's uplink the job gets. :class:`NetworkPath` carries exactly that, innermost tier first;
the functions here turn a communication group (:class:`RankGroup`: its ranks and their strides
in rank order) and a path into seconds.

Units: GPUs, bytes, bytes/s per GPU in one direction at *line rate* (the model applies
``SCALEOUT_EFFICIENCY``, as for the NIC), seconds.

Algorithms (docs/performance-model.md, "Network path"; network-and-serving.md A3, A4):

* A group whose span fits in one scale-up domain uses NVLink, as before.
* Otherwise a **hierarchical** all-gather / reduce-scatter: a ring at the NIC rate among the
  group's ranks inside the innermost crossed tier's group; then, across each crossed tier, only
  the shard (``bytes / ranks below``) crosses, among the groups of that tier, at the tier's
  per-GPU share (the slow link is used once per collective, as NCCL's hierarchical all-reduce
  and NeMo's multi-datacentre reduce-scatter -> all-reduce -> all-gather do). Stage ``j`` going
  from ``r_lo`` to ``r_hi`` ranks costs ``(1/r_lo - 1/r_hi) x bytes / rate``; the stages add up
  to the flat ``(n - 1) / n x bytes`` when every rate is the NIC's, so the flat path is today's
  ring. Each crossed tier adds its latency once per ring step across it.
* **All-to-all** cannot be done hierarchically (every rank needs a different piece from every
  other). We take the bottleneck link: ``max`` of ``(n - 1) / n x bytes`` at the NIC rate and,
  per crossed tier, the share of destinations outside the tier's group ``(n - r_below) / n x
  bytes`` at that tier's share. That is exact for a fluid fabric when the links run at once;
  when few ranks share a group it equals "everything at the slowest crossed tier".
* **Point-to-point** along a chain (pipeline stages, the context-parallel ring): the slowest
  crossed link. Only the boundary stage of a run of consecutive ranks crosses a tier, so its
  GPUs get ``share x gpus_below / stride`` (capped at the NIC), where ``share`` is the per-GPU
  rate with all of the job's GPUs in the group sending.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from sim.catalog.hardware import HardwareSpec
from sim.perf import calibration as cal
from sim.perf.common import PerfError, scaleup_bytes_per_s

__all__ = [
    "FIBRE_LATENCY_S_PER_M",
    "NetworkPath",
    "PathTier",
    "RankGroup",
    "all_reduce_time_s",
    "all_to_all_time_s",
    "fibre_latency_s",
    "gather_time_s",
    "p2p_time_s",
]

# Light in glass: ~5 us per km one way (hardware.md section 5, physics).
FIBRE_LATENCY_S_PER_M: Final = 5e-9


def fibre_latency_s(distance_m: float) -> float:
    """One-way propagation delay of ``distance_m`` metres of fibre, seconds."""
    return distance_m * FIBRE_LATENCY_S_PER_M


@dataclass(frozen=True, slots=True)
class PathTier:
    """One tier of a job's path beyond its scale-up domain (a unit, pod, building, site).

    ``gpus_below``: the number of consecutive ranks of the job that stay inside one group of
    this tier before the tier must be crossed. With packed placement it is the job's GPUs per
    group of the tier (a full group; a last, partial group gives the same collective time when
    its GPUs get the larger uplink share); with scattered placement it is the run of
    consecutive ranks (in domain order) that share a group, down to one domain. A fraction
    (the mean run: job GPUs / runs) is accepted.

    ``bytes_per_s_per_gpu``: what one GPU gets, at line rate, when all of the job's GPUs in
    the group send across this tier's uplink at once: the job's fair share of the uplink
    divided by its GPUs in the group, capped at the NIC. Over uneven groups, the smallest
    (the slowest group holds a synchronous collective back).

    ``latency_s``: one-way latency added by crossing the tier (switch hops, fibre at 5 us/km).
    """

    gpus_below: float
    bytes_per_s_per_gpu: float
    latency_s: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        label = f"network tier {self.name!r}" if self.name else "network tier"
        if not (self.gpus_below >= 1 and math.isfinite(self.gpus_below)):
            raise PerfError(f"{label}: gpus_below must be at least 1 (got {self.gpus_below})")
        if not (self.bytes_per_s_per_gpu > 0 and math.isfinite(self.bytes_per_s_per_gpu)):
            raise PerfError(
                f"{label}: bytes_per_s_per_gpu must be positive (got {self.bytes_per_s_per_gpu})"
            )
        if not (self.latency_s >= 0 and math.isfinite(self.latency_s)):
            raise PerfError(f"{label}: latency_s must be >= 0 (got {self.latency_s})")


@dataclass(frozen=True, slots=True)
class NetworkPath:
    """The tiers a job's traffic can cross beyond its scale-up domain, innermost first.

    Beyond the domain every GPU has its own NIC (rail-optimized): traffic that crosses no tier
    of the path runs at the NIC rate. :meth:`flat` is a non-blocking fabric: one tier at the
    domain boundary at the full NIC rate, the model's behaviour before paths existed.
    """

    tiers: tuple[PathTier, ...] = ()

    def __post_init__(self) -> None:
        for inner, outer in zip(self.tiers, self.tiers[1:], strict=False):
            if outer.gpus_below < inner.gpus_below:
                raise PerfError(
                    "network path tiers must be innermost first: gpus_below"
                    f" {outer.gpus_below} ({outer.name or 'tier'}) after {inner.gpus_below}"
                    f" ({inner.name or 'tier'})"
                )

    @classmethod
    def flat(cls, hw: HardwareSpec) -> NetworkPath:
        """A non-blocking fabric: leaving the domain costs the NIC, and nothing more."""
        nic = hw.scaleout_bandwidth_bits_per_s / 8.0
        return cls((PathTier(gpus_below=hw.domain_gpus, bytes_per_s_per_gpu=nic, name="nic"),))

    def describe(self) -> str:
        """One line per tier, e.g. ``pod: 3072 GPUs below, 57.1 Gb/s per GPU, 1 us``."""
        return "; ".join(
            f"{t.name or 'tier'}: {t.gpus_below:g} GPUs below,"
            f" {t.bytes_per_s_per_gpu * 8 / 1e9:.3g} Gb/s per GPU, {t.latency_s * 1e6:.3g} us"
            for t in self.tiers
        )


@dataclass(frozen=True, slots=True)
class RankGroup:
    """A communication group: ranks along one or more parallel dimensions.

    ``dims`` holds ``(size, stride)`` per dimension, innermost first, with the stride in GPUs
    of rank order (TP, CP, EP, PP, DP innermost first). A data-parallel group over ``dp`` and
    ``cp`` is ``((cp, tp), (dp, tp cp pp))``.
    """

    dims: tuple[tuple[int, int], ...]

    @classmethod
    def strided(cls, size: int, stride: int = 1) -> RankGroup:
        return cls(((size, stride),))

    @property
    def ranks(self) -> int:
        return math.prod(size for size, _ in self.dims)

    @property
    def span(self) -> int:
        """Consecutive GPUs one instance of the group is laid out over.

        A dimension of size 1 keeps its extent: a data-parallel group at DP / EP = 1 still
        spans the job, as in the flat model before paths (so a CP-only gradient group of a DP1
        job inside one domain is priced at the NIC, a small pessimism kept for stability).
        """
        return max((size * stride for size, stride in self.dims), default=1)

    @property
    def stride(self) -> int:
        """Distance in GPUs between neighbouring ranks (innermost dimension)."""
        return next((stride for size, stride in self.dims if size > 1), 1)

    def ranks_within(self, gpus: float) -> float:
        """Ranks of the group inside a run of ``gpus`` consecutive GPUs (at least 1)."""
        out = 1.0
        for size, stride in self.dims:
            out *= min(float(size), max(1.0, gpus / stride))
        return out


def _crossed(path: NetworkPath, span: int) -> list[PathTier]:
    return [t for t in path.tiers if t.gpus_below < span]


def gather_time_s(nbytes: float, group: RankGroup, hw: HardwareSpec, path: NetworkPath) -> float:
    """All-gather or reduce-scatter of an ``nbytes`` buffer over ``group`` (see module doc)."""
    n = group.ranks
    if n <= 1 or nbytes <= 0:
        return 0.0
    span = group.span
    if span <= hw.domain_gpus:
        return (n - 1) / n * nbytes / scaleup_bytes_per_s(hw) + cal.SCALEUP_LATENCY_S
    nic = hw.scaleout_bandwidth_bits_per_s / 8.0
    crossed = _crossed(path, span)
    below = [group.ranks_within(t.gpus_below) for t in crossed]
    total, lat = 0.0, cal.SCALEOUT_LATENCY_S
    lo: float = 1
    rate = nic  # line rate of the stage being accumulated
    for i, tier in enumerate(crossed):
        above = below[i + 1] if i + 1 < len(below) else n
        if tier.latency_s:
            lat += tier.latency_s * max(1.0, above / below[i] - 1.0)  # ring steps across it
        # across this tier the traffic also leaves every tier below: the slowest share so far
        tier_rate = min(rate, tier.bytes_per_s_per_gpu)
        if tier_rate == rate:
            continue  # same rate: one ring over both levels (exactly the same bytes)
        mid = below[i]
        total += (mid - lo) / (lo * mid) * nbytes / (rate * hw.efficiency.scaleout)
        lo, rate = mid, tier_rate
    return total + (n - lo) / (lo * n) * nbytes / (rate * hw.efficiency.scaleout) + lat


def all_reduce_time_s(
    nbytes: float, group: RankGroup, hw: HardwareSpec, path: NetworkPath
) -> float:
    """All-reduce = reduce-scatter + all-gather, each hierarchical over the path."""
    return 2.0 * gather_time_s(nbytes, group, hw, path)


def all_to_all_time_s(
    nbytes: float, group: RankGroup, hw: HardwareSpec, path: NetworkPath
) -> float:
    """All-to-all of ``nbytes`` per GPU over ``group``: the bottleneck link (see module doc)."""
    n = group.ranks
    if n <= 1 or nbytes <= 0:
        return 0.0
    span = group.span
    if span <= hw.domain_gpus:
        return (n - 1) / n * nbytes / scaleup_bytes_per_s(hw) + cal.SCALEUP_LATENCY_S
    nic = hw.scaleout_bandwidth_bits_per_s / 8.0
    t = (n - 1) / n * nbytes / (nic * hw.efficiency.scaleout)
    lat = cal.SCALEOUT_LATENCY_S
    for tier in _crossed(path, span):
        lat += tier.latency_s
        if tier.bytes_per_s_per_gpu < nic:  # a tier at the NIC rate is never the bottleneck
            outside = (n - group.ranks_within(tier.gpus_below)) / n
            t = max(t, outside * nbytes / (tier.bytes_per_s_per_gpu * hw.efficiency.scaleout))
    return t + lat


def p2p_time_s(nbytes: float, group: RankGroup, hw: HardwareSpec, path: NetworkPath) -> float:
    """One send of ``nbytes`` between neighbours of the chain ``group`` (see module doc)."""
    if group.ranks <= 1 or nbytes <= 0:
        return 0.0
    span = group.span
    if span <= hw.domain_gpus:
        return nbytes / scaleup_bytes_per_s(hw) + cal.SCALEUP_LATENCY_S
    nic = hw.scaleout_bandwidth_bits_per_s / 8.0
    rate, lat, stride = nic, cal.SCALEOUT_LATENCY_S, group.stride
    for tier in _crossed(path, span):
        lat += tier.latency_s
        boundary = tier.bytes_per_s_per_gpu * max(1.0, tier.gpus_below / stride)
        rate = min(rate, boundary)
    return nbytes / (rate * hw.efficiency.scaleout) + lat
