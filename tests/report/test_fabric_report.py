"""The fabric in the report: the placement treemap, the uplink load by tier, the network tables
and card; on a fat-tree run, on the default non_blocking run, and on tables without a fabric."""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from sim.io import RunTables
from sim.report import fabric as N
from sim.report import figures as F
from sim.report.html import network_section, render_report
from sim.report.style import WORKLOAD_COLORS, holder_colors

DAY, H = 86_400.0, 3600.0


def _fabric(rows: list[tuple[int, int, int, str, int, int, int, str, str, int]]) -> pd.DataFrame:
    """``fabric.parquet`` rows: (unit, pod, building, hall, domains, free, failed, holder,
    holder_workload, held), one site."""
    cols = ["unit", "pod", "building", "hall", "domains", "free", "failed"]
    cols += ["holder", "holder_workload", "held"]
    return pd.DataFrame(rows, columns=cols).assign(site=0)


def _tiles(fig: go.Figure) -> dict[str, tuple[str, str, int]]:
    """Treemap id -> (label, colour, value) of every tile (a node with a value)."""
    tm = fig.data[0]
    return {
        i: (lab, col, v)
        for i, lab, col, v in zip(tm.ids, tm.labels, tm.marker.colors, tm.values, strict=True)
        if v > 0
    }


def _shade_of(color: str, workload: str) -> bool:
    """Whether ``color`` is a shade of the workload's colour: its hue within 0.03 of it."""

    def hue(c: str) -> float:
        r, g, b = (int(c.lstrip("#")[k : k + 2], 16) / 255 for k in (0, 2, 4))
        return colorsys.rgb_to_hls(r, g, b)[0]

    d = abs(hue(color) - hue(WORKLOAD_COLORS[workload]))
    return min(d, 1 - d) < 0.03


def _one_colour_per_holder(fig: go.Figure) -> dict[str, str]:
    """Label -> colour of the tiles, checking that each label has one colour and different
    labels different colours."""
    seen: dict[str, set[str]] = {}
    for label, color, _ in _tiles(fig).values():
        seen.setdefault(label, set()).add(color)
    assert all(len(c) == 1 for c in seen.values()), seen
    colors = {k: next(iter(v)) for k, v in seen.items()}
    assert len(set(colors.values())) == len(colors), colors
    return colors


# --------------------------------------------------------------------------- placement


def test_placement_by_hand() -> None:
    # two buildings of one hall each; pod 0: unit 0 held by a job, unit 1 split between a
    # service and free; pod 1: unit 2 failed; pod 2, in the other building: unit 3 free
    fabric = _fabric(
        [
            (0, 0, 0, "hall-a", 2, 0, 0, "pre", "pretraining", 2),
            (1, 0, 0, "hall-a", 2, 1, 0, "svc", "inference", 1),
            (2, 1, 0, "hall-a", 2, 0, 2, "", "", 0),
            (3, 2, 1, "hall-b", 2, 2, 0, "", "", 0),
        ]
    )
    scenario = {
        "facility": {
            "halls": [
                {"name": "hall-a", "building": "north", "site": "campus"},
                {"name": "hall-b", "building": "south", "site": "campus"},
            ]
        }
    }
    fig = N.placement_figure(fabric, scenario)
    c = holder_colors([("pre", "pretraining"), ("svc", "inference")])
    tm = fig.data[0]
    nodes = dict(zip(tm.ids, zip(tm.parents, tm.labels, strict=True), strict=True))
    # one site (the root), two buildings, no hall boxes (one hall per building: they split
    # nothing), pods; unit 1 is a box of its two parts
    assert nodes["fabric"] == ("", "campus")
    assert nodes["fabric/building0"] == ("fabric", "north")
    assert nodes["fabric/building1"] == ("fabric", "south")
    assert nodes["fabric/building0/pod0"] == ("fabric/building0", "pod 0")
    assert nodes["fabric/building0/pod0/unit1"] == ("fabric/building0/pod0", "unit 1")
    tiles = _tiles(fig)
    assert tiles == {
        "fabric/building0/pod0/unit0": ("pre", c["pre"], 2),
        "fabric/building0/pod0/unit1/svc": ("svc", c["svc"], 1),
        "fabric/building0/pod0/unit1/free": ("free", WORKLOAD_COLORS["idle"], 1),
        "fabric/building0/pod1/unit2": ("failed", WORKLOAD_COLORS["failed"], 2),
        "fabric/building1/pod2/unit3": ("free", WORKLOAD_COLORS["idle"], 2),
    }
    assert tm.branchvalues == "remainder"  # a box is as large as its tiles
    hover = dict(zip(tm.ids, tm.hovertext, strict=True))
    h = hover["fabric/building0/pod0/unit1"]
    for text in ("unit 1", "pod: 0", "building: north", "hall: hall-a", "svc (inference) 1"):
        assert text in h, h
    assert "2: 1 held, 1 free, 0 failed" in h
    assert "0 held, 0 free, 2 failed" in hover["fabric/building0/pod1/unit2"]
    title = fig.layout.title.text
    assert title.startswith("Placement at the end of the run (4 units): 38% of 8 domains held")
    assert "2 failed" in title


