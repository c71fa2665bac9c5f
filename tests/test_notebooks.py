"""Static checks of the committed notebooks: the shared first cell, executed outputs, no noise."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the sync tool is a script, not part of the library

import sync_setup_cell  # noqa: E402

NOTEBOOKS = sync_setup_cell.notebooks()


@pytest.fixture(params=NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def notebook(request):
    return nbformat.read(request.param, as_version=4)


def test_the_book_has_notebooks():
    assert len(NOTEBOOKS) >= 10


def test_every_notebook_starts_with_the_shared_setup_cell(notebook):
    assert sync_setup_cell.synced(notebook), "run `python tools/sync_setup_cell.py`"


def test_the_setup_cell_installs_from_the_book_pinned_to_the_library_version(notebook):
    import dlbook

    source = notebook.cells[sync_setup_cell.first_code_index(notebook)].source
    assert f"{sync_setup_cell.REPOSITORY}@v{dlbook.__version__}" in source
    assert "remove-cell" in notebook.cells[sync_setup_cell.first_code_index(notebook)].metadata["tags"]


def test_every_notebook_is_committed_executed_top_to_bottom(notebook):
    counts = [c.execution_count for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), "re-run it with `make execute`"


def test_no_notebook_shows_an_error_or_a_warning(notebook):
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error"
            assert not (output.get("name") == "stderr" and "Warning" in output.get("text", ""))
