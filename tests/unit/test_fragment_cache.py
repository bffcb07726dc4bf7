"""labkit.sandbox.fragment_cache: a cached fragment is reused only while every argument of its
renderer is unchanged, for the renderers dataplane.render_rules caches (kube-proxy's
syncProxyRules output, pkg/proxy/iptables/proxier.go, and the policy rules), so caching never
changes a node's rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from labkit.sandbox.ciliumlb import cilium_node_rules
from labkit.sandbox.fragment_cache import FragmentCache
from labkit.sandbox.proxyrules import render_proxy_rules

NODE = {
    "metadata": {"name": "n1"},
    "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]},
}
SERVICE = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "clusterIP": "10.96.0.10",
        "type": "ClusterIP",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    },
}
SLICE = {
    "metadata": {
        "name": "web-abc",
        "namespace": "default",
        "labels": {"kubernetes.io/service-name": "web"},
    },
    "addressType": "IPv4",
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "endpoints": [
        {"addresses": ["10.244.1.5"], "conditions": {"ready": True}, "nodeName": "n1"},
    ],
}
CIDR = "10.244.0.0/16"


def proxy_args() -> list[Any]:
    return [
        copy.deepcopy(NODE),
        [copy.deepcopy(NODE)],
        [copy.deepcopy(SERVICE)],
        [copy.deepcopy(SLICE)],
        CIDR,
    ]


def edits() -> list[tuple[str, Any]]:
    """One change to each argument of render_proxy_rules, deep inside where it can be."""

    def node_ip(a: list[Any]) -> None:
        a[0]["status"]["addresses"][0]["address"] = "172.18.0.9"

    def nodes(a: list[Any]) -> None:
        a[1].append({"metadata": {"name": "n2"}})

    def service_port(a: list[Any]) -> None:
        a[2][0]["spec"]["ports"][0]["port"] = 81

    def service_added(a: list[Any]) -> None:
        other = copy.deepcopy(SERVICE)
        other["metadata"]["name"] = "api"
        other["spec"]["clusterIP"] = "10.96.0.11"
        a[2].append(other)

    def endpoint_ready(a: list[Any]) -> None:
        a[3][0]["endpoints"][0]["conditions"]["ready"] = False

    def endpoint_address(a: list[Any]) -> None:
        a[3][0]["endpoints"][0]["addresses"] = ["10.244.1.6"]

    def cidr(a: list[Any]) -> None:
        a[4] = "10.245.0.0/16"

    return [
        (f.__name__, f)
        for f in (
            node_ip,
            nodes,
            service_port,
            service_added,
            endpoint_ready,
            endpoint_address,
            cidr,
        )
    ]


def test_unchanged_arguments_reuse_the_fragment() -> None:
    """Equal arguments (fresh copies, as each converge reads the store anew) render once."""
    cache = FragmentCache()
    first = cache.render("n1", render_proxy_rules, *proxy_args())
    again = cache.render("n1", render_proxy_rules, *proxy_args())
    assert again is first
    assert cache.renders == 1
    assert first == render_proxy_rules(*proxy_args())


@pytest.mark.parametrize(("name", "edit"), edits(), ids=[n for n, _ in edits()])
def test_any_changed_argument_renders_again(name: str, edit: Any) -> None:
    """A change to any input of kube-proxy's rules (node, nodes, Services, EndpointSlices,
    cluster CIDR) gives exactly what an uncached render gives."""
    cache = FragmentCache()
    cache.render("n1", render_proxy_rules, *proxy_args())
    changed = proxy_args()
    edit(changed)
    got = cache.render("n1", render_proxy_rules, *changed)
    assert cache.renders == 2
    assert got == render_proxy_rules(*changed)
    if name not in UNSEEN:
        assert got != render_proxy_rules(*proxy_args())


UNSEEN = {"node_ip", "nodes"}
"""Edits the rules do not show here: no load balancer to firewall, no other node's rules."""


def policy_args() -> list[Any]:
    """render_policy_rules' arguments: node name, pods, namespaces, policies, iface_of."""
    pod = {
        "metadata": {"name": "a", "namespace": "default", "labels": {"app": "a"}},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running", "podIP": "10.244.1.5"},
    }
    namespace = {"metadata": {"name": "default", "labels": {"team": "x"}}}
    policy = {
        "metadata": {"name": "deny", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]},
    }
    return ["n1", [pod], [namespace], [policy], {("default", "a"): "cali123"}]


def policy_edits() -> list[Any]:
    """One change to each argument the policy call site passes."""
    return [
        lambda a: a.__setitem__(0, "n2"),
        lambda a: a[1][0]["metadata"]["labels"].__setitem__("app", "b"),
        lambda a: a[1][0]["status"].__setitem__("podIP", "10.244.1.6"),
        lambda a: a[2][0]["metadata"]["labels"].__setitem__("team", "y"),
        lambda a: a[3][0]["spec"].__setitem__("policyTypes", ["Egress"]),
        lambda a: a[3].append({"metadata": {"name": "other", "namespace": "default"}}),
        lambda a: a[4].__setitem__(("default", "a"), "cali456"),
    ]


