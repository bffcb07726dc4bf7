"""Work inside a lab's named network namespaces: enter one with the current thread, open a
socket there, or run a command there with ``ip netns exec`` (a pod's or node's command also
confined by bubblewrap, :mod:`labkit.sandbox.confine`).

Only namespaces whose names start with ``lk-`` are accepted, so nothing here can be pointed at
the host's namespace or at someone else's by mistake.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from labkit.errors import LabError
from labkit.sandbox.confine import ROOT_ENTRIES, Confinement, bwrap_argv
from labkit.values import ExecResult

NETNS_DIR = Path("/run/netns")
NAME_PREFIX = "lk-"
CLONE_NEWNET = 0x40000000
TIMEOUT_RETURNCODE = 124
"""Return code of a command ``run_in_netns`` stopped at its timeout (as coreutils ``timeout``)."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


def check_netns_name(name: str) -> str:
    """Refuse a name that is not one of the lab's namespaces (``lk-...``, no path characters)."""
    if (
        not isinstance(name, str)
        or not name.startswith(NAME_PREFIX)
        or "/" in name
        or "\0" in name
        or len(name) > 200
    ):
        raise LabError(
            f"{name!r} is not a lab network namespace name.",
            f"Use a name that starts with {NAME_PREFIX!r}, as the lab creates them.",
        )
    return name


def netns_path(name: str) -> str:
    """The bind-mounted file that ``ip netns add <name>`` created for a namespace."""
    return os.path.join(NETNS_DIR, check_netns_name(name))


def netns_exists(name: str) -> bool:
    """Whether the named lab namespace exists right now."""
    return os.path.exists(netns_path(name))


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns(CLONE_NEWNET) failed: {os.strerror(code)}")


def _open_netns(name: str) -> int:
    try:
        return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LabError(
            f"The network namespace {name!r} does not exist.",
            "Bring the lab up (`labkit up`) or check the pod/node name; "
            "`ip netns list` shows the namespaces that exist.",
        ) from None


@contextlib.contextmanager
def enter_netns(name: str) -> Iterator[None]:
    """Move the current thread (only) into namespace ``name`` for the ``with`` block.

    The thread's previous namespace is always restored, even when the block raises.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = _open_netns(name)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            # Failing to return would leave this thread in a lab namespace: never ignore it.
            _setns(original)
    finally:
        os.close(original)


def socket_in_netns(
    name: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A new socket that belongs to namespace ``name`` for its whole life, wherever it is used."""
    with enter_netns(name):
        return socket.socket(family, type, proto)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_confined(
    name: str,
    confinement: Confinement,
    argv: str | Sequence[str],
    timeout: float = 10.0,
    input: str | None = None,
) -> ExecResult:
    """Run a pod's or node's command inside namespace ``name``, confined by bubblewrap."""
    if shutil.which("bwrap") is None:
        raise LabError(
            "Pod and node commands run confined by bubblewrap (`bwrap`), which is not installed.",
            "Run `sudo make setup`, or `sudo apt-get install bubblewrap`.",
        )
    return run_in_netns(name, argv, timeout, input, wrapper=bwrap_argv(confinement, host_root()))


def run_confined_attached(
    name: str, confinement: Confinement, argv: Sequence[str], tty: bool
) -> int:
    """Run a pod's command inside namespace ``name``, confined as ``run_confined`` does, with
    this process's stdin, stdout and stderr; its exit code. With ``tty`` (stdin a terminal) the
    command gets a terminal of its own inside the pod, as ``kubectl exec -it`` gives it, and
    this one is relayed to it (:mod:`labkit.sandbox.ptyrelay`): its session, job control and
    Ctrl-C stay inside the pod's PID namespace. Without, Ctrl-C reaches the command only."""
    if shutil.which("bwrap") is None:
        raise LabError(
            "Pod and node commands run confined by bubblewrap (`bwrap`), which is not installed.",
            "Run `sudo make setup`, or `sudo apt-get install bubblewrap`.",
        )
    command = [str(a) for a in argv]
    if not command:
        raise LabError("No command was given to run.", "Pass a command, e.g. ['sh'].")
    if not netns_exists(name):
        _open_netns(name)  # raises the LabError naming the namespace
    confined = ["ip", "netns", "exec", name, *bwrap_argv(confinement, host_root())]
    if tty:
        from labkit.sandbox.ptyrelay import relay

        # setsid -c: a session inside the pod whose controlling terminal is the new one.
        return relay([*confined, "setsid", "--wait", "--ctty", *command])
    proc = subprocess.Popen([*confined, *command])
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child was forked before this
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        if proc.poll() is None:  # this process was interrupted otherwise: end the command
            proc.kill()
            proc.wait()


@functools.cache
def host_root() -> Mapping[str, str | None]:
    """What the host's top-level tool folders are: symlink targets, or None for real folders."""
    found: dict[str, str | None] = {}
    for entry in ROOT_ENTRIES:
        path = os.path.join("/", entry)
        if os.path.islink(path):
            found[entry] = os.readlink(path)
        elif os.path.isdir(path):
            found[entry] = None
    return found


def run_in_netns(
    name: str,
    argv: str | Sequence[str],
    timeout: float = 10.0,
    input: str | None = None,
    *,
    wrapper: Sequence[str] = (),
) -> ExecResult:
    """Run a command inside namespace ``name`` with ``ip netns exec`` and capture its output.

    ``ip netns exec`` also bind-mounts ``/etc/netns/<name>/*`` (the pod's resolv.conf), so
    ``getent``, ``dig`` and ``curl`` resolve as the pod would. ``wrapper`` (a ``bwrap ... --``)
    runs the command. On timeout the whole process group is killed and the result has return
    code 124 and says so in stderr.
    """
    command = tuple(shlex.split(argv)) if isinstance(argv, str) else tuple(str(a) for a in argv)
    if not command:
        raise LabError("No command was given to run.", "Pass a command, e.g. ['ip', 'addr'].")
    if not netns_exists(name):
        _open_netns(name)  # raises the LabError naming the namespace
    proc = subprocess.Popen(
        ["ip", "netns", "exec", name, *wrapper, *command],
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        note = (
            f"labkit: `{shlex.join(command)}` did not finish within {timeout:g} s and was stopped."
        )
        return ExecResult(
            command,
            TIMEOUT_RETURNCODE,
            stdout or "",
            ((stderr or "") + ("\n" if stderr and not stderr.endswith("\n") else "") + note),
        )
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return ExecResult(command, proc.returncode, stdout, stderr)


def describe_socket_error(code: int) -> str:
    """Short words for an errno seen on a lab socket (``ECONNREFUSED``: ``connection
    refused``)."""
    names = {
        errno.ECONNREFUSED: "connection refused",
        errno.EHOSTUNREACH: "no route to host",
        errno.ENETUNREACH: "network unreachable",
        errno.ETIMEDOUT: "timed out",
        errno.ECONNRESET: "connection reset",
        errno.EADDRINUSE: "address already in use",
        errno.EADDRNOTAVAIL: "address not available",
    }
    return names.get(code, os.strerror(code))
