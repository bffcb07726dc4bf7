"""ClusterStore controllers: Deployments, ReplicaSets, DaemonSets, StatefulSets, garbage
collection."""

from __future__ import annotations

import copy
import re

import pytest

from labkit.errors import LabError
from labkit.lab import ObjectRef
from labkit.sandbox.cluster.world import SAFE_CHARS, template_hash
from labkit.sandbox.store import ClusterStore

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
_BOOT = ClusterStore.bootstrap("netlab", "flannel").to_dict()
WORKERS = {"netlab-worker", "netlab-worker2"}
SUFFIX = f"[{SAFE_CHARS}]"


def fresh() -> ClusterStore:
    return ClusterStore.from_dict(_BOOT)


def template(labels, image=AGNHOST, **spec):
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}],
            **spec,
        },
    }


def deployment(name, replicas=3, labels=None, image=AGNHOST, ns=None, **spec):
    labels = labels or {"app": name}
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": template(labels, image, **spec),
        },
    }


def daemonset(name, labels=None, **spec):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": dict(labels)}, "template": template(labels, **spec)},
    }


def statefulset(name, replicas=3, service_name="db", labels=None, image=AGNHOST):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": service_name,
            "selector": {"matchLabels": dict(labels)},
            "template": template(labels, image),
        },
    }


def pods_of(store, selector, ns="default"):
    return store.get("pods", namespace=ns, selector=selector)


def names(items):
    return sorted(i["metadata"]["name"] for i in items)


# --------------------------------------------------------------------------- Deployments


