"""A step list with elapsed times for `labkit up --backend kind`, printed with rich to stderr.

Each step prints when it starts and when it ends (with its duration); waits show a spinner
naming what is still not ready.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape


class StepList:
    """Prints numbered steps with their elapsed time; ``clock`` is injectable for tests."""

    def __init__(self, total: int, console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.console = console or Console(stderr=True, highlight=False)
        self.clock = clock
        self.started_at = clock()
        self.finished: list[tuple[str, float, bool]] = []

    @contextmanager
    def step(self, number: int, title: str) -> Iterator[None]:
        """Announce a step, time it, and mark it done or failed."""
        label = f"[{number}/{self.total}] {escape(title)}"
        self.console.print(f"[bold cyan]>[/] {label}")
        began = self.clock()
        try:
            yield
        except BaseException:
            took = self.clock() - began
            self.finished.append((title, took, False))
            self.console.print(f"[bold red]x[/] {label} [red]failed after {took:.1f} s[/]")
            raise
        took = self.clock() - began
        self.finished.append((title, took, True))
        self.console.print(f"[bold green]v[/] {label} [dim]({took:.1f} s)[/]")

    def command(self, text: str) -> None:
        """Show a command line as it runs (first line only for here-documents)."""
        self.console.print(f"    [dim]$ {escape(text.splitlines()[0])}[/]", soft_wrap=True)

    @contextmanager
    def waiting(self, title: str) -> Iterator[Callable[[list[str], float], None]]:
        """A spinner for a wait; call the yielded function with what is pending and seconds waited."""
        with self.console.status(f"waiting: {escape(title)}") as status:
            def update(pending: list[str], waited: float) -> None:
                shown = "; ".join(pending[:3]) + (f" (+{len(pending) - 3} more)" if len(pending) > 3 else "")
                status.update(f"waiting {waited:.0f} s: {escape(title)} [dim]- {escape(shown)}[/]")
            yield update

    def summary(self) -> None:
        """One closing line with the total time."""
        total = self.clock() - self.started_at
        self.console.print(f"[bold]Done in {total:.0f} s[/] ({len(self.finished)} steps).")
