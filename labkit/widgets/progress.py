"""A progress bar that a bring-up's StepList drives (``labkit.console.reporting_to``): a step per
tick, the step's title and the elapsed time beside it, so no long rich line is clipped."""

from __future__ import annotations

import html
import time
from collections.abc import Callable

import ipywidgets as w


def step_text(done: int, total: int | None, title: str, elapsed: float) -> str:
    """``step 3/7: Starting system pods · 1.2 s``; without a known total, ``step 3: ...``."""
    of = f"/{total}" if total else ""
    return f"step {done}{of}: {title} · {elapsed:.1f} s"


class _Line(w.HTML):
    """A line of text that wraps in a narrow window (a Label would cut it off with an ellipsis)."""

    @property
    def text(self) -> str:
        """The line as plain text."""
        return html.unescape(self.value)

    @text.setter
    def text(self, text: str) -> None:
        self.value = html.escape(text)


class ProgressBar(w.VBox):
    """A StepList sink: the bar fills as steps end (the total, when unknown, grows one ahead of
    the steps seen), the line below names the current step and the time since ``begin``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="auto"))
        self.line = _Line(layout=w.Layout(width="auto"))
        self.started_at = clock()
        self.done = 0
        self.total: int | None = None
        super().__init__([self.bar, self.line], layout=w.Layout(width="auto"))
        self.add_class("lk-progress")

    def begin(self, what: str) -> None:
        """Start timing a new action (``up``, ``down``, ``reset``) with an empty bar."""
        self.started_at, self.done, self.total = self.clock(), 0, None
        self.bar.bar_style, self.bar.value, self.bar.max = "", 0, 1
        self.line.text = what

    def elapsed(self) -> float:
        """Seconds since ``begin``."""
        return self.clock() - self.started_at

    def started(self, title: str, number: int, total: int | None) -> None:
        """A step began: name it; the bar's end is the total, or one past this step."""
        self.total = total
        self.bar.max = max(total or number, self.done + 1, 1)
        self.line.text = step_text(number, total, title, self.elapsed())

    def finished(self, title: str, took: float, ok: bool) -> None:
        """A step ended: one more tick, red when it failed."""
        self.done += 1
        self.bar.max = max(self.bar.max, self.done)
        self.bar.value = self.done
        if not ok:
            self.bar.bar_style = "danger"
        mark = "done" if ok else "FAILED"
        self.line.text = f"{step_text(self.done, self.total, title, self.elapsed())} ({mark})"

    def note(self, text: str) -> None:
        """A command or a wait: shown on the line with the elapsed time."""
        self.line.text = f"{text} · {self.elapsed():.1f} s"

    def end(self, what: str, ok: bool) -> None:
        """The action ended: a full bar (green, or red when it failed) and the total time."""
        self.bar.value = self.bar.max
        self.bar.bar_style = "success" if ok else "danger"
        self.line.text = f"{what} in {self.elapsed():.1f} s"
