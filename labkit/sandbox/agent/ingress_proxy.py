"""What an ``ingress`` pod does: route each HTTP request by the Ingress rules and forward it to
the rule's Service ClusterIP from inside the pod's own namespace, so it crosses kube-proxy's rules
as it would behind a real controller. Unmatched requests get the default backend's 404."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from labkit.sandbox.agent.http import (
    HttpError,
    HttpMessage,
    read_message,
    render_request,
    render_response,
    serve_requests,
)
from labkit.sandbox.agent.ingress import IngressRule, match_ingress, request_host
from labkit.sandbox.netns import describe_socket_error, socket_in_netns

BACKEND_CONNECT_TIMEOUT_S = 2.0
BACKEND_ANSWER_TIMEOUT_S = 10.0
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


async def serve_ingress(
    netns: str,
    rules: Callable[[], Sequence[IngressRule]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    scheme: str,
) -> None:
    """Answer one connection to an ingress pod in ``netns``; ``rules()`` is read per request, so
    a reload's new rules apply to open connections too."""

    async def answer(request: HttpMessage, peer: Any) -> bytes:
        keep = request.keep_alive
        host = request_host(request.header_map)
        path = urlsplit(request.target).path or "/"
        rule = match_ingress(rules(), host, path)
        if rule is None:
            return render_response(
                404,
                f"{DEFAULT_BACKEND_BODY}: no Ingress rule matches host {host or '(none)'!r} "
                f"path {path!r}\n",
                keep_alive=keep,
                headers=[("X-Labkit-Ingress", "default-backend")],
            )
        return await forward(netns, rule, request, peer, host, scheme)

    await serve_requests(reader, writer, answer)


def _forwarded_headers(
    request: HttpMessage, peer: Any, host: str, scheme: str, target: str
) -> list[tuple[str, str]]:
    """The request's end-to-end headers plus the X-Forwarded-* a controller adds."""
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
    return headers


async def forward(
    netns: str, rule: IngressRule, request: HttpMessage, peer: Any, host: str, scheme: str
) -> bytes:
    """Send one request to the rule's Service from inside ``netns`` and render its answer (or a
    502/504 that says what went wrong) for the client."""
    keep = request.keep_alive
    target = f"{rule.backend_ip}:{rule.backend_port}"
    route = [("X-Labkit-Ingress", "routed")]

    def failure(status: int, what: str) -> bytes:
        text = f"ingress: service {rule.service} ({target}) {what}\n"
        return render_response(status, text, keep_alive=keep, headers=route)

    loop = asyncio.get_running_loop()
    sock = socket_in_netns(netns, socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        try:
            await asyncio.wait_for(
                loop.sock_connect(sock, (rule.backend_ip, rule.backend_port)),
                BACKEND_CONNECT_TIMEOUT_S,
            )
        except asyncio.TimeoutError:
            return failure(
                504,
                f"did not accept a connection within {BACKEND_CONNECT_TIMEOUT_S:g} s",
            )
        except OSError as exc:
            text = f"ingress: service {rule.service} ({target}): "
            text += f"{describe_socket_error(exc.errno or 0)}\n"
            return render_response(502, text, keep_alive=keep, headers=route)
        b_reader, b_writer = await asyncio.open_connection(sock=sock)
        try:
            headers = _forwarded_headers(request, peer, host, scheme, target)
            b_writer.write(render_request(request.method, request.target, headers, request.body))
            await b_writer.drain()
            try:
                answer = await asyncio.wait_for(
                    read_message(b_reader, response=True, request_method=request.method),
                    BACKEND_ANSWER_TIMEOUT_S,
                )
            except asyncio.TimeoutError:
                return failure(504, f"did not answer within {BACKEND_ANSWER_TIMEOUT_S:g} s")
            except (HttpError, ConnectionError, asyncio.IncompleteReadError) as exc:
                return failure(502, f"sent no valid HTTP answer ({exc})")
            if answer is None:
                return failure(502, "closed the connection without answering")
            kept = [(k.title(), v) for k, v in answer.headers if k not in HOP_BY_HOP]
            return render_response(
                answer.status,
                answer.body,
                keep_alive=keep,
                headers=kept + route,
                reason=answer.reason or None,
                content_type=None,
            )
        finally:
            b_writer.close()
    finally:
        sock.close()
