"""tools/make_student_copies.py: the student copies of chapters 1 and 2 leak no solution.

The solutions are found in the original notebooks by a parser written here, independently of the
tool's: every non-blank line of every cell inside a gated solution (source and output text), and
every non-blank line of every {solution} block, less the lines of directive syntax. A solution line
that also appears outside the solutions (an import, a closing bracket) gives nothing away, so the
secrets are the solution lines found nowhere else in the original chapter. None may appear in any
source or output of the student copies. A deliberately broken remover must fail the same check.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = [ROOT / "chapters" / "01-gradient-descent", ROOT / "chapters" / "02-backprop"]


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_student_copies", ROOT / "tools" / "make_student_copies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = load_tool()
remove_solutions = tool.student_notebook  # the real remover, kept for the broken ones below


@dataclass
class Solutions:
    """What a chapter's original notebooks contain, as seen by this test's own parser."""

    solution_lines: set[str] = field(default_factory=set)
    public: list[str] = field(default_factory=list)  # every text outside the solutions
    count: int = 0
    exercise_labels: dict[str, list[str]] = field(default_factory=dict)  # notebook name -> labels

    @property
    def secrets(self) -> set[str]:
        public = "\n".join(self.public)
        return {line for line in self.solution_lines if line not in public}


def output_texts(cell: nbformat.NotebookNode) -> Iterator[str]:
    """The text of every output of a cell: streams, every MIME type's data, errors."""
    for output in cell.get("outputs", []):
        if "text" in output:
            yield output["text"]
        for value in output.get("data", {}).values():
            yield value if isinstance(value, str) else str(value)
        if "traceback" in output:
            yield "\n".join(output["traceback"])


def is_directive_syntax(line: str) -> bool:
    """A fence (``` or :::), a directive's opening line, or an option line such as `:class: dropdown`."""
    return line.startswith(("```", ":::")) or (line.startswith(":") and line.count(":") >= 2)


def meaningful(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not is_directive_syntax(line.strip())}


def exercise_labels(text: str) -> list[str]:
    labels, inside = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```{exercise}", "```{exercise-start}")):
            inside = True
        elif inside and stripped.startswith(":label:"):
            labels.append(stripped.removeprefix(":label:").strip())
        elif inside and not stripped.startswith(":"):
            inside = False
    return labels


@functools.cache
def collect(chapter: Path) -> Solutions:
    """Parse the original notebooks and Markdown files of a chapter."""
    found = Solutions()
    for path in sorted(chapter.glob("*.md")):
        found.public.append(path.read_text(encoding="utf-8"))
    for path in sorted(chapter.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        found.exercise_labels[path.name] = []
        gated = False
        for cell in notebook.cells:
            outputs = list(output_texts(cell))
            if cell.cell_type == "markdown" and "{solution-start}" in cell.source:
                assert not gated, f"{path}: nested solution-start"
                gated, found.count = True, found.count + 1
                continue
            if cell.cell_type == "markdown" and "{solution-end}" in cell.source:
                assert gated, f"{path}: solution-end without solution-start"
                gated = False
                continue
            if gated:
                for text in [cell.source, *outputs]:
                    found.solution_lines |= meaningful(text)
                continue
            found.public.extend(outputs)
            found.exercise_labels[path.name] += exercise_labels(cell.source)
            in_block = False
            for line in cell.source.splitlines():
                stripped = line.strip()
                if cell.cell_type == "markdown" and stripped.startswith("```{solution}"):
                    in_block, found.count = True, found.count + 1
                elif in_block and stripped == "```":
                    in_block = False
                elif in_block:
                    found.solution_lines |= meaningful(line)
                else:
                    found.public.append(line)
        assert not gated, f"{path}: a solution-start without its solution-end"
    return found


def student_corpus(folder: Path) -> str:
    """Every cell source and output text of the student copies, and every Markdown file."""
    texts = [path.read_text(encoding="utf-8") for path in folder.rglob("*.md")]
    for path in folder.rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            texts += [cell.source, *output_texts(cell)]
    return "\n".join(texts)


def leaks(chapter: Path, folder: Path) -> list[str]:
    corpus = student_corpus(folder)
    return sorted(line for line in collect(chapter).secrets if line in corpus)


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("student")
    reports = tool.make_student_copies(CHAPTERS, out)
    return out, {report.source.name: report for report in reports}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_no_solution_leaks(chapter: Path, copies: tuple[Path, dict[str, object]]) -> None:
    out, _ = copies
    secrets = collect(chapter).secrets
    assert len(secrets) >= 50, f"only {len(secrets)} solution lines found: the parser lost them"
    assert leaks(chapter, out / chapter.name) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_solution_counted_and_every_exercise_kept(chapter: Path, copies: tuple[Path, dict[str, object]]) -> None:
    out, reports = copies
    original = collect(chapter)
    report = reports[chapter.name]
    assert original.count > 0
    assert report.solutions == original.count
    assert report.notebooks == len(list(chapter.glob("*.ipynb")))
    for name, labels in original.exercise_labels.items():
        student = nbformat.read(out / chapter.name / name, as_version=4)
        assert exercise_labels("\n".join(cell.source for cell in student.cells)) == labels
    answers = [
        cell
        for path in (out / chapter.name).glob("*.ipynb")
        for cell in nbformat.read(path, as_version=4).cells
        if "answer_to" in cell.metadata.get("dlbook", {})
    ]
    assert len(answers) == original.count
    assert all(cell.source == tool.ANSWER_TEXT for cell in answers)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_copies_are_valid_and_keep_everything_else(chapter: Path, copies: tuple[Path, dict[str, object]]) -> None:
    out, _ = copies
    assert (out / chapter.name / "index.md").read_bytes() == (chapter / "index.md").read_bytes()
    for path in sorted(chapter.glob("*.ipynb")):
        original = nbformat.read(path, as_version=4)
        student = nbformat.read(out / chapter.name / path.name, as_version=4)
        nbformat.validate(student)
        assert student.metadata == original.metadata  # kernel, language, widget state
        ids = [cell.get("id") for cell in student.cells]
        assert len(ids) == len(set(ids))
        # Every cell outside the solutions, with no solution block in it, is copied exactly, in
        # order (source, outputs, execution count, metadata, id).
        untouched, gated = [], False
        for cell in original.cells:
            gated = gated or "{solution-start}" in cell.source
            if not gated and "{solution" not in cell.source:
                untouched.append(cell)
            gated = gated and "{solution-end}" not in cell.source
        by_id = {cell.get("id"): cell for cell in student.cells}
        assert [by_id.get(cell.get("id")) for cell in untouched] == untouched
        assert [cell for cell in student.cells if cell in untouched] == untouched


def test_exercise_and_solution_in_one_cell() -> None:
    exercise = "```{exercise} Title\n:label: ex-a\n\nDo this.\n```"
    solution = "````{solution} ex-a\n:class: dropdown\n\n```python\nsecret = 1\n```\n````"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell(f"{exercise}\n\n{solution}\n\nAfter."), nbformat.v4.new_code_cell("x = 1")]
    )
    student, gated, blocks = tool.student_notebook(notebook)
    sources = [cell.source for cell in student.cells]
    assert (gated, blocks) == (0, 1)
    assert sources == [exercise, tool.ANSWER_TEXT, "After.", "x = 1"]
    assert len(notebook.cells) == 2  # the input is left alone
    nbformat.validate(student)


