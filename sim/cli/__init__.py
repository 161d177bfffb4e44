"""The ``aifactory`` command line.

Each sub-command lives in its own module with ``add_parser(subparsers)`` registering it and a
handler returning the process exit code. User errors print one clear message and exit 2; no
traceback reaches the user for bad input.

Ctrl-C (SIGINT) and SIGTERM end any command with the one line ``interrupted`` and exit codes
130 and 143 (128 + the signal, as shells report them). SIGTERM is turned into an exception while
a command runs, so the same clean-up as for Ctrl-C runs: a run folder being written is removed
with its hidden ``.partial`` folder. The console script (:mod:`sim.launch`) installs the handler
before this package's imports, so a signal during start-up ends the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator, Sequence

from sim.cli import commitment, estimate, hardware, reports, runs, serve, sweep
from sim.interrupt import EXIT_SIGINT, EXIT_SIGTERM, Terminated, interrupted, raise_terminated

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aifactory",
        description="Discrete-event simulator of a gigawatt AI factory.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_exception():
            code: int = args.handler(args)
    except KeyboardInterrupt:
        return interrupted(EXIT_SIGINT)
    except Terminated:
        return interrupted(EXIT_SIGTERM)
    return code
