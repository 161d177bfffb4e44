"""Shared fixtures: tiny scenarios built as plain data, written to YAML, loaded and run.

The helpers are handed out by session-scoped fixtures (so hypothesis tests may use them too):

* ``tiny_scenario(**kw)`` -> a scenario as a dict: one hall of a few GB200 NVL72 racks (or an
  inline toy hardware entry), reliability off unless asked, short run;
* ``run_scenario(data_or_text, **kw)`` -> (plan, tables): load from text, build, simulate;
* ``write_scenario(data_or_text, name=...)`` -> the path of a YAML file in ``tmp_path``.

Expected values in tests are derived from the plan (``plan.jobs[i].rate``, checkpoint intervals),
never from the performance model's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.build import Plan
from sim.config.loader import load_scenario
from sim.io import RunTables
from sim.runner import prepare, simulate

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


#: Most workers ``-n auto`` starts (``make test``): each imports the whole stack and builds its own
#: module fixtures, and with ``--dist loadfile`` the longest file bounds the wall time anyway.
MAX_AUTO_WORKERS = 8


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per CPU this process may run on (its affinity, as ``nproc``),
    at most :data:`MAX_AUTO_WORKERS`; ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides it.
    pytest-xdist's own count asks psutil for physical cores, which counts two hyper-threads
    as one core and ignores the affinity a CI runner or container sets."""
    import os

    given = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if given.isdigit():
        return int(given)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, MAX_AUTO_WORKERS))


#: Under ``--dist loadfile``, test files that run on the worker of another file (after its
#: tests), because they build the same expensive things: test_foundation.py validates every
#: scenario file at once, test_cli.py each one; the SLO tables of the scenario files (a minute of
#: CPU on two cores) are then probed once, not by two workers at the same time.
SAME_WORKER_AS = {"tests/test_foundation.py": "tests/test_cli.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the files of :data:`SAME_WORKER_AS` joined to another's unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SAME_WORKER_AS.get(scope, scope)

    return _Scheduling(config, log)


@pytest.fixture(autouse=True, scope="session")
def _hermetic_serving_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Request-level SLO tables are cached on disk between runs; the tests keep theirs in a
    directory of their own (never the user's ~/.cache), new for each run of the suite and shared
    by everything in it: the subprocesses the CLI tests start (they inherit the environment) and,
    under pytest-xdist (``make test``), every worker. A table is the same bit for bit whether
    computed or read, and written under a temporary name then renamed, so two workers may
    compute the same table at once; without the sharing each worker would probe again every
    table another has already built (the scenario files' tables: about a minute on two cores)."""
    import os

    if "PYTEST_XDIST_WORKER" not in os.environ:  # not under xdist: this session's own
        where = tmp_path_factory.mktemp("aifactory-cache")
    else:  # the run's base directory, parent of each worker's own
        where = tmp_path_factory.getbasetemp().parent / "aifactory-cache"
        where.mkdir(exist_ok=True)
    os.environ["AIFACTORY_CACHE"] = str(where)


#: A small HGX-like 8-GPU node, given inline (no catalog entry), for scenarios that need many
#: small domains. Numbers are illustrative, not sourced.
TOY_NODE: dict[str, Any] = {
    "display_name": "toy 8-GPU node",
    "peak_flops": {"bf16": "989 TFLOPS", "fp8": "1979 TFLOPS"},
    "hbm_bytes": "80 GB",
    "hbm_bandwidth_bytes_per_s": "3.35 TB/s",
    "scaleup_bandwidth_bytes_per_s": "900 GB/s",
    "scaleout_bandwidth_bits_per_s": "400 Gb/s",
    "gpu_tdp_w": "700 W",
    "domain_gpus": 8,
    "domain_power_w": "10.2 kW",
    "cooling": "air",
    "domain_price_usd": "$270000",
}

GB200 = "gb200_nvl72"
GB200_GPUS = 72
GB200_POWER_W = 132e3


def _tiny(
    *,
    racks: int = 4,
    hardware: str = GB200,
    inline_hardware: dict[str, Any] | None = None,
    duration: str | float = "2 d",
    sample_interval: str | float = "1 h",
    seed: int = 0,
    grid_power: str | float | None = None,
    reliability: dict[str, Any] | None = None,
    restart_overhead: str | float = "10 min",
    pretraining: Sequence[dict[str, Any]] = (),
    posttraining: Sequence[dict[str, Any]] = (),
    inference: Sequence[dict[str, Any]] = (),
    scheduler: dict[str, Any] | None = None,
    name: str = "tiny",
) -> dict[str, Any]:
    """A scenario as plain data. ``reliability=None`` disables failures."""
    if grid_power is None:
        # enough for the racks at full draw, overhead and PUE included, with a margin
        per = 10.2e3 if inline_hardware else GB200_POWER_W
        grid_power = racks * per * 1.1 * 1.2 * 1.05 + 1.0
    data: dict[str, Any] = {
        "name": name,
        "run": {"duration": duration, "sample_interval": sample_interval, "seed": seed},
        "facility": {
            "grid_power": grid_power,
            "pue": 1.2,
            "halls": [{"name": "hall1", "hardware": hardware, "racks": racks}],
        },
        "workloads": {
            "pretraining": list(pretraining),
            "posttraining": list(posttraining),
            "inference": list(inference),
        },
        "reliability": (
            {"enabled": False, "restart_overhead": restart_overhead}
            if reliability is None
            else {"restart_overhead": restart_overhead, **reliability}
        ),
    }
    if inline_hardware is not None:
        data["hardware"] = {hardware: inline_hardware}
    if scheduler is not None:
        data["scheduler"] = scheduler
    return data


def _text(data_or_text: dict[str, Any] | str) -> str:
    if isinstance(data_or_text, str):
        return data_or_text
    return yaml.safe_dump(data_or_text, sort_keys=False)


def _run(
    data_or_text: dict[str, Any] | str, *, seed: int | None = None, source: str = "tiny.yaml"
) -> tuple[Plan, RunTables]:
    loaded = load_scenario(text=_text(data_or_text), source=source)
    _, plan = prepare(loaded, seed=seed)
    tables, _ = simulate(plan)
    return plan, tables


def _plan(data_or_text: dict[str, Any] | str) -> Plan:
    _, plan = prepare(load_scenario(text=_text(data_or_text), source="tiny.yaml"))
    return plan


@pytest.fixture
def without_slo_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds leave out the services' request-level SLO tables (``sim.build._mix_attainment``
    gives none), for tests that check something else of a plan: a table costs seconds, and
    tests/serving probes them."""
    monkeypatch.setattr("sim.build._mix_attainment", lambda *a, **k: None)


@pytest.fixture(scope="session")
def tiny_scenario() -> Callable[..., dict[str, Any]]:
    return _tiny


@pytest.fixture(scope="session")
def run_scenario() -> Callable[..., tuple[Plan, RunTables]]:
    return _run


@pytest.fixture(scope="session")
def plan_of() -> Callable[..., Plan]:
    return _plan


@pytest.fixture(scope="session")
def toy_node() -> dict[str, Any]:
    """An inline hardware entry (a small 8-GPU node) for ``hardware:`` in a scenario."""
    return dict(TOY_NODE)


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write scenario text (or data) to ``tmp_path/<name>`` and return the path."""

    def write(data_or_text: dict[str, Any] | str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(_text(data_or_text), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.rglob("*.yaml"))


@pytest.fixture
def chdir_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root (scenario paths as users type them)."""
    monkeypatch.chdir(ROOT)
    return ROOT
