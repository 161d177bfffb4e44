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
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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


def test_every_notebook_has_small_parameters() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert sorted(SMALL_PARAMETERS) == [p.name for p in NOTEBOOKS]


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


def _files(folder: Path) -> set[str]:
    out = set()
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
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name=kernel_env,
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert _files(tmp_path) == before, "the notebook wrote files; use write=False or a temp dir"