@pytest.mark.parametrize("edit", policy_edits())
def test_any_changed_policy_input_renders_again(edit: Any) -> None:
    """Every input of the policy call site (node, pods, namespaces, policies, veths), changed
    anywhere, makes the cache call its renderer again with exactly the changed arguments."""
    seen: list[Any] = []

    def renderer(*args: Any) -> int:
        seen.append(copy.deepcopy(args))
        return len(seen)

    cache = FragmentCache()
    assert cache.render("n1", renderer, *policy_args()) == 1
    assert cache.render("n1", renderer, *policy_args()) == 1
    changed = policy_args()
    edit(changed)
    assert cache.render("n1", renderer, *changed) == 2
    assert seen[-1] == tuple(changed)


def test_nodes_and_renderers_are_kept_apart() -> None:
    """Each node and each renderer has its own slot: one never answers for another."""
    calls: list[str] = []

    def left(x: int) -> str:
        calls.append("left")
        return f"left {x}"

    def right(x: int) -> str:
        calls.append("right")
        return f"right {x}"

    cache = FragmentCache()
    assert cache.render("n1", left, 1) == "left 1"
    assert cache.render("n2", left, 1) == "left 1"
    assert cache.render("n1", right, 1) == "right 1"
    assert cache.render("n1", left, 1) == "left 1"
    assert cache.render("n1", left, 2) == "left 2"
    assert calls == ["left", "left", "right", "left"]


def test_sharing_does_not_matter_only_content() -> None:
    """Store reads share strings and dicts differently from one read to the next: equal content
    with other sharing still reuses the fragment."""
    calls: list[Any] = []
    inner = {"k": "v" * 20}
    cache = FragmentCache()
    cache.render("n1", lambda x: calls.append(x) or len(calls), [inner, inner])
    cache.render("n1", lambda x: calls.append(x) or len(calls), [dict(inner), dict(inner)])
    assert len(calls) == 1


def _versioned(name: str, version: str, port: int = 80) -> dict[str, Any]:
    svc = copy.deepcopy(SERVICE)
    svc["metadata"].update({"name": name, "uid": f"uid-{name}", "resourceVersion": version})
    svc["spec"]["ports"][0]["port"] = port
    return svc


def test_api_objects_compare_by_uid_and_resource_version() -> None:
    """Kubernetes API conventions (community contributors/devel/sig-architecture/
    api-conventions.md, "Concurrency Control and Consistency"): an object's resourceVersion
    changes whenever the object does, and a new object gets a new uid; so objects with the same
    uid and resourceVersion are the same, and the cache looks no further, as kube-controller-
    manager's handlers skip an update whose resourceVersion did not change
    (kubernetes/kubernetes pkg/controller/daemon/daemon_controller.go ``updatePod``: "Two
    different versions of the same pod will always have different RVs")."""
    calls: list[Any] = []
    cache = FragmentCache()

    def renderer(services: list[dict[str, Any]]) -> int:
        calls.append(services)
        return len(calls)

    assert cache.render("n1", renderer, [_versioned("a", "5"), _versioned("b", "6")]) == 1
    # The same versions: reused, whatever the copies hold.
    assert cache.render("n1", renderer, [_versioned("a", "5"), _versioned("b", "6", 81)]) == 1
    assert cache.render("n1", renderer, [_versioned("a", "5"), _versioned("b", "7", 81)]) == 2
    recreated = _versioned("a", "5")
    recreated["metadata"]["uid"] = "uid-a-again"
    assert cache.render("n1", renderer, [recreated, _versioned("b", "7", 81)]) == 3
    unversioned = _versioned("a", "5")
    del unversioned["metadata"]["resourceVersion"]
    assert cache.render("n1", renderer, [unversioned, _versioned("b", "7", 81)]) == 4
    assert cache.render("n1", renderer, [copy.deepcopy(unversioned), _versioned("b", "7", 81)]) == 4


def test_cilium_node_rules_reused_until_a_service_changes() -> None:
    """Cilium's node chains (NodePort/LoadBalancer service for outside clients, the agent's
    CILIUM_* chains; cilium ``bpf/bpf_host.c`` serves them from the same lb4 maps) depend only on
    the node, Services, EndpointSlices and podCIDR: equal copies reuse the fragment, a Service
    added renders again exactly what an uncached render gives."""
    cache = FragmentCache()

    def args() -> list[Any]:
        return [
            copy.deepcopy(NODE),
            [copy.deepcopy(SERVICE)],
            [copy.deepcopy(SLICE)],
            "10.244.1.0/24",
        ]

    first = cache.render("n1", cilium_node_rules, *args())
    assert cache.render("n1", cilium_node_rules, *args()) is first and cache.renders == 1
    changed = args()
    node_port = copy.deepcopy(SERVICE)
    node_port["metadata"]["name"] = "shop"
    node_port["spec"] |= {"type": "NodePort", "clusterIP": "10.96.0.12"}
    node_port["spec"]["ports"][0]["nodePort"] = 30080
    changed[1].append(node_port)
    got = cache.render("n1", cilium_node_rules, *changed)
    assert cache.renders == 2
    assert got == cilium_node_rules(*changed) and got != first
