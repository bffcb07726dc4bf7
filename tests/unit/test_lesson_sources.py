"""What every lesson notebook must hold for nbval to test it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_compared_cell_has_the_output_nbval_compares(path: Path) -> None:
    """nbval skips a marked cell that has no stored output, so a marker alone tests nothing."""
    notebook = nbformat.read(path, as_version=4)
    empty = [
        cell.source.splitlines()[1] if len(cell.source.splitlines()) > 1 else cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in cell.source and not cell.outputs
    ]
    assert not empty, (
        f"{path.name}: marked cells without a stored output: {empty}. Store them with "
        f"`.venv/bin/python lessons/store_outputs.py lessons/{path.name}` (as root)."
    )


def test_there_are_lessons() -> None:
    assert LESSONS, "no lessons/*.ipynb found"


def test_the_kind_workflow_runs_real_lessons_on_flannel() -> None:
    """The Kind workflow's Flannel job runs a listed subset; a renamed lesson must not drop out
    of it silently, and the list must leave out some lessons (the policy ones), or it is moot."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "kind.yml").read_text())
    listed = workflow["env"]["FLANNEL_LESSONS"].split()
    missing = [name for name in listed if not (ROOT / name).is_file()]
    assert not missing, f"kind.yml FLANNEL_LESSONS names lessons that do not exist: {missing}"
    assert 0 < len(listed) < len(LESSONS)
