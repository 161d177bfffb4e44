"""Tier (e): every user-facing message of the loader and the build phase, pinned; unit parsing.

Messages have the form ``<file>:<line>: <key.path>: <message>`` (DESIGN.md, "Bad input"). The
base scenario below has known line numbers, so each test pins the line where the mistake is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sim.config.loader import ScenarioError, load_scenario, resolved_dict
from sim.runner import prepare
from sim.units import QuantityError, parse_quantity

# line numbers:   1        2     3              4                   5          6
BASE = """\
name: t
run:
  duration: 2 d
  sample_interval: 1 h
facility:
  grid_power: 1 MW
  halls:
    - name: h1
      hardware: gb200_nvl72
      racks: 4
reliability:
  enabled: false
"""
# lines 7: halls, 8: - name, 9: hardware, 10: racks, 11: reliability, 12: enabled
# a pre-training job appended to BASE: 13 workloads, 14 pretraining, 15 - name, 16 model,
# 17 gpus, 18 tokens, 19 (extra key)
PRETRAIN = """\
workloads:
  pretraining:
    - name: p
      model: llama3.1-8b
      gpus: 64
      tokens: 1e9
"""
POSTTRAIN = """\
workloads:
  posttraining:
    - name: s
      arrival_rate: 1 / h
      gpus: 72
      duration: 1 h
