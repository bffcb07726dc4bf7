"""Hubble's flows, pure: the compact line against upstream's printer tests and docs, identities,
filters, the NFLOG messages the agent reads, and the lab's bounded flow ring."""

from __future__ import annotations

import socket
import struct
from datetime import timezone
from pathlib import Path

import pytest

from labkit.model.hubble import (
    MAX_CLUSTER_IDENTITY,
    MIN_CLUSTER_IDENTITY,
    Flow,
    FlowFilter,
    PacketRecord,
    Peer,
    compact_line,
    flow_of,
    identity_labels,
    identity_of,
    nflog_prefix,
    stamp,
)
from labkit.sandbox.flowring import FlowRing, read_records
from labkit.sandbox.nflog import (
    COPY_RANGE,
    NFULA_PAYLOAD,
    NFULA_PREFIX,
    NFULA_TIMESTAMP,
    LoggedPacket,
    bind_messages,
    packet_record,
    parse_messages,
)

UTC = timezone.utc


def upstream_flow(is_reply: bool | None) -> Flow:
    """The flow of upstream's ``TestPrinter_WriteProtoFlow``: 1.1.1.1:31793 (identity 4) to
    2.2.2.2:8080 (identity 12345), a policy drop of a SYN at 00:20:34.5678."""
    return Flow(
        1234.5678,
        "k8s1",
        Peer("1.1.1.1", 31793, identity=4),
        Peer("2.2.2.2", 8080, identity=12345),
        "TCP",
        0x02,
        "DROPPED",
        is_reply,
    )


def test_compact_lines_of_upstreams_printer_tests() -> None:
    """cilium/cilium ``hubble/pkg/printer/printer_test.go`` ``TestPrinter_WriteProtoFlow``:
    the ``compact``, ``compact-direction-unknown`` and ``compact-reply`` cases."""
    assert compact_line(upstream_flow(False), UTC) == (
        "Jan  1 00:20:34.567: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) "
        "Policy denied DROPPED (TCP Flags: SYN)"
    )
    assert compact_line(upstream_flow(None), UTC) == (
        "Jan  1 00:20:34.567: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) "
        "Policy denied DROPPED (TCP Flags: SYN)"
    )
    assert compact_line(upstream_flow(True), UTC) == (
        "Jan  1 00:20:34.567: 2.2.2.2:8080 (ID:12345) <- 1.1.1.1:31793 (health) "
        "Policy denied DROPPED (TCP Flags: SYN)"
    )


def test_timestamps_and_host_names_as_upstream() -> None:
    """``Test_fmtTimestamp`` (``time.StampMilli``) and ``TestHostname``: no ``:port`` for 0."""
    assert stamp(0, UTC) == "Jan  1 00:00:00.000"
    assert stamp(1530984600.123, UTC) == "Jul  7 17:30:00.123"
    assert Peer("1.1.1.1", 0).host() == "1.1.1.1"
    assert Peer("1.1.1.1", 80, "default", "pod").host() == "default/pod:80"


def test_docs_examples_with_pods() -> None:
    """Cilium's docs (``gettingstarted/http.rst``, "Inspecting the flows with Hubble" in the Star
    Wars demo): a forwarded UDP flow to CoreDNS and xwing's dropped SYN."""
    dns = Flow(
        0,
        "kind-worker",
        Peer("10.244.1.5", 56306, "default", "tiefighter", 15879),
        Peer("10.244.1.9", 53, "kube-system", "coredns-76f75df574-2mvr2", 17445),
        "UDP",
        0,
        "FORWARDED",
    )
    assert compact_line(dns, UTC).split(": ", 1)[1] == (
        "default/tiefighter:56306 (ID:15879) -> kube-system/coredns-76f75df574-2mvr2:53 "
        "(ID:17445) to-endpoint FORWARDED (UDP)"
    )
    record = PacketRecord(0, "kind-worker", 6, "10.244.1.7", "10.244.2.3", 45706, 80, 0x02, "D:")
    peers = {
        "10.244.1.7": Peer("10.244.1.7", 0, "default", "xwing", 63406),
        "10.244.2.3": Peer("10.244.2.3", 0, "default", "deathstar-b4b8ccfb5-f75xw", 6822),
    }
    assert compact_line(flow_of(record, peers), UTC).split(": ", 1)[1] == (
        "default/xwing:45706 (ID:63406) <> default/deathstar-b4b8ccfb5-f75xw:80 (ID:6822) "
        "Policy denied DROPPED (TCP Flags: SYN)"
    )


