"""The sandbox's workload agent: one process per lab that makes every pod serve its ports.

It reads ``<state-dir>/workloads.json`` and, for each declared pod port, binds a listening socket
inside that pod's network namespace, all served by one asyncio loop (no thread or process per pod):
``netexec`` pods answer like agnhost netexec (HTTP /hostname, /clientip, /echo, /header, /healthz;
UDP ``hostname``/``clientip``/``echo x``), ``dns`` pods answer cluster DNS on port 53, and
``ingress`` pods proxy HTTP by Ingress rules to Service ClusterIPs from inside their own namespace,
so requests cross kube-proxy's rules as they would behind a real controller.
A unix socket ``<state-dir>/agent.sock`` takes ``ping``, ``reload``, ``status`` and ``stop``.

Run: ``python -m labkit.sandbox.agent --state-dir /run/labkit/<lab>`` (``start_agent`` does it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from labkit.errors import LabError
from labkit.sandbox.netns import describe_socket_error, netns_path, socket_in_netns

log = logging.getLogger("labkit.agent")

ROLES = ("netexec", "dns", "ingress")
PROTOCOLS = ("TCP", "UDP")
PATH_TYPES = ("Prefix", "Exact", "ImplementationSpecific")
SPEC_FILE = "workloads.json"
SOCKET_FILE = "agent.sock"
PID_FILE = "agent.pid"
LOG_FILE = "agent.log"
DNS_PORT = 53
HTTPS_PORT = 443
IDLE_TIMEOUT_S = 60.0
BACKEND_CONNECT_TIMEOUT_S = 2.0
BACKEND_ANSWER_TIMEOUT_S = 10.0
MAX_BODY = 8 * 1024 * 1024
DEFAULT_BACKEND_BODY = "default backend - 404"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


# --------------------------------------------------------------------------- the spec (pure)


@dataclass(frozen=True)
class PortSpec:
    """One declared container port."""

    port: int
    protocol: str


@dataclass(frozen=True)
class Workload:
    """One pod the agent serves: where it lives and what it answers on."""

    namespace: str
    name: str
    netns: str
    ip: str
    role: str
    ports: tuple[PortSpec, ...]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class IngressRule:
    """One Ingress path, already resolved to its Service's ClusterIP and port."""

    host: str | None
    path: str
    path_type: str
    backend_ip: str
    backend_port: int
    service: str


@dataclass(frozen=True)
class AgentSpec:
    """Everything ``workloads.json`` says."""

    workloads: tuple[Workload, ...] = ()
    dns_records: tuple[tuple[str, str, str, int], ...] = ()
    ingress: tuple[IngressRule, ...] = ()
    tls_hosts: tuple[str, ...] = ()


def _need(
    obj: dict, key: str, kind: type | tuple[type, ...], where: str, problems: list[str]
) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        problems.append(f"{where}: {key!r} is missing or not a {getattr(kind, '__name__', kind)}")
        return None
    return value


