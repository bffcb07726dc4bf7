"""What a ``netexec`` pod answers, as agnhost netexec does: HTTP /hostname, /clientip, /echo,
/header and /healthz, and UDP ``hostname``, ``clientip`` and ``echo x``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from labkit.sandbox.agent.http import HttpMessage, render_response, serve_requests
from labkit.sandbox.agent.l7 import render_denied, request_allowed
from labkit.sandbox.agent.spec import L7Grant

log = logging.getLogger("labkit.agent")


def format_peer(peer: Any) -> str:
    """``ip:port`` of a socket peer as agnhost's /clientip prints it."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)


def netexec_http_answer(
    hostname: str, method: str, target: str, peer: Any, headers: dict[str, str]
) -> tuple[int, str]:
    """What agnhost netexec answers to one HTTP request: (status, body); ``/hostname`` is the
    pod's ``os.Hostname()``."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    path = url.path or "/"
    if path == "/hostname":
        return 200, hostname
    if path == "/clientip":
        return 200, format_peer(peer)
    if path == "/echo":
        return 200, (query.get("msg") or [""])[0]
    if path == "/header":
        return 200, headers.get((query.get("key") or [""])[0].lower(), "")
    if path in ("/healthz", "/readyz", "/livez"):
        return 200, "ok"
    return 200, f"{hostname}: labkit netexec answered {method} {path}\n"


def netexec_http_log(method: str, target: str) -> str:
    """The line agnhost netexec logs for one HTTP request (its handlers log ``GET /path``, and
    ``/echo`` its arguments); a path it has no handler for is logged as it came."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    path = url.path or "/"
    if path == "/echo":
        msg, code = ((query.get(k) or [""])[0] for k in ("msg", "code"))
        return f"GET /echo?msg={msg}&code={code}"
    if path in ("/", "/hostname", "/clientip", "/header", "/healthz", "/readyz", "/livez"):
        return f"GET {path}"
    return f"{method} {path}"


def netexec_udp_log(data: bytes, peer: Any) -> str | None:
    """The line agnhost netexec's UDP server logs for one datagram (None: nothing)."""
    text = data.decode("utf-8", "replace").strip().lower()
    if text == "hostname":
        return "Sending udp hostName response"
    if text.startswith("echo "):
        return f"Echoing {text[5:]} to UDP client {format_peer(peer)}"
    if text == "clientip":
        return f"Sending clientip back to UDP client {format_peer(peer)}"
    if text:
        return f"Unknown UDP command received from {format_peer(peer)}: {text}"
    return None


Record = Callable[[str], None]
"""Appends one line to the serving pod's log."""

Grants = Callable[[], tuple[L7Grant, ...]]
"""The CiliumNetworkPolicy HTTP grants on the port now (read per request, so a reload applies
to open keep-alive connections too)."""


def netexec_udp_answer(hostname: str, data: bytes, peer: Any) -> bytes | None:
    """What agnhost netexec's UDP server answers to one datagram (None: no answer); ``hostname``
    is the pod's ``os.Hostname()``."""
    text = data.decode("utf-8", "replace").strip()
    if text == "hostname":
        return hostname.encode()
    if text == "clientip":
        return format_peer(peer).encode()
    if text.startswith("echo "):
        return text[5:].encode()
    return None


async def serve_netexec_http(
    hostname: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    record: Record,
    grants: Grants = tuple,
) -> None:
    """Answer one HTTP connection to a netexec pod whose hostname is ``hostname`` (keep-alive
    until the client is done), logging each request as agnhost does; where ``grants`` gives
    HTTP rules, Cilium's proxy answers a request they deny and the pod never sees it."""

    async def answer(request: HttpMessage, peer: Any) -> bytes:
        on_port = grants()
        peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if on_port and not request_allowed(
            on_port, peer_ip, request.method, request.target, request.header_map
        ):
            return render_denied(keep_alive=request.keep_alive)
        record(netexec_http_log(request.method, request.target))
        status, body = netexec_http_answer(
            hostname, request.method, request.target, peer, request.header_map
        )
        return render_response(
            status,
            b"" if request.method == "HEAD" else body.encode(),
            keep_alive=request.keep_alive,
        )

    await serve_requests(reader, writer, answer)


class UdpNetexec(asyncio.DatagramProtocol):
    """A netexec pod's UDP port: answers each datagram with ``netexec_udp_answer``."""

    def __init__(self, hostname: str, record: Record) -> None:
        self.hostname = hostname
        self.record = record
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Answer one datagram, if it asks for something netexec answers."""
        line = netexec_udp_log(data, addr)
        if line is not None:
            self.record(line)
        answer = netexec_udp_answer(self.hostname, data, addr)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors for earlier answers: nothing to do but note them."""
        log.debug("udp %s: %s", self.hostname, exc)
