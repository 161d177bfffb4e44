"""What a sweep runs: a base scenario, a grid of ``key.path`` values, and seeds.

A grid value is an override exactly like ``--set key.path=value``: the same parser, the same
validation, the same messages (blamed on ``--grid key.path=value``, or on the sweep file). Each
point of the grid (one value per key; the first key varies slowest) is loaded and validated on
the client before anything runs, so a bad key or value is one message and no folder. Errors that
only building a point finds (a job larger than the factory that a smaller grid value makes) are
that point's failure, recorded while the others run (:mod:`sim.sweep.execute`).

Every (point, seed) becomes a :class:`RunTask`: the point's *resolved* scenario (every default
filled in, SI units, the seed set), so a worker needs nothing else. Ids are deterministic:

* ``point_id``: the first 12 hex digits of the SHA-256 of the resolved scenario as canonical JSON
  (sorted keys) with ``run.seed`` left out, so the seeds of one point share it;
* ``run_id = <point_id>-seed<seed>``: a function of the resolved scenario and its seed only, so the
  same point run again (the same sweep, or a larger grid that contains it) finds its folder.

Seeds: ``seeds=K`` runs each point with its scenario's ``run.seed``, ``run.seed + 1``, ...,
``run.seed + K - 1`` (so ``K = 1`` is the run ``aifactory run`` would make); a list gives the
seeds themselves.

A sweep file (YAML, read with the scenario loader's bounds)::

    scenario: smoke.yaml            # relative to this file; absent: the built-in default
    set: [run.duration=2d]          # overrides applied to every point (like --set)
    grid:                           # key path -> list of values (as they would follow '=')
      reliability.failure_rate_per_1000_node_days: [0, 4, 16]
      facility.grid_power: [3 MW, 4 MW]
    seeds: 3                        # or a list: [1, 2, 3]
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from sim.config.loader import (
    LoadedScenario,
    Override,
    Problem,
    ScenarioError,
    load_scenario,
    override_path,
    read_yaml,
    resolved_dict,
)

__all__ = [
    "MAX_RUNS",
    "MAX_SEEDS",
    "GridAxis",
    "RunTask",
    "SweepSpec",
    "is_sweep_file",
    "load_sweep_file",
    "parse_grid",
    "resolve",
    "split_values",
]

#: Most runs (points x seeds) in one sweep: a year of a gigawatt factory takes about a minute per
#: run, so 100,000 runs are weeks of a large cluster; more is a mistake in the grid.
MAX_RUNS = 100_000
#: Most seeds per point (a confidence interval narrows as 1/sqrt(n): 1,000 is plenty).
MAX_SEEDS = 1_000
_SEED_MAX = 2**63 - 1
_SWEEP_KEYS = ("scenario", "set", "grid", "seeds")


@dataclass(frozen=True)
class GridAxis:
    """One swept key: its values as they would follow ``key=``, and where they were given."""

    key: str
    values: tuple[str, ...]
    label: str = "--grid"

    def override(self, value: str) -> Override:
        item = f"{self.key}={value}"
        return Override(item, f"{self.label} {item}")


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``scenario`` (a path; None for the built-in default), base ``overrides``, the
    ``grid`` and the ``seeds`` (a count or the seeds themselves)."""

    scenario: str | None = None
    grid: tuple[GridAxis, ...] = ()
    seeds: int | tuple[int, ...] = 1
    overrides: tuple[str, ...] = ()
    #: where the spec came from, for messages ("--grid" or the sweep file)
    source: str = "--grid"

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.grid)

    def as_yaml(self) -> str:
        """The spec as a sweep file (the scenario path absolute), to run or resume it again."""
        data: dict[str, Any] = {
            "scenario": str(Path(self.scenario).resolve()) if self.scenario else None,
            "set": list(self.overrides),
            "grid": {a.key: [_parsed(v) for v in a.values] for a in self.grid},
            "seeds": self.seeds if isinstance(self.seeds, int) else list(self.seeds),
        }
        if data["scenario"] is None:
            del data["scenario"]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class RunTask:
    """One run of a sweep: what a worker needs to run it and write its folder."""

    run_id: str
    point_id: str
    #: index of the point in the grid (first key slowest)
    index: int
    seed: int
    #: the resolved scenario, seed included (plain data, SI units, YAML key names)
    scenario: dict[str, Any]
    #: swept key -> the value as written; and its resolved value where it is a number
    params: dict[str, str]
    values: dict[str, float | None]
    #: for messages: the scenario and the point's values
    label: str
    folder: str = ""
    write_report: bool = False