def parse_spec(data: Any) -> AgentSpec:
    """Check and convert the JSON of ``workloads.json``; a ValueError lists every problem."""
    if not isinstance(data, dict):
        raise ValueError("workloads.json must hold a JSON object")
    problems: list[str] = []
    workloads: list[Workload] = []
    for i, raw in enumerate(data.get("workloads") or []):
        where = f"workloads[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} is not an object")
            continue
        ns, name, netns, ip, role = (
            _need(raw, k, str, where, problems)
            for k in ("namespace", "name", "netns", "ip", "role")
        )
        if role is not None and role not in ROLES:
            problems.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        ports: list[PortSpec] = []
        for j, p in enumerate(raw.get("ports") or []):
            port = _need(p, "port", int, f"{where}.ports[{j}]", problems)
            proto = (p.get("protocol") or "TCP") if isinstance(p, dict) else None
            if port is not None and not 1 <= port <= 65535:
                problems.append(f"{where}.ports[{j}]: port {port} is outside 1-65535")
            elif proto not in PROTOCOLS:
                problems.append(f"{where}.ports[{j}]: protocol {proto!r} is not TCP or UDP")
            elif port is not None and PortSpec(port, proto) not in ports:
                ports.append(PortSpec(port, proto))
        workloads.append(Workload(ns, name, netns, ip, role, tuple(ports)))
    seen: dict[str, str] = {}
    for w in workloads:
        if w.netns in seen and w.netns is not None:
            problems.append(f"pods {seen[w.netns]} and {w.ref} share netns {w.netns}")
        seen[w.netns] = w.ref
    records: list[tuple[str, str, str, int]] = []
    for i, r in enumerate(data.get("dns_records") or []):
        if (
            not isinstance(r, (list, tuple))
            or len(r) != 4
            or not all(isinstance(x, str) for x in r[:3])
            or not isinstance(r[3], int)
        ):
            problems.append(f"dns_records[{i}] is not [name, type, value, ttl]")
            continue
        records.append((r[0], r[1], r[2], r[3]))
    rules: list[IngressRule] = []
    for i, raw in enumerate(data.get("ingress") or []):
        where = f"ingress[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} is not an object")
            continue
        host = raw.get("host")
        if host is not None and not isinstance(host, str):
            problems.append(f"{where}: host must be a string or null")
        path = raw.get("path") or "/"
        path_type = raw.get("pathType") or "Prefix"
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(f"{where}: path {path!r} must start with '/'")
        if path_type not in PATH_TYPES:
            problems.append(
                f"{where}: pathType {path_type!r} is not one of {', '.join(PATH_TYPES)}"
            )
        backend = raw.get("backend")
        b_ip = _need(backend, "ip", str, f"{where}.backend", problems)
        b_port = _need(backend, "port", int, f"{where}.backend", problems)
        service = (
            backend.get("service") if isinstance(backend, dict) else None
        ) or f"{b_ip}:{b_port}"
        rules.append(
            IngressRule(
                host.lower() if isinstance(host, str) and host else None,
                path,
                path_type,
                b_ip,
                b_port,
                str(service),
            )
        )
    tls = data.get("tls_hosts") or []
    if not isinstance(tls, list) or not all(isinstance(h, str) for h in tls):
        problems.append("tls_hosts must be a list of host names")
        tls = []
    if problems:
        raise ValueError("; ".join(problems))
    return AgentSpec(tuple(workloads), tuple(records), tuple(sort_ingress_rules(rules)), tuple(tls))


def load_spec(state_dir: str) -> AgentSpec:
    """Read ``<state_dir>/workloads.json``; a missing file means nothing to serve yet."""
    path = os.path.join(state_dir, SPEC_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return AgentSpec()
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    return parse_spec(data)


# --------------------------------------------------------------------------- ingress routing (pure)


def host_matches(rule_host: str | None, host: str) -> int:
    """How well a request host matches a rule host: 3 exact, 2 wildcard, 1 any-host rule, 0 not."""
    if rule_host is None:
        return 1
    if rule_host == host:
        return 3
    if rule_host.startswith("*.") and "." in host:
        # A wildcard covers exactly one leading DNS label (Kubernetes Ingress rule semantics).
        return 2 if host.split(".", 1)[1] == rule_host[2:] else 0
    return 0


def path_matches(path_type: str, rule_path: str, path: str) -> bool:
    """Ingress path matching: Exact compares the whole path, Prefix compares whole path elements."""
    if path_type == "Exact":
        return path == rule_path
    prefix = [p for p in rule_path.split("/") if p]
    parts = [p for p in path.split("/") if p]
    return parts[: len(prefix)] == prefix


def _rule_rank(rule: IngressRule) -> tuple:
    exact = rule.path_type == "Exact"
    return (
        rule.host is None,
        rule.host is not None and rule.host.startswith("*."),
        not exact,
        -len(rule.path.rstrip("/") if not exact else rule.path),
    )


def sort_ingress_rules(rules: Iterable[IngressRule]) -> list[IngressRule]:
    """Precedence order: host-specific before wildcard before any-host; Exact before Prefix;
    longer prefixes first (the order a controller tries them)."""
    return sorted(rules, key=_rule_rank)


def match_ingress(rules: Iterable[IngressRule], host: str | None, path: str) -> IngressRule | None:
    """The rule a request for ``host`` + ``path`` goes to, or None (the default backend's 404).

    ``ImplementationSpecific`` is treated as Prefix. When the rules for a matching host have no
    matching path, rules without a host are tried next.
    """
    host = (host or "").lower()
    best: tuple | None = None
    chosen: IngressRule | None = None
    for rule in rules:
        score = host_matches(rule.host, host)
        if not score or not path_matches(rule.path_type, rule.path, path):
            continue
        exact = rule.path_type == "Exact"
        rank = (score, exact, len(rule.path.rstrip("/")))
        if best is None or rank > best:
            best, chosen = rank, rule
    return chosen


def request_host(headers: dict[str, str]) -> str:
    """The Host header without a port, lower-cased ('' when absent)."""
    host = headers.get("host", "").strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# --------------------------------------------------------------------------- HTTP/1.1 (shared with the prober)


class HttpError(Exception):
    """A message that is not acceptable HTTP/1.x; ``status`` is the answer a server gives."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


@dataclass
class HttpMessage:
    """One request or response: start line split in three, headers (lower-case names), body."""

    start: tuple[str, str, str]
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def header_map(self) -> dict[str, str]:
        return {k: v for k, v in self.headers}

    @property
    def keep_alive(self) -> bool:
        version = self.start[0] if self.start[0].startswith("HTTP/") else self.start[2]
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        if version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def parse_head(head: bytes, *, response: bool) -> HttpMessage:
    """Split an HTTP head (start line + headers, without the blank line) into an HttpMessage."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise HttpError(400, str(exc)) from None
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or (len(parts) == 2 and not response):
        raise HttpError(400, f"bad start line {lines[0][:80]!r}")
    if len(parts) == 2:
        parts.append("")
    if response and not (
        parts[0].startswith("HTTP/1.") and parts[1].isdigit() and len(parts[1]) == 3
    ):
        raise HttpError(502, f"not an HTTP response: {lines[0][:80]!r}")
    if not response and not parts[2].startswith("HTTP/1."):
        raise HttpError(
            505 if parts[2].startswith("HTTP/") else 400, f"bad request line {lines[0][:80]!r}"
        )
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"bad header line {line[:80]!r}")
        headers.append((name.lower(), value.strip()))
    return HttpMessage((parts[0], parts[1], parts[2]), headers)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HttpError(400, "bad chunk size") from None
        if size == 0:
            while (await reader.readline()).strip():
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise HttpError(413, "body too large")
        body += await reader.readexactly(size)
        await reader.readline()


