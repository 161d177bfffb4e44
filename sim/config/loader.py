"""Read a scenario file: safe YAML with line numbers, ``--set`` overrides, schema validation.

Every user error becomes a :class:`ScenarioError` whose message names the file, the key path, the
line where it can be found and what is expected, e.g.::

    scenarios/x.yaml:14: facility.halls[0].hardware: unknown hardware 'gb201_nvl72'
        (did you mean 'gb200_nvl72'?)

YAML is read with the safe loader only (a scenario can never run code); duplicate keys are an
error rather than a silent overwrite. Sizes are bounded before any work: the file
(:data:`MAX_SCENARIO_BYTES`, read no further than that, so ``/dev/zero`` or a huge file costs
nothing), and the number of values once aliases (``*name``) are expanded
(:data:`MAX_YAML_VALUES`, so an alias bomb is refused before it is built or echoed). Values
set with ``--set`` are blamed on the override, never on a line of the file. An override can
carry its own label (:class:`Override`): a sweep's grid values are blamed on ``--grid KEY=VALUE``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from sim.config.schema import Scenario
from sim.units import cut, short

__all__ = [
    "DEFAULT_SCENARIO",
    "LoadedScenario",
    "Override",
    "ScenarioError",
    "clean_message",
    "format_path",
    "load_scenario",
    "override_path",
    "read_yaml",
    "resolved_dict",
]

DEFAULT_SCENARIO = "default_gigawatt_gb200.yaml"

#: Largest scenario file read: the largest real one is ~10 kB; a megabyte is 100 times that.
MAX_SCENARIO_BYTES = 1_000_000
#: Most values (mappings, lists, scalars) in a scenario with its aliases expanded; the default
#: scenario has ~300.
MAX_YAML_VALUES = 100_000
#: Longest message row echoed back (user input inside is cut shorter still).
_MAX_ROW = 2_000

Loc = tuple[str | int, ...]
#: where each key path stands: a line of the file, or the label of the override that set it
Lines = dict[Loc, int | str]


@dataclass(frozen=True)
class Override:
    """A ``key.path=value`` override with the label its errors are blamed on (``--set`` for a
    plain string; ``--grid facility.grid_power=3 MW`` for a value of a sweep's grid)."""

    item: str
    label: str = "--set"


def format_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{cut(part, 60)}" if out else cut(str(part), 60)
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str


class ScenarioError(Exception):
    """Bad user input. ``str()`` is the complete message for the user."""

    def __init__(self, source: str, problems: Sequence[Problem], lines: Lines):
        self.source = source
        self.problems = list(problems)
        self.lines = lines
        super().__init__(self._render())

    def _line(self, loc: Loc) -> int | str | None:
        line: int | str | None = None
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                line = self.lines[loc[:n]]
                break
        if loc and not isinstance(line, str):
            # a problem with a key that a --set override changed under (network.failures after
            # --set network.failures.enabled=false): the override is the likelier cause
            n = len(loc)
            for k, v in self.lines.items():
                if isinstance(v, str) and k[:n] == loc:
                    return v
        return line

    def _render(self) -> str:
        rows = []
        for p in self.problems[:8]:
            line = self._line(p.loc)
            if isinstance(line, str):
                where = line  # the value came from a --set override
            else:
                where = f"{self.source}:{line}" if line else self.source
            msg = clean_message(p.message)
            row = f"{where}: {format_path(p.loc) + ': ' if p.loc else ''}{msg}"
            rows.append(row if len(row) <= _MAX_ROW else row[:_MAX_ROW] + "...")
        if len(self.problems) > 8:
            rows.append(f"... and {len(self.problems) - 8} more problems")
        return "\n".join(rows)


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from, for error messages at later stages."""

    scenario: Scenario
    source: str
    lines: Lines = field(default_factory=dict)
    #: folder of the scenario file, against which its relative paths (a weather CSV) are read;
    #: None for a scenario given as text (they are read against the working folder)
    base_dir: Path | None = None

    def error(self, loc: Loc, message: str) -> ScenarioError:
        return ScenarioError(self.source, [Problem(loc, message)], self.lines)


# --------------------------------------------------------------------------- YAML with lines


_TOO_DEEP = "the YAML nests too deeply or an alias (*name) refers to itself"
_TOO_BIG = (
    f"the YAML expands to more than {MAX_YAML_VALUES:,} values once its aliases (*name) are"
    " expanded; a scenario needs a few hundred"
)


def _expanded_size(root: yaml.Node) -> None:
    """Raise :class:`RecursionError` or :class:`OverflowError` if ``root`` refers to itself or
    expands (aliases repeated) to more than :data:`MAX_YAML_VALUES` values. Counting is memoised
    per node, so a bomb of nested aliases is measured in time linear in the file."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            if sizes[id(n)] < 0:
                raise RecursionError  # the node contains itself
            return sizes[id(n)]
        sizes[id(n)] = -1
        total = 1
        if isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total += sum(size(v) for v in n.value)
        if total > MAX_YAML_VALUES:
            raise OverflowError
        sizes[id(n)] = total
        return total

    size(root)


class _Loader(yaml.SafeLoader):
    """YAML's safe loader without YAML 1.1's base-60 numbers: ``1:7`` (an oversubscription
    as users write it) would otherwise load as 67 and ``1:30`` as 90. Such values stay text,
    for the schema to read or refuse."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if not (tag.endswith((":int", ":float")) and ":[0-5]?[0-9]" in rx.pattern)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _rx, _first in (
    (
        "tag:yaml.org,2002:int",
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$",
        "-+0123456789",
    ),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_rx, re.X), list(_first))


def _compose(text: str, source: str) -> tuple[Any, Lines]:
    try:
        return _compose_checked(text, source)
    except RecursionError:
        raise ScenarioError(source, [Problem((), _TOO_DEEP)], {}) from None


def _compose_checked(text: str, source: str) -> tuple[Any, Lines]:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or "invalid YAML"
        where = f"{source}:{line}" if line else source
        raise ScenarioError(where, [Problem((), f"YAML syntax error: {what}")], {}) from None
    except yaml.YAMLError as exc:  # pragma: no cover - other parser failures
        raise ScenarioError(source, [Problem((), f"YAML error: {exc}")], {}) from None
    if node is not None:
        try:
            _expanded_size(node)
        except OverflowError:
            raise ScenarioError(source, [Problem((), _TOO_BIG)], {}) from None
    lines: Lines = {}
    problems: list[Problem] = []
    visited: set[int] = set()

    def walk(n: yaml.Node, loc: Loc) -> None:
        lines[loc] = n.start_mark.line + 1
        if id(n) in visited:
            # an alias: the node was walked where its anchor stands; walking it again would
            # loop on a self-reference and multiply the work of nested aliases
            return
        visited.add(id(n))
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in n.value:
                key = str(k.value)
                if key in seen:
                    problems.append(
                        Problem((*loc, cut(key)), "key appears twice in the same mapping")
                    )
                    lines[(*loc, key)] = k.start_mark.line + 1
                seen.add(key)
                walk(v, (*loc, key))
                lines[(*loc, key)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*loc, i))

    if node is not None:
        walk(node, ())
    if problems:
        raise ScenarioError(source, problems, lines)
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader: no tags, no objects
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        raise ScenarioError(source, [Problem((), f"YAML error: {exc}")], lines) from None
    return data, lines


# --------------------------------------------------------------------------- overrides


def _parse_override(item: str, flag: str = "--set") -> tuple[Loc, Any]:
    if "=" not in item:
        raise ValueError(f"{flag} expects key.path=value, got {item!r}")
    key, _, raw = item.partition("=")
    parts: list[str | int] = []
    for piece in key.strip().split("."):
        if not piece:
            raise ValueError(f"{flag} key {key!r} has an empty part")
        # hall[0] or halls.0 both index a list
        while "[" in piece and piece.endswith("]"):
            head, _, idx = piece.partition("[")
            if head:
                parts.append(head)
            piece = "[" + idx
            inner, _, rest = piece[1:].partition("]")
            if not inner.isdigit():
                raise ValueError(f"{flag} key {key!r}: index {inner!r} is not a number")
            parts.append(int(inner))
            piece = rest
            if not piece:
                break
        else:
            parts.append(int(piece) if piece.isdigit() else piece)
            continue
    try:
        # the loader's bounds apply to a value given on the command line too (aliases, depth)
        value = _compose(raw, flag)[0] if raw.strip() else ""
    except ScenarioError as exc:
        if "YAML syntax error" not in str(exc):
            raise ValueError(f"{cut(key, 60)}: {exc.problems[0].message}") from None
        value = raw
    return tuple(parts), value


def override_path(key: str, flag: str = "--set") -> Loc:
    """The key path that ``flag key=...`` sets (``halls.0`` and ``halls[0]`` alike); a
    :class:`ValueError` says what is wrong with the key."""
    return _parse_override(f"{key}=", flag)[0]


def _apply_override(
    data: dict[str, Any], loc: Loc, value: Any, item: str, flag: str = "--set"
) -> None:
    node: Any = data
    for i, part in enumerate(loc[:-1]):
        nxt = loc[i + 1]
        if isinstance(node, dict) and isinstance(part, str):
            if part not in node or node[part] is None:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            if part >= len(node):
                n = len(node)
                raise ValueError(
                    f"{flag} {item}: there is no {format_path(loc[: i + 1])}:"
                    f" {format_path(loc[:i])} has"
                    + (f" only {n} {'entry' if n == 1 else 'entries'}" if n else " no entries")
                )
            node = node[part]
        else:
            raise ValueError(f"{flag} {item}: {format_path(loc[: i + 1])} is not a section")
    last = loc[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
    else:
        raise ValueError(f"{flag} {item}: cannot set {format_path(loc)}")


# --------------------------------------------------------------------------- validation errors


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that the data at ``loc`` is validated against, if any."""
    model: Any = Scenario
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        if isinstance(part, int):
            continue  # an entry of a list: _unwrap made ``model`` the entries' model
        target = None
        for name, f in model.model_fields.items():
            if part in (name, f.alias):
                target = f.annotation
                break
        if target is None:
            return None
        model = _unwrap(target)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, UnionType):
        models = [_unwrap(a) for a in get_args(tp) if a is not type(None)]
        models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
        return models[0] if len(models) == 1 else None
    if origin in (tuple, list):
        return _unwrap(get_args(tp)[0])
    if hasattr(tp, "__metadata__"):
        return _unwrap(get_args(tp)[0])
    return tp


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _data_loc(raw: Any, loc: Loc, missing: bool = False) -> tuple[Loc, Loc, int | None]:
    """Follow pydantic's ``loc`` through the user's data, dropping union tags and type names.

    Returns the key path in the data, the parts dropped (tags such as ``lognormal`` or
    ``function-after[...]`` that the user never wrote) and the length of the data path where the
    first was dropped (None if none was): there the value met a union of choices. A part that is
    not in the data is kept only when it is the last one of a ``missing`` error (a missing key).
    """
    out: list[str | int] = []
    tags: list[str | int] = []
    at: int | None = None
    node: Any = raw
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif (
            missing
            and isinstance(node, dict)
            and i == len(loc) - 1
            and isinstance(part, str)
            and part != node.get("distribution")  # a union tag, not a key the user wrote
        ):
            out.append(part)
        else:
            if at is None:
                at = len(out)
            tags.append(part)
    return tuple(out), tuple(tags), at


