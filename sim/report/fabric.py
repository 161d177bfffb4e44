"""The fabric in a report: where the jobs sat on it, and what it is made of.

Pure functions of the run tables (:class:`~sim.io.RunTables`), no I/O:

* :func:`placement_figure`: who held the fabric at the end of the run, as a treemap of its
  units nested site -> building -> hall -> pod (a box that splits nothing is left out); a
  unit's area is its domains, filled by the jobs and services holding them (one colour per
  holder, a shade of its workload's: :func:`~sim.report.style.holder_colors`), grey where free,
  red where failed. Above :data:`MAX_CELLS` units the cells are pods (10 GW of NVL72 racks is
  ~57,000 units in ~2,700 pods), above as many pods buildings. Up to :data:`SPLIT_CELLS`
  cells, a cell with several holders is split among them (at most :data:`TOP_HOLDERS` named,
  the rest "other jobs"); above, each cell is one tile in the colour of its main holder where
  at least half of it is held, else grey or red. ``fabric.parquet`` gives each unit's main
  holder only, so a pod's holders are its units' main holders;
* :func:`network_tiers_table`: per tier, bisection (Tb/s), switches, links, mean uplink load,
  from ``summary["network"]``;
* :func:`pretraining_spans_table`: per pre-training run, the groups of each tier it touched at
  its last start and the wall time the network cost it (hours), from the jobs table.

Input tables are ``fabric.parquet`` (:data:`sim.contract.FABRIC_COLUMNS`: one row per unit;
one per site on the default ``non_blocking`` fabric; empty for run folders from before the
fabric) and ``jobs.parquet``. Numbers in SI, except where the name says (``_tbps``, ``_h``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sim.contract import JOB_COLUMNS, slowdown_column
from sim.report.style import WORKLOAD_COLORS, fmt, holder_colors, plural, styled
from sim.units import HOUR_S

__all__ = [
    "MAX_CELLS",
    "SPAN_COLUMNS",
    "SPLIT_CELLS",
    "TIERS",
    "TOP_HOLDERS",
    "has_placement",
    "network_tiers_table",
    "part_colors",
    "placement_cells",
    "placement_figure",
    "pretraining_spans_table",
]

#: The fabric's tiers, innermost first (the columns of ``fabric.parquet`` and the ``span_``
#: columns of the jobs table).
TIERS = ("unit", "pod", "building", "site")
#: The jobs table's spans, innermost tier first (``span_units`` ... ``span_sites``).
SPAN_COLUMNS = tuple(c for c in JOB_COLUMNS if c.startswith("span_"))
#: At most this many cells (units, else pods, else buildings) in the placement view: a treemap
#: of a few thousand cells draws in about a second and its cells are still a few pixels wide.
MAX_CELLS = 3000
#: Up to this many cells, a cell with several parts (holders, free, failed) is a box of tiles,
#: one per part; above, each cell is one tile in the colour of its largest part (boxes of a few
#: thousand cells are all padding).
SPLIT_CELLS = 200
#: At most this many holders are named in one cell; the rest of what it holds is "other jobs".
TOP_HOLDERS = 3
FREE, FAILED, OTHER = "free", "failed", "other jobs"
#: Colours of the parts of a cell that are not a holder.
_PART_COLORS = {FREE: WORKLOAD_COLORS["idle"], FAILED: WORKLOAD_COLORS["failed"], OTHER: "#8c8c8c"}
_KEYS = ("site", "building", "pod", "unit")
_SUMS = ["units", "domains", "free", "failed"]
_NEEDED = ("unit", "pod", "building", "site", "hall", "domains", "free", "failed", "holder", "held")


def has_placement(fabric: pd.DataFrame) -> bool:
    """True when the run has a fabric with more than one unit (a ``non_blocking`` fabric is one
    cell per site: nothing to see)."""
    return len(fabric) > 1 and all(c in fabric.columns for c in _NEEDED)


# --------------------------------------------------------------------------- placement


def _level(fabric: pd.DataFrame, max_cells: int) -> str:
    """The finest tier the fabric has with at most ``max_cells`` groups (else the building)."""
    for tier in ("unit", "pod"):
        if (fabric[tier] >= 0).all() and fabric[tier].nunique() <= max_cells:
            return tier
    return "building"


def placement_cells(
    fabric: pd.DataFrame, max_cells: int = MAX_CELLS
) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The cells of the placement view and what fills them: ``(level, cells, parts)``.

    ``level`` is the finest tier with at most ``max_cells`` groups (unit, else pod, else
    building). ``cells`` has one row per group of it (``cell``: 0, 1, ...), with ``site``,
    ``building``, ``pod``, ``unit`` (-1 where the fabric lacks the tier or it is inside the
    cell), ``hall`` (halls joined by ", " for a building), ``units``, ``domains``, ``free`` and
    ``failed``. ``parts`` has one row per part of a cell with domains in it, in drawing order:
    its holders with the most domains first (a unit's main holder counted for its ``held``
    domains; at most :data:`TOP_HOLDERS`), then ``other jobs`` (the rest of what is held),
    ``free`` and ``failed``; columns ``cell``, ``part``, ``workload`` and ``domains``.
    """
    f = fabric.reset_index(drop=True)
    level = _level(f, max_cells)
    keys = list(_KEYS[: _KEYS.index(level) + 1])
    holder = f["holder"].fillna("").astype(str)
    workload = (
        f["holder_workload"].fillna("").astype(str)
        if "holder_workload" in f
        else pd.Series("", index=f.index)
    )
    f = f.assign(
        holder=holder,
        holder_workload=workload.where(holder != "", ""),
        held=np.where(holder != "", f["held"].to_numpy(), 0),
    )
    cells = (
        f.groupby(keys, sort=True)
        .agg(
            units=("unit", "size"),
            domains=("domains", "sum"),
            free=("free", "sum"),
            failed=("failed", "sum"),
        )
        .reset_index()
    )
    halls = f.drop_duplicates([*keys, "hall"]).groupby(keys, sort=True)["hall"]
    cells["hall"] = halls.agg(lambda h: ", ".join(h.astype(str))).to_numpy()
    cells.insert(0, "cell", np.arange(len(cells)))
    for tier in _KEYS:
        if tier not in cells:
            cells[tier] = -1
    f = f.merge(cells[[*keys, "cell"]], on=keys, how="left")
    held = (
        f[f["holder"] != ""]
        .groupby(["cell", "holder"], sort=False)
        .agg(domains=("held", "sum"), workload=("holder_workload", "first"))
        .reset_index()
        .rename(columns={"holder": "part"})
        .sort_values(["cell", "domains", "part"], ascending=[True, False, True], kind="stable")
    )
    named = held[held.groupby("cell").cumcount() < TOP_HOLDERS].assign(order=0)
    named_domains = named.groupby("cell")["domains"].sum().reindex(cells["cell"], fill_value=0)
    rest = cells["domains"] - cells["free"] - cells["failed"] - named_domains.to_numpy()
    others = [
        pd.DataFrame(
            {"cell": cells["cell"], "part": name, "workload": "", "domains": d, "order": i}
        )
        for i, (name, d) in enumerate(
            ((OTHER, rest.clip(lower=0)), (FREE, cells["free"]), (FAILED, cells["failed"])),
            start=1,
        )
    ]
    parts = pd.concat([named, *others], ignore_index=True)
    parts = parts[parts["domains"] > 0].sort_values(["cell", "order"], kind="stable")
    parts = parts.drop(columns="order").reset_index(drop=True)
    parts["domains"] = parts["domains"].astype(int)
    return level, cells[["cell", *_KEYS, "hall", "units", "domains", "free", "failed"]], parts