def test_many_units_are_drawn_as_pods_in_their_main_colour() -> None:
    # 4,200 units of one domain in 210 pods of 20: more than MAX_CELLS, so pods are the cells,
    # and more than SPLIT_CELLS pods, so each is one tile
    n = 4200
    unit = np.arange(n)
    holder = np.where(unit < 1500, "big", np.where(unit % 20 < 12, "", "svc"))
    holder = np.where(unit >= n - 20, "", holder)
    fabric = pd.DataFrame(
        {
            "unit": unit,
            "pod": unit // 20,
            "building": 0,
            "site": 0,
            "hall": np.where(unit < 2000, "hall-a", "hall-b"),
            "domains": 1,
            "free": (holder == "").astype(int) * (unit < n - 20),
            "failed": (unit >= n - 20).astype(int),
            "holder": holder,
            "holder_workload": np.where(holder == "big", "pretraining", "inference"),
            "held": (holder != "").astype(int),
        }
    )
    level, cells, parts = N.placement_cells(fabric)
    assert level == "pod" and len(cells) == 210 > N.SPLIT_CELLS
    assert cells["units"].eq(20).all() and cells["domains"].sum() == n
    fig = N.placement_figure(fabric)
    tiles = _tiles(fig)
    assert len(tiles) == 210  # one tile per pod, no parts
    labels = [lab for lab, _, _ in tiles.values()]
    # pods 0-74 all "big"; later pods 8 of 20 "svc" (less than half held: free); the last failed
    assert labels.count("big") == 75 and labels.count("svc") == 0
    assert labels.count("free") == 134 and labels.count("failed") == 1
    assert "210 pods, as 4,200 units are too many to draw" in fig.layout.title.text
    # the parts are still there for the hover
    last = parts[parts["cell"] == 209].set_index("part")["domains"].to_dict()
    assert last == {"failed": 20}
    svc_pod = parts[parts["cell"] == 100].set_index("part")["domains"].to_dict()
    assert svc_pod == {"svc": 8, "free": 12}
    hover = dict(zip(fig.data[0].ids, fig.data[0].hovertext, strict=True))
    assert "svc (inference) 8" in hover["fabric/hallhall-b/pod100"]


