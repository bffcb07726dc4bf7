"""kube-proxy's inputs kept per Service (labkit.sandbox.proxy_input_cache.ProxyInputCache) equal
a full read (proxyports.proxy_inputs) after every change, and a change reads again only the
Services and slice groups it touched.

Upstream: kube-proxy keeps a ServicePortMap and an EndpointsMap between syncs and applies only
the changes its trackers queued per Service (kubernetes/kubernetes pkg/proxy/servicechangetracker.go
``ServicePortMap.Update``, pkg/proxy/endpointschangetracker.go ``EndpointsMap.Update``: unmerge a
changed Service's previous entries, merge its current ones).
"""

from __future__ import annotations

import copy
import random
from typing import Any

from labkit.sandbox.proxy_input_cache import ProxyInputCache
from labkit.sandbox.proxyports import proxy_inputs
from labkit.sandbox.store import ClusterStore
from tests.unit.workload_docs import deployment

LAB = "pic"
NAMESPACES = ("alpha", "beta")
GROUPS = ("g0", "g1", "g2")
SERVICE = "kubernetes.io/service-name"


def _service(rng: random.Random, ns: str, name: str) -> dict[str, Any]:
    """A Service of a random type and policies, with one or two ports."""
    spec: dict[str, Any] = {
        "type": rng.choice(("ClusterIP", "NodePort", "LoadBalancer")),
        "selector": {"group": rng.choice(GROUPS)},
        "ports": [{"name": "http", "port": rng.choice((80, 81)), "targetPort": "http"}],
    }
    if rng.random() < 0.4:
        spec["ports"].append({"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53})
    if spec["type"] != "ClusterIP" and rng.random() < 0.5:
        spec["externalTrafficPolicy"] = "Local"
    if rng.random() < 0.3:
        spec["internalTrafficPolicy"] = "Local"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _store() -> ClusterStore:
    store = ClusterStore.bootstrap(LAB, "calico")
    store.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES]
    )
    return store


def _change(rng: random.Random, store: ClusterStore) -> None:
    """One random change: a Deployment scaled or added, a Service added, changed or deleted, a
    pod turned ready or not."""
    ns = rng.choice(NAMESPACES)
    kind = rng.choice(("deploy", "service", "service", "ready", "delete"))
    if kind == "deploy":
        store.apply([deployment(ns, f"d{rng.randrange(3)}", rng.randrange(4), rng.choice(GROUPS))])
    elif kind == "service":
        store.apply([_service(rng, ns, f"s{rng.randrange(4)}")])
    elif kind == "ready":
        pods = [p for p in store.peek("Pod") if p["metadata"]["namespace"] in NAMESPACES]
        if pods:
            pod = rng.choice(pods)
            meta = pod["metadata"]
            store.set_pod_ready(meta["namespace"], meta["name"], rng.random() < 0.5, "probe")
    else:
        present = [
            obj
            for k in ("Service", "Deployment")
            for obj in store.peek(k)
            if obj["metadata"]["namespace"] in NAMESPACES
        ]
        if present:
            store.delete([rng.choice(present)])


def test_kept_inputs_equal_a_full_read_after_every_change() -> None:
    for seed in range(8):
        rng = random.Random(seed)
        store = _store()
        cache = ProxyInputCache()
        for _ in range(30):
            _change(rng, store)
            services, slices = store.peek("Service"), store.peek("EndpointSlice")
            assert cache.inputs(services, slices) == proxy_inputs(services, slices), seed


def test_one_more_pod_reads_again_only_the_slices_it_joined() -> None:
    """Services whose slices kept their versions keep their ports and endpoints (the same
    objects); the pod's group's slices are read again, and nothing else."""
    store = _store()
    store.apply([_service_on(f"s{i}", group) for i, group in enumerate(GROUPS * 3)])
    store.apply([deployment("alpha", "web", 2, "g0")])
    cache = ProxyInputCache()
    before = cache.inputs(store.peek("Service"), store.peek("EndpointSlice"))
    read = cache.reads
    store.apply([deployment("alpha", "more", 1, "g1")])
    after = cache.inputs(store.peek("Service"), store.peek("EndpointSlice"))
    assert cache.reads - read == 3  # the slices of s1, s4 and s7, which select g1
    assert after == proxy_inputs(store.peek("Service"), store.peek("EndpointSlice"))
    assert all(a is b for a, b in zip(after.ports, before.ports, strict=True))
    changed = {key for key, eps in after.endpoints.items() if eps is not before.endpoints.get(key)}
    assert {key.service for key in changed} == {"s1", "s4", "s7"}


def _service_on(name: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "alpha"},
        "spec": {"selector": {"group": group}, "ports": [{"name": "http", "port": 80}]},
    }


def test_a_changed_or_deleted_service_is_read_again_or_forgotten() -> None:
    store = _store()
    store.apply([_service_on("a", "g0"), _service_on("b", "g1")])
    cache = ProxyInputCache()
    cache.inputs(store.peek("Service"), store.peek("EndpointSlice"))
    read = cache.reads
    changed = _service_on("a", "g0")
    changed["spec"]["ports"][0]["port"] = 8080
    store.apply([changed])
    store.delete([{"kind": "Service", "name": "b", "namespace": "alpha"}])
    services, slices = store.peek("Service"), store.peek("EndpointSlice")
    ports = cache.inputs(services, slices).ports
    assert cache.reads - read == 1  # Service a (its slice's endpoints are the same)
    assert ports == proxy_inputs(services, slices).ports
    assert [p.port for p in ports if p.name == "a"] == [8080]
    assert "b" not in {p.name for p in ports}


def test_objects_without_versions_and_services_named_twice_are_read_every_time() -> None:
    """Without a uid and resourceVersion nothing tells an object changed; two Services of one
    name are read as the full read orders them."""
    store = _store()
    store.apply([_service_on("a", "g0"), deployment("alpha", "web", 1, "g0")])
    services = copy.deepcopy(store.peek("Service"))
    slices = copy.deepcopy(store.peek("EndpointSlice"))
    for obj in (*services, *slices):
        del obj["metadata"]["resourceVersion"]
    groups = {(s["metadata"]["namespace"], s["metadata"]["labels"][SERVICE]) for s in slices}
    cache = ProxyInputCache()
    for _ in range(2):
        read = cache.reads
        assert cache.inputs(services, slices) == proxy_inputs(services, slices)
        assert cache.reads - read == len(services) + len(groups)
    twice = [*store.peek("Service"), _service_on("a", "g1")]
    assert cache.inputs(twice, slices) == proxy_inputs(twice, slices)
