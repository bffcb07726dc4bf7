"""Cilium pods brought up to date piece by piece end up as a whole load would leave them (issue 18).

A Service change reaches every pod's socket LB, so the sandbox loads each pod only the delta
from its node's previous socket LB (``ciliumlb.socket_lb_delta``) and its own policy chains that
changed (``rulediff.partial_restore``), as kube-proxy's partial syncs write only the chains of
Services that changed (kubernetes pkg/proxy/iptables/proxier.go ``syncProxyRules``, tested by
``TestSyncProxyRulesRepeated``). Here a model of ``iptables-restore`` (``--noflush``: a declared
chain is flushed, ``-A`` appends, ``-D`` deletes the first equal rule, ``-X`` deletes a chain)
applies those loads after each of a seeded random run of changes, and every pod must hold what
loading its rules whole gives.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from labkit.errors import LabError
from labkit.sandbox import iptables, rulediff
from labkit.sandbox.ciliumlb import SOCK_LB, socket_lb_delta
from labkit.sandbox.ciliumpods import (
    CiliumPods,
    Held,
    PodPolicy,
    _loader,
    node_lb,
    parse_record,
    pod_load,
    record_text,
)
from labkit.sandbox.dataplane import DataPlane, StoreView
from labkit.sandbox.rulediff import Chain, Ruleset
from labkit.sandbox.store import ClusterStore
from labkit.sandbox.workloads import pod_nets

NS = "default"
OTHER = "other"
"""A second namespace, whose labels (``team``) change and which policies select across."""
GROUPS = 4


def restore(held: Ruleset, text: str, noflush: bool) -> Ruleset:
    """What ``iptables-restore [--noflush]`` leaves in a namespace holding ``held``."""
    out = {table: dict(chains) for table, chains in held.items()}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            if not noflush:
                out[table] = {}
            out.setdefault(table, {})
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            chains = out[table]
            kept = chains[name].rules if name in chains and policy != "-" else ()
            chains[name] = Chain(policy, kept)
        elif line.startswith(("-A ", "-D ", "-F ", "-X ")):
            verb, name = line[:2], line.split()[1]
            chain = out[table][name]
            if verb == "-A":
                out[table][name] = chain._replace(rules=(*chain.rules, line))
            elif verb == "-D":
                rules = list(chain.rules)
                rules.remove("-A" + line[2:])  # ValueError: iptables' "Bad rule"
                out[table][name] = chain._replace(rules=tuple(rules))
            elif verb == "-F":
                out[table][name] = chain._replace(rules=())
            else:
                assert not chain.rules, f"-X of the non-empty chain {name}"
                del out[table][name]
    return out


def comparable(rules: Ruleset) -> dict[str, dict[str, object]]:
    """A ruleset with CILIUM_SOCK_LB's rules as a multiset: each matches its own frontend, so
    their order is not the behaviour."""
    return {
        table: {
            name: (chain.policy, Counter(chain.rules) if name == SOCK_LB else chain.rules)
            for name, chain in chains.items()
        }
        for table, chains in rules.items()
        if chains or table in iptables.ALWAYS_TABLES
    }


def deployment(name: str, group: int, replicas: int, namespace: str = NS) -> dict[str, object]:
    labels = {"app": name, "group": f"g{group}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "agnhost",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def service(name: str, group: int, node_port: bool) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "type": "NodePort" if node_port else "ClusterIP",
            "selector": {"group": f"g{group}"},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    }


def policy(
    name: str, group: int, peer: int, named: bool, namespace: str = NS, team: str | None = None
) -> dict[str, object]:
    """Ingress and egress with pods of group ``peer``; ``named``: egress to the named port
    ``http`` of any pod instead (resolved at each destination); ``team``: the peers are in the
    namespaces labelled so (else in the policy's own)."""
    to = {"ports": [{"port": "http"}]} if named else {"to": [_group(peer, team)]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {"group": f"g{group}"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [_group(peer, team)], "ports": [{"port": "http"}]}],
            "egress": [to],
        },
    }


