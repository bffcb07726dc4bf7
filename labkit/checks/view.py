"""One look at the cluster for one check: each kind of object is listed once (all namespaces) and
kept, so a check judges from one consistent snapshot instead of asking the lab again and again.

A check builds a :class:`ClusterView` when it starts. A check that polls until the cluster
converges (endpoints appearing, readiness changing) builds a fresh view on every attempt.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, NamedTuple

from labkit.checks.targets import PodNames, Target, TargetSpec, choose_pods, parse_target
from labkit.commands import Shell
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.addresses import covering
from labkit.model.ciliumpolicy.translate import as_network_policies
from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    ServiceEndpoint,
    endpoints_from_endpoints,
    endpoints_from_slices,
    labels_of,
    name_of,
    namespace_of,
    node_internal_ip,
    node_pod_cidr,
)

Obj = dict[str, Any]


class NodeAddress(NamedTuple):
    """A node and the InternalIP that node ports and outside clients reach it on."""

    name: str
    ip: str


class ClusterView:
    """The objects of a lab as one check sees them, read lazily, one listing per kind."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.shell = Shell.of(lab)
        """The lab's backend and name, which a hint's commands are spelt for."""
        self._listings: dict[str, list[Obj] | None] = {}

    # ---- listings

    def listing(self, kind: str) -> list[Obj]:
        """Every object of a kind (kubectl's plural), sorted by namespace and name."""
        if kind not in self._listings:
            found = self.lab.get(kind, namespace=None)
            self._listings[kind] = sorted(found, key=lambda o: (namespace_of(o, ""), name_of(o)))
        return self._listings[kind] or []

    def optional_listing(self, kind: str) -> list[Obj] | None:
        """Like :meth:`listing`, but None when this lab cannot list the kind (a LabError)."""
        if kind not in self._listings:
            try:
                self.listing(kind)
            except LabError:
                self._listings[kind] = None
        return self._listings[kind]

    @property
    def pods(self) -> list[Obj]:
        """Every pod, sorted by namespace and name."""
        return self.listing("pods")

    @property
    def services(self) -> list[Obj]:
        """Every Service, sorted by namespace and name."""
        return self.listing("services")

    @property
    def nodes(self) -> list[Obj]:
        """Every node, sorted by name."""
        return self.listing("nodes")

    @property
    def namespaces(self) -> list[Obj]:
        """Every Namespace (the policy model reads their labels)."""
        return self.listing("namespaces")

    @cached_property
    def policies(self) -> list[Obj]:
        """Every NetworkPolicy and, on a Cilium lab, every CiliumNetworkPolicy as the
        NetworkPolicy documents it amounts to at L3/L4, so a check judges what Cilium enforces
        (PolicyError for one the model cannot express)."""
        found = self.listing("networkpolicies")
        if self.lab.cni != "cilium":
            return found
        nodes = self.nodes
        pod_cidr = covering([c for c in map(node_pod_cidr, nodes) if c])
        node_cidr = covering([ip for ip in map(node_internal_ip, nodes) if ip])
        cilium = self.optional_listing("ciliumnetworkpolicies") or []
        if not cilium or pod_cidr is None or node_cidr is None:
            return found
        return found + [d for cnp in cilium for d in as_network_policies(cnp, pod_cidr, node_cidr)]

    # ---- pods

    @cached_property
    def names(self) -> PodNames:
        """Display names for every pod of this view (no hashes)."""
        return PodNames(self.pods)

    def pods_in(self, namespace: str) -> list[Obj]:
        """The pods of one namespace, sorted by name."""
        return [p for p in self.pods if namespace_of(p) == namespace]

    def pod(self, name: str, namespace: str) -> Obj | None:
        """The pod ``namespace/name``, or None."""
        return next((p for p in self.pods_in(namespace) if name_of(p) == name), None)

    def find_pods(self, target: Target, namespace: str = "default") -> tuple[TargetSpec, list[Obj]]:
        """The parsed target and the pods it means (see
        :func:`~labkit.checks.targets.choose_pods`)."""
        spec = parse_target(target, namespace)
        return spec, choose_pods(spec, self.pods)

    # ---- services

    def service(self, name: str, namespace: str) -> Obj | None:
        """The Service ``namespace/name``, or None."""
        return next(
            (s for s in self.services if name_of(s) == name and namespace_of(s) == namespace), None
        )

    def service_namespaces(self, name: str) -> list[str]:
        """The namespaces that hold a Service called ``name``, sorted (for "it lives elsewhere")."""
        return sorted(namespace_of(s) for s in self.services if name_of(s) == name)

    def endpoints(self, service: str, namespace: str) -> list[ServiceEndpoint]:
        """A Service's endpoints from its EndpointSlices (or the older Endpoints object)."""
        slices = [
            s
            for s in self.optional_listing("endpointslices") or []
            if namespace_of(s) == namespace and labels_of(s).get(SERVICE_NAME_LABEL) == service
        ]
        if slices:
            return endpoints_from_slices(slices)
        legacy = [
            e
            for e in self.optional_listing("endpoints") or []
            if namespace_of(e) == namespace and name_of(e) == service
        ]
        return endpoints_from_endpoints(legacy[0]) if legacy else []

    # ---- nodes

    def node(self, name: str | None) -> Obj | None:
        """The node called ``name``, or None."""
        return next((n for n in self.nodes if name_of(n) == name), None)

    def node_addresses(self) -> list[NodeAddress]:
        """Every node that has an InternalIP, with it, sorted by node name."""
        found = (NodeAddress(name_of(n), node_internal_ip(n) or "") for n in self.nodes)
        return sorted(a for a in found if a.ip)
