"""``labkit shell [--name LAB]``: the learner's own shell ($SHELL, else bash) in which
``kubectl`` means ``labkit kubectl --name LAB``, through a small ``kubectl`` script in a
temporary folder put first on PATH and removed when the shell ends."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from labkit.errors import LabError
from labkit.inputs import dns1123_label, shown

HANG_UP_WAIT_S = 5.0
"""How long a hung-up shell may take to end before it is killed."""


def wrapper_script(python: str, lab_name: str) -> str:
    """The ``kubectl`` script: this Python's ``labkit kubectl`` aimed at the lab."""
    return (
        "#!/bin/sh\n"
        f"exec {shlex.quote(python)} -m labkit.cli kubectl --name {shlex.quote(lab_name)} "
        '"$@"\n'
    )


def banner(lab_name: str) -> str:
    """The one line printed as the shell opens."""
    return (
        f"labkit shell: `kubectl` here means `labkit kubectl --name {lab_name}` "
        "(try `kubectl get pods -A`); `exit` leaves."
    )


def shell_argv(environ: Mapping[str, str]) -> list[str]:
    """The learner's shell: $SHELL, else bash, else sh."""
    return [environ.get("SHELL") or shutil.which("bash") or "/bin/sh"]


def shell_env(environ: Mapping[str, str], folder: str, lab_name: str) -> dict[str, str]:
    """The shell's environment: ``folder`` (holding the script) first on PATH, the lab named."""
    path = environ.get("PATH") or os.defpath
    return {**environ, "PATH": f"{folder}{os.pathsep}{path}", "LABKIT_LAB": lab_name}


def open_shell(lab_name: str, environ: Mapping[str, str] = os.environ) -> int:
    """Run the shell until it exits and return its exit code; the script's folder goes with it."""
    if dns1123_label(lab_name) is not None:
        raise LabError(
            f"{shown(lab_name)} is not a lab name.",
            "Name the lab as `labkit up --name` did: lower-case letters, digits and '-'.",
        )
    with tempfile.TemporaryDirectory(prefix="labkit-shell-") as folder:
        script = Path(folder) / "kubectl"
        script.write_text(wrapper_script(sys.executable, lab_name), encoding="utf-8")
        script.chmod(0o755)
        print(banner(lab_name), file=sys.stderr, flush=True)
        # A closed terminal (JupyterLab's, or a window) hangs up: end the shell, then tidy up.
        # While the shell starts, a hang-up is only noted (raised once ``proc`` is known, so the
        # shell is ended too); an exec resets a caught signal, so the shell gets its default.
        pending: list[int] = []
        previous = {
            number: signal.signal(number, lambda n, _f: pending.append(n))
            for number in (signal.SIGHUP, signal.SIGTERM)
        }
        proc: subprocess.Popen[bytes] | None = None
        try:
            proc = subprocess.Popen(shell_argv(environ), env=shell_env(environ, folder, lab_name))
            # Ctrl-C is the shell's; ignored only now, as an ignored signal passes to a child.
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
            for number in (signal.SIGHUP, signal.SIGTERM):
                signal.signal(number, _end)
            if pending:
                raise SystemExit(128 + pending[0])
            return proc.wait()
        finally:
            if proc is not None and proc.poll() is None:
                _hang_up(proc)
            for number, handler in previous.items():
                signal.signal(number, handler)


def _hang_up(proc: subprocess.Popen[bytes]) -> None:
    """End the shell as a closed terminal would: SIGHUP (an interactive bash ignores SIGTERM),
    then SIGKILL if it is still there after 5 s."""
    proc.send_signal(signal.SIGHUP)
    try:
        proc.wait(HANG_UP_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _end(number: int, _frame: object) -> None:
    """A hang-up or terminate ends ``labkit shell`` through its cleanup, not around it."""
    raise SystemExit(128 + number)
