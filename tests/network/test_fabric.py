"""The fabric (sim/network): answers computed by hand on small fabrics.

Group mapping, uplinks with oversubscription and load-balance efficiency, bisection, hops,
latency, spans, switch and cable counts of NVIDIA's reference fabrics (network-and-serving.md
A1), optics per GPU (A6), the graph, and every user-facing error pinned with its key path.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
import yaml

from sim.catalog.hardware import catalog
from sim.catalog.switches import default_switch, optics_catalog, switch_catalog, switch_sources
from sim.config.loader import ScenarioError, load_scenario, resolved_dict
from sim.config.schema import NetworkConfig
from sim.network import (
    FIBRE_S_PER_M,
    Fabric,
    FabricHall,
    bisection_bytes_per_s,
    build_fabric,
    check_fabric,
    hops,
    latency_s,
    spans,
)
from sim.runner import prepare

HW = catalog()
GB200 = HW["gb200_nvl72"]  # 72 GPUs, 400G NIC
LINK_400G = 400e9 / 8  # bytes/s per GPU
HOP = switch_catalog()["quantum2_qm9700"].hop_latency_s


def halls(*spec: tuple[Any, ...]) -> list[FabricHall]:
    """FabricHalls in domain order from (hardware, domains[, building[, site]])."""
    out, first = [], 0
    for i, (hw, n, *place) in enumerate(spec):
        building = place[0] if place else "building-1"
        site = place[1] if len(place) > 1 else "site-1"
        out.append(FabricHall(f"hall{i + 1}", HW[hw], first, n, building, site))
        first += n
    return out


def net(**kw: Any) -> NetworkConfig:
    return NetworkConfig.model_validate(kw)


def fabric(cfg: NetworkConfig, hs: list[FabricHall]) -> Fabric:
    assert check_fabric(cfg, hs) == []
    return build_fabric(cfg, hs)


# --------------------------------------------------------------------------- groups


def test_groups_are_contiguous_within_halls() -> None:
    # hall1: 10 racks in units of 4 -> units [0-3] [4-7] [8-9]; pods of 2 units -> [u0 u1] [u2]
    # hall2: 6 racks -> units [10-13] [14-15] (a unit never spans halls) -> one pod
    f = fabric(
        net(kind="rail_optimized", unit_domains=4, pod_units=2),
        halls(("gb200_nvl72", 10), ("gb200_nvl72", 6)),
    )
    assert f.tier_names == ("unit", "pod", "building", "site")
    unit, pod, building, site = (g.tolist() for g in f.domain_group)
    assert unit == [0] * 4 + [1] * 4 + [2] * 2 + [3] * 4 + [4] * 2
    assert pod == [0] * 8 + [1] * 2 + [2] * 6
    assert building == [0] * 16 and site == [0] * 16
    assert [p.tolist() for p in f.parent] == [[0, 0, 1, 2, 2], [0, 0, 0], [0]]
    assert f.n_groups == (5, 3, 1, 1)
    assert all(g.dtype == np.int32 for g in (*f.domain_group, *f.parent))
    assert f.domain_gpus.tolist() == [72] * 16
    assert f.gpu_link_bytes_per_s.tolist() == [LINK_400G] * 16
    with pytest.raises(ValueError, match="read-only"):
        f.domain_group[0][0] = 7


def test_buildings_and_sites_group_halls() -> None:
    f = fabric(
        net(
            kind="fat_tree",
            unit_domains=2,
            scale_across={
                "buildings": {"bandwidth": "100 Tb/s", "distance": "2 km"},
                "sites": {"bandwidth": "10 Tb/s", "distance": "1000 km"},
            },
        ),
        halls(
            ("gb200_nvl72", 4, "a", "north"),
            ("gb200_nvl72", 4, "a", "north"),
            ("gb200_nvl72", 2, "b", "north"),
            ("gb200_nvl72", 2, "c", "south"),
        ),
    )
    assert f.domain_group[2].tolist() == [0] * 8 + [1] * 2 + [2] * 2
    assert f.domain_group[3].tolist() == [0] * 10 + [1] * 2
    assert f.parent[2].tolist() == [0, 0, 1]
    assert f.building_names == ("a", "b", "c") and f.site_names == ("north", "south")
    # building uplinks: the campus link where the site has several buildings, else the site's
    assert f.uplink_bytes_per_s[2].tolist() == [100e12 / 8, 100e12 / 8, math.inf]
    assert f.uplink_bytes_per_s[3].tolist() == [10e12 / 8, 10e12 / 8]
    assert f.uplink_latency_s[2] == pytest.approx(2000 * 5e-6 / 1000)
    assert f.uplink_latency_s[3] == pytest.approx(1000 * 1000 * FIBRE_S_PER_M)


# --------------------------------------------------------------------------- capacity


def test_pod_uplinks_with_oversubscription_by_hand() -> None:
    # 16 racks, units of 2, pods of 4 units: 2 pods under a core; pods at 1:7
    f = fabric(
        net(
            kind="rail_optimized",
            unit_domains=2,
            pod_units=4,
            oversubscription={"unit": 1, "pod": 7},
        ),
        halls(("gb200_nvl72", 16)),
    )
    pod_up = 4 * 2 * 72 * 50e9 / 7
    assert f.uplink_bytes_per_s[1].tolist() == pytest.approx([pod_up, pod_up])
    assert f.downlink_bytes_per_s[1].tolist() == [4 * 2 * 72 * 50e9] * 2
    assert f.downlink_bytes_per_s[0].tolist() == [2 * 72 * 50e9] * 8
    # a 1:1 tier with lossless load balancing cannot limit; nothing above one building either
    assert np.isinf(f.uplink_bytes_per_s[0]).all()
    assert np.isinf(f.uplink_bytes_per_s[2]).all() and np.isinf(f.uplink_bytes_per_s[3]).all()
    assert bisection_bytes_per_s(f, "pod") == pytest.approx(2 * pod_up / 2)
    assert bisection_bytes_per_s(f, 0) == 16 * 72 * 50e9 / 2  # full bisection
    assert f.uplink_latency_s[:2] == (2 * HOP, 2 * HOP)  # one core layer


def test_unit_oversubscription_and_load_balance_efficiency() -> None:
    hs = halls(("gb200_nvl72", 4))
    down = 2 * 72 * 50e9
    f = fabric(net(kind="fat_tree", unit_domains=2, oversubscription={"unit": 2}), hs)
    assert f.uplink_bytes_per_s[0].tolist() == [down / 2] * 2
    # plain RoCE Ethernet achieves 60% of line rate across spines, Spectrum-X 95% [N12]
    for switch, eff in (("spectrum4_sn5600", 0.60), ("spectrum_x_sn5600", 0.95)):
        f = fabric(net(kind="fat_tree", unit_domains=2, switch=switch), hs)
        assert f.uplink_bytes_per_s[0].tolist() == pytest.approx([down * eff] * 2)


def test_one_pod_per_building_has_no_core_so_the_pod_uplink_cannot_limit() -> None:
    f = fabric(net(kind="fat_tree", unit_domains=2, pod_units=4), halls(("gb200_nvl72", 8)))
    assert f.n_groups[:2] == (4, 1)
    assert np.isinf(f.uplink_bytes_per_s[1]).all()
    assert f.switches["building"] == {} and f.uplink_latency_s[1] == 0.0


def test_scale_across_bisection() -> None:
    f = fabric(
        net(
            kind="rail_optimized",
            scale_across={"buildings": {"bandwidth": "100 Tb/s", "distance": "10 km"}},
        ),
        halls(("gb200_nvl72", 16, "a"), ("gb200_nvl72", 16, "b")),
    )
    assert bisection_bytes_per_s(f, "building") == pytest.approx(100e12 / 8)
    with pytest.raises(KeyError, match="no tier 'rack' in this fabric"):
        bisection_bytes_per_s(f, "rack")


# --------------------------------------------------------------------------- paths


def test_hops_latency_and_spans() -> None:
    f = fabric(
        net(
            kind="rail_optimized",
            unit_domains=2,
            pod_units=2,
            scale_across={"buildings": {"bandwidth": "100 Tb/s", "distance": "2 km"}},
        ),
        halls(("gb200_nvl72", 8, "a"), ("gb200_nvl72", 8, "b")),
    )
    # units of 2 racks, pods of 4 racks, 2 pods per building
    assert hops(f, 0, 0) == 0 and hops(f, 0, 1) == 0
    assert hops(f, 0, 2) == 1 and hops(f, 0, 4) == 2 and hops(f, 0, 8) == 3
    assert latency_s(f, 3, 3) == 0.0
    assert latency_s(f, 0, 1) == HOP
    assert latency_s(f, 0, 2) == pytest.approx(3 * HOP)  # leaf, spine, leaf
    assert latency_s(f, 0, 4) == pytest.approx(5 * HOP)  # and a core layer
    assert latency_s(f, 0, 8) == pytest.approx(5 * HOP + 2000 * FIBRE_S_PER_M)
    assert spans(f, [0, 1]) == {"unit": 1, "pod": 1, "building": 1, "site": 1}
    assert spans(f, np.array([0, 2, 5, 9])) == {"unit": 4, "pod": 3, "building": 2, "site": 1}
    assert spans(f, []) == {"unit": 0, "pod": 0, "building": 0, "site": 0}


# --------------------------------------------------------------------------- NVIDIA references

# DGX B200 SuperPOD, QM9700 (network-and-serving.md A1 [N1]): SU -> leaf, spine, core
B200_TABLE = [(2, 16, 8, 0), (4, 32, 16, 0), (8, 64, 32, 0), (16, 128, 128, 64)]
B200_TABLE += [(32, 256, 256, 128), (64, 512, 512, 256)]


@pytest.mark.parametrize(("su", "leaf", "spine", "core"), B200_TABLE)
def test_dgx_b200_superpod_switch_counts(su: int, leaf: int, spine: int, core: int) -> None:
    f = fabric(net(kind="rail_optimized"), halls(("b200_hgx", 32 * su)))
    qm = "quantum2_qm9700"  # the default for a 400G NIC
    assert f.switches["unit"] == {qm: leaf}
    assert f.switches["pod"] == {qm: spine}
    assert f.switches["building"] == ({qm: core} if core else {})
    gpus = 256 * su
    assert f.links == {"unit": gpus, "pod": gpus, "building": gpus if core else 0}
    # optics per GPU, all optical: NIC 9 W + 8.5 W per switch half-port (A6): 34.5 / 51.5 W
    per_gpu = sum(f.optics_power_w.values()) / gpus
    assert per_gpu == pytest.approx(51.5 if core else 34.5)
    assert f.switch_power_w == pytest.approx((leaf + spine + core) * switch_catalog()[qm].power_w)


@pytest.mark.parametrize(("su", "leaf", "spine"), [(1, 8, 4), (2, 16, 8), (18, 144, 72)])
def test_dgx_b300_xdr_superpod_switch_counts(su: int, leaf: int, spine: int) -> None:
    # 72 DGX B300 per SU on Quantum-X800 Q3400, 2-tier up to 18 SU (A1 [N3])
    f = fabric(net(kind="rail_optimized"), halls(("b300_hgx", 72 * su)))
    q = "quantum_x800_q3400"
    assert f.n_groups[:2] == (su, 1)
    assert f.switches == {"unit": {q: leaf}, "pod": {q: spine}, "building": {}}


def test_default_units_and_pods() -> None:
    # rail_optimized: the NVIDIA SU (32 HGX nodes on radix 64; 8 NVL72 racks = 576 GPUs)
    assert fabric(net(kind="rail_optimized"), halls(("h100_sxm", 64))).n_groups[0] == 2
    f = fabric(net(kind="rail_optimized"), halls(("gb200_nvl72", 48)))
    assert f.n_groups[:2] == (6, 2)  # 3 SU per pod: 18 leaves of 64 spine ports each
    assert f.switches["unit"] == {"quantum2_qm9700": 6 * 18}
    # fat_tree: the domains of one leaf (4 HGX nodes on 32 downlinks; an NVL72 rack spans 3)
    assert fabric(net(kind="fat_tree"), halls(("h100_sxm", 64))).n_groups[0] == 16
    f = fabric(net(kind="fat_tree"), halls(("gb200_nvl72", 48)))
    assert f.n_groups[:2] == (48, 3)  # 21 racks per pod (64 // 3 leaves)
    for kind, given, want in (
        ("fat_tree", None, {"unit": 1.0, "pod": 7.0}),  # Meta: 1:7 between pods [N9][N10]
        ("rail_optimized", None, {"unit": 1.0, "pod": 1.0}),  # NVIDIA SuperPOD [N1]
        ("fat_tree", {"unit": 2}, {"unit": 2.0, "pod": 7.0}),
    ):
        over = net(kind=kind, oversubscription=given).oversubscription
        assert over is not None and over.model_dump() == want


def test_mixed_halls_and_multi_port_links() -> None:
    f = fabric(
        net(kind="rail_optimized"),
        halls(("gb200_nvl72", 8), ("gb300_nvl72", 8), ("vr200_nvl144", 8)),
    )
    assert default_switch(400e9) == "quantum2_qm9700"
    assert default_switch(1.6e12) == "quantum_x800_q3400"
    assert f.gpu_link_bytes_per_s.tolist() == [50e9] * 8 + [100e9] * 8 + [200e9] * 8
    assert f.switches["unit"] == {
        "quantum2_qm9700": 18,  # 576 ports at 400G, 32 per leaf
        "quantum_x800_q3400": 8 + 16,  # 576 ports at 800G; 1,152 (two 800G planes per GPU)
    }
    assert f.links["unit"] == 576 + 576 + 1152
    f = fabric(net(kind="rail_optimized", link_speed="400 Gb/s"), halls(("gb300_nvl72", 8)))
    assert f.gpu_link_bytes_per_s.tolist() == [50e9] * 8


# --------------------------------------------------------------------------- ideal fabric


def test_non_blocking_is_one_tier_that_cannot_limit() -> None:
    f = fabric(net(), halls(("gb200_nvl72", 5), ("h100_sxm", 3)))
    assert f.kind == "non_blocking" and f.tier_names == ("site",)
    assert f.domain_group[0].tolist() == [0] * 8 and f.parent == ()
    assert f.uplink_bytes_per_s[0].tolist() == [math.inf]
    total = (5 * 72 + 3 * 8) * 50e9
    assert bisection_bytes_per_s(f, "site") == total / 2
    assert f.power_w == 0.0 and f.switch_count == 0 and f.capex_usd is None
    assert "no switches" in f.capex_note
    assert hops(f, 0, 7) == 0


def test_the_default_scenario_has_a_non_blocking_fabric(without_slo_tables: None) -> None:
    _, plan = prepare(None)
    f = plan.fabric
    assert f.kind == "non_blocking" and f.placement == "pack"
    assert f.n_domains == plan.n_domains and f.n_groups == (1,)


# --------------------------------------------------------------------------- graph


def test_graph_is_pure_data_with_aggregated_switches() -> None:
    f = fabric(
        net(
            kind="rail_optimized",
            unit_domains=2,
            pod_units=2,
            oversubscription={"unit": 1, "pod": 4},
            scale_across={"sites": {"bandwidth": "1 Tb/s", "distance": "100 km"}},
        ),
        halls(("gb200_nvl72", 8, "a", "x"), ("gb200_nvl72", 8, "b", "y")),
    )
    g = f.graph()
    # 16 domains, 8 units, 4 pods, 2 buildings, 2 sites, the WAN
    assert g.number_of_nodes() == 16 + 8 + 4 + 2 + 2 + 1
    assert g.number_of_edges() == 16 + 8 + 4 + 2 + 2
    assert g.nodes["domain", 3] == {"kind": "domain", "tier": "domain", "gpus": 72,
                                    "capacity": 72 * 50e9}  # fmt: skip
    assert g.edges[("domain", 3), ("unit", 1)] == {"capacity": 72 * 50e9, "latency": HOP}
    assert g.edges[("pod", 0), ("building", 0)]["capacity"] == 4 * 72 * 50e9 / 4
    assert g.edges[("site", 1), ("wan", 0)] == {
        "capacity": 1e12 / 8,
        "latency": pytest.approx(100e3 * FIBRE_S_PER_M),
    }
    assert g.nodes["unit", 0]["capacity"] == 2 * 72 * 50e9
    assert all(isinstance(v, str | int | float) for _, d in g.nodes(data=True) for v in d.values())


def test_a_ten_gigawatt_fabric_builds() -> None:
    # ~57k GB200 NVL72 racks (10 GW) in 40 halls of 4 buildings; timing is in benchmarks/
    per = 57_000 // 40
    spec = [("gb200_nvl72", per, f"b{i // 10}") for i in range(40)]
    cfg = net(
        kind="rail_optimized",
        scale_across={"buildings": {"bandwidth": "400 Tb/s", "distance": "2 km"}},
    )
    f = fabric(cfg, halls(*spec))
    assert f.n_domains == 40 * per and f.n_groups[2:] == (4, 1)
    assert f.n_groups[0] == 40 * math.ceil(per / 8)
    assert int(f.domain_gpus.sum()) == 40 * per * 72
    assert f.switches["building"]  # pods of a building need a core


# --------------------------------------------------------------------------- catalog


def test_every_switch_number_has_a_known_source() -> None:
    known = switch_sources()
    for name, s in switch_catalog().items():
        fields = ("radix", "power_w", "hop_latency_s", "load_balance_efficiency", "price_usd")
        for field in fields:
            prov = s.provenance[field]
            assert set(prov.sources) <= set(known), (name, field)
            assert prov.sources or prov.weak, (name, field)
        assert s.price_usd is not None and s.price_usd > 0  # every fabric can be priced
    for speed, o in optics_catalog().items():
        assert o.nic_end_w > 0 and o.switch_end_w > 0, speed
        assert o.nic_end_usd and o.switch_end_usd, speed
        assert o.provenance["nic_end_usd"].sources and o.provenance["switch_end_usd"].sources
        assert all(set(p.sources) <= set(known) for p in o.provenance.values())


# --------------------------------------------------------------------------- scenarios


def scenario(network: dict[str, Any] | None, *hall_keys: dict[str, Any]) -> str:
    data: dict[str, Any] = {
        "name": "t",
        "run": {"duration": "1 d"},
        "facility": {
            "grid_power": "100 MW",
            "halls": [
                {"name": f"h{i + 1}", "hardware": "gb200_nvl72", "racks": 8, **k}
                for i, k in enumerate(hall_keys or ({},))
            ],
        },
        "reliability": {"enabled": False},
    }
    if network is not None:
        data["network"] = network
    return yaml.safe_dump(data, sort_keys=False)


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        prepare(load_scenario(text=text, source="s.yaml"))
    return str(info.value)


def test_a_scenario_builds_its_fabric_onto_the_plan() -> None:
    text = scenario(
        {
            "kind": "rail_optimized",
            "placement": "spread",
            "unit_domains": 2,
            "scale_across": {"buildings": {"bandwidth": "100 Tb/s", "distance": "1 km"}},
        },
        {"building": "a"},
        {"building": "b"},
    )
    _, plan = prepare(load_scenario(text=text, source="s.yaml"))
    f = plan.fabric
    assert f.kind == "rail_optimized" and f.placement == "spread"
    assert f.n_groups == (8, 2, 2, 1) and f.building_names == ("a", "b")


def test_the_resolved_network_reloads_to_the_same_scenario() -> None:
    text = scenario(
        {
            "kind": "fat_tree",
            "link_speed": "400 Gb/s",
            "scale_across": {"buildings": {"bandwidth": "100 Tb/s", "distance": "2 km"}},
        },
        {"building": "a"},
        {"building": "b"},
    )
    loaded = load_scenario(text=text, source="s.yaml")
    resolved = resolved_dict(loaded.scenario)
    assert resolved["network"]["oversubscription"] == {"unit": 1.0, "pod": 7.0}
    again = load_scenario(text=yaml.safe_dump(resolved), source="r.yaml")
    assert again.scenario == loaded.scenario


BAD: list[tuple[dict[str, Any] | None, list[dict[str, Any]], str]] = [
    (
        {"kind": "fat_tree", "switch": "quantum2_qm970"},
        [],
        r"s\.yaml:\d+: network\.switch: unknown switch 'quantum2_qm970' \(did you mean"
        r" 'quantum2_qm9700'\?\); known: quantum2_qm9700, quantum_x800_q3400",
    ),
    (
        {"kind": "fat_tree"},
        [{"building": "a"}, {"building": "b"}],
        r"s\.yaml:\d+: network\.scale_across\.buildings: halls are in several buildings \(site"
        r" site-1\): the links between them need network\.scale_across\.buildings \{bandwidth,"
        r" distance\}",
    ),
    (
        {"kind": "rail_optimized"},
        [{"site": "x", "building": "a"}, {"site": "y", "building": "b"}],
        r"network\.scale_across\.sites: halls are in several sites: the links between them need",
    ),
    (
        {"placement": "packed"},
        [],
        r"s\.yaml:\d+: network\.placement: expected 'pack', 'spread' or 'random', got 'packed'",
    ),
    (
        {"switch": "quantum2_qm9700"},
        [],
        r"s\.yaml:\d+: network\.switch: switch applies to kind fat_tree or rail_optimized: a"
        r" non_blocking fabric has no switches or tiers, so it would change nothing",
    ),
    (
        {"oversubscription": {"pod": 7}},
        [],
        r"s\.yaml:\d+: network\.oversubscription: oversubscription applies to kind fat_tree or"
        r" rail_optimized",
    ),
    (
        None,
        [{}, {"building": "b"}],
        r"s\.yaml:\d+: facility\.halls\[1\]\.building: halls in different buildings need links"
        r" between them, but network\.kind non_blocking joins every domain at full bisection",
    ),
    (
        {
            "kind": "fat_tree",
            "scale_across": {"buildings": {"bandwidth": "1 Tb/s", "distance": "1 km"}},
        },
        [],
        r"network\.scale_across\.buildings: every hall is in one building in each site"
        r" \(facility\.halls\[\]\.building\), so links between buildings would change nothing",
    ),
    (
        {
            "kind": "fat_tree",
            "scale_across": {"buildings": {"bandwidth": "1 Tb/s", "distance": "1 km"}},
        },
        [{"building": "a"}, {"building": "b"}, {"building": "a"}],
        r"facility\.halls\[2\]\.building: halls of building 'a' must be listed together: hall"
        r" 'h2' of building 'b' comes between them",
    ),
    (
        {
            "kind": "rail_optimized",
            "scale_across": {"buildings": {"bandwidth": "1 Tb/s", "distance": "1 km"}},
        },
        [{"building": "a"}, {"building": "a", "site": "other"}],
        r"facility\.halls\[1\]\.site: building 'a' is in site 'site-1' \(an earlier hall\) and in"
        r" site 'other' here",
    ),
    (
        {"kind": "fat_tree", "link_speed": "800 Gb/s"},
        [],
        r"network\.link_speed: 800 Gb/s per GPU is faster than the 400 Gb/s NIC of GB200 NVL72",
    ),
    (
        {"kind": "fat_tree", "link_speed": 400},
        [],
        r"network\.link_speed: 400 has no unit; write it with one, e\.g\. '400 Gb/s'",
    ),
    (
        {"kind": "fat_tree", "switch": "quantum_x800_q3400"},
        [],
        r"network\.switch: a 400 Gb/s link is not a whole number of NVIDIA"
        r" Quantum-X800 Q3400 \(XDR InfiniBand, 4U\) ports \(its port speeds: 800 Gb/s\) \(hall"
        r" 'h1'\): choose another switch",
    ),
    (
        {"kind": "fat_tree", "oversubscripton": {"pod": 3}},
        [],
        r"network\.oversubscripton: unknown key 'oversubscripton' \(did you mean"
        r" 'oversubscription'\?\)",
    ),
    (
        {"kind": "fat_tree", "oversubscription": {"pod": 0.5}},
        [],
        r"network\.oversubscription\.pod: 0\.5 is outside the plausible range \[1, 100\]",
    ),
    (
        {"kind": "rail_optimized", "scale_across": {"sites": {"bandwidth": "1 Tb/s"}}},
        [{"site": "x"}, {"site": "y", "building": "b"}],
        r"network\.scale_across\.sites\.distance: required key is missing",
    ),
]


@pytest.mark.parametrize(("network", "hall_keys", "message"), BAD)
def test_bad_networks_are_refused_with_key_paths(
    network: dict[str, Any] | None, hall_keys: list[dict[str, Any]], message: str
) -> None:
    msg = error(scenario(network, *hall_keys))
    assert re.search(message, msg), msg
