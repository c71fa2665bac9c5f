"""Make student copies of the chapters: the same notebooks, with every solution taken out.

For instructors. From the repository root:

    python tools/make_student_copies.py [--out DIR] [CHAPTER_DIR ...]
    make student-copies [CHAPTERS="chapters/01-gradient-descent chapters/02-backprop"]

Without CHAPTER_DIR, every chapter in chapters/ is copied; without --out, the copies go to
_build/student/<chapter>/ (for example _build/student/01-gradient-descent/). Each chapter's
folder there is replaced as a whole, so it never keeps a stale notebook; other chapters' folders
are left alone.

What a student copy leaves out (sphinx-exercise's two ways of writing a solution):

- a gated solution: the markdown cell holding ```{solution-start} LABEL``` and every cell after
  it up to and including the markdown cell holding ```{solution-end}```. They are replaced by one
  markdown cell that tells the student where to write the answer.
- a ```{solution} LABEL``` block (or :::{solution}) inside a markdown cell: the block is cut out,
  the rest of the cell (usually the exercise) is kept, and the same answer cell follows it.

Everything else is copied as it is: the cells kept keep their outputs, execution counts and ids,
and the notebook keeps its metadata (widget state included), so the copy renders and runs like the
original. Other files of a chapter (index.md, images, data) are copied too; in Markdown files the
same solution blocks are removed. A solution-start without its solution-end is an error, never a
silent leak. Each answer cell carries the exercise's label in its metadata
(`{"dlbook": {"answer_to": LABEL}}`), for instructors who collect answers with a script.

The book itself, on the website and in the repository, still contains every solution: a student
copy is a convenience for handing out work, not a way of keeping solutions secret.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "_build" / "student"

ANSWER_TEXT = "*Your answer here* (edit this cell, or add cells below it). The solution is in the instructor's copy."

# The opening line of a MyST directive: three or more backticks or colons, then {name} and its
# argument. Indentation is allowed (a directive may sit in a list): better to find too much.
_OPENING = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\s*\{(?P<name>[A-Za-z][\w-]*)\}\s*(?P<argument>.*?)\s*$")
_IGNORED_FILES = (".ipynb_checkpoints", "__pycache__", ".DS_Store")


@dataclass(frozen=True)
class Answer:
    """Where a solution was: the student's answer goes here. `label` is the exercise's label."""

    label: str


# A markdown text, cut into what is kept (str) and where solutions were (Answer).
Piece = str | Answer


@dataclass(frozen=True)
class Scan:
    """One text cut into pieces, the gated solution still open at its end, and what was removed."""

    pieces: list[Piece]
    open_gate: str | None
    gated: int
    blocks: int


@dataclass
class ChapterReport:
    """What was written for one chapter."""

    source: Path
    target: Path
    notebooks: int = 0
    gated: int = 0
    blocks: int = 0
    other_files: int = 0

    @property
    def solutions(self) -> int:
        return self.gated + self.blocks


def _closes(line: str, fence: str) -> bool:
    """True if `line` closes a directive opened with `fence` (same character, at least as long)."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def _block_end(lines: Sequence[str], start: int, fence: str) -> int:
    """The index just past the directive opened at lines[start]; an unclosed one runs to the end."""
    for index in range(start + 1, len(lines)):
        if _closes(lines[index], fence):
            return index + 1
    return len(lines)


def _trim(text: str) -> str:
    """The text without its leading and trailing blank lines (the first line's indentation kept)."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def scan_text(text: str, open_gate: str | None = None) -> Scan:
    """Cut the solutions out of one Markdown text (a markdown cell, or a whole .md file).

    `open_gate` is the label of a gated solution opened earlier (in a previous cell): the text is
    dropped up to and including its solution-end. A {solution} block or a solution-start becomes
    an Answer piece where it stood. Raises ValueError on a solution-end with no solution-start, or
    a solution-start inside an open gated solution.
    """
    lines = text.splitlines(keepends=True)
    pieces: list[Piece] = []
    kept: list[str] = []
    gated = blocks = 0
    index = 0
    while index < len(lines):
        match = _OPENING.match(lines[index])
        name = match["name"] if match else None
        if match is None or name not in ("solution", "solution-start", "solution-end"):
            if open_gate is None:
                kept.append(lines[index])
            index += 1
            continue
        end = _block_end(lines, index, match["fence"])
        label = match["argument"].split()[0] if match["argument"] else ""
        if name == "solution-end":
            if open_gate is None:
                raise ValueError("a solution-end without a solution-start")
            open_gate = None
        elif open_gate is not None:
            raise ValueError(f"a {name} {label} inside the gated solution {open_gate}")
        else:
            pieces.extend([_trim("".join(kept)), Answer(label)])
            kept = []
            if name == "solution-start":
                gated += 1
                open_gate = label or "(no label)"
            else:
                blocks += 1
        index = end
    pieces.append(_trim("".join(kept)))
    return Scan([piece for piece in pieces if piece != ""], open_gate, gated, blocks)


def answer_cell(label: str) -> NotebookNode:
    """The markdown cell that takes a solution's place; its id, answer-LABEL, is the same on every run."""
    cell = nbformat.v4.new_markdown_cell(ANSWER_TEXT, metadata={"dlbook": {"answer_to": label}})
    cell.id = _cell_id(f"answer-{label}" if label else "answer")
    return cell