def _group(group: int, team: str | None = None) -> dict[str, object]:
    peer: dict[str, object] = {"podSelector": {"matchLabels": {"group": f"g{group}"}}}
    if team is not None:
        peer["namespaceSelector"] = {"matchLabels": {"team": team}}
    return peer


def namespace(name: str, team: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"team": team}},
    }


def change(store: ClusterStore, rng: random.Random, step: int) -> None:
    """One random change: a Service, Deployment (in either namespace) or policy (some selecting
    peers by namespace labels) added, deleted or changed, a namespace relabelled, or a pod's
    readiness flipped."""
    kind = rng.choice(["Service", "Deployment", "NetworkPolicy", "ready", "Namespace"])
    if kind == "Namespace":
        store.apply([namespace(rng.choice([NS, OTHER]), rng.choice(["red", "blue"]))])
        return
    if kind == "ready":
        pods = store.pods()
        if pods:
            pod = rng.choice(pods)
            meta = pod["metadata"]
            store.set_pod_ready(meta["namespace"], meta["name"], rng.random() < 0.5)
        return
    prefix = kind.lower() + "-"
    existing = [o for o in store.peek(kind) if o["metadata"]["name"].startswith(prefix)]
    if existing and rng.random() < 0.3:
        store.delete([rng.choice(existing)])
        return
    name = f"{prefix}{rng.randrange(6)}"
    group = rng.randrange(GROUPS)
    where = OTHER if rng.random() < 0.3 else NS
    if kind == "Service":
        store.apply([service(name, group, rng.random() < 0.4)])
    elif kind == "Deployment":
        store.apply([deployment(name, group, rng.randrange(0, 4), where)])
    else:
        team = rng.choice([None, "red", "blue"])
        peer = rng.randrange(GROUPS)
        store.apply([policy(name, group, peer, rng.random() < 0.3, where, team)])


@pytest.mark.parametrize("seed", range(8))
def test_pods_loaded_piece_by_piece_hold_what_a_whole_load_gives(seed, tmp_path: Path) -> None:
    """A seeded run of 60 changes; after each, every pod of every node is brought up to date as
    ``CiliumPods.sync`` does (records, node socket LB, ``pod_load``, policies reused by their
    keys) and compared with its rules rendered from scratch and loaded whole."""
    rng = random.Random(seed)
    store = ClusterStore.bootstrap("lab", "cilium")
    store.apply([namespace(OTHER, "red")])
    plane = DataPlane("lab", "cilium", tmp_path)
    held: dict[str, Ruleset] = {}
    records: dict[str, str] = {}
    node_records: dict[str, str] = {}
    partial = 0
    for step in range(60):
        change(store, rng, step)
        view = StoreView(store)
        nodes = plane.nodes(store)
        wanted = pod_nets("lab", "cilium", view.pods(), nodes)
        scratch = DataPlane("lab", "cilium", tmp_path)  # no fragment or policy reused
        for node in nodes:
            fresh = scratch.render_pod_rules(view, node, wanted)
            lb_fragment = plane._socket_lb(view, node)
            target = node_lb(lb_fragment, node_records.get(node.netns))
            node_records[node.netns] = target.text
            for netns, fragment in plane.render_pod_rules(view, node, wanted).items():
                record = records.get(netns)
                load = pod_load(
                    parse_record(record) if record else None, target, lb_fragment, fragment
                )
                if load is not None:
                    held[netns] = restore(held.get(netns, {}), load.text, load.noflush)
                    partial += load.noflush
                    records[netns] = record_text(Held(target.digest, fragment.text))
                expected = [scratch._socket_lb(view, node), fresh[netns].fragment]
                whole = rulediff.parse_restore(iptables.compose(expected))
                assert comparable(held[netns]) == comparable(whole), (seed, step, netns)
    assert partial, "no change was loaded piece by piece"


