"""The lab's side of the agent: start it as a detached process, send it control commands, find
and stop it (also after a crash). Imports nothing of the agent's servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from labkit.errors import LabError
from labkit.sandbox.agent.files import LOG_FILE, PID_FILE, SOCKET_FILE, log_tail, read_pid

AGENT_MODULE = "labkit.sandbox.agent"  # run with -m; also how a stray agent is recognised
PING_TIMEOUT_S = 0.5


def agent_command(state_dir: str, cmd: str, timeout: float = 10.0) -> str:
    """Send one control command to the lab's agent and return its one-line answer."""
    return AgentRequest(state_dir, cmd, timeout).answer()


class AgentRequest:
    """One control command sent to the lab's agent now, its answer read by ``answer()`` later:
    the caller works meanwhile (a change loads its rules while the agent reloads, issue 18).
    Both steps raise the LabError ``agent_command`` names the failure with."""

    def __init__(self, state_dir: str, cmd: str, timeout: float = 10.0) -> None:
        self._state_dir = state_dir
        self._cmd = cmd.strip()
        self._timeout = timeout
        self._path = os.path.join(os.path.abspath(state_dir), SOCKET_FILE)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        with self._failures(close=False):
            self._sock.connect(self._path)
            self._sock.sendall(self._cmd.encode() + b"\n")

    def answer(self) -> str:
        """The agent's one-line answer (waits for it; the socket is closed afterwards)."""
        data = b""
        with self._failures(close=True):
            while not data.endswith(b"\n"):
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data:
            raise LabError(
                f"The lab's workload agent closed the connection without answering {self._cmd!r}.",
                f"Look at {os.path.join(self._state_dir, LOG_FILE)} for the reason.",
            )
        return data.decode("utf-8", "replace").strip()

    @contextlib.contextmanager
    def _failures(self, close: bool) -> Iterator[None]:
        """Name an agent that is gone or silent as a LabError; close the socket on any failure
        (and always when ``close``)."""
        try:
            yield
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            self._sock.close()
            raise LabError(
                f"The lab's workload agent is not running (nothing answers on {self._path}).",
                "Run `labkit down` and `labkit up` to restart the lab.",
            ) from None
        except TimeoutError:
            self._sock.close()
            raise LabError(
                f"The lab's workload agent did not answer {self._cmd!r} within "
                f"{self._timeout:g} s.",
                f"Look at {os.path.join(self._state_dir, LOG_FILE)}; `labkit down` then "
                "`labkit up` restarts it.",
            ) from None
        except BaseException:
            self._sock.close()
            raise
        if close:
            self._sock.close()


def answers_ping(state_dir: str) -> bool:
    """Whether an agent answers on ``state_dir``'s control socket right now."""
    try:
        return agent_command(state_dir, "ping", timeout=PING_TIMEOUT_S) == "pong"
    except LabError:
        return False


def agent_listens(state_dir: str) -> bool:
    """Whether a live process holds the lab's control socket: one that died (``kill -9``) leaves
    a socket file that refuses connections. A busy agent counts as alive, unlike a late ping."""
    path = os.path.join(os.path.abspath(state_dir), SOCKET_FILE)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(PING_TIMEOUT_S)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _is_our_agent(pid: int, state_dir: str) -> bool:
    """Whether ``pid`` is a live (not zombie) agent process serving ``state_dir``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except (OSError, IndexError):
        return False
    return (
        state != "Z"
        and AGENT_MODULE.encode() in argv
        and os.fsencode(os.path.abspath(state_dir)) in argv
    )


def agent_pids(state_dir: str) -> list[int]:
    """Live agent processes serving ``state_dir``: the pid file's, plus any found by their exact
    command line (after a crash that lost the pid file)."""
    state_dir = os.path.abspath(state_dir)
    found = []
    pid = read_pid(state_dir)
    if pid and _is_our_agent(pid, state_dir):
        found.append(pid)
    for entry in os.listdir("/proc"):
        if (
            entry.isdigit()
            and int(entry) not in found
            and int(entry) != os.getpid()
            and _is_our_agent(int(entry), state_dir)
        ):
            found.append(int(entry))
    return found


def _launch(state_dir: str, timeout: float) -> int:
    """Run the agent's launcher (which forks the agent and exits) and return its exit status."""
    package_root = Path(os.path.abspath(__file__)).parents[3]  # the directory holding labkit/
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(package_root), env.get("PYTHONPATH")) if p)
    with open(os.path.join(state_dir, LOG_FILE), "ab") as log_fh:
        launcher = subprocess.Popen(
            [sys.executable, "-m", AGENT_MODULE, "--state-dir", state_dir, "--daemonize"],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=log_fh,
            cwd="/",
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    try:
        return launcher.wait(timeout)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()
        return -1


def start_agent(state_dir: str, timeout: float = 5.0) -> int:
    """Start the lab's agent detached (its own session) and return its pid once it answers ``ping``.

    An agent already answering for ``state_dir`` is kept and its pid returned.
    """
    state_dir = os.path.abspath(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    if answers_ping(state_dir):
        pid = read_pid(state_dir)
        if pid and _is_our_agent(pid, state_dir):
            return pid
    stop_agent(state_dir)  # a stale or hung agent, and its files, from an earlier run
    if _launch(state_dir, timeout) != 0:
        raise LabError(
            "The lab's workload agent could not start.",
            "Read the log below; `labkit down` then `labkit up` retries.",
            output=log_tail(state_dir),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read_pid(state_dir)
        if pid is None or not _is_our_agent(pid, state_dir):
            break  # the launcher wrote the pid before exiting: the agent has died since
        if answers_ping(state_dir):
            return pid
        time.sleep(0.01)
    stop_agent(state_dir)
    raise LabError(
        f"The lab's workload agent stopped or did not answer within {timeout:g} s.",
        "Read the log below; `labkit down` then `labkit up` retries.",
        output=log_tail(state_dir),
    )


def _wait_gone(pids: list[int], state_dir: str, grace: float) -> list[int]:
    """Wait up to ``grace`` s for ``pids`` to exit; the ones still alive."""
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.005)
        alive = [p for p in alive if _is_our_agent(p, state_dir)]
    return alive


def stop_agent(state_dir: str, grace: float = 1.0) -> bool:
    """Stop the lab's agent (SIGTERM, then SIGKILL after ``grace`` s), also after a crash.

    Idempotent: returns whether a process was found. Removes the socket and pid files.
    """
    state_dir = os.path.abspath(state_dir)
    if not os.path.isdir(state_dir):
        return False
    pids = agent_pids(state_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    alive = _wait_gone(pids, state_dir, grace)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(alive, state_dir, grace)
    for name in (SOCKET_FILE, PID_FILE):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(os.path.join(state_dir, name))
    return bool(pids)