def test_tcp_flags_in_hubbles_order() -> None:
    """``pkg/hubble/parser/threefour/parser.go`` ``getTCPFlags``: SYN, ACK, RST, FIN, PSH,
    URG, ECE, CWR."""
    flow = Flow(0, "n", Peer("a", 1), Peer("b", 2), "TCP", 0xFF, "FORWARDED")
    assert flow.summary() == "TCP Flags: SYN, ACK, RST, FIN, PSH, URG, ECE, CWR"
    syn_ack = Flow(0, "n", Peer("a", 1), Peer("b", 2), "TCP", 0x12, "FORWARDED")
    assert syn_ack.summary() == "TCP Flags: SYN, ACK"


def test_records_become_flows_with_the_deciding_policy() -> None:
    peers = {"10.0.0.1": Peer("10.0.0.1", 0, "shop", "web-1", 300)}
    prefix = nflog_prefix("DROPPED", "INGRESS", ["shop/deny-all", "shop/allow-fe"])
    dropped = flow_of(PacketRecord(0, "w1", 6, "10.9.9.9", "10.0.0.1", 4000, 80, 2, prefix), peers)
    assert (dropped.verdict, dropped.is_reply, dropped.direction) == ("DROPPED", None, "INGRESS")
    assert dropped.policies == ("shop/deny-all", "shop/allow-fe")
    assert dropped.src == Peer("10.9.9.9", 4000) and dropped.src.identity_words() == "(world)"
    assert dropped.dst == Peer("10.0.0.1", 80, "shop", "web-1", 300)
    assert dropped.summary() == "TCP Flags: SYN; denied by shop/deny-all, shop/allow-fe"
    icmp = flow_of(PacketRecord(0, "w1", 1, "10.0.0.1", "10.9.9.9", 8, 0, 0, "F"), peers)
    assert (icmp.verdict, icmp.is_reply, icmp.protocol, icmp.src.port) == (
        "FORWARDED",
        False,
        "ICMPv4",
        0,
    )
    assert len(nflog_prefix("DROPPED", "EGRESS", ["ns/" + "p" * 80])) == 63


def test_identities_follow_label_sets() -> None:
    """Cilium allocates one identity per label set (``pkg/identity``), from
    ``MinimalAllocationIdentity`` 256; Deployment hash labels are filtered out
    (``pkg/labelsfilter`` defaults), the namespace and service account are in."""
    web = identity_labels("shop", {"app": "web", "pod-template-hash": "7d9f"}, "")
    same = identity_labels("shop", {"app": "web", "pod-template-hash": "5c4b"}, "default")
    assert web == same and "k8s:io.kubernetes.pod.namespace=shop" in web
    assert not any("pod-template-hash" in label for label in web)
    assert identity_of(web) == identity_of(same)
    other_ns = identity_labels("blog", {"app": "web"}, "")
    assert identity_of(other_ns) != identity_of(web)
    kept = identity_labels("a", {"app.kubernetes.io/name": "x", "kubernetes.io/os": "linux"}, "")
    assert "k8s:app.kubernetes.io/name=x" in kept and not any("os=" in k for k in kept)
    for n in range(200):
        assert MIN_CLUSTER_IDENTITY <= identity_of([f"k8s:app=a{n}"]) <= MAX_CLUSTER_IDENTITY


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (FlowFilter(), [True, True, True]),
        (FlowFilter(pod="web"), [True, True, False]),
        (FlowFilter(pod="shop/web"), [False, False, False]),
        (FlowFilter(pod="default/client"), [True, False, True]),
        (FlowFilter(pod="client", namespace="default"), [True, False, True]),
        (FlowFilter(namespace="kube-system"), [False, False, True]),
        (FlowFilter(verdict="dropped"), [False, True, False]),
        (FlowFilter(protocol="udp"), [False, False, True]),
        (FlowFilter(port=53), [False, False, True]),
        (FlowFilter(port=80, verdict="FORWARDED"), [True, False, False]),
    ],
)
def test_observe_filters(flt: FlowFilter, expected: list[bool]) -> None:
    """``hubble observe`` (``pkg/hubble/filters/k8s.go`` ``filterByNamespacedName``): ``--pod
    [ns/]prefix`` matches either side by name prefix, in ``default`` unless named;
    ``--namespace``, ``--verdict``, ``--protocol``, ``--port`` each must match too."""
    client = Peer("10.0.0.1", 40000, "default", "client-1", 300)
    flows = [
        Flow(0, "n", client, Peer("10.0.0.2", 80, "default", "web-1", 301), "TCP", 2, "FORWARDED"),
        Flow(
            0,
            "n",
            Peer("10.9.0.1", 1),
            Peer("10.0.0.2", 80, "default", "web-2", 301),
            "TCP",
            2,
            "DROPPED",
            None,
        ),
        Flow(
            0,
            "n",
            client,
            Peer("10.0.0.3", 53, "kube-system", "coredns-1", 302),
            "UDP",
            0,
            "FORWARDED",
        ),
    ]
    assert [flt.matches(f) for f in flows] == expected


