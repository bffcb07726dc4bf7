"""The status writers: what kubelets report of pods, what the workload controllers report of their
sets, and the address the ingress controller gives its Ingresses."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from labkit.model.copying import deep_copy
from labkit.model.objects import pod_node
from labkit.sandbox.cluster.allocation import load_balancer_ip
from labkit.sandbox.cluster.podspecs import pod_spec_for
from labkit.sandbox.cluster.scheduling import daemonset_wants
from labkit.sandbox.cluster.workload_controllers import (
    REVISION_HASH_LABEL,
    scaled_value,
    touched_with_pods,
)
from labkit.sandbox.cluster.world import World, template_hash

INGRESS_NAMESPACE, INGRESS_SERVICE = "ingress-system", "ingress-controller"
INGRESS_CLASS = "cloud-provider-kind"
"""The class the sandbox's ingress controller serves: the one cloud-provider-kind serves on Kind,
so one Ingress manifest works on both backends."""


def _with_times(
    new: list[dict[str, Any]],
    old: list[dict[str, Any]] | None,
    now: str,
    fields: tuple[str, ...] = ("lastTransitionTime",),
) -> list[dict[str, Any]]:
    """Condition timestamps move only when the condition's status changes."""
    previous = {c.get("type"): c for c in old or []}
    for cond in new:
        before = previous.get(cond["type"])
        for field in fields:
            if before is not None and before.get("status") == cond["status"] and before.get(field):
                cond[field] = before[field]
            else:
                cond[field] = now
    return new


def qos_class(spec: Mapping[str, Any]) -> str:
    """BestEffort without requests/limits, Guaranteed when every container's limits equal
    requests, else Burstable."""
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits = r.get("limits") or {}
        requests = r.get("requests") or limits  # requests default to limits
        if not all(limits.get(k) and requests.get(k) == limits.get(k) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    """A pod condition; a reason and message only when it is False."""
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
    }
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod_status(world: World, pod: Mapping[str, Any]) -> dict[str, Any]:
    """The kubelet's view of a pod: phase, IPs, conditions, container statuses."""
    spec, meta = pod["spec"], pod["metadata"]
    facts = world.facts(pod)
    old = (pod.get("status") or {}).get("conditions")
    now = world.timestamp()
    node = world.node(pod_node(pod))
    if node is None:
        unscheduled = _condition(
            "PodScheduled", False, "Unschedulable", facts["unschedulable"] or "no nodes available"
        )
        return {
            "phase": "Pending",
            "conditions": _with_times([unscheduled], old, now),
            "qosClass": qos_class(spec),
        }
    containers = spec.get("containers") or []
    names = " ".join(c["name"] for c in containers)
    running = bool(facts["ip"])
    ready = running and facts["ready"]
    unready = f"containers with unready status: [{names}]"
    if running and facts.get("readyReason"):
        unready += f" ({facts['readyReason']})"
    conditions = [
        _condition(
            "PodReadyToStartContainers", running, "FailedCreatePodSandBox", facts["ipError"] or ""
        ),
        _condition("Initialized", True),
        _condition("Ready", ready, "ContainersNotReady", unready),
        _condition("ContainersReady", ready, "ContainersNotReady", unready),
        _condition("PodScheduled", True),
    ]
    status: dict[str, Any] = {
        "phase": "Running" if running else "Pending",
        "conditions": _with_times(conditions, old, now),
        "hostIP": node["internal_ip"],
        "hostIPs": [{"ip": node["internal_ip"]}],
    }
    if running:
        status["podIP"] = facts["ip"]
        status["podIPs"] = [{"ip": facts["ip"]}]
    status["startTime"] = meta["creationTimestamp"]
    status["qosClass"] = qos_class(spec)
    status["containerStatuses"] = [
        _container_status(world, pod, c, running, ready) for c in containers
    ]
    return status


def _container_status(
    world: World, pod: Mapping[str, Any], container: Mapping[str, Any], running: bool, ready: bool
) -> dict[str, Any]:
    meta, name = pod["metadata"], container["name"]
    entry: dict[str, Any] = {
        "name": name,
        "image": container.get("image", ""),
        "ready": ready,
        "restartCount": 0,
        "started": running,
    }
    if running:
        runtime = f"{world.lab_name}/{meta['uid']}/{name}"
        entry["containerID"] = "containerd://" + hashlib.sha256(runtime.encode()).hexdigest()
        entry["state"] = {"running": {"startedAt": meta["creationTimestamp"]}}
    else:
        entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return entry


def write_pod_statuses(world: World) -> None:
    """Refresh the status of every pod the change touched (all on a full pass) from what the
    scheduler, IPAM and readiness say."""
    for pod in world.ordered_among("Pod", world.changed("Pod")):
        status = pod_status(world, pod)
        if status != pod.get("status"):
            updated = deep_copy(pod)
            updated["status"] = status
            world.put(updated)


