"""kube-proxy's inputs (:func:`labkit.sandbox.proxyports.proxy_inputs`) kept per Service between
syncs: a Service whose uid and resourceVersion are unchanged keeps its ports, and the
EndpointSlices of a Service whose slices all kept theirs keep their endpoints, so one more pod
re-reads the few Services whose slices it joined, not all 500 (issue 18), as kube-proxy's
``ServiceChangeTracker`` and ``EndpointsChangeTracker`` queue only the objects an informer saw
change. The store gives an object a new resourceVersion on every change and a recreated one a
new one too, so equal (uid, resourceVersion) pairs mean equal objects. Pure: no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.model.objects import SERVICE_NAME_LABEL, labels_of, meta, name_of, namespace_of
from labkit.sandbox.proxyports import (
    PortEndpoint,
    PortKey,
    ProxiedPort,
    ProxyInputs,
    endpoints_by_port,
    proxy_inputs,
    service_ports,
)

Obj = Mapping[str, Any]
Stamp = tuple[str, str]
"""An object's (uid, resourceVersion)."""
Endpoints = dict[PortKey, tuple[PortEndpoint, ...]]


def _stamp(obj: Obj) -> Stamp | None:
    """What identifies an object's content; None without a uid or a resourceVersion."""
    found = meta(obj)
    uid, version = found.get("uid"), found.get("resourceVersion")
    return (str(uid), str(version)) if uid and version else None


def _group_slices(slices: Sequence[Obj]) -> dict[tuple[str, str], list[Obj]]:
    """The IPv4 slices kube-proxy reads, by the (namespace, Service) their label names, each
    group in the order given (the first slice listing an address wins)."""
    groups: dict[tuple[str, str], list[Obj]] = {}
    for eps in slices:
        service = labels_of(eps).get(SERVICE_NAME_LABEL)
        if service and eps.get("addressType", "IPv4") == "IPv4":
            groups.setdefault((namespace_of(eps), service), []).append(eps)
    return groups


class ProxyInputCache:
    """The last ports per Service and endpoints per Service's slices, each with the stamps it
    was read from; what a call no longer names is forgotten (a rolled-back change too)."""

    def __init__(self) -> None:
        self._ports: dict[tuple[str, str], tuple[Stamp, tuple[ProxiedPort, ...]]] = {}
        self._endpoints: dict[tuple[str, str], tuple[tuple[Stamp, ...], Endpoints]] = {}
        self._lock = threading.Lock()
        self.reads = 0
        """How many Services and slice groups were read again (the rest reused): what tests
        count."""

    def inputs(self, services: Sequence[Obj], endpoint_slices: Sequence[Obj]) -> ProxyInputs:
        """What ``proxy_inputs(services, endpoint_slices)`` gives, reading again only the
        Services and slice groups whose stamps changed (all of them when a Service is named
        twice, or an object has no uid or resourceVersion)."""
        with self._lock:
            ports = self._read_ports(services)
            if ports is None:
                return proxy_inputs(services, endpoint_slices)
            return ProxyInputs(ports, self._read_endpoints(endpoint_slices))

    def _read_ports(self, services: Sequence[Obj]) -> list[ProxiedPort] | None:
        """Every Service's ports, sorted by port key as ``service_ports`` sorts them; None
        when two Services share a namespace and name (the uncached read orders those)."""
        kept: dict[tuple[str, str], tuple[Stamp, tuple[ProxiedPort, ...]]] = {}
        by_service: dict[tuple[str, str], tuple[ProxiedPort, ...]] = {}
        for svc in services:
            key, stamp = (namespace_of(svc), name_of(svc)), _stamp(svc)
            if key in by_service:
                return None
            known = self._ports.get(key)
            if stamp is not None and known is not None and known[0] == stamp:
                found = known[1]
            else:
                found = tuple(service_ports([svc]))
                self.reads += 1
            if stamp is not None:
                kept[key] = (stamp, found)
            by_service[key] = found
        self._ports = kept
        # A port key starts with the Service's namespace and name: sorting the Services sorts
        # the ports, each Service's already in order.
        return [port for key in sorted(by_service) for port in by_service[key]]

    def _read_endpoints(self, slices: Sequence[Obj]) -> Endpoints:
        """Every Service port's endpoints, read again only for slice groups that changed."""
        kept: dict[tuple[str, str], tuple[tuple[Stamp, ...], Endpoints]] = {}
        endpoints: Endpoints = {}
        for key, group in _group_slices(slices).items():
            stamps = tuple(stamp for eps in group if (stamp := _stamp(eps)) is not None)
            complete = len(stamps) == len(group)
            known = self._endpoints.get(key)
            if complete and known is not None and known[0] == stamps:
                found = known[1]
            else:
                found = endpoints_by_port(group)
                self.reads += 1
            if complete:
                kept[key] = (stamps, found)
            endpoints.update(found)
        self._endpoints = kept
        return endpoints
