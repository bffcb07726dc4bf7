"""Reading Kubernetes objects (plain dicts in the API's JSON shape): one place for the accessors
every layer needs (metadata, pod facts, container ports, Service endpoints), so a field is read
the same way by checks and backends alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Obj = Mapping[str, Any]


# --------------------------------------------------------------------------- metadata


def meta(obj: Obj) -> Mapping[str, Any]:
    """An object's metadata ({} when absent)."""
    return obj.get("metadata") or {}


def name_of(obj: Obj) -> str:
    """metadata.name ("" when absent)."""
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Obj, default: str = "default") -> str:
    """metadata.namespace, or ``default`` when the object does not say."""
    return str(meta(obj).get("namespace") or default)


def labels_of(obj: Obj) -> dict[str, str]:
    """The object's labels as strings."""
    return {str(k): str(v) for k, v in (meta(obj).get("labels") or {}).items()}


def stamp_of(obj: object) -> tuple[str, str] | None:
    """An object's (uid, resourceVersion), None without both or for a non-object: the API server
    bumps resourceVersion on every change and gives a new incarnation a new uid, so equal stamps
    mean equal content (what render caches compare instead of whole objects)."""
    fields = obj.get("metadata") if isinstance(obj, dict) else None  # a dict test is cheap
    if not isinstance(fields, dict):
        return None
    uid, version = fields.get("uid"), fields.get("resourceVersion")
    return (str(uid), str(version)) if uid and version else None


def ref_of(obj: Obj) -> str:
    """``"ns/name"``: how probes, exec and results name a namespaced object."""
    return f"{namespace_of(obj)}/{meta(obj).get('name')}"


# --------------------------------------------------------------------------- pods


def pod_ip(pod: Obj) -> str | None:
    """status.podIP, or None before the CNI gave one."""
    return (pod.get("status") or {}).get("podIP") or None


def pod_phase(pod: Obj) -> str:
    """status.phase (Unknown when absent)."""
    return str((pod.get("status") or {}).get("phase") or "Unknown")


def pod_node(pod: Obj) -> str | None:
    """spec.nodeName, or None while unscheduled."""
    return (pod.get("spec") or {}).get("nodeName") or None


def pod_ready(pod: Obj) -> bool:
    """Whether the pod's Ready condition is True (what puts it into a Service's endpoints)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status")) == "True"
    return False


def is_host_network(pod: Obj) -> bool:
    """Whether the pod shares its node's network namespace."""
    return bool((pod.get("spec") or {}).get("hostNetwork"))


@dataclass(frozen=True)
class ContainerPort:
    """One declared containerPort: its number, protocol and name (named ports resolve Service
    targetPorts and policy ports), and the container declaring it."""

    number: int
    protocol: str = "TCP"
    name: str | None = None
    container: str | None = field(default=None, compare=False)


def container_ports(pod: Obj) -> list[ContainerPort]:
    """Every declared containerPort of every container, in declaration order."""
    ports = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if "containerPort" in port:
                ports.append(
                    ContainerPort(
                        number=int(port["containerPort"]),
                        protocol=str(port.get("protocol") or "TCP").upper(),
                        name=port.get("name") or None,
                        container=container.get("name", "?"),
                    )
                )
    return ports


def named_container_port(pod: Obj, name: str, protocol: str = "TCP") -> int | None:
    """The number of a named container port (with this protocol) in any container of the pod."""
    for port in container_ports(pod):
        if port.name == name and port.protocol == protocol:
            return port.number
    return None


# --------------------------------------------------------------------------- services


def strip_port(address: str | None) -> str | None:
    """``"10.0.0.1:5555"`` / ``"[fd00::1]:80"`` / ``"10.0.0.1"`` -> the bare IP."""
    if not address:
        return None
    text = address.strip()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def pick_service_port(service: Obj, port: int | str | None) -> dict[str, Any] | None:
    """The Service port a check means: by number or name, or the first one when None."""
    ports = (service.get("spec") or {}).get("ports") or []
    if port is None:
        return dict(ports[0]) if ports else None
    for p in ports:
        if str(p.get("port")) == str(port) or (p.get("name") and p.get("name") == str(port)):
            return dict(p)
    return None


