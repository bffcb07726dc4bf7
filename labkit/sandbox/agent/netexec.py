"""What a ``netexec`` pod answers, as agnhost netexec's handlers do
(test/images/agnhost/netexec/netexec.go, ``addRoutes``): HTTP ``/`` (``NOW: <time>``, also for
every path without a handler of its own, as Go's ServeMux sends it to ``/``), ``/hostname`` and
``/hostName``, ``/clientip``, ``/echo``, ``/header``, ``/healthz`` and ``/readyz``; UDP
``hostname``, ``clientip`` and ``echo x``. Not served: ``/dial``, ``/exit``, ``/redirect``,
``/shell``, ``/shutdown`` and ``/upload`` (they answer as ``/`` does)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, urlsplit

from labkit.sandbox.agent.http import HttpMessage, render_response, serve_requests
from labkit.sandbox.agent.l7 import render_denied, request_allowed
from labkit.sandbox.agent.spec import L7Grant

log = logging.getLogger("labkit.agent")

FORM_METHODS = ("POST", "PUT", "PATCH")
"""The methods whose url-encoded body Go's ``Request.FormValue`` reads before the query."""


class NetexecReply(NamedTuple):
    """One HTTP answer: status and body (empty: Go sends no Content-Type), and the log line."""

    status: int
    body: str
    logged: str


def format_peer(peer: Any) -> str:
    """``ip:port`` of a socket peer as agnhost's /clientip prints it."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)


def go_time_string(wall_ns: int, mono_ns: int) -> str:
    """Go's ``time.Now().String()`` in UTC (a container's zone): ``2006-01-02 15:04:05.999999999
    +0000 UTC m=+1.000000001``, ``m`` the monotonic reading since the process started."""
    seconds, nanos = divmod(wall_ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    mono_s, mono_frac = divmod(abs(mono_ns), 1_000_000_000)
    sign = "-" if mono_ns < 0 else "+"
    return f"{stamp}{fraction} +0000 UTC m={sign}{mono_s}.{mono_frac:09d}"


def canonical_header_key(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: each dash-separated word capitalised; a name
    with a byte outside the token characters is left as it is."""
    token = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if not name or any(c not in token for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def header_json(request: HttpMessage) -> str:
    """``json.Marshal(r.Header)``: canonical names (sorted) to lists of values, without Host
    (Go moves it to ``r.Host``), with Go's escapes of ``<``, ``>`` and ``&``."""
    fields: dict[str, list[str]] = {}
    for name, value in request.headers:
        if name != "host":
            fields.setdefault(canonical_header_key(name), []).append(value)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def form_value(request: HttpMessage, key: str) -> str:
    """Go's ``Request.FormValue``: the first value of ``key`` in a url-encoded POST, PUT or PATCH
    body, else in the query ('' when absent)."""
    found: list[str] = []
    content_type = request.header("content-type").split(";", 1)[0].strip().lower()
    if request.method in FORM_METHODS and content_type == "application/x-www-form-urlencoded":
        body = request.body.decode("utf-8", "replace")
        found += parse_qs(body, keep_blank_values=True).get(key, [])
    query = parse_qs(urlsplit(request.target).query, keep_blank_values=True)
    found += query.get(key, [])
    return found[0] if found else ""


def go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: an optional sign and decimal digits, else None."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(text)


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string: double quotes, backslash escapes for quotes, backslashes and
    control characters."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    named |= {"\v": "\\v", '"': '\\"', "\\": "\\\\"}
    out = []
    for char in text:
        if char in named:
            out.append(named[char])
        elif not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def echo_reply(request: HttpMessage) -> NetexecReply:
    """``echoHandler``: ``msg`` with the status ``code`` names; a code that is no integer is
    said in a 200 answer."""
    msg, code = form_value(request, "msg"), form_value(request, "code")
    logged = f"GET /echo?msg={msg}&code={code}"
    if not code:
        return NetexecReply(200, msg, logged)
    status = go_atoi(code)
    if status is None:
        text = f"argument 'code' must be an integer or empty, got {go_quote(code)}\n"
        return NetexecReply(200, text, logged)
    return NetexecReply(status, msg, logged)


def netexec_http_reply(
    hostname: str, request: HttpMessage, peer: Any, now: Callable[[], str]
) -> NetexecReply:
    """What agnhost netexec answers to one HTTP request, whatever its method: ``hostname`` is
    the pod's ``os.Hostname()``, ``now()`` Go's ``time.Now()`` as ``%v`` prints it."""
    path = urlsplit(request.target).path or "/"
    if path in ("/hostname", "/hostName"):
        return NetexecReply(200, hostname, f"GET {path}")
    if path == "/clientip":
        return NetexecReply(200, format_peer(peer), "GET /clientip")
    if path == "/echo":
        return echo_reply(request)
    if path == "/header":
        key = form_value(request, "key")
        if key:
            value = "" if key.lower() == "host" else request.header(key)
            return NetexecReply(200, value, f"GET /header?key={key}")
        return NetexecReply(200, header_json(request), "GET /header")
    if path == "/healthz":
        return NetexecReply(200, "", "GET /healthz")
    if path == "/readyz":
        return NetexecReply(200, "ok", "GET /readyz")
    return NetexecReply(200, f"NOW: {now()}", "GET /")


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
    """What agnhost netexec's UDP server answers to one datagram (None: no answer), read as
    ``startUDPServer`` does (trimmed, lower-cased); ``hostname`` is the pod's ``os.Hostname()``."""
    text = data.decode("utf-8", "replace").strip().lower()
    if text == "hostname":
        return hostname.encode()
    if text == "clientip":
        return format_peer(peer).encode()
    if text.startswith("echo "):
        return text[5:].encode()
    return None


def body_allowed(status: int) -> bool:
    """Go's ``bodyAllowedForStatus``: 1xx, 204 and 304 answers carry no body."""
    return status >= 200 and status not in (204, 304)


async def serve_netexec_http(
    hostname: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    record: Record,
    grants: Grants = tuple,
    started_ns: int = 0,
) -> None:
    """Answer one HTTP connection to a netexec pod whose hostname is ``hostname`` (keep-alive
    until the client is done), logging each request as agnhost does; where ``grants`` gives
    HTTP rules, Cilium's proxy answers a request they deny and the pod never sees it.
    ``started_ns`` is ``time.monotonic_ns()`` when the pod's server started (Go's ``m=``)."""

    def now() -> str:
        return go_time_string(time.time_ns(), time.monotonic_ns() - started_ns)

    async def answer(request: HttpMessage, peer: Any) -> bytes:
        on_port = grants()
        peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if on_port and not request_allowed(
            on_port, peer_ip, request.method, request.target, request.header_map
        ):
            return render_denied(keep_alive=request.keep_alive)
        reply = netexec_http_reply(hostname, request, peer, now)
        record(reply.logged)
        sent = body_allowed(reply.status) and request.method != "HEAD"
        return render_response(
            reply.status,
            reply.body.encode() if sent else b"",
            keep_alive=request.keep_alive,
            content_type="text/plain; charset=utf-8" if reply.body else None,
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
