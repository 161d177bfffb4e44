"""The ``aifactory`` command line.

Each sub-command lives in its own module with ``add_parser(subparsers)`` registering it and a
handler returning the process exit code. User errors print one clear message and exit 2; no
traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sim.cli import estimate, hardware, reports, runs

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aifactory",
        description="Discrete-event simulator of a gigawatt AI factory.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs.add_parsers(sub)
    reports.add_parsers(sub)
    hardware.add_parser(sub)
    estimate.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
