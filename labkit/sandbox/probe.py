"""Probes from inside a pod's network namespace: resolve like the pod's resolver, connect, and ask
the server who it is and whom it saw.

All probes of a batch run concurrently on one asyncio loop; each socket is created inside its
source namespace (a socket keeps the namespace it was born in), so one thread serves them all.
``timeout`` bounds each step on its own: the DNS lookup, the connect (or the first UDP answer),
and the HTTP questions after a TCP connect. What the answers mean is decided in
:mod:`labkit.sandbox.probe_outcome`; names are looked up by :mod:`labkit.sandbox.pod_resolver`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import socket
import struct
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from labkit.errors import LabError
from labkit.model.addresses import is_ip
from labkit.model.ciliuml7 import refusal_words
from labkit.sandbox.agent.http import HttpError, read_message, render_request
from labkit.sandbox.netns import (
    check_netns_name,
    describe_socket_error,
    netns_exists,
    socket_in_netns,
)
from labkit.sandbox.pod_resolver import DnsFailure, lookup
from labkit.sandbox.probe_outcome import (
    DNS_PORT,
    ConnectAttempt,
    classify_os_error,
    connected,
    describe_dns_reply,
    dns_probe_query,
)
from labkit.values import Probe

PROTOCOLS = ("TCP", "UDP")

T = TypeVar("T")


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class ProbeRequest:
    """One probe to run: from a namespace, to an address or name, on a port."""

    src_netns: str
    dst: str
    port: int
    protocol: str = "TCP"
    src_label: str = ""
    resolv_conf: str | None = None
    http_host: str | None = None
    timeout: float | None = None


def _check_requests(
    requests: Iterable[ProbeRequest | tuple[Any, ...] | Mapping[str, Any]],
) -> list[ProbeRequest]:
    checked: list[ProbeRequest] = []
    problems: list[str] = []
    for raw in requests:
        req = (
            raw
            if isinstance(raw, ProbeRequest)
            else (ProbeRequest(**raw) if isinstance(raw, Mapping) else ProbeRequest(*raw))
        )
        protocol = str(req.protocol).upper()
        where = f"{req.src_label or req.src_netns} -> {req.dst}:{req.port}/{req.protocol}"
        if protocol not in PROTOCOLS:
            problems.append(f"{where}: protocol must be TCP or UDP")
        if (
            not isinstance(req.port, int)
            or isinstance(req.port, bool)
            or not 1 <= req.port <= 65535
        ):
            problems.append(f"{where}: port must be a number from 1 to 65535")
        if not str(req.dst).strip():
            problems.append(f"{where}: empty destination")
        try:
            check_netns_name(req.src_netns)
            if not netns_exists(req.src_netns):
                problems.append(f"{where}: network namespace {req.src_netns} does not exist")
        except LabError as exc:
            problems.append(f"{where}: {exc.what}")
        checked.append(
            ProbeRequest(
                req.src_netns,
                str(req.dst).strip(),
                req.port,
                protocol,
                req.src_label or req.src_netns,
                req.resolv_conf,
                req.http_host,
                req.timeout,
            )
        )
    if problems:
        raise LabError(
            "Some probes cannot run: " + "; ".join(problems) + ".",
            "Probe from a running pod or node and to a TCP or UDP port in 1-65535.",
        )
    return checked


# --------------------------------------------------------------------------- synchronous front door


def probe(
    src_netns: str,
    dst: str,
    port: int,
    protocol: str = "TCP",
    timeout: float = 1.0,
    *,
    src_label: str,
    resolv_conf: str | None,
    http_host: str | None = None,
) -> Probe:
    """Connect from inside ``src_netns`` to ``dst:port`` and report what happened.

    ``dst`` may be a name: it is resolved through ``resolv_conf`` (the pod's resolv.conf text;
    None reads ``/etc/netns/<src_netns>/resolv.conf``) with real DNS queries from the namespace.
    """
    return probe_many(
        [ProbeRequest(src_netns, dst, port, protocol, src_label, resolv_conf, http_host)], timeout
    )[0]


def probe_many(
    requests: Iterable[ProbeRequest | tuple[Any, ...] | Mapping[str, Any]], timeout: float = 1.0
) -> list[Probe]:
    """Run many probes concurrently; the answers come back in the order of the requests."""
    checked = _check_requests(requests)
    if not checked:
        return []

    async def run_all() -> list[Probe]:
        return list(await asyncio.gather(*(_probe_one(r, r.timeout or timeout) for r in checked)))

    return run_sync(run_all())


def resolve(
    src_netns: str,
    name: str,
    rtype: str = "A",
    timeout: float = 1.0,
    *,
    resolv_conf: str | None = None,
) -> list[str]:
    """The answers for ``name`` through the pod's resolver ([] when it does not resolve)."""
    check_netns_name(src_netns)
    try:
        return run_sync(lookup(src_netns, name, rtype, timeout, resolv_conf=resolv_conf)).answers
    except DnsFailure:
        return []


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, also inside Jupyter's running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="labkit-probe") as pool:
        return pool.submit(asyncio.run, coro).result()


