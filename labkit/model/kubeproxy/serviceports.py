"""What kube-proxy programmed for one service port, read back from a node: its addresses, its
endpoints with their real chance of selection, its traffic policies and masquerading; and a
table of them for people."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from labkit.model.kubeproxy.chains import service_port_name


class WeightedEndpoint(NamedTuple):
    """One backend and the real chance that a new connection lands on it."""

    ip: str | None
    port: int | None
    probability: float


@dataclass(frozen=True)
class Masquerade:
    """Where kube-proxy source-NATs traffic for one service port, and with which mark.

    ``mark`` is the bit ``KUBE-MARK-MASQ`` sets (``0x4000`` by default) and ``snat`` whether
    ``KUBE-POSTROUTING`` masquerades packets carrying it. ``unless_source`` is the pod CIDR of
    the ``! -s <cidr> -d <clusterIP>`` rule (clients outside the cluster get SNAT), ``all_sources``
    means masqueradeAll, ``external`` that traffic via NodePort / load balancer is SNATed (policy
    Cluster), ``hairpin`` that a pod reaching itself through the service is SNATed.
    """

    mark: str | None = None
    snat: bool = False
    random_fully: bool = False
    unless_source: str | None = None
    all_sources: bool = False
    external: bool = False
    hairpin: bool = False


@dataclass
class ServicePort:
    """One service port as kube-proxy programmed it on the node the dump came from.

    ``endpoints`` are what the cluster IP reaches, each with its real chance of selection;
    ``local_endpoints`` the node-local ones of a ``KUBE-SVL`` chain (traffic policy Local).
    ``namespace``/``name``/``port_name`` are None when the dump does not say (no comments);
    ``port_name`` is ``""`` for an unnamed port. ``no_endpoints`` is the filter-table REJECT.
    """

    namespace: str | None
    name: str | None
    port_name: str | None
    protocol: str | None
    cluster_ip: str | None
    port: int | None
    node_port: int | None = None
    load_balancer_ips: list[str] = field(default_factory=list)
    external_ips: list[str] = field(default_factory=list)
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    endpoints: list[WeightedEndpoint] = field(default_factory=list)
    local_endpoints: list[WeightedEndpoint] = field(default_factory=list)
    no_endpoints: bool = False
    session_affinity: bool = False
    load_balancer_source_ranges: list[str] = field(default_factory=list)
    health_check_node_port: int | None = None
    masquerade: Masquerade = field(default_factory=Masquerade)
    chain: str | None = None

    @property
    def service(self) -> str | None:
        """``namespace/name``, or None when the dump did not name the service."""
        if self.namespace is None or self.name is None:
            return None
        return f"{self.namespace}/{self.name}"

    @property
    def display_name(self) -> str:
        """``ns/name:port`` when known, else the chain name or ``ip:port/proto``."""
        if self.service is not None:
            return service_port_name(self.namespace or "", self.name or "", self.port_name)
        if self.chain:
            return self.chain
        return f"{self.cluster_ip}:{self.port}/{self.protocol}"

    @property
    def external_endpoints(self) -> list[WeightedEndpoint]:
        """What NodePort / load balancer traffic from outside reaches on this node."""
        if self.external_traffic_policy == "Local":
            return self.local_endpoints
        return self.endpoints


def format_services(entries: Iterable[ServicePort]) -> str:
    """A fixed-width table of service ports and their endpoints, one endpoint per line."""
    header = ("SERVICE", "CLUSTER-IP", "NODEPORT", "EXTERNAL", "POLICY", "ENDPOINTS")
    rows: list[tuple[str, ...]] = []
    for sp in entries:
        cluster = f"{sp.cluster_ip}:{sp.port}/{sp.protocol}" if sp.cluster_ip else "-"
        node_port = str(sp.node_port) if sp.node_port else "-"
        external = ",".join(sp.load_balancer_ips + sp.external_ips) or "-"
        policy = sp.external_traffic_policy or "-"
        if sp.internal_traffic_policy == "Local":
            policy = f"{policy} (internal Local)" if policy != "-" else "internal Local"
        endpoint_cells = [f"{ep.ip}:{ep.port} {ep.probability * 100:.1f}%" for ep in sp.endpoints]
        if not endpoint_cells:
            endpoint_cells = ["none (REJECT: connection refused)" if sp.no_endpoints else "none"]
        rows.append((sp.display_name, cluster, node_port, external, policy, endpoint_cells[0]))
        rows.extend(("", "", "", "", "", cell) for cell in endpoint_cells[1:])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"
