"""Learner copies of the lessons (`make student`): nbgrader's ClearSolutions swaps each region
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` for a comment-only placeholder (so the
cell still runs and the exercise's check grades the untouched lab), and every output is cleared."""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions

PLACEHOLDER = "# YOUR ANSWER HERE (this cell runs as it is; the check grades the lab)"
"""What replaces a solution: a comment, so an unanswered exercise grades fail, never errors."""


def learner_copy(source: NotebookNode) -> NotebookNode:
    """A lesson notebook without its solutions and outputs (the source is left unchanged)."""
    notebook = copy.deepcopy(source)
    clear = ClearSolutions(code_stub={"python": PLACEHOLDER}, enforce_metadata=False)
    notebook, resources = clear.preprocess(notebook, {})
    notebook, _ = ClearOutputPreprocessor().preprocess(notebook, resources)
    return notebook


def write_learner_copies(source_dir: Path, target_dir: Path) -> list[Path]:
    """Write the learner copy of every notebook in ``source_dir`` to ``target_dir``."""
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("*.ipynb")):
        target = target_dir / path.name
        nbformat.write(learner_copy(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m labkit.student [SOURCE] [TARGET]``: write the learner copies, list them."""
    parser = argparse.ArgumentParser(prog="python -m labkit.student", description=__doc__)
    parser.add_argument("source", nargs="?", default="lessons", type=Path)
    parser.add_argument("target", nargs="?", default="build/student", type=Path)
    args = parser.parse_args(argv)
    for path in write_learner_copies(args.source, args.target):
        print(f"learner copy: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