def test_a_new_service_is_one_frontend_and_one_chain_for_every_pod() -> None:
    """The delta for one more Service appends its frontend to CILIUM_SOCK_LB and declares its
    spread chain, leaving the other Services' rules (and counters) alone, as a kube-proxy
    partial sync writes only the changed Service's chains (proxier.go ``syncProxyRules``)."""
    store = ClusterStore.bootstrap("lab", "cilium")
    store.apply([deployment("web", 0, 2), service("a", 0, False), service("b", 0, True)])
    plane = DataPlane("lab", "cilium", Path("/nonexistent"))
    node = plane.nodes(store)[1]
    before = iptables.compose([plane._socket_lb(StoreView(store), node)])
    store.apply([service("c", 0, False)])
    after = iptables.compose([plane._socket_lb(StoreView(store), node)])
    delta = socket_lb_delta(rulediff.parse_restore(before), rulediff.parse_restore(after))
    assert delta is not None
    lines = delta.splitlines()
    assert not any("default/a" in line or "default/b" in line for line in lines)
    assert [line for line in lines if line.startswith(f"-A {SOCK_LB}")] == [
        line for line in after.splitlines() if "default/c" in line and f"-A {SOCK_LB}" in line
    ]
    assert sum(line.startswith(":CILIUM_LB_") for line in lines) == 1
    assert not any(line.startswith(("-D", "-X", "-F")) for line in lines)
    node_record = node_lb(plane._socket_lb(StoreView(store), node), before)
    assert node_record.delta == delta and node_record.previous_digest != node_record.digest


def test_a_changed_hook_or_a_foreign_record_means_a_whole_load() -> None:
    """What the delta cannot express (a built-in chain's hooks changed, a record written by
    something else) falls back to a whole load, as kube-proxy's full sync after a restart."""
    lb = {"nat": [f":{SOCK_LB} - [0:0]", f"-A OUTPUT -j {SOCK_LB}"]}
    other = {"nat": [f":{SOCK_LB} - [0:0]", f"-A OUTPUT -p tcp -j {SOCK_LB}"]}
    parse = rulediff.parse_restore
    assert socket_lb_delta(parse(iptables.compose([lb])), parse(iptables.compose([other]))) is None
    assert parse_record(iptables.compose([lb])) is None
    target = node_lb(other, iptables.compose([lb]))
    load = pod_load(Held(target.previous_digest or "", ""), target, other, PodPolicy({}, ""))
    assert load is not None and not load.noflush


def test_a_forked_child_loads_pods_on_threads_of_its_own() -> None:
    """POSIX fork(): "A process shall be created with a single thread", so the pool kept for the
    process (its threads started in the parent) cannot serve a child: the child gets its own."""
    assert _loader(os.getpid()).submit(os.getpid).result(timeout=5) == os.getpid()
    child = os.fork()
    if child == 0:  # the child: exit 0 only when its own pool ran the job
        try:
            ran = _loader(os.getpid()).submit(os.getpid).result(timeout=5)
            os._exit(0 if ran == os.getpid() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_failed_pod_load_is_raised_only_after_every_other_load_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """concurrent.futures ``wait``: when one pod's restore is refused, the loads running beside it
    finish (and write their records) before the error reaches the change's roll-back, which
    reads those records; none is left running behind it."""
    refused = threading.Event()

    def fake_restore(netns: str, text: str, timeout: float = 30.0, noflush: bool = False) -> None:
        if netns == "pod-a":
            refused.set()
            raise LabError("refused", "fix")
        refused.wait(5)
        time.sleep(0.2)  # still loading when pod-a's error is known

    monkeypatch.setattr(iptables, "restore", fake_restore)
    lb = {"nat": [f":{SOCK_LB} - [0:0]", f"-A OUTPUT -j {SOCK_LB}"]}
    pods = {name: PodPolicy({}, "") for name in ("pod-a", "pod-b", "pod-c")}
    with pytest.raises(LabError):
        CiliumPods(tmp_path).sync("node", lb, pods, full=True)
    assert (tmp_path / "pod-b").exists() and (tmp_path / "pod-c").exists()
