"""``report.html``: one self-contained page per run (no network needed to open it).

:func:`render_report` returns the page as a string; the runner and ``aifactory report`` write it
(this package does no I/O). The page holds, in order: a headline KPI block from
``summary.json``, the network (per tier and per pre-training run; only for a switched fabric),
every figure of :data:`sim.report.figures.FIGURES` whose data is in the run, and the resolved
scenario as YAML.

Self-contained means: plotly.js is embedded once, inline, in the page head, and each figure is a
``<div>`` plus a small inline script calling it (``include_plotlyjs=False``); no ``src`` or
``href`` points outside the page. A tiny inline script records JavaScript errors, failed loads
and ``console.error`` calls into ``<div id="report-log">`` (``data-errors`` holds the count), so
a headless browser can check that the page rendered cleanly.

:func:`html_page` and :func:`figure_section` are shared with :mod:`sim.report.compare`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import yaml

from sim.contract import JOB_COLUMNS
from sim.io import RunTables
from sim.report.commitment import commitment_figure, commitment_table_html
from sim.report.fabric import SPAN_COLUMNS, network_tiers_table, pretraining_spans_table
from sim.report.figures import figures_for
from sim.report.kpis import (
    blended_cost_per_million_tokens_usd,
    capex_known,
    service_costs_per_million_tokens_usd,
    training_run_days,
)
from sim.report.scenario_text import scenario_as_written
from sim.report.style import duration, fmt, money, plural, si
from sim.units import QuantityError, parse_quantity

__all__ = [
    "batch_bound",
    "figure_section",
    "html_page",
    "kpi_block",
    "network_section",
    "reliability_section",
    "render_commitment",
    "render_report",
    "tokens_per",
]

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; color: #222; margin: 0 auto; max-width: 1280px;
       padding: 0 24px 48px; }
header { border-bottom: 2px solid #1e88e5; margin-bottom: 16px; }
h1 { margin: 24px 0 4px; font-size: 26px; }
h2 { font-size: 19px; margin: 28px 0 8px; }
.meta { color: #555; margin: 4px 0 12px; }
nav a { margin-right: 14px; color: #1e88e5; text-decoration: none; font-size: 14px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; background: #fafafa; }
.kpi .label { font-size: 12px; color: #666; text-transform: uppercase; letter-spacing: .03em; }
.kpi .value { font-size: 22px; font-weight: bold; margin: 4px 0; }
.kpi .note { font-size: 12px; color: #555; }
section.figure { border-top: 1px solid #eee; }
table.data { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.data th, table.data td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
table.data th:first-child, table.data td:first-child { text-align: left; }
table.data thead th { background: #f2f2f2; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: 12px; overflow: auto; font-size: 12px;
      max-height: 640px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 6px; }
"""

# Records errors before anything else runs; see the module docstring.
_ERROR_RECORDER = """
(function () {
  var errors = [];
  function show() {
    var el = document.getElementById("report-log");
    if (!el) { return; }
    el.textContent = JSON.stringify(errors);
    el.setAttribute("data-errors", String(errors.length));
  }
  function note(msg) { errors.push(String(msg)); show(); }
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) { note("failed to load " + (t.src || t.href)); }
    else { note(e.message + " at " + e.filename + ":" + e.lineno); }
  }, true);
  window.addEventListener("unhandledrejection", function (e) { note("rejection: " + e.reason); });
  var orig = console.error;
  console.error = function () {
    note("console.error: " + Array.prototype.join.call(arguments, " "));
    return orig.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    show();
    var done = document.querySelectorAll("section[data-figure] .main-svg").length;
    document.body.setAttribute("data-rendered-svgs", String(done));
  });
})();
"""

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return str(plotly.offline.get_plotlyjs())


def figure_section(fig_id: str, title: str, fig: go.Figure) -> str:
    """A report section holding one figure (a div and an inline script, no plotly.js)."""
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"plot-{fig_id}",
        config=_PLOTLY_CONFIG,
    )
    return (
        f'<section class="figure" id="fig-{html.escape(fig_id)}"'
        f' data-figure="{html.escape(fig_id)}">\n<h2>{html.escape(title)}</h2>\n{div}\n</section>'
    )


