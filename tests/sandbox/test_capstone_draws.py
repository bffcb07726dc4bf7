"""The capstone's drawn faults on a real lab (issue 10): with the whole shop deployed, every fault
of every pool fails its exercise and passes once its fix is applied; and the source notebook
passes for two learners whose outages differ in every exercise, with their points in the report.
(The learner copy, for the default learner, is tests/sandbox/test_learner_copies.py's.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_learner_copies import run, verdicts  # the same notebook runner and verdict reader

import labkit
from labkit.checks import progress
from labkit.course import exercise_data, grading
from labkit.course.exercise_data import Setup
from labkit.course.exercise_draw import Draw

LESSON = Path(__file__).resolve().parents[2] / "lessons" / "11-capstone.ipynb"
LAB = "tcap"
LESSON_EXERCISES = {i: s for i, s in exercise_data.load().items() if s.lesson == LESSON.stem}
POOLS = {i: s.setup for i, s in LESSON_EXERCISES.items() if isinstance(s.setup, Draw)}
NAMES = [f"learner{n}" for n in range(200)]


@pytest.fixture(scope="module")
def shop() -> Iterator[Any]:
    """A calico lab with every scenario of the pools at its starting state, as the lesson has it."""
    from labkit.sandbox import backend

    backend.down(LAB)
    lab = backend.up(LAB, "calico", quiet=True)
    try:
        for draw in POOLS.values():
            for setup in draw.pool:
                grading.reset(lab, setup.scenario)
        yield lab
    finally:
        backend.down(LAB)


def drawing(ident: str, setup: Setup) -> str:
    """A learner name whose draw for exercise ``ident`` is ``setup``."""
    return next(who for who in NAMES if POOLS[ident].pick(who, ident) == setup)


@pytest.mark.parametrize(
    ("ident", "setup"),
    [(i, s) for i, d in POOLS.items() for s in d.pool],
    ids=lambda v: v if isinstance(v, str) else f"{v.scenario}/{v.variant}",
)
def test_every_fault_fails_until_its_fix_is_applied(shop, ident, setup, progress_file):
    ex = labkit.exercise(ident, shop, learner=drawing(ident, setup))
    assert ex.fault is not None
    assert (ex.fault.scenario, ex.fault.variant) == (setup.scenario, setup.variant)
    ex.setup()
    try:
        assert ex.check().verdict in ("fail", "partial")
        shop.apply(list(ex.fault.fix))
        assert ex.check().headline().startswith(f"exercise {ident}: pass")
    finally:
        grading.reset(shop, setup.scenario)


def test_the_source_passes_for_two_learners_with_different_outages(shop, tmp_path, monkeypatch):
    first = NAMES[0]
    second = next(
        who for who in NAMES if all(d.pick(who, i) != d.pick(first, i) for i, d in POOLS.items())
    )
    monkeypatch.setenv("LABKIT_LAB", LAB)
    points, count = sum(s.points for s in LESSON_EXERCISES.values()), len(LESSON_EXERCISES)
    for who in (first, second):
        monkeypatch.setenv("LOGNAME", who)  # the learner progress records (getpass reads it)
        monkeypatch.setenv("USER", who)
        path = tmp_path / f"{who}.jsonl"
        monkeypatch.setenv("LABKIT_PROGRESS", str(path))
        solved = verdicts(run(nbformat.read(LESSON, as_version=4), tmp_path))
        assert solved == dict.fromkeys(LESSON_EXERCISES, "pass"), (who, solved)
        report = progress.report(path)
        assert report.startswith(f"Progress of {who}\n"), report
        assert report.endswith(
            f"{count} of {count} exercises passed, {points:g}/{points:g} points"
        ), report
