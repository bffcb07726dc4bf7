"""One progress printer for both backends, and the information lines of the `labkit` logger.

It prints with rich to stderr in a terminal (rich renders it as notebook output in Jupyter, so
nothing is painted as an error); ``quiet`` prints nothing, and neither does a printer whose
reader went away (``labkit up 2>&1 | head -2``): the work it reports on goes on.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

log = logging.getLogger("labkit")


class _PipeSafeConsole(Console):
    """A rich Console that falls silent when its reader closes the pipe. Rich's default ends the
    program there, which would abandon (and tear down) the lab a step was building."""

    def on_broken_pipe(self) -> None:
        """Print nothing more; the caller carries on."""
        self.quiet = True


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

    def _print(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, soft_wrap=True)

    @contextmanager
    def step(self, title: str, number: int | None = None) -> Iterator[None]:
        """Time a step and mark it done or failed; numbered steps also announce their start
        (they are the slow ones)."""
        if number is None:
            number = len(self.finished) + 1
        label = f"[{number}/{self.total}] {escape(title)}" if self.total else escape(title)
        if self.total:
            self._print(f"[bold cyan]>[/] {label}")
        began = self.clock()
        try:
            yield
        except BaseException:
            took = self.clock() - began
            self.finished.append((title, took, False))
            self._print(f"[bold red]✗[/] {label} [red]failed after {took:.2f} s[/]")
            raise
        now = self.clock()
        took = now - began
        self.finished.append((title, took, True))
        self._print(
            f"[bold green]✓[/] {label} [dim]{took:.2f} s (total {now - self.started_at:.2f} s)[/]"
        )

    def command(self, text: str) -> None:
        """Show a command line as it runs (first line only for here-documents)."""
        self._print(f"    [dim]$ {escape(text.splitlines()[0])}[/]")

    @contextmanager
    def waiting(self, title: str) -> Iterator[Callable[[list[str], float], None]]:
        """A spinner for a wait; call the yielded function with what is pending and seconds
        waited."""
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
        self._print(escape(text))

    def summary(self) -> None:
        """One closing line with the total time."""
        total = self.clock() - self.started_at
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
