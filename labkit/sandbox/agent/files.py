"""The agent's files in a lab's state directory (``/run/labkit/<lab_name>``), and its pid file."""

from __future__ import annotations

import contextlib
import os

SPEC_FILE = "workloads.json"  # what to serve, written by the lab's process
SOCKET_FILE = "agent.sock"  # the control socket: ping, reload, status, stop
PID_FILE = "agent.pid"
LOG_FILE = "agent.log"


def write_pid(state_dir: str, pid: int) -> None:
    """Record ``pid`` as the agent serving ``state_dir`` (atomically, so readers never see half)."""
    path = os.path.join(state_dir, PID_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{pid}\n")
    os.replace(tmp, path)


def read_pid(state_dir: str) -> int | None:
    """The pid the pid file names, or None when there is no readable pid file."""
    try:
        with open(os.path.join(state_dir, PID_FILE), encoding="utf-8") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def remove_own_pid(state_dir: str) -> None:
    """Remove the pid file if it names this process (an exiting agent must not remove another's)."""
    if read_pid(state_dir) == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(state_dir, PID_FILE))


def log_tail(state_dir: str, lines: int = 20) -> str:
    """The last ``lines`` lines of the agent's log, for an error message."""
    try:
        with open(os.path.join(state_dir, LOG_FILE), encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return "(no agent log)"
