"""The output contract (sim.contract): every column a run writes is in the registry, with the
dtype it declares, and entity columns round-trip through the one builder and parser."""

from __future__ import annotations

import pytest

from sim.contract import (
    HALL,
    JOB_COLUMNS,
    SERVICE,
    TRACE,
    entity_column,
    parse_entity_column,
    slowdown_column,
)
from sim.io import RunTables


def test_every_trace_column_is_registered(smoke_tables: RunTables) -> None:
    cols = list(smoke_tables.traces.columns)
    unknown = [c for c in cols if c not in TRACE and parse_entity_column(c) is None]
    assert unknown == []
    assert set(TRACE) <= set(cols)
    halls = {parse_entity_column(c)[1] for c in cols if c.startswith("site.")}  # type: ignore[index]
    assert halls == {h["name"] for h in smoke_tables.summary["factory"]["halls"]}


def test_jobs_table_has_the_registered_schema(smoke_tables: RunTables) -> None:
    jobs = smoke_tables.jobs
    assert list(jobs.columns) == [
        *[c.name for c in JOB_COLUMNS.values() if c.dtype == "string"],
        *[c.name for c in JOB_COLUMNS.values() if c.dtype == "float64"],
    ]
    for c in JOB_COLUMNS.values():
        assert str(jobs[c.name].dtype) == c.dtype, c.name


@pytest.mark.parametrize("entity", ["chat-70b", "a.b.c", "x"])
def test_entity_columns_round_trip(entity: str) -> None:
    for family in (HALL, SERVICE):
        for q in family.quantities:
            col = entity_column(family, entity, q)
            assert parse_entity_column(col) == (family, entity, q)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError, match="no quantity"):
        entity_column(SERVICE, "chat", "latency")
    with pytest.raises(KeyError, match="unknown rate factor 'thermal'"):
        slowdown_column("thermal")
    assert parse_entity_column("it_power_w") is None
    assert parse_entity_column("service.chat.latency") is None
    assert parse_entity_column("nope.chat.domains") is None
