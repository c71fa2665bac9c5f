"""Measure what every notebook costs, and write the book page "What each chapter costs".

    python tools/measure_notebooks.py [NOTEBOOK ...]      (default: every notebook in chapters/)

Each notebook is executed the way the tests execute it (a fresh kernel, one BLAS and one OpenMP
thread), in a process of its own, so that the peak memory of its kernel can be read back: the
kernel is that process's only child, and the operating system keeps the largest resident set of
its waited-for children. The notebooks are not modified. The results are written to costs.md, a
page of the book, with the machine they were measured on, and the same numbers to
benchmarks/notebook_costs.json for `benchmarks/budgets.py` (`make benchmark`); `make costs` runs this.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from execute_notebooks import SINGLE_THREADED  # the thread settings the tests use

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "costs.md"
DATA = ROOT / "benchmarks" / "notebook_costs.json"  # the same measurements, machine-readable
BUDGETS_SECONDS = {"01": 60, "02": 60, "03": 90, "04": 90, "05": 120, "06": 180}  # by chapter number


def measure_one(path: Path) -> dict[str, float]:
    """Run in a child process: execute one notebook, then report its time and its kernel's peak memory."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux reports KiB
    return {"seconds": seconds, "peak_mib": peak_kib / 1024}


def measure(path: Path) -> dict[str, float]:
    environment = {**os.environ, **SINGLE_THREADED}
    result = subprocess.run(
        [sys.executable, __file__, "--one", str(path)], env=environment, check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    import numpy
    import torch

    return (
        f"{cpu}, {os.cpu_count()} logical cores, {platform.system()}; Python {platform.python_version()}, "
        f"NumPy {numpy.__version__}, PyTorch {torch.__version__}; one BLAS and one OpenMP thread per kernel"
    )


def write_page(rows: list[tuple[Path, dict[str, float]]]) -> None:
    lines = [
        "# What each chapter costs",
        "",
        "How long each notebook takes to run from top to bottom, and the most memory its kernel used, measured",
        "the way the book's tests run them (a fresh kernel, one thread for NumPy's BLAS and one for PyTorch),",
        f"on: {machine()}. Measured {time.strftime('%Y-%m-%d')} by `make costs` (`tools/measure_notebooks.py`),",
        "which rewrites this page; numbers from a shared machine vary by a few tens of percent from run to run.",
        "",
        "| chapter | notebook | time (s) | budget (s) | peak memory (MiB) |",
        "|---|---|---|---|---|",
    ]
    totals: dict[str, float] = {}
    for path, result in rows:
        chapter = path.parent.name
        budget = BUDGETS_SECONDS.get(chapter[:2], 0)
        flag = "" if result["seconds"] <= budget else " (over)"
        lines.append(
            f"| {chapter} | {path.stem} | {result['seconds']:.0f}{flag} | {budget} | {result['peak_mib']:.0f} |"
        )
        totals[chapter] = totals.get(chapter, 0.0) + result["seconds"]
    lines += ["", "| chapter | total time (s) |", "|---|---|"]
    lines += [f"| {chapter} | {seconds:.0f} |" for chapter, seconds in totals.items()]
    lines += [
        "",
        f"The whole book, one notebook after another: {sum(totals.values()) / 60:.1f} minutes (budget: 15 minutes).",
    ]
    PAGE.write_text("\n".join(lines) + "\n")


def write_data(rows: list[tuple[Path, dict[str, float]]]) -> None:
    """The measurements of costs.md as JSON: per notebook seconds, peak MiB and its chapter's budget."""
    notebooks = [
        {
            "path": str(path.relative_to(ROOT)),
            "seconds": round(result["seconds"], 1),
            "peak_mib": round(result["peak_mib"]),
            "budget_seconds": BUDGETS_SECONDS.get(path.parent.name[:2], 0),
        }
        for path, result in rows
    ]
    data = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "total_seconds": round(sum(result["seconds"] for _, result in rows), 1),
        "notebooks": notebooks,
    }
    DATA.write_text(json.dumps(data, indent=2) + "\n")


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["--one"]:
        print(json.dumps(measure_one(Path(arguments[1]))))
        return 0
    paths = [Path(a).resolve() for a in arguments] or sorted((ROOT / "chapters").rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    rows = []
    for path in paths:
        result = measure(path)
        rows.append((path, result))
        print(f"{path.relative_to(ROOT)}: {result['seconds']:.1f} s, {result['peak_mib']:.0f} MiB", flush=True)
    write_page(rows)
    write_data(rows)
    print(f"wrote {PAGE.relative_to(ROOT)} and {DATA.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
