"""The cells the lessons' Cilium pass skips (tests/nbval_cilium.py) exist, each with a reason,
and a skipped check cell is one whose lesson says why it cannot pass on Cilium."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.nbval_cilium import CILIUM_EXCEPTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("lesson", "cell_id"), sorted(CILIUM_EXCEPTIONS))
def test_each_exception_names_a_code_cell_of_a_lesson(lesson: str, cell_id: str) -> None:
    """nbformat 4.5 (``nbformat/v4/nbformat.v4.5.schema.json``, ``id``): a cell id is stable
    across edits, so the list follows its cell; a reason of some words comes with each."""
    notebook = nbformat.read(ROOT / "lessons" / lesson, as_version=4)
    cells = {cell.get("id"): cell for cell in notebook.cells}
    assert cell_id in cells and cells[cell_id].cell_type == "code", f"{lesson}: no cell {cell_id}"
    assert len(CILIUM_EXCEPTIONS[(lesson, cell_id)].split()) >= 5


def graded_lessons() -> list[str]:
    """The lessons in which the Cilium pass skips a compared (``# NBVAL_CHECK_OUTPUT``) cell."""
    found = set()
    for lesson, cell_id in CILIUM_EXCEPTIONS:
        notebook = nbformat.read(ROOT / "lessons" / lesson, as_version=4)
        if any(
            c.get("id") == cell_id and "# NBVAL_CHECK_OUTPUT" in c.source for c in notebook.cells
        ):
            found.add(lesson)
    return sorted(found)


@pytest.mark.parametrize("lesson", graded_lessons())
def test_a_lesson_with_skipped_graded_cells_says_they_need_another_cni(lesson: str) -> None:
    """A learner on a Cilium lab meets the same cells: where the pass skips an exercise's
    graded check, the lesson's own text says that exercise cannot pass on Cilium, instead of
    leaving the learner with a failure it does not explain."""
    notebook = nbformat.read(ROOT / "lessons" / lesson, as_version=4)
    said = [
        c.id
        for c in notebook.cells
        if c.cell_type == "markdown" and "Cilium" in c.source and "cannot pass there" in c.source
    ]
    assert said, f"{lesson}: no text says which exercises cannot pass on a Cilium lab"
