"""Cost and spread of the fleet's SLO attainment tables (docs/serving.md, "Fleet").

Builds the scenarios (default: ``scenarios/smoke.yaml`` and
``scenarios/default_gigawatt_gb200.yaml``) to find the tables their services need, then
probes each table afresh (:func:`~sim.serving.capacity.table_probes`, no cache) two or three
ways, in the same run:

* baseline: one arrival draw at every load (``draws=1``, the table before it averaged draws);
* the fleet's: the mean of :data:`~sim.serving.capacity.TABLE_DRAWS` draws where the first
  leaves a load open (:data:`~sim.serving.capacity.TABLE_SETTLED`);
* with ``--all-draws``: every draw at every load (``settled=None``), the reference the settled
  rule is checked against (the largest difference from the fleet's rows is printed, at the
  loads up to 1 that the fleet reads and at any load).

Per table: the attainment rows as probed (before :func:`~sim.serving.capacity.attainment_table`
makes them fall with load: how much a row rises is printed), the CPU seconds of each way and
their ratio to the baseline, and :func:`~sim.serving.capacity.load_at_slo` of each (on the
falling rows the fleet uses).

    python benchmarks/slo_table.py [--all-draws] [SCENARIO ...]
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

os.environ["AIFACTORY_CACHE"] = "off"  # before sim is imported: nothing read from disk

import numpy as np

import sim.build
import sim.serving.capacity
from sim.runner import prepare
from sim.serving.capacity import (
    TABLE_DRAWS,
    TABLE_SETTLED,
    AttainmentTable,
    load_at_slo,
    table_probes,
)

SCENARIOS = ("scenarios/smoke.yaml", "scenarios/default_gigawatt_gb200.yaml")


def _tables_of(scenario: str) -> list[tuple[Any, dict[str, Any]]]:
    """The arguments of every attainment table the scenario's build asks for."""
    calls: list[tuple[Any, dict[str, Any]]] = []
    real = sim.build.attainment_table

    def spy(shape: Any, **kw: Any) -> AttainmentTable:
        calls.append((shape, kw))
        return real(shape, draws=1, **kw)  # the cheapest: only the arguments are wanted

    sim.build.attainment_table = spy  # type: ignore[assignment]
    try:
        prepare(scenario)
    finally:
        sim.build.attainment_table = real
    return calls


def _rows(shape: Any, kw: dict[str, Any], **how: Any) -> tuple[np.ndarray, float]:
    t0 = time.process_time()
    ps = table_probes(shape, **kw, **how)
    cpu = time.process_time() - t0
    return np.array([0.0 if math.isnan(p.attainment) else p.attainment for p in ps]), cpu


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    every = "--all-draws" in sys.argv
    total = {"one": 0.0, "fleet": 0.0, "all": 0.0}
    worst_settled = worst_read = 0.0
    print(f"TABLE_DRAWS {TABLE_DRAWS}, TABLE_SETTLED {TABLE_SETTLED:g}")
    for scenario in args or SCENARIOS:
        for shape, kw in _tables_of(scenario):
            one, c1 = _rows(shape, kw, draws=1)
            fleet, cf = _rows(shape, kw)
            total["one"] += c1
            total["fleet"] += cf
            print(
                f"\n{scenario}: {shape.model.display_name} {shape.precision} TP{shape.tp} on"
                f" {shape.hw.display_name}, {shape.input_tokens:.0f}/{shape.output_tokens:.0f}"
                f" tokens, TTFT {kw['ttft_s']} s / TPOT {kw['tpot_s']} s, fluid capacity"
                f" {kw['rate_per_s']:.3f} requests/s"
            )
            loads = np.array(kw.get("loads", sim.serving.capacity.FLEET_LOADS))
            print("  loads     ", " ".join(f"{x:7.2f}" for x in loads))
            rows = [("one draw", one, c1), ("fleet", fleet, cf)]
            if every:
                full, ca = _rows(shape, kw, settled=None)
                total["all"] += ca
                rows.append(("all draws", full, ca))
                diff = np.abs(full - fleet)
                worst_read = max(worst_read, float(diff[loads <= 1.0].max()))
                worst_settled = max(worst_settled, float(diff.max()))
            for name, att, cpu in rows:
                rise = float(np.max(att - np.minimum.accumulate(att)))
                print(
                    f"  {name:10s}",
                    " ".join(f"{x:7.4f}" for x in att),
                    f"| {cpu:5.2f} CPU-s ({cpu / c1:.2f}x), rises by {rise:.1e},"
                    f" load_at_slo {load_at_slo(loads, np.minimum.accumulate(att)):.4f}",
                )
    one = total["one"]
    print(
        f"\nall tables: one draw {one:.1f} CPU-s; fleet {total['fleet']:.1f} CPU-s"
        f" ({total['fleet'] / one:.2f}x)"
        + (
            f"; all draws {total['all']:.1f} CPU-s ({total['all'] / one:.2f}x); largest"
            f" |all draws - fleet| {worst_read:.5f} at loads <= 1 (those the fleet reads: the"
            f" load it reads is served over held capacity), {worst_settled:.5f} at any load"
            if every
            else ""
        )
    )


if __name__ == "__main__":
    main()
