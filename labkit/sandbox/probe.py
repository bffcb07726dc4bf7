"""Probes from inside a pod's network namespace: resolve like the pod's resolver, connect, and ask
the server who it is and whom it saw.

All probes of a batch run concurrently on one asyncio loop; each socket is created inside its
source namespace (a socket keeps the namespace it was born in), so one thread serves them all.
``timeout`` bounds each step on its own: the DNS lookup, the connect (or the first UDP answer),
and the HTTP questions after a TCP connect.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import os
import random
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from labkit.errors import LabError
from labkit.model.addresses import is_ip
from labkit.model.dns import parse_resolv_conf, query_order
from labkit.sandbox.agent import HttpError, read_message, render_request
from labkit.sandbox.netns import (
    check_netns_name,
    describe_socket_error,
    netns_exists,
    socket_in_netns,
)
from labkit.values import Probe

PROTOCOLS = ("TCP", "UDP")
DNS_PORT = 53
DNS_PROBE_NAME = "kubernetes.default.svc.cluster.local."
"""What a probe to port 53 asks: a DNS server answers it, a netexec server would not."""
MAX_CNAME_HOPS = 8
ETC_NETNS = "/etc/netns"


# --------------------------------------------------------------------------- pure helpers


def reverse_name(ip: str) -> str:
    """The in-addr.arpa / ip6.arpa name of an address, for PTR lookups."""
    return ipaddress.ip_address(ip).reverse_pointer


def client_ip_of(answer: str) -> str | None:
    """The address in an agnhost ``/clientip`` answer (``10.244.1.5:43120`` -> ``10.244.1.5``)."""
    text = answer.strip()
    if text.startswith("["):
        host = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        host = text.split(":", 1)[0]
    else:
        host = text
    return host if is_ip(host) else None


def classify_os_error(exc: OSError) -> str:
    """The probe outcome for a socket error: refused, unreachable or error."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if exc.errno == errno.ETIMEDOUT:
        return "timeout"
    return "error"


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


def _check_requests(requests: Iterable[ProbeRequest | tuple | dict]) -> list[ProbeRequest]:
    checked: list[ProbeRequest] = []
    problems: list[str] = []
    for raw in requests:
        req = (
            raw
            if isinstance(raw, ProbeRequest)
            else (ProbeRequest(**raw) if isinstance(raw, dict) else ProbeRequest(*raw))
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
    requests: Iterable[ProbeRequest | tuple | dict], timeout: float = 1.0
) -> list[Probe]:
    """Run many probes concurrently; the answers come back in the order of the requests."""
    checked = _check_requests(requests)
    if not checked:
        return []

    async def run_all() -> list[Probe]:
        return list(await asyncio.gather(*(_probe_one(r, r.timeout or timeout) for r in checked)))

    return run_sync(run_all())


def run_sync(coro):
    """Run a coroutine to completion from synchronous code, also inside Jupyter's running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="labkit-probe") as pool:
        return pool.submit(asyncio.run, coro).result()


# --------------------------------------------------------------------------- DNS from a namespace


class DnsFailure(Exception):
    """A name did not resolve; the text says what was asked and what came back."""


@dataclass
class Lookup:
    """The result of resolving one name through a pod's resolver."""

    name: str
    rtype: str
    answers: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    detail: str = ""


def _resolv_text(netns: str, resolv_conf: str | None) -> str:
    if resolv_conf is not None:
        return resolv_conf
    try:
        with open(os.path.join(ETC_NETNS, netns, "resolv.conf"), encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


async def _udp_exchange(
    sock: socket.socket, server: str, packet: bytes, qid: int, deadline: float
) -> bytes | None:
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(sock, packet, (server, 53))
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), remaining)
        except asyncio.TimeoutError:
            return None
        if addr[0] == server and len(data) >= 2 and struct.unpack("!H", data[:2])[0] == qid:
            return data


