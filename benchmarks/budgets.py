"""The book's performance budgets against what was measured: a report, not a test.

    python benchmarks/budgets.py           # also times the site build now, into a temporary directory
    python benchmarks/budgets.py --quick   # everything but the site build

| budget | where the measurement comes from |
|---|---|
| whole book, run serially: 15 minutes | benchmarks/notebook_costs.json, written by `make costs` |
| each notebook: its chapter's budget | the same file (budgets in tools/measure_notebooks.py) |
| site build from committed outputs: 2 minutes | timed now: `make book`'s command into a temporary directory |
| CI end to end: 30 minutes | _build/ci_times.json, written by .ci/run on this machine |

`make benchmark` runs this after the ratio table. It exits with 0 whether the budgets are met or
missed (not 0 only if something raises): timings on a shared machine are too noisy for a test, so
the misses are reported for a person to act on. Where a budget is missed, make the code faster
before making the lesson smaller.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COSTS = ROOT / "benchmarks" / "notebook_costs.json"
CI_TIMES = ROOT / "_build" / "ci_times.json"
CI_STAGES = ("env", "test", "book", "browser-test", "colab-check")
BOOK_BUDGET, BUILD_BUDGET, CI_BUDGET = 15 * 60, 2 * 60, 30 * 60  # seconds


def duration(seconds: float, minutes: bool | None = None) -> str:
    if not (seconds >= 600 if minutes is None else minutes):
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f}".removesuffix(".0") + " min"


@dataclass(frozen=True)
class Row:
    budget: str
    limit: float  # seconds
    measured: float | None  # seconds; None: not measured
    source: str
    problem: str = ""  # e.g. an incomplete measurement, shown with the verdict

    def cells(self) -> tuple[str, ...]:
        if self.measured is None:
            return self.budget, f"<= {duration(self.limit)}", "not measured", self.source, "-"
        verdict = "met" if self.missed is False else "MISSED"
        verdict += f" ({self.problem})" if self.problem else ""
        return (
            self.budget,
            f"<= {duration(self.limit)}",
            duration(self.measured, self.limit >= 600),
            self.source,
            verdict,
        )

    @property
    def missed(self) -> bool | None:
        return None if self.measured is None else self.measured > self.limit


def notebook_costs() -> tuple[list[dict], str]:
    """Each measured notebook's path, seconds and budget_seconds, and where they come from."""
    if COSTS.exists():
        data = json.loads(COSTS.read_text())
        return data["notebooks"], f"{COSTS.relative_to(ROOT)}, {data['date']}"
    page = ROOT / "costs.md"  # until `make costs` has written the JSON: the table of the page it also writes
    if not page.exists():
        return [], "no notebook costs: run make costs"
    text = page.read_text()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()]
    notebooks = [
        {
            "path": f"chapters/{row[0]}/{row[1]}.ipynb",
            "seconds": float(row[2].split()[0]),
            "budget_seconds": int(row[3]),
        }
        for row in cells
        if len(row) == 5 and row[0][:2].isdigit()
    ]
    date = re.search(r"Measured (\S+)", text)
    return notebooks, "costs.md" + (f", {date.group(1)}" if date else "")


def notebook_rows() -> list[Row]:
    notebooks, source = notebook_costs()
    if not notebooks:
        return [Row("whole book, serial execution", BOOK_BUDGET, None, source)]
    unmeasured = {str(p.relative_to(ROOT)) for p in ROOT.glob("chapters/*/*.ipynb")} - {n["path"] for n in notebooks}
    problem = f"{len(unmeasured)} notebooks not measured" if unmeasured else ""
    rows = [Row("whole book, serial execution", BOOK_BUDGET, sum(n["seconds"] for n in notebooks), source, problem)]
    slowest = max(notebooks, key=lambda n: n["seconds"])
    over = [n for n in notebooks if n["seconds"] > n["budget_seconds"]]
    labelled = [("over its chapter's budget", n) for n in over]
    if slowest not in over:
        labelled.append((f"slowest of {len(notebooks)} notebooks ({len(over)} over budget)", slowest))
    for label, notebook in labelled:
        name = Path(notebook["path"]).relative_to("chapters").with_suffix("")
        rows.append(Row(f"{label}: {name}", notebook["budget_seconds"], notebook["seconds"], source))
    return rows


def site_build_row() -> Row:
    """Time `make book`'s command, building into a temporary directory so that _build is left alone."""
    print("Building the site into a temporary directory ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as output:
        command = [Path(sys.executable).parent / "jupyter-book", "build", ROOT, "-W", "-n", "--keep-going"]
        started = time.perf_counter()
        result = subprocess.run([*command, "--path-output", output], capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        print("\n".join((result.stdout + result.stderr).splitlines()[-15:]), file=sys.stderr)
    problem = f"but the build failed, exit {result.returncode}" if result.returncode else ""
    return Row("site build from committed outputs", BUILD_BUDGET, seconds, "timed now (make book's command)", problem)


def ci_row() -> tuple[Row, str]:
    if not CI_TIMES.exists():
        return Row("CI end to end", CI_BUDGET, None, "not measured on this machine; run .ci/run"), ""
    data = json.loads(CI_TIMES.read_text())
    stages = data["stages"]
    missing = [stage for stage in CI_STAGES if stage not in stages]
    problem = f"incomplete: stopped before {missing[0]}" if missing else ""
    source = f"{CI_TIMES.relative_to(ROOT)}, {data['date'][:10]}"
    note = "CI stages: " + ", ".join(f"{stage} {duration(seconds)}" for stage, seconds in stages.items())
    return Row("CI end to end", CI_BUDGET, data["total_seconds"], source, problem), note


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
    lines = [columns, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the site build (about 35 s here)")
    quick = parser.parse_args(argv).quick
    rows = notebook_rows()
    build = Row("site build from committed outputs", BUILD_BUDGET, None, "skipped (--quick)")
    rows.append(build if quick else site_build_row())
    ci, ci_note = ci_row()
    rows.append(ci)
    print("\nPerformance budgets (issue 9)\n")
    print(text_table(("budget", "limit", "measured", "from", "verdict"), [row.cells() for row in rows]))
    print(f"\n{ci_note}" if ci_note else "")
    missed = [row.budget for row in rows if row.missed]
    print(
        f"Missed ({len(missed)}):\n" + "\n".join(f"  {name}" for name in missed)
        if missed
        else "No measured budget missed."
    )
    print("A report, not a test: the exit status is 0 whether budgets are met or missed. Where one is missed,")
    print("make the code faster before making the lesson smaller.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