def _err(source: str, message: str) -> ScenarioError:
    return ScenarioError(source, [Problem((), message)], {})


def split_values(raw: str) -> list[str]:
    """``"1,2,[a, b],'x,y'"`` -> ``["1", "2", "[a, b]", "'x,y'"]``: split at the commas that
    are outside brackets, braces and quotes (so a YAML list or mapping is one value)."""
    out: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(raw):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append(raw[start:i].strip())
            start = i + 1
    out.append(raw[start:].strip())
    return out


def _axis(key: str, values: Sequence[str], label: str) -> GridAxis:
    key = key.strip()
    try:
        override_path(key, label.split(" ", 1)[0])
    except ValueError as exc:
        raise _err(label, str(exc)) from None
    if not values or any(v == "" for v in values):
        raise _err(label, f"{key}: expected one or more values separated by commas, e.g. {key}=1,2")
    dup = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if dup is not None:
        raise _err(label, f"{key}: the value {dup!r} appears twice")
    return GridAxis(key, tuple(values), label)


def parse_grid(items: Sequence[str], label: str = "--grid") -> tuple[GridAxis, ...]:
    """``["key.path=v1,v2", ...]`` (the ``--grid`` arguments) -> axes, checked for shape."""
    axes: list[GridAxis] = []
    for item in items:
        if "=" not in item:
            raise _err(label, f"expects key.path=value1,value2,..., got {item[:200]!r}")
        key, _, raw = item.partition("=")
        axes.append(_axis(key, split_values(raw), label))
    return _no_repeats(axes, label)


def _no_repeats(axes: Sequence[GridAxis], label: str) -> tuple[GridAxis, ...]:
    seen: dict[tuple[str | int, ...], str] = {}
    for a in axes:
        loc = override_path(a.key, label.split(" ", 1)[0])
        if loc in seen:
            raise _err(label, f"{a.key}: swept twice (also as {seen[loc]})")
        seen[loc] = a.key
    return tuple(axes)


