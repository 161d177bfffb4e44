"""Every notebook in ``notebooks/`` runs top to bottom on a real Jupyter kernel, on small inputs.

Each notebook has one code cell tagged ``parameters`` (DAYS, scenario paths, sweep points). The
test inserts a cell right after it that sets small values (papermill's convention), so a user
keeps the full-size defaults while the test runs in seconds.

Isolation, so that a fresh clone with only ``.venv`` passes and nothing lands in the repository:

* the kernel is this interpreter (``sys.executable``), through a kernelspec the test writes into
  a temporary ``JUPYTER_PATH``; no kernelspec installed by hand is used;
* IPython's profile, Jupyter's runtime files and the notebooks' working directory are temporary;
  the working directory is a copy of ``notebooks/`` next to a link to ``scenarios/``, so the
  notebooks' relative paths (``../scenarios/smoke.yaml``) resolve as they do for a user;
* after the run, the working copy must hold exactly the notebooks: a notebook that writes files
  (a run folder, an export) fails the test.

Why a kernel "stalled" (notebook 02 once took 608 s in the full suite, 11.8 s alone), and the fix.
nbclient waits for a cell's ``execute_reply`` with one long ``poll`` on the shell socket
(``zmq.asyncio``), as long as the cell timeout. Under CPU load, while the kernel floods IOPub
(``rich.progress.track`` refreshes an ipywidgets ``Output`` from a background thread ten times a
second), the poll's wake-up for the reply is sometimes lost. pyzmq then notices the reply only when
the poll's timeout fires and it polls once more: the cell "finishes" exactly at the timeout and the
test passes. Reproduced on the 2 cores (two notebook-02 loops at once plus a busy loop): once in
~50 runs, cell 12 (the ``track`` loop, otherwise 4-12 s) took 60.01 s against a 60 s timeout and
passed. With a 600 s timeout a lost wake-up cost 600 s and hid as a slow pass. With both changes
below, 20 runs under the same load: no stall, slowest cell 12.3 s (five polls got their message
exactly at a slice's end: lost wake-ups, recovered within a second). Now:

* every wait on the kernel polls in short slices (:data:`POLL_SLICE_S`), so a lost wake-up costs
  one slice; the notebooks' ``track`` calls use ``auto_refresh=False`` (no refresh thread);
* each cell has a budget sized to the notebook (:data:`CELL_TIMEOUT_S`, seconds, a few times the
  slowest cell on a loaded machine), the kernel must start within :data:`STARTUP_TIMEOUT_S`, and
  IOPub output that never arrives is an error, not a warning;
* a stall fails with the notebook, the cell index, its first source line and the budget.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "aifactory-notebook-test"

#: Source of the cell inserted after each notebook's ``parameters`` cell.
SMALL_PARAMETERS: dict[str, str] = {
    "01_quickstart.ipynb": "DAYS = 2",
    "02_hardware_generations.ipynb": "DAYS = 1",
    "03_what_if.ipynb": "\n".join(
        [
            "DAYS = 2",
            "GROWTH_DAYS = 3",
            "FAILURE_RATES = [0.0, 16.0]",
            "GRID_POWERS_MW = [3.0, 4.0]",
            "GROWTH_PER_YEAR = [0.0, 10.0]",
        ]
    ),
    "04_sizing.ipynb": "GPU_COUNTS = [1152, 4608]",
}


#: Budget per cell, seconds, with the small parameters above: a few times the slowest cell on two
#: busy cores (02: the five runs, 4-11 s; 03: a sweep, ~10 s), so only a stall reaches it.
CELL_TIMEOUT_S: dict[str, int] = {
    "01_quickstart.ipynb": 60,
    "02_hardware_generations.ipynb": 60,
    "03_what_if.ipynb": 90,
    "04_sizing.ipynb": 60,
}
STARTUP_TIMEOUT_S = 30  # kernel start to kernel_info reply; ~2 s when idle
IOPUB_TIMEOUT_S = 10  # a cell's last output after its reply; a lost output is an error
POLL_SLICE_S = 1.0  # longest single wait on a kernel socket (see the module docstring)


def test_every_notebook_has_small_parameters() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert sorted(SMALL_PARAMETERS) == [p.name for p in NOTEBOOKS]
    assert sorted(CELL_TIMEOUT_S) == [p.name for p in NOTEBOOKS]


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernelspec for this interpreter in a temporary JUPYTER_PATH; yields its name."""
    home = tmp_path_factory.mktemp("jupyter")
    spec_dir = home / "data" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "aifactory (test)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(home / "data"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
        mp.setenv("IPYTHONDIR", str(home / "ipython"))
        mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugger warning on start
        yield KERNEL_NAME


def _with_small_parameters(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, cell)
    return nb


class _SlicedPollClient(NotebookClient):
    """A NotebookClient whose waits on the kernel's sockets last at most :data:`POLL_SLICE_S`.

    nbclient's own waits are single polls as long as the cell timeout (or unbounded, on IOPub);
    a lost zmq wake-up then stalls them to the end. Slicing the same deadline makes the final
    re-poll, which finds the message, happen within a slice. It also remembers the cell being run
    for the failure message.
    """

    current_cell: tuple[int, str] | None = None

    async def async_execute_cell(
        self, cell: Any, cell_index: int, *args: Any, **kwargs: Any
    ) -> Any:
        first_line = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
        self.current_cell = (cell_index, first_line)
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = _sliced(channel.get_msg)
        return kc


def _sliced(get_msg: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Any]:
    """``get_msg(timeout=T)`` as a series of polls of at most POLL_SLICE_S, same deadline."""

    async def get(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE_S if deadline is None else deadline - time.monotonic()
            try:
                return await get_msg(timeout=max(0.0, min(POLL_SLICE_S, left)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get


def _stall_message(name: str, client: _SlicedPollClient, exc: BaseException) -> str:
    where = "while starting the kernel"
    if client.current_cell is not None:
        index, first_line = client.current_cell
        where = f"in cell {index} ({first_line!r})"
    return (
        f"{name}: the kernel stalled or died {where}: {type(exc).__name__}:"
        f" {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        f" (cell budget {CELL_TIMEOUT_S[name]} s, startup {STARTUP_TIMEOUT_S} s,"
        f" IOPub {IOPUB_TIMEOUT_S} s; see the module docstring)"
    )


def _files(folder: Path) -> set[str]:
    out: set[str] = set()
    for dirpath, _dirs, names in os.walk(folder):  # does not follow the scenarios link
        out.update(str(Path(dirpath, n).relative_to(folder)) for n in names)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_env: str, tmp_path: Path) -> None:
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, work, ignore=shutil.ignore_patterns(".*"))
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    before = _files(tmp_path)

    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{path.name} has stored outputs; clear them before committing"
    )
    nb = _with_small_parameters(nb, SMALL_PARAMETERS[path.name])
    client = _SlicedPollClient(
        nb,
        timeout=CELL_TIMEOUT_S[path.name],
        startup_timeout=STARTUP_TIMEOUT_S,
        iopub_timeout=IOPUB_TIMEOUT_S,
        raise_on_iopub_timeout=True,
        kernel_name=kernel_env,
        resources={"metadata": {"path": str(work)}},
    )
    try:
        client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    except (CellTimeoutError, DeadKernelError, TimeoutError, RuntimeError) as exc:
        pytest.fail(_stall_message(path.name, client, exc), pytrace=False)

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert _files(tmp_path) == before, "the notebook wrote files; use write=False or a temp dir"