#: pydantic's words for a value of the wrong type, in the user's terms (by error ``type``)
_EXPECTED = {
    "model_type": "a section of keys",
    "model_attributes_type": "a section of keys",
    "dict_type": "a section of keys",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "none_required": "nothing (null)",
}
#: what pydantic's bounds say, by error ``type``: the ``ctx`` key holding the bound and the words
_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}
#: pydantic's length bounds, by error ``type``: the ``ctx`` key, the words, what is counted
_LENGTHS = {
    "too_short": ("min_length", "needs at least", "entry", "entries"),
    "too_long": ("max_length", "takes at most", "entry", "entries"),
    "string_too_short": ("min_length", "needs at least", "character", "characters"),
    "string_too_long": ("max_length", "takes at most", "character", "characters"),
}
#: pydantic's own words and references that must never reach a user (``str()`` of its errors)
_INTERNALS = re.compile(
    r"\s*\[type=[^\]]*\]|\s*For further information visit \S+|\s*input_(value|type)=\S+"
    r"|\s*(a valid dictionary or )?instance of \w+"
)


#: pydantic's stock phrases in the user's words
_PHRASES = (
    ("Value error, ", ""),
    ("Assertion failed, ", ""),
    ("Input should be", "expected"),
    ("Field required", "required key is missing"),
    ("Extra inputs are not permitted", "unknown key"),
)