def test_a_10_gw_fabric_stays_a_few_thousand_tiles() -> None:
    # 57,000 racks in pods of 21 (a 10 GW GB200 site), 40 halls of 68 pods, 4 buildings:
    # ~2,700 pod tiles
    n = 57_000
    unit = np.arange(n)
    pod = unit // 21
    holder = np.array([f"job{i}" for i in range(300)])[(unit // 97) % 300]
    fabric = pd.DataFrame(
        {
            "unit": unit,
            "pod": pod,
            "building": pod // 680,
            "site": 0,
            "hall": [f"hall-{h}" for h in pod // 68],
            "domains": 1,
            "free": 0,
            "failed": 0,
            "holder": holder,
            "holder_workload": "posttraining",
            "held": 1,
        }
    )
    fig = N.placement_figure(fabric)
    assert len(_tiles(fig)) == math.ceil(n / 21)
    assert len(fig.data[0].ids) < 3000
    _one_colour_per_holder(fig)


def test_placement_of_a_fabric_run_has_one_colour_per_holder(fabric_tables: RunTables) -> None:
    t = fabric_tables
    assert N.has_placement(t.fabric)
    fig = N.placement_figure(t.fabric, t.scenario)
    colors = _one_colour_per_holder(fig)
    # the spread pre-training run sits in all four pods, in a shade of its workload's colour
    assert _shade_of(colors["pretrain-8b"], "pretraining")
    pods = {i.split("/")[1] for i, (lab, _, _) in _tiles(fig).items() if lab == "pretrain-8b"}
    assert pods == {"pod0", "pod1", "pod2", "pod3"}
    assert sum(v for _, _, v in _tiles(fig).values()) == int(t.fabric["domains"].sum())
    assert "end of the run" in fig.layout.title.text


def test_non_blocking_and_missing_fabrics(
    smoke_tables: RunTables, small_tables: Callable[..., RunTables]
) -> None:
    # the default fabric: one row per site; the figure builds, the report leaves it out
    t = smoke_tables
    assert len(t.fabric) == 1 and not N.has_placement(t.fabric)
    fig = N.placement_figure(t.fabric, t.scenario)
    assert sum(v for _, _, v in _tiles(fig).values()) == int(t.fabric["domains"].sum())
    ids = {spec.id for spec, _ in F.figures_for(t)}
    assert not {"placement", "uplinks"} & ids
    # tables made by hand (or a run folder from before the fabric): no fabric table at all
    small = small_tables()
    assert small.fabric.empty and not N.has_placement(small.fabric)
    assert not {"placement", "uplinks"} & {spec.id for spec, _ in F.figures_for(small)}
    assert network_section(small) == "" and network_section(t) == ""


def test_holder_colours_are_shades_of_the_workload() -> None:
    holders = [("pre", "pretraining"), ("svc", "inference")]
    holders += [(f"rl#{i}", "posttraining") for i in range(500)]
    colors = holder_colors(holders)
    assert _shade_of(colors["pre"], "pretraining") and _shade_of(colors["svc"], "inference")
    assert all(_shade_of(colors[f"rl#{i}"], "posttraining") for i in range(500))
    assert len(set(colors.values())) == len(colors) == 502
    assert not {WORKLOAD_COLORS["idle"], WORKLOAD_COLORS["failed"]} & set(colors.values())
    assert len(holder_colors([("a", "x"), ("a", "x")])) == 1
    # picked by the name: a job has the same colour in another run, with other jobs around it
    again = holder_colors([("rl#7", "posttraining"), ("other", "pretraining")])
    assert again["rl#7"] == colors["rl#7"]


# --------------------------------------------------------------------------- uplink load


def test_uplink_load_by_tier(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables(fabric=True)
    fig = F.uplink_load_figure(t.traces, t.summary)
    assert [tr.name for tr in fig.data] == ["pod uplinks"]
    np.testing.assert_allclose(fig.data[0].y, [50.0, 100.0, 25.0, 0.0])
    assert fig.layout.yaxis.title.text == "uplink load (% of capacity)"
    assert fig.layout.xaxis.title.text == "time (days)"
    title = fig.layout.title.text
    assert "mean pod 44%" in title and "network cost pre-training 0.5 h" in title


def test_uplink_load_of_a_year_is_daily_bands() -> None:
    n = 365 * 24
    hour = np.arange(n) % 24
    traces = pd.DataFrame(
        {
            "time_s": np.arange(n) * H,
            "interval_s": H,
            "fabric.building.uplink_load": np.where(hour < 12, 1.0, 0.5),
            "fabric.pod.uplink_load": 0.2,
        }
    )
    fig = F.uplink_load_figure(traces)
    by = {tr.name: tr for tr in fig.data}
    # innermost tier first, each a band from the day's low to its high under its daily mean
    assert list(by) == [
        "pod, daily low to high (low)",
        "pod, daily low to high",
        "pod uplinks, mean per day",
        "building, daily low to high (low)",
        "building, daily low to high",
        "building uplinks, mean per day",
    ]
    assert all(len(tr.x) == 365 for tr in fig.data)
    np.testing.assert_allclose(by["building uplinks, mean per day"].y, 75.0)
    np.testing.assert_allclose(by["building, daily low to high (low)"].y, 50.0)
    np.testing.assert_allclose(by["building, daily low to high"].y, 100.0)
    assert "means per day" in fig.layout.title.text


def test_fabric_run_figures(fabric_tables: RunTables) -> None:
    figs = dict((spec.id, fig) for spec, fig in F.figures_for(fabric_tables))
    assert {"placement", "uplinks"} <= set(figs)
    names = [tr.name for tr in figs["uplinks"].data]
    assert "pod uplinks" in names
    assert "network cost pre-training" in figs["uplinks"].layout.title.text


# --------------------------------------------------------------------------- tables, card


def test_network_tables(small_tables: Callable[..., RunTables], fabric_tables: RunTables) -> None:
    t = small_tables(fabric=True)
    tiers = N.network_tiers_table(t.summary["network"])
    assert list(tiers.index) == ["unit", "pod", "building", "site"]
    assert tiers.loc["pod", "bisection_tbps"] == 1.35
    assert tiers.loc["unit", "switches"] == 9 and tiers.loc["site", "switches"] == 0
    assert tiers.loc["pod", "switch_models"] == "2 x quantum2_qm9700"
    assert tiers.loc["pod", "mean_uplink_load"] == pytest.approx(0.4375)
    assert math.isnan(tiers.loc["unit", "mean_uplink_load"])
    runs = N.pretraining_spans_table(t.jobs)
    assert list(runs.index) == ["pre-a"]
    assert runs.loc["pre-a", ["span_units", "span_pods"]].tolist() == [2.0, 2.0]
    assert runs.loc["pre-a", "network_slowdown_h"] == 0.5
    # a jobs table from before the fabric: the runs, without spans
    old = N.pretraining_spans_table(small_tables().jobs.drop(columns=["span_units"]))
    assert math.isnan(old.loc["pre-a", "span_units"])
    real = N.pretraining_spans_table(fabric_tables.jobs)
    assert real.loc["pretrain-8b", "span_pods"] == 4.0
    assert real.loc["pretrain-8b", "network_slowdown_h"] > 0.1


def test_report_network_card_and_section(
    small_tables: Callable[..., RunTables], smoke_tables: RunTables
) -> None:
    page = render_report(small_tables(fabric=True))
    card = re.search(
        r'network</div><div class="value">([^<]*)</div><div class="note">([^<]*)<', page
    )
    assert card is not None
    assert card.group(1) == "fat_tree, spread"
    assert card.group(2) == (
        "narrowest bisection pod 1.35 Tb/s; 11 switches; 0.0278 MW (6.9% of IT);"
        " network cost pre-training 0.5 h"
    )
    section = re.search(r'<section id="network">(.*?)</section>', page, re.S)
    assert section is not None and '<a href="#network">Network</a>' in page
    rows = re.findall(r"<tr>(.*?)</tr>", section.group(1))
    cells = [re.findall(r"<t[dh]>([^<]*)</t[dh]>", r) for r in rows]
    assert cells[2] == ["pod", "1.35", "2", "2 x quantum2_qm9700", "216", "43.8%"]
    assert cells[1][-1] == "cannot bind"
    assert "mean offered uplink load" in section.group(1)
    assert "a demand, not a utilisation" in section.group(1)
    assert cells[-1] == ["pre-a", "72", "running", "2", "2", "1", "1", "0.50"]
    # the default fabric: a card, no section
    smoke = render_report(smoke_tables)
    assert "ideal: full bisection everywhere, nothing counted" in smoke
    assert '<section id="network">' not in smoke and 'href="#network"' not in smoke
    # no summary.network (tables by hand, older run folders): neither
    plain = render_report(small_tables())
    assert '<div class="label">network</div>' not in plain
