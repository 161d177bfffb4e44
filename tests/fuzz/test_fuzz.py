"""Our own fuzzing suite: mutated scenarios and command lines keep the bad-input contract.

Each example mutates a valid small scenario (types, signs, units, magnitudes, structure, YAML
tricks: aliases, alias bombs, tags, truncation, duplicate keys) or builds a command line
(``run``/``validate`` with ``--set`` and ``--seed``, ``estimate`` with odd flags), runs it in this
process and checks the contract of :mod:`fuzz_contract`: exit 0 with a complete run folder,
or exit 2 with one message and no traceback, within a time and memory bound, nothing left behind.
Scenarios that validate are also run when they are small enough to finish in a few seconds.

CI runs a fixed, derandomized budget (about 15 s on two cores). To dig deeper::

    AIFACTORY_FUZZ_EXAMPLES=5000 AIFACTORY_FUZZ_RANDOM=1 .venv/bin/pytest tests/fuzz -x

``AIFACTORY_FUZZ_EXAMPLES`` is the number of examples per test (CI: 120 scenarios, 160 command
lines); ``AIFACTORY_FUZZ_RANDOM=1`` draws new examples on each run instead of the fixed ones;
``AIFACTORY_FUZZ_TIME_LIMIT_S`` and ``AIFACTORY_FUZZ_MEMORY_MARGIN`` set the per-command bounds.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from fuzz_contract import check_outcome, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config.loader import ScenarioError, load_scenario
from sim.runner import prepare

_N = os.environ.get("AIFACTORY_FUZZ_EXAMPLES")


def _fuzz(default_examples: int) -> settings:
    return settings(
        max_examples=int(_N or default_examples),
        deadline=None,
        derandomize=not os.environ.get("AIFACTORY_FUZZ_RANDOM"),
        suppress_health_check=list(HealthCheck),
        database=None,
    )


BASE: dict[str, Any] = {
    "name": "fuzz",
    "run": {"duration": "1 d", "sample_interval": "1 h", "seed": 1},
    "facility": {
        "grid_power": "3 MW",
        "pue": 1.2,
        "halls": [{"name": "hall1", "hardware": "gb200_nvl72", "racks": 8}],
    },
    "workloads": {
        "pretraining": [
            {
                "name": "pre",
                "model": "llama3.1-8b",
                "gpus": 144,
                "tokens": 1e11,
                "checkpoint_interval": "1 h",
            }
        ],
        "posttraining": [
            {
                "name": "rl",
                "arrival_rate": "8 / d",
                "gpus": {"distribution": "choice", "values": [72, 144], "weights": [2, 1]},
                "duration": {"distribution": "lognormal", "mean": "4 h", "cv": 1.0},
            }
        ],
        "inference": [
            {
                "name": "chat",
                "model": "llama3.1-8b",
                "demand": {"mean_requests_per_s": 5, "peak_to_trough": 2.5},
                "input_tokens": 1000,
                "output_tokens": 300,
                "ttft": "2 s",
                "tpot": "50 ms",
            }
        ],
    },
    "reliability": {"failure_rate_per_1000_node_days": 4.0, "repair_time": "3 h"},
    "costs": {"energy_price": "$80/MWh"},
}

ODD_STRINGS = [
    "2 dd",
    "30 min 2",
    "2 d (",
    "2 d)",
    "((1 h",
    "1 h ** 2",
    "-1 d",
    "0 s",
    "1 ns",
    "100 years",
    "1e999",
    "1e999 s",
    ".inf",
    "-.inf",
    ".nan",
    "nan",
    "inf s",
    "1 PW",
    "1e30 W",
    "0.5 W",
    "$80/MWh",
    "80 $/MWh",
    "$$80",
    "12 / d",
    "8 / s",
    "1 / ns",
    "1 h",
    "5 min",
    "50%",
    "-50%",
    "3e6",
    "1e400",
    "fill",
    "auto",
    "",
    " ",
    "x" * 5000,
    "é",
    "\x00",
    "gb201_nvl72",
    "..",
    ".",
    "a/b",
    "lognormal",
    "fixed",
    "2.5 PFLOPS",
    "400 Gb/s",
    "1 GW",
    "true",
    "null",
    "~",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 10**400 // 10**380]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=20),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(
        st.sampled_from(["value", "mean", "distribution", "x", "name"]), SCALARS, max_size=3
    ),
)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*here, i))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path[:-1]:
        data = data[p]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> str:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(data, path), path[-1]
        how = draw(st.sampled_from(["replace", "replace", "scale", "negate", "delete", "extra"]))
        old = parent[key]
        if how == "replace":
            parent[key] = draw(VALUES)
        elif how == "scale" and isinstance(old, int | float) and not isinstance(old, bool):
            parent[key] = old * 10.0 ** draw(st.integers(-12, 12))
        elif how == "scale" and isinstance(old, str) and old[:1].isdigit():
            head, _, unit = old.partition(" ")
            parent[key] = f"{head}e{draw(st.integers(-12, 12))} {unit}".strip()
        elif how == "negate" and isinstance(old, int | float) and not isinstance(old, bool):
            parent[key] = -old
        elif how == "negate" and isinstance(old, str):
            parent[key] = "-" + old
        elif how == "delete" and isinstance(parent, dict):
            del parent[key]
        elif how == "extra" and isinstance(old, dict):
            old[draw(st.sampled_from(["durration", "extra", "value", "gpus"]))] = draw(SCALARS)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    trick = draw(st.sampled_from(["none"] * 6 + ["bomb", "tag", "truncate", "dup", "anchor"]))
    if trick == "bomb":
        bomb = ["z0: &z0 [q, q, q, q, q, q, q, q]"] + [
            f"z{i}: &z{i} [*z{i - 1}, *z{i - 1}, *z{i - 1}, *z{i - 1}, *z{i - 1}, *z{i - 1}]"
            for i in range(1, 12)
        ]
        where = draw(st.sampled_from(["description", "run", "name", "hardware", "workloads"]))
        text = "\n".join(bomb) + "\n" + text.replace(f"{where}:", "ignored_:", 1)
        text += f"{where}: *z11\n"
    elif trick == "tag":
        tag = draw(
            st.sampled_from(
                [
                    "!!python/object/apply:os.system ['true']",
                    "!!binary aGk=",
                    "!!set {a, b}",
                    "!!timestamp 2001-12-14",
                    "!custom 1",
                ]
            )
        )
        text = text.replace("seed: 1", f"seed: {tag}", 1)
    elif trick == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif trick == "dup":
        text = text.replace("  seed: 1\n", "  seed: 1\n  seed: 2\n", 1)
    elif trick == "anchor":
        text = text.replace("name: fuzz", "name: &n fuzz", 1) + "description: *n\n"
    return text


def _cheap(text: str) -> bool:
    """Whether a scenario that validates is small enough to run within the fuzz budget."""
    try:
        _, plan = prepare(load_scenario(text=text, source="fuzz.yaml"))
    except ScenarioError:
        return False
    sc = plan.scenario
    days = sc.run.duration_s / 86_400
    events = days * (
        sum(s.arrival_rate_per_s * 86_400 for s in plan.streams)
        + sc.reliability.failure_rate_per_1000_node_days / 1000 * plan.total_gpus / 8
        + sum(86_400 / v.control_interval_s for v in plan.services)
        + sum(86_400 / j.checkpoint_interval_s for j in plan.jobs)
    )
    return days <= 3 and plan.n_domains <= 64 and events < 20_000


@_fuzz(120)
@given(text=mutated())
def test_mutated_scenarios_keep_the_contract(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        o = run_cli(["validate", str(path)])
        check_outcome(o, work, None, {"fuzz.yaml"})
        if o.code == 0 and _cheap(text):
            out = work / "run"
            o = run_cli(["run", str(path), "--out", str(out), "--quiet"])
            check_outcome(o, work, out, {"fuzz.yaml"})


SET_KEYS = [
    "run.duration",
    "run.sample_interval",
    "run.seed",
    "facility.grid_power",
    "facility.pue",
    "facility.halls[0].racks",
    "facility.halls[0].hardware",
    "facility.halls[3].racks",
    "workloads.pretraining[0].gpus",
    "workloads.posttraining[0].arrival_rate",
    "workloads.inference[0].ttft",
    "workloads.inference[0].min_domains",
    "scheduler.spare_domains",
    "reliability.failure_rate_per_1000_node_days",
    "name",
    "costs.energy_price",
    "run",
    "nosuch.key",
    "run..duration",
    "facility.halls.x",
]


@st.composite
def command_line(draw: st.DrawFn, scenario: str) -> list[str]:
    kind = draw(st.sampled_from(["validate", "run", "estimate"]))
    if kind == "estimate":
        what = draw(st.sampled_from(["train", "serve"]))
        args = ["estimate", what, "--model", draw(st.sampled_from(["llama3.1-8b", "nope", ""]))]
        args += ["--hardware", draw(st.sampled_from(["h100_sxm", "gb200_nvl72", "x"]))]
        flags = (
            ["--gpus", "--tp", "--pp", "--dp"]
            if what == "train"
            else [
                "--gpus",
                "--tp",
                "--ep",
                "--input",
                "--output",
                "--reasoning",
                "--cache-hit",
                "--ttft",
                "--tpot",
            ]
        )
        if what == "serve":
            args += ["--input", "100", "--output", "100"]
        else:
            args += ["--gpus", "64"]
        for flag in draw(st.lists(st.sampled_from(flags), max_size=3)):
            value = draw(
                st.one_of(
                    st.integers(-5, 10**12).map(str),
                    st.sampled_from(
                        ["0", "-1", "nan", "inf", "1e9", "2 s", "x", "0.5", "1 ms", "", "1e999"]
                    ),
                )
            )
            args += [flag, value]
        args += draw(
            st.sampled_from([[], ["--json"], ["--precision", "fp4"], ["--precision", "int3"]])
        )
        return args
    args = [kind, scenario]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(SET_KEYS))
        value = draw(st.one_of(st.sampled_from(ODD_STRINGS), st.integers(-10, 10**9).map(str)))
        args += ["--set", f"{key}={value}" if draw(st.booleans()) else key]
    if kind == "run" and draw(st.booleans()):
        args += ["--seed", draw(st.sampled_from(["0", "-1", "7", str(2**64), "x"]))]
    return args


@_fuzz(160)
@given(data=st.data())
def test_command_lines_keep_the_contract(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "fuzz.yaml"
        base = copy.deepcopy(BASE)
        path.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
        args = data.draw(command_line(str(path)))
        out = None
        if args[0] == "run":
            if not _cheap_overrides(path, args):
                args[0] = "validate"
            else:
                out = work / "run"
                args += ["--out", str(out), "--quiet"]
        old = Path.cwd()
        os.chdir(work)  # a stray default outputs/ folder would show up as left behind
        try:
            o = run_cli(args)
        finally:
            os.chdir(old)
        check_outcome(o, work, out, {"fuzz.yaml"})


def _cheap_overrides(path: Path, args: list[str]) -> bool:
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set" and i + 1 < len(args)]
    try:
        loaded = load_scenario(path, sets)
    except (ScenarioError, ValueError):
        return True  # the run fails fast at loading
    return _cheap(yaml.safe_dump(loaded.scenario.model_dump(mode="json", by_alias=True)))
