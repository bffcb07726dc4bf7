"""What every lesson notebook must hold for nbval to test it."""

from __future__ import annotations

import importlib.util
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


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_no_lesson_stores_widget_state(path: Path) -> None:
    """nbclient saves the kernel's ipywidgets models in ``metadata.widgets``
    (NotebookClient.store_widget_state, nbclient/client.py, set_widgets_metadata); nbval never
    reads them, and they made lessons 04, 05 and 09 100-260 KB larger."""
    assert "widgets" not in nbformat.read(path, as_version=4).metadata


def test_store_outputs_keeps_only_what_nbval_compares() -> None:
    """store_outputs empties unmarked cells and drops timings and widget state, keeping a marked
    cell's output (nbval --nbval-lax compares only cells marked NBVAL_CHECK_OUTPUT)."""
    spec = importlib.util.spec_from_file_location(
        "store_outputs", ROOT / "lessons" / "store_outputs.py"
    )
    assert spec is not None and spec.loader is not None
    store_outputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(store_outputs)
    out = nbformat.v4.new_output("stream", name="stdout", text="ok\n")
    marked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('ok')", outputs=[out])
    plain = nbformat.v4.new_code_cell("print('ok')", outputs=[out], execution_count=3)
    plain.metadata["execution"] = {"iopub.status.busy": "2026-12-06T22:00:00Z"}
    notebook = nbformat.v4.new_notebook(cells=[marked, plain, nbformat.v4.new_markdown_cell("x")])
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    assert store_outputs.keep_compared(notebook) == ["ok"]
    assert "widgets" not in notebook.metadata
    assert marked.outputs == [out]
    assert (plain.outputs, plain.execution_count, plain.metadata) == ([], None, {})


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
