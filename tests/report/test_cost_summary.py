"""The summary's cost section on hand-made tables: throttled capacity shown apart."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sim.io import RunTables


def test_throttled_capacity_is_carved_out_of_its_class(
    small_tables: Callable[..., RunTables],
) -> None:
    t = small_tables()
    c = t.summary["cost"]
    # pre-a: 720 s of throttle on 72 GPUs of the 216 GPU-hours it held; each rl job 360 s of 72
    pre = t.traces["cost_pretraining_usd"].sum()
    post = t.traces["cost_posttraining_usd"].sum()
    expected = pre * (720 / 3600 * 72 / 216) + post * (360 / 3600 * 72 / 72)
    assert c["by_use_usd"]["throttled"] == pytest.approx(expected)
    assert c["by_use_usd"]["pretraining"] == pytest.approx(pre * (1 - 720 / 3600 * 72 / 216))
    assert sum(c["by_use_usd"].values()) == pytest.approx(c["total_usd"])
