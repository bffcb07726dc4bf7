"""The class dashboard, live: the same report as `labkit report --class FOLDER`, read again from
the folder every few seconds (only when a learner's file changed) by a background thread, as
ipywidgets' own "background working" example updates a widget, and at once by a refresh button."""

from __future__ import annotations

import threading
from pathlib import Path

import ipywidgets as w

from labkit.course.class_folder import class_report, signature
from labkit.course.class_report import STUCK_AFTER, check_stuck_after
from labkit.errors import LabError
from labkit.widgets.dashboard_html import dashboard_html
from labkit.widgets.tables import message_html

EVERY_S = 10.0
"""How often the live dashboard looks at the folder: a class's attempts come minutes apart."""


class ClassDashboard(w.VBox):
    """A class folder's report (``<folder>/<learner>.jsonl``), refreshed every ``every`` seconds
    while ``live``; ``stop()`` (or closing the widget) ends the refreshing."""

    def __init__(
        self,
        folder: str | Path,
        stuck_after: int = STUCK_AFTER,
        every: float = EVERY_S,
        *,
        live: bool = True,
    ) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.folder = Path(folder).expanduser()
        self.stuck_after = check_stuck_after(stuck_after)
        if not isinstance(every, (int, float)) or isinstance(every, bool) or every <= 0:
            raise LabError(
                f"The refresh interval {every!r} is not a number of seconds.",
                f"Pass a positive number, e.g. every={EVERY_S:g}.",
            )
        self.every = float(every)
        self.view = w.HTML(layout=w.Layout(width="auto", min_width="0"))
        self.button = w.Button(
            description="refresh",
            tooltip="read the class folder again",
            layout=w.Layout(width="auto"),
        )
        self.button.on_click(lambda _button: self.refresh(force=True))
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._lock = threading.Lock()
        super().__init__([self.button, self.view], layout=w.Layout(width="100%"))
        self.add_class("lk-class-dashboard")
        self.refresh(force=True)
        if live:
            self.start()

    def refresh(self, *, force: bool = False) -> bool:
        """Read the folder again if a learner's file changed (or ``force``) and redraw; returns
        whether it redrew. A LabError (a bad file) shows as its two lines."""
        with self._lock:
            try:
                seen = signature(self.folder)
                if not force and seen == self._seen:
                    return False
                report = class_report(self.folder, self.stuck_after)
            except LabError as exc:
                self._seen = None
                self.view.value = message_html(exc.what, exc.fix, error=True)
                return True
            self._seen = seen
            self.view.value = dashboard_html(report, source=f"from {self.folder}")
            return True

    def start(self) -> None:
        """Refresh every ``every`` seconds in a background thread until ``stop()``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="labkit-class-dashboard", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the live refreshing (the button still refreshes)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def close(self) -> None:
        """Stop refreshing, then close the widget."""
        self.stop()
        super().close()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.refresh()
