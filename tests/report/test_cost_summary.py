"""The summary's cost section on hand-made tables: throttled capacity shown apart."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sim.io import RunTables


def test_throttled_capacity_is_carved_out_of_its_class(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    c = t.summary["cost"]
    # pre-a: 720 s of throttle on 72 GPUs of the 216 GPU-hours it held; each rl job 360 s of 72
    pre = t.traces["cost_pretraining_usd"].sum()
    post = t.traces["cost_posttraining_usd"].sum()
    expected = pre * (720 / 3600 * 72 / 216) + post * (360 / 3600 * 72 / 72)
    assert c["by_use_usd"]["throttled"] == pytest.approx(expected)
    assert c["by_use_usd"]["pretraining"] == pytest.approx(pre * (1 - 720 / 3600 * 72 / 216))
    assert sum(c["by_use_usd"].values()) == pytest.approx(c["total_usd"])


def test_a_commitment_in_the_summary_is_a_report_section(
    small_tables: Callable[..., RunTables],
) -> None:
    from sim.commitment import commitment_rows
    from sim.config.loader import load_scenario
    from sim.report.html import render_report

    site = """
name: c
facility: {grid_power: 3 MW, halls: [{name: h1, hardware: gb200_nvl72}]}
workloads:
  inference: [{name: chat, model: llama3.1-8b, demand: {mean_requests_per_s: 10},
               input_tokens: 1000, output_tokens: 200}]
commitment: {budget: $1B, generations: [rubin_ultra_nvl576, h100_sxm]}
"""
    rows = commitment_rows(load_scenario(text=site))
    assert [r["generation"] for r in rows] == ["h100_sxm", "rubin_ultra_nvl576"]
    t = small_tables()
    t.summary["commitment"] = rows
    page = render_report(t)
    assert 'id="commitment"' in page and 'id="fig-commitment"' in page
    assert "rubin_ultra_nvl576*" in page and "no sourced price" in page  # the estimate, flagged
    del t.summary["commitment"]
