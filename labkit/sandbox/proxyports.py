"""What kube-proxy proxies on a sandbox node: every Service port and the endpoints behind it,
read from Services and EndpointSlices, and kube-proxy's choice of endpoints and chains per node.

:mod:`labkit.sandbox.proxyrules` renders these as iptables rules. Pure: no I/O. IPv4 only, like
the proxier: IPv6 addresses are left out, junk addresses raise a LabError naming the object.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from labkit.errors import LabError
from labkit.model.addresses import parse_ip
from labkit.model.kubeproxy.chains import service_chain, service_port_name
from labkit.model.objects import SERVICE_NAME_LABEL, labels_of, meta, name_of, namespace_of

DEFAULT_AFFINITY_SECONDS = 10800
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
REJECT = "REJECT --reject-with icmp-port-unreachable"
# kube-proxy watches only Services without these labels (cmd/kube-proxy/app/server.go: the
# informers' selector ``!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless``
# when --proxy-name is unset, as on Kind).
IGNORED_SERVICE_LABELS = (
    "service.kubernetes.io/service-proxy-name",
    "service.kubernetes.io/headless",
)

Obj = Mapping[str, Any]


class PortKey(NamedTuple):
    """Which Service port an EndpointSlice port belongs to: kube-proxy's ServicePortName."""

    namespace: str
    service: str
    port_name: str
    protocol: str  # lower case, as kube-proxy hashes and matches it


@dataclass(frozen=True)
class PortEndpoint:
    """One ``ip:port`` behind one Service port, with the serving and terminating conditions
    kube-proxy falls back on (unlike ServiceEndpoint: one address with all its ports)."""

    ip: str
    port: int
    node: str | None
    ready: bool
    serving: bool
    terminating: bool

    @property
    def address(self) -> str:
        """``ip:port``, as DNAT targets and endpoint chain hashes spell it."""
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ProxiedPort:
    """One Service port kube-proxy programs, with every address it is reached on."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case, as kube-proxy hashes and matches it
    cluster_ip: str
    port: int
    node_port: int | None
    load_balancer_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    external_local: bool
    internal_local: bool
    affinity_seconds: int | None
    source_ranges: tuple[str, ...]
    health_check_node_port: int | None

    @functools.cached_property
    def key(self) -> PortKey:
        """The key its endpoints are filed under (kept: the rules look it up for every node)."""
        return PortKey(self.namespace, self.name, self.port_name, self.protocol)

    @property
    def spn(self) -> str:
        """kube-proxy's ServicePortName text, ``ns/name:port``, used in comments and hashes."""
        return service_port_name(self.namespace, self.name, self.port_name)

    @property
    def externally_accessible(self) -> bool:
        """Whether anything but the cluster IP reaches it (NodePort, LoadBalancer, externalIPs)."""
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        """Whether it needs the cluster-wide endpoint chain (KUBE-SVC)."""
        # The Local short-circuit for pod traffic to external IPs uses the cluster-wide chain too.
        return not self.internal_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        """Whether it needs the node-local endpoint chain (KUBE-SVL)."""
        return self.internal_local or (self.externally_accessible and self.external_local)


class EndpointChoice(NamedTuple):
    """kube-proxy's CategorizeEndpoints for one port on one node."""

    cluster: list[PortEndpoint]
    """What cluster-wide traffic is spread over."""
    local: list[PortEndpoint]
    """What traffic under a Local policy is spread over (endpoints on this node)."""
    reachable: list[PortEndpoint]
    """Every endpoint some chain on this node leads to (each gets a KUBE-SEP chain)."""
    any_usable: bool
    """Whether any endpoint anywhere can serve: without one, the port is REJECTed."""


def ipv4(value: Any, what: str) -> str | None:
    """An IPv4 address as text, None for an IPv6 one (the proxier is IPv4 only); LabError if
    junk."""
    try:
        addr = parse_ip(str(value).strip())
    except ValueError:
        raise LabError(
            f"{what} is {value!r}, which is not an IP address.",
            "Correct the address in the object and apply it again.",
        ) from None
    return str(addr) if addr.version == 4 else None


def _port_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise LabError(
            f"{what} is {value!r}; a port must be a number from 1 to 65535.",
            "Fix the port number in the manifest and apply it again.",
        )
    return value


def _protocol(value: Any, what: str) -> str:
    proto = _PROTOCOLS.get(str(value or "TCP").upper())
    if proto is None:
        raise LabError(
            f"{what} has protocol {value!r}, which kube-proxy does not handle.",
            "Use TCP, UDP or SCTP.",
        )
    return proto


def _load_balancer_ips(svc: Obj, where: str) -> list[str]:
    found: list[str] = []
    for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if ingress.get("ip"):
            ip = ipv4(ingress["ip"], f"{where} load balancer ingress IP")
            if ip and ip not in found:
                found.append(ip)
    return found


