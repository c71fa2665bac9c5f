"""NumPy kernels of `dlbook.np` against their PyTorch CPU twins, side by side in one process.

    python benchmarks/run.py                     # the full run: 15 rounds per case, about 40 s on 2 cores
    python benchmarks/run.py --quick             # a smoke run: 5 short rounds per case, about 10 s
    python benchmarks/run.py --repeats 31        # more rounds, a tighter median
    python benchmarks/run.py --output benchmarks/results/latest   # also latest.json and latest.md

Every case is timed by `dlbook.timing.compare` (interleaved rounds, one ratio per round) inside
`dlbook.timing.single_threaded()` (one thread for NumPy's BLAS, one for PyTorch). The table gives
NumPy's time over PyTorch's, median [interquartile range] over the rounds, and the machine's float32
matrix-product throughput as the physical reference. It is a report, not a test: it exits with 0
whatever the ratios are. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import numpy as np
    import torch

    from dlbook.timing import Spread, compare, single_threaded
except ModuleNotFoundError as error:  # run with a Python that lacks the book's environment
    raise SystemExit(
        f"{error}: run with the book's environment, e.g. `.venv/bin/python benchmarks/run.py` (make env creates it)"
    ) from None

import mfu
from cases import CASES, Case
from machine import describe

MATMUL_SIZES = (512, 1024)


@dataclass(frozen=True)
class Settings:
    """repeats: timed rounds per case; warmup: untimed rounds first; round_seconds: the time one round
    (both libraries) should take, which sets the number of calls per round."""

    repeats: int
    warmup: int
    round_seconds: float


FULL = Settings(repeats=15, warmup=2, round_seconds=0.2)
QUICK = Settings(repeats=5, warmup=1, round_seconds=0.1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    shape: str
    dtype: str
    number: int  # calls per library per round
    numpy_ms: Spread
    torch_ms: Spread
    ratio: Spread  # NumPy time / PyTorch time, round by round
    target: float | None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio.median <= self.target

    @property
    def target_in_iqr(self) -> bool:
        """Whether the target lies inside the interquartile range: the verdict is then within this run's noise."""
        return self.target is not None and self.ratio.low <= self.target <= self.ratio.high


@dataclass(frozen=True)
class MatmulResult:
    size: int
    number: int
    numpy_gflops: Spread
    torch_gflops: Spread
    ratio: Spread  # NumPy time / PyTorch time


# ---- measuring -----------------------------------------------------------------------------------


def calls_per_round(functions: Mapping[str, Callable[[], object]], round_seconds: float) -> int:
    """How many calls of each function make a round of about round_seconds (all functions together)."""
    for function in functions.values():  # the first call pays for allocations and lazy set-up
        function()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < 0.02:
        for function in functions.values():
            function()
        calls += 1
    per_call = (time.perf_counter() - start) / calls  # one call of each function
    return max(1, min(10_000, round(round_seconds / per_call)))


def time_case(case: Case, settings: Settings) -> CaseResult:
    torch.manual_seed(0)
    numpy_function, torch_function = case.setup(np.random.default_rng(0))
    functions = {"numpy": numpy_function, "torch": torch_function}
    with single_threaded():
        number = calls_per_round(functions, settings.round_seconds)
        timing = compare(functions, repeats=settings.repeats, number=number, warmup=settings.warmup)
    milliseconds = {name: Spread.of(1e3 * timing.times[name]) for name in functions}
    return CaseResult(
        case.name,
        case.shape,
        case.dtype,
        number,
        milliseconds["numpy"],
        milliseconds["torch"],
        timing.ratio("numpy", "torch"),
        case.target,
    )


def time_matmul(size: int, settings: Settings) -> MatmulResult:
    """float32 (size x size) @ (size x size), 2 size^3 floating-point operations, on one thread each."""
    rng = np.random.default_rng(0)
    a, b = (rng.normal(size=(size, size)).astype(np.float32) for _ in range(2))
    a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)
    functions = {"numpy": lambda: a @ b, "torch": lambda: a_t @ b_t}
    with single_threaded():
        number = calls_per_round(functions, settings.round_seconds)
        timing = compare(functions, repeats=settings.repeats, number=number, warmup=settings.warmup)
    gflops = {name: Spread.of(2 * size**3 / timing.times[name] / 1e9) for name in functions}
    return MatmulResult(size, number, gflops["numpy"], gflops["torch"], timing.ratio("numpy", "torch"))


# ---- reporting -----------------------------------------------------------------------------------


def verdict(result: CaseResult) -> str:
    if result.met is None:
        return ""
    return ("yes" if result.met else "no") + ("*" if result.target_in_iqr else "")


CASE_COLUMNS = ("case", "shape", "dtype", "calls", "NumPy ms", "torch ms", "ratio median [IQR]", "target", "met")
MATMUL_COLUMNS = ("float32 matmul", "calls", "NumPy GFLOP/s median [IQR]", "torch GFLOP/s median [IQR]", "ratio")


def case_cells(result: CaseResult) -> tuple[str, ...]:
    target = "" if result.target is None else f"<= {result.target:g}x"
    return (
        result.name,
        result.shape,
        result.dtype,
        str(result.number),
        f"{result.numpy_ms.median:.3g}",
        f"{result.torch_ms.median:.3g}",
        f"{result.ratio:.2f}",
        target,
        verdict(result),
    )


