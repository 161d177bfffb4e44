"""``aifactory serve-sim``: the run folder, the printed summary, the scenario keys that act, and
each user error as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.config.loader import ScenarioError, load_scenario
from sim.runner import prepare

#: serve-sim takes the plan's replica layout and capacity, never its services' request-level SLO
#: tables (it simulates the requests itself): its plans are built without them (seconds each;
#: tests/serving/test_fleet_slo.py and tests/test_disaggregated_fleet.py probe them)
pytestmark = pytest.mark.usefixtures("without_slo_tables")

SMOKE = "scenarios/smoke.yaml"
SESSIONS = (
    "workloads.inference.0.sessions={calls: 4, tool_latency: 3 s, tool_output_tokens: 300,"
    " shared_prefix_tokens: 500}"
)


def _summary(folder: Path) -> dict[str, object]:
    return json.loads((folder / "summary.json").read_text())


def test_serve_sim_writes_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(
        ["serve-sim", SMOKE, "--service", "chat-70b", "--duration", "5 min", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "requests per CPU-second" in printed and "run folder" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "levels.parquet",
        "report.html",
        "requests.parquet",
        "summary.json",
    ]
    s = _summary(out)
    r = s["requests"]
    assert r["served"] + r["dropped"] + r["queued"] == r["arrived"] > 0  # type: ignore[index]
    assert s["engine"]["kv_cache"] == "reserved"  # type: ignore[index]  # the default
    req = pd.read_parquet(out / "requests.parquet")
    assert len(req) == r["arrived"]  # type: ignore[index]
    page = (out / "report.html").read_text()
    assert 'data-figure="latency"' in page and 'data-figure="levels"' in page


def test_scenario_keys_act(tmp_path: Path) -> None:
    base = ["serve-sim", SMOKE, "--service", "chat-70b", "--duration", "3 min", "--quiet"]
    runs = {}
    for name, extra in {
        "plain": [],
        "reserved": ["--set", "workloads.inference.0.kv_cache=reserved"],
        "sessions": ["--set", SESSIONS],
        "small_budget": [
            "--set",
            "workloads.inference.0.serving={max_seqs: 8, max_batched_tokens: 512}",
        ],
        "rate": ["--rate", "2/s"],
    }.items():
        assert main([*base, *extra, "--out", str(tmp_path / name)]) == 0
        runs[name] = _summary(tmp_path / name)
    assert runs["reserved"]["engine"]["kv_cache"] == "reserved"  # type: ignore[index]
    assert runs["sessions"]["prompt_cache"]["hit_rate"] > 0.3  # type: ignore[index]
    assert runs["plain"]["prompt_cache"]["hit_rate"] == 0.0  # type: ignore[index]
    assert runs["small_budget"]["queue"]["mean_running"] <= 8  # type: ignore[index]
    assert runs["small_budget"]["ttft_s"]["p99"] > runs["plain"]["ttft_s"]["p99"]  # type: ignore[index]
    assert runs["rate"]["requests"]["arrived"] < runs["plain"]["requests"]["arrived"]  # type: ignore[index]


def test_serve_sim_replays_a_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        + "".join(f"{k * 0.5},ChatGPT,{300 + k},{50 + k},0,Conversation log\n" for k in range(100))
    )
    out = tmp_path / "run"
    code = main(
        [
            "serve-sim",
            SMOKE,
            "--service",
            "chat-70b",
            "--duration",
            "10 min",
            "--trace",
            str(trace),
            "--trace-speed",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    s = _summary(out)
    assert s["requests"]["arrived"] == 100 and s["requests"]["served"] == 100  # type: ignore[index]
    assert "trace t.csv x2" in str(s["arrivals"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--service", "nope"],
            "--service: no inference service 'nope' in scenarios/smoke.yaml; it has: chat-70b",
        ),
        (["--service", "chat-70b", "--rate", "5"], "--rate '5' has no unit: write e.g. '5/s' or"),
        (["--service", "chat-70b", "--rate", "0/s"], "--rate: must be more than 0"),
        (
            ["--service", "chat-70b", "--duration", "9 d"],
            "--duration: must be more than 0 and at most 7 days",
        ),
        (
            ["--service", "chat-70b", "--rate", "1/s", "--trace", "x.csv"],
            "give --rate or --trace, not both",
        ),
        (["--service", "chat-70b", "--trace", "missing.csv"], "missing.csv: trace file not found"),
        # they act on a replayed trace only: refused without one, never ignored (review)
        (
            ["--service", "chat-70b", "--trace-speed", "2"],
            "--trace-speed acts on a replayed trace: give --trace FILE, or leave it out",
        ),
        (
            ["--service", "chat-70b", "--trace-format", "azure", "--trace-speed", "2"],
            "--trace-format and --trace-speed act on a replayed trace: give --trace FILE",
        ),
        (
            ["--service", "chat-70b", "--set", "workloads.inference.0.kv_cache=lru"],
            "workloads.inference[0].kv_cache: expected 'reserved' or 'paged', got",
        ),
    ],
)
def test_user_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve-sim", SMOKE, *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and err.count("e.g.") <= 1


def test_schema_rejects_sessions_with_a_given_hit_rate() -> None:
    with pytest.raises(ScenarioError, match="give either prompt_cache_hit or sessions, not both"):
        load_scenario(SMOKE, ["workloads.inference.0.prompt_cache_hit=0.3", SESSIONS])
    with pytest.raises(ScenarioError, match=r"max_seqs \(2000\) cannot exceed max_batched_tokens"):
        load_scenario(
            SMOKE, ["workloads.inference.0.serving={max_seqs: 2000, max_batched_tokens: 1024}"]
        )
    with pytest.raises(ScenarioError, match="must be below input_tokens"):
        load_scenario(
            SMOKE,
            [
                "workloads.inference.0.sessions={calls: 2, tool_latency: 1 s,"
                " tool_output_tokens: 10, shared_prefix_tokens: 1500}"
            ],
        )


def test_sessions_change_the_fluid_plan() -> None:
    _, plain = prepare(SMOKE)
    _, agent = prepare(SMOKE, overrides=[SESSIONS])
    a, b = plain.services[0], agent.services[0]
    # longer prompts (context grows over 4 calls) but most of them cached
    assert b.estimate["output_tokens_per_s_per_gpu"] != a.estimate["output_tokens_per_s_per_gpu"]
    assert b.prompt_tokens_per_request < a.prompt_tokens_per_request


def test_same_seed_same_tables(tmp_path: Path) -> None:
    args = ["serve-sim", SMOKE, "--service", "chat-70b", "--duration", "2 min", "--quiet"]
    for name in ("a", "b"):
        assert main([*args, "--seed", "7", "--out", str(tmp_path / name)]) == 0
    for table in ("requests", "levels"):
        a = pd.read_parquet(tmp_path / "a" / f"{table}.parquet")
        assert a.equals(pd.read_parquet(tmp_path / "b" / f"{table}.parquet"))


CPX_SCENARIO = """
name: cpx
run: {duration: 1 d, seed: 3}
facility:
  grid_power: 10 MW
  pue: 1.2
  halls:
    - {name: h, hardware: vr200_nvl144_cpx, racks: 4}
