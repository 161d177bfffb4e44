"""The bad-input contract, checked around one in-process command (issue 8).

:func:`run_cli` runs ``aifactory ARGS`` in this process with a wall-clock limit (SIGALRM) and an
address-space limit (RLIMIT_AS, a margin above what the process already maps), captures stdout and
stderr, and returns the exit code. :func:`check_outcome` asserts the contract: exit 0, or exit 2
with an ``error:`` (or argparse ``usage:``) message and no traceback; and nothing left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sim.cli import main
from sim.io import RUN_FILES

#: Wall time one command may take (the slowest legitimate fuzzed run is a few seconds).
TIME_LIMIT_S = float(os.environ.get("AIFACTORY_FUZZ_TIME_LIMIT_S", "30"))
#: Address space one command may add to the process.
MEMORY_MARGIN_BYTES = int(float(os.environ.get("AIFACTORY_FUZZ_MEMORY_MARGIN", "3e9")))


class Hang(BaseException):
    """A command ran past :data:`TIME_LIMIT_S`."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"the command ran longer than {TIME_LIMIT_S:g} s")


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _mapped_bytes() + MEMORY_MARGIN_BYTES
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def run_cli(args: Sequence[str]) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), bounded():
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: usage errors exit 2
            code = exc.code if isinstance(exc.code, int) else 2
    return Outcome(code, out.getvalue(), err.getvalue())


def check_outcome(o: Outcome, workdir: Path, run_dir: Path | None, keep: set[str]) -> None:
    """Exit 0 with a complete run folder (if one was asked for), or exit 2 with one message;
    never a traceback; nothing in ``workdir`` but ``keep`` and the finished run folder."""
    assert "Traceback" not in o.err + o.out, o.err
    assert o.code in (0, 2), (o.code, o.err)
    if o.code == 2:
        assert o.err.startswith(("error: ", "usage: ")), o.err
        assert run_dir is None or not run_dir.exists(), "a failed run left its folder"
    elif run_dir is not None:
        files = {p.name for p in run_dir.iterdir()}
        assert {*RUN_FILES, "report.html"} <= files, files
    left = {p.name for p in workdir.iterdir()} - keep
    if o.code == 0 and run_dir is not None:
        left.discard(run_dir.name)
    assert not left, f"left behind: {sorted(left)}"
