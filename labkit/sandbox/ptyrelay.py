"""A command on its own pseudo-terminal, relayed to this process's terminal (what a container
runtime does for ``kubectl exec -it``): this terminal goes raw, keystrokes (Ctrl-C included) go
to the command's terminal, its output comes back, window size changes follow."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import termios
import tty
from collections.abc import Sequence

CHUNK = 65536


def copy_window_size(source: int, target: int) -> None:
    """Give terminal ``target`` the rows and columns of terminal ``source``."""
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _pump(stdin: int, stdout: int, master: int) -> None:
    """Copy stdin to the command's terminal and its output to stdout until it closes."""
    readers = [stdin, master]
    while True:
        ready, _, _ = select.select(readers, [], [])
        if master in ready:
            try:
                data = os.read(master, CHUNK)
            except OSError:  # EIO: the command and all it started have closed the terminal
                return
            if not data:
                return
            _write_all(stdout, data)
        if stdin in ready:
            data = os.read(stdin, CHUNK)
            if data:
                _write_all(master, data)
            else:
                readers.remove(stdin)


def relay(argv: Sequence[str], stdin: int = 0, stdout: int = 1) -> int:
    """Run ``argv`` in a new session whose stdin, stdout and stderr are a new pseudo-terminal
    (the command makes it its controlling terminal, e.g. ``setsid -c``), relay it to the
    terminal on ``stdin``/``stdout``, and return the command's exit code."""
    master, slave = os.openpty()
    copy_window_size(stdin, master)
    try:
        proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
    finally:
        os.close(slave)
    saved = termios.tcgetattr(stdin)
    previous = signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin, master))
    try:
        tty.setraw(stdin, termios.TCSANOW)  # keeps what was typed ahead
        _pump(stdin, stdout, master)
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        os.close(master)
        if proc.poll() is None and not _exits_soon(proc):
            proc.kill()
    return proc.wait()


def _exits_soon(proc: subprocess.Popen[bytes], grace: float = 2.0) -> bool:
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        return False
    return True
