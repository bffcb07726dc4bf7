"""One error type for every expected failure: what went wrong, and what to do about it.

Modelled on kind's errors: a learner reads one sentence of cause and one of fix, plus the
output of the command that failed when there was one, and never a traceback.
"""

from __future__ import annotations


class LabError(Exception):
    """An expected failure with a fix the user can act on."""

    def __init__(self, what: str, fix: str, output: str | None = None) -> None:
        self.what = what.strip()
        self.fix = fix.strip()
        self.output = (output or "").strip() or None
        super().__init__(self.render())

    def render(self) -> str:
        """The message as shown to a person: problem, fix, then any captured output."""
        text = f"{self.what}\nFix: {self.fix}"
        if self.output:
            text += "\n--- output ---\n" + self.output
        return text

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for an exception's own traceback: in a notebook a LabError shows as its
        problem and fix, as the CLI prints it, and is still the cell's error (Run All stops, nbval
        fails), instead of a long traceback through labkit's internals."""
        return f"labkit: {self.render()}".splitlines()
