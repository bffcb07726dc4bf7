"""What a probe's answers mean: socket errors as outcomes, agnhost answers as the serving pod and
the client address it saw, the DNS question a probe asks on port 53 and words for the reply.

Pure: :mod:`labkit.sandbox.probe` does the sockets and hands what it saw to these functions.
"""

from __future__ import annotations

import errno
import random
from typing import NamedTuple

from labkit.model.addresses import is_ip
from labkit.model.objects import strip_port

DNS_PORT = 53
DNS_PROBE_NAME = "kubernetes.default.svc.cluster.local."
"""What a probe to port 53 asks: a DNS server answers it, a netexec server would not."""


class ConnectAttempt(NamedTuple):
    """What one connection attempt found, before it is labelled with its source and target."""

    outcome: str
    latency: float | None = None
    served_by: str | None = None
    client_ip: str | None = None
    detail: str = ""
    http_status: int | None = None


def client_ip_of(answer: str) -> str | None:
    """The address in an agnhost ``/clientip`` answer (``10.244.1.5:43120`` -> ``10.244.1.5``)."""
    host = strip_port(answer)
    return host if host and is_ip(host) else None


def classify_os_error(exc: OSError) -> str:
    """The probe outcome for a socket error: refused, unreachable, timeout or error."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if exc.errno == errno.ETIMEDOUT:
        return "timeout"
    return "error"


def connected(
    words: str,
    latency: float,
    served_by: str | None,
    seen: str | None,
    note: str = "",
    http_status: int | None = None,
) -> ConnectAttempt:
    """A made connection: who served it and whom it saw (agnhost's ``hostname`` and ``clientip``
    answers, when the server gave them) in the outcome and its words, and the status of an HTTP
    answer that was not 200."""
    detail = words
    if served_by is not None:
        detail += f"; served by {served_by}"
    if seen is not None:
        detail += f"; it saw the client as {seen}"
    if note:
        detail += f"; {note}"
    return ConnectAttempt(
        "connected", latency, served_by, client_ip_of(seen) if seen else None, detail, http_status
    )


class DnsQuestion(NamedTuple):
    """A DNS query ready to send, and the id its answer will carry."""

    id: int
    packet: bytes


def dns_probe_query() -> DnsQuestion:
    """A DNS question (the API server's Service name) to send where a DNS server listens: port
    53."""
    from dnslib import DNSRecord

    query = DNSRecord.question(DNS_PROBE_NAME, "A")
    query.header.id = random.randrange(1, 65536)
    return DnsQuestion(query.header.id, query.pack())


def describe_dns_reply(data: bytes) -> str:
    """Words for a DNS server's reply to the probe question (or why it is not one)."""
    from dnslib import QTYPE, RCODE, DNSRecord

    try:
        reply = DNSRecord.parse(data)
    except Exception:  # dnslib raises several kinds for bytes that are not DNS
        return "an answer that is not DNS"
    found = [str(rr.rdata) for rr in reply.rr if QTYPE.get(rr.rtype) == "A"]
    rcode = RCODE.get(reply.header.rcode)
    return f"DNS answered {rcode} for {DNS_PROBE_NAME.rstrip('.')}" + (
        f" ({', '.join(found)})" if found else ""
    )
