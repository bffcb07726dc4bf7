"""What the sandbox serves, worked out from the cluster's objects (pure: no I/O).

Pods become :class:`PodNet` entries (where each pod's network lives), and the agent's
``workloads.json`` document (who serves which ports in which namespace, the DNS records, the
Ingress routes). Host ports become the mappings the CNI portmap rules need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from labkit.model.objects import (
    container_ports,
    is_host_network,
    name_of,
    namespace_of,
    pod_ip,
    pod_node,
    pod_phase,
)
from labkit.model.podidentity import pod_hostname
from labkit.sandbox import fabric, naming
from labkit.sandbox.fabric import NodeNet, PodNet
from labkit.sandbox.iptables import HostPort
from labkit.sandbox.outside_world import DNS_PORT, RESOLVER_IP, WORLD_PORTS

DNS_IMAGE_MARK = "coredns"
INGRESS_IMAGE_MARK = "labkit/ingress-controller"
SERVED_PROTOCOLS = ("TCP", "UDP")


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name): how pods are sorted and looked up."""
    return namespace_of(obj), name_of(obj)


# --------------------------------------------------------------------------- pods


def _bool_flag(args: Sequence[str], name: str, default: bool) -> bool:
    """A Go boolean flag's value as pflag reads it: ``--name``, ``--name=true|false``; the last
    one given wins."""
    value = default
    for arg in args:
        if arg == f"--{name}":
            value = True
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1].lower() in ("true", "1", "t")
    return value


def serves_hostname_over_http(args: Sequence[str]) -> bool:
    """Whether agnhost args run ``serve-hostname`` in its HTTP mode (``--http`` defaults to true
    and excludes ``--tcp`` and ``--udp``)."""
    if not args or args[0] != "serve-hostname":
        return False
    rest = args[1:]
    raw = _bool_flag(rest, "tcp", False) or _bool_flag(rest, "udp", False)
    return _bool_flag(rest, "http", True) and not raw


def pod_role(pod: Mapping[str, Any]) -> str:
    """How the agent emulates a pod, judged by its images and args: cluster DNS, ingress
    controller, agnhost serve-hostname over HTTP, or netexec."""
    containers = (pod.get("spec") or {}).get("containers") or []
    images = [str(c.get("image") or "") for c in containers]
    if any(DNS_IMAGE_MARK in image for image in images):
        return "dns"
    if any(INGRESS_IMAGE_MARK in image for image in images):
        return "ingress"
    if any(serves_hostname_over_http([str(a) for a in c.get("args") or []]) for c in containers):
        return "serve-hostname"
    return "netexec"


