"""HTTP/1.1 on the wire: read and parse messages, render requests and responses, and answer one
keep-alive connection. Shared by the agent's servers and the sandbox prober."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

IDLE_TIMEOUT_S = 60.0  # a keep-alive connection silent this long is closed
MAX_BODY = 8 * 1024 * 1024
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


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
        """The first value of header ``name`` (any case), or ``default``."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def method(self) -> str:
        """A request's method (GET, HEAD, POST, ...)."""
        method, _, _ = self.start
        return method

    @property
    def target(self) -> str:
        """A request's target: the path and query it asks for."""
        _, target, _ = self.start
        return target

    @property
    def status(self) -> int:
        """A response's status code."""
        _, status, _ = self.start
        return int(status)

    @property
    def reason(self) -> str:
        """A response's reason phrase ('' when it sent none)."""
        _, _, reason = self.start
        return reason

    @property
    def version(self) -> str:
        """``HTTP/1.x``: a response's first word, a request's last."""
        first, _, last = self.start
        return first if first.startswith("HTTP/") else last

    @property
    def header_map(self) -> dict[str, str]:
        """The headers as a dict (the last of repeated names wins)."""
        return dict(self.headers)

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after this message (HTTP/1.0 and 1.1 defaults)."""
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        if self.version == "HTTP/1.0":
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
    status = msg.status if response else 0
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
    lines = [f"HTTP/1.1 {status} {reason or REASONS.get(status, f'status code {status}')}"]
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


Answer = Callable[[HttpMessage, Any], Awaitable[bytes]]


async def serve_requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: Answer
) -> None:
    """Answer HTTP/1.1 requests on one keep-alive connection until the client closes it or asks
    to; ``answer(request, peer)`` renders each response (its keep-alive follows the request's)."""
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
