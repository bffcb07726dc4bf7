"""One progress printer for both backends, and the information lines of the `labkit` logger.

It prints with rich to stderr in a terminal (rich renders it as notebook output in Jupyter, so
nothing is painted as an error); ``quiet`` prints nothing, and neither does a printer whose
reader went away (``labkit up 2>&1 | head -2``): the work it reports on goes on. Inside
``reporting_to(sink)`` every StepList reports to that sink instead (a widget's progress bar);
after ``report_by_default(make)`` (a Jupyter kernel's widgets) each StepList that is not quiet
reports to a sink of its own from ``make()``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from rich.console import Console
from rich.markup import escape

log = logging.getLogger("labkit")


class _PipeSafeConsole(Console):
    """A rich Console that falls silent when its reader closes the pipe. Rich's default ends the
    program there, which would abandon (and tear down) the lab a step was building."""

    def on_broken_pipe(self) -> None:
        """Print nothing more; the caller carries on."""
        self.quiet = True


class ProgressSink(Protocol):
    """Where a StepList reports instead of printing: a step started, a step ended, a note."""

    def started(self, title: str, number: int, total: int | None) -> None:
        """A step began (``number`` of ``total``, when the total is known)."""

    def finished(self, title: str, took: float, ok: bool) -> None:
        """A step ended after ``took`` seconds, done or failed."""

    def note(self, text: str) -> None:
        """A command, a wait or a summary line, as plain text."""


_SINK: ContextVar[ProgressSink | None] = ContextVar("labkit_progress_sink", default=None)
_MAKE_SINK: list[Callable[[], ProgressSink]] = []
"""The default sink maker, if one was set (at most one)."""


def report_by_default(make: Callable[[], ProgressSink]) -> None:
    """From now on, a StepList outside ``reporting_to`` and not quiet reports to a sink of its
    own, made by ``make()`` at its first step (a progress bar in the cell that brings a lab up)."""
    _MAKE_SINK[:] = [make]


@contextmanager
def reporting_to(sink: ProgressSink) -> Iterator[None]:
    """Send every StepList's progress to ``sink`` (no rich lines) until the block ends: how a
    notebook widget shows a bring-up that happens deep inside a backend."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


class StepList:
    """Prints steps with their elapsed time; numbered ``[n/total]`` when the total is known.

    ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        total: int | None = None,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet: bool = False,
    ) -> None:
        self.total = total
        self.console = (
            None if quiet else (console or _PipeSafeConsole(stderr=True, highlight=False))
        )
        self.clock = clock
        self.started_at = clock()
        self.finished: list[tuple[str, float, bool]] = []
        self._own_sink: ProgressSink | None = None
        self._may_make_sink = not quiet

    def _sink(self) -> ProgressSink | None:
        """The sink of the ``reporting_to`` block, else this list's own default one, if any."""
        sink = _SINK.get()
        if sink is None and self._may_make_sink and _MAKE_SINK:
            if self._own_sink is None:
                self._own_sink = _MAKE_SINK[0]()
            sink = self._own_sink
        return sink

    def _print(self, text: str) -> None:
        if self.console is not None and self._sink() is None:
            self.console.print(text, soft_wrap=True)

    def _note(self, text: str) -> None:
        sink = self._sink()
        if sink is not None:
            sink.note(text)

    @contextmanager
    def step(self, title: str, number: int | None = None) -> Iterator[None]:
        """Time a step and mark it done or failed; numbered steps also announce their start
        (they are the slow ones)."""
        if number is None:
            number = len(self.finished) + 1
        label = f"[{number}/{self.total}] {escape(title)}" if self.total else escape(title)
        sink = self._sink()
        if sink is not None:
            sink.started(title, number, self.total)
        if self.total:
            self._print(f"[bold cyan]>[/] {label}")
        began = self.clock()
        try:
            yield
        except BaseException:
            took = self.clock() - began
            self.finished.append((title, took, False))
            if sink is not None:
                sink.finished(title, took, False)
            self._print(f"[bold red]✗[/] {label} [red]failed after {took:.2f} s[/]")
            raise
        now = self.clock()
        took = now - began
        self.finished.append((title, took, True))
        if sink is not None:
            sink.finished(title, took, True)
        self._print(
            f"[bold green]✓[/] {label} [dim]{took:.2f} s (total {now - self.started_at:.2f} s)[/]"
        )

    def command(self, text: str) -> None:
        """Show a command line as it runs (first line only for here-documents)."""
        self._note(f"$ {text.splitlines()[0]}")
        self._print(f"    [dim]$ {escape(text.splitlines()[0])}[/]")

    @contextmanager
    def waiting(self, title: str) -> Iterator[Callable[[list[str], float], None]]:
        """A spinner for a wait; call the yielded function with what is pending and seconds
        waited."""
        sink = self._sink()
        if sink is not None:
            yield lambda pending, waited: sink.note(f"waiting {waited:.0f} s: {title}")
            return
        if self.console is None:
            yield lambda pending, waited: None
            return
        with self.console.status(f"waiting: {escape(title)}") as status:

            def update(pending: list[str], waited: float) -> None:
                more = f" (+{len(pending) - 3} more)" if len(pending) > 3 else ""
                shown = "; ".join(pending[:3]) + more
                status.update(f"waiting {waited:.0f} s: {escape(title)} [dim]- {escape(shown)}[/]")

            yield update

    def say(self, text: str) -> None:
        """A line of its own (a summary, a note)."""
        self._note(text)
        self._print(escape(text))

    def summary(self) -> None:
        """One closing line with the total time."""
        total = self.clock() - self.started_at
        self._note(f"Done in {total:.0f} s ({len(self.finished)} steps).")
        self._print(f"[bold]Done in {total:.0f} s[/] ({len(self.finished)} steps).")


class _MessageHandler(logging.StreamHandler):
    """Writes to the stream current at each message (a notebook cell's stdout, a test's capture)."""

    def __init__(self, to_stdout: bool) -> None:
        super().__init__()
        self.to_stdout = to_stdout
        self.setFormatter(logging.Formatter("labkit: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout if self.to_stdout else sys.stderr
        super().emit(record)


def show_messages(to_stdout: bool = False) -> None:
    """Let the ``labkit`` logger's information reach a person as ``labkit: ...`` lines: on stderr
    in a terminal, on stdout in a notebook (where stderr is painted red). One handler, however
    often it is called; the latest call chooses the stream."""
    handler = next((h for h in log.handlers if isinstance(h, _MessageHandler)), None)
    if handler is None:
        log.addHandler(_MessageHandler(to_stdout))
    else:
        handler.to_stdout = to_stdout
    log.setLevel(logging.INFO)
