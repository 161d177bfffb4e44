"""The report's and the CLI's number formats: a reader sees units, never raw SI floats."""

from __future__ import annotations

import math

from sim.report.style import latency


def test_latency_in_the_unit_that_fits() -> None:
    assert latency(0.05) == "50 ms"
    assert latency(0.9994) == "999 ms"
    assert latency(1.754) == "1.8 s"
    assert latency(1754.611) == "29 min"  # was "1,754,611 ms"
    assert latency(5 * 3600.0) == "5 h"
    assert latency(None) == latency(math.inf) == "n/a"
