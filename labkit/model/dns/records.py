"""The records a cluster's DNS serves, as the Kubernetes DNS specification defines them
(github.com/kubernetes/dns, docs/specification.md, schema 1.1.0 as CoreDNS serves it): built
from Services, their EndpointSlices (or legacy Endpoints) and Pods."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from labkit.model.dns.names import (
    CLUSTER_DOMAIN,
    DNS_LABEL,
    address_type,
    check_name,
    cluster_zone,
    dashed,
    reverse_name,
)
from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    ServiceEndpoint,
    endpoints_from_endpoints,
    endpoints_from_slices,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

DEFAULT_TTL = 30  # kind's Corefile sets `ttl 30` in the kubernetes plugin
SCHEMA_VERSION = "1.1.0"  # what CoreDNS answers for dns-version.<zone> TXT
SCHEMA_TTL = 28800  # and its TTL (plugin/kubernetes/kubernetes.go, Services)
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"


@dataclass(frozen=True, order=True)
class Record:
    """One resource record. ``value`` is the RDATA in zone-file text: an address, a target name,
    ``"priority weight port target"`` for SRV, the bare text for TXT, the seven SOA fields for
    SOA."""

    name: str
    rtype: str
    value: str
    ttl: int = DEFAULT_TTL

    def __str__(self) -> str:
        value = f'"{self.value}"' if self.rtype == "TXT" else self.value
        return f"{self.name}\t{self.ttl}\tIN\t{self.rtype}\t{value}"


RECORD_ORDER = attrgetter("name", "rtype", "value", "ttl")
"""The sort key of Record's own field order (dataclass order), built in C: sorting thousands of
records with it is several times faster than with the generated ``__lt__``."""


def records(
    services: Iterable[Mapping[str, Any]],
    endpoint_slices: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]] = (),
    cluster_domain: str = CLUSTER_DOMAIN,
    *,
    ttl: int = DEFAULT_TTL,
) -> list[Record]:
    """The records the Kubernetes DNS specification requires for these objects, sorted and unique.

    * ClusterIP/NodePort/LoadBalancer: A (AAAA) ``svc.ns.svc.<zone>`` -> cluster IP, PTR for the
      IP, SRV at that name for every port and at ``_port._proto.svc.ns.svc.<zone>`` (which also
      holds the A) per named port, target ``svc.ns.svc.<zone>``. These exist whether or not the
      Service has endpoints.
    * Headless (``clusterIP: None``): one A per *ready* endpoint address at the Service's name
      and its ``_port._proto`` names, SRV there to each endpoint per port. No ready endpoints
      means no records, so the name is NXDOMAIN.
    * Every Service but ExternalName: for each ready endpoint, ``<hostname>.svc.ns.svc.<zone>``
      (its ``hostname`` field, else its dashed IP, as CoreDNS's ``endpointHostname``) with A, SRV
      per port, and a PTR from the endpoint's IP. SRV weights are 100/n over the n answers, as
      CoreDNS's ``plugin.SRV`` computes them.
    * ExternalName: a CNAME to ``spec.externalName``.
    * Pods with an IP: ``a-b-c-d.ns.pod.<zone>`` A; plus ``dns-version.<zone>`` TXT (TTL 28800).
    ``endpoint_slices`` may also hold legacy Endpoints objects. Readiness honours
    ``publishNotReadyAddresses`` and the tolerate-unready annotation.
    """
    zone = cluster_zone(cluster_domain)
    out: set[Record] = {version_record(zone)}
    groups = slices_by_service(endpoint_slices)
    for svc in services:
        out.update(service_records(svc, groups.get(service_key(svc), []), zone, ttl))
    out.update(pod_records(pods, zone, ttl))
    return sorted(out, key=RECORD_ORDER)


def version_record(zone: str) -> Record:
    """``dns-version.<zone>`` TXT: the schema version CoreDNS answers."""
    return Record(f"dns-version.{zone}", "TXT", SCHEMA_VERSION, SCHEMA_TTL)


def service_key(svc: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a Service, lowercase: how ``slices_by_service`` groups its slices."""
    return namespace_of(svc).lower(), name_of(svc).lower()


def service_records(
    svc: Mapping[str, Any], slices: Iterable[Mapping[str, Any]], zone: str, ttl: int = DEFAULT_TTL
) -> list[Record]:
    """One Service's records (see ``records``) from its own EndpointSlices (or Endpoints)."""
    name, ns = _dns_names_of(svc, "Service")
    spec = svc.get("spec") or {}
    base = f"{name}.{ns}.svc.{zone}"
    if spec.get("type") == "ExternalName":
        target = spec.get("externalName")
        if not target:
            raise ValueError(f"Service {ns}/{name} has type ExternalName but no spec.externalName.")
        return [Record(base, "CNAME", check_name(str(target), "externalName"), ttl)]
    ips = [str(ip) for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
    if not ips:
        return []  # no address allocated yet: nothing to publish
    headless = ips[0] == "None"
    out = [] if headless else _cluster_ip_records(svc, f"{ns}/{name}", base, ips, ttl)
    published = _published(svc, _endpoints_of(slices))
    return out + _endpoint_records(base, published, ttl, headless=headless)


def pod_records(
    pods: Iterable[Mapping[str, Any]], zone: str, ttl: int = DEFAULT_TTL
) -> list[Record]:
    """``a-b-c-d.ns.pod.<zone>`` A (AAAA) for every pod address."""
    out: list[Record] = []
    for pod in pods:
        ns = namespace_of(pod).lower()
        if not DNS_LABEL.match(ns):
            raise ValueError(f"Pod namespace {ns!r} is not a DNS label.")
        status = pod.get("status") or {}
        pod_ips = [entry.get("ip") for entry in status.get("podIPs") or []]
        for ip in filter(None, pod_ips or [status.get("podIP")]):
            out.append(Record(f"{dashed(ip)}.{ns}.pod.{zone}", address_type(ip), str(ip), ttl))
    return out


def _dns_names_of(obj: Mapping[str, Any], kind: str) -> tuple[str, str]:
    """(name, namespace) of an object, lowercase; ValueError unless both are DNS labels."""
    name, namespace = name_of(obj).lower(), namespace_of(obj).lower()
    if not DNS_LABEL.match(name):
        raise ValueError(
            f"{kind} name {meta(obj).get('name')!r} is not a DNS label; "
            f"every {kind} needs metadata.name."
        )
    if not DNS_LABEL.match(namespace):
        raise ValueError(
            f"{kind} {name!r} has namespace {meta(obj).get('namespace')!r}, "
            "which is not a DNS label."
        )
    return name, namespace


def slices_by_service(
    objects: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """EndpointSlices (or legacy Endpoints objects) grouped by (namespace, service name),
    lowercase; FQDN slices (names, not addresses) and slices no Service owns are left out."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for obj in objects:
        namespace = namespace_of(obj).lower()
        if "subsets" in obj or obj.get("kind") == "Endpoints":
            groups[(namespace, name_of(obj).lower())].append(obj)
            continue
        if str(obj.get("addressType") or "IPv4") == "FQDN":
            continue  # FQDN slices carry names, not addresses; cluster DNS ignores them
        service = labels_of(obj).get(SERVICE_NAME_LABEL)
        if service:
            groups[(namespace, service.lower())].append(obj)
    return groups


def _endpoints_of(slices: Iterable[Mapping[str, Any]]) -> list[ServiceEndpoint]:
    """The endpoints of one Service's slices; an endpoint of unknown readiness counts as ready."""
    out: list[ServiceEndpoint] = []
    for obj in slices:
        if "subsets" in obj or obj.get("kind") == "Endpoints":
            out.extend(endpoints_from_endpoints(obj))
        else:
            out.extend(endpoints_from_slices([obj]))
    return out


def srv_weight(offers: int) -> int:
    """The weight CoreDNS's ``plugin.SRV`` gives each of ``offers`` equal SRV answers: 100 shared
    evenly, rounded down in floating point as Go computes it, at least 1."""
    return max(1, math.floor(100.0 / (100 * offers) * 100))


def _srv_records(owner: str, offers: list[tuple[int, str]], ttl: int) -> list[Record]:
    """SRV records at one owner as CoreDNS writes them: the weight counts every offer (duplicates
    and port-less ones too), then one record per (port, target), port-less offers left out."""
    if not offers:
        return []
    weight = srv_weight(len(offers))
    return [
        Record(owner, "SRV", f"0 {weight} {port} {target}", ttl)
        for port, target in sorted(set(offers))
        if port > 0
    ]


def _port_owner(name: str, protocol: str, base: str) -> str:
    return f"_{name.lower()}._{protocol.lower()}.{base}"


def _cluster_ip_records(
    svc: Mapping[str, Any], ref: str, base: str, ips: list[str], ttl: int
) -> list[Record]:
    """A Service with cluster IPs: A/AAAA and PTR per IP; SRV for all ports at the Service's name
    and per named port at ``_port._proto``, which also answers A/AAAA (CoreDNS findServices)."""
    out: list[Record] = []
    for ip in ips:
        out.append(Record(base, address_type(ip), ip, ttl))
        out.append(Record(reverse_name(ip), "PTR", base, ttl))
    all_offers: list[tuple[int, str]] = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        if port.get("port") is None:
            raise ValueError(f"Service {ref} port {port.get('name')!r} has no port number.")
        offers = [(int(port["port"]), base) for _ in ips]
        all_offers.extend(offers)
        if port.get("name"):
            owner = _port_owner(str(port["name"]), str(port.get("protocol") or "TCP"), base)
            out.extend(_srv_records(owner, offers, ttl))
            out.extend(Record(owner, address_type(ip), ip, ttl) for ip in ips)
    out.extend(_srv_records(base, all_offers, ttl))
    return out


def _published(svc: Mapping[str, Any], endpoints: list[ServiceEndpoint]) -> list[ServiceEndpoint]:
    """The endpoints cluster DNS publishes: ready ones, or all with ``publishNotReadyAddresses``
    (or the tolerate-unready annotation), as the EndpointSlice controller marks them ready."""
    spec = svc.get("spec") or {}
    annotations = meta(svc).get("annotations") or {}
    publish_all = (
        bool(spec.get("publishNotReadyAddresses"))
        or str(annotations.get(TOLERATE_UNREADY)).lower() == "true"
    )
    return [e for e in endpoints if e.ready or publish_all]


def _endpoint_records(
    base: str, endpoints: list[ServiceEndpoint], ttl: int, *, headless: bool
) -> list[Record]:
    """Records from a Service's published endpoints: for each, ``<hostname or dashed IP>.<base>``
    A/AAAA and SRV per port, and a PTR to that name (CoreDNS answers endpoint names for every
    Service and gives a pod IP one PTR per Service holding it); a headless Service's own name
    and ``_port._proto`` names answer with the endpoints too."""
    out: list[Record] = []
    by_host: dict[str, list[tuple[int, str]]] = defaultdict(list)
    by_port: dict[str, list[tuple[int, str]]] = defaultdict(list)
    all_offers: list[tuple[int, str]] = []
    for endpoint in endpoints:
        ip, kind = endpoint.ip, address_type(endpoint.ip)
        host = f"{endpoint.hostname.lower() if endpoint.hostname else dashed(ip)}.{base}"
        out.append(Record(host, kind, ip, ttl))
        out.append(Record(reverse_name(ip), "PTR", host, ttl))
        # an endpoint without ports still counts once in the weights (CoreDNS's port -1 sentinel)
        offers = [(port.number or 0, host) for port in endpoint.ports] or [(0, host)]
        by_host[host].extend(offers)
        all_offers.extend(offers)
        if not headless:
            continue
        out.append(Record(base, kind, ip, ttl))
        for port in endpoint.ports:
            if port.name:
                owner = _port_owner(port.name, port.protocol, base)
                by_port[owner].append((port.number or 0, host))
                out.append(Record(owner, kind, ip, ttl))
    for host, offers in by_host.items():
        out.extend(_srv_records(host, offers, ttl))
    for owner, offers in by_port.items():
        out.extend(_srv_records(owner, offers, ttl))
    if headless:
        out.extend(_srv_records(base, all_offers, ttl))
    return out