def pod_ports(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every declared TCP or UDP containerPort of every container, unique by (port, protocol),
    as the agent's workload entries list them."""
    seen: list[dict[str, Any]] = []
    for port in container_ports(pod):
        entry = {"port": port.number, "protocol": port.protocol}
        if port.protocol in SERVED_PROTOCOLS and entry not in seen:
            seen.append(entry)
    return seen


def pod_nets(
    lab_name: str, cni: str, pods: Iterable[Mapping[str, Any]], nodes: Sequence[NodeNet]
) -> dict[str, PodNet]:
    """The pods that need a data plane (scheduled, with an address, not finished), by
    ``ns/name``."""
    by_name = {n.name: n for n in nodes}
    wanted: dict[str, PodNet] = {}
    for pod in pods:
        ns, name = _key(pod)
        node = by_name.get(pod_node(pod) or "")
        ip = pod_ip(pod)
        if node is None or not ip or pod_phase(pod) in ("Succeeded", "Failed"):
            continue
        host = is_host_network(pod)
        wanted[f"{ns}/{name}"] = PodNet(
            namespace=ns,
            name=name,
            node=node.name,
            ip=str(ip),
            netns=node.netns if host else naming.pod_netns(lab_name, ns, name),
            iface="" if host else naming.pod_host_iface(cni, ns, name),
            host_network=host,
        )
    return wanted


def host_ports(pods: Iterable[Mapping[str, Any]], local: Mapping[str, PodNet]) -> list[HostPort]:
    """The host ports of the pods in ``local`` (one node's), host-network pods left out (they
    listen on the node itself)."""
    out = []
    for pod in pods:
        ns, name = _key(pod)
        net = local.get(f"{ns}/{name}")
        if net is None or net.host_network:
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("hostPort"):
                    out.append(
                        HostPort(
                            pod_ref=f"{ns}/{name}",
                            pod_ip=net.ip,
                            protocol=str(port.get("protocol") or "TCP"),
                            host_port=int(port["hostPort"]),
                            container_port=int(port["containerPort"]),
                            host_ip=str(port.get("hostIP") or ""),
                        )
                    )
    return out


# --------------------------------------------------------------------------- ingress


class IngressRoutes(NamedTuple):
    """What the lab's ingress controller serves: the agent's ``ingress`` list and TLS hosts."""

    rules: list[dict[str, Any]]
    tls_hosts: list[str]


def ingress_backend_port(service: Mapping[str, Any], port: Mapping[str, Any] | None) -> int | None:
    """The number of an Ingress backend's service port (given by number or by name)."""
    port = port or {}
    if port.get("number") is not None:
        return int(port["number"])
    for entry in (service.get("spec") or {}).get("ports") or []:
        if port.get("name") is not None and entry.get("name") == port.get("name"):
            return int(entry["port"])
    return None


def ingress_rules(
    ingresses: Iterable[Mapping[str, Any]], services: Iterable[Mapping[str, Any]]
) -> IngressRoutes:
    """Ingress paths resolved to their Service's ClusterIP and port, and the TLS host names.
    Paths whose Service is missing or headless are left out."""
    by_ref = {_key(s): s for s in services}
    rules: list[dict[str, Any]] = []
    tls: list[str] = []

    def backend_of(ns: str, backend: Mapping[str, Any] | None) -> dict[str, Any] | None:
        svc_ref = (backend or {}).get("service") or {}
        svc = by_ref.get((ns, str(svc_ref.get("name") or "")))
        if svc is None:
            return None
        ip = (svc.get("spec") or {}).get("clusterIP")
        port = ingress_backend_port(svc, svc_ref.get("port"))
        if not ip or ip == "None" or port is None:
            return None
        return {"ip": str(ip), "port": port, "service": f"{ns}/{svc_ref['name']}"}

    for ing in ingresses:
        ns = namespace_of(ing)
        spec = ing.get("spec") or {}
        for entry in spec.get("tls") or []:
            tls.extend(h for h in entry.get("hosts") or [] if h not in tls)
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = backend_of(ns, path.get("backend"))
                if backend is not None:
                    rules.append(
                        {
                            "host": rule.get("host"),
                            "path": path.get("path") or "/",
                            "pathType": path.get("pathType") or "Prefix",
                            "backend": backend,
                        }
                    )
        default = backend_of(ns, spec.get("defaultBackend"))
        if default is not None:
            rules.append({"host": None, "path": "/", "pathType": "Prefix", "backend": default})
    return IngressRoutes(rules, tls)


def served_ingresses(ingresses: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Ingresses the lab's controller serves: those the store gave the controller's address
    (class ``labkit``, or no class while ``labkit`` is the default)."""
    return [
        i for i in ingresses if ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    ]


# --------------------------------------------------------------------------- the agent's document


def served_pods(
    pods: Iterable[Mapping[str, Any]], nets: Mapping[str, PodNet]
) -> list[tuple[Mapping[str, Any], PodNet]]:
    """The pods the agent serves, by namespace and name, with their networks: those with one.

    Host-network pods serve in their node's namespace: only those that declare ports are listed,
    and only the first of them per node, since the agent gives each namespace to one pod.
    """
    served = []
    used_netns: set[str] = set()
    for pod in sorted(pods, key=_key):
        ns, name = _key(pod)
        net = nets.get(f"{ns}/{name}")
        if net is None or net.netns in used_netns or (net.host_network and not pod_ports(pod)):
            continue
        used_netns.add(net.netns)
        served.append((pod, net))
    return served


def workload_entry(pod: Mapping[str, Any], net: PodNet) -> dict[str, Any]:
    """One pod's entry in the agent's ``workloads.json``: where it serves, its role and ports,
    and its hostname."""
    role = pod_role(pod)
    ports = pod_ports(pod)
    if role == "serve-hostname":  # its HTTP mode listens on TCP only
        ports = [p for p in ports if p["protocol"] == "TCP"]
    return {
        "namespace": net.namespace,
        "name": net.name,
        "netns": net.netns,
        "ip": net.ip,
        "role": role,
        "ports": ports,
        "hostname": net.node
        if net.host_network
        else pod_hostname(net.name, (pod.get("spec") or {}).get("hostname")),
    }


def outside_workloads(lab_name: str, ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outside namespace's workload entries: its resolver on port 53, and its servers
    answering like netexec on the world's ports plus ``ports`` (those a scenario's outside
    addresses serve)."""
    netns = naming.outside_netns(lab_name)
    world = [{"port": p, "protocol": "TCP"} for p in WORLD_PORTS]
    return [
        {
            "namespace": "outside",
            "name": "resolver",
            "netns": netns,
            "ip": RESOLVER_IP,
            "role": "resolver",
            "ports": [{"port": DNS_PORT, "protocol": p} for p in SERVED_PROTOCOLS],
        },
        {
            "namespace": "outside",
            "name": "outside",
            "netns": netns,
            "ip": fabric.GATEWAY_IP,
            "role": "netexec",
            "ports": [*world, *(p for p in ports if p not in world)],
        },
    ]
