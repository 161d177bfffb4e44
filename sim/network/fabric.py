"""The scale-out fabric as plain arrays: tiers of nested groups of domains, their capacities.

A :class:`Fabric` is what the engine reads (``plan.fabric``): for each tier, innermost first
(``unit``, ``pod``, ``building``, ``site`` for a switched fabric; ``site`` alone for the ideal
``non_blocking`` one), the group of every domain, the parent of every group, and the capacity of
the links that leave each group (its *uplink*). Groups are contiguous ranges of domain indices,
numbered fleet-wide from 0 at each tier. Traffic between two domains crosses the uplinks of every
tier at which their groups differ, in both groups.

Units: bytes/s for capacities (one direction), seconds for latency, watts, USD. An uplink of
``inf`` cannot limit: the tier is 1:1 with lossless load balancing (the GPUs below it cannot send
more than its downlink) or has nothing above it.

The graph (:meth:`Fabric.graph`) is derived from the arrays on demand and is pure data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Fabric", "bisection_bytes_per_s", "hops", "latency_s", "spans"]


@dataclass(frozen=True, eq=False)
class Fabric:
    """The fabric built from a scenario (:func:`sim.network.build_fabric`). Arrays are read-only.

    Per tier ``t`` (``tier_names[t]``):

    * ``domain_group[t]``: int32, shape (n_domains,): each domain's group at tier t.
    * ``parent[t]`` (t < top): int32, shape (n_groups[t],): the group at tier t + 1.
    * ``downlink_bytes_per_s[t]``: float64, shape (n_groups[t],): the group's GPUs x their link
      rate, one direction.
    * ``uplink_bytes_per_s[t]``: float64, shape (n_groups[t],): capacity of the traffic leaving
      the group, one direction: downlink x load_balance_efficiency / oversubscription for the
      switched tiers (unit, pod), the scale-across bandwidth for building and site; ``inf`` where
      it cannot limit.
    * ``uplink_latency_s[t]``: one-way latency added by leaving a group of tier t (switch hops
      up and down again; fibre at 5 µs/km for scale-across).
    * ``bisection_bytes_per_s[t]``: half the traffic that can leave the tier's groups at once,
      sum of min(uplink, downlink) / 2 (see :func:`bisection_bytes_per_s`).

    Per domain: ``gpu_link_bytes_per_s`` (float64, the per-GPU line rate on the fabric) and
    ``domain_gpus`` (int32).

    Inventory (informational, not used by the engine): ``switches[tier][model]`` switch counts,
    ``links[tier]`` cables (GPU-leaf under ``unit``, leaf-spine under ``pod``, spine-core and
    core-core under ``building``), ``optics_power_w[tier]``, ``switch_power_w``; ``power_w`` is
    their sum; ``optics_ends[port speed]`` the transceivers (NIC ends, switch ends). ``capex_usd``
    is the switches and transceivers at catalog prices (None for the ideal fabric, with
    ``capex_note`` saying why); :func:`sim.network.fabric_capex_usd` prices them otherwise.
    """

    kind: str
    placement: str
    tier_names: tuple[str, ...]
    domain_group: tuple[np.ndarray, ...]
    parent: tuple[np.ndarray, ...]
    downlink_bytes_per_s: tuple[np.ndarray, ...]
    uplink_bytes_per_s: tuple[np.ndarray, ...]
    uplink_latency_s: tuple[float, ...]
    bisection_bytes_per_s: tuple[float, ...]
    gpu_link_bytes_per_s: np.ndarray
    domain_gpus: np.ndarray
    #: latency of one switch traversal (two domains of one unit), seconds
    hop_latency_s: float = 0.0
    #: names of the building and site groups, by group index
    building_names: tuple[str, ...] = ()
    site_names: tuple[str, ...] = ()
    switches: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    links: Mapping[str, int] = field(default_factory=dict)
    optics_power_w: Mapping[str, float] = field(default_factory=dict)
    switch_power_w: float = 0.0
    #: transceivers by port speed (bits/s): (NIC ends, switch ends)
    optics_ends: Mapping[float, tuple[int, int]] = field(default_factory=dict)
    capex_usd: float | None = None
    capex_note: str = ""

    def __post_init__(self) -> None:
        arrays = (
            *self.domain_group,
            *self.parent,
            *self.downlink_bytes_per_s,
            *self.uplink_bytes_per_s,
            self.gpu_link_bytes_per_s,
            self.domain_gpus,
        )
        for a in arrays:
            a.flags.writeable = False

    # ------------------------------------------------------------------ sizes
    @property
    def n_domains(self) -> int:
        return int(self.domain_gpus.shape[0])

    @property
    def n_groups(self) -> tuple[int, ...]:
        return tuple(int(u.shape[0]) for u in self.uplink_bytes_per_s)

    @property
    def power_w(self) -> float:
        """Switches and transceivers, watts (0 for the ideal non_blocking fabric)."""
        return self.switch_power_w + sum(self.optics_power_w.values())

    @property
    def switch_count(self) -> int:
        return sum(sum(by_model.values()) for by_model in self.switches.values())

    def tier(self, tier: str | int) -> int:
        """The index of a tier given by name or index; KeyError naming the tiers otherwise."""
        if isinstance(tier, int) and 0 <= tier < len(self.tier_names):
            return tier
        if isinstance(tier, str) and tier in self.tier_names:
            return self.tier_names.index(tier)
        raise KeyError(f"no tier {tier!r} in this fabric (tiers: {', '.join(self.tier_names)})")

    # ------------------------------------------------------------------ graph
    def graph(self) -> Any:
        """A networkx Graph of the fabric, pure data.

        Nodes are ``("domain", i)`` leaves and one node per group per tier, ``(tier, g)``, plus
        ``("wan", 0)`` above several sites. Switches are *aggregated*: a group node stands for all
        the switches of its tier in that group (a unit's leaves, a pod's spines, a building's
        core), so a 10 GW site stays a few hundred thousand nodes. Node attributes: ``kind``
        ("domain", "group" or "wan"), ``tier``, ``capacity`` (downlink bytes/s), ``gpus`` for
        domains. Edge attributes: ``capacity`` (bytes/s, one direction: the domain's GPU links,
        or the child group's uplink, possibly inf) and ``latency`` (seconds).
        """
        import networkx as nx

        g = nx.Graph(kind=self.kind)
        n = self.n_domains
        dom_cap = self.domain_gpus * self.gpu_link_bytes_per_s
        g.add_nodes_from(
            (("domain", i), {"kind": "domain", "tier": "domain", "gpus": gp, "capacity": c})
            for i, gp, c in zip(range(n), self.domain_gpus.tolist(), dom_cap.tolist(), strict=True)
        )
        for t, name in enumerate(self.tier_names):
            down = self.downlink_bytes_per_s[t].tolist()
            g.add_nodes_from(
                ((name, k), {"kind": "group", "tier": name, "capacity": c})
                for k, c in enumerate(down)
            )
        first = self.tier_names[0]
        g.add_edges_from(
            (("domain", i), (first, grp), {"capacity": c, "latency": self.hop_latency_s})
            for i, grp, c in zip(
                range(n), self.domain_group[0].tolist(), dom_cap.tolist(), strict=True
            )
        )
        for t, name in enumerate(self.tier_names):
            up = self.uplink_bytes_per_s[t].tolist()
            lat = self.uplink_latency_s[t]
            if t + 1 < len(self.tier_names):
                above = self.tier_names[t + 1]
                parents = self.parent[t].tolist()
                g.add_edges_from(
                    ((name, k), (above, p), {"capacity": c, "latency": lat})
                    for k, (p, c) in enumerate(zip(parents, up, strict=True))
                )
            elif len(up) > 1:
                g.add_node(("wan", 0), kind="wan", tier="wan", capacity=math.inf)
                g.add_edges_from(
                    ((name, k), ("wan", 0), {"capacity": c, "latency": lat})
                    for k, c in enumerate(up)
                )
        return g


# ---------------------------------------------------------------------- helpers


def bisection_bytes_per_s(fabric: Fabric, tier: str | int) -> float:
    """Bisection bandwidth at ``tier``, bytes/s each way: the traffic that can cross between two
    halves of the tier's groups when nothing above limits, sum of min(uplink, downlink) / 2 over
    the groups. A non-blocking tier gives the full N x link / 2; a 1:r tier N x link / (2 r);
    two buildings joined by 100 Tb/s links give 100 Tb/s (as bytes/s)."""
    return fabric.bisection_bytes_per_s[fabric.tier(tier)]


def hops(fabric: Fabric, domain_a: int, domain_b: int) -> int:
    """Tiers crossed between two domains: 0 within a unit (or the same domain), 1 between units
    of a pod, 2 between pods of a building, and so on."""
    return sum(int(g[domain_a] != g[domain_b]) for g in fabric.domain_group)


def latency_s(fabric: Fabric, domain_a: int, domain_b: int) -> float:
    """One-way fabric latency between two domains: one switch hop, plus the uplink latency of
    every tier crossed (0 for the same domain: its traffic stays on NVLink)."""
    if domain_a == domain_b:
        return 0.0
    crossed = [t for t, g in enumerate(fabric.domain_group) if g[domain_a] != g[domain_b]]
    return fabric.hop_latency_s + sum(fabric.uplink_latency_s[t] for t in crossed)


def spans(fabric: Fabric, domain_ids: Iterable[int] | np.ndarray) -> dict[str, int]:
    """How many groups of each tier a set of domains touches: ``{"unit": 3, "pod": 1, ...}``."""
    ids = np.asarray(domain_ids if isinstance(domain_ids, np.ndarray) else list(domain_ids))
    ids = ids.astype(np.int64, copy=False)
    if ids.size == 0:
        return dict.fromkeys(fabric.tier_names, 0)
    return {
        name: int(np.unique(fabric.domain_group[t][ids]).size)
        for t, name in enumerate(fabric.tier_names)
    }
