"""The sandbox's cluster DNS server: wire format in, wire format out, answers from a RecordIndex.

The records and their semantics live in ``labkit.model.dns``; this module only speaks the DNS
protocol (via dnslib) and runs on sockets the caller has already bound inside a pod's network
namespace. Usage from the agent, for a coredns pod::

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((pod_ip, 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM); tcp.bind((pod_ip, 53))
    await serve(udp, tcp, get_index, upstream)   # until cancelled; closes both sockets on exit

``get_index()`` is called once per query, so returning a freshly built ``RecordIndex`` after the
cluster changes takes effect at once; keep it cheap (cache the index and rebuild on change).
``upstream`` (:mod:`labkit.sandbox.dns_forward`) is CoreDNS's ``forward`` plugin: without it,
names outside the cluster get NXDOMAIN.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, cast

from dnslib import (
    AAAA,
    CLASS,
    CNAME,
    EDNS0,
    NS,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSHeader,
    DNSRecord,
)

from labkit.model.dns.loadbalance import Draw, shuffle_answer
from labkit.model.dns.lookup import Answer, RecordIndex
from labkit.model.dns.records import Record
from labkit.sandbox.dns_forward import Upstream, forwarded

log = logging.getLogger(__name__)

GetIndex = Callable[[], RecordIndex]
Responder = Callable[[bytes, bool], Awaitable[bytes]]
"""Answers one query (``tcp``: it came over TCP); ``b""`` when it deserves no answer."""
UDP_DEFAULT_SIZE = 512  # the classic limit when the client sends no EDNS
EDNS_SIZE = 1232  # what we advertise and the most we send over UDP (DNS flag day 2020)
TCP_IDLE_TIMEOUT = 10.0  # seconds a TCP client may sit silent before we close the connection
# Zone transfers: CoreDNS refuses them without its transfer plugin.
_REFUSED_TYPES = {"AXFR", "IXFR"}
_CLASS_ANY = 255


# --------------------------------------------------------------------------- wire format


def to_rr(record: Record) -> RR:
    """One model Record as a dnslib resource record."""
    value = record.value
    if record.rtype == "A":
        rdata = A(value)
    elif record.rtype == "AAAA":
        rdata = AAAA(value)
    elif record.rtype in ("CNAME", "PTR", "NS"):
        rdata = {"CNAME": CNAME, "PTR": PTR, "NS": NS}[record.rtype](value)
    elif record.rtype == "SRV":
        priority, weight, port, target = value.split()
        rdata = SRV(int(priority), int(weight), int(port), target)
    elif record.rtype == "TXT":
        rdata = TXT(value)
    elif record.rtype == "SOA":
        mname, rname, *times = value.split()
        rdata = SOA(mname, rname, tuple(int(t) for t in times))
    else:
        raise ValueError(f"record type {record.rtype!r} has no wire encoding here")
    return RR(record.name, getattr(QTYPE, record.rtype), CLASS.IN, record.ttl, rdata)


def random_id() -> int:
    """A random 16-bit number from the system's secure source, as miekg/dns's ``dns.Id()``."""
    return secrets.randbits(16)


def answer(query: bytes, index: RecordIndex, *, tcp: bool = False, draw: Draw = random_id) -> bytes:
    """The reply to one DNS message, or ``b""`` when it deserves none (too short, or not a query).

    Authoritative (AA) for the cluster and reverse zones, with their SOA in the authority section
    for NXDOMAIN and NODATA and SRV targets' addresses as additional records; a successful
    reply's addresses are shuffled with ``draw`` as CoreDNS's loadbalance plugin does. Over UDP a
    reply larger than the client accepts (512 bytes, or its EDNS size up to 1232) is sent
    truncated (TC) so the client retries over TCP. RA is not set: CoreDNS's kubernetes plugin
    answers with ``SetReply``, which leaves it clear (dig warns "recursion requested but not
    available").
    """
    request = _parse(query)
    if request is None:
        return _formerr(query)
    if request.header.qr:
        return b""  # a response sent to us: never answer it, or two servers could loop
    reply = _reply_skeleton(request)
    if request.header.opcode != 0:
        return _finish(reply, request, RCODE.NOTIMP, tcp)
    if len(request.questions) != 1:
        return _finish(reply, request, RCODE.FORMERR, tcp)
    question = request.questions[0]
    qtype = QTYPE.get(question.qtype, f"TYPE{question.qtype}")
    if question.qclass not in (CLASS.IN, _CLASS_ANY) or qtype in _REFUSED_TYPES:
        return _finish(reply, request, RCODE.REFUSED, tcp)
    result: Answer = shuffle_answer(index.lookup(str(question.qname), qtype), draw)
    reply.header.aa = int(result.zone is not None)
    reply.add_answer(*map(to_rr, result.answers))
    reply.add_auth(*map(to_rr, result.authority))
    reply.add_ar(*map(to_rr, result.additional))
    return _finish(reply, request, getattr(RCODE, result.rcode), tcp)


def servfail(query: bytes) -> bytes:
    """A SERVFAIL reply to ``query`` (used when no index can be had), or ``b""`` if it is
    unreadable."""
    request = _parse(query)
    if request is None or request.header.qr:
        return b""
    return _finish(_reply_skeleton(request), request, RCODE.SERVFAIL, tcp=False)


def frame(message: bytes) -> bytes:
    """A DNS message with the two-byte length prefix DNS over TCP uses (RFC 1035 4.2.2)."""
    if len(message) > 0xFFFF:
        raise ValueError(f"a DNS message over TCP is at most 65535 bytes, not {len(message)}")
    return struct.pack("!H", len(message)) + message


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next length-prefixed message from a TCP stream, or ``None`` at a clean end of stream."""
    try:
        prefix = await reader.readexactly(2)
    except asyncio.IncompleteReadError:
        return None
    (length,) = struct.unpack("!H", prefix)
    return await reader.readexactly(length)


def _parse(query: bytes) -> DNSRecord | None:
    try:
        return DNSRecord.parse(query)
    except Exception:  # dnslib raises DNSError and assorted others on garbage
        return None


def _formerr(query: bytes) -> bytes:
    """FORMERR for a message we cannot parse but whose header we can read; nothing otherwise."""
    if len(query) < 12:
        return b""
    (msg_id, flags) = struct.unpack("!HH", query[:4])
    if flags & 0x8000:
        return b""
    header = DNSHeader(id=msg_id, qr=1, opcode=(flags >> 11) & 0xF, rcode=RCODE.FORMERR)
    return bytes(DNSRecord(header).pack())


def _reply_skeleton(request: DNSRecord) -> DNSRecord:
    header = DNSHeader(
        id=request.header.id, qr=1, opcode=request.header.opcode, aa=0, rd=request.header.rd, ra=0
    )
    return DNSRecord(header, questions=list(request.questions))


def _client_edns(request: DNSRecord) -> RR | None:
    return next((rr for rr in request.ar if rr.rtype == QTYPE.OPT), None)


def _finish(reply: DNSRecord, request: DNSRecord, rcode: int, tcp: bool) -> bytes:
    """Set the rcode, echo EDNS when the client used it, and truncate for UDP when needed."""
    reply.header.rcode = rcode
    edns = _client_edns(request)
    if edns is not None:
        reply.add_ar(EDNS0(udp_len=EDNS_SIZE))
    wire = bytes(reply.pack())
    if tcp:
        return wire
    limit = UDP_DEFAULT_SIZE if edns is None else max(UDP_DEFAULT_SIZE, min(edns.rclass, EDNS_SIZE))
    if len(wire) <= limit:
        return wire
    short = DNSRecord(
        DNSHeader(
            id=reply.header.id,
            qr=1,
            opcode=reply.header.opcode,
            aa=reply.header.aa,
            tc=1,
            rd=reply.header.rd,
            ra=0,
            rcode=rcode,
        ),
        questions=list(request.questions),
    )
    if edns is not None:
        short.add_ar(EDNS0(udp_len=EDNS_SIZE))
    return bytes(short.pack())


def respond(query: bytes, get_index: GetIndex, *, tcp: bool = False) -> bytes:
    """Fetch the current index and answer; a failure to get the index or to answer is SERVFAIL."""
    try:
        index = get_index()
    except Exception:
        log.exception("cluster DNS: could not load the record index")
        return servfail(query)
    try:
        return answer(query, index, tcp=tcp)
    except Exception:
        log.exception("cluster DNS: failed to answer a query")
        return servfail(query)


async def respond_forwarding(
    query: bytes, get_index: GetIndex, upstream: Upstream, *, tcp: bool = False
) -> bytes:
    """CoreDNS's chain: ``forward`` relays what the kubernetes plugin does not own (the upstream's
    reply as it came, rcode and flags included, or SERVFAIL when none comes); an ExternalName's
    outside target is looked up upstream and its records follow the CNAME (plugin.A/AAAA)."""
    request = _parse(query)
    if request is None or request.header.qr or len(request.questions) != 1:
        return respond(query, get_index, tcp=tcp)
    question = request.questions[0]
    qtype = QTYPE.get(question.qtype, f"TYPE{question.qtype}")
    try:
        index = get_index()
    except Exception:
        return respond(query, get_index, tcp=tcp)  # SERVFAIL, logged there
    if forwarded(index, str(question.qname), qtype):
        return await upstream(query) or servfail(query)
    local = respond(query, get_index, tcp=tcp)
    reply = _parse(local) if qtype in ("A", "AAAA") else None
    last = reply.rr[-1] if reply is not None and reply.rr else None
    if reply is None or last is None or last.rtype != QTYPE.CNAME:
        return local
    target = str(last.rdata.label)
    if index.zone_of(target) is not None:
        return local
    found = await upstream(bytes(DNSRecord.question(target, qtype).pack()))
    chased = _parse(found) if found else None
    if chased is None:
        return local
    reply.add_answer(*chased.rr)
    return bytes(reply.pack())


def responder(get_index: GetIndex, upstream: Upstream | None = None) -> Responder:
    """The cluster DNS's answers, forwarding to ``upstream`` when one is given."""

    async def reply(query: bytes, tcp: bool) -> bytes:
        if upstream is None:
            return respond(query, get_index, tcp=tcp)
        try:
            return await respond_forwarding(query, get_index, upstream, tcp=tcp)
        except Exception:
            log.exception("cluster DNS: failed to forward a query")
            return servfail(query)

    return reply


def fixed_responder(answer_of: Callable[[bytes], bytes]) -> Responder:
    """A Responder for a server whose answers need nothing but the query (the outside resolver)."""

    async def reply(query: bytes, tcp: bool) -> bytes:
        return answer_of(query)

    return reply


# --------------------------------------------------------------------------- servers


class DnsDatagramProtocol(asyncio.DatagramProtocol):
    """Answers each UDP datagram with its Responder, each in its own task (a forwarded one
    waits for the upstream without holding up the others)."""

    def __init__(self, reply: Responder) -> None:
        self._reply = reply
        self._pending: set[asyncio.Task[None]] = set()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Answer one query (nothing for a message that deserves no answer)."""
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer(self, data: bytes, addr: tuple[Any, ...]) -> None:
        reply = await self._reply(data, False)
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def cancel_pending(self) -> None:
        """Drop the queries still waiting for an answer (the server is stopping)."""
        for task in list(self._pending):
            task.cancel()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors for earlier replies: nothing to do but note them."""
        log.debug("cluster DNS: UDP error %s", exc)


async def serve_udp(
    sock: socket.socket, get_index: GetIndex, upstream: Upstream | None = None
) -> None:
    """Serve cluster DNS on an already-bound UDP socket until cancelled; the socket is closed on
    exit."""
    await serve_udp_with(sock, responder(get_index, upstream))


async def serve_udp_with(sock: socket.socket, reply: Responder) -> None:
    """Serve DNS answered by ``reply`` on an already-bound UDP socket until cancelled."""
    loop = asyncio.get_running_loop()
    protocol = DnsDatagramProtocol(reply)
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    try:
        await asyncio.Future()  # forever, until the task is cancelled
    finally:
        protocol.cancel_pending()
        transport.close()


async def serve_tcp(
    sock: socket.socket,
    get_index: GetIndex,
    upstream: Upstream | None = None,
    *,
    idle_timeout: float = TCP_IDLE_TIMEOUT,
) -> None:
    """Serve cluster DNS on an already-bound TCP socket until cancelled; all close on exit."""
    await serve_tcp_with(sock, responder(get_index, upstream), idle_timeout=idle_timeout)


async def serve_tcp_with(
    sock: socket.socket, reply: Responder, *, idle_timeout: float = TCP_IDLE_TIMEOUT
) -> None:
    """Serve DNS answered by ``reply`` on an already-bound TCP socket (we call listen) until
    cancelled; several queries may share a connection; idle connections close after
    ``idle_timeout`` seconds; all close on exit."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                message = await asyncio.wait_for(read_frame(reader), idle_timeout)
                if message is None:
                    break
                answer_wire = await reply(message, True)
                if not answer_wire:
                    break
                writer.write(frame(answer_wire))
                await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Track each connection from the moment it is accepted, so shutdown can cancel it even
        # before its handler first runs; the done callback closes the connection in every case.
        task = asyncio.get_running_loop().create_task(handle(reader, writer))
        handlers.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            handlers.discard(done)
            writer.close()

        task.add_done_callback(finished)

    server = await asyncio.start_server(on_connect, sock=sock)
    try:
        await server.serve_forever()
    finally:
        server.close()
        while handlers:
            pending = list(handlers)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def serve(
    udp_sock: socket.socket,
    tcp_sock: socket.socket,
    get_index: GetIndex,
    upstream: Upstream | None = None,
) -> None:
    """Serve DNS over UDP and TCP together until cancelled (what a coredns pod does on port 53)."""
    await asyncio.gather(
        serve_udp(udp_sock, get_index, upstream), serve_tcp(tcp_sock, get_index, upstream)
    )
