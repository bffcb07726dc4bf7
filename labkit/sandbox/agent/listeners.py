"""The agent's listeners: which sockets a spec asks for, how each is bound inside its pod's
namespace, and how it is closed again; plus where cluster DNS serving comes from."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labkit.errors import LabError
from labkit.model.dns.records import Record
from labkit.sandbox.agent.spec import AgentSpec, PortSpec, Workload
from labkit.sandbox.netns import netns_path, socket_in_netns


class NetnsIdentity(NamedTuple):
    """Which namespace file a name points at; it changes when the namespace is made anew."""

    device: int
    inode: int


def netns_identity(name: str) -> NetnsIdentity | None:
    """The identity of a named namespace, or None when it does not exist."""
    try:
        st = os.stat(netns_path(name))
    except (OSError, LabError):
        return None
    return NetnsIdentity(st.st_dev, st.st_ino)


class ListenerKey(NamedTuple):
    """What makes one listener: where it binds, what it serves, and for which pod."""

    netns: str
    protocol: str
    port: int
    role: str
    pod: str  # namespace/name

    def describe(self) -> str:
        """``pod protocol/port role``, as ``status`` lists and the log names a listener."""
        return f"{self.pod} {self.protocol}/{self.port} {self.role}"


class WantedListener(NamedTuple):
    """The pod and port one listener serves."""

    workload: Workload
    port: PortSpec


def listener_keys(spec: AgentSpec) -> dict[ListenerKey, WantedListener]:
    """The listeners a spec asks for, in the order the spec declares them."""
    wanted: dict[ListenerKey, WantedListener] = {}
    for w in (*spec.workloads, *(check.workload() for check in spec.health_checks)):
        for p in w.ports:
            wanted[ListenerKey(w.netns, p.protocol, p.port, w.role, w.ref)] = WantedListener(w, p)
    return wanted


@dataclass
class Listener:
    """One bound socket and what serves it; ``close`` undoes everything it started."""

    workload: Workload
    port: PortSpec
    kind: str  # dns, udp-netexec, http-netexec, http-serve-hostname, ingress or healthcheck
    server: asyncio.AbstractServer | None = None
    transport: asyncio.BaseTransport | None = None
    task: asyncio.Task[None] | None = None
    sock: socket.socket | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    netns_id: NetnsIdentity | None = None

    async def close(self) -> None:
        """Stop serving: close the server or transport, cancel the task, drop open connections."""
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


def bound_socket(workload: Workload, port: PortSpec) -> socket.socket:
    """A non-blocking socket bound to ``port`` on all addresses of the pod's namespace
    (listening, for TCP)."""
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


GetIndex = Callable[[], Any]
ServeDns = Callable[[socket.socket, GetIndex, Any], Coroutine[Any, Any, None]]
ServeFixed = Callable[[socket.socket], Coroutine[Any, Any, None]]


@dataclass
class DnsBackend:
    """Where DNS serving comes from: coroutines that serve a bound socket until cancelled (asking
    ``get_index()`` per query and forwarding through ``upstream_from(netns)``), how to index
    records, and the outside world's resolver. Tests swap in a stand-in."""

    serve_udp: ServeDns
    serve_tcp: ServeDns
    build_index: Callable[[list[Record], list[str]], Any]
    upstream_from: Callable[[str], Any]
    resolver_udp: ServeFixed
    resolver_tcp: ServeFixed


def default_dns_backend() -> DnsBackend:
    """The lab's real cluster DNS (``labkit.sandbox.dns`` over ``labkit.model.dns`` records)."""
    try:
        from labkit.model.dns.lookup import RecordIndex
        from labkit.sandbox import dns, dns_forward, outside_dns
    except ImportError as exc:
        raise LabError(
            "The cluster DNS code is not available in this labkit installation.",
            "Reinstall labkit (`make setup`).",
            output=str(exc),
        ) from None

    last: list[RecordIndex] = []  # the last index built: its records are known to encode

    def build_index(records: list[Record], namespaces: list[str]) -> RecordIndex:
        wanted = frozenset(records)  # hashed once: the index takes the set as it is
        encoded = last[0].record_set if last else frozenset()
        failed: dict[Record, Exception] = {}
        for record in wanted - encoded:  # encode each new one now: a bad one is named at reload
            try:
                dns.to_rr(record)
            except Exception as exc:
                failed[record] = exc
        if failed:  # the first bad one as the records list them
            record = next(r for r in records if r in failed)
            raise ValueError(
                f"record {record.name} {record.rtype} {record.value!r}: {failed[record]}"
            )
        # the last index updated with what changed (issue 18), else a new one
        index = (
            last[0].updated(wanted, namespaces)
            if last
            else RecordIndex(wanted, namespaces=namespaces)
        )
        last[:] = [index]
        return index

    world = dns.fixed_responder(outside_dns.resolve)
    return DnsBackend(
        dns.serve_udp,
        dns.serve_tcp,
        build_index,
        dns_forward.upstream_from,
        lambda sock: dns.serve_udp_with(sock, world),
        lambda sock: dns.serve_tcp_with(sock, world),
    )