def html_page(title: str, body: str) -> str:
    """A complete, self-contained HTML page around ``body``, with plotly.js inline once."""
    # "</script" cannot appear inside an inline script; plotly.js does not contain it, and the
    # replace keeps that true for any future bundle.
    js = _plotly_js().replace("</script", "<\\/script")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{_CSS}</style>\n"
        f"<script>{_ERROR_RECORDER}</script>\n"
        f'<script type="text/javascript">{js}</script>\n'
        "</head>\n<body>\n"
        f"{body}\n"
        '<div id="report-log" hidden data-errors="0"></div>\n'
        "</body>\n</html>\n"
    )


def batch_bound(v: dict[str, Any]) -> str:
    """What bounds a service's batch, from its summary entry: ``batch 1,024 per replica,
    limited by max_seqs (serving.max_seqs, the engine's cap, not the hardware: its KV cache
    holds 3,950)``."""
    b, limited = v.get("batch"), v.get("limited_by", "")
    head = f"batch {int(b):,} per replica, " if b else ""
    if limited == "max_seqs":
        kv = v.get("max_batch_kv")
        held = f": its KV cache holds {int(kv):,}" if kv else ""
        return (
            f"{head}limited by max_seqs (serving.max_seqs, the engine's cap, not the"
            f" hardware{held})"
        )
    return f"{head}limited by {limited}"


def tokens_per(tokens: dict[str, Any], amount: float | None, unit: str) -> str:
    """``12M inference output tokens per MWh, 3G pre-training tokens per MWh`` of the whole
    site (``amount`` MWh or tCO2eq), apart: never summed (a generated token and a processed
    training token are different work); a kind the run has none of is left out. From the token
    counts, so a run folder from before the summary split them reads the same."""
    parts = []
    for key, what in (
        ("inference_output_tokens", "inference output"),
        ("pretraining_tokens_done", "pre-training"),
    ):
        n = float(tokens.get(key) or 0.0)
        if n > 0:
            per = n / amount if amount else None
            parts.append(f"{si(per)} {what} tokens per {unit}")
    return ", ".join(parts) or f"no tokens per {unit}"


def _card(label: str, value: str, note: str = "") -> str:
    return (
        f'<div class="kpi"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div>'
        f'<div class="note">{html.escape(note)}</div></div>'
    )


