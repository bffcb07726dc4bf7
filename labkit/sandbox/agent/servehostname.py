"""What an agnhost ``serve-hostname`` pod answers in its HTTP mode (the default): its hostname,
with no newline, at every path, logging ``HTTP request from <peer>`` for each request."""

from __future__ import annotations

import asyncio
from typing import Any

from labkit.sandbox.agent.http import HttpMessage, render_response, serve_requests
from labkit.sandbox.agent.l7 import render_denied, request_allowed
from labkit.sandbox.agent.netexec import Grants, Record, format_peer


def serve_hostname_answer(hostname: str) -> bytes:
    """The body serve-hostname sends to any request: ``os.Hostname()`` as it is."""
    return hostname.encode()


def serve_hostname_log(peer: Any) -> str:
    """The line serve-hostname logs for one HTTP request."""
    return f"HTTP request from {format_peer(peer)}"


def serve_hostname_started(port: int) -> str:
    """The line serve-hostname logs once it listens."""
    return f"Serving on port {port}."


async def serve_hostname_http(
    hostname: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    record: Record,
    grants: Grants = tuple,
) -> None:
    """Answer one HTTP connection to a serve-hostname pod (keep-alive until the client is done);
    where ``grants`` gives HTTP rules, Cilium's proxy answers a request they deny."""

    async def answer(request: HttpMessage, peer: Any) -> bytes:
        on_port = grants()
        peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if on_port and not request_allowed(
            on_port, peer_ip, request.method, request.target, request.header_map
        ):
            return render_denied(keep_alive=request.keep_alive)
        record(serve_hostname_log(peer))
        body = b"" if request.method == "HEAD" else serve_hostname_answer(hostname)
        return render_response(200, body, keep_alive=request.keep_alive)

    await serve_requests(reader, writer, answer)
