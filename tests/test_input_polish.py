"""Review of bad input at the command line and in scenarios: one clear line, never argparse's
usage block, pydantic's internals, a doubled message, a traceback or a half-written folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main
from sim.config.loader import ScenarioError, load_scenario
from sim.engine.core import Engine
from sim.engine.services import demand_series
from sim.runner import prepare

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
DEFAULT = ROOT / "sim" / "scenarios" / "default_gigawatt_gb200.yaml"


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a command that fails with exit code 2 (argparse's exit or the
    handler's return)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code  # type: ignore[assignment]
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "usage:" not in captured.err and "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def _load_error(*overrides: str, path: Path = SMOKE) -> str:
    """The message of a scenario that fails to load or to build (an inline model's check)."""
    with pytest.raises(ScenarioError) as info:
        prepare(path, overrides=overrides)
    return str(info.value)


# --------------------------------------------------------------------------- 1: argparse


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["run", "--sed", "3"],
            "error: unknown option --sed (did you mean --seed?); see `aifactory run --help`",
        ),
        (
            ["rn"],
            "error: unknown command 'rn' (did you mean 'run'?); choose from run, validate,"
            " report, compare, sweep, hardware, estimate, serve-sim, commitment;"
            " see `aifactory --help`",
        ),
        (
            [],
            "error: give a command: run, validate, report, compare, sweep, hardware, estimate,"
            " serve-sim, commitment; see `aifactory --help`",
        ),
        (
            # the options belong to the command that was misspelt: not called unknown (review)
            ["estimate", "serv", "--model", "x", "--hardware", "y", "--input", "3"],
            "error: unknown command 'serv' (did you mean 'serve'?); choose from train, serve;"
            " see `aifactory estimate --help`",
        ),
        (
            ["estimate", "trian"],
            "error: unknown command 'trian' (did you mean 'train'?); choose from train, serve;"
            " see `aifactory estimate --help`",
        ),
        (
            # the misspelt option is the cause of the "missing" one: said first
            ["estimate", "serve", "--modle", "x", "--hardware", "h100_sxm", "--input", "1"],
            "error: unknown option --modle (did you mean --model?); the following arguments are"
            " required: --model, --output; see `aifactory estimate serve --help`",
        ),
        (
            ["estimate", "train", "--model", "x", "--hardware", "y", "--gpus", "8", "--zero", "4"],
            "error: --zero: invalid choice '4'; choose from 1, 2, 3;"
            " see `aifactory estimate train --help`",
        ),
        (
            ["sweep", "s.yaml", "--gird", "a=1,2"],
            "error: unknown option --gird (did you mean --grid?); see `aifactory sweep --help`",
        ),
        (
            ["run", "--quite", "--ot", "x"],
            "error: unknown option --quite (did you mean --quiet?), unknown option --ot (did you"
            " mean --out?); see `aifactory run --help`",
        ),
        (
            ["run", "a.yaml", "b.yaml"],
            "error: unexpected argument 'b.yaml'; see `aifactory run --help`",
        ),
        (
            ["validate"],
            "error: the following arguments are required: scenarios;"
            " see `aifactory validate --help`",
        ),
        (
            ["run", "--seed", "x"],
            "error: argument --seed: invalid int value: 'x'; see `aifactory run --help`",
        ),
        (["hardware", "a", "b"], "error: unexpected argument 'b'; see `aifactory hardware --help`"),
        (
            ["compare", "--inference-precision", "fp9", "a", "b"],
            "error: --inference-precision: invalid choice 'fp9' (did you mean 'fp8'?); choose"
            " from natural, scenario, fp8, fp4, bf16; see `aifactory compare --help`",
        ),
        (
            ["commitment", "--budgte", "$1B", "s.yaml"],
            "error: unknown option --budgte (did you mean --budget?);"
            " see `aifactory commitment --help`",
        ),
        (
            ["serve-sim", "--servcie", "x", "s.yaml"],
            "error: unknown option --servcie (did you mean --service?); the following arguments"
            " are required: --service; see `aifactory serve-sim --help`",
        ),
    ],
)
def test_a_command_line_mistake_is_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli_error(argv, capsys) == expected


def test_help_still_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: aifactory run")