def test_colon_fences_and_gates_in_one_cell() -> None:
    text = (
        "Intro.\n:::{solution-start} ex-b\n:::\nsecret\n:::{solution-end}\n:::\n"
        "Outro.\n::::{solution} ex-b\n:::{note}\nhidden\n:::\n::::\n"
    )
    scan = tool.scan_text(text)
    assert (scan.gated, scan.blocks, scan.open_gate) == (1, 1, None)
    assert scan.pieces == ["Intro.", tool.Answer("ex-b"), "Outro.", tool.Answer("ex-b")]


def test_an_unclosed_gate_is_an_error() -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("```{solution-start} ex-c\n```"), nbformat.v4.new_code_cell("secret = 1")]
    )
    with pytest.raises(ValueError, match="ex-c"):
        tool.student_notebook(notebook)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--out", str(tmp_path), str(CHAPTERS[0])]) == 0
    assert "solutions removed" in capsys.readouterr().out
    assert sorted(path.name for path in (tmp_path / CHAPTERS[0].name).iterdir()) == sorted(
        path.name for path in CHAPTERS[0].iterdir() if path.suffix in (".ipynb", ".md")
    )


def keeps_gated_cells(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int, int]:
    """Broken: drops the solution-start and solution-end markers but keeps the cells between them."""
    unmarked = copy.deepcopy(notebook)
    unmarked.cells = [cell for cell in unmarked.cells if "{solution-start}" not in cell.source]
    unmarked.cells = [cell for cell in unmarked.cells if "{solution-end}" not in cell.source]
    return remove_solutions(unmarked)


def keeps_solution_blocks(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int, int]:
    """Broken: does not recognise {solution} blocks in markdown cells, only gated solutions."""
    disguised = copy.deepcopy(notebook)
    for cell in disguised.cells:
        cell.source = cell.source.replace("{solution}", "{not-a-solution}")
    return remove_solutions(disguised)


@pytest.mark.parametrize("broken", [keeps_gated_cells, keeps_solution_blocks])
def test_negative_control_a_broken_remover_leaks(
    broken: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool, "student_notebook", broken)
    for chapter in CHAPTERS:
        tool.copy_chapter(chapter, tmp_path / chapter.name)
        assert leaks(chapter, tmp_path / chapter.name), f"the leak check missed {broken.__name__} in {chapter.name}"
