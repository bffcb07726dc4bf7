"""Cluster DNS as Kubernetes defines it: the records a cluster serves and how a pod's resolver asks.

Three pure pieces, no I/O:

* the pod side: ``render_resolv_conf`` (what kubelet writes for ``dnsPolicy: ClusterFirst``),
  ``parse_resolv_conf`` (how glibc reads it) and ``query_order`` (the names glibc's stub
  resolver tries, in order, for one lookup);
* the server side: ``records`` turns Services, EndpointSlices and Pods into the resource records
  of the Kubernetes DNS specification (github.com/kubernetes/dns, docs/specification.md,
  schema 1.1.0 as CoreDNS serves it), and ``RecordIndex.lookup`` answers one question from them
  the way an authoritative server would (NXDOMAIN vs NODATA, CNAME chasing, case-insensitive);
* the two together: ``explain_lookup`` replays every query the resolver makes for a name, so a
  check can show a learner why ``my-svc`` resolved (or did not) and how many queries it took.

Names in records are lowercase, fully qualified, with a trailing dot. Bad input raises
``ValueError`` with a sentence saying what is wrong (this package may not import ``labkit.errors``).
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

CLUSTER_DOMAIN = "cluster.local"
DNS_SERVICE_IP = "10.96.0.10"
DEFAULT_NDOTS = 5
DEFAULT_TTL = 30  # kind's Corefile sets `ttl 30` in the kubernetes plugin
SCHEMA_VERSION = "1.1.0"  # what CoreDNS answers for dns-version.<zone> TXT
GLIBC_MAX_NDOTS = 15  # glibc clamps options ndots:n to this
GLIBC_MAX_NAMESERVERS = 3  # MAXNS: further nameserver lines are ignored
REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MAX_CNAME_CHAIN = 8

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_POD_NAME = re.compile(r"^(?P<ip>[0-9a-f-]+)\.(?P<ns>[a-z0-9-]+)\.pod\.(?P<zone>.+)$")


# --------------------------------------------------------------------------- names


def fqdn(name: str) -> str:
    """``name`` lowercased with exactly one trailing dot, the form every record here uses."""
    text = name.strip().lower()
    if text in ("", "."):
        return "."
    return text.rstrip(".") + "."


def _check_name(name: str, what: str) -> str:
    """Validate a DNS name (labels 1-63 chars, total <= 253) and return it as an FQDN."""
    text = fqdn(name)
    if text == ".":
        return text
    labels = text[:-1].split(".")
    if len(text) > 254 or any(not 0 < len(label) <= 63 for label in labels):
        raise ValueError(f"{what} {name!r} is not a valid DNS name (empty or over-long label).")
    return text


def _zone(cluster_domain: str) -> str:
    zone = _check_name(cluster_domain, "cluster domain")
    if zone == "." or not all(_LABEL.match(label) for label in zone[:-1].split(".")):
        raise ValueError(
            f"cluster domain {cluster_domain!r} must be lowercase DNS labels such as 'cluster.local'."
        )
    return zone


def reverse_name(ip: str) -> str:
    """The PTR owner name of an address: ``10.96.0.10`` -> ``10.0.96.10.in-addr.arpa.``."""
    try:
        return ipaddress.ip_address(ip).reverse_pointer + "."
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address.") from None


def dashed(ip: str) -> str:
    """An address as one DNS label, as CoreDNS spells pod and endpoint names: ``10.244.1.5`` -> ``10-244-1-5``."""
    addr = ipaddress.ip_address(ip)
    return str(addr).replace(".", "-").replace(":", "-")


def _address_type(ip: str) -> str:
    try:
        return "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address.") from None


# --------------------------------------------------------------------------- resolver side


@dataclass(frozen=True)
class ResolvConf:
    """A parsed resolv.conf as glibc uses it (an empty ``nameservers`` means glibc falls back to 127.0.0.1)."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: int = 5
    attempts: int = 2
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    """Read resolv.conf text with glibc's rules: last ``search``/``domain`` wins, at most 3 nameservers,
    ``ndots`` clamped to 15, ``timeout`` to 30, ``attempts`` to 5; comments start with ``#`` or ``;``."""
    nameservers: list[str] = []
    search: list[str] = []
    ndots, timeout, attempts = 1, 5, 2
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        keyword, *args = line.split()
        if keyword == "nameserver" and args:
            try:
                ipaddress.ip_address(args[0].split("%")[0])
            except ValueError:
                continue  # glibc skips an address it cannot parse
            if len(nameservers) < GLIBC_MAX_NAMESERVERS:
                nameservers.append(args[0])
        elif keyword == "domain" and args:
            search = [args[0].rstrip(".")]
        elif keyword == "search":
            search = [domain.rstrip(".") for domain in args]
        elif keyword == "options":
            for opt in args:
                options.append(opt)
                name, _, value = opt.partition(":")
                if not value.isdigit():
                    continue
                if name == "ndots":
                    ndots = min(int(value), GLIBC_MAX_NDOTS)
                elif name == "timeout":
                    timeout = min(int(value), 30)
                elif name == "attempts":
                    attempts = min(int(value), 5)
    return ResolvConf(tuple(nameservers), tuple(search), ndots, timeout, attempts, tuple(options))