def _kpi_cards(tables: RunTables) -> list[str]:
    s = tables.summary
    f = s["factory"]
    days = float(s["duration_days"])
    cards = []
    halls: dict[str, int] = {}
    for h in f["halls"]:
        halls[h["hardware"]] = halls.get(h["hardware"], 0) + int(h["domains"])
    cards.append(
        _card(
            "factory",
            f"{f['gpus']:,} GPUs",
            ", ".join(f"{n:,} x {hw}" for hw, n in halls.items())
            + f" in {len(f['halls'])} hall{'s' if len(f['halls']) != 1 else ''}",
        )
    )
    cards.append(
        _card(
            "IT power provisioned / grid",
            f"{_mw(f['provisioned_it_power_mw'])} / {_mw(f['grid_power_mw'])} MW",
            f"peak facility draw {_mw(s['energy']['peak_facility_power_mw'])} MW",
        )
    )
    by = s["utilization_by_workload"]
    cards.append(
        _card(
            "utilization",
            fmt(s["utilization"], ".1%"),
            f"pre-training {fmt(by.get('pretraining'), '.1%')}, post-training"
            f" {fmt(by.get('posttraining'), '.1%')}, inference {fmt(by.get('inference'), '.1%')}",
        )
    )
    cards.append(_card("availability", fmt(s["availability"], ".2%"), "GPUs not failed"))
    cards.append(
        _card(
            "training goodput / MFU",
            f"{fmt(s['training_goodput'], '.1%')} / {fmt(s['training_mfu'], '.1%')}",
            "kept compute over GPU-hours held; model FLOP/s over peak",
        )
    )
    e = s["energy"]
    tokens = s["tokens"]
    cards.append(
        _card(
            "facility energy",
            fmt(e["facility_mwh"], ",.0f", " MWh"),
            f"average PUE {fmt(e['average_pue'], '.2f')}; "
            + tokens_per(tokens, e["facility_mwh"], "MWh"),
        )
    )
    if e.get("emissions_tco2") is not None:
        tco2 = float(e["emissions_tco2"])
        g_per_kwh = tco2 * 1e6 / (e["facility_mwh"] * 1e3) if e["facility_mwh"] else None
        cards.append(
            _card(
                "emissions",
                fmt(tco2, ",.0f", " tCO2eq"),
                f"{fmt(g_per_kwh, ',.0f')} g/kWh on average; " + tokens_per(tokens, tco2, "tCO2eq"),
            )
        )
    if s.get("power_control"):
        cards.append(_power_control_card(s["power_control"]))
    cards.append(
        _card(
            "tokens per day",
            si(float(tokens["inference_output_tokens"]) / days),
            f"inference output; pre-training {si(tokens['pretraining_tokens_done'] / days)}"
            " tokens/day",
        )
    )
    known = capex_known(tables.traces)
    c = s["cost"]
    cards.append(
        _card(
            "cost of the run (TCO)",
            money(c["total_usd"] if known else None),
            f"{money(c['per_gpu_hour_usd'] if known else None, 'GPU-h')} fully loaded"
            + (
                f", {money(c.get('per_busy_gpu_hour_usd'), 'busy GPU-h')}"
                if known and c.get("per_busy_gpu_hour_usd") is not None
                else ""
            )
            + f"; energy {money(c['energy_usd'])}"
            + (
                f"; idle capacity {money(c.get('idle_capacity_usd'))}"
                if known and c.get("idle_capacity_usd") is not None
                else ""
            )
            + ("" if known else "; capital n/a (a domain has no price)"),
        )
    )
    if known and c.get("capital_usd") is not None:
        est = c.get("estimated_prices") or []
        cards.append(
            _card(
                "capital",
                money(c["capital_usd"]),
                f"{money(c.get('capital_per_gw_usd'))} per GW of IT capacity; repaid at"
                f" {c.get('wacc', 0.0):.0%} WACC"
                + (f"; estimated price (no sourced one): {', '.join(est)}" if est else ""),
            )
        )
    per_svc = service_costs_per_million_tokens_usd(tables)
    cards.append(
        _card(
            "cost per million tokens",
            money(blended_cost_per_million_tokens_usd(tables)),
            "blended, on what the services used; "
            + ", ".join(f"{n} {money(v)}" for n, v in per_svc.items()),
        )
    )
    # one card per pre-training run (its time from submission to completion); the first run's
    # card also gives its projected time when it did not finish (the comparison's
    # training-run time)
    first, run_days, projected = training_run_days(tables)
    for r in s["pretraining_runs"]:
        state = (
            f"finished in {fmt(r['completion_days'], '.1f')} d"
            if r["state"] == "finished"
            else f"{r['tokens_done'] / r['tokens']:.0%} done ({r['state']})"
        )
        projection = (
            f"; projected {fmt(run_days, ',.1f')} d from submission"
            if r["name"] == first and projected and run_days is not None
            else ""
        )
        cards.append(
            _card(
                f"pre-training {r['name']}",
                state,
                f"{r['gpus']:,} GPUs, ETTR {fmt(r['ettr'], '.1%')},"
                f" {plural(r['interruptions'], 'interruption')}"
                + projection
                + _run_cost(r, known)
                + _slowdown(r),
            )
        )
    p = s["posttraining"]
    if p["submitted"]:
        cards.append(
            _card(
                "post-training jobs",
                f"{p['finished']:,} / {p['submitted']:,} finished",
                f"mean wait {duration(p['mean_wait_hours'])},"
                f" {plural(p['preemptions'], 'preemption')}",
            )
        )
    for v in s["inference_services"]:
        cards.append(
            _card(
                f"inference {v['name']}",
                f"SLO {fmt(v['slo_attainment'], '.1%')}"
                + (
                    f" ({v['prefill']} prefill: not estimated)"
                    if v.get("prefill") in ("companion", "hybrid") and v["slo_attainment"] is None
                    else ""
                ),
                f"{si(v['tokens_per_day'])} tokens/day,"
                + (
                    f" {si(v['tokens_per_mwh'])} tokens/MWh,"
                    if v.get("tokens_per_mwh") is not None
                    else ""
                )
                + f" {money(per_svc.get(v['name']))} per M tokens"
                + (
                    f" ({money(v['cost_per_million_tokens_with_idle_usd'])} with its share of"
                    " idle capacity)"
                    if known and v.get("cost_per_million_tokens_with_idle_usd") is not None
                    else ""
                )
                + (f"; capacity {v['capacity_provenance']}" if v.get("capacity_provenance") else "")
                + (
                    f" ({v['kv_cache']} KV, {v['runtime']} runtime)"
                    if v.get("runtime") and v.get("kv_cache")
                    else ""
                )
                + (f"; served at {str(v['precision']).upper()}" if v.get("precision") else "")
                + (f"; {batch_bound(v)}" if v.get("limited_by") else ""),
            )
        )
    if s.get("network"):
        cards.append(_network_card(s["network"]))
    r = s["reliability"]
    cards.append(
        _card(
            "failures",
            f"{r['failures']:,}",
            f"{fmt(r['failures_per_day'], ',.1f')} per day,"
            f" {plural(r['job_interruptions'], 'unplanned job interruption')}",
        )
    )
    return cards