def test_deployment_pods_are_named_with_template_hash_and_suffix():
    store = fresh()
    store.apply([deployment("web", 3)])
    deploy = store.get("deploy", "web")[0]
    pod_hash = template_hash(deploy["spec"]["template"])
    assert len(pod_hash) == 10 and set(pod_hash) <= set(SAFE_CHARS)
    pods = pods_of(store, "app=web")
    assert len(pods) == 3 and len(set(names(pods))) == 3
    for p in pods:
        assert re.fullmatch(rf"web-{pod_hash}-{SUFFIX}{{5}}", p["metadata"]["name"])
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
        owner = p["metadata"]["ownerReferences"][0]
        assert (
            owner["kind"] == "ReplicaSet"
            and owner["name"] == f"web-{pod_hash}"
            and owner["controller"] is True
        )
    rs = store.get("rs", f"web-{pod_hash}")[0]
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["status"]["readyReplicas"] == 3
    assert deploy["status"]["replicas"] == 3 and deploy["status"]["readyReplicas"] == 3
    assert deploy["status"]["updatedReplicas"] == 3
    available = next(c for c in deploy["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"


def test_deployment_names_are_deterministic():
    a, b = fresh(), fresh()
    for s in (a, b):
        s.apply([deployment("web", 4)])
    assert names(pods_of(a, "app=web")) == names(pods_of(b, "app=web"))
    assert [p["status"]["podIP"] for p in pods_of(a, "app=web")] == [
        p["status"]["podIP"] for p in pods_of(b, "app=web")
    ]


def test_deployment_spreads_over_the_workers_only():
    store = fresh()
    store.apply([deployment("web", 4)])
    nodes = [p["spec"]["nodeName"] for p in pods_of(store, "app=web")]
    assert sorted(nodes) == ["netlab-worker", "netlab-worker", "netlab-worker2", "netlab-worker2"]


def test_scaling_up_keeps_existing_pods_and_down_removes_some():
    store = fresh()
    store.apply([deployment("web", 2)])
    before = names(pods_of(store, "app=web"))
    store.apply([deployment("web", 5)])
    after = names(pods_of(store, "app=web"))
    assert len(after) == 5 and set(before) <= set(after)
    assert store.get("deploy", "web")[0]["metadata"]["generation"] == 2
    store.apply([deployment("web", 1)])
    remaining = pods_of(store, "app=web")
    assert len(remaining) == 1 and remaining[0]["metadata"]["name"] in after
    store.apply([deployment("web", 0)])
    assert pods_of(store, "app=web") == []
    assert store.get("deploy", "web")[0]["status"]["replicas"] == 0


def test_scale_down_removes_newest_from_the_crowded_node():
    store = fresh()
    store.apply([deployment("web", 2)])
    first = names(pods_of(store, "app=web"))
    store.apply([deployment("web", 3)])
    (newest,) = set(names(pods_of(store, "app=web"))) - set(first)
    crowded = store.get("pod", newest)[0]["spec"]["nodeName"]
    assert [p["spec"]["nodeName"] for p in pods_of(store, "app=web")].count(crowded) == 2
    store.apply([deployment("web", 2)])
    left = pods_of(store, "app=web")
    assert names(left) == sorted(first)
    assert sorted(p["spec"]["nodeName"] for p in left) == sorted(WORKERS)


def test_changed_template_replaces_pods_and_keeps_old_replicaset_at_zero():
    store = fresh()
    store.apply([deployment("web", 3)])
    old_pods = names(pods_of(store, "app=web"))
    old_rs = store.get("rs", namespace="default", selector="app=web")
    store.apply([deployment("web", 3, image="nginx:1.27")])
    new_pods = pods_of(store, "app=web")
    assert len(new_pods) == 3 and not set(old_pods) & set(names(new_pods))
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.27" for p in new_pods)
    sets = {rs["metadata"]["name"]: rs for rs in store.get("rs", selector="app=web")}
    assert len(sets) == 2
    assert sets[old_rs[0]["metadata"]["name"]]["spec"]["replicas"] == 0
    revisions = sorted(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in sets.values()
    )
    assert revisions == ["1", "2"]
    deploy = store.get("deploy", "web")[0]
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    # rolling back re-uses the first ReplicaSet under a new revision
    store.apply([deployment("web", 3)])
    back = store.get("rs", old_rs[0]["metadata"]["name"])[0]
    assert (
        back["spec"]["replicas"] == 3
        and back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    )


def test_revision_history_limit_prunes_old_replicasets():
    store = fresh()
    for tag in range(4):
        doc = deployment("web", 1, image=f"nginx:1.{tag}")
        doc["spec"]["revisionHistoryLimit"] = 1
        store.apply([doc])
    assert len(store.get("rs", selector="app=web")) == 2


def test_changing_only_labels_of_the_deployment_keeps_pods():
    store = fresh()
    store.apply([deployment("web", 2)])
    before = names(pods_of(store, "app=web"))
    doc = deployment("web", 2)
    doc["metadata"]["labels"] = {"team": "shop"}
    store.apply([doc])
    assert names(pods_of(store, "app=web")) == before
    assert store.get("deploy", "web")[0]["metadata"]["labels"] == {"team": "shop"}


def test_deleted_deployment_pod_is_replaced_under_a_new_name():
    store = fresh()
    store.apply([deployment("web", 3)])
    victim = pods_of(store, "app=web")[0]
    store.delete([ObjectRef("Pod", victim["metadata"]["name"], "default")])
    pods = pods_of(store, "app=web")
    assert len(pods) == 3 and victim["metadata"]["name"] not in names(pods)
    assert victim["status"]["podIP"] not in {p["status"]["podIP"] for p in pods}


def test_deleting_a_deployment_deletes_its_replicasets_and_pods():
    store = fresh()
    store.apply([deployment("web", 3), deployment("api", 1)])
    removed = store.delete([ObjectRef("Deployment", "web", "default")])
    assert removed[0] == ObjectRef("Deployment", "web", "default")
    assert (
        sum(r.kind == "Pod" for r in removed) == 3
        and sum(r.kind == "ReplicaSet" for r in removed) == 1
    )
    assert pods_of(store, "app=web") == [] and store.get("rs", selector="app=web") == []
    assert len(pods_of(store, "app=api")) == 1


def test_deployment_selector_must_match_template():
    doc = deployment("web", 1)
    doc["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(LabError) as err:
        fresh().apply([doc])
    assert "selector" in err.value.what
    empty = deployment("web", 1)
    empty["spec"]["selector"] = {}
    with pytest.raises(LabError):
        fresh().apply([empty])


def test_deployment_selector_is_immutable():
    store = fresh()
    store.apply([deployment("web", 1)])
    changed = deployment("web", 1, labels={"app": "web", "v": "2"})
    with pytest.raises(LabError) as err:
        store.apply([changed])
    assert "cannot change" in err.value.what and "Delete the Deployment first" in err.value.fix


def test_match_expressions_selector_works():
    doc = deployment("web", 2, labels={"app": "web", "tier": "front"})
    doc["spec"]["selector"] = {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
    }
    store = fresh()
    store.apply([doc])
    assert len(pods_of(store, "tier=front")) == 2


def test_deployment_defaults_are_filled():
    store = fresh()
    doc = deployment("web", 1)
    del doc["spec"]["replicas"]
    store.apply([doc])
    spec = store.get("deploy", "web")[0]["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_unschedulable_deployment_is_not_available():
    store = fresh()
    store.apply([deployment("gpu", 2, nodeSelector={"accelerator": "gpu"})])
    status = store.get("deploy", "gpu")[0]["status"]
    assert (
        status["replicas"] == 2
        and status["readyReplicas"] == 0
        and status["unavailableReplicas"] == 2
    )
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "False" and available["reason"] == "MinimumReplicasUnavailable"
    assert all(p["status"]["phase"] == "Pending" for p in pods_of(store, "app=gpu"))


def test_controller_pods_carry_generate_name():
    store = fresh()
    store.apply([deployment("web", 1)])
    p = pods_of(store, "app=web")[0]
    rs = p["metadata"]["ownerReferences"][0]["name"]
    assert p["metadata"]["generateName"] == rs + "-"


def test_bare_replicaset():
    store = fresh()
    store.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": "rs1"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "rs1"}},
                    "template": template({"app": "rs1"}),
                },
            }
        ]
    )
    pods = pods_of(store, "app=rs1")
    assert len(pods) == 2 and all(
        re.fullmatch(rf"rs1-{SUFFIX}{{5}}", p["metadata"]["name"]) for p in pods
    )


