"""A kubectl command line served from a Lab's objects (the sandbox has no API server to run the
real kubectl against)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from labkit.kubectl.args import parse
from labkit.kubectl.describe import describe
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.get import get
from labkit.kubectl.outcome import Outcome
from labkit.kubectl.writeverbs import find as find_write_verb
from labkit.lab import Lab


def serve(
    lab: Lab, argv: Sequence[str], now: datetime, stdin: Callable[[], str] = lambda: ""
) -> Outcome:
    """What kubectl would print for ``argv`` (without ``kubectl``) on this lab; ``now`` is the
    time ages count to, ``stdin`` what ``-f -`` reads."""
    try:
        write = find_write_verb(argv)
        if write is not None:
            return write[0](lab, write[1], stdin)
        request = parse(argv)
        return (get if request.verb == "get" else describe)(lab, request, now)
    except KubectlError as exc:
        text = exc.text.rstrip("\n") + "\n"
        return Outcome(text, "", 0) if exc.code == 0 else Outcome("", text, exc.code)