def matmul_cells(result: MatmulResult) -> tuple[str, ...]:
    return (
        f"{result.size} x {result.size}",
        str(result.number),
        f"{result.numpy_gflops:.1f}",
        f"{result.torch_gflops:.1f}",
        f"{result.ratio.median:.2f}",
    )


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns: text left, numbers right."""
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
    numeric = [i > 0 and all(row[i][:1].isdigit() or not row[i] for row in rows) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(columns), "  ".join("-" * width for width in widths), *map(line, rows)])


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


NOTES = (
    "ratio: NumPy's time over PyTorch's in the same round, median [interquartile range] over the rounds; "
    "above 1, NumPy is slower. Both libraries on one thread each (dlbook.timing.single_threaded).",
    "met: whether the median ratio is within the book's target; * marks a target inside the interquartile "
    "range, a verdict within this run's noise.",
    "A shared machine is noisy: compare ratios between runs, not absolute times, and rerun before concluding.",
)


def header(report: Mapping[str, object]) -> str:
    settings = report["settings"]
    return (
        f"NumPy kernels (dlbook.np) vs PyTorch CPU twins, {report['mode']} run, {settings['repeats']} rounds "
        f"per case after {settings['warmup']} warm-up round(s), one thread per library"
    )


def footer(report: Mapping[str, object]) -> str:
    return f"Time spent measuring: {report['seconds']:.0f} s (without the imports)."


def render_text(report: Mapping[str, object], cases: Sequence[CaseResult], matmuls: Sequence[MatmulResult]) -> str:
    machine = "\n".join(f"  {label}: {value}" for label, value in report["machine"].items())
    return "\n\n".join(
        [
            header(report),
            "Machine\n" + machine,
            text_table(CASE_COLUMNS, [case_cells(result) for result in cases]),
            "Physical reference, one thread\n" + text_table(MATMUL_COLUMNS, [matmul_cells(r) for r in matmuls]),
            "\n".join(textwrap.fill(note, 100, subsequent_indent="  ") for note in (*NOTES, footer(report))),
        ]
    )


def render_markdown(report: Mapping[str, object], cases: Sequence[CaseResult], matmuls: Sequence[MatmulResult]) -> str:
    machine = "\n".join(f"- {label}: {value}" for label, value in report["machine"].items())
    sections = [
        f"# Benchmark: {report['date']}",
        header(report) + ".",
        "## Machine\n\n" + machine,
        "## NumPy / PyTorch time ratios\n\n" + markdown_table(CASE_COLUMNS, [case_cells(r) for r in cases]),
        "## Physical reference: float32 matrix products, one thread\n\n"
        + markdown_table(MATMUL_COLUMNS, [matmul_cells(r) for r in matmuls]),
        "\n".join(f"- {note}" for note in NOTES) + f"\n- {footer(report)}",
    ]
    return "\n\n".join(sections) + "\n"


def as_json(report: Mapping[str, object], cases: Sequence[CaseResult], matmuls: Sequence[MatmulResult]) -> dict:
    def case_dict(result: CaseResult) -> dict:
        return {**dataclasses.asdict(result), "met": result.met, "target_in_iqr": result.target_in_iqr}

    return {
        **report,
        "cases": [case_dict(result) for result in cases],
        "matmul": [dataclasses.asdict(r) for r in matmuls],
    }


def write_outputs(path: Path, report: Mapping, cases: Sequence[CaseResult], matmuls: Sequence[MatmulResult]) -> None:
    """PATH.json and PATH.md (whatever suffix PATH had)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = path.with_suffix(".json"), path.with_suffix(".md")
    json_path.write_text(json.dumps(as_json(report, cases, matmuls), indent=2) + "\n")
    markdown_path.write_text(render_markdown(report, cases, matmuls))
    print(f"\nWrote {json_path} and {markdown_path}", file=sys.stderr)


# ---- the command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 short rounds per case (< 1 minute)")
    parser.add_argument("--repeats", type=int, metavar="N", help="timed rounds per case (default 15, --quick 5)")
    parser.add_argument("--output", type=Path, metavar="PATH", help="also write PATH.json and PATH.md")
    parser.add_argument("--only", nargs="+", metavar="WORD", help="run only the cases whose name contains a WORD")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def selected_cases(words: Sequence[str] | None) -> list[Case]:
    if not words:
        return list(CASES)
    chosen = [case for case in CASES if any(word in case.name for word in words)]
    if not chosen:
        raise SystemExit(f"no case matches {words}; the cases are: {', '.join(case.name for case in CASES)}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.repeats is not None:
        settings = dataclasses.replace(settings, repeats=args.repeats)
    started = time.perf_counter()
    machine = describe()  # before timing: the load average at the start
    cases = selected_cases(args.only)
    results = []
    for index, case in enumerate(cases, start=1):
        print(f"[{index}/{len(cases)}] {case.name} ...", end=" ", file=sys.stderr, flush=True)
        case_started = time.perf_counter()
        results.append(time_case(case, settings))
        print(f"{time.perf_counter() - case_started:.1f} s", file=sys.stderr, flush=True)
    print("float32 matmul throughput ...", end=" ", file=sys.stderr, flush=True)
    matmuls = [time_matmul(size, settings) for size in MATMUL_SIZES]
    print("done\n", file=sys.stderr, flush=True)
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "settings": dataclasses.asdict(settings),
        "machine": machine,
        "seconds": time.perf_counter() - started,
    }
    reference = next(m for m in matmuls if m.size == max(MATMUL_SIZES)).torch_gflops.median
    print("GPT training MFU ...", end=" ", file=sys.stderr, flush=True)
    mfu_results = mfu.measure_all(reference, steps=5 if args.quick else 20)
    print("done\n", file=sys.stderr, flush=True)
    report["mfu"] = [dataclasses.asdict(result) for result in mfu_results]
    print(render_text(report, results, matmuls))
    print()
    print(mfu.render(mfu_results, reference))
    if args.output is not None:
        write_outputs(args.output, report, results, matmuls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
