"""Re-execute notebooks in place, saving outputs and widget state, and report each one's time.

    python tools/execute_notebooks.py [NOTEBOOK ...]     (default: every notebook in chapters/)

Authors run this (through `make execute`) after changing a chapter or the library, then commit
the notebooks; `make test` re-runs them with nbval and proves the saved outputs reproducible.
Kernels get one BLAS and one OpenMP thread, as under `make test`: float32 sums in PyTorch and
OpenBLAS are split among threads, so the last digits of a result depend on how many there are.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
# The same settings as the test target of the Makefile.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    nbformat.write(notebook, path)
    return elapsed


def main(arguments: list[str]) -> int:
    os.environ.update(SINGLE_THREADED)  # inherited by every kernel started below
    paths = [Path(a).resolve() for a in arguments] or sorted((ROOT / "chapters").rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    total = 0.0
    for path in paths:
        elapsed = execute(path)
        total += elapsed
        print(f"{path.relative_to(ROOT)}: {elapsed:.1f} s", flush=True)
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
