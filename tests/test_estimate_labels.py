"""``aifactory estimate serve``: its latencies say what they are, a separate prefill device
without the serving precision says so, and ``--max-seqs`` takes the scenario key's bound."""

from __future__ import annotations

import json

import pytest

from sim.cli import main

R1 = ["estimate", "serve", "--model", "deepseek-r1", "--input", "8000", "--output", "1000"]


def test_prefill_on_a_gpu_without_the_precision_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*R1, "--hardware", "gb200_nvl72", "--prefill-hardware", "h100_sxm"]
    assert main([*args, "--precision", "fp4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prefill_precision"] == "fp8"  # H100 has no FP4: its fastest format
    assert "runs at FP8, its fastest format: it has no FP4" in out["prefill_note"]
    assert main([*args, "--precision", "fp4"]) == 0
    assert "note: prefill on H100" in capsys.readouterr().out
    assert main([*args, "--precision", "fp8", "--json"]) == 0  # H100 has FP8: nothing to say
    out = json.loads(capsys.readouterr().out)
    assert (out["prefill_precision"], out["prefill_note"]) == ("fp8", "")


def test_latencies_say_p99_or_mean(capsys: pytest.CaptureFixture[str]) -> None:
    base = [*R1, "--hardware", "gb200_nvl72", "--precision", "fp8"]
    assert main([*base, "--ttft", "2s", "--tpot", "50ms"]) == 0
    out = capsys.readouterr().out
    assert "TTFT (p99 estimate)" in out and "TPOT (p99 estimate)" in out
    assert main(base) == 0
    assert "TTFT (mean, no latency targets)" in capsys.readouterr().out


def test_max_seqs_takes_the_scenario_bound(capsys: pytest.CaptureFixture[str]) -> None:
    base = [*R1, "--hardware", "gb200_nvl72", "--precision", "fp8", "--json"]
    assert main([*base, "--max-seqs", "65536"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*base, "--max-seqs", "65537"])
    assert exc.value.code == 2
    assert "must be at most 65,536 (as a scenario's serving.max_seqs" in capsys.readouterr().err