# --------------------------------------------------------------------------- 2, 3: messages


def test_a_negative_duration_of_auto_or_a_duration_is_one_message() -> None:
    """checkpoint_restore is 'auto' or a duration: pydantic fails it once per choice; the user
    reads the duration's reason once, with 'auto' as the other choice."""
    expected = (
        "--set: workloads.pretraining[0].checkpoint_restore: -1 min is outside the plausible"
        " range [0 s, 30 d] (a restore longer than a month is a typo); or 'auto'"
    )
    assert _load_error("workloads.pretraining[0].checkpoint_restore=-1min") == expected
    text = DEFAULT.read_text().replace(
        "checkpoint_interval: 5 min\n",
        "checkpoint_interval: 5 min\n      checkpoint_restore: -1 min\n",
        1,
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(text=text, source="s.yaml")
    assert str(info.value) == "s.yaml:44: " + expected.removeprefix("--set: ")
    assert _load_error("workloads.pretraining[0].checkpoint_restore=atuo").endswith(
        "; or 'auto' (did you mean 'auto'?)"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "workloads.inference[0].reasoning_growth=2",
            "workloads.inference[0].reasoning_growth: expected a section of keys, got 2; its"
            " keys: factor, start, over",
        ),
        (
            "workloads.inference[0].model=5",
            "workloads.inference[0].model: expected text or a section of keys, got 5",
        ),
        ("reliability.hot_spares=-1", "reliability.hot_spares: -1 is outside the plausible"),
        ("reliability.hot_spares={a: -1}", "reliability.hot_spares.a: -1 is outside the"),
        ("reliability.hot_spares=x", "reliability.hot_spares: expected a whole number, got 'x'"),
        ("reliability.hot_spares=2.5", "reliability.hot_spares: expected a whole number, got 2.5"),
        (
            "workloads.posttraining[0].duration=-1h",
            "workloads.posttraining[0].duration: -1 h is outside the plausible range",
        ),
        (
            "workloads.posttraining[0].kind=sfft",
            "workloads.posttraining[0].kind: expected 'sft', 'preference', 'rl' or 'other', got"
            " 'sfft' (did you mean 'sft'?)",
        ),
        (
            "workloads.posttraining[0].gpus={distribution: foo}",
            "workloads.posttraining[0].gpus: distribution: expected 'fixed' or 'choice', got 'foo'",
        ),
        ("reliability.enabled=maybe", "reliability.enabled: expected true or false, got 'maybe'"),
        ("run.seed=1.5", "run.seed: expected a whole number, got 1.5"),
        ("facility.halls=[]", "facility.halls: must not be empty"),
        ("workloads.inference=5", "workloads.inference: expected a list, got 5"),
        (
            "workloads.inference[0].model={foo: 1}",
            "workloads.inference[0].model: invalid inline model shape (total_params: required"
            " key is missing;",
        ),
        (
            "costs.energy_price={foo: 1}",
            "costs.energy_price: expected a price ('$80/MWh'), {kind: profile, base, peak}",
        ),
    ],
)
def test_no_pydantic_internals_reach_the_user(override: str, expected: str) -> None:
    msg = _load_error(override)
    assert msg.startswith(f"--set: {expected}"), msg
    assert len(msg.splitlines()) == 1, msg
    for internal in (
        "type=",
        "input_value=",
        "input_type=",
        "For further information visit",
        "Input should be",
        "Field required",
        "instance of",
        "function-after",
        "Value error,",
        "Extra inputs",
    ):
        assert internal not in msg, msg


# --------------------------------------------------------------------------- 4: rl on sft

_STREAM = "{name: a, arrival_rate: 1/d, gpus: 72, model: llama3.1-8b"


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (
            _STREAM + ", kind: sft, tokens: 1e9, rl: {steps: 10, rollout_tokens: 100}}",
            "workloads.posttraining[0].rl: the rl block applies only to kind: rl; this job is"
            " kind: sft, whose work is tokens (per job)",
        ),
        (
            _STREAM + ", kind: preference, rl: {steps: 10, rollout_tokens: 100}}",
            "workloads.posttraining[0].rl: the rl block applies only to kind: rl; this job is"
            " kind: preference, whose work is tokens (per job)",
        ),
        (
            _STREAM + ", tokens: 1e9}",
            "workloads.posttraining[0].tokens: tokens applies only to kind: sft or preference;"
            " this job is kind: rl (the default), whose work is an rl block: {steps,"
            " rollout_tokens, ...}",
        ),
    ],
)
def test_work_of_another_kind_is_refused_at_its_key(stream: str, expected: str) -> None:
    assert _load_error(f"workloads.posttraining[0]={stream}") == f"--set: {expected}"


