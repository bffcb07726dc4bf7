"""Answering from cluster DNS records as CoreDNS's kubernetes plugin does (NXDOMAIN vs NODATA as
its parseRequest decides, CNAME chasing, SOA on negative answers, pod names synthesized from
addresses, the query's spelling kept), and replaying every query a pod's resolver makes for one
name."""

from __future__ import annotations

import copy
import ipaddress
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labkit.model.dns.names import CLUSTER_DOMAIN, address_type, cluster_zone, fqdn
from labkit.model.dns.records import DEFAULT_TTL, RECORD_ORDER, Record, records
from labkit.model.dns.resolver import query_order
from labkit.model.objects import name_of

REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
MAX_CNAME_CHAIN = 10  # CoreDNS's maxCnameChainLength (plugin/backend_lookup.go)
SOA_MAX_TTL = 300  # CoreDNS caps the SOA record's own TTL at 300 s (plugin.SOA)
DNS_SERVICE = ("kube-dns", "kube-system")  # the Service CoreDNS names as the zone's nameserver
_ADDRESS_LABEL = re.compile(r"^[0-9a-f-]+$")


@dataclass(frozen=True)
class Answer:
    """A server's reply to one question: ``rcode`` is ``"NOERROR"`` or ``"NXDOMAIN"``; NOERROR
    with no answers is NODATA. ``zone`` is the authoritative zone (``None``: not ours),
    ``authority`` holds its SOA for negative answers, ``additional`` the addresses of SRV
    targets and of the nameserver."""

    rcode: str
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    zone: str | None = None

    @property
    def nodata(self) -> bool:
        """True when the name exists but has no record of the asked type."""
        return self.rcode == "NOERROR" and not self.answers


