"""Give every notebook the same first code cell: install the book's library where it is missing.

    python tools/sync_setup_cell.py          # rewrite the cell in every notebook under chapters/
    python tools/sync_setup_cell.py --check  # exit 1 if any notebook's cell differs (used by tests)

Opened alone in Colab, a notebook has PyTorch, NumPy and matplotlib but not `dlbook`; this cell
installs it from the book's repository, pinned to the library's version, and does nothing where
the library is already installed (a local clone, Binder, the tests). The environment variable
DLBOOK_SOURCE overrides where it installs from: the Colab-style test points it at the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/from-gradients-to-giants/book"
TAG = "setup-dlbook"


def library_version() -> str:
    for line in (ROOT / "lib" / "dlbook" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("lib/dlbook/__init__.py defines no __version__")


def setup_source() -> str:
    return f'''# Colab or another fresh environment? Install the book's library, once.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("dlbook") is None:
    source = os.environ.get(
        "DLBOOK_SOURCE", "git+{REPOSITORY}@v{library_version()}"
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", source], check=True
    )
    importlib.invalidate_caches()'''  # as `ruff format` lays it out, so the two never fight


def setup_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(setup_source())
    # Hidden on the website (it does nothing there); nbval runs it, and it must print nothing.
    cell.metadata["tags"] = [TAG, "remove-cell"]
    cell.id = "setup-dlbook"
    return cell


def first_code_index(notebook: nbformat.NotebookNode) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")


def synced(notebook: nbformat.NotebookNode) -> bool:
    index = first_code_index(notebook)
    cell = notebook.cells[index]
    return TAG in cell.metadata.get("tags", []) and cell.source == setup_source()


def sync(notebook: nbformat.NotebookNode) -> None:
    """Replace the setup cell if there is one, else insert it before the first code cell."""
    index = first_code_index(notebook)
    fresh = setup_cell()
    if TAG in notebook.cells[index].metadata.get("tags", []):
        fresh.outputs = notebook.cells[index].outputs
        fresh.execution_count = notebook.cells[index].execution_count
        notebook.cells[index] = fresh
    else:
        notebook.cells.insert(index, fresh)


def notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(arguments: list[str]) -> int:
    check_only = "--check" in arguments
    stale = []
    for path in notebooks():
        notebook = nbformat.read(path, as_version=4)
        if synced(notebook):
            continue
        stale.append(path.relative_to(ROOT))
        if not check_only:
            sync(notebook)
            nbformat.write(notebook, path)
    verb = "differ" if check_only else "updated"
    print(f"{len(stale)} notebook(s) {verb}" + "".join(f"\n  {p}" for p in stale))
    return 1 if check_only and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
