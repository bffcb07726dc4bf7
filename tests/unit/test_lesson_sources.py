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


@pytest.mark.parametrize("listing", ["FLANNEL_LESSONS", "CILIUM_LESSONS"])
def test_the_kind_workflow_runs_real_lessons_per_cni(listing: str) -> None:
    """The Kind workflow's Flannel and Cilium jobs run listed subsets; a renamed lesson must not
    drop out of one silently, and a list must leave some lessons out, or it is moot."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "kind.yml").read_text())
    listed = workflow["env"][listing].split()
    missing = [name for name in listed if not (ROOT / name).is_file()]
    assert not missing, f"kind.yml {listing} names lessons that do not exist: {missing}"
    assert 0 < len(listed) < len(LESSONS)
