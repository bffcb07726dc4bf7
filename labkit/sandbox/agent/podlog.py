"""What each pod's server printed: a few hundred lines per pod, kept in the agent's memory and
read back by ``kubectl logs`` (through the ``logs`` control command). Pure but for the clock."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

LINES_PER_POD = 200
"""How many lines a pod keeps (the oldest go first), so a busy lab's agent stays small."""


def go_log_stamp(epoch: float) -> str:
    """The date and time Go's ``log`` package puts before each line (UTC, as in a container)."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(epoch))


class PodLogs:
    """The last :data:`LINES_PER_POD` lines of each pod, by ``namespace/name``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lines: dict[str, deque[str]] = {}

    def record(self, pod: str, line: str, *, stamped: bool = True) -> None:
        """Add one line to ``pod``'s log, after Go's date and time unless ``stamped`` is false."""
        text = f"{go_log_stamp(self._clock())} {line}" if stamped else line
        self._lines.setdefault(pod, deque(maxlen=LINES_PER_POD)).append(text)

    def recorder(self, pod: str) -> Callable[[str], None]:
        """A function that logs a line for ``pod``, for the servers that answer it."""
        return lambda line: self.record(pod, line)

    def lines(self, pod: str) -> list[str]:
        """``pod``'s lines, oldest first (none for a pod that logged nothing)."""
        return list(self._lines.get(pod, ()))

    def keep_only(self, pods: Iterable[str]) -> None:
        """Forget the pods not in ``pods`` (deleted ones: a pod made again starts a new log)."""
        kept = set(pods)
        for pod in [p for p in self._lines if p not in kept]:
            del self._lines[pod]
