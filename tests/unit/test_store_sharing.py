"""The store shares its state instead of copying it (ClusterStore.peek, snapshot, adopt; issue
18), which is safe only while nobody edits the shared objects: a change replaces the state and
never edits an earlier one, and the data plane's readers (the agent's document, every node's
iptables rules) leave what they read as it was; and the nodes' kube-proxy renders share one read
of the Services. Checked on every shipped scenario's objects.

Upstream: informers hand controllers shared objects from their cache that must not be mutated
(kubernetes/kubernetes staging/src/k8s.io/client-go/tools/cache/shared_informer.go, the
``SharedInformer`` contract: "the client must not mutate the objects"), and an update replaces an
object in the store rather than editing it (client-go tools/cache/thread_safe_store.go ``Update``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from labkit import scenarios
from labkit.sandbox.dataplane import DataPlane, StoreView
from labkit.sandbox.healthchecks import service_health
from labkit.sandbox.proxyports import proxy_inputs
from labkit.sandbox.proxyrules import render_proxy_rules
from labkit.sandbox.store import ClusterStore
from labkit.sandbox.workloads import pod_nets


def _store(name: str) -> ClusterStore:
    store = ClusterStore.bootstrap("share", "calico")
    scenario = scenarios.get(name)
    store.apply(scenarios.all_documents(scenario))
    return store


@pytest.mark.parametrize("name", scenarios.names())
def test_the_data_plane_reads_a_store_without_changing_it(name, tmp_path: Path):
    store = _store(name)
    before = copy.deepcopy(store.snapshot())
    plane = DataPlane("share", "calico", tmp_path)
    view = StoreView(store)
    nodes = plane.nodes(store)
    wanted = pod_nets("share", "calico", view.pods(), nodes)
    plane.workloads(view, wanted, {"addresses": ["203.0.113.10"], "ports": [80]})
    for node in nodes:
        plane.render_rules(view, node, wanted)
    assert store.snapshot() == before


@pytest.mark.parametrize("name", scenarios.names())
def test_a_change_never_edits_an_earlier_snapshot(name):
    store = _store(name)
    shared = store.snapshot()
    before = copy.deepcopy(shared)
    adopted = ClusterStore.adopt(shared)
    pods = adopted.pods()
    adopted.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "more"}}])
    if pods:
        ns, pod = pods[0]["metadata"]["namespace"], pods[0]["metadata"]["name"]
        if adopted.get("Pod", pod, ns)[0]["status"].get("podIP"):
            adopted.set_pod_ready(ns, pod, False, "probe failed")
        adopted.delete([{"kind": "Pod", "name": pod, "namespace": ns}])
    assert shared == before
    assert adopted.snapshot() is not shared


@pytest.mark.parametrize("name", scenarios.names())
def test_every_node_proxied_from_one_read_renders_as_alone(name):
    """One ProxyInputs shared by the nodes' kube-proxy renders gives each node the rules it gets
    on its own, as every proxier syncs from one service map and one endpoints map
    (kubernetes/kubernetes pkg/proxy/iptables/proxier.go ``syncProxyRules`` over
    ``proxier.svcPortMap`` and ``proxier.endpointsMap``); the health checks read from the same
    maps (pkg/proxy/healthcheck/service_health.go, fed by ``LocalReadyEndpoints``)."""
    store = _store(name)
    nodes, services = store.peek("Node"), store.peek("Service")
    slices = store.peek("EndpointSlice")
    shared = proxy_inputs(services, slices)
    for node in nodes:
        alone = render_proxy_rules(node, nodes, services, slices, "10.244.0.0/16")
        together = render_proxy_rules(
            node, nodes, services, slices, "10.244.0.0/16", shared=lambda: shared
        )
        assert together == alone
    assert service_health(services, slices, lambda: shared) == service_health(services, slices)
