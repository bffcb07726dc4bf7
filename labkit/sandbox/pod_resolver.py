"""Name lookups from inside a pod's network namespace, as the pod's stub resolver makes them: its
resolv.conf's search path and ndots, real DNS queries over UDP (TCP when truncated), CNAME chains
followed. :func:`labkit.sandbox.probe.resolve` runs it from synchronous code.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from dataclasses import dataclass, field

from labkit.model.addresses import is_ip
from labkit.model.dns.names import reverse_name
from labkit.model.dns.resolver import parse_resolv_conf, query_order
from labkit.sandbox.naming import NETNS_ETC
from labkit.sandbox.netns import describe_socket_error, socket_in_netns

MAX_CNAME_HOPS = 8


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


def ptr_name(ip: str) -> str:
    """The PTR question for an address, as the resolver asks it: ``10.0.96.10.in-addr.arpa``."""
    return reverse_name(ip).rstrip(".")


def _resolv_text(netns: str, resolv_conf: str | None) -> str:
    if resolv_conf is not None:
        return resolv_conf
    try:
        return (NETNS_ETC / netns / "resolv.conf").read_text(encoding="utf-8")
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
    sent from inside ``netns``; CNAME chains are followed. Raises DnsFailure when nothing
    answers."""
    from dnslib import QTYPE, RCODE, DNSRecord

    rtype = rtype.upper()
    conf = parse_resolv_conf(_resolv_text(netns, resolv_conf))
    result = Lookup(name, rtype)
    if not conf.nameservers:
        raise DnsFailure(f"cannot resolve {name!r}: the pod has no nameserver in its resolv.conf")
    if rtype == "PTR" and is_ip(name):
        candidates = [ptr_name(name)]
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