def _h(hours: float) -> str:
    return fmt(hours, ",.0f" if abs(hours) >= 10 else ".2g", " h")


def _power_control_card(pc: dict[str, Any]) -> str:
    """What the power controller did: its policy, the hours the site spent over its grid cap
    and the halls over their limits, the hours the throttle cost each class, its actions."""
    halls = {k: float(v) for k, v in (pc.get("hours_over_hall_limit") or {}).items()}
    over = {k: v for k, v in halls.items() if v > 1e-6}
    lost = {
        k: float(v)
        for k, v in (pc.get("hours_lost_to_throttle_by_class") or {}).items()
        if float(v) > 1e-6
    }
    parts = [f"{_h(float(pc.get('hours_over_grid_cap', 0.0)))} over the grid cap"]
    if over:
        parts.append(
            f"{_h(sum(over.values()))} over hall limits ("
            + ", ".join(f"{k} {_h(v)}" for k, v in over.items())
            + ")"
        )
    else:
        parts.append("no hall over its limit")
    if lost:
        parts.append("throttle cost " + ", ".join(f"{k} {_h(v)}" for k, v in lost.items()))
    paused = {
        k: float(v) for k, v in (pc.get("hours_paused_by_class") or {}).items() if float(v) > 0
    }
    if paused:
        parts.append("paused " + ", ".join(f"{k} {_h(v)}" for k, v in paused.items()))
    below = {
        k: float(v)
        for k, v in (pc.get("hours_below_full_clock_by_class") or {}).items()
        if float(v) > 0
    }
    if below:
        parts.append("below full clock " + ", ".join(f"{k} {_h(v)}" for k, v in below.items()))
    if pc.get("deferred_jobs"):
        parts.append(f"{plural(pc['deferred_jobs'], 'job')} deferred by admission")
    if pc.get("paused_at_end"):
        parts.append(f"{plural(pc['paused_at_end'], 'job')} paused at the end")
    return _card(
        "power control",
        f"{pc.get('policy', 'n/a')}, {plural(int(pc.get('actions', 0)), 'action')}",
        "; ".join(parts),
    )


_WORKLOADS = {"pretraining": "pre-training", "posttraining": "post-training"}


def _network_card(net: dict[str, Any]) -> str:
    """The fabric: kind and placement; its narrowest bisection, switches, power against the IT
    power, and the hours the network cost each workload."""
    if net.get("kind") == "non_blocking":
        return _card("network", "non_blocking", "ideal: full bisection everywhere, nothing counted")
    bisection = {k: float(v) for k, v in (net.get("bisection_tbps") or {}).items()}
    parts = []
    if bisection:
        tier = min(bisection, key=lambda k: bisection[k])
        parts.append(f"narrowest bisection {tier} {_tbps(bisection[tier])} Tb/s")
    n = sum(int(c) for models in (net.get("switches") or {}).values() for c in models.values())
    parts.append(plural(n, "switch", "switches"))
    parts.append(
        f"{_mw(net.get('power_mw'))} MW ({fmt(net.get('power_share_of_provisioned_it'), '.1%')}"
        " of IT)"
    )
    lost = {
        k: float(v)
        for k, v in (net.get("hours_lost_to_network_by_workload") or {}).items()
        if abs(float(v)) > 1e-6
    }
    parts.append(
        "network cost " + ", ".join(f"{_WORKLOADS.get(k, k)} {_h(v)}" for k, v in lost.items())
        if lost
        else "no job slowed"
    )
    return _card("network", f"{net.get('kind')}, {net.get('placement')}", "; ".join(parts))


