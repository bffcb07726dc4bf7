"""Answering from cluster DNS records as CoreDNS's kubernetes plugin does (NXDOMAIN vs NODATA,
CNAME chasing, SOA on negative answers, pod names synthesized from addresses), and replaying
every query a pod's resolver makes for one name."""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labkit.model.dns.names import CLUSTER_DOMAIN, address_type, cluster_zone, dashed, fqdn
from labkit.model.dns.records import DEFAULT_TTL, Record, records
from labkit.model.dns.resolver import query_order
from labkit.model.objects import name_of

REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
MAX_CNAME_CHAIN = 8
_POD_NAME = re.compile(r"^(?P<ip>[0-9a-f-]+)\.(?P<ns>[a-z0-9-]+)\.pod\.(?P<zone>.+)$")


@dataclass(frozen=True)
class Answer:
    """A server's reply to one question: ``rcode`` is ``"NOERROR"`` or ``"NXDOMAIN"``; NOERROR
    with no answers is NODATA. ``zone`` is the authoritative zone (``None``: not ours),
    ``authority`` holds its SOA for negative answers, ``additional`` the addresses of SRV
    targets."""

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
    """Answers questions from a record set like CoreDNS's kubernetes plugin in kind, authoritative
    for the cluster zone and for ``in-addr.arpa.``/``ip6.arpa.``.

    The sandbox has no upstream resolver, so a name outside those zones gets NXDOMAIN (not
    REFUSED: a pod's resolver then fails the way it does on a cluster that cannot reach the
    internet, and keeps walking its search list). With ``pod_mode="insecure"`` (kind's Corefile),
    ``a-b-c-d.<ns>.pod.<zone>`` answers for any address if the namespace is known (from
    ``namespaces`` or any record); ``"verified"`` answers only the pod records given.
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
        self.records: tuple[Record, ...] = tuple(sorted(set(records)))
        self._by_name: dict[str, list[Record]] = defaultdict(list)
        for record in self.records:
            self._by_name[fqdn(record.name)].append(record)
        self.namespaces = {ns.lower() for ns in namespaces} | self._namespaces_in_records()
        self.serial = zlib.crc32("\n".join(map(str, self.records)).encode()) & 0x7FFFFFFF
        self._add_zone_infrastructure()
        self._existing: set[str] = set()
        for name in self._by_name:
            self._existing.update(self._suffixes_in_zone(name))
        for ns in self.namespaces:
            self._existing.update({f"{ns}.svc.{self.zone}", f"{ns}.pod.{self.zone}"})
        self._existing.update({self.zone, f"svc.{self.zone}", f"pod.{self.zone}", *REVERSE_ZONES})

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
        return len(self.records)

    def soa(self, zone: str) -> Record:
        """The SOA record of one of our zones, shaped like CoreDNS's (serial derived from the
        records)."""
        return Record(
            zone,
            "SOA",
            f"ns.dns.{zone} hostmaster.{zone} {self.serial} 7200 1800 86400 {DEFAULT_TTL}",
            DEFAULT_TTL,
        )

    def zone_of(self, name: str) -> str | None:
        """The zone of ours that holds ``name``, or ``None`` when the name is outside them."""
        name = fqdn(name)
        for zone in (self.zone, *REVERSE_ZONES):
            if name == zone or name.endswith("." + zone):
                return zone
        return None

    def lookup(self, qname: str, qtype: str = "A") -> Answer:
        """Answer one question: records of that type, NODATA (NOERROR, empty) when the name exists
        without them, NXDOMAIN when it does not; CNAMEs are followed while the target is ours."""
        qtype = qtype.upper()
        name = fqdn(qname)
        zone = self.zone_of(name)
        if zone is None:
            return Answer("NXDOMAIN")
        answers: list[Record] = []
        seen: set[str] = set()
        rcode = "NOERROR"
        while True:
            rrset = self._rrset(name)
            if rrset is None:
                rcode = "NXDOMAIN"
                break
            cname = [r for r in rrset if r.rtype == "CNAME"]
            if cname and qtype not in ("CNAME", "ANY"):
                answers.append(cname[0])
                seen.add(name)
                target = fqdn(cname[0].value)
                target_zone = self.zone_of(target)
                if target_zone is None or target in seen or len(seen) >= MAX_CNAME_CHAIN:
                    break  # not ours to resolve further (no upstream), or a loop
                name, zone = target, target_zone
                continue
            answers.extend(r for r in rrset if qtype == "ANY" or r.rtype == qtype)
            break
        authority = [self.soa(zone)] if zone and (rcode == "NXDOMAIN" or not answers) else []
        additional = self._additional(answers)
        return Answer(rcode, answers, authority, additional, self.zone_of(fqdn(qname)))

    def _rrset(self, name: str) -> list[Record] | None:
        """Records owned by ``name``; ``[]`` for a name that exists only as a parent of others."""
        if name in self._by_name:
            return self._by_name[name]
        pod = self._synthesized_pod(name)
        if pod is not None:
            return [pod]
        return [] if name in self._existing else None

    def _synthesized_pod(self, name: str) -> Record | None:
        if self.pod_mode != "insecure":
            return None
        match = _POD_NAME.match(name)
        if not match or match["zone"] != self.zone or match["ns"] not in self.namespaces:
            return None
        label = match["ip"]
        is_v4 = re.fullmatch(r"\d{1,3}(-\d{1,3}){3}", label) is not None
        text = label.replace("-", ".") if is_v4 else label.replace("-", ":")
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return None
        if dashed(str(ip)) != label:
            return None  # not the canonical spelling CoreDNS would accept
        return Record(name, address_type(str(ip)), str(ip), DEFAULT_TTL)

    def _additional(self, answers: list[Record]) -> list[Record]:
        extra: list[Record] = []
        for record in answers:
            if record.rtype == "SRV":
                target = fqdn(record.value.split()[-1])
                extra.extend(
                    r
                    for r in self._by_name.get(target, [])
                    if r.rtype in ("A", "AAAA") and r not in extra
                )
        return extra

    def _namespaces_in_records(self) -> set[str]:
        found = set()
        for name in self._by_name:
            if name.endswith(self.zone):
                labels = name[: -len(self.zone)].rstrip(".").split(".")
                if len(labels) >= 2 and labels[-1] in ("svc", "pod"):
                    found.add(labels[-2])
        return found

    def _suffixes_in_zone(self, name: str) -> set[str]:
        zone = self.zone_of(name)
        if zone is None:
            return {name}
        out = set()
        current = name
        while current != zone and "." in current[:-1]:
            out.add(current)
            current = current.split(".", 1)[1]
        out.add(zone)
        return out

    def _add_zone_infrastructure(self) -> None:
        """Apex SOA and NS, and ``ns.dns.<zone>`` pointing at the kube-dns Service, as CoreDNS
        serves them."""
        zone = self.zone
        self._by_name[zone].extend(
            [self.soa(zone), Record(zone, "NS", f"ns.dns.{zone}", DEFAULT_TTL)]
        )
        for reverse in REVERSE_ZONES:
            self._by_name[reverse].append(self.soa(reverse))
        for record in self._by_name.get(f"kube-dns.kube-system.svc.{zone}", []):
            if record.rtype in ("A", "AAAA"):
                self._by_name[f"ns.dns.{zone}"].append(
                    Record(f"ns.dns.{zone}", record.rtype, record.value, DEFAULT_TTL)
                )


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
