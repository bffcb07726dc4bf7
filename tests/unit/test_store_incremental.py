"""The controllers work on what a change touched (issue 18), and reach the state a full pass does.

Each seeded run applies a random sequence of changes (Deployments scaled, relabelled and rolled,
bare pods relabelled, Services re-pointed, retyped and made selector-less with user Endpoints, a
StatefulSet, a namespace created and deleted, pods marked ready or not, deletions) to two stores:
the lab's, whose controllers sync only the objects the change touched, and one whose every
change runs every controller over every object. After every step both states are equal, objects
and resourceVersions alike, and the state the change started from is as it was (a change shares
its objects and must never edit them).

Upstream: the EndpointSlice controller queues, for a pod change, the Services whose selector
matched the pod before or matches it now (kubernetes/kubernetes
pkg/controller/endpointslice/endpointslice_controller.go ``updatePod`` through
staging/src/k8s.io/endpointslice/util/controller_utils.go ``GetServicesToUpdateOnPodChange``),
and for a Service change that Service (``onServiceUpdate``); the ReplicaSet controller queues a
changed pod's controlling owner (pkg/controller/replicaset/replica_set.go ``updatePod``,
``resolveControllerRef``), and the Deployment controller a changed ReplicaSet's
(pkg/controller/deployment/deployment_controller.go ``updateReplicaSet``).
"""

from __future__ import annotations

import copy
import random
from datetime import datetime
from typing import Any

import pytest

from labkit.errors import LabError
from labkit.model.copying import deep_copy
from labkit.sandbox.cluster.world import World
from labkit.sandbox.store import ClusterStore
from labkit.values import ObjectRef

NAMESPACES = ("default", "team")
APPS = ("a", "b", "c")


class FullPassStore(ClusterStore):
    """The reference: every change copies the state and runs every controller over everything."""

    def _change(self, now: datetime | None) -> World:
        return World(deep_copy(self._state), now)


def _container(port: int) -> dict[str, Any]:
    return {
        "name": "web",
        "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
        "ports": [{"name": "http", "containerPort": port}],
    }


def _deployment(rng: random.Random) -> dict[str, Any]:
    name, app = f"d{rng.randrange(3)}", rng.choice(APPS)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": rng.choice(NAMESPACES)},
        "spec": {
            "replicas": rng.randrange(4),
            "selector": {"matchLabels": {"deploy": name}},
            "template": {
                "metadata": {"labels": {"deploy": name, "app": app}},
                "spec": {"containers": [_container(rng.choice((8080, 9090)))]},
            },
        },
    }


def _pod(rng: random.Random) -> dict[str, Any]:
    name = f"p{rng.randrange(3)}"
    spec: dict[str, Any] = {"containers": [_container(8080)]}
    if name == "p0":
        spec.update(hostname="h0", subdomain="s0")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": rng.choice(APPS)}},
        "spec": spec,
    }


def _service(rng: random.Random) -> list[dict[str, Any]]:
    name = f"s{rng.randrange(3)}"
    meta = {"name": name, "namespace": rng.choice(NAMESPACES)}
    shape = rng.choice(("selector", "selector", "named", "headless", "bare", "external", "lb"))
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if shape in ("selector", "named", "headless", "lb"):
        spec["selector"] = {"app": rng.choice(APPS)}
        spec["publishNotReadyAddresses"] = rng.random() < 0.3
    if shape == "named":
        spec["ports"][0]["targetPort"] = "http"
    if shape == "headless":
        spec["clusterIP"] = "None"
    if shape == "lb":
        spec["type"] = "LoadBalancer"
    if shape == "external":
        spec = {"type": "ExternalName", "externalName": "example.com"}
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}]
    if shape == "bare":
        address = {"ip": f"10.9.0.{rng.randrange(1, 9)}"}
        subset = {"addresses": [address], "ports": [{"name": "http", "port": 8080}]}
        docs.append(
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": [subset]}
        )
    return docs


def _statefulset(rng: random.Random) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "serviceName": "s1",
            "replicas": rng.randrange(3),
            "selector": {"matchLabels": {"sts": "db"}},
            "template": {
                "metadata": {"labels": {"sts": "db", "app": rng.choice(APPS)}},
                "spec": {"containers": [_container(8080)]},
            },
        },
    }


def _namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}


def _step(rng: random.Random, store: ClusterStore) -> tuple[str, Any]:
    """One random change, as (operation, argument) both stores are given."""
    roll = rng.random()
    if roll < 0.25:
        return "apply", [_deployment(rng)]
    if roll < 0.4:
        return "apply", [_pod(rng)]
    if roll < 0.6:
        return "apply", _service(rng)
    if roll < 0.65:
        return "apply", [_statefulset(rng)]
    if roll < 0.7:
        return "apply", [_namespace()]
    pods = [p for p in store.pods() if p["status"].get("podIP")]
    if roll < 0.8 and pods:
        pod = rng.choice(pods)["metadata"]
        return "ready", (pod["namespace"], pod["name"], rng.random() < 0.5)
    kind = rng.choice(("Deployment", "Pod", "Service", "StatefulSet", "Namespace"))
    found = store.get(kind, namespace=None)
    if kind == "Namespace":
        found = [o for o in found if o["metadata"]["name"] == "team"]
    if not found:
        return "apply", [_deployment(rng)]
    meta = rng.choice(found)["metadata"]
    return "delete", [ObjectRef(kind, meta["name"], meta.get("namespace"))]


def _run(store: ClusterStore, operation: str, argument: Any) -> str:
    """Make the change; what it refused, if it did."""
    try:
        if operation == "apply":
            store.apply(copy.deepcopy(argument))
        elif operation == "ready":
            store.set_pod_ready(*argument)
        else:
            store.delete(argument)
    except LabError as exc:
        return exc.what
    return ""


@pytest.mark.parametrize("seed", range(12))
def test_incremental_controllers_reach_the_full_pass_state(seed: int):
    rng = random.Random(seed)
    lab = ClusterStore.bootstrap("inc", "calico")
    full = FullPassStore.bootstrap("inc", "calico")
    lab.apply([_namespace()])
    full.apply([_namespace()])
    assert lab == full
    for number in range(40):
        operation, argument = _step(rng, lab)
        started = lab.snapshot()
        kept = deep_copy(started)
        refused = _run(lab, operation, argument)
        assert _run(full, operation, argument) == refused, (number, operation, argument)
        assert started == kept, f"step {number} ({operation}) edited the state it started from"
        assert lab.to_dict() == full.to_dict(), f"step {number}: {operation} {argument}"
