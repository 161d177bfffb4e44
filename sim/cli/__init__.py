"""The ``aifactory`` command line.

Each sub-command lives in its own module with ``add_parser(subparsers)`` registering it and a
handler returning the process exit code. User errors print one clear message and exit 2; no
traceback reaches the user for bad input.

A mistake on the command line itself (an unknown option or command, a missing argument, a
value of the wrong type) is one line too, never argparse's usage block: the mistake, a guess at
what was meant where one is close (``--sed`` -> ``--seed``, ``rn`` -> ``run``) and where to
read more (``see `aifactory run --help```), exit code 2.

Ctrl-C (SIGINT) and SIGTERM end any command with the one line ``interrupted`` and exit codes
130 and 143 (128 + the signal, as shells report them). SIGTERM is turned into an exception while
a command runs, so the same clean-up as for Ctrl-C runs: a run folder being written is removed
with its hidden ``.partial`` folder. The console script (:mod:`sim.launch`) installs the handler
before this package's imports, so a signal during start-up ends the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from sim.cli import commitment, estimate, hardware, reports, runs, serve, sweep
from sim.interrupt import EXIT_SIGINT, EXIT_SIGTERM, Terminated, interrupted, raise_terminated
from sim.units import cut

EXIT_USER_ERROR = 2


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (see the module docstring). Sub-command
    parsers are of the same class (``add_subparsers`` makes them of its parent's class)."""

    #: the arguments this parser was last given, to find an unknown option among them when
    #: argparse reports something else first (a required option "missing" that was misspelt)
    _given: Sequence[str] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Python 3.14's own guess changes the "invalid choice" message this class rewords
        # when on (a later version may turn it on by default): ours, difflib, is on every version
        self.suggest_on_error = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        unknown = _unknown_options(self, self._given)
        text = _explain(self, message)
        if (
            unknown
            and not message.startswith("unrecognized arguments")
            and not text.startswith("unknown command")  # its options belong to the command
        ):
            # `--modle x` is the cause of "required: --model": say the cause first
            text = f"{unknown}; {text}"
        text = " ".join(text.split())
        sys.stderr.write(f"error: {text}; see `{self.prog} --help`\n")
        self.exit(EXIT_USER_ERROR)


def _guess(word: str, known: Sequence[str], quote: bool = False) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


_NUMBER = re.compile(r"-\d+$|-\d*\.\d+(e[-+]?\d+)?$", re.IGNORECASE)


def _unknown_options(parser: argparse.ArgumentParser, tokens: Sequence[str]) -> str:
    """``unknown option --sed (did you mean --seed?)`` for each of ``tokens`` (up to three)
    that looks like an option ``parser`` does not know (nor any option of its that it
    abbreviates); empty if none. What follows an unknown option is most likely its value: not
    worth a word. Below a sub-command, its own parser looks."""
    known = [o for o in parser._option_string_actions if o not in ("-h", "--help")]
    sub = _subcommands(parser)
    out: list[str] = []
    for token in tokens:
        if token == "--" or (sub is not None and token in (sub.choices or {})):
            break
        name = token.split("=", 1)[0]
        if not name.startswith("-") or len(name) < 2 or _NUMBER.match(name):
            continue
        if name in ("-h", "--help") or any(o.startswith(name) for o in known):
            continue
        out.append(f"unknown option {cut(name)}{_guess(name, known)}")
    return ", ".join(out[:3])


def _explain(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's ``message`` as a user reads it best, with a guess at a misspelt name."""
    sub = _subcommands(parser)
    if sub is not None and message.startswith("the following arguments are required"):
        return f"give a command: {', '.join(sub.choices or {})}"
    if message.startswith("unrecognized arguments: "):
        extras = message.removeprefix("unrecognized arguments: ")
        return _unknown_options(parser, extras.split()) or f"unexpected argument {cut(extras)!r}"
    m = re.fullmatch(r"argument (\S+): invalid choice: (.*) \(choose from (.*)\)", message)
    if m:
        given = m[2].strip("'")
        choices = [c.strip().strip("'") for c in m[3].split(",")]
        tail = f"{_guess(given, choices, quote=True)}; choose from {', '.join(choices)}"
        if sub is not None and m[1] == sub.metavar:
            return f"unknown command {cut(given)!r}{tail}"
        return f"{m[1]}: invalid choice {cut(given)!r}{tail}"
    return message


def _leaf(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub-)command parser that read the last part of the command line."""
    sub = _subcommands(parser)
    while sub is not None:
        name = getattr(args, sub.dest, None)
        if name is None or name not in (sub.choices or {}):
            break
        parser = sub.choices[name]
        sub = _subcommands(parser)
    return parser


def _refuse_extras(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]
) -> NoReturn:
    """One line for arguments no parser took, blamed on the sub-command that was given them
    (argparse blames the top level: ``aifactory: error: unrecognized arguments``)."""
    _leaf(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aifactory",
        description="Discrete-event simulator of a gigawatt AI factory.",
    )
    sub: Any = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs.add_parsers(sub)
    reports.add_parsers(sub)
    sweep.add_parser(sub)
    hardware.add_parser(sub)
    estimate.add_parser(sub)
    serve.add_parser(sub)
    commitment.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _refuse_extras(parser, args, extras)
    try:
        with _sigterm_as_exception():
            code: int = args.handler(args)
    except KeyboardInterrupt:
        return interrupted(EXIT_SIGINT)
    except Terminated:
        return interrupted(EXIT_SIGTERM)
    return code