"""

Writer = Callable[..., Path]


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    """The complete user message for scenario ``path`` (load and build)."""
    with pytest.raises(ScenarioError) as info:
        prepare(path, overrides=overrides)
    return str(info.value)


def at(path: Path, line: int | None, key: str) -> str:
    """Regex for the start of a message row: file, line, key path."""
    where = re.escape(str(path)) + (f":{line}" if line is not None else "")
    return f"^{where}: {re.escape(key)}: "


# --------------------------------------------------------------------------- the base is valid


def test_base_scenario_is_valid(write_scenario: Writer) -> None:
    loaded, plan = prepare(write_scenario(BASE))
    assert loaded.scenario.run.duration_s == 2 * 86_400
    assert loaded.scenario.run.sample_interval_s == 3600
    assert loaded.scenario.facility.grid_power_w == 1e6
    assert plan.n_domains == 4
    assert plan.total_gpus == 4 * 72


def test_name_defaults_to_the_file_stem(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("name: t\n", ""), name="my-factory.yaml")
    assert load_scenario(path).scenario.name == "my-factory"


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[1] / "scenarios").rglob("*.yaml")), ids=lambda p: p.name
)
def test_resolved_scenario_reloads_to_the_same_scenario(path: Path) -> None:
    """scenario.yaml in a run folder must reproduce the run: every default, loadable again."""
    loaded = load_scenario(path)
    text = yaml.safe_dump(resolved_dict(loaded.scenario), sort_keys=False)
    again = load_scenario(text=text, source="resolved.yaml")
    assert again.scenario == loaded.scenario


def test_default_scenario_has_one_copy() -> None:
    """``scenarios/default_gigawatt_gb200.yaml`` is a link to the packaged file, not a copy."""
    from importlib import resources

    from sim.config.loader import DEFAULT_SCENARIO

    link = Path(__file__).parents[1] / "scenarios" / DEFAULT_SCENARIO
    packaged = resources.files("sim.scenarios").joinpath(DEFAULT_SCENARIO)
    assert link.is_symlink()
    assert link.resolve() == Path(str(packaged)).resolve()


# --------------------------------------------------------------------------- schema errors


def test_unknown_key_suggests_the_close_one(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("  duration: 2 d", "  durration: 2 d"))
    msg = error_of(path)
    assert re.match(
        at(path, 3, "run.durration") + r"unknown key 'durration' \(did you mean 'duration'\?\)",
        msg,
    )
    assert "expected one of: duration, sample_interval, seed" in msg


def test_unknown_top_level_section_suggests_the_close_one(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("facility:", "facilty:"))
    msg = error_of(path)
    assert re.search(
        at(path, 5, "facilty") + r"unknown key 'facilty' \(did you mean 'facility'\?\)",
        msg,
        re.M,
    )
    assert re.search(at(path, 1, "facility") + "required key is missing", msg, re.M)


def test_wrong_type_names_the_value(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("racks: 4", "racks: many"))
    msg = error_of(path)
    assert re.match(
        at(path, 10, "facility.halls[0].racks")
        + r"racks must be 'fill' or a whole number of domains in \[1, 1,000,000\].*got 'many'",
        msg,
    )


def test_wrong_type_of_seed(write_scenario: Writer) -> None:
    path = write_scenario(
        BASE.replace("  sample_interval: 1 h", "  sample_interval: 1 h\n  seed: x")
    )
    assert re.match(at(path, 5, "run.seed") + r"expected a whole number, got 'x'", error_of(path))


def test_bad_hall_entry_does_not_claim_the_hall_list_is_empty(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("racks: 4", "racks: many"))
    assert "at least 1 item" not in error_of(path)


def test_section_of_the_wrong_type(write_scenario: Writer) -> None:
    text = BASE.replace("run:\n  duration: 2 d\n  sample_interval: 1 h", "run: 5")
    path = write_scenario(text)
    assert re.match(
        at(path, 2, "run") + r"expected a section of keys, got 5; its keys: duration, ",
        error_of(path),
    )


def test_negative_power(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("grid_power: 1 MW", "grid_power: -1 GW"))
    assert re.match(
        at(path, 6, "facility.grid_power")
        + r"-1 GW is outside the plausible range \(0 W, 100 GW\]",
        error_of(path),
    )


def test_unit_of_the_wrong_dimension(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("duration: 2 d", "duration: 5 MW"))
    assert re.match(
        at(path, 3, "run.duration") + r"'5 MW' is in MW .*expected a quantity in s$",
        error_of(path),
    )


def test_unreadable_quantity(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("grid_power: 1 MW", "grid_power: 1 megafoo"))
    assert re.match(
        at(path, 6, "facility.grid_power") + r"cannot read '1 megafoo' as a quantity",
        error_of(path),
    )


def test_boolean_is_not_a_quantity(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("grid_power: 1 MW", "grid_power: true"))
    assert re.match(
        at(path, 6, "facility.grid_power") + "expected a quantity in W, got True", error_of(path)
    )


def test_pue_below_one(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("grid_power: 1 MW", "grid_power: 1 MW\n  pue: 0.9"))
    assert re.match(
        at(path, 7, "facility.pue") + r"0.9 is outside the plausible range \[1, 3\]", error_of(path)
    )


def test_sample_interval_longer_than_the_run(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("sample_interval: 1 h", "sample_interval: 3 d"))
    assert re.match(
        at(path, 2, "run") + r"sample_interval \(259200 s\) is longer than the run duration"
        r" \(172800 s\)",
        error_of(path),
    )


def test_duplicate_hall_names(write_scenario: Writer) -> None:
    text = BASE.replace(
        "      racks: 4\n",
        "      racks: 2\n    - name: h1\n      hardware: gb200_nvl72\n      racks: 2\n",
    )
    path = write_scenario(text)
    assert re.match(
        at(path, 7, "facility.halls") + "hall names must be unique; repeated: h1", error_of(path)
    )


def test_duplicate_workload_names(write_scenario: Writer) -> None:
    job = PRETRAIN.split("  pretraining:\n")[1]
    path = write_scenario(BASE + PRETRAIN + job)
    assert re.match(
        at(path, 13, "workloads") + "workload names must be unique; repeated: p", error_of(path)
    )


def test_unknown_priority_class(write_scenario: Writer) -> None:
    path = write_scenario(BASE + PRETRAIN + "      class: urgent\n")
    msg = error_of(path)
    assert re.match(at(path, 19, "workloads.pretraining[0].class") + "unknown class 'urgent'", msg)
    assert "inference, posttraining, pretraining" in msg


def test_unknown_distribution(write_scenario: Writer) -> None:
    text = BASE + POSTTRAIN.replace("duration: 1 h", "duration: {distribution: gamma, mean: 1 h}")
    path = write_scenario(text)
    assert re.match(
        at(path, 18, "workloads.posttraining[0].duration")
        + r"distribution: expected 'fixed', 'exponential' or 'lognormal', got 'gamma'$",
        error_of(path),
    )


def test_choice_weights_of_the_wrong_length(write_scenario: Writer) -> None:
    text = BASE + POSTTRAIN.replace(
        "gpus: 72", "gpus: {distribution: choice, values: [72, 144], weights: [1]}"
    )
    path = write_scenario(text)
    assert "weights has 1 entries but values has 2" in error_of(path)


def test_choice_error_path_has_no_union_tag(write_scenario: Writer) -> None:
    text = BASE + POSTTRAIN.replace(
        "gpus: 72", "gpus: {distribution: choice, values: [72, 144], weights: [1]}"
    )
    path = write_scenario(text)
    assert re.match(at(path, 17, "workloads.posttraining[0].gpus") + "weights", error_of(path))


def test_many_problems_are_cut_after_eight(write_scenario: Writer) -> None:
    text = BASE.replace("gb200_nvl72", "toy") + "hardware:\n  toy:\n    display_name: x\n"
    msg = error_of(write_scenario(text))
    rows = msg.splitlines()
    assert len(rows) == 9
    assert re.fullmatch(r"\.\.\. and \d+ more problems", rows[-1])
    assert all("hardware.toy." in r and "required key is missing" in r for r in rows[:8])


# --------------------------------------------------------------------------- YAML level


def test_duplicate_yaml_keys(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("  duration: 2 d", "  duration: 2 d\n  duration: 3 d"))
    assert re.match(
        at(path, 4, "run.duration") + "key appears twice in the same mapping", error_of(path)
    )


def test_yaml_syntax_error_has_its_line(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("  duration: 2 d", "  duration: 2 d: x"))
    assert re.match(
        rf"^{re.escape(str(path))}:3: .*YAML syntax error: mapping values are not allowed here",
        error_of(path),
    )


def test_tab_indentation_is_a_syntax_error(write_scenario: Writer) -> None:
    path = write_scenario("name: t\n\trun: 1\n")
    assert re.match(rf"^{re.escape(str(path))}:2: .*YAML syntax error: .*'\\t'", error_of(path))


def test_yaml_cannot_run_code(write_scenario: Writer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_scenario(f'name: t\nrun: !!python/object/apply:os.system ["touch {marker}"]\n')
    msg = error_of(path)
    assert msg.startswith(str(path))
    assert "could not determine a constructor" in msg
    assert not marker.exists()


def test_missing_file() -> None:
    path = Path("no/such/scenario.yaml")
    assert re.match(rf"^{re.escape(str(path))}: .*file not found$", error_of(path))


def test_folder_instead_of_a_file(tmp_path: Path) -> None:
    assert re.match(
        rf"^{re.escape(str(tmp_path))}: .*is a folder, expected a scenario YAML file$",
        error_of(tmp_path),
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(write_scenario: Writer, text: str) -> None:
    path = write_scenario(text)
    assert re.match(rf"^{re.escape(str(path))}: .*the file is empty$", error_of(path))


def test_file_that_is_a_list(write_scenario: Writer) -> None:
    path = write_scenario("- a\n- b\n")
    assert re.match(
        rf"^{re.escape(str(path))}:1: .*a scenario must be a mapping of sections",
        error_of(path),
    )


def test_no_message_is_a_traceback(write_scenario: Writer) -> None:
    msg = error_of(write_scenario(BASE.replace("racks: 4", "racks: many")))
    assert "Traceback" not in msg
    assert "errors.pydantic.dev" not in msg


# --------------------------------------------------------------------------- build (cross refs)


def test_unknown_hardware_in_a_hall(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("hardware: gb200_nvl72", "hardware: gb201_nvl72"))
    msg = error_of(path)
    assert re.match(
        at(path, 9, "facility.halls[0].hardware")
        + r"unknown hardware 'gb201_nvl72' \(did you mean 'gb200_nvl72'\?\); known: .*h100_sxm",
        msg,
    )


def test_hardware_of_a_job_that_no_hall_has(write_scenario: Writer) -> None:
    path = write_scenario(BASE + PRETRAIN + "      hardware: h100_sxm\n")
    assert re.match(
        at(path, 19, "workloads.pretraining[0].hardware")
        + "no hall has hardware 'h100_sxm'; known: gb200_nvl72",
        error_of(path),
    )


def test_unknown_model(write_scenario: Writer) -> None:
    path = write_scenario(BASE + PRETRAIN.replace("llama3.1-8b", "llama3.1-8bb"))
    assert re.match(
        at(path, 16, "workloads.pretraining[0].model")
        + r"unknown model 'llama3.1-8bb'; did you mean 'llama3.1-8b'\?",
        error_of(path),
    )


def test_invalid_inline_model_gets_a_clean_message(write_scenario: Writer) -> None:
    path = write_scenario(BASE + PRETRAIN.replace("model: llama3.1-8b", "model: {layers: 2}"))
    msg = error_of(path)
    assert msg.startswith(str(path) + ":16: workloads.pretraining[0].model")
    assert "errors.pydantic.dev" not in msg
    assert "invalid inline model: invalid inline model" not in msg
    assert "total_params" in msg  # names what is missing


def test_job_larger_than_the_factory(write_scenario: Writer) -> None:
    path = write_scenario(BASE + PRETRAIN.replace("gpus: 64", "gpus: 1000"))
    assert re.match(
        at(path, 17, "workloads.pretraining[0].gpus")
        + r"1000 GPUs need 14 .* domains of 72 GPUs but the factory has 4 \(after 0 spares\)",
        error_of(path),
    )


def test_job_that_only_fits_without_the_spares(write_scenario: Writer) -> None:
    text = BASE + PRETRAIN.replace("gpus: 64", "gpus: 288") + "scheduler:\n  spare_domains: 1\n"
    path = write_scenario(text)
    assert re.match(
        at(path, 17, "workloads.pretraining[0].gpus")
        + r"288 GPUs need 4 .* but the factory has 3 \(after 1 spares\)",
        error_of(path),
    )


def test_posttraining_size_larger_than_the_factory(write_scenario: Writer) -> None:
    path = write_scenario(BASE + POSTTRAIN.replace("gpus: 72", "gpus: 1000"))
    assert re.match(
        at(path, 17, "workloads.posttraining[0].gpus")
        + "a job of 1000 GPUs needs 14 domains but the factory has 4",
        error_of(path),
    )


def test_posttraining_choice_with_one_size_too_large(write_scenario: Writer) -> None:
    text = BASE + POSTTRAIN.replace("gpus: 72", "gpus: {distribution: choice, values: [72, 720]}")
    path = write_scenario(text)
    assert re.match(
        at(path, 17, "workloads.posttraining[0].gpus")
        + "a job of 720 GPUs needs 10 domains but the factory has 4",
        error_of(path),
    )


def test_stop_before_start(write_scenario: Writer) -> None:
    path = write_scenario(BASE + POSTTRAIN + "      start_at: 2 h\n      stop_at: 1 h\n")
    assert re.match(
        at(path, 20, "workloads.posttraining[0].stop_at") + "stop_at must be later than start_at",
        error_of(path),
    )


def test_halls_that_draw_more_than_the_grid(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("grid_power: 1 MW", "grid_power: 0.5 MW"))
    assert re.match(
        at(path, 6, "facility.grid_power") + "the halls draw more than the grid power at full load",
        error_of(path),
    )


def test_fill_hall_where_no_domain_fits(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("racks: 4", "racks: fill").replace("1 MW", "100 kW"))
    assert re.match(
        at(path, 10, "facility.halls[0].racks") + "no gb200_nvl72 domain fits", error_of(path)
    )


def test_cooling_capacity_too_small(write_scenario: Writer) -> None:
    path = write_scenario(BASE.replace("racks: 4", "racks: 4\n      cooling_capacity: 100 kW"))
    assert re.match(
        at(path, 11, "facility.halls[0].cooling_capacity") + "0.10 MW cannot remove the heat",
        error_of(path),
    )


def test_inline_hardware_missing_fields(write_scenario: Writer) -> None:
    text = BASE.replace("gb200_nvl72", "toy") + "hardware:\n  toy:\n    display_name: x\n"
    msg = error_of(write_scenario(text))
    assert re.search(r":14: hardware\.toy\.peak_flops: required key is missing", msg)


def test_fill_hall_is_laid_out_to_the_power_budget(write_scenario: Writer) -> None:
    # 1 MW grid / PUE 1.2 = 833 kW of IT; a rack needs 132 kW x 1.1 = 145.2 kW -> 5 racks
    _, plan = prepare(write_scenario(BASE.replace("racks: 4", "racks: fill")))
    assert plan.n_domains == 5


# --------------------------------------------------------------------------- --set overrides


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("run.duration.x=3", r"^--set: run\.duration\.x=3: cannot set run\.duration\.x"),
        ("noequals", r"^--set: expects key\.path=value, got 'noequals'"),
        (
            "facility.halls[5].racks=3",
            r"there is no facility\.halls\[5\]: facility\.halls has only 1 entry$",
        ),
        ("run..x=1", r"^--set: key 'run\.\.x' has an empty part"),
        ("facility.halls[x].racks=1", r"index 'x' is not a number"),
    ],
)
def test_set_with_a_bad_path(write_scenario: Writer, item: str, pattern: str) -> None:
    msg = error_of(write_scenario(BASE), overrides=(item,))
    assert msg.startswith("--set") and "--set: --set" not in msg  # the flag said once
    assert re.search(pattern, msg)


def test_set_of_an_unknown_key_suggests_the_close_one(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    msg = error_of(path, overrides=("run.durration=2d",))
    assert re.search(r"run\.durration: unknown key 'durration' \(did you mean 'duration'\?\)", msg)


def test_set_with_a_bad_value(write_scenario: Writer) -> None:
    path = write_scenario(BASE)
    msg = error_of(path, overrides=("run.duration=5 MW",))
    assert re.search(r"run\.duration: '5 MW' is in MW", msg)


@pytest.mark.parametrize(
    ("item", "check"),
    [
        ("run.duration=3d", lambda sc: sc.run.duration_s == 3 * 86_400),
        ("run.seed=5", lambda sc: sc.run.seed == 5),
        ("facility.halls[0].racks=2", lambda sc: sc.facility.halls[0].racks == 2),
        ("facility.halls.0.racks=3", lambda sc: sc.facility.halls[0].racks == 3),
        ("reliability.enabled=true", lambda sc: sc.reliability.enabled),
        ("costs.energy_price=$50/MWh", lambda sc: sc.costs.energy_price_usd_per_mwh == 50),
    ],
)
def test_set_overrides(write_scenario: Writer, item: str, check: Callable[..., bool]) -> None:
    loaded = load_scenario(write_scenario(BASE), overrides=(item,))
    assert check(loaded.scenario)


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("1 GW", "W", 1e9),
        ("132 kW", "W", 132e3),
        ("30 d", "s", 30 * 86_400),
        ("90d", "s", 90 * 86_400),
        ("5 min", "s", 300),
        ("1.5 h", "s", 5400),
        ("$80/MWh", "USD/MWh", 80),
        ("$3.4e6", "USD", 3.4e6),
        ("400 Gb/s", "bit/s", 4e11),
        ("800 Gb/s", "byte/s", 1e11),
        ("3.35 TB/s", "byte/s", 3.35e12),
        ("80 GB", "byte", 80e9),
        ("2.5 PFLOPS", "FLOP/s", 2.5e15),
        ("12 / d", "1/s", 12 / 86_400),
        ("50%", "", 0.5),
        (" 1 MW ", "W", 1e6),
        (7, "s", 7.0),
        (2.5, "W", 2.5),
    ],
)
def test_parse_quantity(text: str | float, unit: str, expected: float) -> None:
    assert parse_quantity(text, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "unit", "pattern"),
    [
        ("5 MW", "s", r"'5 MW' is in MW \(.*\), expected a quantity in s"),
        ("1 GW", "", r"expected a quantity in a plain number"),
        ("30 d", "W", r"'30 d' is in d .*expected a quantity in W"),
        ("abc", "W", r"cannot read 'abc' as a quantity"),
        (True, "W", r"expected a quantity in W, got True"),
        (None, "s", r"expected a number or a string with a unit \(s\), got NoneType"),
        (float("inf"), "W", r"is not a finite number"),
    ],
)
def test_parse_quantity_errors(value: object, unit: str, pattern: str) -> None:
    with pytest.raises(QuantityError, match=pattern):
        parse_quantity(value, unit)


@pytest.mark.parametrize("value", ["7", "'1:7'"])
def test_oversubscription_is_per_tier(write_scenario: Writer, value: str) -> None:
    overrides = ("network.kind=fat_tree", f"network.oversubscription={value}")
    msg = error_of(write_scenario(BASE), overrides=overrides)
    assert "network.oversubscription: takes a ratio per switched tier" in msg
    assert "{unit: 1, pod: 7}" in msg and "valid dictionary" not in msg
