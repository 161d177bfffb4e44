"""The summary table ``aifactory run`` prints (sim.cli.runs), on hand-made tables."""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable
from types import SimpleNamespace

from rich.console import Console

from sim.cli.runs import _energy, _print_summary, cost_by_use, posttraining_text
from sim.io import RunTables


def _printed(summary: dict[str, object]) -> str:
    out = Console(record=True, width=200, file=io.StringIO())
    _print_summary(out, summary, None, SimpleNamespace(wall_s=1.0, simpy_events=10))
    return " ".join(out.export_text().split())


def test_it_energy_by_hall_only_with_several_halls(small_tables: Callable[..., RunTables]) -> None:
    summary = small_tables().summary
    assert "IT energy by hall" not in _printed(summary)  # one hall: the site's energy says it
    two = copy.deepcopy(summary)
    two["energy"]["halls"] = {"hall-a": {"it_mwh": 84_512.0}, "hall-b": {"it_mwh": 1_234.0}}
    printed = _printed(two)
    assert "IT energy by hall" in printed and "hall-a 84.5 GWh, hall-b 1.2 GWh" in printed
    del two["energy"]["halls"]  # a run folder from before the key
    assert "IT energy by hall" not in _printed(two)


def test_energy_units() -> None:
    assert _energy(125.4) == "125 MWh"
    assert _energy(84_512.0) == "84.5 GWh"
    assert _energy(1_113_634.0) == "1.11 TWh"
    assert _energy(None) == "n/a"


def test_summary_reads_like_the_report(small_tables: Callable[..., RunTables]) -> None:
    summary = copy.deepcopy(small_tables().summary)
    summary["cost"]["total_usd"] = 6.277e9
    summary["posttraining"]["mean_wait_hours"] = 0.0021
    summary["reliability"]["job_interruptions"] = 1
    printed = _printed(summary)
    assert "$6.28B:" in printed and "e+" not in printed
    assert "/GPU-h fully loaded" in printed and "/M tok" in printed
    assert "mean wait 7.6 s," in printed
    assert "1 unplanned job interruption" in printed
    assert "1 unplanned job interruptions" not in printed
    assert "1 interruption" in printed and "1 interruptions" not in printed


def test_money_dust_and_empty_classes_are_not_printed(
    small_tables: Callable[..., RunTables],
) -> None:
    """Review: "idle $3.23e-11" (a remainder of sums) and "0 of 0 finished" (a class without
    jobs) read as defects; dust below a cent is no use, a class without jobs no row."""
    summary = copy.deepcopy(small_tables().summary)
    summary["cost"]["by_use_usd"] = {"pretraining": 1234.0, "inference": 56.0, "idle": 3.23e-11}
    summary["cost"]["total_usd"] = 1290.0
    summary["posttraining"].update(submitted=0, finished=0, mean_wait_hours=None, preemptions=0)
    printed = _printed(summary)
    assert "cost by use │ pretraining $1.23k (96%), inference $56.00 (4%) │" in printed
    assert not re.search(r"\de-\d", printed) and "idle $" not in printed
    assert "post-training jobs" not in printed and "0 of 0" not in printed
    out = Console(record=True, width=200, file=io.StringIO())
    _print_summary(out, summary, None, SimpleNamespace(wall_s=1.0, simpy_events=10), 2)
    assert "post-training jobs │ none submitted (2 streams) │" in " ".join(
        out.export_text().split()
    )
    assert cost_by_use({"total_usd": 1e-12, "by_use_usd": {"idle": 1e-12}}) == ""
    assert (
        posttraining_text({"submitted": 3, "finished": 1, "mean_wait_hours": 0.5, "preemptions": 1})
        == "1 of 3 finished, mean wait 30 min, 1 preemption"
    )


def test_shrinks_and_the_failure_line(small_tables: Callable[..., RunTables]) -> None:
    """A shrunk pre-training run says its shrinks and hours shrunk (shrink_elastic); the
    failures line keeps unplanned job interruptions apart from planned maintenance drains."""
    summary = copy.deepcopy(small_tables().summary)
    assert summary["pretraining_runs"]
    assert " shrink" not in _printed(summary)  # none: nothing said
    summary["pretraining_runs"][0].update(shrinks=18, reshrinks=59, shrunk_hours=29.04)
    summary["reliability"].update(failures=1175, job_interruptions=1413, maintenance_drains=169)
    printed = _printed(summary)
    assert "18 shrinks (59 reshrinks), 29.0 h shrunk" in printed
    assert "1,175 domain failures" in printed
    assert "1,413 unplanned job interruptions; planned apart: 169 maintenance drains" in printed