def _put_status(world: World, obj: Mapping[str, Any], status: dict[str, Any]) -> None:
    if obj.get("status") != status:
        updated = deep_copy(dict(obj))
        updated["status"] = status
        world.put(updated)


def _counts(world: World, pods: list[dict[str, Any]]) -> tuple[int, int]:
    """How many pods, and how many of them ready."""
    return len(pods), sum(1 for p in pods if world.is_ready(p))


def write_workload_statuses(world: World) -> None:
    """status of ReplicaSets, Deployments, DaemonSets and StatefulSets from their pods: of those
    the change touched or whose pods (a Deployment: whose ReplicaSets) it touched."""
    sets = touched_with_pods(world, "ReplicaSet")
    for rs in world.ordered_among("ReplicaSet", sets):
        _put_status(world, rs, _replicaset_status(world, rs))
    owners = world.owners_of("Deployment", "ReplicaSet", sets)
    deployments = world.changed("Deployment")
    wanted = None if owners is None or deployments is None else owners | deployments
    for deploy in world.ordered_among("Deployment", wanted):
        _put_status(world, deploy, _deployment_status(world, deploy))
    for ds in world.ordered_among("DaemonSet", touched_with_pods(world, "DaemonSet")):
        _put_status(world, ds, _daemonset_status(world, ds))
    for sts in world.ordered_among("StatefulSet", touched_with_pods(world, "StatefulSet")):
        _put_status(world, sts, _statefulset_status(world, sts))


def _replicaset_status(world: World, rs: Mapping[str, Any]) -> dict[str, Any]:
    total, ready = _counts(world, world.owned("Pod", rs))
    status: dict[str, Any] = {
        "replicas": total,
        "fullyLabeledReplicas": total,
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    return status


def _deployment_status(world: World, deploy: Mapping[str, Any]) -> dict[str, Any]:
    spec, meta = deploy["spec"], deploy["metadata"]
    sets = world.owned("ReplicaSet", deploy)
    current = f"{meta['name']}-{template_hash(spec['template'])}"
    pods = [p for rs in sets for p in world.owned("Pod", rs)]
    updated = [
        p for rs in sets if rs["metadata"]["name"] == current for p in world.owned("Pod", rs)
    ]
    total, ready = _counts(world, pods)
    want = spec.get("replicas", 1)
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    minimum = want - scaled_value(rolling.get("maxUnavailable", "25%"), want, round_up=False)
    available = ready >= minimum
    conditions = [
        {
            "type": "Available",
            "status": "True" if available else "False",
            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability."
            if available
            else "Deployment does not have minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetAvailable",
            "message": f'ReplicaSet "{current}" has successfully progressed.',
        },
    ]
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": total,
        "updatedReplicas": len(updated),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": _with_times(
            conditions,
            (deploy.get("status") or {}).get("conditions"),
            world.timestamp(),
            ("lastUpdateTime", "lastTransitionTime"),
        ),
    }
    if total - ready > 0:
        status["unavailableReplicas"] = total - ready
    return status


def _daemonset_status(world: World, ds: Mapping[str, Any]) -> dict[str, Any]:
    spec = pod_spec_for(ds["spec"]["template"])
    eligible = {n["name"] for n in world.nodes if daemonset_wants(spec, n)}
    pods = world.owned("Pod", ds)
    revision = template_hash(ds["spec"]["template"])
    on_eligible = [p for p in pods if pod_node(p) in eligible]
    total, ready = _counts(world, on_eligible)
    status: dict[str, Any] = {
        "currentNumberScheduled": total,
        "desiredNumberScheduled": len(eligible),
        "numberMisscheduled": len(pods) - total,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": sum(
            1 for p in on_eligible if p["metadata"]["labels"].get(REVISION_HASH_LABEL) == revision
        ),
        "observedGeneration": ds["metadata"].get("generation", 1),
    }
    if len(eligible) - ready > 0:
        status["numberUnavailable"] = len(eligible) - ready
    return status


def _statefulset_status(world: World, sts: Mapping[str, Any]) -> dict[str, Any]:
    revision = f"{sts['metadata']['name']}-{template_hash(sts['spec']['template'])}"
    total, ready = _counts(world, world.owned("Pod", sts))
    return {
        "observedGeneration": sts["metadata"].get("generation", 1),
        "replicas": total,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": total,
        "updatedReplicas": total,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    }


def write_ingress_statuses(world: World) -> None:
    """Ingresses of the controller's class get the ingress controller's LoadBalancer address."""
    controller = world.find("Service", INGRESS_NAMESPACE, INGRESS_SERVICE)
    ip = load_balancer_ip(controller) if controller else None
    for ing in world.ordered("Ingress"):
        cls = ing["spec"].get("ingressClassName") or (ing["metadata"].get("annotations") or {}).get(
            "kubernetes.io/ingress.class"
        )
        served = ip is not None and cls == INGRESS_CLASS
        lb = {"ingress": [{"ip": ip}]} if served else {}
        _put_status(world, ing, {"loadBalancer": lb})