workloads:
  inference:
    - {name: r1-long, model: deepseek-r1, precision: fp8, demand: {mean_requests_per_s: 1},
       input_tokens: 100000, output_tokens: 1000, ttft: 2 s, tpot: 50 ms, min_domains: 1}
"""


def test_a_cpx_service_runs_behind_its_prefill_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service the plan prefills on the CPX (hybrid at 100k) runs its companion-fed replica
    behind its pool (it was refused: the request level had no disaggregation); TTFT includes
    the pool's prefill (~0.4 s for a 100k prompt on a TP16 replica's 32 CPX)."""
    path = tmp_path / "cpx.yaml"
    path.write_text(CPX_SCENARIO)
    out = tmp_path / "run"
    argv = ["serve-sim", str(path), "--service", "r1-long", "--duration", "2 min"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    svc = summary["service"]
    assert svc["prefill"] == "hybrid" and svc["replica_kind"] == "companion"
    assert svc["replica_kinds"] == ["companion", "gpu_prefill"]
    # TP16 x 2 CPX per GPU (TP8 before the plan's p99 TTFT came from the prefill queue)
    assert svc["prefill_pool"]["devices_per_instance"] == 32
    assert summary["ttft_s"]["p50"] > 0.3
    capsys.readouterr()
    # a kind the plan does not run is refused, before anything runs
    never = tmp_path / "never"
    assert main([*argv, "--replica", "colocated", "--out", str(never)]) == 2
    assert "runs r1-long with companion and gpu_prefill replicas only" in capsys.readouterr().err
    assert not never.exists()


def test_sessions_behind_a_prefill_pool_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cpx.yaml"
    path.write_text(
        CPX_SCENARIO.replace(
            "min_domains: 1}",
            "min_domains: 1, prefill: companion,\n       sessions: {calls: 3, tool_latency: 5 s,"
            " tool_output_tokens: 200}}",
        ).replace("input_tokens: 100000", "input_tokens: 2000")
    )
    assert main(["serve-sim", str(path), "--service", "r1-long", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "agentic sessions behind a separate prefill pool are not modelled" in err
    assert "prefill=colocated" in err


def test_out_is_checked_before_the_simulation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    args = ["serve-sim", SMOKE, "--service", "chat-70b", "--duration", "7d"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 2  # 7 days would take a minute
    assert "already exists" in capsys.readouterr().err


def test_a_reasoning_ramp_is_simulated_at_the_length_the_plan_is_for(tmp_path: Path) -> None:
    """The default rate is the plan's capacity at the run's longest reasoning, so the requests
    are too (review: they were simulated at the base length, a load of ~0.46, not 0.85)."""
    out = tmp_path / "surge"
    args = ["serve-sim", "scenarios/reasoning_surge.yaml", "--service", "reasoning-large"]
    assert main([*args, "--duration", "2min", "--quiet", "--out", str(out)]) == 0
    svc = json.loads((out / "summary.json").read_text())["service"]
    assert svc["generated_tokens_per_request"] == 500 + 6000  # 3,000 reasoning doubled


def test_without_targets_attainment_is_na_and_throughput_says_what_it_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_targets = [
        "--set",
        "workloads.inference.0.ttft=null",
        "--set",
        "workloads.inference.0.tpot=null",
    ]
    args = ["serve-sim", SMOKE, "--service", "chat-70b", "--duration", "3 min", *no_targets]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "SLO attainment │ n/a (the service has no latency targets)" in printed  # not 100%
    assert "throughput, completed requests" in printed and "generated (in flight too)" in printed
    page = (tmp_path / "run" / "report.html").read_text()
    assert "the service has no latency targets" in page
