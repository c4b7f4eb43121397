"""Every notebook runs top to bottom with ZFKERAS_FAST=1 (nbclient); a failing cell fails the test.

The kernel is the `python3` kernelspec of ipykernel: with no other `python3`
kernelspec installed, jupyter_client uses ipykernel's own, which starts
`sys.executable` (the interpreter running the tests), so the notebooks see
the same environment. `test_kernel_is_this_interpreter` checks exactly that.
Committed notebooks carry no outputs (`test_notebooks_are_committed_without_outputs`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "01_layers_switches_deconvnet.ipynb",
    "02_top9_and_evolution.ipynb",
    "03_occlusion_and_correspondence.ipynb",
    "04_transfer.ipynb",
    "05_ablation.ipynb",
    "06_your_own_network.ipynb",
    "07_sanity_checks.ipynb",
]

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _execute(nb, cwd: Path, monkeypatch, timeout: int = 600):
    monkeypatch.setenv("ZFKERAS_FAST", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    # The kernel imports zfkeras from this checkout (in CI also the installed copy: the same code).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def test_the_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        first = nb.cells[0].source
        assert first.startswith("# ") and "**Purpose.**" in first and "**Runtime.**" in first, path.name
        params = [c for c in nb.cells if c.cell_type == "code"][0].source
        assert 'FAST = os.environ.get("ZFKERAS_FAST") == "1"' in params, path.name


def test_kernel_is_this_interpreter(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    _execute(nb, tmp_path, monkeypatch, timeout=120)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs(name, tmp_path, monkeypatch):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    _execute(nb, tmp_path, monkeypatch)  # raises CellExecutionError on any failing cell
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert images, f"{name} showed no picture"