def clean_message(text: str) -> str:
    """``text`` without pydantic's internals (error types, input echoes, links, class names)
    and with its stock phrases in the user's words: a last guard for messages that carry a
    pydantic error's text from elsewhere (an inline model shape's check)."""
    for phrase, words in _PHRASES:
        text = text.replace(phrase, words)
    return _INTERNALS.sub("", text)


def _quoted(text: str) -> list[str]:
    """``"'a', 'b' or 'c'"`` (pydantic's list of expected values) -> ``['a', 'b', 'c']``."""
    return re.findall(r"'([^']*)'", text) or [t.strip() for t in re.split(r",| or ", text)]


def _one_of(choices: list[str]) -> str:
    quoted = [f"'{c}'" for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _guess(given: Any, choices: list[str]) -> str:
    if not isinstance(given, str):
        return ""
    close = difflib.get_close_matches(given, choices, n=1)
    if not close and given:  # a shortened name: 'fastest' for 'fastest_completion'
        close = [c for c in choices if c.startswith(given.lower())][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(err: dict[str, Any], loc: Loc) -> str:
    """One clean sentence for a pydantic error: the user's words (a section, a whole number),
    the value given, a guess at a misspelt name; never pydantic's class names, error types or
    links (:data:`_INTERNALS` is a last guard for a kind of error not translated here)."""
    kind = err["type"]
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = _keys_of(parent) if parent else []
        msg = f"unknown key '{cut(str(loc[-1]))}'"
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if close:
            msg += f" (did you mean '{close[0]}'?)"
        if known:
            msg += f"; expected one of: {', '.join(known)}"
        return msg
    if kind == "missing":
        return "required key is missing"
    if kind in _EXPECTED:
        text = f"expected {_EXPECTED[kind]}, got {short(given)}"
        model = _model_at(loc) if _EXPECTED[kind] == "a section of keys" else None
        if model is not None:
            text += f"; its keys: {', '.join(_keys_of(model))}"
        return text
    if kind in ("literal_error", "enum"):
        choices = _quoted(str(ctx.get("expected", "")))
        return f"expected {_one_of(choices)}, got {short(given)}{_guess(given, choices)}"
    if kind == "union_tag_invalid":
        choices = _quoted(str(ctx.get("expected_tags", "")))
        key = str(ctx.get("discriminator", "kind")).strip("'")
        return (
            f"{key}: expected {_one_of(choices)}, got {short(ctx.get('tag'))}"
            f"{_guess(ctx.get('tag'), choices)}"
        )
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "kind")).strip("'")
        return f"the key '{key}' is missing: it says which kind of value this is"
    if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        key, words = _BOUNDS[kind]
        return f"{words} {ctx[key]}, got {short(given)}"
    if kind in _LENGTHS and _LENGTHS[kind][0] in ctx:
        key, words, one, many = _LENGTHS[kind]
        n = ctx[key]
        return (
            "must not be empty"
            if n == 1 and "least" in words
            else f"{words} {n} {one if n == 1 else many}"
        )
    text = clean_message(str(err.get("msg", "invalid value")))
    if kind not in ("value_error", "assertion_error"):
        text += f" (got {short(given)})"
    return text


