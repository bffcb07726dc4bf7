"""World.owned: the objects whose controller is the owner, in creation order, as the
ReplicaSet controller's claim of its pods (pkg/controller/replicaset/replica_set.go
claimPods: pods whose controller ownerReference is the ReplicaSet) and the same scan over
every pod of the namespace sorted by creation would give."""

from __future__ import annotations

from labkit.sandbox.cluster.world import World, controller_uid
from labkit.sandbox.store import ClusterStore
from tests.unit.workload_docs import deployment


def test_owned_equals_a_scan_of_the_namespace_in_creation_order() -> None:
    """Deployments in two namespaces, grown and shrunk in turns, their tables stored in reverse
    creation order: each owner's ReplicaSets and pods are exactly the scan's."""
    store = ClusterStore.bootstrap("own", "calico")
    store.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}])
    for replicas in (2, 5, 1, 4):
        store.apply(
            [
                deployment(ns, f"d{i}", replicas + i, "g")
                for ns in ("default", "b")
                for i in range(3)
            ]
        )
    world = World(store.to_dict())
    for kind in ("ReplicaSet", "Pod"):
        table = world.state["objects"][kind]
        world.state["objects"][kind] = dict(reversed(list(table.items())))
    checked = 0
    for kind, owner_kind in (("ReplicaSet", "Deployment"), ("Pod", "ReplicaSet")):
        for owner in world.ordered(owner_kind):
            ns, uid = owner["metadata"].get("namespace"), owner["metadata"]["uid"]
            scan = [o for o in world.ordered(kind, ns) if controller_uid(o) == uid]
            assert world.owned(kind, owner) == scan
            checked += bool(scan)
    assert checked >= 12
