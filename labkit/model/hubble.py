"""Hubble's view of a flow, pure: security identities as Cilium numbers them, a packet record from
the data plane turned into a flow, ``hubble observe``'s filters and its compact output line.

A record is what the data plane logged for one packet (netfilter's NFLOG: addresses, ports, TCP
flags, and the rule's prefix, which says the verdict and the policies that decided it); pods and
identities are looked up when it is printed, as Hubble's parser enriches flows from its caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

RESERVED_IDENTITIES = {
    1: "host",
    2: "world",
    3: "unmanaged",
    4: "health",
    5: "init",
    6: "remote-node",
    7: "kube-apiserver",
    8: "ingress",
}
"""cilium/cilium ``pkg/identity/numericidentity.go``: the reserved identities and their names."""
HOST, WORLD, REMOTE_NODE = 1, 2, 6
MIN_CLUSTER_IDENTITY = 256
MAX_CLUSTER_IDENTITY = 65535
"""``MinimalAllocationIdentity`` and ``MaximumAllocationIdentity``: the range identities of label
sets are drawn from (Cilium picks at random; here a hash of the label set, so a lab is
reproducible)."""

IGNORED_LABELS = ("pod-template-hash", "controller-revision-hash", "pod-template-generation")
"""Pod labels Cilium's default label filter (``pkg/labelsfilter``) leaves out of an identity,
beside every ``*kubernetes.io/*`` and ``*k8s.io/*`` label other than ``app.kubernetes.io``."""

TCP_FLAGS = (
    (0x02, "SYN"),
    (0x10, "ACK"),
    (0x04, "RST"),
    (0x01, "FIN"),
    (0x08, "PSH"),
    (0x20, "URG"),
    (0x40, "ECE"),
    (0x80, "CWR"),
)
"""Hubble's order of TCP flags (``pkg/hubble/parser/threefour/parser.go`` ``getTCPFlags``)."""

VERDICTS = ("FORWARDED", "DROPPED")
PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMPv4"}
PREFIX_DROPPED, PREFIX_FORWARDED = "D", "F"
FLOW_GROUP = 100
"""The NFLOG group the data plane's flow rules log to."""


def identity_labels(namespace: str, labels: Mapping[str, str], service_account: str) -> list[str]:
    """The labels of a pod's security identity, as Cilium writes them (``k8s:key=value``): its
    labels through the default filter, its namespace, service account and cluster."""
    kept = [
        f"k8s:{key}={value}"
        for key, value in labels.items()
        if key not in IGNORED_LABELS
        and (
            key.startswith("app.kubernetes.io/") or not ("kubernetes.io" in key or "k8s.io" in key)
        )
    ]
    kept += [
        "k8s:io.cilium.k8s.policy.cluster=default",
        f"k8s:io.cilium.k8s.policy.serviceaccount={service_account or 'default'}",
        f"k8s:io.kubernetes.pod.namespace={namespace}",
    ]
    return sorted(kept)


def identity_of(labels: Iterable[str]) -> int:
    """The cluster identity of a label set: pods with the same labels share one."""
    digest = hashlib.sha256("\n".join(sorted(labels)).encode()).digest()
    span = MAX_CLUSTER_IDENTITY - MIN_CLUSTER_IDENTITY + 1
    return MIN_CLUSTER_IDENTITY + int.from_bytes(digest[:8], "big") % span


def nflog_prefix(verdict: str, direction: str = "", policies: Iterable[str] = ()) -> str:
    """The ``--nflog-prefix`` a data-plane rule logs with: ``F`` (forwarded) or
    ``D:INGRESS|EGRESS:ns/policy,...`` (dropped, and the policies that decided it), cut to the
    63 characters NFLOG carries."""
    if verdict == "FORWARDED":
        return PREFIX_FORWARDED
    return f"{PREFIX_DROPPED}:{direction}:{','.join(policies)}"[:63]


@dataclass(frozen=True)
class PacketRecord:
    """One packet the data plane logged: when, on which node, its addresses and the rule's
    prefix."""

    time: float
    node: str
    protocol: int
    src_ip: str
    dst_ip: str
    src_port: int = 0
    dst_port: int = 0
    tcp_flags: int = 0
    prefix: str = ""

    def to_dict(self) -> dict[str, object]:
        """The record as one JSON line of the lab's flow ring."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PacketRecord:
        """A record read back from the ring (a ValueError for a malformed line)."""
        try:
            return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})  # type: ignore[arg-type]
        except TypeError as exc:
            raise ValueError(f"not a flow record: {exc}") from None


@dataclass(frozen=True)
class Peer:
    """One side of a flow as Hubble names it."""

    ip: str
    port: int = 0
    namespace: str = ""
    pod: str = ""
    identity: int = WORLD

    def host(self) -> str:
        """``ns/pod:port`` (``Printer.Hostname`` with IP translation), the bare IP for an address
        no pod holds, without ``:port`` when the protocol has none."""
        name = f"{self.namespace}/{self.pod}" if self.pod else self.ip
        return f"{name}:{self.port}" if self.port else name

    def identity_words(self) -> str:
        """``(ID:n)``, or a reserved identity's name: ``(world)``, ``(host)``."""
        name = RESERVED_IDENTITIES.get(self.identity)
        return f"({name})" if name else f"(ID:{self.identity})"


@dataclass(frozen=True)
class Flow:
    """One flow: a record with its peers looked up."""

    time: float
    node: str
    src: Peer
    dst: Peer
    protocol: str
    tcp_flags: int
    verdict: str
    is_reply: bool | None = False
    """Whether the packet answers a connection (None: unknown, as for a drop, whose notification
    carries no connection-tracking state)."""
    direction: str = ""
    policies: tuple[str, ...] = ()

    @property
    def event(self) -> str:
        """Hubble's flow type: ``Policy denied`` for a policy drop (``api.DropReason``),
        ``to-endpoint`` for a packet delivered to a pod (``TraceObservationPoint``)."""
        return "Policy denied" if self.verdict == "DROPPED" else "to-endpoint"

    def summary(self) -> str:
        """``TCP Flags: SYN``, ``UDP`` or ``ICMPv4``; a drop adds the policies that decided it."""
        words = self.protocol
        if self.protocol == "TCP":
            words = "TCP Flags: " + ", ".join(n for bit, n in TCP_FLAGS if self.tcp_flags & bit)
        if self.verdict == "DROPPED" and self.policies:
            words += "; denied by " + ", ".join(self.policies)
        return words


def flow_of(record: PacketRecord, peers: Mapping[str, Peer]) -> Flow:
    """A record as a flow: each address looked up in ``peers`` (pod IPs and node IPs), else the
    world; the prefix gives the verdict and the policies."""

    def peer(ip: str, port: int) -> Peer:
        known = peers.get(ip)
        if known is None:
            return Peer(ip, port)
        return Peer(ip, port, known.namespace, known.pod, known.identity)

    ports = record.protocol in (6, 17)
    kind, _, rest = record.prefix.partition(":")
    direction, _, policies = rest.partition(":")
    dropped = kind == PREFIX_DROPPED
    return Flow(
        record.time,
        record.node,
        peer(record.src_ip, record.src_port if ports else 0),
        peer(record.dst_ip, record.dst_port if ports else 0),
        PROTOCOLS.get(record.protocol, str(record.protocol)),
        record.tcp_flags,
        "DROPPED" if dropped else "FORWARDED",
        None if dropped else False,
        direction,
        tuple(p for p in policies.split(",") if p),
    )


def stamp(when: float, tz: tzinfo | None = None) -> str:
    """Go's ``time.StampMilli`` (``Jan _2 15:04:05.000``), Hubble's default time format."""
    moment = datetime.fromtimestamp(when, tz)
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


def compact_line(flow: Flow, tz: tzinfo | None = None) -> str:
    """One flow as ``hubble observe`` prints it by default (``-o compact``; ``printer.go``
    ``WriteProtoFlow``): time, source and its identity, an arrow (``<>`` when the direction is
    unknown, ``<-`` with the sides swapped for a reply), destination and identity, flow type,
    verdict, summary."""
    src, dst, arrow = flow.src, flow.dst, "->"
    if flow.is_reply is None:
        arrow = "<>"
    elif flow.is_reply:
        src, dst, arrow = dst, src, "<-"
    return (
        f"{stamp(flow.time, tz)}: {src.host()} {src.identity_words()} {arrow} "
        f"{dst.host()} {dst.identity_words()} {flow.event} {flow.verdict} ({flow.summary()})"
    )


@dataclass(frozen=True)
class FlowFilter:
    """``hubble observe``'s filters: each given one must match (``--pod`` and ``--namespace`` on
    either side, as ``--pod`` is ``--from-pod`` or ``--to-pod``)."""

    pod: str = ""
    namespace: str = ""
    verdict: str = ""
    protocol: str = ""
    port: int = 0

    def matches(self, flow: Flow) -> bool:
        """Whether ``flow`` passes every filter set."""
        sides = (flow.src, flow.dst)
        if self.pod:
            ns, _, prefix = self.pod.rpartition("/")
            ns = ns or self.namespace or "default"
            if not any(p.pod.startswith(prefix) and p.namespace == ns for p in sides if p.pod):
                return False
        if self.namespace and not any(p.namespace == self.namespace for p in sides):
            return False
        if self.verdict and flow.verdict != self.verdict.upper():
            return False
        if self.protocol and not flow.protocol.lower().startswith(self.protocol.lower()):
            return False
        return not self.port or self.port in (flow.src.port, flow.dst.port)


def peers_of(
    pods: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]], observer: str
) -> dict[str, Peer]:
    """Who holds each address, as the Cilium agent on node ``observer`` sees it: pods (not on
    the host network) by their IP with the identity of their labels, node addresses as ``host``
    (the observer's own) or ``remote-node``."""
    peers: dict[str, Peer] = {}
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                peers[str(address["address"])] = Peer(
                    str(address["address"]), identity=HOST if name == observer else REMOTE_NODE
                )
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or spec.get("hostNetwork"):
            continue
        ns = str(meta.get("namespace") or "default")
        labels = identity_labels(ns, meta.get("labels") or {}, spec.get("serviceAccountName", ""))
        peers[str(ip)] = Peer(str(ip), 0, ns, str(meta.get("name")), identity_of(labels))
    return peers
