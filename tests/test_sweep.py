"""Sweeps (issue 15): grid parsing, the sweep folder, resume, failures, and Dask for real.

The Dask tests share one ``LocalCluster`` of two single-threaded worker processes (started once
for the module); one more test starts a separate ``dask scheduler`` and ``dask worker`` as
processes and sweeps through ``--scheduler``, as a user with a cluster would. Runs are the smoke
factory for a day or two (a tenth of a second each). Every wait has a timeout.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from sim.cli import main
from sim.config.loader import ScenarioError, load_scenario
from sim.io import OutputError, read_run
from sim.report.sweep import render_sweep_report, seed_means, sensitivity
from sim.runner import run
from sim.sweep import (
    SweepProgress,
    cluster_client,
    describe,
    load_sweep_file,
    parse_grid,
    plain_progress,
    sweep,
)
from sim.sweep.spec import resolve, split_values

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "scenarios" / "smoke.yaml")
SHORT = ["run.duration=1d"]
RATE = "reliability.failure_rate_per_1000_node_days"
TIMEOUT_S = 120.0  # a whole sweep in these tests; each takes a few seconds
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """The local cluster that ``aifactory sweep --workers 2`` makes, shared by the module."""
    with cluster_client(workers=2) as c:
        yield c


def _tables_equal(a: Path, b: Path) -> None:
    ta, tb = read_run(a), read_run(b)
    for name in ("traces", "events", "jobs"):
        pd.testing.assert_frame_equal(getattr(ta, name), getattr(tb, name))
    assert ta.summary == tb.summary
    assert ta.scenario == tb.scenario


# --------------------------------------------------------------------------- the grid


def test_values_split_at_top_level_commas_only() -> None:
    assert split_values("1,2, 3") == ["1", "2", "3"]
    assert split_values("[throttle, pause],throttle") == ["[throttle, pause]", "throttle"]
    assert split_values("{a: 1, b: 2},'x,y'") == ["{a: 1, b: 2}", "'x,y'"]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["run.duration"], "--grid: expects key.path=value1,value2"),
        (["run.duration=1d,"], "run.duration: expected one or more values"),
        (["run.duration=1d,1d"], "the value '1d' appears twice"),
        (["facility.halls[0].racks=4", "facility.halls.0.racks=8"], "swept twice"),
        (["run..duration=1d"], "has an empty part"),
    ],
)
def test_grid_shape_errors(grid: list[str], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_grid(grid)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", f"{RATE}=0,-1"], f"error: --grid {RATE}=-1: {RATE}: -1 is outside"),
        (["--grid", "run.durration=1d,2d"], "--grid run.durration=1d: run.durration: unknown key"),
        (["--grid", "facility.grid_power=3 MW,3000 kW"], "are the same scenario"),
        (["--grid", "run.duration=1d", "--seeds", "0"], "--seeds: a count of seeds in"),
        (["--grid", "run.duration=1d", "--workers", "-1"], "--workers: must be 0 or more"),
        (["--grid", "run.duration=1d", "--set", "run.seed=x"], "--set: run.seed"),
    ],
)
def test_bad_input_is_one_message_and_no_folder(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    code = main(["sweep", SMOKE, "--workers", "0", "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.count("error:") == 1
    assert not out.exists()


def test_sweep_file_reads_like_the_command_line(tmp_path: Path) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(
        f"scenario: {SMOKE}\nset: [run.duration=1d]\n"
        f"grid:\n  {RATE}: [0, 16]\n"
        "  facility.power_control.policy: [throttle, [throttle, pause]]\n"
        "seeds: [3, 5]\n",
        "utf-8",
    )
    spec = load_sweep_file(f)
    assert spec.overrides == ("run.duration=1d",)
    assert [a.values for a in spec.grid] == [("0", "16"), ("throttle", "[throttle, pause]")]
    assert spec.seeds == (3, 5)
    # the sweep.yaml a sweep writes reads back to the same runs (a list stays a list)
    again = tmp_path / "again.yaml"
    again.write_text(spec.as_yaml(), "utf-8")
    assert [t.run_id for t in resolve(load_sweep_file(again))] == [t.run_id for t in resolve(spec)]
    f.write_text(f"scenario: {SMOKE}\ngird: {{}}\n", "utf-8")
    with pytest.raises(ScenarioError, match="unknown key 'gird'"):
        load_sweep_file(f)


# --------------------------------------------------------------------------- serial runs


def test_a_point_is_the_run_that_aifactory_run_makes(tmp_path: Path) -> None:
    res = sweep(
        SMOKE, {RATE: [16]}, seeds=[7], overrides=SHORT, out=tmp_path / "s", workers=0, report=False
    )
    row = res.table.iloc[0]
    assert row["status"] == "finished" and row["seed"] == 7
    folder = res.run_folder(str(row["run_id"]))
    direct = run(SMOKE, seed=7, overrides=[*SHORT, f"{RATE}=16"], out=tmp_path / "direct")
    assert direct.folder is not None
    _tables_equal(folder, direct.folder)
    # the saved scenario is the fully resolved one, and it runs again to the same result
    again = run(str(folder / "scenario.yaml"), write=False)
    assert again.tables.summary == read_run(folder).summary


def test_run_ids_are_content_hashes(tmp_path: Path) -> None:
    a = sweep(
        SMOKE,
        [f"{RATE}=0,16"],
        seeds=2,
        overrides=SHORT,
        out=tmp_path / "a",
        workers=0,
        report=False,
    )
    ids = list(a.table["run_id"])
    assert len(set(ids)) == 4 and all(i.endswith(("-seed1", "-seed2")) for i in ids)
    assert a.table["point"].nunique() == 2
    # the same point in a different grid and folder has the same id; the seed list is a choice
    b = sweep(
        SMOKE,
        [f"{RATE}=16,32"],
        seeds=[2],
        overrides=SHORT,
        out=tmp_path / "b",
        workers=0,
        report=False,
    )
    assert b.table["run_id"].iloc[0] == ids[3]


def test_a_crash_is_recorded_and_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.sweep.point as point

    real = point.simulate

    def crash_on_seed_2(plan: Any, *args: Any, **kwargs: Any) -> Any:
        if plan.run.seed == 2:
            raise RuntimeError("boom")
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(point, "simulate", crash_on_seed_2)
    res = sweep(
        SMOKE, [f"{RATE}=0"], seeds=3, overrides=SHORT, out=tmp_path / "s", workers=0, report=False
    )
    assert list(res.table["status"]) == ["finished", "failed", "finished"]
    assert res.failed == 1 and res.ran == 3
    failed = res.table.iloc[1]
    assert failed["error"] == "RuntimeError: boom"
    record = (res.folder / "failed" / f"{failed['run_id']}.json").read_text()
    assert "Traceback" in record and "boom" in record
    assert not res.run_folder(str(failed["run_id"])).exists()
    with pytest.raises(OutputError, match=f"run {failed['run_id']} failed: RuntimeError: boom"):
        res.tables(str(failed["run_id"]))
    # the rerun runs only the failed seed, and clears its record once it finishes
    monkeypatch.setattr(point, "simulate", real)
    again = sweep(
        SMOKE, [f"{RATE}=0"], seeds=3, overrides=SHORT, out=tmp_path / "s", workers=0, report=False
    )
    assert (again.ran, again.skipped, again.failed) == (1, 2, 0)
    assert not any((res.folder / "failed").iterdir())


def test_the_sweep_folder_holds_tables_and_report(tmp_path: Path) -> None:
    res = sweep(SMOKE, [f"{RATE}=0,16"], seeds=2, overrides=SHORT, out=tmp_path / "s", workers=0)
    for name in ("sweep.yaml", "sweep.parquet", "sweep.csv", "means.parquet", "means.csv"):
        assert (res.folder / name).is_file(), name
    pd.testing.assert_frame_equal(pd.read_parquet(res.folder / "sweep.parquet"), res.table)
    html = (res.folder / "report.html").read_text()
    assert 'data-figure="tornado"' in html and 'data-figure="param-0"' in html
    # the saved sweep.yaml is a sweep file that resumes the same sweep
    again = sweep(res.folder / "sweep.yaml", out=res.folder, workers=0, report=False)
    assert not (res.folder / "report.html").exists()  # not left to disagree with the table
    assert (again.ran, again.skipped) == (0, 4)
    assert set(res.summaries()["inference_services.chat-70b.slo_attainment"]) <= {1.0}


# --------------------------------------------------------------------------- aggregation


def _table(values: dict[str, list[float]], kpi: str = "utilization") -> pd.DataFrame:
    rows = []
    for v, per_seed in values.items():
        for seed, x in enumerate(per_seed):
            rows.append(
                {
                    "point": f"p{v}",
                    "seed": seed,
                    "run_id": f"p{v}-{seed}",
                    "status": "finished",
                    "error": "",
                    "k": v,
                    "k:value": float(v),
                    "hardware": "gb200_nvl72",
                    kpi: x,
                }
            )
    return pd.DataFrame(rows)


def test_means_have_student_t_intervals_across_seeds() -> None:
    t = _table({"1": [0.5, 0.6, 0.7], "2": [0.4]})
    m = seed_means(t, ["k"])
    half = stats.t.ppf(0.975, 2) * np.std([0.5, 0.6, 0.7], ddof=1) / math.sqrt(3)
    assert m.loc[0, "utilization_mean"] == pytest.approx(0.6)
    assert m.loc[0, "utilization_ci95_low"] == pytest.approx(0.6 - half)
    assert m.loc[0, "utilization_ci95_high"] == pytest.approx(0.6 + half)
    assert m.loc[1, "seeds"] == 1 and math.isnan(m.loc[1, "utilization_ci95_low"])


def test_tornado_orders_inputs_by_their_swing() -> None:
    rows = []
    for a in (0, 1):
        for b in (0, 1):
            for seed in (1, 2):
                rows.append(
                    {
                        "point": f"{a}{b}",
                        "seed": seed,
                        "run_id": f"{a}{b}-{seed}",
                        "status": "finished",
                        "a": str(a),
                        "b": str(b),
                        "hardware": "h100_sxm",
                        "utilization": 0.5 + 0.1 * a + 0.01 * b + 0.001 * seed,
                    }
                )
    table = pd.DataFrame(rows)
    sens = sensitivity(table, ["b", "a"], "utilization")
    assert list(sens["param"]) == ["a", "b"]
    assert sens.loc[0, "swing"] == pytest.approx(0.1)
    assert (sens.loc[0, "low_at"], sens.loc[0, "high_at"]) == ("0", "1")
    html = render_sweep_report(table, seed_means(table, ["a", "b"]), ["a", "b"], "t")
    assert 'data-figure="tornado"' in html


# --------------------------------------------------------------------------- Dask


def test_dask_gives_the_serial_results(client: Any, tmp_path: Path) -> None:
    grid = [f"{RATE}=0,16"]
    serial = sweep(
        SMOKE, grid, seeds=2, overrides=SHORT, out=tmp_path / "serial", workers=0, report=False
    )
    dask = sweep(
        SMOKE,
        grid,
        seeds=2,
        overrides=SHORT,
        out=tmp_path / "dask",
        scheduler=client,
        timeout_s=TIMEOUT_S,
        report=False,
    )
    assert dask.failed == 0 and dask.ran == 4
    assert len({w.rsplit(":", 1)[1] for w in dask.ran_on.values()} - {str(os.getpid())}) >= 1
    pd.testing.assert_frame_equal(serial.table, dask.table)
    pd.testing.assert_frame_equal(serial.means, dask.means)
    for run_id in serial.table["run_id"]:
        _tables_equal(serial.run_folder(run_id), dask.run_folder(run_id))


def test_a_failing_point_is_reported_and_the_rest_finish(client: Any, tmp_path: Path) -> None:
    # 4 racks cannot hold the 512-GPU pre-training run: that point fails to build, on its worker
    res = sweep(
        SMOKE,
        ["facility.halls.0.racks=16,4,12"],
        overrides=SHORT,
        out=tmp_path / "s",
        scheduler=client,
        timeout_s=TIMEOUT_S,
        report=False,
    )
    assert list(res.table["status"]) == ["finished", "failed", "finished"]
    assert "512 GPUs need 8 GB200 NVL72" in res.table.loc[1, "error"]
    assert "facility.halls.0.racks=4" in res.table.loc[1, "error"]
    assert (res.folder / "failed" / f"{res.table.loc[1, 'run_id']}.json").is_file()
    assert math.isnan(res.means.loc[1, "utilization_mean"]) and res.means.loc[1, "failed"] == 1


def test_a_resumed_sweep_runs_only_what_is_missing(client: Any, tmp_path: Path) -> None:
    out = tmp_path / "s"
    first = sweep(
        SMOKE, [f"{RATE}=0,16"], overrides=SHORT, out=out, scheduler=client, timeout_s=TIMEOUT_S
    )
    kept, lost = (first.run_folder(r) for r in first.table["run_id"])
    stamp = (kept / "summary.json").stat().st_mtime_ns
    import shutil

    shutil.rmtree(lost)  # as if the sweep had stopped before this run finished
    again = sweep(
        SMOKE, [f"{RATE}=0,16,32"], overrides=SHORT, out=out, scheduler=client, timeout_s=TIMEOUT_S
    )
    assert (again.ran, again.skipped, again.failed) == (2, 1, 0)
    assert set(again.ran_on) == {lost.name, again.table["run_id"].iloc[2]}
    assert (kept / "summary.json").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first.table, again.table.iloc[:2])


def test_a_killed_worker_s_run_is_retried(client: Any, tmp_path: Path) -> None:
    """Kill the worker process while it runs the point (SIGKILL: no clean-up): the scheduler
    gives the task to the other worker, and the run finishes with the same results."""
    client.wait_for_workers(2, timeout=60)
    pids = client.run(os.getpid)  # worker address -> pid
    result: dict[str, Any] = {}
    overrides = ["run.duration=90d"]  # about a second: long enough to be caught running

    def go() -> None:
        result["r"] = sweep(
            SMOKE,
            [f"{RATE}=4"],
            overrides=overrides,
            out=tmp_path / "s",
            scheduler=client,
            timeout_s=TIMEOUT_S,
            report=False,
        )

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        for worker, keys in client.processing().items():
            if any(str(k).startswith("aifactory-sweep-") for k in keys):
                killed = pids[worker]
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.01)
    thread.join(timeout=TIMEOUT_S)
    assert killed is not None, "the point was never seen running"
    assert not thread.is_alive()
    res = result["r"]
    assert (res.ran, res.failed) == (1, 0)
    run_id = res.table["run_id"].iloc[0]
    assert not res.ran_on[run_id].endswith(f":{killed}")  # another process ran it again
    direct = run(SMOKE, overrides=[*overrides, f"{RATE}=4"], write=False)
    assert read_run(res.run_folder(run_id)).summary == direct.tables.summary
    assert not list((res.folder / "runs").glob(".*.partial"))  # the killed write is cleaned up


def test_a_sweep_on_a_separate_scheduler_and_worker(tmp_path: Path) -> None:
    """``dask scheduler`` and ``dask worker`` started as processes, as on a user's cluster; the
    sweep goes through ``aifactory sweep --scheduler``."""
    info = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--no-dashboard", "--scheduler-file", str(info)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            )
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert info.is_file(), "the scheduler did not start within 60 s"
        procs.append(
            subprocess.Popen(
                [str(BIN / "dask"), "worker", "--scheduler-file", str(info), "--nworkers", "1",
                 "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            )
        )  # fmt: skip
        import json

        from distributed import Client

        address = json.loads(info.read_text())["address"]
        with Client(address, timeout=60, set_as_default=False) as c:
            c.wait_for_workers(1, timeout=60)
        out = tmp_path / "s"
        code = main(
            ["sweep", SMOKE, "--grid", f"{RATE}=0,16", "--set", *SHORT, "--scheduler", address,
             "--out", str(out), "--quiet", "--timeout", str(TIMEOUT_S)]
        )  # fmt: skip
        assert code == 0
        table = pd.read_parquet(out / "sweep.parquet")
        assert list(table["status"]) == ["finished", "finished"]
        assert (out / "runs" / table["run_id"].iloc[1] / "kpis.json").is_file()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def test_progress_says_done_running_failed_and_time_left() -> None:
    p = SweepProgress(total=10, done=2, running=2, failed=1, skipped=3, elapsed_s=30.0)
    assert p.remaining == 4 and p.left_s == pytest.approx(40.0)
    assert describe(p) == "5/10 done, 2 running, 1 failed (3 from before), ~40 s left"
    lines: list[str] = []
    update = plain_progress(lines.append, every_s=3600)
    update(p)
    update(p)  # nothing new, too soon: no line
    update(SweepProgress(10, 3, 1, 1, 3, 40.0))
    assert len(lines) == 2 and lines[1].startswith("6/10 done")


def test_seeds_alone_are_a_monte_carlo_of_the_scenario(tmp_path: Path) -> None:
    res = sweep(SMOKE, seeds=[4, 5], overrides=SHORT, out=tmp_path / "s", workers=0)
    assert res.params == () and list(res.table["seed"]) == [4, 5]
    assert len(res.means) == 1 and res.means.loc[0, "seeds"] == 2
    assert "swept: nothing (seeds only)" in (res.folder / "report.html").read_text()


def test_a_resolved_fat_tree_scenario_runs_again(tmp_path: Path) -> None:
    """Regression (found by notebook 03 through the sweep): the default failure causes written
    out in a resolved scenario.yaml were refused on a switched fabric, whose own link failures
    replace their network_link row, so a run folder's scenario did not run again."""
    overrides = ["run.duration=1d", "network.kind=fat_tree", "network.unit_domains=2"]
    first = run(SMOKE, overrides=overrides, write=False)
    resolved = yaml.safe_dump(first.tables.scenario, sort_keys=False)  # as write_run saves it
    again = run(load_scenario(text=resolved, source="scenario.yaml"), write=False)
    assert again.tables.summary == first.tables.summary
