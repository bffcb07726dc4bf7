"""The lab panel: backend, CNI, capabilities, nodes, pods and Services in one view (the same
`status_view` as `labkit status`), with up / down / reset buttons whose bring-up drives a
progress bar, and a refresh button."""

from __future__ import annotations

import time
from collections.abc import Callable

import ipywidgets as w

from labkit.console import reporting_to
from labkit.errors import LabError
from labkit.lab import Lab, backend_module, connect_backend, down, find_backends
from labkit.status import status_view
from labkit.values import DEFAULT_CNI, DEFAULT_LAB_NAME
from labkit.widgets.progress import ProgressBar
from labkit.widgets.tables import message_html, status_html


def attached(name: str) -> Lab | None:
    """The running lab ``name`` on whichever backend holds it, or None."""
    for backend in find_backends(name):
        lab = backend_module(backend).attach(name)
        if lab is not None:
            return lab
    return None


class LabPanel(w.VBox):
    """Lab ``name`` at a glance, with buttons to bring it up (``cni`` on ``backend``), take it
    down, reset it (down, then up afresh) and refresh the view."""

    def __init__(
        self,
        name: str = DEFAULT_LAB_NAME,
        cni: str = DEFAULT_CNI,
        backend: str = "auto",
        *,
        lab: Lab | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.cni, self.backend = name, cni, backend
        self.lab = lab
        self.progress = ProgressBar(clock)
        self.status = w.HTML(layout=w.Layout(width="auto", min_width="0"))
        self.messages = w.Output(layout=w.Layout(width="auto"))
        self.buttons = {
            label: w.Button(description=label, tooltip=tip, layout=w.Layout(width="auto"))
            for label, tip in (
                ("up", f"bring lab {name!r} up with {cni} (or attach to it)"),
                ("down", f"take lab {name!r} down"),
                ("reset", f"take lab {name!r} down and bring it up afresh"),
                ("refresh", "read the lab again"),
            )
        }
        actions = {"up": self.up, "down": self.down, "reset": self.reset, "refresh": self.refresh}
        for label, button in self.buttons.items():
            button.on_click(lambda _button, act=actions[label]: act())
        # The whole output's width (a cell output's top widget has no side margins), so the
        # tables fit at 1024 px; a narrower window scrolls them (status_html).
        super().__init__(
            [w.HBox(list(self.buttons.values())), self.progress, self.status, self.messages],
            layout=w.Layout(width="100%"),
        )
        self.add_class("lk-panel")
        self.refresh()

    @classmethod
    def of(cls, lab: Lab) -> LabPanel:
        """The panel of a lab already connected (``labkit.connect()``'s, or its ``.lab``)."""
        inner: Lab = getattr(lab, "lab", lab)
        return cls(inner.name, inner.cni, inner.backend, lab=inner)

    def refresh(self) -> None:
        """Read the lab again (attaching to it if it came up elsewhere) and redraw the view."""
        if self.lab is None:
            self.lab = attached(self.name)
        if self.lab is None:
            self.status.value = message_html(f"Lab {self.name!r} is not running: press up.")
            return
        self.status.value = status_html(status_view(self.lab))

    def up(self) -> None:
        """Bring the lab up (or attach to it); its steps drive the bar."""
        self._run("up", self._bring_up)

    def down(self) -> None:
        """Take the lab down from whichever backend holds it."""
        self._run("down", self._take_down)

    def reset(self) -> None:
        """Take the lab down, then bring it up afresh with the same CNI."""

        def both() -> None:
            self._take_down()
            self._bring_up()

        self._run("reset", both)

    def _bring_up(self) -> None:
        self.lab = connect_backend(self.backend, self.cni, self.name)

    def _take_down(self) -> None:
        down(self.name)
        self.lab = None

    def _run(self, what: str, action: Callable[[], None]) -> None:
        """Run an action with the buttons disabled, its progress on the bar and its messages
        (the ``labkit:`` lines) in the panel; a LabError is one line, never a traceback."""
        for button in self.buttons.values():
            button.disabled = True
        self.progress.begin(what)
        self.messages.clear_output()
        ok = False
        try:
            with self.messages, reporting_to(self.progress):
                action()
            ok = True
        except LabError as exc:
            self.status.value = message_html(exc.what, exc.fix, error=True)
        finally:
            self.progress.end(what, ok)
            for button in self.buttons.values():
                button.disabled = False
        if ok:
            self.refresh()
