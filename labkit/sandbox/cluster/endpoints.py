"""The Endpoints and EndpointSlice controllers: which pod addresses and ports stand behind each
Service, ready or not, and the mirroring of user-written Endpoints into EndpointSlices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from labkit.model.objects import SERVICE_NAME_LABEL, labels_of, named_container_port
from labkit.model.selectors import equality_selector_matches
from labkit.sandbox.cluster.world import (
    World,
    canonical_json,
    ip_sort_key,
    key_of,
    object_key,
    owner_reference,
    short_hash,
)

API_SERVER_PORT = 6443
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
SLICE_MIRROR = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SYSTEM_SERVICE = ("default", "kubernetes")
"""The API server's own Service, whose endpoints are the control-plane nodes."""


class Member(NamedTuple):
    """One address in an endpoint group (ip, hostname, nodeName, targetRef) and its readiness."""

    address: dict[str, Any]
    ready: bool


class ServedAddress(NamedTuple):
    """An address a Service selects, the Service's ports as served there, and its readiness."""

    ports: list[dict[str, Any]]
    address: dict[str, Any]
    ready: bool


class PortGroup(NamedTuple):
    """Addresses that serve the same port mapping: one Endpoints subset, one EndpointSlice."""

    ports: list[dict[str, Any]]
    members: list[Member]


def _is_system(obj: Mapping[str, Any]) -> bool:
    return (obj["metadata"].get("namespace"), obj["metadata"]["name"]) == SYSTEM_SERVICE


def _address(world: World, pod: Mapping[str, Any], svc_name: str) -> dict[str, Any]:
    meta, spec = pod["metadata"], pod["spec"]
    address: dict[str, Any] = {"ip": world.facts(pod)["ip"]}
    if spec.get("hostname") and spec.get("subdomain") == svc_name:
        address["hostname"] = spec["hostname"]
    address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
    return address


def endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The service's ports as this pod serves them; a named targetPort the pod lacks is left
    out."""
    ports = []
    for sp in service["spec"].get("ports") or []:
        protocol = sp.get("protocol", "TCP")
        target = sp.get("targetPort", sp["port"])
        if isinstance(target, str):
            number = named_container_port(pod, target, protocol)
            if number is None:
                continue
        else:
            number = int(target)
        port = {"name": sp.get("name", ""), "port": number, "protocol": protocol}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    return ports


PodIndex = dict[tuple[str, str, Any], list[dict[str, Any]]]
"""Pods by (namespace, label key, label value), each list in creation order."""


def pod_index(world: World) -> PodIndex:
    """Every pod under each of its labels, for one pass over the Services: a Service's
    candidates are then the pods carrying one of its selector's pairs, not every pod of its
    namespace (500 Services x 300 pods, issue 18). Pods without labels match no selector."""
    index: PodIndex = {}
    for pod in world.ordered("Pod"):
        namespace = pod["metadata"].get("namespace")
        for key, value in (pod["metadata"].get("labels") or {}).items():
            index.setdefault((namespace, key, value), []).append(pod)
    return index


def selected_pods(
    index: PodIndex, namespace: str, selector: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The pods of ``namespace`` a map selector selects, in creation order: those filed under its
    first pair that match all of it (``equality_selector_matches``, so an empty one selects
    none)."""
    if not selector:
        return []
    key, value = next(iter(selector.items()))
    candidates = index.get((namespace, key, str(value)), [])
    return [p for p in candidates if equality_selector_matches(selector, p["metadata"]["labels"])]


def _served_addresses(world: World, svc: Mapping[str, Any], pods: PodIndex) -> list[ServedAddress]:
    """Each pod the Service selects that has an IP (the control-plane nodes for ``kubernetes``)."""
    meta, spec = svc["metadata"], svc["spec"]
    if _is_system(svc):
        https = [{"name": "https", "port": API_SERVER_PORT, "protocol": "TCP"}]
        return [
            ServedAddress(https, {"ip": n["internal_ip"]}, True)
            for n in world.nodes
            if n.get("role") == "control-plane"
        ]
    out = []
    for pod in selected_pods(pods, meta["namespace"], spec.get("selector")):
        if not world.facts(pod)["ip"]:
            continue
        ready = bool(spec.get("publishNotReadyAddresses")) or world.is_ready(pod)
        out.append(
            ServedAddress(endpoint_ports(svc, pod), _address(world, pod, meta["name"]), ready)
        )
    return out


