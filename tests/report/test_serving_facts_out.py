"""What a service was served with, and what bounds its batch, in summary.json, the printed run
and ``aifactory compare``; the site's tokens per MWh kept apart by kind (issue 12 review)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.cli import main
from sim.io import RunTables
from sim.report.compare import comparison_table, duration_differences, serving_differences


def test_summary_says_precision_and_what_bounds_the_batch(smoke_tables: RunTables) -> None:
    svc = smoke_tables.summary["inference_services"][0]
    assert svc["precision"] == "fp8"  # smoke's chat-70b names none: the scenario default
    assert svc["limited_by"] in ("kv_cache", "max_seqs", "ttft", "tpot")
    assert 1 <= svc["batch"] <= svc["max_seqs"] == 1024  # serving.max_seqs' default
    assert svc["max_batch_kv"] >= 1


def test_site_tokens_per_mwh_are_apart(smoke_tables: RunTables) -> None:
    s = smoke_tables.summary
    tok, mwh = s["tokens"], s["energy"]["facility_mwh"]
    assert tok["inference_output_tokens_per_mwh"] == pytest.approx(
        tok["inference_output_tokens"] / mwh
    )
    assert tok["pretraining_tokens_per_mwh"] == pytest.approx(tok["pretraining_tokens_done"] / mwh)
    assert tok["pretraining_tokens_done"] > 0 and tok["inference_output_tokens"] > 0
    assert "tokens_per_mwh" not in tok and "tokens_per_tco2" not in tok  # the sum is gone


def test_a_batch_capped_by_max_seqs_is_said(
    tiny_scenario: Callable[..., dict[str, Any]],
    write_scenario: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inference = {
        "name": "chat",
        "model": "llama3.1-8b",
        "demand": {"mean_requests_per_s": 20},
        "input_tokens": 1000,
        "output_tokens": 200,
        "min_domains": 1,
        "serving": {"max_seqs": 16, "max_batched_tokens": 512},
    }
    path = write_scenario(tiny_scenario(racks=1, duration="6 h", inference=[inference]))
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    svc = json.loads((out / "summary.json").read_text())["inference_services"][0]
    assert (svc["limited_by"], svc["batch"], svc["max_seqs"]) == ("max_seqs", 16, 16)
    assert svc["max_batch_kv"] > 16  # the hardware would hold more
    assert "note: inference chat: its batch is capped by serving.max_seqs (16 sequences" in printed
    assert "limited by max_seqs" in printed


def test_compare_warns_when_a_service_is_served_at_different_precisions(
    smoke_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("fp8run", "fp4run"):
        shutil.copytree(smoke_dir, tmp_path / name)
    summary = tmp_path / "fp4run" / "summary.json"
    s = json.loads(summary.read_text())
    s["inference_services"][0]["precision"] = "fp4"
    summary.write_text(json.dumps(s))
    out = tmp_path / "cmp"
    assert (
        main(["compare", str(tmp_path / "fp8run"), str(tmp_path / "fp4run"), "--out", str(out)])
        == 0
    )
    printed = " ".join(capsys.readouterr().out.split())
    assert (
        "warning: service chat-70b is served with different precisions: FP8 in fp8run, FP4 in"
        " fp4run" in printed
    )
    assert "FP8, reserved KV, fused runtime" in printed and "FP4, reserved KV" in printed
    table = pd.read_csv(out / "comparison.csv", index_col="run")
    assert list(table["service.chat-70b.precision"]) == ["fp8", "fp4"]
    page = (out / "comparison.html").read_text("utf-8")
    assert "served with different precisions" in page and "chat-70b: served at" in page
    assert "days simulated" in printed and "different durations" not in printed


def test_precision_hint_is_given_once_and_durations_are_flagged() -> None:
    col = "service.{}.{}".format
    table = pd.DataFrame(
        {
            "days": [1.0, 30.0],
            **{col(s, "cost_per_million_tokens_usd"): [1.0, 1.0] for s in ("a", "b")},
            **{col(s, "precision"): ["fp8", "fp4"] for s in ("a", "b")},
        },
        index=["gb200", "vr200"],
    )
    warnings = serving_differences(table)
    assert len(warnings) == 2
    assert sum("--inference-precision" in w for w in warnings) == 1
    (dur,) = duration_differences(table)
    assert "1 day in gb200, 30 days in vr200" in dur and "run.duration" in dur
    assert duration_differences(table.assign(days=[7.0, 7.0])) == []


def test_a_run_folder_without_the_facts_is_no_difference(smoke_tables: RunTables) -> None:
    import copy
    import dataclasses

    old = dataclasses.replace(smoke_tables, summary=copy.deepcopy(smoke_tables.summary))
    for k in ("precision", "limited_by", "batch"):
        del old.summary["inference_services"][0][k]
    table = comparison_table({"new": smoke_tables, "old": old})
    assert table.at["old", "service.chat-70b.precision"] == ""
    assert serving_differences(table) == []  # unknown is not a difference