async def read_message(
    reader: asyncio.StreamReader, *, response: bool, request_method: str = "GET"
) -> HttpMessage | None:
    """Read one HTTP message from a stream; None when the peer closed before sending a byte."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "connection closed in the middle of a message head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "message head too large") from None
    msg = parse_head(head[:-4], response=response)
    status = int(msg.start[1]) if response else 0
    if response and (request_method == "HEAD" or 100 <= status < 200 or status in (204, 304)):
        return msg
    if "chunked" in msg.header("transfer-encoding").lower():
        msg.body = await _read_chunked(reader)
    elif msg.header("content-length"):
        try:
            length = int(msg.header("content-length"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise HttpError(413, "body too large")
        msg.body = await reader.readexactly(length)
    elif response and not msg.keep_alive:
        msg.body = await reader.read(MAX_BODY)
    return msg


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def render_response(
    status: int,
    body: bytes | str,
    *,
    keep_alive: bool,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    content_type: str | None = "text/plain; charset=utf-8",
) -> bytes:
    """Serialise an HTTP/1.1 response with a Content-Length, so keep-alive works."""
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Status')}"]
    extra = list(headers)
    if content_type and not any(k.lower() == "content-type" for k, _ in extra):
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in extra]
    lines.append(f"Content-Length: {len(data)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def render_request(
    method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes = b""
) -> bytes:
    """Serialise an HTTP/1.1 request with its Content-Length."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def format_peer(peer: Any) -> str:
    """``ip:port`` of a socket peer as agnhost's /clientip prints it."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)


def netexec_http_answer(
    pod: str, method: str, target: str, peer: Any, headers: dict[str, str]
) -> tuple[int, str]:
    """What agnhost netexec answers to one HTTP request: (status, body)."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    path = url.path or "/"
    if path == "/hostname":
        return 200, pod
    if path == "/clientip":
        return 200, format_peer(peer)
    if path == "/echo":
        return 200, (query.get("msg") or [""])[0]
    if path == "/header":
        return 200, headers.get((query.get("key") or [""])[0].lower(), "")
    if path in ("/healthz", "/readyz", "/livez"):
        return 200, "ok"
    return 200, f"{pod}: labkit netexec answered {method} {path}\n"