def part_colors(parts: pd.DataFrame) -> dict[str, str]:
    """Colour of each part name of :func:`placement_cells`: one per holder
    (:func:`~sim.report.style.holder_colors`, the holders with the most domains first), grey
    for free, red for failed, dark grey for other jobs."""
    held = parts[~parts["part"].isin(list(_PART_COLORS))]
    order = held.groupby("part", sort=False)["domains"].sum().sort_values(ascending=False)
    workload = dict(zip(held["part"], held["workload"], strict=True))
    return holder_colors((str(p), workload[p]) for p in order.index) | _PART_COLORS


def _names(scenario: dict[str, Any] | None, cells: pd.DataFrame, tier: str) -> dict[int, str]:
    """Group index -> name of the buildings or sites: the scenario's building or site of their
    first hall; ``building 3`` when the scenario does not say."""
    by_hall = {
        str(h.get("name")): str(h.get(tier) or "")
        for h in (scenario or {}).get("facility", {}).get("halls", [])
    }
    out: dict[int, str] = {}
    for g, halls in zip(cells[tier].to_numpy(), cells["hall"], strict=True):
        if int(g) not in out:
            out[int(g)] = by_hall.get(str(halls).split(", ")[0]) or f"{tier} {int(g)}"
    return out


def placement_figure(
    fabric: pd.DataFrame, scenario: dict[str, Any] | None = None, max_cells: int = MAX_CELLS
) -> go.Figure:
    """Placement on the fabric at the end of the run: a treemap of its units (or pods), nested
    site -> building -> hall -> pod, each cell's area its domains, filled by who holds them
    (see the module docstring). ``scenario`` (the resolved scenario) names the buildings and
    sites. A cell held by one holder (or all free, or all failed) is one tile in its colour;
    a cell with several parts is a box of tiles, one per part."""
    level, cells, parts = placement_cells(fabric, max_cells)
    colors = part_colors(parts)
    names = {t: _names(scenario, cells, t) for t in ("site", "building")}
    many_sites = cells["site"].nunique() > 1
    path = _boxes(cells, level)
    tm = _Treemap()
    root = "fabric"
    title = "all sites" if many_sites else names["site"].get(int(cells["site"].iloc[0]), "site")
    tm.add(root, "", title, "white", _group_hover(title, cells[_SUMS].sum()))
    for depth, tier in enumerate(path):
        ids = pd.Series(_path_ids(cells, path[: depth + 1]), index=cells.index)
        up = _path_ids(cells, path[:depth])
        boxes = cells[_SUMS].groupby(ids, sort=False).sum()
        first = pd.Series(range(len(cells))).groupby(ids.to_numpy(), sort=False).first()
        for box, i in first.items():
            name = _group_name(tier, cells.iloc[i], names)
            tm.add(str(box), up[i], name, "#f7f7f7", _group_hover(name, boxes.loc[str(box)]))
    parents = _path_ids(cells, path)
    split = len(cells) <= SPLIT_CELLS
    by_cell: dict[int, list[tuple[str, str, int]]] = {}
    for cell, part, workload, n in zip(
        parts["cell"], parts["part"], parts["workload"], parts["domains"], strict=True
    ):
        by_cell.setdefault(int(cell), []).append((str(part), str(workload), int(n)))
    for c, parent in zip(cells.to_dict("records"), parents, strict=True):
        mine = by_cell[int(c["cell"])]
        cid = f"{parent}/{level}{int(c[level])}"
        hover = _cell_hover(level, c, mine, names)
        if len(mine) == 1 or not split:  # one tile
            part = _tile_part(c, mine)
            tm.add(cid, parent, part, colors[part], hover, int(c["domains"]))
            continue
        tm.add(cid, parent, f"{level} {int(c[level])}", "#f7f7f7", hover)
        for part, workload, n in mine:
            who = f"{part} ({workload})" if workload else part
            tm.add(
                f"{cid}/{part}",
                cid,
                part,
                colors[part],
                f"<b>{html.escape(who)}</b><br>{n:,} of the {int(c['domains']):,} domains"
                f" of {level} {int(c[level])}<br>" + hover,
                n,
            )
    fig = go.Figure(tm.trace())
    domains = int(cells["domains"].sum())
    free, failed = int(cells["free"].sum()), int(cells["failed"].sum())
    n_units = int(cells["units"].sum())
    drawn = (
        plural(n_units, "unit")
        if level == "unit"
        else f"{plural(len(cells), level)}, as {n_units:,} units are too many to draw"
    )
    held = fmt(1 - (free + failed) / domains if domains else None, ".0%")
    title = (
        f"Placement at the end of the run ({drawn}): {held} of {plural(domains, 'domain')}"
        f" held, {free:,} free, {failed:,} failed<br><sup>"
        + (
            "domains (area) in the colour of the job or service holding them"
            if split
            else f"each {level} (area: its domains) in the colour of its main job or service"
            " where at least half of it is held"
        )
        + " (a shade of its workload's: blue pre-training, orange post-training, green"
        " inference), else free (grey) or failed (red); dark grey: other jobs</sup>"
    )
    fig = styled(fig, title, height=640)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 80, "b": 10}, hovermode="closest")
    return fig