async def _tcp_exchange(netns: str, server: str, packet: bytes, deadline: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    sock = socket_in_netns(
        netns, socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_STREAM
    )
    sock.setblocking(False)
    try:
        await asyncio.wait_for(
            loop.sock_connect(sock, (server, 53)), max(0.01, deadline - time.monotonic())
        )
        await loop.sock_sendall(sock, struct.pack("!H", len(packet)) + packet)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            chunk = await asyncio.wait_for(
                loop.sock_recv(sock, 65535), max(0.01, deadline - time.monotonic())
            )
            if not chunk:
                return None
            buf += chunk
        return buf[2 : 2 + struct.unpack("!H", buf[:2])[0]]
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        sock.close()


async def lookup(
    netns: str, name: str, rtype: str = "A", timeout: float = 1.0, *, resolv_conf: str | None = None
) -> Lookup:
    """Resolve ``name`` as the pod's stub resolver would: search path, ndots, real DNS queries
    sent from inside ``netns``; CNAME chains are followed. Raises DnsFailure when nothing answers."""
    from dnslib import QTYPE, RCODE, DNSRecord

    rtype = rtype.upper()
    conf = parse_resolv_conf(_resolv_text(netns, resolv_conf))
    result = Lookup(name, rtype)
    if not conf.nameservers:
        raise DnsFailure(f"cannot resolve {name!r}: the pod has no nameserver in its resolv.conf")
    if rtype == "PTR" and is_ip(name):
        candidates = [reverse_name(name)]
    else:
        try:
            candidates = [c.rstrip(".") for c in query_order(name, conf.search, conf.ndots)]
        except ValueError as exc:
            raise DnsFailure(str(exc)) from None
    deadline = time.monotonic() + timeout
    loop_sock = socket_in_netns(netns, socket.AF_INET, socket.SOCK_DGRAM)
    loop_sock.setblocking(False)
    try:
        hops = 0
        while candidates:
            candidate = candidates.pop(0)
            result.tried.append(candidate)
            query = DNSRecord.question(candidate, rtype)
            qid = query.header.id = random.randrange(1, 65536)
            packet = query.pack()
            reply_bytes = None
            for server in conf.nameservers:
                try:
                    reply_bytes = await _udp_exchange(loop_sock, server, packet, qid, deadline)
                except OSError as exc:
                    result.detail = f"nameserver {server}: {describe_socket_error(exc.errno or 0)}"
                    continue
                if reply_bytes is not None:
                    reply = DNSRecord.parse(reply_bytes)
                    if reply.header.tc:
                        reply_bytes = await _tcp_exchange(netns, server, packet, deadline)
                    if reply_bytes is not None:
                        break
            if reply_bytes is None:
                raise DnsFailure(
                    f"no answer from nameserver {', '.join(conf.nameservers)} within "
                    f"{timeout:g} s for {candidate}"
                    + (f" ({result.detail})" if result.detail else "")
                )
            reply = DNSRecord.parse(reply_bytes)
            rcode = RCODE.get(reply.header.rcode)
            if rcode not in ("NOERROR", "NXDOMAIN"):
                raise DnsFailure(f"nameserver answered {rcode} for {candidate}")
            wanted = [str(rr.rdata) for rr in reply.rr if QTYPE.get(rr.rtype) == rtype]
            if wanted:
                result.answers = [
                    a.rstrip(".") if rtype in ("CNAME", "PTR", "NS") else a for a in wanted
                ]
                result.detail = f"{candidate} -> {', '.join(result.answers)}"
                return result
            cnames = [
                str(rr.rdata).rstrip(".") for rr in reply.rr if QTYPE.get(rr.rtype) == "CNAME"
            ]
            if cnames and hops < MAX_CNAME_HOPS:
                hops += 1
                candidates = [cnames[-1]]
                continue
        raise DnsFailure(f"{name!r} did not resolve ({rtype}); tried {', '.join(result.tried)}")
    finally:
        loop_sock.close()


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


# --------------------------------------------------------------------------- the probe itself


async def _probe_one(req: ProbeRequest, timeout: float) -> Probe:
    def done(
        outcome: str,
        latency: float | None = None,
        served_by: str | None = None,
        client_ip: str | None = None,
        detail: str = "",
    ) -> Probe:
        return Probe(
            req.src_label,
            req.dst,
            req.port,
            req.protocol,
            outcome,
            None if latency is None else round(latency, 6),
            served_by,
            client_ip,
            detail,
        )

    address = req.dst
    via = ""
    try:
        if not is_ip(req.dst):
            found = await lookup(req.src_netns, req.dst, "A", timeout, resolv_conf=req.resolv_conf)
            address = found.answers[0]
            via = f"{found.detail}; "
    except DnsFailure as exc:
        return done("dns", detail=str(exc))
    except LabError as exc:
        return done("error", detail=exc.what)
    except OSError as exc:
        return done("error", detail=f"DNS lookup failed: {exc}")
    try:
        if req.protocol == "TCP":
            outcome, latency, served_by, client_ip, detail = await _probe_tcp(req, address, timeout)
        else:
            outcome, latency, served_by, client_ip, detail = await _probe_udp(req, address, timeout)
    except LabError as exc:
        return done("error", detail=exc.what)
    except OSError as exc:
        return done("error", detail=f"{via}{exc}")
    return done(outcome, latency, served_by, client_ip, via + detail)


async def _probe_tcp(req: ProbeRequest, address: str, timeout: float):
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket_in_netns(req.src_netns, family, socket.SOCK_STREAM)
    sock.setblocking(False)
    target = f"{address}:{req.port}"
    started = time.perf_counter()
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, req.port)), timeout)
        except asyncio.TimeoutError:
            return "timeout", None, None, None, f"no answer from {target} within {timeout:g} s"
        except OSError as exc:
            return (
                classify_os_error(exc),
                time.perf_counter() - started,
                None,
                None,
                f"{target}: {describe_socket_error(exc.errno or 0)}",
            )
        latency = time.perf_counter() - started
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            if req.port == DNS_PORT:
                words = await _ask_dns_tcp(reader, writer, timeout)
                return (
                    "connected",
                    latency,
                    None,
                    None,
                    f"connected to {target} in {latency * 1000:.1f} ms; {words}",
                )
            answers, note = await _ask_http(reader, writer, req, timeout)
        finally:
            writer.close()
        served_by = answers.get("/hostname")
        seen = answers.get("/clientip")
        detail = f"connected to {target} in {latency * 1000:.1f} ms"
        if served_by is not None:
            detail += f"; served by {served_by}"
        if seen is not None:
            detail += f"; it saw the client as {seen}"
        if note:
            detail += f"; {note}"
        return "connected", latency, served_by, client_ip_of(seen) if seen else None, detail
    finally:
        sock.close()