# --------------------------------------------------------------------------- one probe


async def _probe_one(req: ProbeRequest, timeout: float) -> Probe:
    def done(attempt: ConnectAttempt) -> Probe:
        latency = attempt.latency
        return Probe(
            req.src_label,
            req.dst,
            req.port,
            req.protocol,
            attempt.outcome,
            None if latency is None else round(latency, 6),
            attempt.served_by,
            attempt.client_ip,
            attempt.detail,
            attempt.http_status,
        )

    address = req.dst
    via = ""
    try:
        if not is_ip(req.dst):
            found = await lookup(req.src_netns, req.dst, "A", timeout, resolv_conf=req.resolv_conf)
            address = found.answers[0]
            via = f"{found.detail}; "
    except DnsFailure as exc:
        return done(ConnectAttempt("dns", detail=str(exc)))
    except LabError as exc:
        return done(ConnectAttempt("error", detail=exc.what))
    except OSError as exc:
        return done(ConnectAttempt("error", detail=f"DNS lookup failed: {exc}"))
    try:
        if req.protocol == "TCP":
            attempt = await _probe_tcp(req, address, timeout)
        else:
            attempt = await _probe_udp(req, address, timeout)
    except LabError as exc:
        return done(ConnectAttempt("error", detail=exc.what))
    except OSError as exc:
        return done(ConnectAttempt("error", detail=f"{via}{exc}"))
    return done(attempt._replace(detail=via + attempt.detail))


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


async def _probe_tcp(req: ProbeRequest, address: str, timeout: float) -> ConnectAttempt:
    """Connect, then ask the server who it is and whom it saw (HTTP), or a DNS question on 53."""
    loop = asyncio.get_running_loop()
    sock = socket_in_netns(req.src_netns, _family(address), socket.SOCK_STREAM)
    sock.setblocking(False)
    target = f"{address}:{req.port}"
    started = time.perf_counter()
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, req.port)), timeout)
        except asyncio.TimeoutError:
            return ConnectAttempt("timeout", detail=f"no answer from {target} within {timeout:g} s")
        except OSError as exc:
            return ConnectAttempt(
                classify_os_error(exc),
                time.perf_counter() - started,
                detail=f"{target}: {describe_socket_error(exc.errno or 0)}",
            )
        latency = time.perf_counter() - started
        words = f"connected to {target} in {latency * 1000:.1f} ms"
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            if req.port == DNS_PORT:
                dns_words = await _ask_dns_tcp(reader, writer, timeout)
                return ConnectAttempt("connected", latency, detail=f"{words}; {dns_words}")
            answers, note, status = await _ask_http(reader, writer, req, timeout)
        finally:
            writer.close()
        return connected(
            words, latency, answers.get("/hostname"), answers.get("/clientip"), note, status
        )
    finally:
        sock.close()