def _tile_part(cell: Mapping[Any, Any], parts: list[tuple[str, str, int]]) -> str:
    """What a cell drawn as one tile shows: where at least half of it is held, its main holder
    (``other jobs`` if none is named); else ``failed`` where more failed than are free, else
    ``free``."""
    domains, free, failed = int(cell["domains"]), int(cell["free"]), int(cell["failed"])
    held = domains - free - failed
    if held > 0 and held >= free + failed:
        return next((p for p, _, _ in parts if p not in _PART_COLORS), OTHER)
    return FAILED if failed > free else FREE


class _Treemap:
    """The nodes of a treemap, added parent first; only tiles carry a value (``remainder``:
    a box is as large as what is in it)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {k: [] for k in ("ids", "parents", "labels")}
        self.colors: list[str] = []
        self.hover: list[str] = []
        self.values: list[int] = []

    def add(
        self, id_: str, parent: str, label: str, color: str, hover: str, value: int = 0
    ) -> None:
        for k, v in zip(("ids", "parents", "labels"), (id_, parent, label), strict=True):
            self.cols[k].append(v)
        self.colors.append(color)
        self.hover.append(hover)
        self.values.append(value)

    def trace(self) -> go.Treemap:
        return go.Treemap(
            **self.cols,
            values=self.values,
            branchvalues="remainder",
            marker={"colors": self.colors, "line": {"width": 0.5, "color": "white"}},
            hovertext=self.hover,
            hoverinfo="text",
            textinfo="label",
            tiling={"pad": 2},
            root={"color": "white"},
            sort=False,
        )


def _boxes(cells: pd.DataFrame, level: str) -> list[str]:
    """The tiers boxed around cells of ``level``, outermost first: not a tier inside the cells
    (nor the hall around buildings), not one the fabric lacks (-1), and not one that splits no
    box above it (one site; a building of one hall; a hall of one pod)."""
    inside = {"unit": (), "pod": ("pod",), "building": ("pod", "building", "hall")}
    path: list[str] = []
    for tier in ("site", "building", "hall", "pod"):
        if tier in inside[level] or (cells[tier].astype(str) == "-1").any():
            continue
        before = len(set(_path_ids(cells, path)))
        if len(set(_path_ids(cells, [*path, tier]))) > before:
            path.append(tier)
    return path


def _path_ids(cells: pd.DataFrame, cols: list[str]) -> list[str]:
    """Treemap ids of the boxes along ``cols`` (``fabric/site0/building1/hallhall-a/pod7``)."""
    out = pd.Series("fabric", index=cells.index)
    for c in cols:
        out = out + "/" + c + cells[c].astype(str)
    return out.tolist()


def _group_name(tier: str, row: Any, names: dict[str, dict[int, str]]) -> str:
    if tier in names:
        return names[tier].get(int(row[tier]), f"{tier} {int(row[tier])}")
    if tier == "hall":
        return str(row["hall"])
    return f"{tier} {int(row[tier])}"


def _hover(lines: list[tuple[str, Any]]) -> str:
    return "<br>".join(f"{k}: {html.escape(str(v))}" if k else str(v) for k, v in lines)


def _group_hover(name: str, sums: Any) -> str:
    """Hover text of a box: ``sums`` has its ``units``, ``domains``, ``free`` and ``failed``."""
    domains, free, failed = (int(sums[c]) for c in ("domains", "free", "failed"))
    return _hover(
        [
            ("", f"<b>{html.escape(name)}</b>"),
            ("units", f"{int(sums['units']):,}"),
            (
                "domains",
                f"{domains:,}: {domains - free - failed:,} held, {free:,} free, {failed:,} failed",
            ),
        ]
    )


def _cell_hover(
    level: str,
    c: Mapping[Any, Any],
    parts: list[tuple[str, str, int]],
    names: dict[str, dict[int, str]],
) -> str:
    where: list[tuple[str, Any]] = []
    if level == "unit":
        where.append(("pod", int(c["pod"]) if int(c["pod"]) >= 0 else "none"))
    else:
        where.append(("units", f"{int(c['units']):,}"))
    if level != "building":
        where.append(("building", names["building"].get(int(c["building"]), "none")))
    where += [("site", names["site"].get(int(c["site"]), "")), ("hall", c["hall"])]
    held = [f"{p}{f' ({w})' if w else ''} {n:,}" for p, w, n in parts if p not in _PART_COLORS]
    domains, free, failed = int(c["domains"]), int(c["free"]), int(c["failed"])
    return _hover(
        [
            ("", f"<b>{level} {int(c[level])}</b>"),
            *where,
            ("holders", ", ".join(held) if held else "none"),
            (
                "domains",
                f"{domains:,}: {domains - free - failed:,} held, {free:,} free, {failed:,} failed",
            ),
        ]
    )


# --------------------------------------------------------------------------- tables


def network_tiers_table(network: dict[str, Any]) -> pd.DataFrame:
    """One row per tier of ``summary["network"]`` (innermost first): ``bisection_tbps``,
    ``switches`` (count), ``switch_models`` (``"48 x quantum2_qm9700"``), ``links`` (cables
    up from the tier) and ``mean_uplink_load`` (0-1; NaN where the tier's uplinks cannot
    bind, so nothing was traced)."""
    rows = []
    for tier in network.get("tiers", []):
        models = (network.get("switches") or {}).get(tier) or {}
        load = (network.get("mean_uplink_load") or {}).get(tier)
        rows.append(
            {
                "tier": tier,
                "bisection_tbps": float((network.get("bisection_tbps") or {}).get(tier, np.nan)),
                "switches": int(sum(models.values())),
                "switch_models": ", ".join(f"{n:,} x {m}" for m, n in models.items()),
                "links": int((network.get("links") or {}).get(tier, 0)),
                "mean_uplink_load": float(load) if load is not None else np.nan,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "tier",
            "bisection_tbps",
            "switches",
            "switch_models",
            "links",
            "mean_uplink_load",
        ],
    ).set_index("tier")


def pretraining_spans_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per pre-training run (index: its name): ``gpus``, ``state``, the groups of each
    tier it touched at its last start (``span_units`` ... ``span_sites``; NaN where not
    applicable or for a run folder from before the fabric) and ``network_slowdown_h``, the wall
    time the network cost it."""
    cols = list(SPAN_COLUMNS)
    out_cols = ["gpus", "state", *cols, "network_slowdown_h"]
    if "workload" not in jobs:
        return pd.DataFrame(columns=out_cols, index=pd.Index([], name="name"))
    pre = jobs[jobs["workload"] == "pretraining"]
    out = pd.DataFrame(index=pd.Index(pre["name"].astype(str), name="name"))
    out["gpus"] = pre["gpus"].to_numpy(dtype=float) if "gpus" in pre else np.nan
    out["state"] = pre["state"].astype(str).to_numpy() if "state" in pre else ""
    for c in cols:
        out[c] = pre[c].to_numpy(dtype=float) if c in pre else np.nan
    slow = slowdown_column("network")
    out["network_slowdown_h"] = pre[slow].to_numpy(dtype=float) / HOUR_S if slow in pre else np.nan
    return out[out_cols]