def test_labelling_a_controlled_pod_keeps_its_owner():
    store = fresh()
    store.apply([deployment("web", 1)])
    p = pods_of(store, "app=web")[0]
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": p["metadata"]["name"], "labels": {"debug": "yes"}},
        "spec": p["spec"],
    }
    store.apply([doc])
    again = store.get("pod", p["metadata"]["name"])[0]
    assert again["metadata"]["ownerReferences"] == p["metadata"]["ownerReferences"]
    assert (
        again["metadata"]["labels"]["debug"] == "yes"
        and again["metadata"]["labels"]["app"] == "web"
    )
    assert len(pods_of(store, "app=web")) == 1


# --------------------------------------------------------------------------- DaemonSets


def test_daemonset_runs_on_workers_unless_it_tolerates_the_control_plane():
    store = fresh()
    store.apply([daemonset("agent")])
    pods = pods_of(store, "app=agent")
    assert {p["spec"]["nodeName"] for p in pods} == WORKERS
    assert all(re.fullmatch(rf"agent-{SUFFIX}{{5}}", p["metadata"]["name"]) for p in pods)
    ds = store.get("ds", "agent")[0]
    assert ds["status"]["desiredNumberScheduled"] == 2 and ds["status"]["numberReady"] == 2
    store.apply(
        [
            daemonset(
                "everywhere",
                tolerations=[
                    {
                        "key": "node-role.kubernetes.io/control-plane",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    }
                ],
            )
        ]
    )
    assert len(pods_of(store, "app=everywhere")) == 3


