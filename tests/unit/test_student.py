"""Learner copies: solutions between the markers become a placeholder that runs, outputs go, the
source stays as it was; and no lesson's learner copy keeps a solution line."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

pytest.importorskip("nbgrader", reason="learner copies need nbgrader (`make setup` installs it)")

from labkit import student  # after the skip: it imports nbgrader

LESSONS = Path(__file__).resolve().parents[2] / "lessons"


def lesson() -> nbformat.NotebookNode:
    answer = new_code_cell(
        "before = 1\n    ### BEGIN SOLUTION\n    secret = 42\n    ### END SOLUTION\nafter = 2",
        execution_count=3,
        outputs=[new_output("stream", name="stdout", text="42\n")],
    )
    return new_notebook(cells=[new_markdown_cell("# Title"), answer, new_code_cell("ex.check()")])


def test_a_solution_becomes_a_placeholder_that_runs_and_outputs_go():
    source = lesson()
    copy = student.learner_copy(source)
    code = copy.cells[1]
    assert code.source.splitlines() == ["before = 1", f"    {student.PLACEHOLDER}", "after = 2"]
    assert code.outputs == [] and code.execution_count is None
    compile(code.source, "cell", "exec")  # the placeholder leaves the cell runnable
    assert "secret" in source.cells[1].source and source.cells[1].outputs


def test_an_unclosed_solution_is_refused():
    broken = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nsecret = 42")])
    with pytest.raises(RuntimeError, match="no end solution"):
        student.learner_copy(broken)


def test_no_lesson_copy_keeps_a_solution(tmp_path):
    written = student.write_learner_copies(LESSONS, tmp_path)
    assert [p.name for p in written] == sorted(p.name for p in LESSONS.glob("*.ipynb"))
    for path in written:
        for cell in nbformat.read(path, as_version=4).cells:
            assert "SOLUTION" not in cell.source, f"{path.name}: {cell.source}"
            assert not cell.get("outputs"), path.name
