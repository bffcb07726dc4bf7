"""The store's owner index (World.owned, kept by put/remove) gives what a scan of every object
gives, on random changes (seeded): the same children after each write, and the same cluster after
each apply or delete when the controllers use it.

Upstream: a controller finds its children by their controller ownerReference
(kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/controller_ref.go
``GetControllerOf``) through an informer's index rather than a list of everything
(pkg/controller/controller_ref_manager.go ``ClaimPods``, client-go tools/cache ``Indexer``);
the index must answer as the full list filtered by owner does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from labkit.sandbox.cluster.world import World, controller_uid, empty_state, key_of
from labkit.sandbox.store import ClusterStore

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"


def _scan_owned(world: World, kind: str, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
    """World.owned as a scan of every object of the kind (the reference)."""
    uid, namespace = owner["metadata"]["uid"], owner["metadata"].get("namespace")
    created = world.state["created"]
    items = [
        o
        for o in world.state["objects"].get(kind, {}).values()
        if controller_uid(o) == uid
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    return sorted(items, key=lambda o: created.get(f"{kind}/{key_of(o)}", 0))


def _child(rng: random.Random, owners: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"c{rng.randint(0, 30)}", "namespace": rng.choice("ab")}
    owner = rng.choice(owners)
    if rng.random() < 0.8:
        meta["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": "x", "uid": owner["metadata"]["uid"], "controller": True}
        ]
    if rng.random() < 0.2:
        meta.setdefault("ownerReferences", []).append(
            {"kind": "ReplicaSet", "name": "y", "uid": "not-a-controller", "controller": False}
        )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}}


@pytest.mark.parametrize("seed", range(40))
def test_owned_equals_a_scan_after_every_put_and_remove(seed):
    rng = random.Random(seed)
    world = World(empty_state("own", "calico", []))
    owners = [
        world.put(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": f"rs{i}", "namespace": ns},
                "spec": {},
            }
        )
        for i, ns in enumerate("aab")
    ]
    for step in range(120):
        if step == rng.randint(0, 60):
            world.owned("Pod", owners[0])  # the index is built midway in some runs
        if rng.random() < 0.65:
            world.put(_child(rng, owners))
        else:
            world.remove("Pod", rng.choice("ab"), f"c{rng.randint(0, 30)}")
        for owner in owners:
            assert world.owned("Pod", owner) == _scan_owned(world, "Pod", owner)


def _deployment(rng: random.Random, name: str, ns: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": rng.randint(0, 4),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "web", "image": AGNHOST, "args": [f"--v={rng.randint(0, 2)}"]}
                    ]
                },
            },
        },
    }


def _changes(seed: int) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    out: list[tuple[str, Any]] = [
        ("apply", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}])
    ]
    for _ in range(14):
        name, ns = f"d{rng.randint(0, 4)}", rng.choice(["default", "shop"])
        roll = rng.random()
        if roll < 0.6:
            out.append(("apply", [_deployment(rng, name, ns)]))
        elif roll < 0.8:
            out.append(("delete", {"kind": "Deployment", "name": name, "namespace": ns}))
        else:
            out.append(("delete pod", ns))
    return out


def _run(changes: list[tuple[str, Any]]) -> dict[str, Any]:
    store = ClusterStore.bootstrap("own", "calico")
    for what, arg in changes:
        if what == "apply":
            store.apply(arg)
        elif what == "delete":
            if store.get("Deployment", arg["name"], arg["namespace"]):
                store.delete([arg])
        else:
            pods = [
                p for p in store.get("Pod", namespace=arg) if p["metadata"].get("ownerReferences")
            ]
            if pods:
                store.delete([pods[0]])
    return store.to_dict()


@pytest.mark.parametrize("seed", range(8))
def test_controllers_settle_the_same_cluster_as_with_a_scan(seed, monkeypatch):
    changes = _changes(seed)
    indexed = _run(changes)
    monkeypatch.setattr(World, "owned", _scan_owned)
    assert _run(changes) == indexed