def _source_ranges(spec: Obj, where: str) -> list[str]:
    ranges: list[str] = []
    for raw in spec.get("loadBalancerSourceRanges") or []:
        try:
            ranges.append(str(ipaddress.ip_network(str(raw).strip(), strict=False)))
        except ValueError:
            raise LabError(
                f"{where} has loadBalancerSourceRanges entry {raw!r}, which is not a CIDR.",
                "Write each range like 203.0.113.0/24.",
            ) from None
    return ranges


def service_ports(services: Sequence[Obj]) -> list[ProxiedPort]:
    """Every proxied service port; headless, ExternalName and IPv6-only services have none, nor
    have Services carrying a label kube-proxy's selector excludes (IGNORED_SERVICE_LABELS)."""
    ports: list[ProxiedPort] = []
    for svc in services:
        kind = svc.get("kind", "Service")
        name = name_of(svc)
        if kind != "Service" or not name:
            raise LabError(
                f"render_proxy_rules got {kind} {name or '(no name)'} among the Services.",
                "Pass only Service objects with metadata.name set.",
            )
        namespace = namespace_of(svc)
        where = f"Service {namespace}/{name}"
        spec = svc.get("spec") or {}
        svc_type = spec.get("type") or "ClusterIP"
        raw_ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if svc_type == "ExternalName" or raw_ip in (None, "", "None"):
            continue
        if any(label in labels_of(svc) for label in IGNORED_SERVICE_LABELS):
            continue
        cluster_ip = ipv4(raw_ip, f"{where} clusterIP")
        if cluster_ip is None:
            continue
        lb_ips = _load_balancer_ips(svc, where) if svc_type == "LoadBalancer" else []
        external_ips = [
            ip for raw in spec.get("externalIPs") or [] if (ip := ipv4(raw, f"{where} externalIP"))
        ]
        externally_accessible = svc_type in ("NodePort", "LoadBalancer") or bool(external_ips)
        external_local = externally_accessible and spec.get("externalTrafficPolicy") == "Local"
        affinity = None
        if spec.get("sessionAffinity") == "ClientIP":
            config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
            affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
        ranges = _source_ranges(spec, where)
        health = (
            spec.get("healthCheckNodePort")
            if svc_type == "LoadBalancer" and external_local
            else None
        )
        for index, port in enumerate(spec.get("ports") or []):
            what = f"{where} port {port.get('name') or index}"
            node_port = port.get("nodePort") if svc_type in ("NodePort", "LoadBalancer") else None
            ports.append(
                ProxiedPort(
                    namespace=namespace,
                    name=name,
                    port_name=port.get("name") or "",
                    protocol=_protocol(port.get("protocol"), what),
                    cluster_ip=cluster_ip,
                    port=_port_number(port.get("port"), what),
                    node_port=_port_number(node_port, f"{what} nodePort") if node_port else None,
                    load_balancer_ips=tuple(lb_ips),
                    external_ips=tuple(external_ips),
                    external_local=external_local,
                    internal_local=spec.get("internalTrafficPolicy") == "Local",
                    affinity_seconds=affinity,
                    source_ranges=tuple(ranges),
                    health_check_node_port=_port_number(health, f"{what} healthCheckNodePort")
                    if health
                    else None,
                )
            )
    ports.sort(key=lambda p: p.key)
    return ports


def endpoints_by_port(slices: Sequence[Obj]) -> dict[PortKey, tuple[PortEndpoint, ...]]:
    """Each Service port's endpoints from EndpointSlices, ordered by ``ip:port`` like kube-proxy;
    an address listed twice counts once (tuples: a cache may hold them)."""
    found: dict[PortKey, dict[str, PortEndpoint]] = {}
    for eps in slices:
        service = labels_of(eps).get(SERVICE_NAME_LABEL)
        if not service or eps.get("addressType", "IPv4") != "IPv4":
            continue
        namespace = namespace_of(eps)
        for index, port in enumerate(eps.get("ports") or []):
            if port.get("port") is None:
                continue
            what = (
                f"EndpointSlice {namespace}/{meta(eps).get('name')} "
                f"port {port.get('name') or index}"
            )
            number = _port_number(port.get("port"), what)
            key = PortKey(
                namespace, service, port.get("name") or "", _protocol(port.get("protocol"), what)
            )
            bucket = found.setdefault(key, {})
            for endpoint in eps.get("endpoints") or []:
                addresses = endpoint.get("addresses") or []
                if not addresses:
                    continue
                ip = ipv4(addresses[0], f"{what} endpoint address")
                if ip is None:
                    continue
                cond = endpoint.get("conditions") or {}
                ready = cond.get("ready") is not False
                serving = ready if cond.get("serving") is None else bool(cond.get("serving"))
                ep = PortEndpoint(
                    ip=ip,
                    port=number,
                    node=endpoint.get("nodeName"),
                    ready=ready,
                    serving=serving,
                    terminating=bool(cond.get("terminating")),
                )
                bucket.setdefault(ep.address, ep)
    return {key: tuple(eps[a] for a in sorted(eps)) for key, eps in found.items()}


