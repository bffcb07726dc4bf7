"""A node's rules rendered incrementally (fragments, policy chains and kube-proxy ports reused
from earlier passes) equal a from-scratch render after every change of a random sequence, and the
partial restore between two passes turns the first ruleset into the second.

Upstream: kube-proxy's partial sync must leave exactly what a full sync writes
(kubernetes/kubernetes pkg/proxy/iptables/proxier.go ``syncProxyRules``, its test
``TestSyncProxyRulesRepeated``, which checks each partial sync's restore input and the rules it
leaves); Felix recomputes only the chains whose inputs changed and its dataplane writes only
those (projectcalico/calico felix/rules/policy.go ``PolicyToIptablesChains``,
felix/iptables/table.go ``applyUpdates``: chains not dirty keep their rules).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from labkit.sandbox import felix, ipsets, iptables, proxyrules
from labkit.sandbox.dataplane import DataPlane, StoreView
from labkit.sandbox.iptables import BUILTIN_CHAINS, Chain, Ruleset
from labkit.sandbox.policyrules import render_policy_rules
from labkit.sandbox.rulediff import partial_restore
from labkit.sandbox.store import ClusterStore
from labkit.sandbox.workloads import pod_nets
from tests.unit.workload_docs import deployment

LAB = "inc"
NAMESPACES = ("alpha", "beta")
GROUPS = ("g0", "g1", "g2")
CIDR = "192.168.0.0/16"


def _service(ns: str, name: str, group: str, port: int, kind: str) -> dict[str, Any]:
    """A Service of type ``kind``; a LoadBalancer's external traffic stays on the node (its
    KUBE-EXT, KUBE-SVL and health check node port; KUBE-NODEPORTS and KUBE-EXTERNAL-SERVICES
    shared with the other ports)."""
    spec: dict[str, Any] = {
        "type": kind,
        "selector": {"group": group},
        "ports": [{"name": "http", "port": port, "targetPort": "http"}],
    }
    if kind == "LoadBalancer":
        spec["externalTrafficPolicy"] = "Local"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _policy(rng: random.Random, ns: str, name: str) -> dict[str, Any]:
    peer: dict[str, Any] = {"podSelector": {"matchLabels": {"group": rng.choice(GROUPS)}}}
    if rng.random() < 0.4:
        peer["namespaceSelector"] = {"matchLabels": {"team": rng.choice(("red", "blue"))}}
    if rng.random() < 0.2:
        peer = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}
    port: dict[str, Any] = {"port": rng.choice((8080, "http"))}
    direction = rng.choice(("ingress", "egress"))
    rule = {"from" if direction == "ingress" else "to": [peer], "ports": [port]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {"group": rng.choice(GROUPS)}},
            "policyTypes": [direction.capitalize()],
            direction: [rule],
        },
    }


def _namespace(name: str, team: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"team": team}},
    }


def _change(rng: random.Random, store: ClusterStore, step: int) -> None:
    """One random change: a Deployment scaled or added, a Service or policy added, changed or
    deleted, or a namespace's labels changed."""
    ns = rng.choice(NAMESPACES)
    kind = rng.choice(("deploy", "deploy", "service", "policy", "policy", "namespace", "delete"))
    if kind == "deploy":
        name = f"d{rng.randrange(4)}"
        store.apply([deployment(ns, name, rng.randrange(0, 4), rng.choice(GROUPS))])
    elif kind == "service":
        kind = rng.choice(("ClusterIP", "NodePort", "LoadBalancer"))
        store.apply([_service(ns, f"s{rng.randrange(4)}", rng.choice(GROUPS), 80 + step % 3, kind)])
    elif kind == "policy":
        store.apply([_policy(rng, ns, f"p{rng.randrange(5)}")])
    elif kind == "namespace":
        store.apply([_namespace(ns, rng.choice(("red", "blue")))])
    else:
        present = [
            obj
            for k in ("Service", "NetworkPolicy", "Deployment")
            for obj in store.peek(k)
            if obj["metadata"]["namespace"] in NAMESPACES
        ]
        if present:
            store.delete([rng.choice(present)])