def cluster_search_path(namespace: str, cluster_domain: str = CLUSTER_DOMAIN) -> list[str]:
    """The search domains kubelet gives a ClusterFirst pod in ``namespace``."""
    ns = namespace.strip().lower()
    if not _LABEL.match(ns):
        raise ValueError(
            f"namespace {namespace!r} is not a DNS label (lowercase letters, digits and '-')."
        )
    zone = _zone(cluster_domain)[:-1]
    return [f"{ns}.svc.{zone}", f"svc.{zone}", zone]


def render_resolv_conf(
    namespace: str, cluster_domain: str = CLUSTER_DOMAIN, nameserver: str = DNS_SERVICE_IP
) -> str:
    """The resolv.conf a pod with ``dnsPolicy: ClusterFirst`` gets (search, nameserver, options lines,
    in the order containerd writes them); the sandbox has no host search domains to append."""
    try:
        ipaddress.ip_address(nameserver)
    except ValueError:
        raise ValueError(
            f"nameserver {nameserver!r} is not an IP address; give the DNS Service's ClusterIP."
        ) from None
    search = " ".join(cluster_search_path(namespace, cluster_domain))
    return f"search {search}\nnameserver {nameserver}\noptions ndots:{DEFAULT_NDOTS}\n"


def query_order(name: str, search: Sequence[str], ndots: int = DEFAULT_NDOTS) -> list[str]:
    """Every name glibc's ``res_search`` may send for ``name``, in order, each with a trailing dot.

    A trailing dot makes the name absolute: it is tried alone. A name with at least ``ndots`` dots
    is tried as written first, then with each search domain; a shorter one tries the search
    domains first and the bare name last. The resolver stops at the first answer that has
    records, so ``explain_lookup`` shows how many of these a real lookup uses.
    """
    text = name.strip()
    if not text or text == ".":
        raise ValueError(f"cannot resolve {name!r}: give a host name such as 'my-svc'.")
    if ".." in text or text.startswith("."):
        raise ValueError(f"{name!r} has an empty label; remove the doubled or leading dot.")
    if ndots < 0:
        raise ValueError(f"ndots must be 0 or more, not {ndots}.")
    ndots = min(ndots, GLIBC_MAX_NDOTS)
    dots = text.count(".")
    absolute = text.endswith(".")
    bare = text.rstrip(".")
    as_is = bare + "."
    order: list[str] = []
    tried_as_is = False
    if absolute or dots >= ndots:
        order.append(as_is)
        tried_as_is = True
        if absolute:
            return order
    # glibc walks the search list for dotted and undotted names alike (RES_DNSRCH / RES_DEFNAMES).
    for domain in search:
        domain = domain.strip().lstrip(".").rstrip(".")
        candidate = as_is if not domain else f"{bare}.{domain}."
        if not domain:
            tried_as_is = True  # a root entry on the list stands for the bare name
        order.append(candidate)
    if not tried_as_is:
        order.append(as_is)
    return order


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, order=True)
class Record:
    """One resource record. ``value`` is the RDATA in zone-file text: an address, a target name,
    ``"priority weight port target"`` for SRV, the bare text for TXT, the seven SOA fields for SOA."""

    name: str
    rtype: str
    value: str
    ttl: int = DEFAULT_TTL

    def __str__(self) -> str:
        value = f'"{self.value}"' if self.rtype == "TXT" else self.value
        return f"{self.name}\t{self.ttl}\tIN\t{self.rtype}\t{value}"


def _meta(obj: Mapping[str, Any], kind: str) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "").lower()
    namespace = str(meta.get("namespace") or "default").lower()
    if not _LABEL.match(name):
        raise ValueError(
            f"{kind} name {meta.get('name')!r} is not a DNS label; every {kind} needs metadata.name."
        )
    if not _LABEL.match(namespace):
        raise ValueError(
            f"{kind} {name!r} has namespace {meta.get('namespace')!r}, which is not a DNS label."
        )
    return name, namespace


