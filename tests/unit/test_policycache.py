"""labkit.sandbox.policycache: a lab's Felix chains kept across passes are exactly what a render
from scratch gives, and a change writes only the chains whose inputs it changed.

Upstream: Felix re-renders a policy's chains only on an update of that policy
(projectcalico/calico felix/dataplane/linux/policy_mgr.go ``policyManager.OnUpdate``:
``ActivePolicyUpdate`` -> ``PolicyToIptablesChains``, ``ActivePolicyRemove`` -> the chains
removed), sends a new member of a selector's ipset as an ipset update and not as a policy update,
and recomputes an endpoint's policies only when the endpoint or a policy matching it changes
(felix/calc/policy_resolver.go ``PolicyResolver.OnUpdate``, ``markEndpointsMatchingPolicyDirty``,
``OnPolicyMatch``/``OnPolicyMatchStopped``).
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from test_policyrules import ifaces, namespace, pod, random_cluster

from labkit.sandbox.policycache import PolicyCache, Recent
from labkit.sandbox.policyrules import PolicyInputs, render_policy_rules

NODES = ("cp", "w1", "w2")


class _Cluster:
    """Namespaces, pods and policies with uids and resourceVersions as the store gives them: a
    change replaces an object by a changed copy with the next version, never edits it."""

    def __init__(self, seed: int) -> None:
        nss, pods, pols = random_cluster(seed)
        self.version = 0
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "Namespace": {},
            "Pod": {},
            "NetworkPolicy": {},
        }
        for kind, objs in (("Namespace", nss), ("Pod", pods), ("NetworkPolicy", pols)):
            for obj in objs:
                self.put(kind, obj)

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        self.version += 1
        meta = obj["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}"
        meta["uid"] = f"{kind}/{key}"
        meta["resourceVersion"] = str(self.version)
        self.objects[kind][key] = obj

    def changed(self, kind: str, key: str) -> dict[str, Any]:
        """A copy of an object to change and ``put`` back."""
        return copy.deepcopy(self.objects[kind][key])

    def lists(self) -> tuple[list[dict[str, Any]], ...]:
        return tuple(list(self.objects[k].values()) for k in ("Pod", "Namespace", "NetworkPolicy"))


def _change(rng: random.Random, cluster: _Cluster, step: int) -> None:
    """One change a learner makes: a pod relabelled, readdressed, given other ports, added or
    deleted; a policy replaced or deleted; a namespace relabelled."""
    pods = cluster.objects["Pod"]
    what = rng.choice(("relabel", "address", "ports", "add", "delete", "policy", "drop", "ns"))
    if what in ("relabel", "address", "ports") and pods:
        key = rng.choice(sorted(pods))
        obj = cluster.changed("Pod", key)
        if what == "relabel":
            obj["metadata"]["labels"] = {"app": rng.choice(("web", "api", "db"))}
        elif what == "address":
            obj["status"] = {"podIP": f"192.168.{rng.choice((10, 20, 30))}.{100 + step}"}
        else:
            ports = [(rng.choice((80, 8080)), "http"), (53, "dns", "UDP")]
            obj["spec"]["containers"][0]["ports"] = [
                {"containerPort": p[0], "name": p[1], **({"protocol": p[2]} if p[2:] else {})}
                for p in rng.sample(ports, rng.randint(0, 2))
            ]
        cluster.put("Pod", obj)
    elif what == "add":
        ns = f"n{rng.randrange(3)}"
        address = f"192.168.{rng.choice((10, 20, 30))}.{150 + step}"
        labels = {"app": rng.choice(("web", "api", "db"))}
        cluster.put(
            "Pod", pod(ns, f"new{step}", address, rng.choice(NODES), labels, [(80, "http")])
        )
    elif what == "delete" and pods:
        del pods[rng.choice(sorted(pods))]
    elif what == "policy":
        other = random_cluster(1000 + step)[2][rng.randrange(8)]
        keys = sorted(cluster.objects["NetworkPolicy"])
        obj = cluster.changed("NetworkPolicy", rng.choice(keys)) if keys else other
        obj["spec"] = copy.deepcopy(other["spec"])
        cluster.put("NetworkPolicy", obj)
    elif what == "drop" and cluster.objects["NetworkPolicy"]:
        del cluster.objects["NetworkPolicy"][rng.choice(sorted(cluster.objects["NetworkPolicy"]))]
    elif what == "ns":
        cluster.put("Namespace", namespace(f"n{rng.randrange(3)}", team=rng.choice("ab")))


def _rendered(cluster: _Cluster, use_ipsets: bool, cache: PolicyCache | None) -> list[Any]:
    """Every node's rules as lines and its ipsets, rendered from one pass's inputs."""
    pods, nss, pols = cluster.lists()
    inputs = PolicyInputs(pods, nss, pols, cache)
    out = []
    for node in NODES:
        rules = render_policy_rules(
            node,
            pods,
            nss,
            pols,
            ifaces(pods),
            ["203.0.113.0/24"],
            use_ipsets=use_ipsets,
            shared=lambda: inputs,
        )
        out.append((rules.tables, rules.ipsets))
    return out


@pytest.mark.parametrize("use_ipsets", [True, False], ids=["ipsets", "inline"])
@pytest.mark.parametrize("seed", range(6))
def test_a_lab_cache_renders_every_pass_as_from_scratch(seed: int, use_ipsets: bool) -> None:
    """After every random change, the rules rendered with the lab's cache equal a render from
    scratch (policy_mgr.go ``OnUpdate`` and policy_resolver.go ``OnUpdate`` recompute what a
    change touched, and what they leave must be what a full recompute gives), and the cache
    is used: most chains come from it."""
    rng = random.Random(seed)
    cluster = _Cluster(seed)
    cache = PolicyCache()
    rendered = made = 0
    for step in range(30):
        before = (cache.workloads.made, cache.chains.made)
        got = _rendered(cluster, use_ipsets, cache)
        assert got == _rendered(cluster, use_ipsets, None), step
        rendered += sum(len(tables["filter"]) for tables, _ in got)
        made += cache.workloads.made + cache.chains.made - sum(before)
        _change(rng, cluster, step)
    assert 0 < made < rendered / 10


def test_a_new_version_of_an_object_is_parsed_again_and_a_pass_unused_is_forgotten() -> None:
    """A policy is parsed again when its resourceVersion changes (felix/calc/policy_resolver.go
    ``OnUpdate`` stores each update's value), and a policy no longer used loses its kept chain
    (policy_mgr.go ``ActivePolicyRemove``): kept values live while a pass uses them."""
    cluster = _Cluster(3)
    cache = PolicyCache()
    pods, nss, pols = cluster.lists()
    first = PolicyInputs(pods, nss, pols, cache)
    again = PolicyInputs(pods, nss, pols, cache)
    assert all(a is b for a, b in zip(first.ps.policies, again.ps.policies, strict=True))
    assert all(a is b for (a, _), (b, _) in zip(first.pods, again.pods, strict=True))
    key = next(iter(cluster.objects["NetworkPolicy"]))
    cluster.put("NetworkPolicy", cluster.changed("NetworkPolicy", key))
    pods, nss, pols = cluster.lists()
    changed = PolicyInputs(pods, nss, pols, cache)
    fresh = {p.ref: p for p in changed.ps.policies}
    kept = {p.ref: p for p in again.ps.policies}
    assert [ref for ref in fresh if fresh[ref] is not kept[ref]] == [key]

    recent: Recent[str, list[str]] = Recent()
    made = recent.get("a", lambda: ["one"])
    recent.turn()
    assert recent.get("a", lambda: ["two"]) is made and recent.made == 1
    recent.turn()
    recent.turn()
    assert recent.get("a", lambda: ["three"]) == ["three"] and recent.made == 2