def _render(plane: DataPlane, store: ClusterStore) -> dict[str, tuple[Ruleset, Any]]:
    """Every node's ruleset and ipsets, as one converge pass renders them (one view)."""
    view = StoreView(store)
    nodes = plane.nodes(store)
    wanted = pod_nets(LAB, "calico", view.pods(), nodes)
    return {node.netns: plane.render_rules(view, node, wanted) for node in nodes}


def _render_alone(store: ClusterStore, tmp_path: Path) -> dict[str, tuple[Ruleset, Any]]:
    """Every node's ruleset from scratch: a new data plane (so new fragment, proxy input and
    proxy rule caches) and view per node, and Felix's chain render cache emptied."""
    out = {}
    for node in DataPlane(LAB, "calico", tmp_path).nodes(store):
        felix._rendered.cache_clear()
        view = StoreView(store)
        plane = DataPlane(LAB, "calico", tmp_path)
        wanted = pod_nets(LAB, "calico", view.pods(), plane.nodes(store))
        out[node.netns] = plane.render_rules(view, node, wanted)
    return out


def _apply_restore(old: Ruleset, delta: str) -> Ruleset:
    """What ``iptables-restore --noflush`` leaves after loading ``delta`` over ``old``
    (iptables-restore(8): a declared chain is created or flushed, ``-F`` flushes, ``-X``
    deletes, ``-A`` appends; tables not named are untouched)."""
    tables = {table: dict(chains) for table, chains in old.items()}
    table = ""
    for line in delta.splitlines():
        if line.startswith("*"):
            table = line[1:]
            tables.setdefault(table, {})
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            builtin = name in BUILTIN_CHAINS[table]
            kept = tables[table].get(name, Chain(policy, ()))
            tables[table][name] = kept._replace(policy=policy) if builtin else Chain(policy, ())
        elif line.startswith("-F "):
            name = line.split()[1]
            tables[table][name] = tables[table][name]._replace(rules=())
        elif line.startswith("-X "):
            del tables[table][line.split()[1]]
        elif line.startswith("-A "):
            name = line.split()[1]
            chain = tables[table][name]
            tables[table][name] = chain._replace(rules=(*chain.rules, line))
    return tables


def _same_chains(a: Ruleset, b: Ruleset) -> bool:
    """Equal chains per table (the kernel keeps no order among a table's chains)."""
    return {t: dict(c) for t, c in a.items()} == {t: dict(c) for t, c in b.items()}


def _ordered(chains: iptables.Chains) -> list[Any]:
    """A fragment's chains with their order (declaration order is the ruleset's)."""
    return [
        [(t, list(d.items())) for t, d in chains.declared.items()],
        [(t, list(r.items())) for t, r in chains.rules.items()],
        chains.names,
    ]


def _check_built_chains_read_as_their_lines(store: ClusterStore, use_ipsets: bool) -> None:
    """The chains the renderers build equal their lines read back, so composing either gives
    the same ruleset (kube-proxy's and Felix's rules as the golden and Felix tests read them)."""
    view = StoreView(store)
    nodes = DataPlane(LAB, "calico", Path()).nodes(store)
    wanted = pod_nets(LAB, "calico", view.pods(), nodes)
    for node in nodes:
        this = next(n for n in view.all("Node") if n["metadata"]["name"] == node.name)
        args = (this, view.all("Node"), view.all("Service"), view.all("EndpointSlice"), CIDR)
        built = proxyrules.render_proxy_chains(*args)
        assert _ordered(built) == _ordered(
            iptables.read_fragment(proxyrules.render_proxy_rules(*args))
        )
        iface_of = {(n.namespace, n.name): n.iface for n in wanted.values() if n.node == node.name}
        policy = render_policy_rules(
            node.name,
            view.pods(),
            view.all("Namespace"),
            view.all("NetworkPolicy"),
            iface_of,
            use_ipsets=use_ipsets,
        )
        assert _ordered(policy.chains) == _ordered(iptables.read_fragment(policy.tables))