def _tbps(x: Any) -> str:
    return fmt(x, ",.0f" if x is not None and abs(float(x)) >= 100 else ".3g")


def _frame_html(df: pd.DataFrame, columns: dict[str, tuple[str, Callable[[Any], str]]]) -> str:
    """A DataFrame as a ``table.data``: the index first, then ``columns`` (column -> its
    header and how to write a value)."""
    head = [str(df.index.name or "")] + [h for h, _ in columns.values()]
    rows = []
    for key, row in df.iterrows():
        cells = [str(key)] + [write(row[col]) for col, (_, write) in columns.items()]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return (
        '<table class="data"><thead><tr>'
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _spec(spec: str, missing: str = "n/a") -> Callable[[Any], str]:
    def write(v: Any) -> str:
        text = fmt(v, spec)
        return missing if text == "n/a" else text

    return write


def network_section(tables: RunTables) -> str:
    """The fabric of a run as HTML: a table per tier (bisection, switches, links, mean uplink
    load) and one per pre-training run (the groups of each tier it touched at its last start,
    the hours the network cost it); "" for a run without a switched fabric (``non_blocking``,
    or a run folder from before the fabric)."""
    net = tables.summary.get("network")
    if not net or net.get("kind") == "non_blocking":
        return ""
    tiers = network_tiers_table(net)
    runs = pretraining_spans_table(tables.jobs)
    power = (
        f"Switches and optics draw {_mw(net.get('power_mw'))} MW,"
        f" {fmt(net.get('power_share_of_provisioned_it'), '.1%')} of the provisioned IT power"
        " (informational: the IT power already counts the network in its overhead)."
    )
    capex = net.get("capex_note") or ""
    body = [
        '<section id="network"><h2>Network</h2>',
        f'<p class="meta">{html.escape(str(net.get("kind")))} fabric,'
        f" {html.escape(str(net.get('placement')))} placement. {html.escape(power)}"
        + (f" Capital cost: {html.escape(capex)}." if capex else "")
        + "</p>",
        _frame_html(
            tiers,
            {
                "bisection_tbps": ("bisection (Tb/s)", _tbps),
                "switches": ("switches", _spec(",.0f")),
                "switch_models": ("switch models", str),
                "links": ("links", _spec(",.0f")),
                # a tier without a load trace has uplinks that cannot bind
                "mean_uplink_load": ("mean offered uplink load", _spec(".1%", "cannot bind")),
            },
        ),
        '<p class="meta">Offered uplink load (<code>fabric.&lt;tier&gt;.uplink_load</code> in'
        " the traces) is what the jobs crossing a tier's uplinks ask of them over their"
        " capacity: a demand, not a utilisation, so it can pass 100% (700% on a 1:7 tier that"
        " all of its GPUs cross) and a high figure is not alarming by itself. Above 100% the"
        " crossing jobs are slowed: the hours that cost them are in the uplink-load figure's"
        " title (and per pre-training run, below).</p>",
    ]
    if len(runs):
        body += [
            '<p class="meta">Pre-training runs: the groups of each tier their domains touched'
            " at their last start, and the wall time the network cost them.</p>",
            _frame_html(
                runs,
                {
                    "gpus": ("GPUs", _spec(",.0f")),
                    "state": ("state", str),
                    **{c: (JOB_COLUMNS[c].unit, _spec(",.0f", "-")) for c in SPAN_COLUMNS},
                    "network_slowdown_h": ("network slowdown (h)", _spec(",.2f")),
                },
            ),
        ]
    return "\n".join([*body, "</section>"])


def reliability_section(tables: RunTables) -> str:
    """Reliability of a run as HTML: per pre-training run its ETTR, interruptions by cause,
    hours lost by kind and the checkpoint interval used next to Young/Daly's; the policies,
    failures by cause and hot spares; the summary's warnings. "" for a run without failures
    or pre-training (or a run folder from before these keys)."""
    s = tables.summary
    rel = s.get("reliability") or {}
    runs = s.get("pretraining_runs") or []
    if not rel.get("failures_by_cause") and not runs:
        return ""
    body = ['<section id="reliability"><h2>Reliability</h2>']
    policy = [
        f"recovery {rel.get('recovery', 'n/a')}",
        f"tray failure {rel.get('tray_failure', 'n/a')}",
    ]
    if rel.get("hot_spares"):
        policy.append(
            f"{rel['hot_spares']:,} hot spares, taken {rel.get('hot_spares_taken', 0):,} times"
        )
    if rel.get("maintenance_drains"):
        policy.append(f"{rel['maintenance_drains']:,} planned maintenance drains (not failures)")
    # planned maintenance is not a failure cause (a run folder from before kept it there)
    by = {k: v for k, v in (rel.get("failures_by_cause") or {}).items() if k != "maintenance"}
    top = sorted(by.items(), key=lambda kv: -int(kv[1]))
    body.append(
        f'<p class="meta">{html.escape(", ".join(policy))}. Failures by cause: '
        + html.escape(", ".join(f"{k} {int(v):,}" for k, v in top) or "none")
        + ".</p>"
    )
    rows = []
    for r in runs:
        lost = r.get("hours_lost") or {}
        # unplanned only: planned maintenance is the "planned" column (a run folder from
        # before counted its drains among the causes)
        unplanned = {
            k: v for k, v in (r.get("interruptions_by_cause") or {}).items() if k != "maintenance"
        }
        causes = sorted(unplanned.items(), key=lambda kv: -kv[1])
        rows.append(
            {
                "run": r["name"],
                "ettr": r.get("ettr"),
                "interruptions": r.get("interruptions"),
                "planned": r.get("planned_interruptions"),
                "by_cause": ", ".join(f"{k} {v:,}" for k, v in causes[:4])
                + (", ..." if len(causes) > 4 else ""),
                **{f"lost_{k}": v for k, v in lost.items()},
                "interval": r.get("checkpoint_interval_minutes"),
                "young_daly": r.get("young_daly_interval_minutes"),
            }
        )
    if rows:
        frame = pd.DataFrame(rows).set_index("run")
        kinds = [c for c in frame.columns if c.startswith("lost_")]
        body += [
            '<p class="meta">Pre-training runs: ETTR, interruptions (unplanned; planned'
            " maintenance apart) and their main causes, wall hours lost by kind, and the"
            " checkpoint interval used next to the Young/Daly interval for its stall and"
            " expected MTBF.</p>",
            _frame_html(
                frame,
                {
                    "ettr": ("ETTR", _spec(".3f")),
                    "interruptions": ("interruptions", _spec(",.0f")),
                    "planned": ("planned", _spec(",.0f")),
                    "by_cause": ("main causes", str),
                    **{k: (f"{k[5:].replace('_', ' ')} (h)", _spec(",.1f")) for k in kinds},
                    "interval": ("interval (min)", _spec(".3g")),
                    "young_daly": ("Young/Daly (min)", _spec(".3g")),
                },
            ),
        ]
    warnings = s.get("warnings") or []
    if warnings:
        body.append("<ul>" + "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings) + "</ul>")
    return "\n".join([*body, "</section>"])


def _mw(x: Any) -> str:
    """Megawatts: whole ones for a large site (``1,000``), three digits for a small one
    (``2.33``)."""
    return fmt(x, ",.0f" if x is not None and abs(float(x)) >= 100 else ".3g")


def _slowdown(run: dict[str, Any]) -> str:
    """``"; slowed by throttle 12.3 h, network 0.25 h"``: the wall time each rate factor cost a
    pre-training run (negative: it sped the run up); "" when none did, or when the run folder
    predates the ``slowdown_hours`` key."""
    parts = []
    for factor, hours in (run.get("slowdown_hours") or {}).items():
        h = float(hours)
        if math.isfinite(h) and abs(h) > 1e-9:
            parts.append(f"{factor} {fmt(h, ',.1f' if abs(h) >= 1 else '.2g', ' h')}")
    return "; slowed by " + ", ".join(parts) if parts else ""


def _run_cost(run: dict[str, Any], known: bool) -> str:
    """``"; cost $1.2B (whole run ~$2.3B), $41.2M per 1e24 FLOP"``; "" when unknown."""
    if not known or run.get("cost_usd") is None:
        return ""
    out = f"; cost {money(run['cost_usd'])}"
    if run.get("state") != "finished" and run.get("projected_cost_usd") is not None:
        out += f" (whole run ~{money(run['projected_cost_usd'])})"
    if run.get("cost_per_1e24_flop_usd") is not None:
        out += f", {money(run['cost_per_1e24_flop_usd'])} per 1e24 FLOP"
    return out


def kpi_block(tables: RunTables) -> str:
    """The headline KPIs of a run as HTML cards."""
    return '<div class="kpis">\n' + "\n".join(_kpi_cards(tables)) + "\n</div>"


def render_report(tables: RunTables) -> str:
    """The complete ``report.html`` of one run."""
    s = tables.summary
    sc: dict[str, Any] = tables.scenario
    name = str(s.get("scenario", sc.get("name", "run")))
    figs = figures_for(tables)
    network = network_section(tables)
    reliability = reliability_section(tables)
    commitment = _commitment_section(s)
    nav = " ".join(
        (['<a href="#network">Network</a>'] if network else [])
        + (['<a href="#reliability">Reliability</a>'] if reliability else [])
        + (['<a href="#commitment">Commitment</a>'] if commitment else [])
        + [
            f'<a href="#fig-{html.escape(spec.id)}">{html.escape(spec.title)}</a>'
            for spec, _ in figs
        ]
    )
    scenario_yaml = yaml.safe_dump(scenario_as_written(sc), sort_keys=False, allow_unicode=True)
    body = [
        "<header>",
        f"<h1>{html.escape(name)}</h1>",
        f'<p class="meta">{html.escape(str(sc.get("description") or ""))}</p>',
        f'<p class="meta">seed {s["seed"]}, {float(s["duration_days"]):g} simulated days,'
        f" {_seconds(sc.get('run', {}).get('sample_interval', 0)) / 60:g}-minute samples</p>",
        f'<nav><a href="#kpis">Headline</a> {nav} <a href="#scenario">Scenario</a></nav>',
        "</header>",
        '<section id="kpis"><h2>Headline</h2>',
        kpi_block(tables),
        "</section>",
        network,
        reliability,
        commitment,
        *(figure_section(spec.id, spec.title, fig) for spec, fig in figs),
        '<section id="scenario"><h2>Scenario as run</h2>',
        f"<pre>{html.escape(scenario_yaml)}</pre>",
        "</section>",
    ]
    return html_page(f"{name}: aifactory report", "\n".join(body))


def _commitment_section(summary: dict[str, Any]) -> str:
    """The commitment question's answer (sim.commitment), when the scenario asks it."""
    rows = summary.get("commitment")
    if not rows:
        return ""
    first = rows[0]
    intro = (
        f"What {money(first.get('budget_usd'))} over {float(first.get('term_years', 0)):g} years"
        " buys on each generation at this site: the whole cost of ownership (capital repaid at"
        " the WACC, energy, operations); tokens and runs at"
        f" {float(first.get('utilization', 0)):.0%} utilization, each if the whole commitment"
        " were spent that way."
    )
    return "\n".join(
        [
            '<section id="commitment"><h2>The commitment question</h2>',
            f'<p class="meta">{html.escape(intro)}</p>',
            commitment_table_html(rows),
            "</section>",
            figure_section("commitment", "What the commitment buys", commitment_figure(rows)),
        ]
    )


def _seconds(value: Any) -> float:
    """A duration of the resolved scenario (``"3600.0 s"``, or a number of seconds)."""
    try:
        return parse_quantity(value, "s")
    except QuantityError:
        return float("nan")


def render_commitment(rows: list[dict[str, Any]], title: str) -> str:
    """A self-contained page: the table and the figure."""
    first = rows[0] if rows else {}
    intro = (
        f"{money(first.get('budget_usd'))} spent over {first.get('term_years', 0):g} years on the"
        " whole cost of ownership (capital repaid at the WACC, energy, operations) at this site;"
        f" tokens and runs at {first.get('utilization', 0):.0%} utilization, each if the whole"
        " commitment were spent that way."
    )
    body = "\n".join(
        [
            "<header>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{html.escape(intro)}</p>',
            "</header>",
            '<section id="table"><h2>By generation, in order of release</h2>',
            commitment_table_html(rows),
            "</section>",
            figure_section("commitment", "What it buys", commitment_figure(rows)),
        ]
    )
    return html_page(f"{title}: aifactory commitment", body)