def _parsed(text: str) -> Any:
    """A grid value's text as the YAML value an override makes of it (text that is not YAML
    stays text), so that a sweep file written from a spec reads back to the same values."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _value_text(v: Any) -> str:
    """A YAML value of a sweep file as the text that would follow ``key=`` (flow style, so
    ``[throttle, pause]`` stays one value; a scalar loses YAML's document end marker)."""
    text = yaml.safe_dump(v, default_flow_style=True, width=math.inf).strip()
    return text.removesuffix("...").strip()


def grid_from_mapping(grid: Mapping[str, Any], label: str) -> tuple[GridAxis, ...]:
    """``{key: [values]}`` (a sweep file's ``grid``, or the Python API's) -> axes."""
    axes = []
    for key, values in grid.items():
        if not isinstance(key, str):
            raise _err(label, f"grid keys are key paths (text), got {key!r}")
        vals = values if isinstance(values, list | tuple) else [values]
        axes.append(_axis(key, [_value_text(v) for v in vals], label))
    return _no_repeats(axes, label)


def _seeds(value: Any, source: str) -> int | tuple[int, ...]:
    if isinstance(value, bool) or not isinstance(value, int | list | tuple):
        raise _err(source, f"expected a count or a list of seeds, got {value!r:.100}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEEDS:
            raise _err(source, f"a count of seeds in [1, {MAX_SEEDS:,}], got {value}")
        return value
    if not value or len(value) > MAX_SEEDS:
        raise _err(source, f"a list of 1 to {MAX_SEEDS:,} seeds, got {len(value)}")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= _SEED_MAX:
            raise _err(source, f"each seed is an integer in [0, 2**63 - 1], got {s!r:.60}")
    if len(set(value)) != len(value):
        raise _err(source, "a seed appears twice")
    return tuple(value)


def check_seeds(seeds: Any, source: str = "--seeds") -> int | tuple[int, ...]:
    """Seeds as given to the API or the CLI, checked (a count or distinct seeds)."""
    return _seeds(list(seeds) if isinstance(seeds, range) else seeds, source)


def is_sweep_file(path: str | Path) -> bool:
    """True when ``path`` is a YAML mapping with a ``grid`` key (a scenario never has one)."""
    p = Path(path)
    if not p.is_file() or p.suffix not in (".yaml", ".yml"):
        return False
    try:
        with p.open("rb") as f:
            head = f.read(1_000_000).decode("utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("grid:") for line in head.splitlines())


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep file (see module docstring); :class:`ScenarioError` names the file."""
    p = Path(path)
    src = str(p)
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _err(src, f"cannot read the sweep file: {exc}") from None
    data = read_yaml(text, src)
    if not isinstance(data, dict):
        raise _err(src, "a sweep file is a mapping with scenario, set, grid and seeds")
    unknown = [k for k in data if k not in _SWEEP_KEYS]
    if unknown:
        raise _err(
            src, f"unknown key {str(unknown[0])!r:.60}; expected one of: {', '.join(_SWEEP_KEYS)}"
        )
    scenario = data.get("scenario")
    if scenario is not None:
        if not isinstance(scenario, str):
            raise _err(src, f"scenario: expected a path, got {scenario!r:.100}")
        scenario = str(p.parent / scenario) if not Path(scenario).is_absolute() else scenario
    sets = data.get("set") or []
    if isinstance(sets, dict):
        sets = [f"{k}={_value_text(v)}" for k, v in sets.items()]
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise _err(src, "set: expected a list of key.path=value or a mapping of key paths")
    grid = data.get("grid")
    if not isinstance(grid, dict):
        raise _err(src, "grid: expected a mapping of key paths to lists of values")
    return SweepSpec(
        scenario=scenario,
        grid=grid_from_mapping(grid, f"{src}: grid"),
        seeds=_seeds(data.get("seeds", 1), f"{src}: seeds"),
        overrides=tuple(sets),
        source=src,
    )


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _at(data: Any, loc: tuple[str | int, ...]) -> Any:
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def count_runs(spec: SweepSpec) -> int:
    points = math.prod(len(a.values) for a in spec.grid)
    seeds = spec.seeds if isinstance(spec.seeds, int) else len(spec.seeds)
    return points * seeds


def resolve(spec: SweepSpec) -> list[RunTask]:
    """Every run of the sweep, each point loaded and validated now (the first bad point raises
    :class:`ScenarioError`, before anything runs or is written)."""
    n = count_runs(spec)
    if n > MAX_RUNS:
        raise _err(
            spec.source,
            f"the grid and seeds make {n:,} runs; at most {MAX_RUNS:,} in one sweep",
        )
    tasks: list[RunTask] = []
    base_name = spec.scenario or "the built-in scenario"
    for index, combo in enumerate(itertools.product(*(a.values for a in spec.grid))):
        overrides: list[str | Override] = list(spec.overrides)
        overrides += [a.override(v) for a, v in zip(spec.grid, combo, strict=True)]
        loaded: LoadedScenario = load_scenario(spec.scenario, overrides)
        resolved = resolved_dict(loaded.scenario)
        params = {a.key: v for a, v in zip(spec.grid, combo, strict=True)}
        values = {
            a.key: _number(_at(resolved, override_path(a.key, a.label.split(" ", 1)[0])))
            for a in spec.grid
        }
        run = resolved["run"]
        seeds = (
            [run["seed"] + i for i in range(spec.seeds)]
            if isinstance(spec.seeds, int)
            else list(spec.seeds)
        )
        if seeds[-1] > _SEED_MAX:
            raise _err(spec.source, f"seeds: {seeds[-1]} is above 2**63 - 1")
        point_id = _digest({**resolved, "run": {**run, "seed": None}})
        where = ", ".join(f"{k}={v}" for k, v in params.items())
        for seed in seeds:
            scenario = {**resolved, "run": {**run, "seed": seed}}
            tasks.append(
                RunTask(
                    run_id=f"{point_id}-seed{seed}",
                    point_id=point_id,
                    index=index,
                    seed=seed,
                    scenario=scenario,
                    params=params,
                    values=values,
                    label=f"{base_name} [{where + ', ' if where else ''}seed {seed}]",
                )
            )
    return tasks


def with_folders(tasks: Sequence[RunTask], runs_dir: Path, write_report: bool) -> list[RunTask]:
    """The tasks with their run folders (``runs_dir/<run_id>``, absolute) filled in."""
    root = runs_dir.resolve()
    return [replace(t, folder=str(root / t.run_id), write_report=write_report) for t in tasks]
