"""The pseudo-terminal relay behind `kubectl exec -it` on the sandbox: the command gets a
terminal of its own with our window size, its output and exit code come back, typed input
reaches it, and our terminal's mode is restored afterwards."""

from __future__ import annotations

import fcntl
import os
import struct
import termios

from labkit.sandbox.ptyrelay import relay


def _terminal(rows: int, cols: int) -> tuple[int, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


def test_the_command_runs_on_a_terminal_of_its_own_and_its_exit_code_comes_back():
    keyboard, ours = _terminal(30, 100)
    before = termios.tcgetattr(ours)
    read_end, write_end = os.pipe()
    os.write(keyboard, b"typed\n")
    code = relay(
        ["sh", "-c", "read line; echo got $line; stty size; test -t 0 && echo tty; exit 3"],
        stdin=ours,
        stdout=write_end,
    )
    os.close(write_end)
    out = os.read(read_end, 4096).decode()
    assert code == 3
    assert "got typed" in out and "30 100" in out and "tty" in out
    assert termios.tcgetattr(ours) == before
    for fd in (keyboard, ours, read_end):
        os.close(fd)
