"""Command-line options shared by several commands."""

from __future__ import annotations

import argparse

__all__ = ["add_set_option"]


def add_set_option(
    p: argparse.ArgumentParser,
    what: str = "a scenario value",
    example: str = "run.duration=90d",
) -> None:
    """``--set KEY.PATH=VALUE`` (repeatable), collected in ``args.overrides``."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help=f"override {what}, e.g. {example} (repeatable)",
    )