def _endpoints_port(port: Mapping[str, Any]) -> dict[str, Any]:
    """An Endpoints (v1) port: like a slice port, without an empty name."""
    return {k: v for k, v in port.items() if k != "name" or v}


def _group_by_ports(entries: list[ServedAddress]) -> list[PortGroup]:
    groups: dict[str, PortGroup] = {}
    for entry in entries:
        key = canonical_json(sorted(entry.ports, key=canonical_json))
        groups.setdefault(key, PortGroup(entry.ports, [])).members.append(
            Member(entry.address, entry.ready)
        )
    return [groups[k] for k in sorted(groups)]


def sync_endpoints(world: World) -> None:
    """Endpoints (v1) and EndpointSlices for every Service the change touched (every Service on
    a full pass): selected pods with an IP, grouped by port mapping, ready or not; selector-less
    Services get their user Endpoints mirrored."""
    touched = services_to_sync(world)
    wanted_slices: set[str] = set()
    wanted_endpoints: set[str] = set()
    pods = pod_index(world)  # the controllers below write only Endpoints and slices
    for svc in world.ordered_among("Service", touched):
        meta, spec = svc["metadata"], svc["spec"]
        ns, name = meta["namespace"], meta["name"]
        if spec.get("type") == "ExternalName":
            continue
        system = _is_system(svc)
        if not spec.get("selector") and not system:
            wanted_slices |= {object_key(ns, n) for n in _mirror_endpoints(world, svc)}
            continue
        groups = _group_by_ports(_served_addresses(world, svc, pods))
        _write_endpoints(world, svc, groups)
        wanted_endpoints.add(object_key(ns, name))
        if system:
            only = groups[0] if groups else PortGroup([], [])
            _write_slice(world, svc, name, only, None)
            wanted_slices.add(object_key(ns, name))
            continue
        if not groups:  # the controller keeps one empty placeholder slice
            groups = [PortGroup([], [])]
        for group in groups:
            identity = (
                f"{ns}/{name}/" + canonical_json(group.ports)
                if group.members
                else f"{ns}/{name}/placeholder"
            )
            slice_name = f"{name}-{short_hash(identity, 5)}"
            _write_slice(world, svc, slice_name, group, SLICE_CONTROLLER)
            wanted_slices.add(object_key(ns, slice_name))
    _remove_unwanted(world, wanted_slices, wanted_endpoints, touched)


def services_to_sync(world: World) -> set[str] | None:
    """Keys of the Services whose endpoints the change may have moved, as the EndpointSlice
    controller's informers queue them: changed Services, those with changed Endpoints or slices,
    and those whose selector picks a changed pod as it was or as it is (None: all, a full
    pass)."""
    changed_pods = world.changed("Pod")
    services = world.changed("Service")
    if changed_pods is None or services is None:
        return None
    services |= world.changed("Endpoints") or set()
    for key in world.changed("EndpointSlice") or set():
        for sl in world.versions("EndpointSlice", key):
            owner = labels_of(sl).get(SERVICE_NAME_LABEL)
            if not owner:
                return None  # a slice of no Service: only a full pass judges it
            services.add(object_key(sl["metadata"]["namespace"], owner))
    if not changed_pods:
        return services
    by_pair: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for svc in world.table("Service").values():
        selector = svc["spec"].get("selector")
        if selector:
            first, value = next(iter(selector.items()))
            pair = (svc["metadata"]["namespace"], first, str(value))
            by_pair.setdefault(pair, []).append(svc)
    for key in changed_pods:
        for pod in world.versions("Pod", key):
            namespace, labels = pod["metadata"]["namespace"], labels_of(pod)
            for label, value in labels.items():
                for svc in by_pair.get((namespace, label, value), ()):
                    if equality_selector_matches(svc["spec"]["selector"], labels):
                        services.add(key_of(svc))
    return services


