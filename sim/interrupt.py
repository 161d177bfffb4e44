"""SIGTERM as an exception (shared by the command line's launcher and its commands).

A :class:`Terminated` is raised where the program is when SIGTERM arrives, like
``KeyboardInterrupt`` for Ctrl-C, so the same clean-up runs for both (a run folder being written
is removed with its hidden ``.partial`` folder). This module imports nothing of the simulator, so
the launcher can install the handler before the heavy imports.
"""

from __future__ import annotations

import sys
from types import FrameType

__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "Terminated", "interrupted", "raise_terminated"]

#: 128 + the signal, as shells report them
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Terminated(BaseException):
    """SIGTERM, raised where the program is (a BaseException, like KeyboardInterrupt, so that
    ``except Exception`` never swallows it and ``finally``/clean-up blocks run)."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def interrupted(code: int) -> int:
    """Print the one line and give the exit code."""
    sys.stderr.write("\ninterrupted\n" if sys.stderr.isatty() else "interrupted\n")
    sys.stderr.flush()
    return code