class RecordIndex:
    """Answers questions from a record set as CoreDNS's kubernetes plugin does in kind (its
    handler.go and kubernetes.go), authoritative for the cluster zone and for
    ``in-addr.arpa.``/``ip6.arpa.``.

    Which names exist follows CoreDNS's ``parseRequest``/``Records``: the zone, ``svc`` and
    ``pod`` under it and ``<ns>.svc``/``<ns>.pod`` of an existing namespace answer NODATA; other
    names exist only with records. Owner names keep the query's spelling (case included), and
    names CoreDNS builds from the zone (SRV targets, NS, SOA) take the query's spelling of it.
    A name outside those zones gets NXDOMAIN here; the sandbox's server forwards such names
    (and reverse names answered NXDOMAIN) upstream first, as ``forward`` does. With
    ``pod_mode="insecure"`` (kind's Corefile), ``<address>.<ns>.pod.<zone>`` answers for any
    address if the namespace is known (from ``namespaces`` or any record); ``"verified"``
    answers only the pod records given.
    """

    def __init__(
        self,
        records: Iterable[Record],
        cluster_domain: str = CLUSTER_DOMAIN,
        *,
        namespaces: Iterable[str] = (),
        pod_mode: str = "insecure",
    ) -> None:
        if pod_mode not in ("insecure", "verified"):
            raise ValueError(f"pod_mode must be 'insecure' or 'verified', not {pod_mode!r}.")
        self.zone = cluster_zone(cluster_domain)
        self.pod_mode = pod_mode
        self._set = frozenset(records)
        self._sorted: tuple[Record, ...] | None = None
        self._by_name: dict[str, list[Record]] = defaultdict(list)
        for record in sorted(self._set, key=RECORD_ORDER):
            self._by_name[fqdn(record.name)].append(record)
        self.namespaces = {ns.lower() for ns in namespaces} | self._namespaces_in_records()
        self._crc_sum = sum(_crc(r) for r in self._set)

    @property
    def records(self) -> tuple[Record, ...]:
        """Every record once, sorted (RECORD_ORDER)."""
        if self._sorted is None:
            self._sorted = tuple(sorted(self._set, key=RECORD_ORDER))
        return self._sorted

    @property
    def record_set(self) -> frozenset[Record]:
        """Every record once, unordered."""
        return self._set

    @property
    def serial(self) -> int:
        """The SOA serial: follows the record set (equal sets, equal serials), whatever order
        the records came in."""
        return self._crc_sum & 0x7FFFFFFF

    def updated(self, records: Iterable[Record], namespaces: Iterable[str] = ()) -> RecordIndex:
        """The index of another record set (same zone and pod mode), reusing this one: only the
        names whose records were added or removed are indexed again, so an agent's reload after
        one change costs what changed (issue 18). Answers as ``RecordIndex(records, ...)`` does."""
        new = frozenset(records)
        added, removed = new - self._set, self._set - new
        index = copy.copy(self)
        index._set, index._sorted = new, None
        index._by_name = by_name = defaultdict(list, self._by_name)
        arrived: dict[str, list[Record]] = defaultdict(list)
        for record in added:
            arrived[fqdn(record.name)].append(record)
        for name in arrived.keys() | {fqdn(r.name) for r in removed}:
            kept = [r for r in by_name.get(name, []) if r not in removed] + arrived.get(name, [])
            if kept:
                by_name[name] = sorted(kept, key=RECORD_ORDER)
            else:
                by_name.pop(name, None)
        index.namespaces = {ns.lower() for ns in namespaces} | index._namespaces_in_records()
        index._crc_sum = self._crc_sum + sum(map(_crc, added)) - sum(map(_crc, removed))
        return index

    @classmethod
    def from_objects(
        cls,
        services: Iterable[Mapping[str, Any]],
        endpoint_slices: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]] = (),
        namespaces: Iterable[Mapping[str, Any] | str] = (),
        cluster_domain: str = CLUSTER_DOMAIN,
        *,
        ttl: int = DEFAULT_TTL,
    ) -> RecordIndex:
        """Build the index straight from Kubernetes objects (namespaces as Namespace dicts or
        names)."""
        names = [ns if isinstance(ns, str) else name_of(ns) for ns in namespaces]
        return cls(
            records(services, endpoint_slices, pods, cluster_domain, ttl=ttl),
            cluster_domain,
            namespaces=[n for n in names if n],
        )

    def __len__(self) -> int:
        return len(self._set)

    def soa(self, zone: str) -> Record:
        """The SOA record of one of our zones as CoreDNS's ``plugin.SOA`` writes it, spelled as
        ``zone`` is (serial derived from the records)."""
        return Record(
            zone,
            "SOA",
            f"ns.dns.{zone} hostmaster.{zone} {self.serial} 7200 1800 86400 {DEFAULT_TTL}",
            min(DEFAULT_TTL, SOA_MAX_TTL),
        )

    def zone_of(self, name: str) -> str | None:
        """The zone of ours that holds ``name``, or ``None`` when the name is outside them."""
        name = fqdn(name)
        for zone in (self.zone, *REVERSE_ZONES):
            if name == zone or name.endswith("." + zone):
                return zone
        return None

    def lookup(self, qname: str, qtype: str = "A") -> Answer:
        """Answer one question as CoreDNS's kubernetes handler does: records of that type, NODATA
        (NOERROR, empty) when the name exists without them, NXDOMAIN when it does not, with the
        zone's SOA on negative answers; CNAMEs are followed while the target is ours."""
        qtype = qtype.upper()
        asked = _spelled(qname)
        name = asked.lower()
        zone = self.zone_of(name)
        if zone is None:
            return Answer("NXDOMAIN")
        spelled_zone = asked[len(asked) - len(zone) :]
        reply = self._answer(asked, name, zone, spelled_zone, qtype)
        if reply is None:
            return Answer("NXDOMAIN", authority=[self.soa(spelled_zone)], zone=zone)
        answers, additional = reply
        authority = [] if answers else [self.soa(spelled_zone)]
        return Answer("NOERROR", answers, authority, additional, zone)

    # ------------------------------------------------------------------ CoreDNS's dispatch

    def _answer(
        self, asked: str, name: str, zone: str, spelled_zone: str, qtype: str
    ) -> tuple[list[Record], list[Record]] | None:
        """(answers, additional), or ``None`` for a name error: ServeDNS's switch on the type."""
        apex = name == zone
        if qtype == "SOA":
            return ([self.soa(spelled_zone)] if apex else []), []
        if qtype == "NS" and apex:
            glue = self._nameserver_addresses(spelled_zone)
            servers = sorted({r.name for r in glue})
            return [Record(asked, "NS", ns, DEFAULT_TTL) for ns in servers], glue
        if qtype == "TXT":
            if name == f"dns-version.{zone}":  # the schema version, under any of our zones
                version = self._by_name[f"dns-version.{self.zone}"]
                return [_owned(asked, r) for r in version if r.rtype == "TXT"], []
            found = self._records(name, zone)
            return ([], []) if found else None  # an empty match is a name error for TXT
        if qtype == "PTR":
            return self._ptr(asked, name, zone)
        if qtype in ("A", "AAAA"):
            if apex:
                return [], []  # the apex has no address (CoreDNS's apex.dns lookup finds none)
            return self._addresses(asked, name, zone, qtype, [])
        found = self._services(name, zone)
        if found is None:
            return None
        if qtype == "CNAME":
            return [_owned(asked, r) for r in found if r.rtype == "CNAME"][:1], []
        if qtype == "SRV":
            return self._srv(asked, found, zone, spelled_zone)
        return [], []  # ANY, MX and every other type: the name exists, nothing of that type

    def _services(self, name: str, zone: str) -> list[Record] | None:
        """What CoreDNS's ``Services`` finds at a name: the nameserver's addresses at
        ``ns.dns.<zone>``, else ``_records``."""
        if name == f"ns.dns.{zone}":
            return self._nameserver_addresses(zone)
        return self._records(name, zone)

    def _records(self, name: str, zone: str) -> list[Record] | None:
        """What CoreDNS's ``Records`` (``parseRequest``, ``findServices``, ``findPods``) finds at
        a name: records, ``[]`` for a name that exists empty, ``None`` for a name error."""
        base = name[: -len(zone)].rstrip(".")
        if base in ("", "svc", "pod"):
            return []
        segs = base.split(".")
        if segs[-1] not in ("svc", "pod") or zone != self.zone:
            return None  # not svc/pod, or a forward name asked in a reverse zone
        namespace = segs[-2]
        if namespace not in self.namespaces:
            return None
        if len(segs) == 2:
            return []  # <ns>.svc / <ns>.pod of an existing namespace: NODATA
        if len(segs) > 5:
            return None  # longer than _port._proto.<service>: too long to answer
        if segs[-1] == "pod":
            return self._pod(segs[-3], namespace)
        if len(segs) == 5:  # _port._proto: CoreDNS strips the underscores, then matches
            segs[:2] = ["_" + label.removeprefix("_") for label in segs[:2]]
            name = ".".join(segs) + "." + zone
        return list(self._by_name.get(name, [])) or None

    def _pod(self, label: str, namespace: str) -> list[Record] | None:
        """``findPods``: in insecure mode any label that parses as an address (dashes for dots
        when it has exactly three and no ``--``, for colons otherwise) answers with it."""
        if self.pod_mode == "verified":
            found = self._by_name.get(f"{label}.{namespace}.pod.{self.zone}", [])
            return list(found) or None
        if not _ADDRESS_LABEL.match(label):
            return None
        dotted = label.count("-") == 3 and "--" not in label
        try:
            ip = ipaddress.ip_address(label.replace("-", "." if dotted else ":"))
        except ValueError:
            return None
        return [Record(f"{label}.{namespace}.pod.{self.zone}", address_type(str(ip)), str(ip))]

    def _addresses(
        self, asked: str, name: str, zone: str, qtype: str, chain: list[Record]
    ) -> tuple[list[Record], list[Record]] | None:
        """``plugin.A``/``plugin.AAAA``: addresses of the type, CNAMEs followed inside the zone
        (a CNAME whose target gives nothing is dropped), no more than ``MAX_CNAME_CHAIN``."""
        found = self._services(name, zone)
        if found is None:
            return None
        out: list[Record] = []
        for record in found:
            if record.rtype == qtype:
                out.append(_owned(asked, record))
            elif record.rtype == "CNAME":
                target = fqdn(record.value)
                cname = Record(asked, "CNAME", record.value, record.ttl)
                looped = target == name or any(fqdn(c.value) == target for c in chain)
                if looped or len(chain) > MAX_CNAME_CHAIN:
                    continue  # CoreDNS drops x CNAME x and a target already in the chain
                if self.zone_of(target) != zone:
                    out.append(cname)  # not ours: the outside world resolves it
                    continue
                further = self._addresses(record.value, target, zone, qtype, [*chain, cname])
                if further is not None and further[0]:
                    out.extend([cname, *further[0]])
        return out, []

    def _srv(
        self, asked: str, found: list[Record], zone: str, spelled_zone: str
    ) -> tuple[list[Record], list[Record]]:
        """``plugin.SRV``: the SRV records (an ExternalName's CNAME has none), and each target's
        addresses as additional records, names in the query's spelling of the zone."""
        answers: list[Record] = []
        additional: list[Record] = []
        for record in found:
            if record.rtype != "SRV":
                continue
            *head, target = record.value.split()
            spelled = _respell(target, zone, spelled_zone)
            answers.append(Record(asked, "SRV", " ".join([*head, spelled]), record.ttl))
            for address in self._by_name.get(fqdn(target), []):
                glue = _owned(spelled, address)
                if address.rtype in ("A", "AAAA") and glue not in additional:
                    additional.append(glue)
        return answers, additional

    def _ptr(self, asked: str, name: str, zone: str) -> tuple[list[Record], list[Record]] | None:
        """``plugin.PTR`` over ``Reverse``: a full reverse name gives the Service a cluster IP
        belongs to, else one PTR per Service whose endpoints hold the address; other names go
        through ``Records`` (where an ExternalName's target counts as a PTR target)."""
        if zone in REVERSE_ZONES and _reverse_address(name, zone) is not None:
            found = self._by_name.get(name, [])
            services = [r for r in found if self._is_service_name(r.value)]
            return ([_owned(asked, r) for r in services[:1] or found], []) if found else None
        parsed = self._records(name, zone)
        if parsed is None:
            return None
        return [Record(asked, "PTR", r.value, r.ttl) for r in parsed if r.rtype == "CNAME"], []

    def _is_service_name(self, name: str) -> bool:
        labels = fqdn(name)[: -len(self.zone)].rstrip(".").split(".")
        return len(labels) == 3 and labels[-1] == "svc"

    def _nameserver_addresses(self, zone: str) -> list[Record]:
        """``nsAddrs``: the kube-dns Service's cluster IPs, named ``kube-dns.kube-system.svc.``
        plus the zone as asked (CoreDNS joins them whatever the zone)."""
        service, namespace = DNS_SERVICE
        owner = f"{service}.{namespace}.svc.{zone}"
        source = self._by_name.get(f"{service}.{namespace}.svc.{self.zone}", [])
        return [_owned(owner, r) for r in source if r.rtype in ("A", "AAAA")]

    def _namespaces_in_records(self) -> set[str]:
        found = set()
        for name in self._by_name:
            if name.endswith(self.zone):
                labels = name[: -len(self.zone)].rstrip(".").split(".")
                if len(labels) >= 2 and labels[-1] in ("svc", "pod"):
                    found.add(labels[-2])
        return found