def netexec_udp_answer(pod: str, data: bytes, peer: Any) -> bytes | None:
    """What agnhost netexec's UDP server answers to one datagram (None: no answer)."""
    text = data.decode("utf-8", "replace").strip()
    if text == "hostname":
        return pod.encode()
    if text == "clientip":
        return format_peer(peer).encode()
    if text.startswith("echo "):
        return text[5:].encode()
    return None


# --------------------------------------------------------------------------- listeners


def netns_identity(name: str) -> tuple[int, int] | None:
    """(device, inode) of a named namespace, which changes when it is deleted and made again."""
    try:
        st = os.stat(netns_path(name))
    except (OSError, LabError):
        return None
    return st.st_dev, st.st_ino


ListenerKey = tuple[str, str, int, str, str]


def listener_keys(spec: AgentSpec) -> dict[ListenerKey, tuple[Workload, PortSpec]]:
    """The listeners a spec asks for, keyed by (netns, protocol, port, role, pod)."""
    wanted: dict[ListenerKey, tuple[Workload, PortSpec]] = {}
    for w in spec.workloads:
        for p in w.ports:
            wanted[(w.netns, p.protocol, p.port, w.role, w.ref)] = (w, p)
    return wanted


@dataclass
class Listener:
    """One bound socket and what serves it; ``close`` undoes everything it started."""

    workload: Workload
    port: PortSpec
    kind: str
    server: asyncio.AbstractServer | None = None
    transport: asyncio.BaseTransport | None = None
    task: asyncio.Task | None = None
    sock: socket.socket | None = None
    connections: set = field(default_factory=set)
    netns_id: tuple[int, int] | None = None

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.transport is not None:
            self.transport.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        for writer in list(self.connections):
            writer.close()
        if self.sock is not None and self.server is None and self.transport is None:
            self.sock.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)


class _UdpNetexec(asyncio.DatagramProtocol):
    def __init__(self, pod: str) -> None:
        self.pod = pod
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = netexec_udp_answer(self.pod, data, addr)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp %s: %s", self.pod, exc)


@dataclass
class DnsBackend:
    """Where DNS serving comes from: coroutines that serve a socket, and how to index records."""

    serve_udp: Callable[..., Any]
    serve_tcp: Callable[..., Any]
    build_index: Callable[[list[tuple[str, str, str, int]]], Any]


def default_dns_backend() -> DnsBackend:
    """The lab's real cluster DNS (``labkit.sandbox.dns`` over ``labkit.model.dns`` records)."""
    try:
        from labkit.model.dns import Record, RecordIndex
        from labkit.sandbox import dns
    except ImportError as exc:
        raise LabError(
            "The cluster DNS code is not available in this labkit installation.",
            "Reinstall labkit (`make setup`).",
            output=str(exc),
        ) from None

    def build_index(rows: list[tuple[str, str, str, int]]) -> Any:
        records = [Record(*row) for row in rows]
        for record in records:  # encode each once now, so a bad one is named at reload time
            try:
                dns.to_rr(record)
            except Exception as exc:
                raise ValueError(
                    f"record {record.name} {record.rtype} {record.value!r}: {exc}"
                ) from None
        return RecordIndex(records)

    return DnsBackend(dns.serve_udp, dns.serve_tcp, build_index)


async def _serve_requests(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer: Callable[[HttpMessage, Any], Awaitable[bytes]],
) -> None:
    """Answer HTTP/1.1 requests on one keep-alive connection until the client closes it or asks
    to; ``answer(request, peer)`` renders each response (its keep-alive must follow the request's)."""
    peer = writer.get_extra_info("peername")
    while True:
        try:
            request = await asyncio.wait_for(read_message(reader, response=False), IDLE_TIMEOUT_S)
        except HttpError as exc:
            writer.write(render_response(exc.status, f"{exc}\n", keep_alive=False))
            await writer.drain()
            return
        if request is None:
            return
        writer.write(await answer(request, peer))
        await writer.drain()
        if not request.keep_alive:
            return


# --------------------------------------------------------------------------- TLS for ingress :443