#: errors that say a value is not of a choice's kind (wrong type, another tag, other keys),
#: as against what is wrong with a value of the right kind (out of range, unreadable)
_MISMATCH = {
    *_EXPECTED,
    "literal_error",
    "enum",
    "missing",
    "extra_forbidden",
    "union_tag_invalid",
    "union_tag_not_found",
}


@dataclass
class _Union:
    """The errors of one value that fits none of a union's choices, by choice (its tags)."""

    loc: Loc
    given: Any
    by_choice: dict[Loc, list[tuple[Loc, dict[str, Any]]]] = field(default_factory=dict)


def _union_problems(u: _Union) -> list[Problem]:
    """A union fails once per choice (checkpoint_restore: 'auto' or a duration; hot_spares: a
    number or {hall: number}): say what is wrong with the value under the choice it was meant
    for, not why it is none of the others.

    A choice with an error other than a mismatch (a number out of range) was meant: its
    errors are said, with a keyword choice as the alternative (``; or 'auto'``). When every
    choice is a mismatch of type: ``expected a number or a section of keys, got 'x'``. Else
    the errors of the choice with the fewest.
    """
    errs = [(d, e) for choice in u.by_choice.values() for d, e in choice]
    # keywords the value could have been instead ('auto'): literal choices of the value itself
    keywords = [
        c
        for d, e in errs
        if e["type"] == "literal_error" and d == u.loc and len(e["loc"]) == len(u.loc) + 1
        for c in _quoted(str((e.get("ctx") or {}).get("expected", "")))
    ]
    meant = [(d, e) for d, e in errs if e["type"] not in _MISMATCH]
    if meant:
        out: list[Problem] = []
        for d, e in meant:
            msg = _describe(e, d)
            if keywords and d == u.loc:
                msg += f"; or {_one_of(keywords)}{_guess(u.given, keywords)}"
            if Problem(d, msg) not in out:
                out.append(Problem(d, msg))
        return out
    if all(
        d == u.loc and (e["type"] in _EXPECTED or e["type"] == "literal_error") for d, e in errs
    ):
        kinds = list(dict.fromkeys(_EXPECTED[e["type"]] for _, e in errs if e["type"] in _EXPECTED))
        if keywords:
            kinds.append(_one_of(keywords))
        return [Problem(u.loc, f"expected {' or '.join(kinds)}, got {short(u.given)}")]
    fewest = min(u.by_choice.values(), key=len)
    out = []
    for d, e in fewest:
        p = Problem(d, _describe(e, d))
        if p not in out:
            out.append(p)
    return out


