"""The cells of kubectl's tables, one function per format of upstream's printers.go: pod
readiness and status, node status and roles, Service ports and external IPs, endpoints (the
first three, then ``+ N more...``), label selectors, Ingress hosts and addresses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.tables import EMPTY

Obj = Mapping[str, Any]
UNSET = "<unset>"
LOAD_BALANCER_WIDTH = 16
"""A load balancer's addresses are clipped to this many characters outside ``-o wide``."""
SHOWN_AT_MOST = 3
"""Endpoints, ports and hosts a cell lists before ``+ N more...``."""
ROLE_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


# --------------------------------------------------------------------------- labels


def format_labels(labels: Mapping[str, Any] | None) -> str:
    """``a=1,b=2`` in key order, ``<none>`` for no labels (labels.FormatLabels)."""
    if not labels:
        return EMPTY
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector as kubectl writes it (``app=web,tier in (a,b),!legacy``), requirements in
    key order; ``<none>`` when it selects everything (metav1.FormatLabelSelector)."""
    selector = selector or {}
    requirements: list[tuple[str, str]] = [
        (str(k), f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        key, op = str(expr.get("key")), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(op), f"{key} {op} ({values})")
        requirements.append((key, text))
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements) or EMPTY


def more(items: Sequence[str], total: int, *, empty: str = UNSET) -> str:
    """Up to three items joined by commas, then `` + N more...`` for the rest."""
    shown = ",".join(items[:SHOWN_AT_MOST])
    if total > SHOWN_AT_MOST:
        return f"{shown} + {total - SHOWN_AT_MOST} more..."
    return shown or empty


# --------------------------------------------------------------------------- pods


def pod_ready(pod: Obj) -> str:
    """``ready/total`` containers: a container counts when it is ready and running."""
    statuses = _status(pod).get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready") and "running" in (c.get("state") or {}))
    return f"{ready}/{len(_spec(pod).get('containers') or [])}"


def pod_status(pod: Obj) -> str:
    """The STATUS column: the pod's reason or phase, overridden by the first container that
    waits or ended (its reason, ``ExitCode:N`` or ``Signal:N``); ``Completed`` beside a
    running container reads Running (pod Ready) or NotReady; a deleted pod is Terminating."""
    status = _status(pod)
    reason = str(status.get("reason") or status.get("phase") or "")
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        waiting, ended = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = str(waiting["reason"])
        elif ended is not None:
            signal = ended.get("signal")
            code = f"Signal:{signal}" if signal else f"ExitCode:{ended.get('exitCode', 0)}"
            reason = str(ended.get("reason") or code)
        elif container.get("ready") and "running" in state:
            running = True
    if reason == "Completed" and running:
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        reason = "Running" if ready else "NotReady"
    deleted = (pod.get("metadata") or {}).get("deletionTimestamp")
    if deleted and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason


def pod_restarts(pod: Obj) -> str:
    """Restarts of every container (the sandbox's containers never restart, so no ``(Xm ago)``
    suffix)."""
    return str(
        sum(int(c.get("restartCount") or 0) for c in _status(pod).get("containerStatuses") or [])
    )


def pod_ip(pod: Obj) -> str:
    """The first of status.podIPs (or podIP), ``<none>`` before the CNI gave one."""
    ips = _status(pod).get("podIPs") or []
    return str((ips[0] or {}).get("ip") if ips else _status(pod).get("podIP") or "") or EMPTY


def readiness_gates(pod: Obj) -> str:
    """``true/total`` readiness gates, ``<none>`` without any."""
    gates = _spec(pod).get("readinessGates") or []
    if not gates:
        return EMPTY
    conditions = {c.get("type"): c.get("status") for c in _status(pod).get("conditions") or []}
    true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


def container_names_and_images(containers: Iterable[Obj]) -> tuple[str, str]:
    """The CONTAINERS and IMAGES cells of a workload: names and images, comma-joined."""
    listed = list(containers)
    return (
        ",".join(str(c.get("name") or "") for c in listed),
        ",".join(str(c.get("image") or "") for c in listed),
    )


# --------------------------------------------------------------------------- nodes


def node_status(node: Obj) -> str:
    """Ready, NotReady or Unknown from the Ready condition, plus SchedulingDisabled when
    cordoned."""
    ready = next(
        (c for c in _status(node).get("conditions") or [] if c.get("type") == "Ready"), None
    )
    parts = [
        "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"
    ]
    if _spec(node).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Obj) -> str:
    """Roles from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role`` labels, sorted;
    ``<none>`` without any."""
    roles = set()
    for key, value in ((node.get("metadata") or {}).get("labels") or {}).items():
        if key.startswith(ROLE_PREFIX) and key != ROLE_PREFIX:
            roles.add(key.removeprefix(ROLE_PREFIX))
        elif key == ROLE_LABEL and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or EMPTY


def node_address(node: Obj, kind: str) -> str:
    """The node's first address of a type (InternalIP, ExternalIP), ``<none>`` without one."""
    for address in _status(node).get("addresses") or []:
        if address.get("type") == kind:
            return str(address.get("address"))
    return EMPTY


