"""The workload agent's small pure parts: listener keys by name, HTTP start-line fields, the pid
file, how the agent process is started (``python -m labkit.sandbox.agent``) and how a dead one
is told from a live one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from labkit.sandbox.agent.files import PID_FILE, read_pid, remove_own_pid, write_pid
from labkit.sandbox.agent.http import parse_head
from labkit.sandbox.agent.listeners import ListenerKey, listener_keys
from labkit.sandbox.agent.spec import PortSpec, parse_spec


def test_listener_keys_name_their_fields() -> None:
    spec = parse_spec(
        {
            "workloads": [
                {
                    "namespace": "kube-system",
                    "name": "coredns-1",
                    "netns": "lk-lab-p-9",
                    "ip": "10.244.0.9",
                    "role": "dns",
                    "ports": [{"port": 53, "protocol": "UDP"}],
                }
            ]
        }
    )
    ((key, wanted),) = listener_keys(spec).items()
    assert key == ListenerKey(
        netns="lk-lab-p-9", protocol="UDP", port=53, role="dns", pod="kube-system/coredns-1"
    )
    assert key.describe() == "kube-system/coredns-1 UDP/53 dns"
    assert wanted.workload.name == "coredns-1" and wanted.port == PortSpec(53, "UDP")


def test_http_start_line_fields_by_name() -> None:
    request = parse_head(b"HEAD /hostname?x=1 HTTP/1.0\r\nHost: a", response=False)
    assert (request.method, request.target, request.version) == (
        "HEAD",
        "/hostname?x=1",
        "HTTP/1.0",
    )
    assert not request.keep_alive
    response = parse_head(b"HTTP/1.1 404 Not Found\r\nConnection: close", response=True)
    assert (response.version, response.status, response.reason) == ("HTTP/1.1", 404, "Not Found")
    assert parse_head(b"HTTP/1.1 204", response=True).reason == ""


def test_pid_file_is_removed_only_by_its_own_process(tmp_path: Path) -> None:
    assert read_pid(str(tmp_path)) is None
    write_pid(str(tmp_path), os.getpid() + 1)
    assert read_pid(str(tmp_path)) == os.getpid() + 1
    remove_own_pid(str(tmp_path))
    assert (tmp_path / PID_FILE).exists()
    write_pid(str(tmp_path), os.getpid())
    remove_own_pid(str(tmp_path))
    assert not (tmp_path / PID_FILE).exists()
    (tmp_path / PID_FILE).write_text("not a pid\n")
    assert read_pid(str(tmp_path)) is None


def test_the_agent_runs_as_a_module_and_the_client_stays_light() -> None:
    """``start_agent`` runs ``python -m labkit.sandbox.agent``; the lab's process imports only
    the client, not the servers."""
    run = subprocess.run(
        [sys.executable, "-m", "labkit.sandbox.agent", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0 and "--state-dir" in run.stdout
    probe = (
        "import sys, labkit.sandbox.agent.client; "
        "print(sorted(m for m in sys.modules if m.startswith('labkit.sandbox.agent.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    assert loaded.stdout.split() == [
        "['labkit.sandbox.agent.client',",
        "'labkit.sandbox.agent.files']",
    ]


def test_an_agent_listens_while_its_socket_is_held_and_not_after_it_died(tmp_path: Path) -> None:
    from labkit.sandbox.agent.client import agent_listens
    from labkit.sandbox.agent.files import SOCKET_FILE

    assert not agent_listens(str(tmp_path))  # no socket file at all
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / SOCKET_FILE))
    server.listen()
    assert agent_listens(str(tmp_path))  # busy or not, a live process holds it
    server.close()  # as after kill -9: the file stays, nobody listens
    assert (tmp_path / SOCKET_FILE).exists() and not agent_listens(str(tmp_path))