async def _ask_http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: ProbeRequest, timeout: float
) -> tuple[dict[str, str], str, int | None]:
    """GET /hostname then /clientip on one keep-alive connection; answers by path, a note, and
    the status of an answer that was not 200."""
    host = req.http_host or (req.dst if req.port == 80 else f"{req.dst}:{req.port}")
    answers: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for path in ("/hostname", "/clientip"):
        writer.write(
            render_request(
                "GET", path, [("Host", host), ("User-Agent", "labkit-probe"), ("Accept", "*/*")]
            )
        )
        try:
            await writer.drain()
            msg = await asyncio.wait_for(
                read_message(reader, response=True), max(0.001, deadline - time.monotonic())
            )
        except asyncio.TimeoutError:
            return (
                answers,
                f"no HTTP answer to GET {path} within {timeout:g} s (not an HTTP server?)",
                None,
            )
        except HttpError:
            return answers, "the server does not speak HTTP", None
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            return (
                answers,
                f"the connection closed during GET {path} ({exc.__class__.__name__})",
                None,
            )
        if msg is None:
            return answers, f"the server closed the connection without answering GET {path}", None
        if msg.status != 200:
            body = msg.body.decode("utf-8", "replace")
            words = refusal_words(path, msg.status, body, msg.header("server"))
            return answers, words, msg.status
        answers[path] = msg.body.decode("utf-8", "replace").strip()
        if not msg.keep_alive:
            return answers, "the server closed the connection after one answer", None
    return answers, "", None


async def _ask_dns_tcp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
) -> str:
    """One DNS question over an open TCP connection (port 53); words for the answer."""
    packet = dns_probe_query().packet
    writer.write(struct.pack("!H", len(packet)) + packet)
    try:
        await writer.drain()
        size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout))[0]
        return describe_dns_reply(await asyncio.wait_for(reader.readexactly(size), timeout))
    except asyncio.TimeoutError:
        return f"no DNS answer within {timeout:g} s"
    except (ConnectionError, asyncio.IncompleteReadError):
        return "the server closed the connection without a DNS answer"


async def _probe_udp(req: ProbeRequest, address: str, timeout: float) -> ConnectAttempt:
    """Send ``hostname`` then ``clientip`` (a DNS question on port 53) from one connected socket."""
    loop = asyncio.get_running_loop()
    sock = socket_in_netns(req.src_netns, _family(address), socket.SOCK_DGRAM)
    sock.setblocking(False)
    target = f"{address}:{req.port}/UDP"
    questions = (
        [("dns", dns_probe_query().packet)]
        if req.port == DNS_PORT
        else [("hostname", b"hostname"), ("clientip", b"clientip")]
    )
    started = time.perf_counter()
    try:
        try:
            sock.connect((address, req.port))
        except OSError as exc:
            return ConnectAttempt(
                classify_os_error(exc), detail=f"{target}: {describe_socket_error(exc.errno or 0)}"
            )
        answers: dict[str, str] = {}
        dns_reply = b""
        latency = None
        deadline = time.monotonic() + timeout
        for name, question in questions:
            try:
                await loop.sock_sendall(sock, question)
                data = await asyncio.wait_for(
                    loop.sock_recv(sock, 65535), max(0.001, deadline - time.monotonic())
                )
            except asyncio.TimeoutError:
                if latency is None:
                    return ConnectAttempt(
                        "timeout", detail=f"no UDP answer from {target} within {timeout:g} s"
                    )
                break
            except OSError as exc:
                if latency is None:
                    words = describe_socket_error(exc.errno or 0)
                    if exc.errno == errno.ECONNREFUSED:
                        words += " (ICMP port unreachable)"
                    return ConnectAttempt(
                        classify_os_error(exc),
                        time.perf_counter() - started,
                        detail=f"{target}: {words}",
                    )
                break
            if latency is None:
                latency = time.perf_counter() - started
            if name == "dns":
                dns_reply = data
            else:
                answers[name] = data.decode("utf-8", "replace").strip()
        assert latency is not None  # every question without an answer returned above
        words = f"UDP answer from {target} in {latency * 1000:.1f} ms"
        if req.port == DNS_PORT:
            return ConnectAttempt(
                "connected", latency, detail=f"{words}; {describe_dns_reply(dns_reply)}"
            )
        return connected(words, latency, answers.get("hostname"), answers.get("clientip"))
    finally:
        sock.close()
