"""Every way out of a Kind bring-up, so what it created is removed: an exception (Ctrl-C and a
test timeout's included) unwinds to the caller's handler, SIGTERM and SIGHUP are turned into
SystemExit so they unwind too, and the interpreter exiting while work is unfinished (a notebook
kernel shut down mid-`up`) runs the cleanup from atexit."""

from __future__ import annotations

import atexit
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""The signals a CI runner, a terminal closing or `kill` send before SIGKILL."""


class Once:
    """A cleanup armed once there is something to clean: it then runs at most once, when called
    (a failure handler, a pytest finalizer) or at interpreter exit; never before ``arm``, nor after
    ``disarm`` (the work succeeded)."""

    def __init__(
        self,
        cleanup: Callable[[], None],
        register: Callable[[Callable[[], None]], object] = atexit.register,
        unregister: Callable[[Callable[[], None]], object] = atexit.unregister,
    ) -> None:
        self._cleanup = cleanup
        self._register = register
        self._unregister = unregister
        self._lock = threading.Lock()
        self.armed = False

    def arm(self) -> None:
        """From now on a call, or the interpreter exiting, runs the cleanup."""
        with self._lock:
            self.armed = True
        self._register(self)

    def disarm(self) -> None:
        """Never run (the work succeeded, or the cleanup already ran)."""
        with self._lock:
            self.armed = False
        self._unregister(self)

    def __call__(self) -> None:
        with self._lock:
            run, self.armed = self.armed, False
        if run:
            self._unregister(self)
            self._cleanup()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def signals_as_exit(signals: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise SystemExit(128 + signal) in the main thread,
    so `finally` blocks, failure handlers and pytest's finalizers run; the previous handlers
    come back afterwards. Elsewhere than the main thread (where Python delivers signals) it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _exit_on_signal) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
