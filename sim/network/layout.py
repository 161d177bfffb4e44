"""Build the fabric of a scenario: group every domain by tier, size the uplinks, count switches.

:func:`check_fabric` reports what cannot be built (key path and message, as :mod:`sim.build`
does); :func:`build_fabric` builds it. Groups come from index arithmetic over whole halls with
numpy: nothing loops over domains, units or pods in Python (a 10 GW site of ~57k NVL72 racks
builds in milliseconds). Loops run over halls and buildings, at most a thousand.

Switch counts use port arithmetic on a folded Clos of radix k at the GPU's port speed. A leaf
has ``d = k r / (r + 1)`` downlinks at a 1:r tier (k/2 when non-blocking); a unit takes
``ceil(ports / d)`` leaves and ``ceil(ports / r_unit)`` uplinks; a pod's spines take those on
``k`` ports (no core above: a 2-tier tree) or ``d_pod``; the core of a building takes the pods'
``ceil(down / r_pod)`` uplinks on ``m`` layers, the fewest whose reach ``k (k/2)^(m-1)`` covers
its pods (one layer for up to k pods), each layer but the top ``2/k`` switches per port. This
reproduces NVIDIA's DGX B200 tables (8 SU: 64 leaf, 32 spine; 64 SU: 512, 512, 256 core) and
B300-XDR tables (18 SU: 144 leaf, 72 spine); the wiring feasibility of a strict fat tree (its
k^3/4 endpoint limit) is not checked. Every link is optical (network-and-serving.md A6).
Scale-across links (building and site uplinks) are not counted as equipment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim.catalog.hardware import HardwareSpec
from sim.catalog.switches import (
    OpticsSpec,
    SwitchSpec,
    default_switch,
    optics_catalog,
    switch_catalog,
)
from sim.config.loader import Loc
from sim.config.quantities import show
from sim.config.schema import (
    RACK_SCALE_UNIT_GPUS,
    SWITCHED_ONLY_KEYS,
    NetworkConfig,
    ScaleAcross,
)
from sim.network.fabric import Fabric

__all__ = [
    "FIBRE_S_PER_M",
    "SWITCHED_TIERS",
    "FabricHall",
    "build_fabric",
    "check_fabric",
    "fabric_capex_usd",
]

#: One-way propagation in optical fibre: 5 µs/km (hardware.md §5, physics).
FIBRE_S_PER_M = 5e-9
#: Tiers of a switched fabric, innermost first.
SWITCHED_TIERS = ("unit", "pod", "building", "site")
_CAPEX_NOTE = (
    "switches and transceivers at their sim/catalog/switches.yaml prices (weak reseller and"
    " analyst figures); costs.prices overrides a switch's"
)


@dataclass(frozen=True)
class FabricHall:
    """A hall as the fabric sees it: its domains (a contiguous index range) and its place."""

    name: str
    spec: HardwareSpec
    first_domain: int
    n_domains: int
    building: str = "building-1"
    site: str = "site-1"


@dataclass(frozen=True)
class _Sizing:
    """How one hall is cabled: switch, port speed and the tier sizes that follow from them."""

    switch_name: str
    switch: SwitchSpec
    optics: OpticsSpec
    link_bits_per_s: float
    port_bits_per_s: float
    ports_per_gpu: int
    radix: int
    leaf_down: int  # downlink ports of a leaf at the unit tier's ratio
    spine_down: int  # downlink ports of a spine below a core, at the pod tier's ratio
    unit_domains: int
    pod_units: int


class _Unbuildable(ValueError):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _down_ports(k: int, ratio: float) -> int:
    """Downlink ports of a k-port switch at a downlink:uplink ratio."""
    return max(1, min(k - 1, math.floor(k * ratio / (ratio + 1) + 1e-9)))


def _key_given(cfg: NetworkConfig, key: str) -> bool:
    attr, field = next((n, f) for n, f in NetworkConfig.model_fields.items() if key in (n, f.alias))
    value = getattr(cfg, attr)
    return value is not None and value != field.default  # the default is what a copy writes


def _sizing(cfg: NetworkConfig, hall: FabricHall, index: int) -> _Sizing:
    """The hall's cabling; :class:`_Unbuildable` with a key path when the config cannot work."""
    spec = hall.spec
    nic = spec.scaleout_bandwidth_bits_per_s
    hw_loc: Loc = ("facility", "halls", index, "hardware")
    if nic <= 0:
        raise _Unbuildable(
            hw_loc,
            f"{spec.display_name} has no scale-out NIC (scaleout_bandwidth_bits_per_s is 0): a"
            " switched fabric needs one, or use network.kind non_blocking",
        )
    link = cfg.link_speed_bits_per_s or nic
    name = cfg.switch or default_switch(link)
    switch = switch_catalog()[name]
    if link > nic * (1 + 1e-9):
        raise _Unbuildable(
            ("network", "link_speed"),
            f"{show(link, 'bit/s')} per GPU is faster than the {show(nic, 'bit/s')} NIC of"
            f" {spec.display_name} (hall '{hall.name}'): give the hardware a faster NIC in an"
            " inline hardware entry instead",
        )
    try:
        port, per_gpu = switch.port_speed_for(link)
    except ValueError as exc:
        where: Loc = (
            ("network", "link_speed")
            if cfg.link_speed_bits_per_s is not None
            else ("network", "switch")
            if cfg.switch is not None
            else hw_loc
        )
        raise _Unbuildable(where, f"{exc} (hall '{hall.name}'): choose another switch") from None
    optics = optics_catalog().get(port)
    if optics is None:
        raise _Unbuildable(
            ("network", "switch"),
            f"the switch catalog has no transceiver power for {show(port, 'bit/s')} ports",
        )
    assert cfg.oversubscription is not None  # filled by the schema for switched kinds
    k = switch.radix[port]
    leaf_down = _down_ports(k, cfg.oversubscription.unit)
    gpus = spec.domain_gpus
    if cfg.unit_domains is not None:
        unit = cfg.unit_domains
    elif cfg.kind == "rail_optimized":
        # NVIDIA's SU: one leaf per rail, as many 8-GPU nodes as a leaf has downlinks; racks
        # in SUs of RACK_SCALE_UNIT_GPUS
        unit = leaf_down if gpus <= 8 else max(1, RACK_SCALE_UNIT_GPUS // gpus)
    else:  # fat_tree: the domains under one (ToR) leaf
        unit = max(1, leaf_down // (gpus * per_gpu))
    leaves_per_unit = math.ceil(unit * gpus * per_gpu / leaf_down)
    pod = cfg.pod_units or max(1, k // leaves_per_unit)
    return _Sizing(
        name,
        switch,
        optics,
        link,
        port,
        per_gpu,
        k,
        leaf_down,
        _down_ports(k, cfg.oversubscription.pod),
        unit,
        pod,
    )


def _places(halls: Sequence[FabricHall]) -> list[tuple[Loc, str]]:
    """Halls of one building (site) are listed together; a building is in one site."""
    out: list[tuple[Loc, str]] = []
    for key in ("site", "building"):
        seen: set[str] = set()
        prev: FabricHall | None = None
        for i, h in enumerate(halls):
            value = getattr(h, key)
            if prev is not None and value != getattr(prev, key) and value in seen:
                out.append(
                    (
                        ("facility", "halls", i, key),
                        f"halls of {key} '{value}' must be listed together: hall '{prev.name}'"
                        f" of {key} '{getattr(prev, key)}' comes between them",
                    )
                )
            seen.add(value)
            prev = h
    site_of: dict[str, str] = {}
    for i, h in enumerate(halls):
        other = site_of.setdefault(h.building, h.site)
        if other != h.site:
            out.append(
                (
                    ("facility", "halls", i, "site"),
                    f"building '{h.building}' is in site '{other}' (an earlier hall) and in site"
                    f" '{h.site}' here: a building is in one site",
                )
            )
    return out


def _multi(halls: Sequence[FabricHall]) -> tuple[list[str], list[str]]:
    """Sites with several buildings, and the sites (if more than one)."""
    sites = list(dict.fromkeys(h.site for h in halls))
    per_site = {s: {h.building for h in halls if h.site == s} for s in sites}
    return [s for s in sites if len(per_site[s]) > 1], sites if len(sites) > 1 else []


def check_fabric(cfg: NetworkConfig, halls: Sequence[FabricHall]) -> list[tuple[Loc, str]]:
    """What keeps the fabric from being built, as (key path, message) pairs; empty if nothing."""
    out = _places(halls)
    multi_building, multi_site = _multi(halls)
    if cfg.kind == "non_blocking":
        for key in SWITCHED_ONLY_KEYS:
            if _key_given(cfg, key):
                out.append(
                    (
                        ("network", key),
                        f"{key} applies to kind fat_tree or rail_optimized: a non_blocking"
                        " fabric has no switches or tiers, so it would change nothing",
                    )
                )
        for key, several in (("site", multi_site), ("building", multi_building)):
            if several:
                i = next(
                    i for i, h in enumerate(halls) if getattr(h, key) != getattr(halls[0], key)
                )
                out.append(
                    (
                        ("facility", "halls", i, key),
                        f"halls in different {key}s need links between them, but network.kind"
                        " non_blocking joins every domain at full bisection: set network.kind"
                        f" fat_tree or rail_optimized with network.scale_across.{key}s",
                    )
                )
        return out
    for i, h in enumerate(halls):
        try:
            _sizing(cfg, h, i)
        except _Unbuildable as exc:
            if (exc.loc, str(exc)) not in out:
                out.append((exc.loc, str(exc)))
    sa = cfg.scale_across or ScaleAcross()
    for key, several, link in (
        ("buildings", multi_building, sa.buildings),
        ("sites", multi_site, sa.sites),
    ):
        what = "sites" if key == "sites" else f"buildings (site {', '.join(several)})"
        if several and link is None:
            out.append(
                (
                    ("network", "scale_across", key),
                    f"halls are in several {what}: the links between them need"
                    f" network.scale_across.{key} {{bandwidth, distance}}",
                )
            )
        elif not several and link is not None:
            one = "site" if key == "sites" else "building in each site"
            out.append(
                (
                    ("network", "scale_across", key),
                    f"every hall is in one {one} (facility.halls[].{key[:-1]}), so links"
                    f" between {key} would change nothing",
                )
            )
    return out


def _index(names: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    order = tuple(dict.fromkeys(names))
    pos = {n: i for i, n in enumerate(order)}
    return np.array([pos[n] for n in names], dtype=np.int64), order


def _ideal(cfg: NetworkConfig, halls: Sequence[FabricHall], counts: np.ndarray) -> Fabric:
    """non_blocking: one tier, the site, whose uplink cannot limit; nothing counted."""
    gpus = np.repeat([h.spec.domain_gpus for h in halls], counts).astype(np.int32)
    link = np.repeat([h.spec.scaleout_bandwidth_bits_per_s / 8 for h in halls], counts)
    total = float(np.dot(gpus, link))
    return Fabric(
        kind=cfg.kind,
        placement=cfg.placement,
        tier_names=("site",),
        domain_group=(np.zeros(gpus.shape[0], dtype=np.int32),),
        parent=(),
        downlink_bytes_per_s=(np.array([total]),),
        uplink_bytes_per_s=(np.array([math.inf]),),
        uplink_latency_s=(0.0,),
        bisection_bytes_per_s=(total / 2,),
        gpu_link_bytes_per_s=link.astype(np.float64),
        domain_gpus=gpus,
        site_names=(halls[0].site,) if halls else (),
        capex_note="non_blocking is an ideal fabric: no switches are counted",
    )


def _uplink(down: np.ndarray, efficiency: np.ndarray, ratio: float) -> np.ndarray:
    """down x efficiency / ratio, inf where a 1:1 tier with lossless balancing cannot limit."""
    up = down * efficiency / ratio
    return np.where((efficiency >= 1.0) & (ratio <= 1.0), math.inf, up)


def _ceil(x: np.ndarray) -> np.ndarray:
    return np.ceil(x - 1e-9).astype(np.int64)


def build_fabric(cfg: NetworkConfig, halls: Sequence[FabricHall]) -> Fabric:
    """The fabric of ``halls`` (in domain order, contiguous) under ``cfg``. Call
    :func:`check_fabric` first: a configuration it refuses raises ValueError here."""
    problems = check_fabric(cfg, halls)
    if problems:
        raise ValueError("; ".join(f"{'.'.join(map(str, loc))}: {m}" for loc, m in problems))
    counts = np.array([h.n_domains for h in halls], dtype=np.int64)
    if cfg.kind == "non_blocking":
        return _ideal(cfg, halls, counts)
    assert cfg.oversubscription is not None
    r_unit, r_pod = cfg.oversubscription.unit, cfg.oversubscription.pod
    sz = [_sizing(cfg, h, i) for i, h in enumerate(halls)]
    n = int(counts.sum())
    hall_of = np.repeat(np.arange(len(halls)), counts)
    first = np.array([h.first_domain for h in halls], dtype=np.int64)
    local = np.arange(n, dtype=np.int64) - first[hall_of]
    u = np.array([s.unit_domains for s in sz], dtype=np.int64)
    p = np.array([s.pod_units for s in sz], dtype=np.int64)
    units_h = -(-counts // u)
    pods_h = -(-units_h // p)
    unit_local = local // u[hall_of]
    unit = np.concatenate(([0], np.cumsum(units_h)[:-1]))[hall_of] + unit_local
    pod = np.concatenate(([0], np.cumsum(pods_h)[:-1]))[hall_of] + unit_local // p[hall_of]
    b_h, building_names = _index([h.building for h in halls])
    s_h, site_names = _index([h.site for h in halls])
    building, site = b_h[hall_of], s_h[hall_of]
    groups = (unit, pod, building, site)
    starts = [np.flatnonzero(np.diff(g, prepend=-1)) for g in groups]

    gpus = np.repeat([h.spec.domain_gpus for h in halls], counts).astype(np.int32)
    link = np.repeat([s.link_bits_per_s / 8 for s in sz], counts)
    per_domain = gpus * link
    down = [
        np.bincount(g, weights=per_domain, minlength=len(st))
        for g, st in zip(groups, starts, strict=True)
    ]
    eff_h = np.array([s.switch.load_balance_efficiency for s in sz])

    # ------------------------------------------------------------ switches, cables, optics
    switches: dict[str, dict[str, int]] = {t: {} for t in SWITCHED_TIERS[:3]}
    links = dict.fromkeys(SWITCHED_TIERS[:3], 0)
    optics_w = dict.fromkeys(SWITCHED_TIERS[:3], 0.0)
    ends: dict[float, list[int]] = {}  # port speed -> [NIC ends, switch ends]

    def count_ends(speed: float, nic: int, switch: int) -> None:
        e = ends.setdefault(speed, [0, 0])
        e[0] += nic
        e[1] += switch

    def add(tier: str, model: str, count: int) -> None:
        if count:
            switches[tier][model] = switches[tier].get(model, 0) + int(count)

    pod_down_ports: list[np.ndarray] = []
    for s, h, nu in zip(sz, halls, units_h.tolist(), strict=True):
        sizes = np.full(nu, s.unit_domains, dtype=np.int64)
        sizes[-1] = h.n_domains - (nu - 1) * s.unit_domains
        ports = sizes * h.spec.domain_gpus * s.ports_per_gpu
        up = _ceil(ports / r_unit)
        add("unit", s.switch_name, int(_ceil(ports / s.leaf_down).sum()))
        links["unit"] += int(ports.sum())
        links["pod"] += int(up.sum())
        optics_w["unit"] += float(ports.sum()) * (s.optics.nic_end_w + s.optics.switch_end_w)
        optics_w["pod"] += float(up.sum()) * 2 * s.optics.switch_end_w
        count_ends(s.port_bits_per_s, int(ports.sum()), int(ports.sum()) + 2 * int(up.sum()))
        pod_down_ports.append(np.add.reduceat(up, np.arange(0, nu, s.pod_units)))

    has_core = np.zeros(len(building_names), dtype=bool)
    core_layers = 0
    core_hop = 0.0
    for b in range(len(building_names)):
        members = np.flatnonzero(b_h == b).tolist()
        n_pods = int(pods_h[members].sum())
        has_core[b] = n_pods > 1
        core_bits = 0.0
        for i in members:
            s = sz[i]
            spine_ports = s.spine_down if has_core[b] else s.radix
            add("pod", s.switch_name, int(_ceil(pod_down_ports[i] / spine_ports).sum()))
            if has_core[b]:
                core_bits += float(_ceil(pod_down_ports[i] / r_pod).sum()) * s.port_bits_per_s
        if not has_core[b]:
            continue
        c = sz[members[0]]  # the core uses the switch of the building's first hall
        ports_core = math.ceil(core_bits / c.port_bits_per_s - 1e-9)
        m = 1
        while n_pods > c.radix * (c.radix / 2) ** (m - 1):
            m += 1
        add(
            "building",
            c.switch_name,
            (m - 1) * math.ceil(2 * ports_core / c.radix) + math.ceil(ports_core / c.radix),
        )
        links["building"] += m * ports_core
        optics_w["building"] += m * ports_core * 2 * c.optics.switch_end_w
        count_ends(c.port_bits_per_s, 0, m * ports_core * 2)
        core_layers = max(core_layers, m)
        core_hop = max(core_hop, c.switch.hop_latency_s)
    catalog = switch_catalog()
    switch_power = sum(catalog[m].power_w * k for by in switches.values() for m, k in by.items())
    optics_ends = {speed: (e[0], e[1]) for speed, e in sorted(ends.items())}
    capex = fabric_capex_usd(switches, optics_ends)

    # ------------------------------------------------------------ uplinks
    multi_building, multi_site = _multi(halls)
    sa = cfg.scale_across or ScaleAcross()
    unit_hall = hall_of[starts[0]]
    pod_hall = hall_of[starts[1]]
    up_unit = _uplink(down[0], eff_h[unit_hall], r_unit)
    up_pod = np.where(
        has_core[building[starts[1]]], _uplink(down[1], eff_h[pod_hall], r_pod), math.inf
    )
    in_multi = np.array([site_names[s] in multi_building for s in s_h[hall_of[starts[2]]]])
    b_bw = sa.buildings.bandwidth_bits_per_s / 8 if sa.buildings is not None else math.inf
    up_building = np.where(in_multi, b_bw, math.inf)
    s_bw = sa.sites.bandwidth_bits_per_s / 8 if sa.sites is not None and multi_site else math.inf
    up_site = np.full(len(site_names), s_bw)
    uplinks = (up_unit, up_pod, up_building, up_site)

    hop = max(s.switch.hop_latency_s for s in sz)
    latency = (
        2 * hop,
        2 * core_layers * core_hop,
        sa.buildings.distance_m * FIBRE_S_PER_M if sa.buildings and multi_building else 0.0,
        sa.sites.distance_m * FIBRE_S_PER_M if sa.sites and multi_site else 0.0,
    )
    bisection = tuple(
        float(np.minimum(up, dn).sum()) / 2 for up, dn in zip(uplinks, down, strict=True)
    )
    return Fabric(
        kind=cfg.kind,
        placement=cfg.placement,
        tier_names=SWITCHED_TIERS,
        domain_group=tuple(g.astype(np.int32) for g in groups),
        parent=tuple(groups[t + 1][starts[t]].astype(np.int32) for t in range(len(groups) - 1)),
        downlink_bytes_per_s=tuple(d.astype(np.float64) for d in down),
        uplink_bytes_per_s=tuple(up.astype(np.float64) for up in uplinks),
        uplink_latency_s=latency,
        bisection_bytes_per_s=bisection,
        gpu_link_bytes_per_s=link.astype(np.float64),
        domain_gpus=gpus,
        hop_latency_s=hop,
        building_names=building_names,
        site_names=site_names,
        switches={t: dict(by) for t, by in switches.items()},
        links=links,
        optics_power_w=optics_w,
        switch_power_w=float(switch_power),
        optics_ends=optics_ends,
        capex_usd=capex["switches"] + capex["optics"],
        capex_note=_CAPEX_NOTE,
    )


def fabric_capex_usd(
    switches: Mapping[str, Mapping[str, int]],
    optics_ends: Mapping[float, tuple[int, int]],
    switch_prices: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Capital cost of a fabric's inventory, USD: ``switches`` (count x price of each model)
    and ``optics`` (transceiver ends x their price per end at each port speed). Prices are the
    catalog's (sim/catalog/switches.yaml) unless ``switch_prices`` gives a model's; a switch or
    port speed the catalog has no price for raises ValueError naming it."""
    cat, optics = switch_catalog(), optics_catalog()
    prices = dict(switch_prices or {})
    sw = 0.0
    for by_model in switches.values():
        for model, count in by_model.items():
            price = prices.get(model, cat[model].price_usd)
            if price is None:
                raise ValueError(f"switch {model} has no price: give costs.prices.{model}")
            sw += count * price
    op = 0.0
    for speed, (nic, switch) in optics_ends.items():
        o = optics[speed]
        if o.nic_end_usd is None or o.switch_end_usd is None:
            raise ValueError(f"no transceiver price at {show(speed, 'bit/s')} ports")
        op += nic * o.nic_end_usd + switch * o.switch_end_usd
    return {"switches": sw, "optics": op}
