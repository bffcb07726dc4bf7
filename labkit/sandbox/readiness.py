"""Readiness probes, run from each pod's node as the kubelet runs them.

A pod's ``readinessProbe`` decides whether it stands behind its Services. The sandbox tries
``tcpSocket`` and ``httpGet`` probes from the node's namespace (a TCP connect, or a GET expecting
200-399) and records the result as the pod's Ready condition; ``exec`` and ``grpc`` probes are
not run and count as passing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from labkit.model.objects import name_of, namespace_of, pod_ready
from labkit.sandbox.fabric import NodeNet, PodNet

if TYPE_CHECKING:
    from labkit.sandbox.store import ClusterStore

READINESS_TIMEOUT_S = 1.0
"""The longest a probe waits, whatever ``timeoutSeconds`` says (a lab change waits for them)."""
MAX_PROBE_THREADS = 16


def readiness_checks(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod's readiness probes reduced to what the node must try: tcp or http, port, path."""
    checks = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        spec = container.get("readinessProbe")
        if not spec:
            continue
        named = {
            p.get("name"): int(p["containerPort"])
            for p in container.get("ports") or []
            if p.get("name")
        }
        timeout = min(float(spec.get("timeoutSeconds") or 1), READINESS_TIMEOUT_S)
        for kind in ("tcpSocket", "httpGet"):
            if kind in spec:
                action = spec[kind] or {}
                checks.append(
                    {
                        "container": container.get("name"),
                        "kind": kind,
                        "port": _probe_port(action.get("port"), named),
                        "path": action.get("path") or "/",
                        "scheme": action.get("scheme") or "HTTP",
                        "timeout": timeout,
                    }
                )
                break
        else:
            checks.append(
                {
                    "container": container.get("name"),
                    "kind": "other",
                    "port": None,
                    "path": "",
                    "scheme": "",
                    "timeout": timeout,
                }
            )
    return checks


def _probe_port(raw: Any, named: Mapping[Any, int]) -> int | None:
    """A probe's port: a number, or the name of one of the container's ports (None: unknown)."""
    if isinstance(raw, str) and not raw.isdigit():
        return named.get(raw)
    return int(raw) if raw is not None else None


class ProbeAnswer(NamedTuple):
    """How one readiness probe went, in the kubelet's words."""

    ok: bool
    text: str


def try_readiness(node_netns: str, ip: str, check: Mapping[str, Any]) -> ProbeAnswer:
    """One readiness probe from the node: TCP connect, or HTTP GET expecting 200-399."""
    from labkit.sandbox.netns import socket_in_netns

    kind, port, container = check["kind"], check["port"], check["container"]
    if kind == "other":
        return ProbeAnswer(
            True,
            f"container {container}: exec/grpc probes are not run by the sandbox "
            "(counted as passing)",
        )
    if port is None:
        return ProbeAnswer(
            False,
            f"container {container}: readiness probe names a port the container does not declare",
        )
    target = f"{ip}:{port}"
    sock = socket_in_netns(node_netns, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(check["timeout"])
    try:
        try:
            sock.connect((ip, port))
        except OSError as exc:
            return ProbeAnswer(
                False, f"Readiness probe failed: dial tcp {target}: {exc.strerror or exc}"
            )
        if kind == "tcpSocket" or check["scheme"] == "HTTPS":
            return ProbeAnswer(True, f"tcp {target} accepted")
        status = _http_status(sock, check["path"], target)
        if 200 <= status < 400:
            return ProbeAnswer(True, f"GET http://{target}{check['path']} answered {status}")
        return ProbeAnswer(
            False,
            f"Readiness probe failed: HTTP probe failed with statuscode: {status or 'none'}",
        )
    except OSError as exc:
        return ProbeAnswer(False, f"Readiness probe failed: {target}: {exc.strerror or exc}")
    finally:
        sock.close()


def _http_status(sock: socket.socket, path: str, target: str) -> int:
    """Send the kubelet's GET on a connected socket; the answer's status code (0: none)."""
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: kube-probe/1.36\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n" not in head and len(head) < 4096:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    parts = head.split(b"\r\n", 1)[0].split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


class _Job(NamedTuple):
    pod: Mapping[str, Any]
    net: PodNet
    node: NodeNet
    checks: list[dict[str, Any]]


def update_readiness(
    store: ClusterStore,
    pods: Iterable[Mapping[str, Any]],
    nets: Mapping[str, PodNet],
    nodes: Sequence[NodeNet],
    serving: Callable[[], None],
) -> bool:
    """Run every readinessProbe of the pods in ``nets`` at once and record each pod's Ready
    condition in ``store``; True if any pod's readiness changed. ``serving()`` returns once the
    agent serves the pods (called only when there is a probe to run: it may still be reloading)."""
    by_node = {n.name: n for n in nodes}
    jobs = []
    for pod in pods:
        net = nets.get(f"{namespace_of(pod)}/{name_of(pod)}")
        checks = readiness_checks(pod)
        if net is not None and checks:
            jobs.append(_Job(pod, net, by_node[net.node], checks))
    if not jobs:
        return False
    serving()

    def run(job: _Job) -> list[ProbeAnswer]:
        return [try_readiness(job.node.netns, job.net.ip, check) for check in job.checks]

    with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(jobs))) as pool:
        outcomes = list(pool.map(run, jobs))
    changed = False
    for job, answers in zip(jobs, outcomes, strict=True):
        failed = [a.text for a in answers if not a.ok]
        ready = not failed
        reason = "; ".join(failed) if failed else "; ".join(a.text for a in answers)
        store.set_pod_ready(namespace_of(job.pod), name_of(job.pod), ready, reason)
        changed |= pod_ready(job.pod) != ready
    return changed
