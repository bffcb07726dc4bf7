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
from test_policyrules import ifaces, namespace, pod, policy, random_cluster

from labkit.sandbox.policycache import PolicyCache, Recent
from labkit.sandbox.policyrules import PolicyInputs, render_policy_rules

NODES = ("cp", "w1", "w2")


class _Cluster:
    """Namespaces, pods and policies with uids and resourceVersions as the store gives them: a
    change replaces an object by a changed copy with the next version, never edits it."""

    def __init__(
        self, nss: list[dict[str, Any]], pods: list[dict[str, Any]], pols: list[dict[str, Any]]
    ) -> None:
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


def _rendered(
    cluster: _Cluster,
    use_ipsets: bool,
    cache: PolicyCache | None,
    iface_of: dict[tuple[str, str], str] | None = None,
    outside: tuple[str, ...] = ("203.0.113.0/24",),
) -> list[Any]:
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
            iface_of or ifaces(pods),
            outside,
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
    is used: most chains come from it, and with ipsets whole nodes' renders do."""
    rng = random.Random(seed)
    cluster = _Cluster(*random_cluster(seed))
    cache = PolicyCache()
    rendered = made = 0
    steps = 30
    for step in range(steps):
        before = (cache.workloads.made, cache.chains.made)
        got = _rendered(cluster, use_ipsets, cache)
        assert got == _rendered(cluster, use_ipsets, None), step
        rendered += sum(len(tables["filter"]) for tables, _ in got)
        made += cache.workloads.made + cache.chains.made - sum(before)
        _change(rng, cluster, step)
    assert 0 < made < rendered / 10
    assert (cache.node_renders < len(NODES) * steps) is use_ipsets


def test_a_new_version_of_an_object_is_parsed_again_and_a_pass_unused_is_forgotten() -> None:
    """A policy is parsed again when its resourceVersion changes (felix/calc/policy_resolver.go
    ``OnUpdate`` stores each update's value), and a policy no longer used loses its kept chain
    (policy_mgr.go ``ActivePolicyRemove``): kept values live while a pass uses them."""
    cluster = _Cluster(*random_cluster(3))
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


def test_a_node_left_alone_keeps_its_chains_for_its_next_change() -> None:
    """A node whose pods and policies did not change keeps its render, and the chains in it stay
    kept however many passes go by, so its next change writes only what that change touched
    (policy_mgr.go renders a policy's chains on its update only, and policy_resolver.go
    recomputes only the endpoints marked dirty)."""
    nss = [namespace("n0", team="a")]
    pods = [
        pod("n0", "web", "192.168.10.1", "w1", {"app": "web"}),
        pod("n0", "db", "192.168.20.1", "w2", {"app": "db"}),
        pod("n0", "db2", "192.168.20.2", "w2", {"app": "db"}),
    ]
    to_db = policy(
        "to-db",
        "n0",
        podSelector={"matchLabels": {"app": "db"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
    )
    cluster = _Cluster(nss, pods, [to_db])
    cache = PolicyCache()

    def change(name: str, address: str, node: str, app: str) -> tuple[int, int, int]:
        """Add a pod; the workload chains, policy chains and node renders it had made."""
        before = (cache.workloads.made, cache.chains.made, cache.node_renders)
        cluster.put("Pod", pod("n0", name, address, node, {"app": app}))
        assert _rendered(cluster, True, cache) == _rendered(cluster, True, None)
        after = (cache.workloads.made, cache.chains.made, cache.node_renders)
        return after[0] - before[0], after[1] - before[1], after[2] - before[2]

    _rendered(cluster, True, cache)
    for i in range(3):  # to-db's ipset grows; w2's chains stay as they were
        assert change(f"web{i}", f"192.168.10.{i + 2}", "w1", "web") == (2, 0, 1)
    assert change("cache", "192.168.20.3", "w2", "cache") == (2, 0, 1)


def test_a_node_render_is_not_reused_for_other_interfaces_or_outside_ranges() -> None:
    """The same pods wired through other veths get chains named after those (Felix names
    ``cali-tw-``/``cali-fw-`` and dispatches by the workload's interface:
    felix/rules/endpoints.go ``WorkloadEndpointToIptablesChains``, felix/rules/dispatch.go
    ``WorkloadDispatchChains``),
    and other outside ranges other notes on the ipBlock rules that cover them."""
    cluster = _Cluster(*random_cluster(2))
    cache = PolicyCache()
    renamed = {key: name[:-1] + "z" for key, name in ifaces(cluster.lists()[0]).items()}
    for iface_of, outside in (
        (None, ("203.0.113.0/24",)),
        (renamed, ("203.0.113.0/26",)),
        (renamed, ("192.168.5.0/24",)),
    ):
        got = _rendered(cluster, True, cache, iface_of, outside)
        assert got == _rendered(cluster, True, None, iface_of, outside)