def choose_endpoints(
    port: ProxiedPort, endpoints: Sequence[PortEndpoint], node: str
) -> EndpointChoice:
    """kube-proxy's CategorizeEndpoints: which endpoints ``node`` sends this port's traffic to.

    Ready endpoints first; when none is ready, serving-and-terminating ones stand in.
    """
    cluster: list[PortEndpoint] = []
    any_usable = False
    if port.uses_cluster_endpoints:
        cluster = [e for e in endpoints if e.ready]
        if not cluster:  # no ready endpoint anywhere: fall back to serving, terminating ones
            cluster = [e for e in endpoints if e.serving and e.terminating]
        any_usable = bool(cluster)
    if not port.uses_local_endpoints:
        return EndpointChoice(cluster, [], cluster, any_usable)
    any_usable = any_usable or any(e.ready or (e.serving and e.terminating) for e in endpoints)
    local = [e for e in endpoints if e.node == node and e.ready]
    if not local:
        local = [e for e in endpoints if e.node == node and e.serving and e.terminating]
    if not port.uses_cluster_endpoints:
        return EndpointChoice([], local, local, any_usable)
    reachable = cluster + [e for e in local if e not in cluster]
    return EndpointChoice(cluster, local, reachable, any_usable)


# --------------------------------------------------------------------------- chains of a port


class Refusal(NamedTuple):
    """What the filter table does with traffic the nat table cannot send anywhere."""

    reason: str
    """Why, as the rule's comment says it."""
    target: str


@dataclass(frozen=True)
class PortChains:
    """One service port's chain names and which of them it uses on this node: what kube-proxy's
    syncProxyRules works out before it writes a rule."""

    port: ProxiedPort
    endpoints: EndpointChoice
    svc: str
    """KUBE-SVC-<hash>: spread over the cluster-wide endpoints."""
    svl: str
    """KUBE-SVL-<hash>: spread over this node's endpoints."""
    ext: str
    """KUBE-EXT-<hash>: external traffic's masquerade decision."""
    fw: str
    """KUBE-FW-<hash>: the loadBalancerSourceRanges filter."""
    internal_chain: str
    """Where cluster IP traffic goes (per internalTrafficPolicy)."""
    has_internal: bool
    external_policy_chain: str
    """Where external traffic goes after KUBE-EXT (per externalTrafficPolicy)."""
    has_external: bool
    uses_fw: bool
    internal_refusal: Refusal | None
    external_refusal: Refusal | None

    @property
    def spn(self) -> str:
        """The port's ServicePortName text (comments and hashes)."""
        return self.port.spn

    @property
    def proto(self) -> str:
        """The port's protocol, lower case."""
        return self.port.protocol

    @property
    def lb_chain(self) -> str:
        """Where load balancer traffic goes first: the firewall chain when ranges limit it."""
        return self.fw if self.uses_fw else self.ext


def port_chains(port: ProxiedPort, endpoints: EndpointChoice) -> PortChains:
    """The chains one port uses on a node, given the endpoints that node picked for it."""
    spn, proto = port.spn, port.protocol
    usable, local = endpoints.any_usable, bool(endpoints.local)
    svc = service_chain("KUBE-SVC-", spn, proto)
    svl = service_chain("KUBE-SVL-", spn, proto)
    fw = service_chain("KUBE-FW-", spn, proto)
    has_internal = usable and (not port.internal_local or local)
    has_external = usable and (not port.external_local or local)
    internal_refusal: Refusal | None
    external_refusal: Refusal | None
    if not usable:
        internal_refusal = external_refusal = Refusal(f"{spn} has no endpoints", REJECT)
    else:
        no_local = Refusal(f"{spn} has no local endpoints", "DROP")
        internal_refusal = no_local if not has_internal else None
        external_refusal = no_local if not has_external else None
    return PortChains(
        port=port,
        endpoints=endpoints,
        svc=svc,
        svl=svl,
        ext=service_chain("KUBE-EXT-", spn, proto),
        fw=fw,
        internal_chain=svl if port.internal_local else svc,
        has_internal=has_internal,
        external_policy_chain=svl if port.external_local else svc,
        has_external=has_external,
        uses_fw=usable and bool(port.load_balancer_ips) and bool(port.source_ranges),
        internal_refusal=internal_refusal,
        external_refusal=external_refusal,
    )


class ProxyInputs(NamedTuple):
    """What every node's kube-proxy proxies alike: the Service ports and each one's endpoints,
    read once for all the nodes of a pass (as one ``ServiceChangeTracker`` and
    ``EndpointsChangeTracker`` feed a proxier; issue 18)."""

    ports: list[ProxiedPort]
    endpoints: dict[PortKey, tuple[PortEndpoint, ...]]


def proxy_inputs(
    services: Sequence[Mapping[str, Any]], endpoint_slices: Sequence[Mapping[str, Any]]
) -> ProxyInputs:
    """The proxied ports of ``services`` and their endpoints from ``endpoint_slices``."""
    return ProxyInputs(service_ports(services), endpoints_by_port(endpoint_slices))
