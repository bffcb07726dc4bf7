"""What a kubectl command printed and how it exited."""

from __future__ import annotations

from typing import NamedTuple


class Outcome(NamedTuple):
    """stdout, stderr and the exit code of one served command."""

    stdout: str
    stderr: str
    code: int