def make_tls_context(state_dir: str, hosts: Iterable[str]):
    """A server TLS context with a fresh self-signed certificate for ``hosts`` (openssl CLI)."""
    import ssl  # only ingress pods with port 443 pay for it

    names = sorted({h for h in hosts if h} | {"labkit-ingress.local"})
    key = os.path.join(state_dir, "ingress-tls.key")
    cert = os.path.join(state_dir, "ingress-tls.crt")
    san = ",".join(f"DNS:{h}" for h in names)
    if shutil.which("openssl") is None:
        raise OSError("serving TLS on 443 needs the openssl command, which is not installed")
    proc = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=labkit-ingress",
            "-addext",
            f"subjectAltName={san}",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if proc.returncode != 0:
        raise OSError(
            f"openssl could not make the ingress certificate: {proc.stderr.strip()[-200:]}"
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


# --------------------------------------------------------------------------- the agent


class Agent:
    """Serves every workload of one lab from one asyncio loop and answers control commands."""

    def __init__(self, state_dir: str, dns_backend: DnsBackend | None = None) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.spec = AgentSpec()
        self.listeners: dict[ListenerKey, Listener] = {}
        self.errors: list[str] = []
        self._dns_backend = dns_backend
        self._dns_index: Any = None
        self._tls: tuple[tuple[str, ...], Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._control: asyncio.AbstractServer | None = None

    # ---- lifecycle

    async def run(self) -> None:
        """Bind what workloads.json asks for, serve the control socket, and wait for stop."""
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError, ValueError):  # not in the main thread (tests)
                loop.add_signal_handler(sig, self._stop.set)
        log.info("agent %d starting in %s: %s", os.getpid(), self.state_dir, await self.reload())
        sock_path = os.path.join(self.state_dir, SOCKET_FILE)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        self._control = await asyncio.start_unix_server(self._control_client, path=sock_path)
        os.chmod(sock_path, 0o600)
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Close the control socket and every listener, and remove the socket file."""
        if self._control is not None:
            self._control.close()
            self._control = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.state_dir, SOCKET_FILE))
        for key in list(self.listeners):
            await self.listeners.pop(key).close()
        log.info("agent %d stopped", os.getpid())

    # ---- control

    async def _control_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            command = line.decode("utf-8", "replace").strip()
            answer = await self.command(command)
            writer.write((answer + "\n").encode())
            await writer.drain()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def command(self, command: str) -> str:
        """Answer one control command: ping, reload, status or stop."""
        if command == "ping":
            return "pong"
        if command == "reload":
            return await self.reload()
        if command == "status":
            return json.dumps(
                {
                    "pid": os.getpid(),
                    "listeners": sorted(f"{k[4]} {k[1]}/{k[2]} {k[3]}" for k in self.listeners),
                    "errors": self.errors,
                }
            )
        if command == "stop":
            assert self._stop is not None
            self._stop.set()
            return "ok stopping"
        return f"error unknown command {command!r} (use ping, reload, status or stop)"

    async def reload(self) -> str:
        """Re-read workloads.json, close listeners that are gone, bind new ones, keep the rest."""
        assert self._lock is not None
        async with self._lock:
            try:
                spec = load_spec(self.state_dir)
            except (OSError, ValueError) as exc:
                return f"error workloads.json: {exc}"
            if spec.dns_records != self.spec.dns_records or self._dns_index is None:
                self._dns_index = None
                if any(w.role == "dns" for w in spec.workloads):
                    try:  # build now, so bad records are reported here and not as SERVFAIL later
                        self._dns_index = self._dns().build_index(list(spec.dns_records))
                    except (ValueError, TypeError, LabError) as exc:
                        return (
                            f"error dns_records: {exc.what if isinstance(exc, LabError) else exc}"
                        )
            if spec.tls_hosts != self.spec.tls_hosts:  # new certificate: rebind ingress :443
                for key in [k for k in self.listeners if k[3] == "ingress" and k[2] == HTTPS_PORT]:
                    await self.listeners.pop(key).close()
            self.spec = spec
            wanted = listener_keys(spec)
            identity = {ns: netns_identity(ns) for ns in {k[0] for k in wanted}}
            # Gone from the spec, or the pod's namespace was deleted and made anew under the same name.
            for key in [
                k
                for k, lst in self.listeners.items()
                if k not in wanted or lst.netns_id != identity[k[0]]
            ]:
                await self.listeners.pop(key).close()
                log.info("closed %s %s/%d (%s)", key[4], key[1], key[2], key[3])
            errors: list[str] = []
            for key, (workload, port) in wanted.items():
                if key in self.listeners:
                    continue
                try:
                    self.listeners[key] = await self._open(workload, port)
                    self.listeners[key].netns_id = identity[workload.netns]
                    log.info(
                        "serving %s %s/%d in %s (%s)",
                        workload.ref,
                        port.protocol,
                        port.port,
                        workload.netns,
                        workload.role,
                    )
                except (OSError, LabError) as exc:
                    text = (
                        exc.what
                        if isinstance(exc, LabError)
                        else (describe_socket_error(exc.errno) if exc.errno else str(exc))
                    )
                    errors.append(f"pod {workload.ref} {port.protocol} port {port.port}: {text}")
            self.errors = errors
            if errors:
                log.error("reload: %s", "; ".join(errors))
                return "error " + "; ".join(errors)
            return f"ok {len(self.listeners)}"

    # ---- binding

    def _dns(self) -> DnsBackend:
        if self._dns_backend is None:
            self._dns_backend = default_dns_backend()
        return self._dns_backend

    def dns_index(self) -> Any:
        """The record index for the current records (rebuilt lazily after a reload changed them)."""
        if self._dns_index is None:
            self._dns_index = self._dns().build_index(list(self.spec.dns_records))
        return self._dns_index

    def _bound_socket(self, workload: Workload, port: PortSpec) -> socket.socket:
        kind = socket.SOCK_STREAM if port.protocol == "TCP" else socket.SOCK_DGRAM
        sock = socket_in_netns(workload.netns, socket.AF_INET, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port.port))
            if kind == socket.SOCK_STREAM:
                sock.listen(256)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _open(self, workload: Workload, port: PortSpec) -> Listener:
        loop = asyncio.get_running_loop()
        if workload.role == "dns" and port.port == DNS_PORT:
            backend = self._dns()
            sock = self._bound_socket(workload, port)
            serve = backend.serve_udp if port.protocol == "UDP" else backend.serve_tcp
            task = asyncio.create_task(
                serve(sock, self.dns_index), name=f"dns {workload.ref} {port.protocol}"
            )
            task.add_done_callback(self._task_done)
            return Listener(workload, port, "dns", task=task, sock=sock)
        if port.protocol == "UDP":
            sock = self._bound_socket(workload, port)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpNetexec(workload.name), sock=sock
            )
            return Listener(workload, port, "udp-netexec", transport=transport, sock=sock)
        ssl_ctx = None
        if workload.role == "ingress" and port.port == HTTPS_PORT:
            ssl_ctx = await self._tls_context()
        sock = self._bound_socket(workload, port)
        listener = Listener(
            workload, port, "ingress" if workload.role == "ingress" else "http-netexec", sock=sock
        )
        handler = (
            self._ingress_connection if workload.role == "ingress" else self._netexec_connection
        )

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            listener.connections.add(writer)
            try:
                await handler(workload, reader, writer, "https" if ssl_ctx else "http")
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                pass
            except Exception:
                log.exception("connection to %s port %d failed", workload.ref, port.port)
            finally:
                listener.connections.discard(writer)
                writer.close()

        listener.server = await asyncio.start_server(on_client, sock=sock, ssl=ssl_ctx)
        return listener

    async def _tls_context(self):
        hosts = tuple(sorted(self.spec.tls_hosts))
        if self._tls is None or self._tls[0] != hosts:
            ctx = await asyncio.to_thread(make_tls_context, self.state_dir, hosts)
            self._tls = (hosts, ctx)
        return self._tls[1]

    def _task_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())

    # ---- serving

    async def _netexec_connection(
        self,
        workload: Workload,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        scheme: str,
    ) -> None:
        async def answer(request: HttpMessage, peer: Any) -> bytes:
            status, body = netexec_http_answer(
                workload.name, request.start[0], request.start[1], peer, request.header_map
            )
            return render_response(
                status,
                b"" if request.start[0] == "HEAD" else body.encode(),
                keep_alive=request.keep_alive,
            )

        await _serve_requests(reader, writer, answer)

    async def _ingress_connection(
        self,
        workload: Workload,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        scheme: str,
    ) -> None:
        async def answer(request: HttpMessage, peer: Any) -> bytes:
            keep = request.keep_alive
            host = request_host(request.header_map)
            path = urlsplit(request.start[1]).path or "/"
            rule = match_ingress(self.spec.ingress, host, path)
            if rule is None:
                return render_response(
                    404,
                    f"{DEFAULT_BACKEND_BODY}: no Ingress rule matches host {host or '(none)'!r} "
                    f"path {path!r}\n",
                    keep_alive=keep,
                    headers=[("X-Labkit-Ingress", "default-backend")],
                )
            return await self._forward(workload, rule, request, peer, host, scheme, keep)

        await _serve_requests(reader, writer, answer)

    async def _forward(
        self,
        workload: Workload,
        rule: IngressRule,
        request: HttpMessage,
        peer: Any,
        host: str,
        scheme: str,
        keep: bool,
    ) -> bytes:
        """Send one request to the rule's Service from inside the ingress pod's netns."""
        target = f"{rule.backend_ip}:{rule.backend_port}"
        route = [("X-Labkit-Ingress", "routed"), ("X-Labkit-Ingress-Backend", rule.service)]
        loop = asyncio.get_running_loop()
        sock = socket_in_netns(workload.netns, socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            try:
                await asyncio.wait_for(
                    loop.sock_connect(sock, (rule.backend_ip, rule.backend_port)),
                    BACKEND_CONNECT_TIMEOUT_S,
                )
            except asyncio.TimeoutError:
                return render_response(
                    504,
                    f"ingress: service {rule.service} ({target}) did not accept "
                    f"a connection within {BACKEND_CONNECT_TIMEOUT_S:g} s\n",
                    keep_alive=keep,
                    headers=route,
                )
            except OSError as exc:
                return render_response(
                    502,
                    f"ingress: service {rule.service} ({target}): "
                    f"{describe_socket_error(exc.errno or 0)}\n",
                    keep_alive=keep,
                    headers=route,
                )
            b_reader, b_writer = await asyncio.open_connection(sock=sock)
            try:
                client_ip = peer[0] if isinstance(peer, tuple) else str(peer)
                prior = request.header("x-forwarded-for")
                headers = [
                    (k.title(), v)
                    for k, v in request.headers
                    if k not in HOP_BY_HOP and not k.startswith("x-forwarded-") and k != "x-real-ip"
                ]
                headers += [
                    ("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip),
                    ("X-Real-Ip", client_ip),
                    ("X-Forwarded-Host", host),
                    ("X-Forwarded-Proto", scheme),
                    ("Connection", "close"),
                ]
                if not any(k == "Host" for k, _ in headers):
                    headers.insert(0, ("Host", host or target))
                b_writer.write(
                    render_request(request.start[0], request.start[1], headers, request.body)
                )
                await b_writer.drain()
                try:
                    answer = await asyncio.wait_for(
                        read_message(b_reader, response=True, request_method=request.start[0]),
                        BACKEND_ANSWER_TIMEOUT_S,
                    )
                except asyncio.TimeoutError:
                    return render_response(
                        504,
                        f"ingress: service {rule.service} ({target}) did not "
                        f"answer within {BACKEND_ANSWER_TIMEOUT_S:g} s\n",
                        keep_alive=keep,
                        headers=route,
                    )
                except (HttpError, ConnectionError, asyncio.IncompleteReadError) as exc:
                    return render_response(
                        502,
                        f"ingress: service {rule.service} ({target}) sent no "
                        f"valid HTTP answer ({exc})\n",
                        keep_alive=keep,
                        headers=route,
                    )
                if answer is None:
                    return render_response(
                        502,
                        f"ingress: service {rule.service} ({target}) closed the "
                        f"connection without answering\n",
                        keep_alive=keep,
                        headers=route,
                    )
                kept = [(k.title(), v) for k, v in answer.headers if k not in HOP_BY_HOP]
                return render_response(
                    int(answer.start[1]),
                    answer.body,
                    keep_alive=keep,
                    headers=kept + route,
                    reason=answer.start[2] or None,
                    content_type=None,
                )
            finally:
                b_writer.close()
        finally:
            sock.close()


# --------------------------------------------------------------------------- process entry point


def _write_pid(state_dir: str, pid: int) -> None:
    path = os.path.join(state_dir, PID_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{pid}\n")
    os.replace(tmp, path)


def _remove_own_pid(state_dir: str) -> None:
    path = os.path.join(state_dir, PID_FILE)
    with contextlib.suppress(OSError, ValueError), open(path, encoding="utf-8") as fh:
        if int(fh.read().strip()) == os.getpid():
            os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the agent process."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit.sandbox.agent",
        description="Serve a sandbox lab's pods (one process per lab).",
    )
    parser.add_argument(
        "--state-dir", required=True, help="the lab's state directory, /run/labkit/<lab>"
    )
    parser.add_argument(
        "--daemonize",
        action="store_true",
        help="fork once and let the parent exit at once (used by start_agent)",
    )
    args = parser.parse_args(argv)
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(state_dir, LOG_FILE),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if _answers_ping(state_dir):
        log.error("another agent already serves %s; this one (%d) exits", state_dir, os.getpid())
        return 1
    if args.daemonize:
        child = os.fork()
        if child > 0:
            # Written before the launcher exits, so start_agent can tell "died" from "not yet started".
            _write_pid(state_dir, child)
            os._exit(0)
    _write_pid(state_dir, os.getpid())
    try:
        asyncio.run(Agent(state_dir).run())
    except Exception:
        log.exception("agent crashed")
        return 1
    finally:
        _remove_own_pid(state_dir)
    return 0


# --------------------------------------------------------------------------- client side (the lab's process)


def _answers_ping(state_dir: str) -> bool:
    try:
        return agent_command(state_dir, "ping", timeout=0.5) == "pong"
    except LabError:
        return False


def agent_command(state_dir: str, cmd: str, timeout: float = 10.0) -> str:
    """Send one control command to the lab's agent and return its one-line answer."""
    path = os.path.join(os.path.abspath(state_dir), SOCKET_FILE)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(cmd.strip().encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            raise LabError(
                f"The lab's workload agent is not running (nothing answers on {path}).",
                "Run `labkit down` and `labkit up` to restart the lab.",
            ) from None
        except TimeoutError:
            raise LabError(
                f"The lab's workload agent did not answer {cmd!r} within {timeout:g} s.",
                f"Look at {os.path.join(state_dir, LOG_FILE)}; `labkit down` then `labkit up` "
                "restarts it.",
            ) from None
    if not data:
        raise LabError(
            f"The lab's workload agent closed the connection without answering {cmd!r}.",
            f"Look at {os.path.join(state_dir, LOG_FILE)} for the reason.",
        )
    return data.decode("utf-8", "replace").strip()


def _log_tail(state_dir: str, lines: int = 20) -> str:
    try:
        with open(os.path.join(state_dir, LOG_FILE), encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return "(no agent log)"


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
        and b"labkit.sandbox.agent" in argv
        and os.fsencode(os.path.abspath(state_dir)) in argv
    )


def _pid_from_file(state_dir: str) -> int | None:
    try:
        with open(os.path.join(state_dir, PID_FILE), encoding="utf-8") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def agent_pids(state_dir: str) -> list[int]:
    """Live agent processes serving ``state_dir``: the pid file's, plus any found by their exact
    command line (after a crash that lost the pid file)."""
    state_dir = os.path.abspath(state_dir)
    found = []
    pid = _pid_from_file(state_dir)
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


def start_agent(state_dir: str, timeout: float = 5.0) -> int:
    """Start the lab's agent detached (its own session) and return its pid once it answers ``ping``.

    An agent already answering for ``state_dir`` is kept and its pid returned.
    """
    state_dir = os.path.abspath(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    if _answers_ping(state_dir):
        pid = _pid_from_file(state_dir)
        if pid and _is_our_agent(pid, state_dir):
            return pid
    stop_agent(state_dir)  # a stale or hung agent, and its files, from an earlier run
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(os.path.join(state_dir, LOG_FILE), "ab") as log_fh:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "labkit.sandbox.agent", "--state-dir", state_dir, "--daemonize"],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=log_fh,
            cwd="/",
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    try:
        code = launcher.wait(timeout)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()
        code = -1
    if code != 0:
        raise LabError(
            "The lab's workload agent could not start.",
            "Read the log below; `labkit down` then `labkit up` retries.",
            output=_log_tail(state_dir),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _pid_from_file(state_dir)
        if pid is None or not _is_our_agent(pid, state_dir):
            break  # the launcher wrote the pid before exiting: the agent has died since
        if pid is not None and _answers_ping(state_dir):
            return pid
        time.sleep(0.01)
    stop_agent(state_dir)
    raise LabError(
        f"The lab's workload agent stopped or did not answer within {timeout:g} s.",
        "Read the log below; `labkit down` then `labkit up` retries.",
        output=_log_tail(state_dir),
    )


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
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.005)
        alive = [p for p in alive if _is_our_agent(p, state_dir)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.005)
        alive = [p for p in alive if _is_our_agent(p, state_dir)]
    for name in (SOCKET_FILE, PID_FILE):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(os.path.join(state_dir, name))
    return bool(pids)


if __name__ == "__main__":
    sys.exit(main())
