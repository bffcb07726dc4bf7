"""The two ends of a flow: a pod (namespace, name, labels, IP, declared ports) or an address
outside the cluster, read from the dicts the API returns; and namespaces' labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.model.addresses import parse_ip
from labkit.model.netpol.policies import (
    NAMESPACE_NAME_LABEL,
    IPAddress,
    PolicyError,
    parse_protocol,
)
from labkit.model.objects import (
    ContainerPort,
    is_host_network,
    labels_of,
    name_of,
    namespace_of,
    pod_ip,
)


@dataclass(frozen=True)
class Endpoint:
    """Either end of a flow: a pod (namespace, name, labels, IP, ports) or an address outside."""

    ip: IPAddress | None
    namespace: str | None = None
    name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    host_network: bool = False
    ports: tuple[ContainerPort, ...] = ()

    @property
    def is_pod(self) -> bool:
        """Whether this end is a pod (else an address outside the cluster)."""
        return self.name is not None

    @property
    def subject(self) -> bool:
        """Whether policies can select this endpoint (a pod with its own network namespace)."""
        return self.is_pod and not self.host_network

    @property
    def label(self) -> str:
        """``ns/name`` for a pod, the address for anything else."""
        return f"{self.namespace}/{self.name}" if self.is_pod else str(self.ip)

    @property
    def sort_key(self) -> tuple[int, str, str, int, int]:
        """Pods first, by namespace and name; then outside addresses, by version and value."""
        if self.is_pod:
            return (0, self.namespace or "", self.name or "", 0, 0)
        assert self.ip is not None
        return (1, "", "", self.ip.version, int(self.ip))

    @property
    def labels_key(self) -> tuple[tuple[str, str], ...]:
        """The labels as a sorted tuple: pods with equal keys match every selector alike."""
        return tuple(sorted(self.labels.items()))

    def named_port(self, name: str, protocol: str | None = None) -> ContainerPort | None:
        """The first containerPort called ``name`` (with ``protocol`` when given), or None."""
        for port in self.ports:
            if port.name == name and (protocol is None or port.protocol == protocol):
                return port
        return None


def endpoint(obj: Mapping[str, Any] | Endpoint) -> Endpoint:
    """Normalise a Pod dict or ``{"ip": "203.0.113.9"}`` into an :class:`Endpoint`."""
    if isinstance(obj, Endpoint):
        return obj
    if not isinstance(obj, Mapping):
        raise PolicyError(
            f"Expected a Pod dict or {{'ip': ...}}, got {type(obj).__name__}.",
            "Pass pods as returned by lab.get('pods'), "
            "or {'ip': '203.0.113.9'} for an outside peer.",
        )
    if "metadata" not in obj:
        if "ip" not in obj:
            raise PolicyError(
                "An endpoint has neither metadata (a Pod) nor an 'ip' key (an outside peer).",
                "Pass a Pod dict, or {'ip': '203.0.113.9'} for an address outside the cluster.",
            )
        return Endpoint(ip=_parse_ip(obj["ip"], "the outside peer"))
    name = name_of(obj)
    if not name:
        raise PolicyError(
            "A Pod has no metadata.name.", "Give every pod a name (as the API server requires)."
        )
    namespace = namespace_of(obj)
    raw_ip = pod_ip(obj) or next(
        (p.get("ip") for p in (obj.get("status") or {}).get("podIPs") or [] if p.get("ip")), None
    )
    ref = f"{namespace}/{name}"
    return Endpoint(
        ip=_parse_ip(raw_ip, f"pod {ref}") if raw_ip else None,
        namespace=namespace,
        name=name,
        labels=labels_of(obj),
        host_network=is_host_network(obj),
        ports=_declared_ports(obj, ref),
    )


def _declared_ports(pod: Mapping[str, Any], ref: str) -> tuple[ContainerPort, ...]:
    """Every containerPort of the pod, checked as strictly as the API server does."""
    ports: list[ContainerPort] = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if "containerPort" not in port:
                raise PolicyError(
                    f"Pod {ref} declares a port without containerPort.",
                    "Give each entry of containers[].ports a containerPort number.",
                )
            ports.append(
                ContainerPort(
                    number=int(port["containerPort"]),
                    protocol=parse_protocol(port.get("protocol"), f"pod {ref}"),
                    name=port.get("name") or None,
                )
            )
    return tuple(ports)


def _parse_ip(value: Any, where: str) -> IPAddress:
    try:
        return parse_ip(str(value))
    except ValueError:
        raise PolicyError(
            f"{value!r} is not an IP address ({where}).",
            "Write an IPv4 or IPv6 address such as 203.0.113.9.",
        ) from None


def namespace_labels(namespaces: Iterable[Mapping[str, Any] | str]) -> dict[str, dict[str, str]]:
    """Map namespace name -> labels, adding the automatic ``kubernetes.io/metadata.name`` label."""
    result: dict[str, dict[str, str]] = {}
    for ns in namespaces or ():
        if isinstance(ns, str):
            name, labels = ns, {}
        else:
            name, labels = name_of(ns), labels_of(ns)
            if not name:
                raise PolicyError(
                    "A Namespace has no metadata.name.", "Give every namespace a name."
                )
        labels.setdefault(NAMESPACE_NAME_LABEL, name)
        result[name] = labels
    return result
