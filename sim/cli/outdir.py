"""Checks of ``--out`` before any work: a command that cannot write where it was told says so
at once, in one line, instead of after its run (or with an operating-system error text)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def out_problem(out: str | None, *, resumable: bool = False) -> str | None:
    """Why ``out`` cannot become the command's output folder, or None if it can.

    A file where the folder or one of its parents should be is refused; so is a folder that
    exists and holds anything, unless the command ``resumable`` adds to its own folder (a
    sweep finishes the runs a folder is missing).
    """
    if out is None:
        return None
    if not out.strip():
        return "--out is empty: give a folder name"
    path = Path(out)
    try:
        if path.exists():
            if not path.is_dir():
                return (
                    f"--out {out}: a file already exists there, not a folder; choose another --out"
                )
            if not resumable and any(path.iterdir()):
                return f"{out} already exists and is not empty; choose another --out"
            return None
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    return f"--out {out}: {parent} is a file, not a folder; choose another --out"
                try:  # a permission, a read-only or a virtual file system: try it at once
                    os.rmdir(tempfile.mkdtemp(prefix=".aifactory-probe-", dir=parent))
                except OSError as exc:
                    return (
                        f"--out {out}: cannot create a folder in {parent}"
                        f" ({exc.strerror or exc}); choose another --out"
                    )
                break
    except OSError as exc:  # a folder that cannot be listed, a path too long
        return f"--out {out}: cannot use it ({exc.strerror or exc}); choose another --out"
    return None
