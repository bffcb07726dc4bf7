"""CoreDNS's ``forward . /etc/resolv.conf`` for the sandbox's cluster DNS: which questions leave
the kubernetes plugin, and how a CoreDNS pod asks the upstream resolver.

The Corefile kubeadm writes puts ``kubernetes cluster.local in-addr.arpa ip6.arpa`` with
``fallthrough in-addr.arpa ip6.arpa`` before ``forward``: names outside those zones, and reverse
names the plugin has no record for (NXDOMAIN), go to the resolver of the CoreDNS pod's
resolv.conf, which is its node's (``dnsPolicy: Default``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

from labkit.model.dns.lookup import REVERSE_ZONES, Answer
from labkit.model.dns.names import fqdn
from labkit.model.dns.resolver import parse_resolv_conf
from labkit.sandbox.netns import socket_in_netns
from labkit.sandbox.outside_world import DNS_PORT, node_resolv_conf

FORWARD_TIMEOUT_S = 2.0
"""How long one upstream query may take before the client gets SERVFAIL (forward's default
per-query deadline is longer, but its clients retry sooner than that)."""
MAX_REPLY = 65535

Upstream = Callable[[bytes], Awaitable[bytes | None]]
"""Sends one query upstream; the reply, or None when none came."""


class Index(Protocol):
    """What the decision reads of the cluster's records."""

    def zone_of(self, name: str) -> str | None: ...
    def lookup(self, qname: str, qtype: str = "A") -> Answer: ...


def forwarded(index: Index, qname: str, qtype: str) -> bool:
    """Whether CoreDNS's kubernetes plugin hands this question to ``forward``: a name outside
    the cluster and reverse zones, or a reverse name it answers NXDOMAIN (``fallthrough``)."""
    zone = index.zone_of(fqdn(qname))
    if zone is None:
        return True
    return zone in REVERSE_ZONES and index.lookup(qname, qtype).rcode == "NXDOMAIN"


def upstream_server() -> tuple[str, int]:
    """The first nameserver of the node's resolv.conf, as ``forward . /etc/resolv.conf`` uses
    it."""
    return parse_resolv_conf(node_resolv_conf()).nameservers[0], DNS_PORT


def upstream_from(netns: str, timeout: float = FORWARD_TIMEOUT_S) -> Upstream:
    """Queries sent over UDP from namespace ``netns`` (a CoreDNS pod's) to the upstream resolver,
    each from a fresh socket, as forward's connections are."""
    server = upstream_server()

    async def ask(query: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        sock = socket_in_netns(netns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(server)
            await loop.sock_sendall(sock, query)
            return await asyncio.wait_for(loop.sock_recv(sock, MAX_REPLY), timeout)
        except (OSError, asyncio.TimeoutError):
            return None
        finally:
            sock.close()

    return ask