class LoadBalancerIngress(NamedTuple):
    """A LoadBalancer Service's external address and how it carries traffic: ``VIP`` (nodes take
    packets for the address) or ``Proxy`` (a proxy connects to the nodes itself)."""

    address: str
    ip_mode: str


def load_balancer_ingress(service: Obj) -> LoadBalancerIngress | None:
    """The first address in ``status.loadBalancer.ingress``; an IP without ``ipMode`` counts as
    ``VIP``, the API server's default, and a hostname carries no ipMode."""
    for entry in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if entry.get("ip"):
            return LoadBalancerIngress(str(entry["ip"]), str(entry.get("ipMode") or "VIP"))
        if entry.get("hostname"):
            return LoadBalancerIngress(str(entry["hostname"]), "")
    return None


SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # ties an EndpointSlice to its Service


class EndpointPort(NamedTuple):
    """A port an endpoint serves, as an EndpointSlice lists it."""

    name: str | None
    number: int
    protocol: str


@dataclass(frozen=True)
class ServiceEndpoint:
    """One address behind a Service, as its EndpointSlice (or Endpoints) lists it; ``hostname``
    is the endpoint's own DNS label (headless Services publish it), when it has one."""

    ip: str
    pod: str | None
    namespace: str | None
    node: str | None
    ready: bool
    ports: tuple[EndpointPort, ...]
    hostname: str | None = None


def _endpoint_ports(items: Sequence[Obj] | None) -> tuple[EndpointPort, ...]:
    return tuple(
        EndpointPort(
            p.get("name") or None, int(p.get("port") or 0), str(p.get("protocol") or "TCP")
        )
        for p in items or []
    )


def endpoints_from_slices(slices: Sequence[Obj]) -> list[ServiceEndpoint]:
    """Every address of a Service's EndpointSlices, one per IP, sorted by IP."""
    out: dict[str, ServiceEndpoint] = {}
    for sl in slices:
        ports = _endpoint_ports(sl.get("ports"))
        for ep in sl.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready")
            ref = ep.get("targetRef") or {}
            for ip in ep.get("addresses") or []:
                out[ip] = ServiceEndpoint(
                    ip,
                    ref.get("name"),
                    ref.get("namespace"),
                    ep.get("nodeName"),
                    True if ready is None else bool(ready),
                    ports,
                    ep.get("hostname") or None,
                )
    return sorted(out.values(), key=lambda e: e.ip)


def endpoints_from_endpoints(obj: Obj) -> list[ServiceEndpoint]:
    """Every address of an (older) Endpoints object, ready or not, sorted by IP."""
    out: dict[str, ServiceEndpoint] = {}
    for subset in obj.get("subsets") or []:
        ports = _endpoint_ports(subset.get("ports"))
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for addr in subset.get(key) or []:
                ref = addr.get("targetRef") or {}
                out[addr["ip"]] = ServiceEndpoint(
                    addr["ip"],
                    ref.get("name"),
                    ref.get("namespace"),
                    addr.get("nodeName"),
                    ready,
                    ports,
                    addr.get("hostname") or None,
                )
    return sorted(out.values(), key=lambda e: e.ip)


# --------------------------------------------------------------------------- nodes


def node_internal_ip(node: Obj) -> str | None:
    """The node's InternalIP address, or None."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return str(addr.get("address"))
    return None


def node_pod_cidr(node: Obj) -> str | None:
    """The range the node's pods get their addresses from (``spec.podCIDR``), or None."""
    cidr = (node.get("spec") or {}).get("podCIDR")
    return str(cidr) if cidr else None
