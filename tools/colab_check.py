"""Run every notebook the way Colab would: alone, in a fresh environment without the library.

    python tools/colab_check.py [NOTEBOOK ...]     (default: every notebook in chapters/)

Creates a virtual environment holding what Colab preinstalls (PyTorch, NumPy, matplotlib,
ipywidgets, a Jupyter kernel) but not `dlbook`. Each notebook is copied alone into an empty
folder and executed there; its first cell must install the library, which DLBOOK_SOURCE points
at this checkout instead of the network. The library is uninstalled again before the next
notebook, so every notebook's own first cell is exercised. Needs the package index (PyPI) for
the environment; about 3-5 minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a Colab runtime already has, as far as the book is concerned.
PREINSTALLED = [
    "torch==2.13.0", "numpy", "matplotlib", "ipykernel", "ipywidgets", "tqdm", "scikit-learn", "scipy", "nbclient",
    "setuptools",
]


def run(command: list[str], **kwargs) -> None:
    subprocess.run(command, check=True, **kwargs)


def make_environment(folder: Path) -> Path:
    run([sys.executable, "-m", "venv", str(folder)])
    python = folder / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(python), "-m", "pip", "install", "--quiet", *PREINSTALLED])
    return python


def execute_alone(python: Path, notebook: Path, scratch: Path) -> float:
    folder = scratch / f"{notebook.parent.name}--{notebook.stem}"  # chapters reuse file names
    folder.mkdir()
    copy = folder / notebook.name
    copy.write_bytes(notebook.read_bytes())
    run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "dlbook"], stderr=subprocess.DEVNULL)
    environment = {**os.environ, "DLBOOK_SOURCE": str(ROOT)}
    started = time.perf_counter()
    run([str(python.parent / "jupyter-execute"), "--timeout=600", str(copy)], env=environment, cwd=folder,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def main(arguments: list[str]) -> int:
    notebooks = [Path(a).resolve() for a in arguments] or sorted((ROOT / "chapters").rglob("*.ipynb"))
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        python = make_environment(scratch / "venv")
        failed = 0
        for notebook in notebooks:
            name = notebook.relative_to(ROOT)
            try:
                print(f"{name}: ran alone in {execute_alone(python, notebook, scratch):.0f} s", flush=True)
            except subprocess.CalledProcessError:
                failed += 1
                print(f"{name}: FAILED when run alone", flush=True)
    print(f"{len(notebooks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
