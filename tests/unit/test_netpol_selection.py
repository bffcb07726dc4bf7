"""The policy renderer's pod index (labkit.model.netpol.selection) answers exactly as testing every
pod against every selector does, on random clusters (seeded).

Upstream: Felix resolves selectors through an index of workload endpoints by labels
(projectcalico/calico felix/labelindex/label_inheritance_index.go ``InheritIndex``) and must give
the same members as evaluating each selector on each endpoint; the meaning of a peer is the
NetworkPolicy API's (kubernetes/kubernetes pkg/apis/networking/types.go ``NetworkPolicyPeer``:
podSelector in the policy's namespace, namespaceSelector over namespaces' labels, both ANDed),
which labkit.model.netpol.verdicts.peer_matches implements and test_netpol.py checks.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from labkit.model.netpol.endpoints import endpoint
from labkit.model.netpol.policies import EGRESS, INGRESS
from labkit.model.netpol.selection import Selection
from labkit.model.netpol.verdicts import PolicySet

NAMESPACES = ["default", "prod", "dev"]
KEYS = ["app", "tier", "env"]
VALUES = ["a", "b", "c"]


def _labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(VALUES) for k in KEYS if rng.random() < 0.6}


def _selector(rng: random.Random) -> dict[str, Any] | None:
    """None, {}, matchLabels, matchExpressions (every operator), or both."""
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        return {}
    selector: dict[str, Any] = {}
    if rng.random() < 0.7:
        selector["matchLabels"] = {
            k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(1, 2))
        }
    if rng.random() < 0.5:
        op = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
        expr: dict[str, Any] = {"key": rng.choice(KEYS), "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = rng.sample(VALUES, rng.randint(1, 2))
        selector["matchExpressions"] = [expr]
    return selector


def _cluster(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict]]:
    rng = random.Random(seed)
    namespaces = [
        {"kind": "Namespace", "metadata": {"name": n, "labels": _labels(rng)}} for n in NAMESPACES
    ]
    pods = []
    for i in range(rng.randint(0, 40)):
        pod: dict[str, Any] = {
            "kind": "Pod",
            "metadata": {
                "name": f"p{i}",
                "namespace": rng.choice([*NAMESPACES, "elsewhere"]),
                "labels": _labels(rng),
            },
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"podIP": f"10.244.{i // 200}.{i % 200 + 1}"} if rng.random() < 0.9 else {},
        }
        if rng.random() < 0.1:
            pod["spec"]["hostNetwork"] = True
        pods.append(pod)
    policies = []
    for i in range(rng.randint(0, 12)):
        peers = []
        for _ in range(rng.randint(1, 3)):
            peer: dict[str, Any] = {}
            pod_sel, ns_sel = _selector(rng), _selector(rng)
            if pod_sel is not None:
                peer["podSelector"] = pod_sel
            if ns_sel is not None or not peer:
                peer["namespaceSelector"] = ns_sel or {}
            peers.append(peer)
        types = rng.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
        spec: dict[str, Any] = {"podSelector": _selector(rng) or {}, "policyTypes": types}
        spec["ingress"] = [{"from": peers}]
        spec["egress"] = [{"to": peers}]
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"np{i}", "namespace": rng.choice(NAMESPACES)},
                "spec": spec,
            }
        )
    return namespaces, pods, policies


@pytest.mark.parametrize("seed", range(60))
def test_indexed_selection_equals_testing_every_pod(seed):
    namespaces, pods, policies = _cluster(seed)
    ps = PolicySet(namespaces, policies)
    eps = [endpoint(p) for p in pods]
    selection = Selection(ps, eps)
    for policy in ps.policies:
        for direction in (INGRESS, EGRESS):
            for rule in policy.rules(direction):
                for peer in rule.peers:
                    expected = [ep for ep in eps if ps.peer_matches(peer, ep, policy.namespace)]
                    got = selection.peer_pods(peer, policy.namespace)
                    assert sorted(e.label for e in got) == sorted(e.label for e in expected)
                    # asked again: the remembered answer is the same
                    assert selection.peer_pods(peer, policy.namespace) == got
    for ep in eps:
        for direction in (INGRESS, EGRESS):
            assert selection.selecting(ep, direction) == ps.selecting(ep, direction)


def test_outside_addresses_and_host_network_pods_are_never_selected():
    namespaces, _pods, policies = _cluster(7)
    ps = PolicySet(namespaces, policies)
    outside = endpoint({"ip": "203.0.113.9"})
    host = endpoint(
        {
            "kind": "Pod",
            "metadata": {"name": "h", "namespace": "default", "labels": {}},
            "spec": {"hostNetwork": True, "containers": []},
            "status": {"podIP": "172.18.0.2"},
        }
    )
    selection = Selection(ps, [outside, host])
    assert selection.in_namespace("default", {}) == []
    assert selection.selecting(outside, INGRESS) == ()
    assert selection.selecting(host, EGRESS) == ()
