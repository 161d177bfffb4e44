"""Recording (levels on change, events, exact binning) and the run folder (sim.io)."""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.build import Plan
from sim.io import RUN_FILES, OutputError, RunTables, default_run_dir, read_run, write_run
from sim.record import Channel, EventKind, Recorder, bin_levels


def level(times: list[float], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(times, dtype=float), np.asarray(values, dtype=float)


# --------------------------------------------------------------------------- bin_levels


def test_bin_levels_exact_with_changes_on_edges_and_a_partial_last_bin() -> None:
    out = bin_levels({"x": level([0, 30, 60, 95], [1, 3, 0, 5])}, end_s=100, interval_s=30)
    assert list(out.columns) == ["time_s", "interval_s", "x"]
    assert out["time_s"].tolist() == [0, 30, 60, 90]
    assert out["interval_s"].tolist() == [30, 30, 30, 10]
    # [0,30) all 1; [30,60) all 3 (change exactly on the edge); [60,90) 0; [90,100) half 0, half 5
    assert out["x"].tolist() == pytest.approx([1, 3, 0, 2.5], rel=1e-15, abs=1e-15)


def test_bin_levels_change_inside_a_bin_is_time_weighted() -> None:
    out = bin_levels({"x": level([0, 10], [2, 8])}, end_s=60, interval_s=30)
    assert out["x"].tolist() == pytest.approx([(2 * 10 + 8 * 20) / 30, 8], rel=1e-15)


def test_bin_levels_several_changes_in_one_bin() -> None:
    out = bin_levels({"x": level([0, 1, 2, 3], [4, 0, 4, 1])}, end_s=10, interval_s=10)
    assert out["x"].tolist() == pytest.approx([(4 + 0 + 4 + 7 * 1) / 10], rel=1e-15)


def test_bin_levels_ignores_changes_at_or_after_the_end() -> None:
    out = bin_levels({"x": level([0, 100, 150], [1, 9, 7])}, end_s=100, interval_s=25)
    assert out["x"].tolist() == [1, 1, 1, 1]


def test_bin_levels_constant_is_exact_and_rows_are_ceil() -> None:
    out = bin_levels(
        {"a": level([0], [0.1]), "b": level([0], [3])}, end_s=7 * 3600 + 5, interval_s=3600
    )
    assert len(out) == 8
    assert out["interval_s"].iloc[-1] == 5
    assert (out["a"] == 0.1).all()
    assert (out["b"] == 3).all()


def test_bin_levels_one_bin_when_the_interval_is_the_run() -> None:
    out = bin_levels({"x": level([0, 50], [0, 2])}, end_s=100, interval_s=100)
    assert out["x"].tolist() == [1.0]


def brute_force(times: list[float], values: list[float], edges: list[float]) -> list[float]:
    """Mean of the step function over each [edges[i], edges[i+1]) by summing the pieces."""
    knots = [*times, math.inf]
    out = []
    for a, b in itertools.pairwise(edges):
        total = 0.0
        for i, v in enumerate(values):
            total += v * max(0.0, min(b, knots[i + 1]) - max(a, knots[i]))
        out.append(total / (b - a))
    return out


@settings(max_examples=60, deadline=None, database=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 1000), st.integers(-50, 50)),
        min_size=0,
        max_size=25,
        unique_by=lambda s: s[0],
    ),
    first=st.integers(-50, 50),
    interval=st.integers(1, 300),
    end=st.integers(1, 1000),
)
def test_bin_levels_matches_brute_force(
    steps: list[tuple[int, int]], first: int, interval: int, end: int
) -> None:
    steps = sorted(steps)
    times = [0.0] + [float(t) for t, _ in steps]
    values = [float(first)] + [float(v) for _, v in steps]
    if interval > end:
        interval = end
    out = bin_levels({"x": level(times, values)}, float(end), float(interval))
    n = math.ceil(end / interval)
    edges = [k * interval for k in range(n)] + [end]
    assert len(out) == n
    kept = [(t, v) for t, v in zip(times, values, strict=True) if t <= end]
    expected = brute_force([t for t, _ in kept], [v for _, v in kept], [float(e) for e in edges])
    np.testing.assert_allclose(out["x"], expected, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- Channel, Recorder


def test_channel_set_stores_changes_only() -> None:
    ch = Channel("x", [0.0], [0.0])
    ch.set(0.0, 5.0)  # same time as the last point: overwrite
    assert (list(ch.times), list(ch.values)) == ([0.0], [5.0])
    ch.set(3.0, 5.0)  # no change: nothing stored
    assert (list(ch.times), list(ch.values)) == ([0.0], [5.0])
    ch.set(3.0, 7.0)
    ch.set(3.0, 9.0)  # two changes in one instant keep the last
    assert (list(ch.times), list(ch.values)) == ([0.0, 3.0], [5.0, 9.0])
    ch.set(4.0, 9.0)
    ch.set(4.5, 1.0)
    assert (list(ch.times), list(ch.values)) == ([0.0, 3.0, 4.5], [5.0, 9.0, 1.0])


def test_recorder_levels_bin_the_channels() -> None:
    rec = Recorder()
    a = rec.channel("a")
    b = rec.channel("b", initial=2.0)
    a.set(5.0, 10.0)
    b.set(10.0, 0.0)
    out = rec.levels(end_s=20.0, interval_s=10.0)
    assert out["a"].tolist() == [5.0, 10.0]
    assert out["b"].tolist() == [2.0, 0.0]


def test_recorder_refuses_a_channel_twice() -> None:
    rec = Recorder()
    rec.channel("a")
    with pytest.raises(ValueError, match="channel 'a' registered twice"):
        rec.channel("a")
    with pytest.raises(ValueError, match="channel 'a' registered twice"):
        rec.add_level("a", np.array([0.0]), np.array([1.0]))


def test_events_table_is_sorted_stably_and_typed() -> None:
    rec = Recorder()
    rec.event(5.0, EventKind.FINISHED, "j", "pretraining", value=1.0)
    rec.event(1.0, EventKind.CHECKPOINTED, "j", "pretraining")  # recorded late, happened earlier
    rec.event(5.0, EventKind.RESTARTED, "k", "posttraining")
    rec.event(5.0, EventKind.FAILURE, "", "", domain=3)
    assert rec.n_events == 4
    ev = rec.events_table()
    assert ev["event"].tolist() == ["checkpointed", "finished", "restarted", "failure"]
    assert ev["time_s"].tolist() == [1.0, 5.0, 5.0, 5.0]
    assert ev["domain"].tolist() == [-1, -1, -1, 3]
    assert str(ev["time_s"].dtype) == "float64"
    assert str(ev["domain"].dtype) == "int64"
    assert str(ev["event"].dtype) == "string"
    assert math.isnan(ev["value"].iloc[0])


def test_empty_events_table_has_its_columns() -> None:
    ev = Recorder().events_table()
    assert list(ev.columns) == [
        "time_s",
        "event",
        "subject",
        "workload",
        "domain",
        "value",
        "detail",
        "source",
    ]
    assert len(ev) == 0


def test_event_kinds_are_the_documented_names() -> None:
    names = {k.value for k in EventKind}
    assert {
        "submitted",
        "started",
        "checkpointed",
        "interrupted",
        "preempted",
        "finished",
        "failure",
        "repair",
    } <= names


# --------------------------------------------------------------------------- run folder


@pytest.fixture(scope="module")
def tables(
    tiny_scenario: Callable[..., dict[str, Any]],
    run_scenario: Callable[..., tuple[Plan, RunTables]],
) -> RunTables:
    data = tiny_scenario(
        duration="1 d",
        reliability={"failure_rate_per_1000_node_days": 50},
        pretraining=[{"name": "p", "model": "llama3.1-8b", "gpus": 128, "tokens": 1e12}],
    )
    return run_scenario(data)[1]


def test_write_and_read_back_a_run(tables: RunTables, tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run", tables)
    assert folder == tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == sorted(RUN_FILES)
    back = read_run(folder)
    pd.testing.assert_frame_equal(back.traces, tables.traces)
    pd.testing.assert_frame_equal(back.events, tables.events)
    pd.testing.assert_frame_equal(back.jobs, tables.jobs)
    assert back.scenario == tables.scenario
    assert back.summary == json.loads(json.dumps(tables.summary))
    assert list(tmp_path.iterdir()) == [folder]  # no temporary folder left beside it


def test_run_folder_has_the_usual_permissions(tables: RunTables, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = write_run(tmp_path / "run", tables)
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755


def test_write_into_an_existing_empty_folder(tables: RunTables, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    write_run(tmp_path / "run", tables)
    assert (tmp_path / "run" / "summary.json").is_file()


def test_write_refuses_a_non_empty_folder(tables: RunTables, tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="already exists and is not empty"):
        write_run(target, tables)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_write_refuses_a_file(tables: RunTables, tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("x")
    with pytest.raises(OutputError, match="already exists"):
        write_run(target, tables)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_write_leaves_nothing(
    tables: RunTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    real = pd.DataFrame.to_parquet
    calls = []

    def flaky(self: pd.DataFrame, path: Any, *a: Any, **kw: Any) -> Any:
        calls.append(path)
        if len(calls) == 2:  # traces written, events fail
            raise error
        return real(self, path, *a, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", flaky)
    # an OS error is the user's problem (disk full): a clear OutputError; an interrupt propagates
    expected = OutputError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected):
        write_run(tmp_path / "out" / "run", tables)
    # no run folder, no hidden .partial, and not even the parent folder made for it
    assert list(tmp_path.iterdir()) == []


def test_read_run_of_an_incomplete_folder(tables: RunTables, tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run", tables)
    (folder / "jobs.parquet").unlink()
    with pytest.raises(OutputError, match=r"not a complete run folder \(missing jobs\.parquet\)"):
        read_run(folder)


def test_default_run_dir_is_unique(tmp_path: Path) -> None:
    first = default_run_dir(tmp_path, "smoke", 3, "20260101T000000Z")
    assert first == tmp_path / "smoke" / "20260101T000000Z-seed3"
    first.mkdir(parents=True)
    second = default_run_dir(tmp_path, "smoke", 3, "20260101T000000Z")
    assert second == tmp_path / "smoke" / "20260101T000000Z-seed3-2"


def test_row_channel_keeps_one_row_per_instant() -> None:
    rec = Recorder()
    rc = rec.row_channel(("a", "b"), (1.0, 2.0))
    rc.set(0.0, (3.0, 4.0))  # same instant as the initial row: overwrite
    rc.set(2.0, (5.0, 6.0))
    rc.set(2.0, (7.0, 8.0))
    t, m = rc.matrix()
    assert t.tolist() == [0.0, 2.0]
    assert m.tolist() == [[3.0, 4.0], [7.0, 8.0]]
    lv = rec.levels(4.0, 2.0)
    assert lv["a"].tolist() == [3.0, 7.0]
    assert lv["b"].tolist() == [4.0, 8.0]
    rec.discard(rc)
    assert "a" not in rec.levels(4.0, 2.0)


def test_merge_times_is_the_sorted_union() -> None:
    from sim.record import merge_times

    a = np.array([0.0, 1.0, 2.5, 4.0])
    b = np.array([0.0, 2.5, 3.0])
    c = np.array([5.0])
    np.testing.assert_array_equal(merge_times(a, b, c), np.union1d(np.union1d(a, b), c))
    np.testing.assert_array_equal(merge_times(a), a)
    assert merge_times(np.array([])).shape == (0,)


def test_a_bin_holding_an_infinite_or_undefined_value_is_infinite_or_undefined() -> None:
    """Infinite latencies (a queue without bound) and NaN (no estimate) hold for their bin only;
    the bins before and after keep their exact means."""
    t = np.array([0.0, 90.0, 110.0, 250.0])
    v = np.array([1.0, np.inf, 2.0, np.nan])
    out = bin_levels({"x": (t, v)}, 400.0, 100.0)["x"].to_numpy()
    assert out[0] == np.inf  # 90 s of 1 and 10 s without bound
    assert out[1] == np.inf  # 10 s without bound, then 2
    assert np.isnan(out[2])  # 50 s of 2, then undefined
    assert np.isnan(out[3])
    finite = bin_levels({"x": (np.array([0.0, 150.0]), np.array([1.0, 3.0]))}, 300.0, 100.0)
    np.testing.assert_allclose(finite["x"], [1.0, 2.0, 3.0])