def _problems_from(exc: ValidationError, raw: Any) -> list[Problem]:
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    inner = [tuple(e["loc"]) for e in errors]
    out: list[Problem | _Union] = []
    unions: dict[Loc, _Union] = {}
    for err in errors:
        loc_raw = tuple(err["loc"])
        # a list whose item failed is also reported as too short: say only what is wrong
        if err["type"] == "too_short" and any(
            len(o) > len(loc_raw) and o[: len(loc_raw)] == loc_raw for o in inner
        ):
            continue
        loc, tags, at = _data_loc(raw, loc_raw, missing=err["type"] == "missing")
        if at is None:
            p = Problem(loc, _describe(err, loc))
            if p not in out:
                out.append(p)
            continue
        where = loc[:at]
        if where not in unions:
            given: Any = raw
            for part in where:
                given = given[part]
            unions[where] = _Union(where, given)
            out.append(unions[where])
        unions[where].by_choice.setdefault(tags, []).append((loc, err))
    problems: list[Problem] = []
    for item in out:
        for q in _union_problems(item) if isinstance(item, _Union) else [item]:
            if q not in problems:
                problems.append(q)
    return problems


# --------------------------------------------------------------------------- entry points


def _read(path: str | Path | None) -> tuple[str, str]:
    if path is None:
        text = resources.files("sim.scenarios").joinpath(DEFAULT_SCENARIO).read_text("utf-8")
        return text, f"<built-in {DEFAULT_SCENARIO}>"
    p = Path(path)
    src = short(str(p), 200).strip("'") if len(str(p)) > 200 else str(p)

    def fail(message: str) -> ScenarioError:
        return ScenarioError(src, [Problem((), message)], {})

    try:
        if not p.exists():
            raise fail("file not found")
        if p.is_dir():
            raise fail("is a folder, expected a scenario YAML file")
        if not p.is_file():  # a device (/dev/zero), a pipe or a socket: could be endless
            raise fail("is not a regular file, expected a scenario YAML file")
        with p.open("rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise fail(f"the file is larger than {MAX_SCENARIO_BYTES:,} bytes; a scenario is a few kB")
    try:
        return data.decode("utf-8"), src
    except UnicodeDecodeError as exc:
        raise fail(f"cannot read file: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_scenario(
    path: str | Path | None = None,
    overrides: Sequence[str | Override] = (),
    *,
    text: str | None = None,
    source: str | None = None,
) -> LoadedScenario:
    """Load and validate a scenario from ``path`` (None: the built-in default) or ``text``."""
    base = Path(path).parent if text is None and path is not None else None
    if text is None:
        text, src = _read(path)
    else:
        src = source or "<text>"
        if len(text) > MAX_SCENARIO_BYTES:
            raise ScenarioError(
                src, [Problem((), f"the text is longer than {MAX_SCENARIO_BYTES:,} characters")], {}
            )
    data, lines = _compose(text, src)
    if data is None:
        raise ScenarioError(src, [Problem((), "the file is empty")], lines)
    if not isinstance(data, dict):
        raise ScenarioError(
            src,
            [Problem((), "a scenario must be a mapping of sections (run, facility, ...)")],
            lines,
        )
    for given in overrides:
        o = given if isinstance(given, Override) else Override(given)
        flag = o.label.split(" ", 1)[0]
        try:
            loc, value = _parse_override(o.item, flag)
            _apply_override(data, loc, value, o.item, flag)
        except ValueError as exc:
            # the label already names the flag (and a sweep's label the item): say it once
            said = f"{flag} {o.item}: " if o.label != flag else f"{flag} "
            msg = str(exc).removeprefix(said)
            raise ScenarioError(o.label, [Problem((), msg)], {}) from None
        # whatever is at or under this key now comes from the override, not from the file
        for known in [k for k in lines if k[: len(loc)] == loc]:
            del lines[known]
        lines[loc] = o.label
    if "name" not in data and path is not None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).lstrip("._-")[:100]
        data["name"] = stem or "scenario"
    try:
        # file references (weather and grid CSVs) are made absolute against the scenario's
        # folder, so that the resolved scenario.yaml of a run folder still finds them
        scenario = Scenario.model_validate(data, context={"base_dir": base or Path.cwd()})
    except ValidationError as exc:
        raise ScenarioError(src, _problems_from(exc, data), lines) from None
    except RecursionError:
        raise ScenarioError(src, [Problem((), _TOO_DEEP)], lines) from None
    return LoadedScenario(scenario=scenario, source=src, lines=lines, base_dir=base)


def read_yaml(text: str, source: str) -> Any:
    """Parse YAML text with the scenario loader's bounds (safe loader, no duplicate keys, alias
    expansion and depth bounded); raises :class:`ScenarioError` naming ``source``."""
    return _compose(text, source)[0]


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, as plain data with the YAML key names (SI)."""
    return scenario.model_dump(mode="json", by_alias=True)
