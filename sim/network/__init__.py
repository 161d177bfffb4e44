"""The scale-out fabric: which domains share which links, and what those links carry.

:func:`build_fabric` turns ``network`` (sim.config.schema.NetworkConfig) and the halls into a
:class:`Fabric` of numpy arrays that the engine reads from ``plan.fabric``; :func:`check_fabric`
says first, with key paths, what cannot be built. The tiers, their defaults and sources are in
``docs/network.md``. Units: bytes/s, seconds, watts.
"""

from sim.network.fabric import Fabric, bisection_bytes_per_s, hops, latency_s, spans
from sim.network.layout import (
    FIBRE_S_PER_M,
    SWITCHED_TIERS,
    FabricHall,
    build_fabric,
    check_fabric,
    fabric_capex_usd,
)

__all__ = [
    "FIBRE_S_PER_M",
    "SWITCHED_TIERS",
    "Fabric",
    "FabricHall",
    "bisection_bytes_per_s",
    "build_fabric",
    "check_fabric",
    "fabric_capex_usd",
    "hops",
    "latency_s",
    "spans",
]
