"""Netfilter's packet log (NFLOG) read over a NETLINK_NETFILTER socket inside a namespace: the
messages to bind a log group and the parsing of what the kernel sends, as Hubble's flows.

A rule ``-j NFLOG --nflog-group FLOW_GROUP --nflog-prefix <prefix>`` in a node's (or pod's)
namespace copies the head of each packet it matches to the socket bound to that group there;
``model.hubble.nflog_prefix`` says what the prefix means. Layouts from
``linux/netfilter/nfnetlink_log.h`` and ``linux/netlink.h``.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterator
from typing import NamedTuple

from labkit.model.hubble import FLOW_GROUP, PacketRecord, nflog_prefix
from labkit.sandbox.netns import socket_in_netns

COPY_RANGE = 64
"""Bytes of each packet copied: an IPv4 header and the TCP or UDP ports and flags."""

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_TIMESTAMP, NFULA_PAYLOAD, NFULA_PREFIX = 3, 9, 10
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLA_TYPE_MASK = 0x3FFF
_NLMSG = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")


class LoggedPacket(NamedTuple):
    """One NFLOG message: the rule's prefix, the packet's head, and the kernel's timestamp
    (None when the packet had none)."""

    prefix: str
    payload: bytes
    timestamp: float | None


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    data = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return data + b"\0" * (_align(len(data)) - len(data))


def config_message(group: int, attrs: bytes, seq: int) -> bytes:
    """An NFULNL_MSG_CONFIG request for ``group`` carrying ``attrs``, asking for an ack."""
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, group) + attrs
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def bind_messages(group: int) -> list[bytes]:
    """Bind ``group`` to the socket, then ask for the first COPY_RANGE bytes of each packet."""
    return [
        config_message(group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])), 1),
        config_message(
            group, _attr(NFULA_CFG_MODE, struct.pack("!IBB", COPY_RANGE, NFULNL_COPY_PACKET, 0)), 2
        ),
    ]


def _attributes(data: bytes) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size:
            break
        attrs[kind & NLA_TYPE_MASK] = data[offset + _NLATTR.size : offset + length]
        offset += _align(length)
    return attrs


def parse_messages(data: bytes) -> Iterator[LoggedPacket | int]:
    """The messages of one netlink datagram: each logged packet, and each ack's error number
    (0 for success, else a positive errno)."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind, _, _, _ = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size:
            return
        body = data[offset + _NLMSG.size : offset + length]
        offset += _align(length)
        if kind == NLMSG_ERROR:
            yield -struct.unpack_from("=i", body)[0]
        elif kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            attrs = _attributes(body[4:])
            stamp = attrs.get(NFULA_TIMESTAMP)
            when = None
            if stamp is not None and len(stamp) >= 16:
                sec, usec = struct.unpack("!QQ", stamp[:16])
                when = sec + usec / 1e6
            prefix = attrs.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode("ascii", "replace")
            yield LoggedPacket(prefix, attrs.get(NFULA_PAYLOAD, b""), when)


def packet_record(logged: LoggedPacket, node: str, now: float) -> PacketRecord | None:
    """The IPv4 packet of a logged message as a record (None: not IPv4, or cut too short)."""
    data = logged.payload
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    header = (data[0] & 0x0F) * 4
    protocol = data[9]
    src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
    sport = dport = flags = 0
    if protocol in (6, 17) and len(data) >= header + 4:
        sport, dport = struct.unpack_from("!HH", data, header)
    if protocol == 6 and len(data) >= header + 14:
        flags = data[header + 13]
    when = logged.timestamp if logged.timestamp is not None else now
    return PacketRecord(when, node, protocol, src, dst, sport, dport, flags, logged.prefix)


class NflogSocket:
    """A socket bound to FLOW_GROUP inside one namespace, read without blocking."""

    def __init__(self, netns: str, node: str, group: int = FLOW_GROUP) -> None:
        self.node = node
        self.sock = socket_in_netns(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
            self.sock.settimeout(2.0)
            for message in bind_messages(group):
                self.sock.send(message)
                for answer in parse_messages(self.sock.recv(65536)):
                    if isinstance(answer, int) and answer:
                        raise OSError(answer, f"NFLOG group {group}: {errno.errorcode.get(answer)}")
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        """The socket's descriptor, for the event loop's reader callback."""
        return self.sock.fileno()

    def drain(self) -> list[PacketRecord]:
        """Every record waiting on the socket now."""
        records: list[PacketRecord] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return records
            now = time.time()
            for message in parse_messages(data):
                if isinstance(message, LoggedPacket):
                    record = packet_record(message, self.node, now)
                    if record is not None:
                        records.append(record)

    def close(self) -> None:
        """Close the socket (the kernel unbinds the group)."""
        self.sock.close()


FLOW_CHAIN = "LABKIT-HUBBLE"
"""The chain a Cilium pod logs Hubble's forwarded flows from (the sandbox's stand-in for the
datapath's trace events; Cilium itself has no such chain)."""


def hubble_flow_rules() -> dict[str, list[str]]:
    """A Cilium pod's flow log: each new connection delivered to it (in at ``eth0``) is logged
    to FLOW_GROUP as FORWARDED, which Hubble calls ``to-endpoint``. The ``security`` table's
    INPUT runs after filter's, so only what the pod's policy (CILIUM_POL_IN) accepted is logged;
    a dropped packet gets its DROPPED record alone."""
    note = '-m comment --comment "labkit: Hubble to-endpoint flows"'
    return {
        "security": [
            f":{FLOW_CHAIN} - [0:0]",
            f"-A INPUT -i eth0 {note} -j {FLOW_CHAIN}",
            f"-A {FLOW_CHAIN} -m conntrack --ctstate NEW -j NFLOG "
            f'--nflog-prefix "{nflog_prefix("FORWARDED")}" --nflog-group {FLOW_GROUP}',
        ]
    }