@pytest.mark.parametrize("use_ipsets", [True, False], ids=["ipsets", "inline"])
@pytest.mark.parametrize("seed", range(6))
def test_incremental_render_equals_a_fresh_one_after_every_change(
    seed: int, use_ipsets: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ipsets, "available", lambda: use_ipsets)
    rng = random.Random(seed)
    store = ClusterStore.bootstrap(LAB, "calico")
    store.apply([_namespace(ns, "red") for ns in NAMESPACES])
    store.apply([deployment(ns, f"d{i}", 2, GROUPS[i]) for ns in NAMESPACES for i in range(2)])
    plane = DataPlane(LAB, "calico", tmp_path)
    before = _render(plane, store)
    for step in range(25):
        _change(rng, store, step)
        now = _render(plane, store)
        fresh = _render_alone(store, tmp_path)
        for netns, (rules, sets) in now.items():
            assert iptables.restore_input(rules) == iptables.restore_input(fresh[netns][0])
            assert sets == fresh[netns][1]
            old = before[netns][0]
            assert _same_chains(_apply_restore(old, partial_restore(old, rules)), rules)
        _check_built_chains_read_as_their_lines(store, use_ipsets)
        before = now


def _group_policy(name: str, direction: str, selected: str, peer: str) -> dict[str, Any]:
    """A policy on the pods of group ``selected``, open in ``direction`` to group ``peer`` on
    8080."""
    rule = {
        "from" if direction == "ingress" else "to": [
            {"podSelector": {"matchLabels": {"group": peer}}}
        ]
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "alpha"},
        "spec": {
            "podSelector": {"matchLabels": {"group": selected}},
            "policyTypes": [direction.capitalize()],
            direction: [{**rule, "ports": [{"port": 8080}]}],
        },
    }


@pytest.mark.parametrize("use_ipsets", [True, False], ids=["ipsets", "inline"])
def test_a_change_writes_only_the_felix_chains_it_changes(
    use_ipsets: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One more pod writes its own two workload chains and, inline, the chains of the policies
    whose peers pick it (with ipsets only that set's members change, and only its node renders);
    one more policy writes its chain and the ingress chains of the pods it selects. As Felix: a
    policy's chains are rendered on that policy's update (felix/dataplane/linux/policy_mgr.go
    ``policyManager.OnUpdate``), an endpoint's when it or a policy matching it changes
    (felix/calc/policy_resolver.go ``OnUpdate``, ``markEndpointsMatchingPolicyDirty``)."""
    monkeypatch.setattr(ipsets, "available", lambda: use_ipsets)
    store = ClusterStore.bootstrap(LAB, "calico")
    store.apply([_namespace("alpha", "red")])
    store.apply([deployment("alpha", f"d{i}", 2, group) for i, group in enumerate(GROUPS)])
    store.apply(
        [
            _group_policy("in-g0", "ingress", "g0", "g1"),
            _group_policy("out-g2", "egress", "g2", "g0"),
        ]
    )
    plane = DataPlane(LAB, "calico", tmp_path)
    cache = plane.policy_cache

    def written(change: list[dict[str, Any]]) -> tuple[int, int, int]:
        """The workload and policy chains a change had written and the nodes it rendered, its
        rules checked against a render from scratch."""
        before = (cache.workloads.made, cache.chains.made, cache.node_renders)
        store.apply(change)
        now = _render(plane, store)
        fresh = _render_alone(store, tmp_path)
        for netns, (rules, sets) in now.items():
            assert iptables.restore_input(rules) == iptables.restore_input(fresh[netns][0])
            assert sets == fresh[netns][1]
        now_made = (cache.workloads.made, cache.chains.made, cache.node_renders)
        return now_made[0] - before[0], now_made[1] - before[1], now_made[2] - before[2]

    _render(plane, store)
    nodes = len(plane.nodes(store))
    one_more = written([deployment("alpha", "d1", 3, "g1")])
    assert one_more == ((2, 0, 1) if use_ipsets else (2, 1, nodes))
    alpha = {
        p["spec"]["nodeName"] for p in store.peek("Pod") if p["metadata"]["namespace"] == "alpha"
    }
    one_policy = written([_group_policy("in-g2", "ingress", "g2", "g1")])
    assert one_policy == (2, 1, (len(alpha) if use_ipsets else nodes))