def nlmsg(kind: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def nlattr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def test_nflog_messages_as_the_kernel_sends_them() -> None:
    """``linux/netfilter/nfnetlink_log.h``: NFULNL_MSG_PACKET of subsystem NFNL_SUBSYS_ULOG
    (4) with NFULA_PREFIX (NUL-terminated), NFULA_PAYLOAD (the IP packet) and NFULA_TIMESTAMP
    (big-endian seconds and microseconds); acks are NLMSG_ERROR with a negative errno."""
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        40,
        0,
        0,
        64,
        6,
        0,
        socket.inet_aton("10.244.1.5"),
        socket.inet_aton("10.244.2.7"),
    )
    tcp = struct.pack("!HHIIBBHHH", 41234, 80, 1, 0, 0x50, 0x02, 64240, 0, 0)
    body = b"\x02\x00\x00\x64" + nlattr(NFULA_PREFIX, b"D:INGRESS:shop/deny\0")
    body += nlattr(NFULA_TIMESTAMP, struct.pack("!QQ", 1_700_000_000, 250_000))
    body += nlattr(NFULA_PAYLOAD, ip + tcp)
    data = nlmsg((4 << 8) | 0, body) + nlmsg(2, struct.pack("=i", -16) + b"\0" * 16)
    logged, ack = list(parse_messages(data))
    assert isinstance(logged, LoggedPacket) and ack == 16
    assert logged.prefix == "D:INGRESS:shop/deny" and logged.timestamp == 1_700_000_000.25
    record = packet_record(logged, "kind-worker", now=5.0)
    assert record == PacketRecord(
        1_700_000_000.25,
        "kind-worker",
        6,
        "10.244.1.5",
        "10.244.2.7",
        41234,
        80,
        0x02,
        "D:INGRESS:shop/deny",
    )
    assert packet_record(LoggedPacket("F", b"\x60" + b"\0" * 39, None), "n", 5.0) is None
    udp = LoggedPacket("F", ip[:9] + b"\x11" + ip[10:] + struct.pack("!HH", 5353, 53), None)
    assert packet_record(udp, "n", 5.0) == PacketRecord(
        5.0, "n", 17, "10.244.1.5", "10.244.2.7", 5353, 53, 0, "F"
    )


def test_bind_messages_ask_for_the_group_and_packet_heads() -> None:
    """NFULNL_MSG_CONFIG with NFULA_CFG_CMD BIND, then NFULA_CFG_MODE COPY_PACKET and the range,
    the group in ``res_id`` (network order), each asking for an ack."""
    bind, mode = bind_messages(100)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", bind)
    assert (length, kind, flags, seq) == (len(bind), (4 << 8) | 1, 1 | 4, 1)
    assert struct.unpack_from("!BBH", bind, 16) == (0, 0, 100)
    assert bind[20:25] == struct.pack("=HH", 5, 1) + b"\x01"
    assert mode[20:24] == struct.pack("=HH", 10, 2)
    assert struct.unpack_from("!IBB", mode, 24) == (COPY_RANGE, 2, 0)


def test_flow_ring_keeps_the_newest_records(tmp_path: Path) -> None:
    """Like Hubble's ring buffer, only the newest flows are kept: past twice the capacity the
    file is cut back to the newest ``capacity``; torn lines are skipped when read."""
    ring = FlowRing(str(tmp_path), capacity=3)
    records = [PacketRecord(float(n), "n", 6, "a", "b", n, 80, 2, "F") for n in range(7)]
    for record in records[:5]:
        ring.append([record])
    assert read_records(str(tmp_path)) == records[:5]
    ring.append(records[5:])
    assert read_records(str(tmp_path)) == records[4:]
    with open(tmp_path / "flows.jsonl", "a") as fh:
        fh.write('{"time": 1\n[1, 2]\n')
    assert read_records(str(tmp_path)) == records[4:]
    assert FlowRing(str(tmp_path), capacity=3).count == 3
    assert read_records(str(tmp_path / "none")) == []