def test_an_rl_block_on_an_sft_job_is_blamed_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "facility:\n  halls: [{name: h, hardware: gb200_nvl72, racks: 4}]\nworkloads:\n"
        "  posttraining:\n    - name: sft\n      kind: sft\n      arrival_rate: 2 / d\n"
        "      gpus: 72\n      model: llama3.1-8b\n      tokens: 1e9\n      rl:\n"
        "        steps: 10\n        rollout_tokens: 100\n"
    )
    with pytest.raises(
        ScenarioError, match=r"s\.yaml:11: workloads\.posttraining\[0\]\.rl: the rl"
    ):
        load_scenario(path)


# --------------------------------------------------------------------------- 5: shrinking


_QUIET = [
    "run.duration=2 d",
    "workloads.pretraining=[]",
    "workloads.posttraining=[]",
    "workloads.inference[0].ttft=null",
    "workloads.inference[0].tpot=null",
    "workloads.inference[0].demand.noise_cv=0",
]


def test_reasoning_that_shrinks_acts() -> None:
    """A reasoning_growth factor below 1 (a tier that learns to reason shorter) lowers the
    tokens per request from the ramp's start on; the capacity stays planned at the longest
    reasoning of the run, the start's."""
    base = [*_QUIET, "workloads.inference[0].reasoning_tokens=1000"]
    demands, caps = [], []
    for extra in (["workloads.inference[0].reasoning_growth={factor: 0.5, over: 1 d}"], []):
        _, plan = prepare(load_scenario(SMOKE, [*base, *extra]))
        engine = Engine(plan)
        engine._setup()
        demands.append(np.asarray(engine.services[0].demand))
        caps.append(plan.services[0].capacity_tokens_per_s_per_domain)
    ticks = np.arange(demands[0].shape[0]) * plan.services[0].control_interval_s
    m = 1.0 - 0.5 * np.clip(ticks / 86_400.0, 0.0, 1.0)
    np.testing.assert_allclose(demands[0] / demands[1], (400 + 1000 * m) / 1400, rtol=1e-12)
    assert caps[0] == caps[1]


def test_rollouts_that_shrink_act() -> None:
    """rollout_growth below 1 (RL with a length penalty) shortens the later rollouts: the
    jobs' steps are faster than at a constant length, and slower than at the end length."""
    stream = (
        "workloads.posttraining=[{name: rl, kind: rl, model: llama3.1-8b, arrival_rate: 4/d,"
        " gpus: 72, rl: {steps: 50, rollout_tokens: %s, rollout_growth: %s}}]"
    )
    rates = []
    for tokens, growth in ((2000, 1.0), (2000, 0.25), (500, 1.0)):
        _, plan = prepare(load_scenario(SMOKE, [*_QUIET, stream % (tokens, growth)]))
        rates.append(plan.streams[0].rates[0])
    assert rates[0] < rates[1] < rates[2]


def test_demand_that_shrinks_acts() -> None:
    """A negative growth_per_year (a tier being retired) compounds down: -50% a year halves
    the demand after a year."""
    _, plan = prepare(
        load_scenario(SMOKE, [*_QUIET, "workloads.inference[0].demand.growth_per_year=-0.5"])
    )
    svc = dataclasses.replace(
        plan.services[0], control_interval_s=364 * 86_400.0, peak_to_trough=1.0
    )
    d = demand_series(svc, 2, np.random.default_rng(0))
    assert d[1] / d[0] == pytest.approx(0.5 ** (364 / 365), rel=1e-9)  # both Mondays 00:00


# --------------------------------------------------------------------------- 7: user mistakes