async def _ask_http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: ProbeRequest, timeout: float
) -> tuple[dict[str, str], str]:
    """GET /hostname then /clientip on one keep-alive connection; answers by path, and a note."""
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
            )
        except HttpError:
            return answers, "the server does not speak HTTP"
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            return answers, f"the connection closed during GET {path} ({exc.__class__.__name__})"
        if msg is None:
            return answers, f"the server closed the connection without answering GET {path}"
        status = int(msg.start[1])
        if status != 200:
            first = msg.body.decode("utf-8", "replace").strip().splitlines()[:1]
            return answers, f"GET {path} answered {status}" + (
                f": {first[0][:160]}" if first else ""
            )
        answers[path] = msg.body.decode("utf-8", "replace").strip()
        if not msg.keep_alive:
            return answers, "the server closed the connection after one answer"
    return answers, ""


def dns_probe_query() -> tuple[int, bytes]:
    """A DNS question (the API server's Service name) to send where a DNS server listens: port 53."""
    from dnslib import DNSRecord

    query = DNSRecord.question(DNS_PROBE_NAME, "A")
    query.header.id = random.randrange(1, 65536)
    return query.header.id, query.pack()


def describe_dns_reply(data: bytes) -> str:
    """Words for a DNS server's reply to the probe question (or why it is not one)."""
    from dnslib import QTYPE, RCODE, DNSRecord

    try:
        reply = DNSRecord.parse(data)
    except Exception:
        return "an answer that is not DNS"
    found = [str(rr.rdata) for rr in reply.rr if QTYPE.get(rr.rtype) == "A"]
    rcode = RCODE.get(reply.header.rcode)
    return f"DNS answered {rcode} for {DNS_PROBE_NAME.rstrip('.')}" + (
        f" ({', '.join(found)})" if found else ""
    )


