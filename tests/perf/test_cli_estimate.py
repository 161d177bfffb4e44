"""``aifactory estimate``: JSON keys, readable errors, exit codes."""

from __future__ import annotations

import json

import pytest
from engine_helpers import estimate_cli as _run

TRAIN = [
    *("estimate", "train", "--model", "llama3.1-405b", "--hardware", "h100_sxm"),
    *("--gpus", "16384", "--tp", "8", "--pp", "16", "--vp", "1", "--cp", "1", "--dp", "128"),
    *("--ep", "1", "--seq", "8192", "--global-batch", "2048", "--precision", "bf16"),
]
SERVE = [
    *("estimate", "serve", "--model", "llama2-70b", "--hardware", "h200_sxm", "--gpus", "8"),
    *("--tp", "1", "--precision", "fp8", "--input", "1024", "--output", "274"),
]


def test_train_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([*TRAIN, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("step_time_s", "tokens_per_s_per_gpu", "model_tflops_per_gpu", "mfu"):
        assert out[key] > 0
    assert out["layout"]["dp"] == 128


def test_serve_json_keys_with_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([*SERVE, "--ttft", "2s", "--tpot", "200ms", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("output_tokens_per_s_per_gpu", "batch", "ttft_s", "tpot_s"):
        assert out[key] > 0
    assert out["tpot_s"] <= 0.2
    assert out["replicas"] == 8


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(TRAIN) == 0
    assert "MFU" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*SERVE, "--ttft", "2 parsecs"], "--ttft"),
        ([*SERVE, "--tpot", "50"], "--tpot '50' has no unit"),
        ([*SERVE, "--ttft", "2 h"], "--ttft '2 h' is above 3600 s"),
        (
            [
                "estimate",
                "train",
                "--model",
                "llama3.1-406b",
                "--hardware",
                "h100_sxm",
                "--gpus",
                "8",
            ],
            "did you mean 'llama3.1-405b'",
        ),
        (
            ["estimate", "train", "--model", "llama3.1-8b", "--hardware", "h100", "--gpus", "8"],
            "unknown hardware 'h100'",
        ),
        (
            [
                "estimate",
                "train",
                "--model",
                "llama3.1-405b",
                "--hardware",
                "h100_sxm",
                "--gpus",
                "16",
                "--tp",
                "8",
                "--dp",
                "3",
            ],
            "= 24 GPUs, but the job has 16",
        ),
        (
            [
                "estimate",
                "train",
                "--model",
                "llama3.1-405b",
                "--hardware",
                "h100_sxm",
                "--gpus",
                "16",
                "--tp",
                "8",
                "--global-batch",
                "16",
            ],
            "does not fit",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1


def test_a_request_longer_than_the_context_window_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sim.cli import main

    code = main(
        [
            "estimate",
            "serve",
            "--model",
            "llama3.1-70b",
            "--hardware",
            "gb200_nvl72",
            "--precision",
            "fp8",
            "--input",
            "2000000",
            "--output",
            "1000",
        ]
    )
    assert code == 2
    assert "exceeds the model's context window of 131,072 tokens" in capsys.readouterr().err
