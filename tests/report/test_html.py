"""report.html: self-contained, plotly.js once, every figure with data, KPIs, the scenario."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import plotly.offline
import pytest

from sim.cli import main
from sim.io import RunTables, read_run
from sim.report.figures import FIGURES
from sim.report.html import render_report

#: Figures the smoke run has no data for.
SMOKE_LACKS = ("throttle", "placement", "uplinks")

# any attribute that makes a browser fetch something: src=, href=, or a CSS url(...)
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//)"""
)


def _without_plotly(page: str) -> str:
    return page.replace(plotly.offline.get_plotlyjs(), "")


def test_report_is_self_contained(smoke_tables: RunTables) -> None:
    page = render_report(smoke_tables)
    js = plotly.offline.get_plotlyjs()
    assert page.count(js) == 1, "plotly.js must be embedded exactly once"
    rest = _without_plotly(page)
    assert not EXTERNAL.search(rest), EXTERNAL.search(rest)
    assert "<script src" not in rest and "<link" not in rest
    # each figure div calls plotly without loading it again
    assert rest.count("Plotly.newPlot") == len(re.findall(r'data-figure="', rest))


def test_report_has_every_figure_with_data_kpis_and_scenario(smoke_tables: RunTables) -> None:
    page = _without_plotly(render_report(smoke_tables))
    expected = [s.id for s in FIGURES if s.has_data(smoke_tables)]
    # the smoke run has training, inference and failures: every registered figure but the
    # throttle's (its 3 MW grid never binds; tests/report/test_power_figures.py draws it) and the
    # fabric's (its default non_blocking fabric is one cell; tests/report/test_fabric_report.py)
    assert expected == [s.id for s in FIGURES if s.id not in SMOKE_LACKS]
    assert re.findall(r'data-figure="([^"]+)"', page) == expected
    for spec in (s for s in FIGURES if s.id in expected):
        assert f'id="plot-{spec.id}"' in page
        assert f'href="#fig-{spec.id}"' in page
    assert '<section id="kpis">' in page and page.count('class="kpi"') >= 10
    assert "SLO 100.0%" in page and "1,152 GPUs" in page
    assert re.search(r"tokens/day, [\d.]+[kMGT]? tokens/MWh, \$", page)
    pre = re.search(r'<section id="scenario">.*?<pre>(.*?)</pre>', page, re.S)
    assert pre is not None and "name: smoke" in pre.group(1)
    assert "grid_power: 3 MW" in pre.group(1)  # as written, not 3000000.0
    assert 'id="report-log"' in page


def test_report_leaves_out_figures_without_data(small_tables: Callable[..., RunTables]) -> None:
    page = _without_plotly(render_report(small_tables(failures=False, inference=False)))
    ids = re.findall(r'data-figure="([^"]+)"', page)
    assert "failures" not in ids and "inference" not in ids
    assert {"utilization", "power", "timeline", "cost"} <= set(ids)


def test_unknown_capital_reads_na(small_tables: Callable[..., RunTables]) -> None:
    page = _without_plotly(render_report(small_tables(capex_known=False)))
    assert "capital n/a" in page
    kpi = re.search(r'cost per million tokens</div><div class="value">([^<]*)<', page)
    assert kpi is not None and kpi.group(1) == "n/a"


def test_pretraining_slowdown_by_factor_when_any(small_tables: Callable[..., RunTables]) -> None:
    t = small_tables()

    def card() -> str:
        page = _without_plotly(render_report(t))
        m = re.search(r'pre-training pre-a</div>.*?class="note">([^<]*)<', page)
        assert m is not None
        return m.group(1)

    run = t.summary["pretraining_runs"][0]
    run["slowdown_hours"] = {"throttle": 12.34, "network": 0.25, "degraded": 0.0}
    assert card().endswith("; slowed by throttle 12.3 h, network 0.25 h")
    run["slowdown_hours"] = {"throttle": 0.0, "network": 0.0, "degraded": 0.0}
    assert "slowed" not in card()
    del run["slowdown_hours"]  # a run folder from before the key: still renders
    assert "1 interruption" in card() and "slowed" not in card()


def test_one_card_per_pretraining_run_and_a_fitting_wait_unit(
    smoke_tables: RunTables, small_tables: Callable[..., RunTables]
) -> None:
    page = _without_plotly(render_report(smoke_tables))
    labels = re.findall(r'<div class="label">([^<]*)</div>', page)
    # the run's completion time is on its own card, not repeated on a "training run" card
    assert not any(label.startswith("training run") for label in labels)
    assert labels.count("pre-training pretrain-8b") == 1
    wait = re.search(r"mean wait ([^,]*),", page)
    assert wait is not None and re.fullmatch(r"[\d.]+ (s|min|h|d)", wait.group(1))
    # an unfinished first run: its card gives the projected time
    small = _without_plotly(render_report(small_tables()))
    note = re.search(r'pre-training pre-a</div>.*?class="note">([^<]*)<', small)
    assert note is not None and "projected 0.7 d from submission" in note.group(1)
    assert "1 interruption;" in note.group(1)


def test_run_folder_has_report_and_cli_rebuilds_it(
    smoke_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = smoke_dir / "report.html"
    first = report.read_text("utf-8")
    assert first.startswith("<!DOCTYPE html>")
    report.unlink()
    assert read_run(smoke_dir).summary["scenario"] == "smoke"  # readable without it
    assert main(["report", str(smoke_dir)]) == 0
    assert report.read_text("utf-8") == first
    assert str(report) in capsys.readouterr().out
    assert not [p for p in smoke_dir.iterdir() if p.name.startswith(".")]


def test_report_on_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a complete run folder" in err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