def node_info(node: Obj, field: str) -> str:
    """A status.nodeInfo field (osImage, kernelVersion...), ``<unknown>`` when not reported."""
    return str((_status(node).get("nodeInfo") or {}).get(field) or "<unknown>")


# --------------------------------------------------------------------------- services


def load_balancer_addresses(status: Obj | None, wide: bool) -> str:
    """A load balancer's IPs (or hostnames), sorted and comma-joined; clipped to 16 characters
    outside ``-o wide``."""
    found = {
        str(i.get("ip") or i.get("hostname"))
        for i in (status or {}).get("ingress") or []
        if i.get("ip") or i.get("hostname")
    }
    text = ",".join(sorted(found))
    if not wide and len(text) > LOAD_BALANCER_WIDTH:
        text = text[: LOAD_BALANCER_WIDTH - 3] + "..."
    return text


def service_cluster_ip(service: Obj) -> str:
    """The first cluster IP (``None`` for a headless Service), ``<none>`` without one."""
    ips = _spec(service).get("clusterIPs") or []
    return str(ips[0]) if ips else str(_spec(service).get("clusterIP") or EMPTY)


def service_external_ip(service: Obj, wide: bool) -> str:
    """EXTERNAL-IP: externalIPs, a LoadBalancer's addresses or ``<pending>``, an ExternalName's
    name."""
    spec = _spec(service)
    kind = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or EMPTY
    if kind == "LoadBalancer":
        balancer = load_balancer_addresses(_status(service).get("loadBalancer"), wide)
        found = [*(balancer.split(",") if balancer else []), *external]
        return ",".join(found) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def service_ports(service: Obj) -> str:
    """PORT(S): ``80/TCP`` per port, ``80:30080/TCP`` with a NodePort; ``<none>`` without ports."""
    pieces = []
    for port in _spec(service).get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        node_port = port.get("nodePort")
        middle = f":{node_port}" if node_port else ""
        pieces.append(f"{port.get('port')}{middle}/{protocol}")
    return ",".join(pieces) or EMPTY


# --------------------------------------------------------------------------- endpoints


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def endpoints_cell(endpoints: Obj) -> str:
    """ENDPOINTS of an Endpoints object: ``ip:port`` per port and ready address, the first
    three then ``+ N more...``; ``<none>`` without subsets."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return EMPTY
    listed: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [str(a.get("ip")) for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            listed.extend(addresses)
            total += len(addresses)
        for port in ports:
            listed.extend(_host_port(ip, port.get("port")) for ip in addresses)
            total += len(addresses)
    return more(listed, total, empty="")


def slice_ports(endpoint_slice: Obj) -> str:
    """PORTS of an EndpointSlice: numbers (a name, or ``*``, when unset); ``<unset>`` without
    ports."""
    ports = endpoint_slice.get("ports") or []
    shown = [
        str(p.get("port") if p.get("port") is not None else p.get("name") or "*") for p in ports
    ]
    return more(shown, len(ports))


def slice_endpoints(endpoint_slice: Obj) -> str:
    """ENDPOINTS of an EndpointSlice: its addresses, the first three then ``+ N more...``."""
    addresses = [
        str(a) for e in endpoint_slice.get("endpoints") or [] for a in e.get("addresses") or []
    ]
    return more(addresses, len(addresses))


# --------------------------------------------------------------------------- ingress


def ingress_hosts(ingress: Obj) -> str:
    """HOSTS: the rules' hosts, the first three then ``+ N more...``; ``*`` when no rule names
    one."""
    rules = _spec(ingress).get("rules") or []
    hosts: list[str] = []
    clipped = False
    for rule in rules:
        if len(hosts) == SHOWN_AT_MOST:
            clipped = True
            break
        if rule.get("host"):
            hosts.append(str(rule["host"]))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - SHOWN_AT_MOST} more..." if clipped else text


def ingress_ports(ingress: Obj) -> str:
    """PORTS: ``80``, or ``80, 443`` when the Ingress has TLS."""
    return "80, 443" if _spec(ingress).get("tls") else "80"