def _cell_id(text: str) -> str:
    """A valid nbformat cell id (letters, digits, - and _, at most 64 characters) made from `text`."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]


def _unique_ids(cells: Sequence[NotebookNode]) -> None:
    """Make the cells' ids unique, in place, by numbering a repeated id (-2, -3, ...)."""
    seen: set[str] = set()
    for cell in cells:
        if "id" not in cell:
            continue
        candidate, number = cell.id, 1
        while candidate in seen:
            number += 1
            suffix = f"-{number}"
            candidate = cell.id[: 64 - len(suffix)] + suffix
        cell.id = candidate
        seen.add(candidate)


def _markdown_cells(cell: NotebookNode, pieces: Sequence[Piece]) -> Iterator[NotebookNode]:
    """The cells one markdown cell becomes: its kept text (the first part keeps the cell's id) and answers."""
    first = True
    for piece in pieces:
        if isinstance(piece, Answer):
            yield answer_cell(piece.label)
            continue
        part = copy.deepcopy(cell)
        part.source = piece
        if not first and "id" in part:
            part.id = _cell_id(f"{cell.id}-part")
        first = False
        yield part


def student_notebook(notebook: NotebookNode) -> tuple[NotebookNode, int, int]:
    """A copy of `notebook` without solutions, and the numbers of gated and of block solutions removed.

    The input is not modified. Cells outside solutions are copied unchanged (outputs, execution
    counts, metadata, ids), except that a markdown cell loses its {solution} blocks. Raises
    ValueError when a gated solution is never closed.
    """
    cells: list[NotebookNode] = []
    gate: str | None = None
    gated = blocks = 0
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            if gate is None:
                cells.append(copy.deepcopy(cell))
            continue
        scan = scan_text(cell.source, gate)
        if scan.gated == scan.blocks == 0 and scan.open_gate is None and gate is None:
            cells.append(copy.deepcopy(cell))  # nothing removed: the cell exactly as it was
        else:
            cells.extend(_markdown_cells(cell, scan.pieces))
        gate, gated, blocks = scan.open_gate, gated + scan.gated, blocks + scan.blocks
    if gate is not None:
        raise ValueError(f"the gated solution {gate} has no solution-end")
    student = copy.deepcopy(notebook)
    student.cells = cells
    _unique_ids(student.cells)
    return student, gated, blocks


def student_markdown(text: str) -> tuple[str, int, int]:
    """A Markdown file's text without solutions, and the numbers of gated and of block solutions removed."""
    scan = scan_text(text)
    if scan.open_gate is not None:
        raise ValueError(f"the gated solution {scan.open_gate} has no solution-end")
    if scan.gated == scan.blocks == 0:
        return text, 0, 0
    parts = [ANSWER_TEXT if isinstance(piece, Answer) else piece for piece in scan.pieces]
    return "\n\n".join(parts) + "\n", scan.gated, scan.blocks


def _chapter_files(chapter: Path) -> Iterator[Path]:
    """The chapter's files, in a stable order, without checkpoints, caches and hidden files."""
    for path in sorted(chapter.rglob("*")):
        relative = path.relative_to(chapter)
        if path.is_file() and not any(part.startswith(".") or part in _IGNORED_FILES for part in relative.parts):
            yield path


def copy_chapter(chapter: Path, target: Path) -> ChapterReport:
    """Write the student copy of one chapter folder into `target`, replacing what was there."""
    chapter, target = chapter.resolve(), target.resolve()
    if not chapter.is_dir():
        raise ValueError(f"{chapter} is not a folder")
    if target == chapter or chapter.is_relative_to(target) or target.is_relative_to(chapter):
        raise ValueError(f"the copy {target} would overwrite or sit inside the chapter {chapter}")
    report = ChapterReport(chapter, target)
    if target.exists():
        shutil.rmtree(target)
    for path in _chapter_files(chapter):
        destination = target / path.relative_to(chapter)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.suffix == ".ipynb":
                notebook, gated, blocks = student_notebook(nbformat.read(path, as_version=4))
                nbformat.validate(notebook)
                nbformat.write(notebook, destination)
                report.notebooks += 1
            elif path.suffix == ".md":
                text, gated, blocks = student_markdown(path.read_text(encoding="utf-8"))
                destination.write_text(text, encoding="utf-8")
                report.other_files += 1
            else:
                shutil.copy2(path, destination)
                gated = blocks = 0
                report.other_files += 1
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        report.gated += gated
        report.blocks += blocks
    return report


def make_student_copies(chapters: Sequence[Path], out: Path) -> list[ChapterReport]:
    """Write the student copy of each chapter folder to out/<chapter folder name>/."""
    names = [chapter.resolve().name for chapter in chapters]
    if len(set(names)) != len(names):
        raise ValueError(f"two chapters share a folder name: {names}")
    return [copy_chapter(chapter, out / chapter.resolve().name) for chapter in chapters]


def default_chapters(root: Path = ROOT) -> list[Path]:
    """Every chapter folder of the book: the non-hidden folders in chapters/."""
    return sorted(path for path in (root / "chapters").iterdir() if path.is_dir() and not path.name.startswith("."))


def _display(path: Path) -> str:
    """A path relative to the working directory where possible, for messages."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="chapter folders (default: every chapter)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: _build/student)")
    options = parser.parse_args(arguments)
    try:
        reports = make_student_copies(options.chapters or default_chapters(), options.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for report in reports:
        print(
            f"{_display(report.target)}: {report.notebooks} notebooks, {report.solutions} solutions removed"
            f" ({report.gated} gated, {report.blocks} in markdown), {report.other_files} other files"
        )
    notebooks, solutions = sum(r.notebooks for r in reports), sum(r.solutions for r in reports)
    print(f"total: {notebooks} notebooks written, {solutions} solutions removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
