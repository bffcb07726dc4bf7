"""One change to a Cilium lab renders again only what it touches (issue 18).

A pod's policy chains are rendered again only when its endpoint, the policies isolating it or
the endpoints their peers select changed, as Cilium's SelectorCache (cilium/cilium
pkg/policy/selectorcache.go) matches a new identity only against the cached selectors
(``UpdateIdentities``) and a new selector against the known identities (``AddIdentitySelector``),
and tells only those selectors' users. A node's socket LB renders again only the Service ports
that changed, as Cilium's agent upserts one Service's frontends and backends at a time
(pkg/service/service.go ``UpsertService``). That what is rendered equals a from-scratch render
after every change is ``test_cilium_pod_deltas``'s seeded test; here, that the rest is reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labkit.sandbox import ciliumlb
from labkit.sandbox.ciliumpods import PodPolicy
from labkit.sandbox.dataplane import DataPlane, StoreView
from labkit.sandbox.store import ClusterStore
from labkit.sandbox.workloads import pod_nets
from tests.unit.test_cilium_pod_deltas import deployment, namespace, policy, service

LAB = "rc"


def _lab() -> tuple[ClusterStore, DataPlane]:
    """Groups 0-3 of two pods each; g0 admits g1 and g2 admits g3 (each with egress to its
    peers); a Service per group."""
    store = ClusterStore.bootstrap(LAB, "cilium")
    store.apply([deployment(f"web-{g}", g, 2) for g in range(4)])
    store.apply([policy("pol-0", 0, 1, False), policy("pol-2", 2, 3, False)])
    store.apply([service(f"svc-{g}", g, False) for g in range(4)])
    return store, DataPlane(LAB, "cilium", Path("/nonexistent"))


def _render(store: ClusterStore, plane: DataPlane) -> dict[str, tuple[str, PodPolicy]]:
    """Every pod's policy on every node, by pod namespace, with the pod's group."""
    view = StoreView(store)
    nodes = plane.nodes(store)
    wanted = pod_nets(LAB, "cilium", view.pods(), nodes)
    groups = {net.netns: _group(view.pods(), key) for key, net in wanted.items()}
    out = {}
    for node in nodes:
        for netns, rules in plane.render_pod_rules(view, node, wanted).items():
            out[netns] = (groups[netns], rules)
    return out


def _group(pods: list[dict[str, Any]], key: str) -> str:
    pod = next(p for p in pods if f"{p['metadata']['namespace']}/{p['metadata']['name']}" == key)
    return str(pod["metadata"]["labels"].get("group", ""))


def _rendered_again(before: dict[str, tuple[str, PodPolicy]], after: dict[str, Any]) -> set[str]:
    """The groups of the pods whose policy is a new render ("new": pods that were not there)."""
    return {
        "new" if netns not in before else group
        for netns, (group, rules) in after.items()
        if netns not in before or before[netns][1] is not rules
    }


def test_one_more_pod_renders_it_and_the_pods_whose_peers_it_joins() -> None:
    """A new g1 pod: pol-0's ingress peers (and g0's rules) gain it; g2 and g3 keep theirs."""
    store, plane = _lab()
    before = _render(store, plane)
    store.apply([deployment("more", 1, 1)])
    assert _rendered_again(before, _render(store, plane)) == {"new", "g0"}


def test_one_more_policy_renders_only_the_pods_it_selects() -> None:
    """A new policy on g3 isolates g3's pods; nobody else's chains change."""
    store, plane = _lab()
    before = _render(store, plane)
    store.apply([policy("pol-3", 3, 0, False)])
    assert _rendered_again(before, _render(store, plane)) == {"g3"}


def test_a_namespace_label_change_renders_the_pods_again() -> None:
    """Namespace labels reach every namespaceSelector: every pod (system pods too) is matched
    and rendered again."""
    store, plane = _lab()
    before = _render(store, plane)
    store.apply([namespace("default", "blue")])
    after = _render(store, plane)
    assert all(before[netns][1] is not rules for netns, (_, rules) in after.items())


def test_one_more_service_renders_no_pod_policy_and_one_port_per_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new Service adds one port to each node's socket LB and touches no pod's policy."""
    store, plane = _lab()
    rendered: list[str] = []
    port_rules = ciliumlb._port_socket_lb

    def counted(node: str, *args: Any) -> ciliumlb.PortRules:
        rendered.append(node)
        return port_rules(node, *args)

    monkeypatch.setattr(ciliumlb, "_port_socket_lb", counted)
    nodes = plane.nodes(store)
    for node in nodes:
        plane._socket_lb(StoreView(store), node)
    assert len(rendered) >= 4 * len(nodes)
    before = _render(store, plane)
    rendered.clear()
    store.apply([service("svc-more", 0, False)])
    for node in nodes:
        plane._socket_lb(StoreView(store), node)
    assert sorted(rendered) == sorted(node.name for node in nodes)
    assert _rendered_again(before, _render(store, plane)) == set()