Port = tuple[str, str, int]  # (name, lowercase protocol, number)


@dataclass
class _Endpoint:
    addresses: list[str]
    hostname: str | None
    ready: bool
    ports: tuple[Port, ...]  # the ports of the slice (or subset) that lists this endpoint


def _group_backends(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[_Endpoint]]:
    """Endpoints of EndpointSlices (or legacy Endpoints objects) grouped by (namespace, service name)."""
    groups: dict[tuple[str, str], list[_Endpoint]] = defaultdict(list)
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default").lower()
        if "subsets" in obj or obj.get("kind") == "Endpoints":
            group = groups[(namespace, str(meta.get("name") or "").lower())]
            for subset in obj.get("subsets") or []:
                ports = _ports(subset.get("ports"))
                for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
                    for addr in subset.get(key) or []:
                        group.append(_Endpoint([addr["ip"]], addr.get("hostname"), ready, ports))
            continue
        if str(obj.get("addressType") or "IPv4") == "FQDN":
            continue  # FQDN slices carry names, not addresses; cluster DNS ignores them
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            continue  # a slice no Service owns publishes nothing
        group = groups[(namespace, str(service).lower())]
        ports = _ports(obj.get("ports"))
        for endpoint in obj.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            group.append(
                _Endpoint(
                    list(endpoint.get("addresses") or []),
                    endpoint.get("hostname"),
                    ready is None or bool(ready),
                    ports,
                )
            )  # unknown readiness counts as ready
    return groups


def _ports(items: Iterable[Mapping[str, Any]] | None) -> tuple[Port, ...]:
    return tuple(
        (str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower(), int(p["port"]))
        for p in items or []
        if p.get("port") is not None
    )


def _srv_records(owner: str, targets: list[tuple[int, str]], ttl: int) -> list[Record]:
    """SRV records at one owner name with CoreDNS' weights: 100 shared evenly (floor) among them."""
    unique = sorted(set(targets))
    weight = 100 // len(unique) if unique else 100
    return [Record(owner, "SRV", f"0 {weight} {port} {target}", ttl) for port, target in unique]


