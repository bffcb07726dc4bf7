"""A JupyterLab server for the browser test: loopback only, a token, and every file of its own
(config, settings, runtime files, the lessons' copy) in one temporary folder, so nothing of the
user's is read or touched."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
START_S = 120.0
STOP_S = 30.0

# JupyterLab settings for a reproducible page: light theme, every cell in the DOM (no windowing,
# so the assertions see every output and a screenshot shows every cell), no blank page after the
# last cell, the kernel started without asking, and no news or update checks (test traffic stays
# on loopback).
LAB_SETTINGS: dict[str, dict[str, object]] = {
    "@jupyterlab/apputils-extension/themes": {"theme": "JupyterLab Light"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker": {
        "windowingMode": "none",
        "scrollPastEnd": False,
        "autoStartDefaultKernel": True,
    },
}


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab server: where it answers, its token, and the folder it serves."""

    url: str
    token: str
    root_dir: Path

    def api(self, method: str, path: str) -> object:
        """Call the server's REST API; the decoded JSON answer (None when empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session's kernel, so a lesson's kernel does not outlive its tab."""
        sessions = self.api("GET", "/api/sessions")
        assert isinstance(sessions, list)
        for session in sessions:
            self.api("DELETE", f"/api/sessions/{session['id']}")


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_settings(config_dir: Path) -> None:
    """JupyterLab's user settings (LAB_SETTINGS) in the temporary config folder."""
    for plugin, values in LAB_SETTINGS.items():
        path = config_dir / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_up(server: JupyterLab, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the server answers its API; raise with its log when it exits or never does."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()}")
        try:
            server.api("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer in {START_S:.0f} s:\n{log.read_text()}")


def _stop(server: JupyterLab, process: subprocess.Popen[bytes], runtime_dir: Path) -> None:
    """Shut the server down through its API (it ends its kernels), else kill it; then kill any
    kernel left behind, known by its connection file in this server's runtime folder."""
    try:
        server.api("POST", "/api/shutdown")
        process.wait(STOP_S)
    except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_S)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(runtime_dir).encode() in cmdline:
            print(f"killing kernel {pid}, left running by JupyterLab")
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def _forget_execution_counts(path: Path) -> None:
    """Clear the counts stored with the outputs nbval compares: the test reads a count as "Run All
    reached this cell", so a stored one would pass for a cell the run never reached."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
            for output in cell.outputs:
                if "execution_count" in output:
                    output.execution_count = None
    nbformat.write(notebook, path)


@contextmanager
def running_jupyterlab(home: Path, env: dict[str, str]) -> Iterator[JupyterLab]:
    """JupyterLab on a free 127.0.0.1 port with a token, serving a copy of lessons/ in ``home``
    (so a run never saves into the sources); its kernels get ``env`` on top of ours."""
    root_dir = home / "lessons"
    shutil.copytree(LESSONS, root_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for notebook in root_dir.glob("*.ipynb"):
        _forget_execution_counts(notebook)
    _write_settings(home / "config")
    port = _free_port()
    server = JupyterLab(f"http://127.0.0.1:{port}", secrets.token_hex(24), root_dir)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={server.token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    full_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        **env,
    }
    log = home / "jupyterlab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_up(server, process, log)
        yield server
    finally:
        _stop(server, process, home / "runtime")
