"""Request mixes: Poisson lengths, agentic sessions and their cache hits, trace readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.serving.traces import TraceError, read_trace
from sim.serving.workload import SessionShape, poisson_requests, session_mix, session_requests


def test_poisson_rate_and_means() -> None:
    rng = np.random.default_rng(1)
    r = poisson_requests(
        rng,
        rate_per_s=50.0,
        duration_s=400.0,
        input_tokens=1000,
        output_tokens=200,
        reasoning_multiplier=3.0,
    )
    assert len(r) == pytest.approx(20_000, rel=0.03)
    assert r.prompt_tokens.mean() == pytest.approx(1000, rel=0.03)
    # reasoning multiplies the visible output
    assert r.output_tokens.mean() == pytest.approx(600, rel=0.05)
    assert (np.diff(r.arrival_s) >= 0).all() and r.arrival_s[-1] <= 400.0


def test_sessions_grow_context_and_hit_the_cache() -> None:
    rng = np.random.default_rng(2)
    shape = SessionShape(calls=6, tool_latency_s=2.0, tool_output_tokens=300, cache_ttl_s=300.0)
    r = session_requests(
        rng, shape, rate_per_s=30.0, duration_s=600.0, input_tokens=2000, output_tokens=100
    )
    follow = np.flatnonzero(r.parent >= 0)
    p = r.parent[follow]
    assert (r.session[follow] == r.session[p]).all()
    # the next prompt is the previous prompt + its visible output + a tool result
    assert (r.prompt_tokens[follow] > r.prompt_tokens[p]).all()
    # tool latencies are well within the TTL, so every follow-up call reuses the previous context
    assert (r.cached_tokens[follow] > 0).all()
    assert (r.cached_tokens < r.prompt_tokens).all()
    assert (r.cached_tokens[r.parent < 0][1:] == 0).all()  # no shared prefix given
    assert np.mean(r.parent < 0) == pytest.approx(1 / 6, rel=0.1)
    assert 0.5 < r.cache_hit_rate < 0.95


def test_session_cache_expires_after_ttl() -> None:
    rng = np.random.default_rng(3)
    shape = SessionShape(calls=4, tool_latency_s=600.0, tool_output_tokens=50, cache_ttl_s=60.0)
    r = session_requests(
        rng, shape, rate_per_s=5.0, duration_s=600.0, input_tokens=500, output_tokens=50
    )
    follow = r.parent >= 0
    late = follow & (r.think_s > 60.0)
    assert late.any() and (r.cached_tokens[late] == 0).all()
    assert (r.cached_tokens[follow & (r.think_s <= 60.0)] > 0).all()


def test_shared_prefix_cached_after_the_first_request() -> None:
    rng = np.random.default_rng(4)
    shape = SessionShape(
        calls=1, tool_latency_s=1.0, tool_output_tokens=10, shared_prefix_tokens=400
    )
    r = session_requests(
        rng, shape, rate_per_s=5.0, duration_s=100.0, input_tokens=1000, output_tokens=10
    )
    assert r.cached_tokens[0] == 0
    assert (r.cached_tokens[1:] == np.minimum(400, r.prompt_tokens[1:] - 1)).all()


def test_azure_trace(tmp_path: Path) -> None:
    f = tmp_path / "azure.csv"
    f.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.0000000,396,109\n"
        "2023-11-16 18:15:47.1805900,879,20\n"
    )
    r = read_trace(f, speed=2.0)
    np.testing.assert_allclose(r.arrival_s, [0.0, 0.25, (50.0 - 46.68059) / 2.0])
    assert r.prompt_tokens.tolist() == [374, 879, 396]
    assert r.output_tokens.tolist() == [44, 20, 109]


def test_burstgpt_trace_skips_failed_requests(tmp_path: Path) -> None:
    f = tmp_path / "burst.csv"
    f.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45,ChatGPT,1087,0,1087,Conversation log\n"
        "118,GPT-4,417,276,693,Conversation log\n"
    )
    r = read_trace(f)
    assert r.arrival_s.tolist() == [0.0, 113.0]
    assert r.output_tokens.tolist() == [18, 276]


def test_mooncake_trace_prefix_hits(tmp_path: Path) -> None:
    f = tmp_path / "moon.jsonl"
    f.write_text(
        '{"timestamp": 0, "input_length": 1500, "output_length": 10, "hash_ids": [1, 2, 3]}\n'
        '{"timestamp": 1000, "input_length": 1200, "output_length": 5, "hash_ids": [1, 2, 9]}\n'
        '{"timestamp": 2500, "input_length": 600, "output_length": 5, "hash_ids": [7, 2]}\n'
    )
    r = read_trace(f)
    assert r.arrival_s.tolist() == [0.0, 1.0, 2.5]
    assert r.cached_tokens.tolist() == [0, 1024, 0]  # only a leading run of known blocks hits


@pytest.mark.parametrize(
    ("text", "name", "match"),
    [
        ("a,b\n1,2\n", "x.csv", r"x.csv: cannot tell the trace format"),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,10,x\n",
            "a.csv",
            r"a.csv:2: GeneratedTokens must be a whole number >= 1, got 'x'",
        ),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,3\n",
            "a.csv",
            r"a.csv:2: TIMESTAMP must be a date-time",
        ),
        ('{"timestamp": 0}\n', "m.jsonl", r"m.jsonl:1: expected an object with timestamp"),
        (
            '{"timestamp": 0, "input_length": 1, "output_length": 1}\n{oops\n',
            "m.jsonl",
            r"m.jsonl:2: not a JSON object",
        ),
        ("", "e.csv", r"e.csv: the file is empty"),
    ],
)
def test_trace_errors(tmp_path: Path, text: str, name: str, match: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(TraceError, match=match):
        read_trace(f)


def test_trace_missing_file_and_format(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="trace file not found"):
        read_trace(tmp_path / "nope.csv")
    f = tmp_path / "a.csv"
    f.write_text("Timestamp,Model,Request tokens\n1,a,2\n")
    with pytest.raises(TraceError, match=r"missing column\(s\) Response tokens"):
        read_trace(f, "burstgpt")
    with pytest.raises(TraceError, match="unknown trace format 'sharegpt'"):
        read_trace(f, "sharegpt")


def test_session_mix_is_the_expectation_of_the_sampled_sessions() -> None:
    for shape in (
        SessionShape(calls=8, tool_latency_s=5.0, tool_output_tokens=300),
        SessionShape(
            calls=3, tool_latency_s=200.0, tool_output_tokens=1000, shared_prefix_tokens=500
        ),
        SessionShape(calls=5, tool_latency_s=10.0, tool_output_tokens=300, share=0.4),
    ):
        r = session_requests(
            np.random.default_rng(0),
            shape,
            rate_per_s=100.0,
            duration_s=2000.0,
            input_tokens=2000,
            output_tokens=200,
        )
        prompt, hit = session_mix(shape, 2000, 200)
        assert r.prompt_tokens.mean() == pytest.approx(prompt, rel=0.02)
        assert r.cache_hit_rate == pytest.approx(hit, rel=0.02)


def test_agents_and_chat_share_a_service() -> None:
    shape = SessionShape(calls=5, tool_latency_s=1.0, tool_output_tokens=100, share=0.25)
    r = session_requests(
        np.random.default_rng(6),
        shape,
        rate_per_s=40.0,
        duration_s=500.0,
        input_tokens=800,
        output_tokens=100,
    )
    assert len(r) == pytest.approx(20_000, rel=0.05)
    in_sessions = r.session >= 0
    assert in_sessions.mean() == pytest.approx(0.25, abs=0.03)
    assert (r.cached_tokens[~in_sessions] == 0).all()
    follow = np.flatnonzero(r.parent >= 0)
    assert (r.session[r.parent[follow]] == r.session[follow]).all()