def test_daemonset_respects_node_selector_and_moves_with_it():
    store = fresh()
    store.apply([daemonset("logs", nodeSelector={"labkit.dev/pool": "data"})])
    assert [p["spec"]["nodeName"] for p in pods_of(store, "app=logs")] == ["netlab-worker2"]
    store.apply([daemonset("logs", nodeSelector={"labkit.dev/pool": "apps"})])
    assert [p["spec"]["nodeName"] for p in pods_of(store, "app=logs")] == ["netlab-worker"]


def test_daemonset_template_change_replaces_pods_and_deleted_pod_comes_back():
    store = fresh()
    store.apply([daemonset("agent")])
    first = names(pods_of(store, "app=agent"))
    store.apply([daemonset("agent", hostNetwork=True)])
    second = pods_of(store, "app=agent")
    assert not set(first) & set(names(second)) and all(p["spec"]["hostNetwork"] for p in second)
    assert {p["status"]["podIP"] for p in second} == {"172.18.0.3", "172.18.0.4"}
    victim = second[0]
    store.delete([ObjectRef("Pod", victim["metadata"]["name"], "default")])
    third = pods_of(store, "app=agent")
    assert len(third) == 2 and victim["metadata"]["name"] not in names(third)
    assert {p["spec"]["nodeName"] for p in third} == WORKERS


def test_daemonset_delete_removes_its_pods():
    store = fresh()
    store.apply([daemonset("agent")])
    store.delete([ObjectRef("DaemonSet", "agent", "default")])
    assert pods_of(store, "app=agent") == []


# --------------------------------------------------------------------------- StatefulSets


def test_statefulset_pods_have_ordinal_names_hostname_and_subdomain():
    store = fresh()
    store.apply([statefulset("db", 3)])
    pods = pods_of(store, "app=db")
    assert names(pods) == ["db-0", "db-1", "db-2"]
    for p in pods:
        assert p["spec"]["hostname"] == p["metadata"]["name"] and p["spec"]["subdomain"] == "db"
        assert (
            p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == p["metadata"]["name"]
        )
    sts = store.get("sts", "db")[0]
    assert sts["status"]["readyReplicas"] == 3 and sts["status"]["currentRevision"].startswith(
        "db-"
    )


def test_statefulset_scales_from_the_top_and_recreates_deleted_pods_with_the_same_name():
    store = fresh()
    store.apply([statefulset("db", 3)])
    store.apply([statefulset("db", 1)])
    assert names(pods_of(store, "app=db")) == ["db-0"]
    store.apply([statefulset("db", 2)])
    old_ip = store.get("pod", "db-1")[0]["status"]["podIP"]
    store.delete([ObjectRef("Pod", "db-1", "default")])
    assert names(pods_of(store, "app=db")) == ["db-0", "db-1"]
    assert store.get("pod", "db-1")[0]["status"]["podIP"] != old_ip


def test_statefulset_template_change_replaces_pods_in_place():
    store = fresh()
    store.apply([statefulset("db", 2)])
    store.apply([statefulset("db", 2, image="postgres:17")])
    pods = pods_of(store, "app=db")
    assert names(pods) == ["db-0", "db-1"] and all(
        p["spec"]["containers"][0]["image"] == "postgres:17" for p in pods
    )


def test_statefulset_service_name_is_immutable():
    store = fresh()
    store.apply([statefulset("db", 1)])
    with pytest.raises(LabError) as err:
        store.apply([statefulset("db", 1, service_name="other")])
    assert "serviceName" in err.value.what


# --------------------------------------------------------------------------- garbage collection


def test_objects_whose_owner_vanished_are_collected():
    store = fresh()
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "orphan",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "gone",
                    "uid": "0000",
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "a", "image": AGNHOST}]},
    }
    store.apply([copy.deepcopy(doc)])
    assert store.get("pod", "orphan") == []