async def _probe_udp(req: ProbeRequest, address: str, timeout: float):
    """Send ``hostname`` then ``clientip`` (a DNS question on port 53) from one connected socket."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket_in_netns(req.src_netns, family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    target = f"{address}:{req.port}/UDP"
    questions = (
        [("dns", dns_probe_query()[1])]
        if req.port == DNS_PORT
        else [("hostname", b"hostname"), ("clientip", b"clientip")]
    )
    started = time.perf_counter()
    try:
        try:
            sock.connect((address, req.port))
        except OSError as exc:
            return (
                classify_os_error(exc),
                None,
                None,
                None,
                f"{target}: {describe_socket_error(exc.errno or 0)}",
            )
        answers: dict[str, bytes] = {}
        latency = None
        deadline = time.monotonic() + timeout
        for name, question in questions:
            try:
                await loop.sock_sendall(sock, question)
                data = await asyncio.wait_for(
                    loop.sock_recv(sock, 65535), max(0.001, deadline - time.monotonic())
                )
            except asyncio.TimeoutError:
                if not answers:
                    return (
                        "timeout",
                        None,
                        None,
                        None,
                        f"no UDP answer from {target} within {timeout:g} s",
                    )
                break
            except OSError as exc:
                if not answers:
                    words = describe_socket_error(exc.errno or 0)
                    if exc.errno == errno.ECONNREFUSED:
                        words += " (ICMP port unreachable)"
                    return (
                        classify_os_error(exc),
                        time.perf_counter() - started,
                        None,
                        None,
                        f"{target}: {words}",
                    )
                break
            if latency is None:
                latency = time.perf_counter() - started
            answers[name] = data
        detail = f"UDP answer from {target} in {latency * 1000:.1f} ms"
        if "dns" in answers:
            return (
                "connected",
                latency,
                None,
                None,
                f"{detail}; {describe_dns_reply(answers['dns'])}",
            )
        served_by = (
            answers["hostname"].decode("utf-8", "replace").strip()
            if "hostname" in answers
            else None
        )
        seen = (
            answers["clientip"].decode("utf-8", "replace").strip()
            if "clientip" in answers
            else None
        )
        if served_by is not None:
            detail += f"; served by {served_by}"
        if seen is not None:
            detail += f"; it saw the client as {seen}"
        return "connected", latency, served_by, client_ip_of(seen) if seen else None, detail
    finally:
        sock.close()


async def _ask_dns_tcp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
) -> str:
    """One DNS question over an open TCP connection (port 53); words for the answer."""
    _, packet = dns_probe_query()
    writer.write(struct.pack("!H", len(packet)) + packet)
    try:
        await writer.drain()
        size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout))[0]
        return describe_dns_reply(await asyncio.wait_for(reader.readexactly(size), timeout))
    except asyncio.TimeoutError:
        return f"no DNS answer within {timeout:g} s"
    except (ConnectionError, asyncio.IncompleteReadError):
        return "the server closed the connection without a DNS answer"
