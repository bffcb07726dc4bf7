"""The records a cluster's DNS serves, as the Kubernetes DNS specification defines them
(github.com/kubernetes/dns, docs/specification.md, schema 1.1.0 as CoreDNS serves it): built
from Services, their EndpointSlices (or legacy Endpoints) and Pods."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
      IP, SRV ``_port._proto.svc.ns.svc.<zone>`` -> ``0 100 port svc.ns.svc.<zone>`` per named
      port. These exist whether or not the Service has endpoints.
    * Headless (``clusterIP: None``): one A per *ready* endpoint address, an A and a PTR for each
      endpoint's hostname (its ``hostname`` field, else its dashed IP as CoreDNS does), and one
      SRV per named port and hostname, using the endpoint port (where a client must connect). No
      ready endpoints means no records, so the name is NXDOMAIN.
    * ExternalName: a CNAME to ``spec.externalName``.
    * Pods with an IP: ``a-b-c-d.ns.pod.<zone>`` A; plus ``dns-version.<zone>`` TXT.
    ``endpoint_slices`` may also hold legacy Endpoints objects. Readiness honours
    ``publishNotReadyAddresses`` and the tolerate-unready annotation.
    """
    zone = cluster_zone(cluster_domain)
    out: set[Record] = {Record(f"dns-version.{zone}", "TXT", SCHEMA_VERSION, ttl)}
    backends = _endpoints_by_service(endpoint_slices)
    for svc in services:
        name, ns = _dns_names_of(svc, "Service")
        spec = svc.get("spec") or {}
        base = f"{name}.{ns}.svc.{zone}"
        if spec.get("type") == "ExternalName":
            target = spec.get("externalName")
            if not target:
                raise ValueError(
                    f"Service {ns}/{name} has type ExternalName but no spec.externalName."
                )
            out.add(Record(base, "CNAME", check_name(str(target), "externalName"), ttl))
            continue
        ips = [str(ip) for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
        if ips and ips[0] != "None":
            out.update(_cluster_ip_records(svc, f"{ns}/{name}", base, ips, ttl))
        elif ips:  # headless; no address allocated yet publishes nothing
            out.update(_headless_records(svc, base, backends.get((ns, name), []), ttl))
    for pod in pods:
        ns = namespace_of(pod).lower()
        if not DNS_LABEL.match(ns):
            raise ValueError(f"Pod namespace {ns!r} is not a DNS label.")
        status = pod.get("status") or {}
        pod_ips = [entry.get("ip") for entry in status.get("podIPs") or []]
        for ip in filter(None, pod_ips or [status.get("podIP")]):
            out.add(Record(f"{dashed(ip)}.{ns}.pod.{zone}", address_type(ip), str(ip), ttl))
    return sorted(out)


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


def _endpoints_by_service(
    objects: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], list[ServiceEndpoint]]:
    """Endpoints of EndpointSlices (or legacy Endpoints objects) grouped by (namespace, service
    name); an endpoint of unknown readiness counts as ready."""
    groups: dict[tuple[str, str], list[ServiceEndpoint]] = defaultdict(list)
    for obj in objects:
        namespace = namespace_of(obj).lower()
        if "subsets" in obj or obj.get("kind") == "Endpoints":
            groups[(namespace, name_of(obj).lower())].extend(endpoints_from_endpoints(obj))
            continue
        if str(obj.get("addressType") or "IPv4") == "FQDN":
            continue  # FQDN slices carry names, not addresses; cluster DNS ignores them
        service = labels_of(obj).get(SERVICE_NAME_LABEL)
        if not service:
            continue  # a slice no Service owns publishes nothing
        groups[(namespace, service.lower())].extend(endpoints_from_slices([obj]))
    return groups


def _srv_records(owner: str, targets: list[tuple[int, str]], ttl: int) -> list[Record]:
    """SRV records at one owner name with CoreDNS' weights: 100 shared evenly (floor) among them."""
    unique = sorted(set(targets))
    weight = 100 // len(unique) if unique else 100
    return [Record(owner, "SRV", f"0 {weight} {port} {target}", ttl) for port, target in unique]


def _cluster_ip_records(
    svc: Mapping[str, Any], ref: str, base: str, ips: list[str], ttl: int
) -> list[Record]:
    """A Service with cluster IPs: A/AAAA and PTR per IP, an SRV per named port."""
    out: list[Record] = []
    for ip in ips:
        out.append(Record(base, address_type(ip), ip, ttl))
        out.append(Record(reverse_name(ip), "PTR", base, ttl))
    for port in (svc.get("spec") or {}).get("ports") or []:
        if port.get("name"):
            if port.get("port") is None:
                raise ValueError(f"Service {ref} port {port['name']!r} has no port number.")
            protocol = str(port.get("protocol") or "TCP").lower()
            owner = f"_{str(port['name']).lower()}._{protocol}.{base}"
            out.extend(_srv_records(owner, [(int(port["port"]), base)], ttl))
    return out


def _headless_records(
    svc: Mapping[str, Any], base: str, endpoints: list[ServiceEndpoint], ttl: int
) -> list[Record]:
    """A headless Service: records for each (ready, or published anyway) endpoint address."""
    spec = svc.get("spec") or {}
    annotations = meta(svc).get("annotations") or {}
    publish_all = (
        bool(spec.get("publishNotReadyAddresses"))
        or str(annotations.get(TOLERATE_UNREADY)).lower() == "true"
    )
    out: list[Record] = []
    srv_targets: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for endpoint in endpoints:
        if not (endpoint.ready or publish_all):
            continue
        ip = endpoint.ip
        label = endpoint.hostname.lower() if endpoint.hostname else dashed(ip)
        host = f"{label}.{base}"
        out.append(Record(base, address_type(ip), ip, ttl))
        out.append(Record(host, address_type(ip), ip, ttl))
        out.append(Record(reverse_name(ip), "PTR", host, ttl))
        for port in endpoint.ports:
            if port.name and port.number:  # a slice port without a number names no SRV target
                owner = f"_{port.name.lower()}._{port.protocol.lower()}.{base}"
                srv_targets[owner].append((port.number, host))
    for owner, targets in srv_targets.items():
        out.extend(_srv_records(owner, targets, ttl))
    return out
