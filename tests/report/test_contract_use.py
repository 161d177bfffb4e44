"""The output contract's rule in the report and the CLI: no column name is built with an
f-string there (only :mod:`sim.contract` builds and parses them)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sim.contract import (
    COMPARED_SERVICE,
    JOB_COLUMNS,
    TRACE,
    TRACE_FAMILIES,
    entity_column,
    parse_entity_column,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "sim" / "report").rglob("*.py"), *(ROOT / "sim" / "cli").rglob("*.py")])
COLUMNS = [
    *TRACE,
    *JOB_COLUMNS,
    *(entity_column(f, "x", q) for f in (*TRACE_FAMILIES, COMPARED_SERVICE) for q in f.quantities),
]


def _patterns(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, regex) of each f-string with some literal word; a placeholder matches anything."""
    specs = {
        id(v.format_spec)
        for v in ast.walk(tree)
        if isinstance(v, ast.FormattedValue) and v.format_spec is not None
    }
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr) or id(node) in specs:
            continue
        parts = [re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values]
        text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
        if re.search("[a-z]", text):  # not f"{a}.{b}" alone: that is no column of the contract
            out.append((node.lineno, "".join(parts)))
    return out


def test_no_column_name_is_built_with_an_f_string() -> None:
    assert SOURCES
    found = []
    for path in SOURCES:
        for line, pattern in _patterns(ast.parse(path.read_text("utf-8"))):
            hits = [c for c in COLUMNS if re.fullmatch(pattern, c)]
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{line} builds {hits[0]!r}")
    assert not found, "\n".join(found)


def test_the_guard_sees_what_it_guards() -> None:
    bad = 'a = f"gpus_{state}"\nb = f"service.{n}.domains"\nc = f"x{y:.{d}g}"\n'
    assert [re.fullmatch(p, "gpus_idle") is not None for _, p in _patterns(ast.parse(bad))] == [
        True,
        False,
        False,
    ]
    assert any(re.fullmatch(p, "service.x.domains") for _, p in _patterns(ast.parse(bad)))


def test_comparison_family_round_trips() -> None:
    col = entity_column(COMPARED_SERVICE, "chat.v2", "cost_per_million_tokens_usd")
    assert col == "service.chat.v2.cost_per_million_tokens_usd"
    assert parse_entity_column(col, (COMPARED_SERVICE,)) == (
        COMPARED_SERVICE,
        "chat.v2",
        "cost_per_million_tokens_usd",
    )
    assert parse_entity_column(col) is None  # not a trace column