def _crc(record: Record) -> int:
    """A record's share of the serial."""
    return zlib.crc32(str(record).encode())


def _spelled(name: str) -> str:
    """A query name as asked (case kept), with exactly one trailing dot."""
    text = name.strip()
    return "." if text in ("", ".") else text.rstrip(".") + "."


def _owned(owner: str, record: Record) -> Record:
    """``record`` under the owner name a reply uses."""
    return Record(owner, record.rtype, record.value, record.ttl)


def _respell(target: str, zone: str, spelled_zone: str) -> str:
    """A name in our zone with the zone spelled as the query spelled it."""
    if target.lower().endswith(zone):
        return target[: len(target) - len(zone)] + spelled_zone
    return target


def _reverse_address(name: str, zone: str) -> str | None:
    """The address a complete reverse name stands for (CoreDNS's ExtractAddressFromReverse)."""
    labels = name[: -len(zone)].rstrip(".").split(".")
    try:
        if zone == "in-addr.arpa.":
            if len(labels) != 4:
                return None
            return str(ipaddress.IPv4Address(".".join(reversed(labels))))
        if len(labels) != 32 or not all(len(x) == 1 for x in labels):
            return None
        digits = "".join(reversed(labels))
        return str(ipaddress.IPv6Address(":".join(digits[i : i + 4] for i in range(0, 32, 4))))
    except ValueError:
        return None


class ResolverQuery(NamedTuple):
    """One query a resolver sent: the name and what came back (``"NOERROR"`` with records,
    ``"NODATA"`` for NOERROR without records, or ``"NXDOMAIN"``)."""

    name: str
    rcode: str


def explain_lookup(
    name: str, search: Sequence[str], ndots: int, index: RecordIndex, qtype: str = "A"
) -> list[ResolverQuery]:
    """Every query glibc makes to resolve ``name``, with each reply, stopping at the first reply
    that carries records (NODATA and NXDOMAIN both make it try the next name)."""
    attempts: list[ResolverQuery] = []
    for candidate in query_order(name, search, ndots):
        reply = index.lookup(candidate, qtype)
        if reply.rcode == "NOERROR" and reply.answers:
            attempts.append(ResolverQuery(candidate, "NOERROR"))
            break
        attempts.append(
            ResolverQuery(candidate, "NODATA" if reply.rcode == "NOERROR" else reply.rcode)
        )
    return attempts
