"""The cluster state's own helpers: the World accessors, the garbage collector's report, and the
persisted shape of the state (its keys are read back from state files)."""

from __future__ import annotations

import copy

from labkit.sandbox.cluster.workload_controllers import collect_garbage
from labkit.sandbox.cluster.world import (
    SAFE_CHARS,
    STORE_STATE_FORMAT,
    World,
    empty_state,
    object_uid,
    short_hash,
)
from labkit.sandbox.store import ClusterStore
from labkit.values import ObjectRef

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
_BOOT = ClusterStore.bootstrap("netlab", "flannel").to_dict()


def _deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": AGNHOST}]},
            },
        },
    }


def test_the_state_keeps_the_keys_state_files_hold():
    state = empty_state("netlab", "flannel", [])
    assert state["lab"] == "netlab" and state["format"] == STORE_STATE_FORMAT
    assert World(state).lab_name == "netlab"
    assert ClusterStore.from_dict(_BOOT).lab_name == "netlab"


def test_names_and_uids_derive_only_from_their_inputs():
    assert short_hash("x", 5) == short_hash("x", 5) != short_hash("y", 5)
    assert set(short_hash("anything", 20)) <= set(SAFE_CHARS)
    uid = object_uid("netlab", "Pod", "default", "web")
    assert uid == object_uid("netlab", "Pod", "default", "web")
    assert uid != object_uid("other", "Pod", "default", "web")


def test_a_pod_is_ready_when_it_runs_and_its_readiness_holds():
    store = ClusterStore.from_dict(_BOOT)
    store.apply([_deployment("web", 1)])
    world = World(store.to_dict())
    (pod,) = world.ordered("Pod", "default")
    assert world.facts(pod)["ip"] and world.is_ready(pod)
    world.facts(pod)["ready"] = False
    assert not world.is_ready(pod)
    world.facts(pod)["ready"], world.facts(pod)["ip"] = True, None
    assert not world.is_ready(pod)


def test_the_garbage_collector_names_what_it_removed_owners_first():
    store = ClusterStore.from_dict(_BOOT)
    store.apply([_deployment("web", 2)])
    world = World(copy.deepcopy(store.to_dict()))
    deploy = world.find("Deployment", "default", "web")
    assert deploy is not None
    (rs,) = world.owned("ReplicaSet", deploy)
    pods = world.owned("Pod", rs)
    world.remove("Deployment", "default", "web")
    removed = collect_garbage(world)
    assert removed[0] == ObjectRef("ReplicaSet", rs["metadata"]["name"], "default")
    assert set(removed[1:]) == {ObjectRef("Pod", p["metadata"]["name"], "default") for p in pods}
    assert world.ordered("Pod", "default") == [] and collect_garbage(world) == []