def records(
    services: Iterable[Mapping[str, Any]],
    endpoint_slices: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]] = (),
    cluster_domain: str = CLUSTER_DOMAIN,
    *,
    ttl: int = DEFAULT_TTL,
) -> list[Record]:
    """The records the Kubernetes DNS specification requires for these objects, sorted and unique.

    * ClusterIP/NodePort/LoadBalancer: A (AAAA) ``svc.ns.svc.<zone>`` -> cluster IP, PTR for the IP,
      SRV ``_port._proto.svc.ns.svc.<zone>`` -> ``0 100 port svc.ns.svc.<zone>`` per named port.
      These exist whether or not the Service has endpoints.
    * Headless (``clusterIP: None``): one A per *ready* endpoint address, an A and a PTR for each
      endpoint's hostname (its ``hostname`` field, else its dashed IP as CoreDNS does), and one SRV
      per named port and hostname, using the endpoint port (where a client must connect). No
      ready endpoints means no records, so the name is NXDOMAIN.
    * ExternalName: a CNAME to ``spec.externalName``.
    * Pods with an IP: ``a-b-c-d.ns.pod.<zone>`` A; plus ``dns-version.<zone>`` TXT.
    ``endpoint_slices`` may also hold legacy Endpoints objects. Readiness honours
    ``publishNotReadyAddresses`` and the tolerate-unready annotation.
    """
    zone = _zone(cluster_domain)
    out: set[Record] = {Record(f"dns-version.{zone}", "TXT", SCHEMA_VERSION, ttl)}
    backends = _group_backends(endpoint_slices)
    for svc in services:
        name, ns = _meta(svc, "Service")
        spec = svc.get("spec") or {}
        base = f"{name}.{ns}.svc.{zone}"
        if spec.get("type") == "ExternalName":
            target = spec.get("externalName")
            if not target:
                raise ValueError(
                    f"Service {ns}/{name} has type ExternalName but no spec.externalName."
                )
            out.add(Record(base, "CNAME", _check_name(str(target), "externalName"), ttl))
            continue
        ips = [str(ip) for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
        if ips and ips[0] != "None":
            for ip in ips:
                out.add(Record(base, _address_type(ip), ip, ttl))
                out.add(Record(reverse_name(ip), "PTR", base, ttl))
            for port in spec.get("ports") or []:
                if port.get("name"):
                    if port.get("port") is None:
                        raise ValueError(
                            f"Service {ns}/{name} port {port['name']!r} has no port number."
                        )
                    owner = f"_{str(port['name']).lower()}._{str(port.get('protocol') or 'TCP').lower()}.{base}"
                    out.update(_srv_records(owner, [(int(port["port"]), base)], ttl))
            continue
        if not ips:
            continue  # no address allocated yet: nothing to publish
        out.update(_headless_records(svc, base, backends.get((ns, name), []), ttl))
    for pod in pods:
        ns = str((pod.get("metadata") or {}).get("namespace") or "default").lower()
        if not _LABEL.match(ns):
            raise ValueError(f"Pod namespace {ns!r} is not a DNS label.")
        status = pod.get("status") or {}
        ips = [entry.get("ip") for entry in status.get("podIPs") or []] or [status.get("podIP")]
        for ip in filter(None, ips):
            out.add(Record(f"{dashed(ip)}.{ns}.pod.{zone}", _address_type(ip), str(ip), ttl))
    return sorted(out)


def _headless_records(
    svc: Mapping[str, Any], base: str, endpoints: list[_Endpoint], ttl: int
) -> list[Record]:
    spec = svc.get("spec") or {}
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    publish_all = (
        bool(spec.get("publishNotReadyAddresses"))
        or str(annotations.get(TOLERATE_UNREADY)).lower() == "true"
    )
    out: list[Record] = []
    srv_targets: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for endpoint in endpoints:
        if not (endpoint.ready or publish_all):
            continue
        for ip in endpoint.addresses:
            label = str(endpoint.hostname).lower() if endpoint.hostname else dashed(ip)
            host = f"{label}.{base}"
            out.append(Record(base, _address_type(ip), ip, ttl))
            out.append(Record(host, _address_type(ip), ip, ttl))
            out.append(Record(reverse_name(ip), "PTR", host, ttl))
            for port_name, protocol, number in endpoint.ports:
                if port_name:
                    srv_targets[f"_{port_name}._{protocol}.{base}"].append((number, host))
    for owner, targets in srv_targets.items():
        out.extend(_srv_records(owner, targets, ttl))
    return out


# --------------------------------------------------------------------------- answering


@dataclass(frozen=True)
class Answer:
    """A server's reply to one question: ``rcode`` is ``"NOERROR"`` or ``"NXDOMAIN"``; NOERROR with no
    answers is NODATA. ``zone`` is the authoritative zone (``None``: not ours), ``authority`` holds
    its SOA for negative answers, ``additional`` the addresses of SRV targets."""

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
    """Answers questions from a record set like CoreDNS's kubernetes plugin in kind, authoritative for
    the cluster zone and for ``in-addr.arpa.``/``ip6.arpa.``.

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
        self.zone = _zone(cluster_domain)
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
        """Build the index straight from Kubernetes objects (namespaces as Namespace dicts or names)."""
        names = [
            ns if isinstance(ns, str) else str((ns.get("metadata") or {}).get("name") or "")
            for ns in namespaces
        ]
        return cls(
            records(services, endpoint_slices, pods, cluster_domain, ttl=ttl),
            cluster_domain,
            namespaces=[n for n in names if n],
        )

    def __len__(self) -> int:
        return len(self.records)

    def soa(self, zone: str) -> Record:
        """The SOA record of one of our zones, shaped like CoreDNS's (serial derived from the records)."""
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
        return Record(name, _address_type(str(ip)), str(ip), DEFAULT_TTL)

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
        """Apex SOA and NS, and ``ns.dns.<zone>`` pointing at the kube-dns Service, as CoreDNS serves them."""
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


class Attempt(NamedTuple):
    """One query a resolver sent: the name and what came back (``"NOERROR"`` with records,
    ``"NODATA"`` for NOERROR without records, or ``"NXDOMAIN"``)."""

    name: str
    rcode: str


def explain_lookup(
    name: str, search: Sequence[str], ndots: int, index: RecordIndex, qtype: str = "A"
) -> list[Attempt]:
    """Every query glibc makes to resolve ``name``, with each reply, stopping at the first reply
    that carries records (NODATA and NXDOMAIN both make it try the next name)."""
    attempts: list[Attempt] = []
    for candidate in query_order(name, search, ndots):
        reply = index.lookup(candidate, qtype)
        if reply.rcode == "NOERROR" and reply.answers:
            attempts.append(Attempt(candidate, "NOERROR"))
            break
        attempts.append(Attempt(candidate, "NODATA" if reply.rcode == "NOERROR" else reply.rcode))
    return attempts