_TINY = (
    "name: t\nrun: {duration: 1 d}\n"
    "facility:\n  grid_power: 3 MW\n  halls: [{name: h, hardware: gb200_nvl72, racks: 2}]\n"
)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "nonexistent.yaml"], "error: nonexistent.yaml: file not found"),
        (["run", "folder"], "error: folder: is a folder, expected a scenario YAML file"),
        (["run", "empty.yaml"], "error: empty.yaml: the file is empty"),
        (
            ["run", "list.yaml"],
            "error: list.yaml:1: a scenario must be a mapping of sections (run, facility, ...)",
        ),
        (
            ["run", "topkey.yaml"],
            "error: topkey.yaml:2: runn: unknown key 'runn' (did you mean 'run'?); expected one"
            " of: name, description, run,",
        ),
        (
            ["run", "gwh.yaml"],
            "error: gwh.yaml:4: facility.grid_power: '1 GWh' is in GWh (an energy), expected a"
            " quantity in W",
        ),
        (["run", "t.yaml", "--set", "run.duration"], "error: --set: expects key.path=value, got"),
        (
            ["run", "t.yaml", "--set", "run.duration=2"],
            "error: --set: run.duration: 2 has no unit; write it with one, e.g. '30 min'",
        ),
        (
            ["run", "t.yaml", "--set", "workloads.pretraining[0].gpus=5"],
            "error: --set: workloads.pretraining[0].gpus=5: there is no workloads.pretraining[0]:"
            " workloads.pretraining has no entries",
        ),
        (
            ["run", "t.yaml", "--out", "afile/run"],
            "error: --out afile/run: afile is a file, not a folder; choose another --out",
        ),
        (
            ["run", "t.yaml", "--out", "afile"],
            "error: --out afile: a file already exists there, not a folder; choose another --out",
        ),
        (
            ["sweep", "t.yaml", "--grid", "run.seed=1,2", "--out", "afile/sweep"],
            "error: --out afile/sweep: afile is a file, not a folder; choose another --out",
        ),
        (
            ["compare", "t.yaml", "t.yaml", "--out", "afile/cmp"],
            "error: --out afile/cmp: afile is a file, not a folder; choose another --out",
        ),
        (
            ["sweep", "t.yaml", "--grid", "facility.grid_power=3 MW,4 GWh"],
            "error: --grid facility.grid_power=4 GWh: facility.grid_power: '4 GWh' is in GWh (an"
            " energy), expected a quantity in W",
        ),
        (
            [
                "estimate",
                "serve",
                "--model",
                "llama3.1-8b",
                "--hardware",
                "h100_sxm",
                "--input",
                "100",
                "--output",
                "100",
                "--ttft",
                "50",
            ],
            "error: --ttft '50' has no unit: write e.g. '50 ms' or '50 s'",
        ),
    ],
)
def test_a_plausible_mistake_is_one_line_and_leaves_nothing(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "list.yaml").write_text("- run\n- facility\n")
    (tmp_path / "topkey.yaml").write_text(_TINY.replace("run:", "runn:"))
    (tmp_path / "gwh.yaml").write_text(_TINY.replace("3 MW", "1 GWh"))
    (tmp_path / "t.yaml").write_text(_TINY)
    (tmp_path / "afile").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _cli_error(argv, capsys).startswith(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no outputs/, no half folder


def test_an_empty_out_is_refused() -> None:
    """``--out ""`` wrote the run into the current folder (review)."""
    from sim.cli.outdir import out_problem

    assert out_problem("") == "--out is empty: give a folder name"
    assert out_problem("  ") == "--out is empty: give a folder name"


def test_a_shortened_choice_gets_a_guess() -> None:
    """``fastest`` for ``fastest_completion`` was too far for difflib (review)."""
    from sim.config.loader import _guess

    assert _guess("fastest", ["fastest_completion", "lowest_cost", "first_fit"]) == (
        " (did you mean 'fastest_completion'?)"
    )
    assert _guess("zzz", ["fastest_completion"]) == ""


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_an_out_where_no_folder_can_be_made_is_refused_at_once() -> None:
    """Even for root, /proc takes no folder: refused before any work, without a temp name."""
    from sim.cli.outdir import out_problem

    problem = out_problem("/proc/aifactory-nope/run")
    assert problem is not None
    assert problem.startswith("--out /proc/aifactory-nope/run: cannot create a folder in /proc (")
    assert ".partial" not in problem