def _remove_unwanted(
    world: World, wanted_slices: set[str], wanted_endpoints: set[str], touched: set[str] | None
) -> None:
    """Drop the slices and Endpoints the controllers made for Services (those ``touched``, None:
    all) that no longer want them."""
    for sl in list(world.table("EndpointSlice").values()):
        service = object_key(sl["metadata"]["namespace"], labels_of(sl).get(SERVICE_NAME_LABEL, ""))
        if touched is not None and service not in touched:
            continue
        managed = labels_of(sl).get(MANAGED_BY_LABEL) in (SLICE_CONTROLLER, SLICE_MIRROR)
        if (managed or _is_system(sl)) and key_of(sl) not in wanted_slices:
            world.remove("EndpointSlice", sl["metadata"]["namespace"], sl["metadata"]["name"])
    for ep in world.ordered_among("Endpoints", touched):
        mine = labels_of(ep).get(SKIP_MIRROR_LABEL) == "true"
        if mine and key_of(ep) not in wanted_endpoints:
            world.remove("Endpoints", ep["metadata"]["namespace"], ep["metadata"]["name"])


def _headless_label(svc: Mapping[str, Any]) -> dict[str, str]:
    return {"service.kubernetes.io/headless": ""} if svc["spec"].get("clusterIP") == "None" else {}


def _by_ip(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda m: ip_sort_key(m.address["ip"]))


def _write_endpoints(world: World, svc: Mapping[str, Any], groups: list[PortGroup]) -> None:
    meta = svc["metadata"]
    subsets = []
    for group in groups:
        if not group.ports and svc["spec"].get("ports"):
            continue  # Endpoints (v1) lists a pod only under the ports it actually serves
        subset: dict[str, Any] = {}
        ready = [m.address for m in _by_ip(group.members) if m.ready]
        not_ready = [m.address for m in _by_ip(group.members) if not m.ready]
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if group.ports:
            subset["ports"] = [_endpoints_port(p) for p in group.ports]
        subsets.append(subset)
    labels = {**(meta.get("labels") or {}), **_headless_label(svc), SKIP_MIRROR_LABEL: "true"}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
    }
    if subsets:
        obj["subsets"] = subsets
    world.put(obj)


def _write_slice(
    world: World,
    svc: Mapping[str, Any],
    slice_name: str,
    group: PortGroup,
    managed_by: str | None,
) -> None:
    """One EndpointSlice; ``managed_by`` None marks the API server's own ``kubernetes`` slice."""
    meta = svc["metadata"]
    endpoints = []
    for member in _by_ip(group.members):
        address = member.address
        entry: dict[str, Any] = {
            "addresses": [address["ip"]],
            "conditions": {"ready": member.ready, "serving": member.ready, "terminating": False},
        }
        for field in ("hostname", "nodeName"):
            if address.get(field):
                entry[field] = address[field]
        if address.get("targetRef"):
            entry["targetRef"] = dict(address["targetRef"])
        endpoints.append(entry)
    obj_meta: dict[str, Any] = {
        "name": slice_name,
        "namespace": meta["namespace"],
        "labels": {SERVICE_NAME_LABEL: meta["name"]},
    }
    if managed_by:
        obj_meta["labels"] = {
            **(meta.get("labels") or {}),
            **_headless_label(svc),
            SERVICE_NAME_LABEL: meta["name"],
            MANAGED_BY_LABEL: managed_by,
        }
        obj_meta["ownerReferences"] = [owner_reference(svc)]
    world.put(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": obj_meta,
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [dict(p) for p in group.ports],
        }
    )


def _mirror_endpoints(world: World, svc: Mapping[str, Any]) -> list[str]:
    """Mirror a user's Endpoints of a selector-less Service into EndpointSlices (one per subset);
    returns the slices' names."""
    meta = svc["metadata"]
    ep = world.find("Endpoints", meta["namespace"], meta["name"])
    if ep is None or labels_of(ep).get(SKIP_MIRROR_LABEL) == "true":
        return []
    names = []
    for index, subset in enumerate(ep.get("subsets") or []):
        ports = [
            {"name": p.get("name", ""), "port": p["port"], "protocol": p.get("protocol", "TCP")}
            for p in subset.get("ports") or []
        ]
        members = [Member(a, True) for a in subset.get("addresses") or []]
        members += [Member(a, False) for a in subset.get("notReadyAddresses") or []]
        key = f"{meta['namespace']}/{meta['name']}/mirror/{index}"
        name = f"{meta['name']}-{short_hash(key, 5)}"
        _write_slice(world, svc, name, PortGroup(ports, members), SLICE_MIRROR)
        names.append(name)
    return names
