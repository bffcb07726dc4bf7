"""Every exercise is real: run top to bottom on a live lab, the untouched learner copy of each
lesson grades every one of its exercises fail or partial (never pass, never an error), and the
source copy, with its solutions, grades every one pass. Verdicts are read from the notebook's
outputs by their ``exercise <id>: <verdict> (...)`` line, as a learner would read them."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbconvert.preprocessors import ExecutePreprocessor

pytest.importorskip("nbgrader", reason="learner copies need nbgrader (`make setup` installs it)")

from labkit import student  # after the skip: it imports nbgrader
from labkit.course import exercise_data

LESSONS = Path(__file__).resolve().parents[2] / "lessons"
LAB = "tlearn"
LABS = (LAB, LAB + "-flannel", LAB + "-cilium")
"""The lab the lessons run on, and the Flannel and Cilium labs lessons 04 and 05 bring up beside
it (named from it)."""
VERDICT_LINE = re.compile(r"^exercise (\d{2}\.\d{1,2}): (pass|partial|fail) \(", re.MULTILINE)


def run(notebook: nbformat.NotebookNode, folder: Path) -> list[str]:
    """Execute a notebook in a fresh kernel (an error in any cell fails the test); the text of
    every output, in order."""
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(
        notebook, {"metadata": {"path": str(folder)}}
    )
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"cell failed: {cell.source}"
            texts.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    return texts


def verdicts(texts: list[str]) -> dict[str, str]:
    """Each exercise's last verdict in the outputs."""
    found: dict[str, str] = {}
    for text in texts:
        for ident, verdict in VERDICT_LINE.findall(text):
            found[ident] = verdict
    return found


def _down() -> None:
    """Take down every lab a lesson may have left, even one stopped by a failing cell."""
    from labkit.sandbox import backend

    for name in LABS:
        backend.down(name)


@pytest.mark.parametrize("lesson", sorted(LESSONS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_exercises_fail_on_the_learner_copy_and_pass_on_the_source(lesson, tmp_path, monkeypatch):
    expected = {i for i, spec in exercise_data.load().items() if spec.lesson == lesson.stem}
    assert expected, f"{lesson.name} has no exercises in labkit/course/exercises/"
    source = nbformat.read(lesson, as_version=4)
    monkeypatch.setenv("LABKIT_LAB", LAB)
    _down()
    try:
        monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "learner.jsonl"))
        untouched = verdicts(run(student.learner_copy(source), tmp_path))
        assert set(untouched) == expected, untouched
        assert all(v in ("fail", "partial") for v in untouched.values()), untouched
        monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "source.jsonl"))
        solved = verdicts(run(source, tmp_path))
        assert solved == dict.fromkeys(expected, "pass"), solved
    finally:
        _down()
