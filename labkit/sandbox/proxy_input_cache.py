"""kube-proxy's inputs (:func:`labkit.sandbox.proxyports.proxy_inputs`) kept per Service between
syncs: a Service whose uid and resourceVersion are unchanged keeps its ports, and the
EndpointSlices of a Service whose slices all kept theirs keep their endpoints, so one more pod
re-reads the few Services whose slices it joined, not all 500 (issue 18), as kube-proxy's
``ServiceChangeTracker`` and ``EndpointsChangeTracker`` queue only the objects an informer saw
change. The store gives an object a new resourceVersion on every change and a recreated one a
new one too, so equal (uid, resourceVersion) pairs mean equal objects; and it shares an
unchanged object between its states, so the same object is checked first. Pure: no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from labkit.model.objects import SERVICE_NAME_LABEL, meta, stamp_of
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


def _group_slices(slices: Sequence[Obj]) -> dict[tuple[str, str], list[Obj]]:
    """The IPv4 slices kube-proxy reads, by the (namespace, Service) their label names (read as
    ``labels_of`` reads it, without copying the labels), each group in the order given (the
    first slice listing an address wins)."""
    groups: dict[tuple[str, str], list[Obj]] = {}
    for eps in slices:
        found = meta(eps)
        service = (found.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service is not None and str(service) and eps.get("addressType", "IPv4") == "IPv4":
            key = (str(found.get("namespace") or "default"), str(service))
            groups.setdefault(key, []).append(eps)
    return groups


class _Kept(NamedTuple):
    """What was read from some objects, with the objects and their stamps: the same objects
    (the store shares an unchanged object between its states) or the same stamps mean the same
    content."""

    objects: tuple[Obj, ...]
    stamps: tuple[Stamp, ...]
    value: Any

    def holds(self, objects: Sequence[Obj]) -> bool:
        """Whether ``objects`` are the ones this was read from, or stamped alike."""
        if len(objects) != len(self.objects):
            return False
        if all(a is b for a, b in zip(objects, self.objects, strict=True)):
            return True
        return _stamps(objects) == self.stamps


def _stamps(objects: Sequence[Obj]) -> tuple[Stamp, ...] | None:
    """Every object's stamp; None when one has none."""
    stamps = tuple(stamp for obj in objects if (stamp := stamp_of(obj)) is not None)
    return stamps if len(stamps) == len(objects) else None


class ProxyInputCache:
    """The last ports per Service and endpoints per Service's slices, each with the objects and
    stamps it was read from; what a call no longer names is forgotten (a rolled-back change
    too)."""

    def __init__(self) -> None:
        self._ports: dict[tuple[str, str], _Kept] = {}
        self._endpoints: dict[tuple[str, str], _Kept] = {}
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
        kept: dict[tuple[str, str], _Kept] = {}
        by_service: dict[tuple[str, str], tuple[ProxiedPort, ...]] = {}
        for svc in services:
            found = meta(svc)
            key = (str(found.get("namespace") or "default"), str(found.get("name") or ""))
            if key in by_service:
                return None
            by_service[key], entry = self._reuse(self._ports, key, (svc,), _ports_of)
            if entry is not None:
                kept[key] = entry
        self._ports = kept
        # A port key starts with the Service's namespace and name: sorting the Services sorts
        # the ports, each Service's already in order.
        return [port for key in sorted(by_service) for port in by_service[key]]

    def _read_endpoints(self, slices: Sequence[Obj]) -> Endpoints:
        """Every Service port's endpoints, read again only for slice groups that changed."""
        kept: dict[tuple[str, str], _Kept] = {}
        endpoints: Endpoints = {}
        for key, group in _group_slices(slices).items():
            found, entry = self._reuse(self._endpoints, key, group, endpoints_by_port)
            if entry is not None:
                kept[key] = entry
            endpoints.update(found)
        self._endpoints = kept
        return endpoints

    def _reuse(
        self,
        known: dict[tuple[str, str], _Kept],
        key: tuple[str, str],
        objects: Sequence[Obj],
        read: Callable[[Sequence[Obj]], Any],
    ) -> tuple[Any, _Kept | None]:
        """What ``objects`` read as, from the known entry when it holds them, and the entry to
        keep (None when an object has no stamp: read again every time)."""
        entry = known.get(key)
        if entry is not None and entry.holds(objects):
            return entry.value, entry
        self.reads += 1
        value, stamps = read(objects), _stamps(objects)
        return value, None if stamps is None else _Kept(tuple(objects), stamps, value)


def _ports_of(services: Sequence[Obj]) -> tuple[ProxiedPort, ...]:
    """The proxied ports of ``services``, as a tuple to keep."""
    return tuple(service_ports(services))
