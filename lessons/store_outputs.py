"""Run lesson notebooks on a lab of their own and store the outputs nbval compares.

nbval compares only cells marked ``# NBVAL_CHECK_OUTPUT`` and skips a marked cell with no stored
output; every other cell is stored empty, so a lesson's source stays small and the learner sees
fresh output. Usage, as root for the sandbox:
``.venv/bin/python lessons/store_outputs.py lessons/01-networking-model.ipynb``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARK = "# NBVAL_CHECK_OUTPUT"
LAB = "lkstore"
LABS = (LAB, LAB + "-flannel", LAB + "-cilium")
"""The lab the lessons run on, and the Flannel and Cilium labs lessons 04 and 05 bring up beside
it (named from it)."""


def keep_compared(notebook: nbformat.NotebookNode) -> list[str]:
    """Empty every cell nbval does not compare, drop execution timings and the ipywidgets state
    (``metadata.widgets``: every widget model the kernel made, hundreds of KB that nbval never
    reads); returns what the marked cells printed."""
    notebook.metadata.pop("widgets", None)
    kept = []
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if MARK in cell.source:
            kept += [str(out.get("text", "")).strip() for out in cell.outputs]
        else:
            cell.outputs, cell.execution_count = [], None
    return kept


def store(path: Path) -> list[str]:
    """Execute one notebook and keep only its marked cells' outputs; returns what they printed."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    kept = keep_compared(notebook)
    nbformat.write(notebook, path)
    return kept


def main(paths: list[str]) -> int:
    """Store every named lesson's compared outputs, on lab ``lkstore`` (and lessons 04's and 05's
    ``lkstore-flannel`` and ``lkstore-cilium``), taken down afterwards."""
    from labkit.lab import down

    os.environ["LABKIT_LAB"] = LAB
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["LABKIT_PROGRESS"] = str(Path(scratch) / "progress.jsonl")
        try:
            for name in paths:
                for line in store(Path(name)):
                    print(f"{Path(name).name}: {line}")
        finally:
            for lab_name in LABS:
                down(lab_name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
