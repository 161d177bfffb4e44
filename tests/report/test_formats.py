"""The report's and the CLI's number formats: a reader sees units, never raw SI floats."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from sim.cli.sweep import kpi_text
from sim.config.loader import load_scenario, resolved_dict
from sim.report.scenario_text import scenario_as_written
from sim.report.style import latency
from sim.report.sweep import KPIS

SMOKE = Path(__file__).parent.parent.parent / "scenarios" / "smoke.yaml"


def test_latency_in_the_unit_that_fits() -> None:
    assert latency(0.05) == "50 ms"
    assert latency(0.9994) == "999 ms"
    assert latency(1.754) == "1.8 s"
    assert latency(1754.611) == "29 min"  # was "1,754,611 ms"
    assert latency(5 * 3600.0) == "5 h"
    assert latency(None) == latency(math.inf) == "n/a"


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str) and a.split(" ", 1)[1:] == b.split(" ", 1)[1:]:
        try:  # "3600.0 s", "9.26e-05 / s": the same unit, a number equal to the last bit or so
            return math.isclose(float(a.split(" ")[0]), float(b.split(" ")[0]), rel_tol=1e-12)
        except ValueError:
            pass
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


def test_the_report_writes_the_scenario_with_units_and_it_reads_back() -> None:
    loaded = load_scenario(SMOKE, ["costs.prices.gb200_nvl72=$3.9M"])
    resolved = resolved_dict(loaded.scenario)
    written = scenario_as_written(resolved)
    costs = written["costs"]
    assert costs["it_amortization"] == "1825 d"  # was "157680000.0 s"
    assert costs["energy_price"] == "$80/MWh"  # was 80.0
    assert costs["prices"] == {"gb200_nvl72": "$3.9M"}
    assert written["facility"]["grid_power"] == "3 MW"
    assert written["workloads"]["inference"][0]["tpot"] == "50 ms"
    assert written["workloads"]["posttraining"][0]["arrival_rate"] == "8 / d"
    again = load_scenario(text=yaml.safe_dump(written, sort_keys=False))
    assert _close(resolved_dict(again.scenario), resolved)


def test_sweep_means_in_human_units() -> None:
    k = {x.column: x for x in KPIS}
    assert kpi_text(k["inference_tokens_per_day"], 7.804e8) == "780M"  # was 7.804e+08
    assert kpi_text(k["cost_per_million_tokens_usd"], 1.2345) == "$1.23"
    assert kpi_text(k["total_cost_usd"], 5.41e7) == "$54.1M"
    assert kpi_text(k["utilization"], 0.4834) == "48.3%"
    assert kpi_text(k["training_run_days"], 12.34) == "12.3"
    assert kpi_text(k["utilization"], math.nan) == "n/a"
