"""The workload controllers: Deployments make ReplicaSets, ReplicaSets, DaemonSets and
StatefulSets make pods, and the garbage collector removes what lost its owner."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from labkit.model.copying import deep_copy
from labkit.model.objects import labels_of, pod_node
from labkit.sandbox.cluster.podspecs import pod_spec_for
from labkit.sandbox.cluster.scheduling import daemonset_wants
from labkit.sandbox.cluster.world import World, owner_reference, short_hash, template_hash
from labkit.values import ObjectRef

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DESIRED_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
REVISION_HASH_LABEL = "controller-revision-hash"


def collect_garbage(world: World) -> list[ObjectRef]:
    """Delete objects whose every owner is gone, repeatedly (Deployment -> ReplicaSet -> Pod);
    returns what went."""
    removed: list[ObjectRef] = []
    while True:
        uids = {o["metadata"]["uid"] for o in world.all_objects()}
        doomed = []
        for obj in world.all_objects():
            refs = obj["metadata"].get("ownerReferences") or []
            if not refs:
                continue
            alive = [
                r
                for r in refs
                if (
                    world.node(r.get("name")) is not None
                    if r.get("kind") == "Node"
                    else r.get("uid") in uids
                )
            ]
            if not alive:
                meta = obj["metadata"]
                doomed.append(ObjectRef(obj["kind"], meta["name"], meta.get("namespace")))
        if not doomed:
            return removed
        for ref in doomed:
            world.remove(ref.kind, ref.namespace, ref.name)
        removed.extend(doomed)


def touched_with_pods(world: World, kind: str) -> set[str] | None:
    """Keys of the ``kind`` objects the change touched, or whose pods it touched (None: all)."""
    return _union(world.changed(kind), world.owners_of(kind, "Pod", world.changed("Pod")))


def _union(first: set[str] | None, second: set[str] | None) -> set[str] | None:
    """Both sets of keys together; None (all) when either is."""
    return None if first is None or second is None else first | second


def scaled_value(value: Any, replicas: int, round_up: bool) -> int:
    """An int-or-percent field (maxSurge, maxUnavailable) as a pod count of ``replicas``."""
    if isinstance(value, str) and value.endswith("%"):
        exact = replicas * int(value[:-1]) / 100
        return int(-(-exact // 1)) if round_up else int(exact // 1)
    return int(value or 0)


def _surge(spec: Mapping[str, Any], replicas: int) -> int:
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    return scaled_value(rolling.get("maxSurge", "25%"), replicas, round_up=True)


def _template_with_labels(template: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    out = deep_copy(dict(template))
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **extra}
    return out


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0"))
    except ValueError:
        return 0


def sync_deployments(world: World) -> None:
    """One ReplicaSet per pod template: the current one runs ``replicas`` pods, older ones are
    scaled to 0 and pruned to ``revisionHistoryLimit``; for the Deployments the change touched,
    or that own a touched ReplicaSet (all on a full pass)."""
    touched = world.changed("Deployment")
    owners = world.owners_of("Deployment", "ReplicaSet", world.changed("ReplicaSet"))
    for deploy in world.ordered_among("Deployment", _union(touched, owners)):
        meta, spec = deploy["metadata"], deploy["spec"]
        ns = meta["namespace"]
        template = spec["template"]
        pod_hash = template_hash(template)
        rs_name = f"{meta['name']}-{pod_hash}"
        owned = world.owned("ReplicaSet", deploy)
        top = max((_revision(rs) for rs in owned), default=0)
        current = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        revision = (
            _revision(current) if current is not None and _revision(current) == top else top + 1
        )
        selector = deep_copy(spec["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        replicas = spec.get("replicas", 1)
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": {
                    **((template.get("metadata") or {}).get("labels") or {}),
                    "pod-template-hash": pod_hash,
                },
                "annotations": {
                    DESIRED_ANNOTATION: str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + _surge(spec, replicas)),
                    REVISION_ANNOTATION: str(revision),
                },
                "ownerReferences": [owner_reference(deploy)],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": _template_with_labels(template, {"pod-template-hash": pod_hash}),
            },
            "status": deep_copy((current or {}).get("status") or {"replicas": 0}),
        }
        if current is not None:
            rs["metadata"]["generation"] = current["metadata"].get("generation", 1) + (
                current["spec"] != rs["spec"]
            )
        else:
            rs["metadata"]["generation"] = 1
        world.put(rs)
        for old in owned:
            if old["metadata"]["name"] != rs_name and old["spec"].get("replicas", 1) != 0:
                scaled = deep_copy(old)
                scaled["spec"]["replicas"] = 0
                scaled["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
                scaled["metadata"].setdefault("annotations", {})[DESIRED_ANNOTATION] = str(replicas)
                world.put(scaled)
        history = sorted(
            (o for o in world.owned("ReplicaSet", deploy) if o["metadata"]["name"] != rs_name),
            key=_revision,
        )
        limit = spec.get("revisionHistoryLimit", 10)
        for old in history[: max(0, len(history) - limit)]:
            world.remove("ReplicaSet", ns, old["metadata"]["name"])
        annotated = deep_copy(deploy)
        annotated["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = str(revision)
        world.put(annotated)


def new_pod(
    world: World,
    owner: Mapping[str, Any],
    name: str,
    template: Mapping[str, Any],
    extra_labels: Mapping[str, str],
    spec_updates: Mapping[str, Any] | None = None,
    generate_name: str | None = None,
) -> dict[str, Any]:
    """A pod created by a controller from its template, owned by ``owner``."""
    tmeta = template.get("metadata") or {}
    spec = pod_spec_for(template)
    spec.update(spec_updates or {})
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": {**(tmeta.get("labels") or {}), **extra_labels},
    }
    if generate_name:
        meta["generateName"] = generate_name
    if tmeta.get("annotations"):
        meta["annotations"] = deep_copy(tmeta["annotations"])
    meta["ownerReferences"] = [owner_reference(owner)]
    return world.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def _generated_name(world: World, owner: Mapping[str, Any], prefix: str) -> str:
    ns = owner["metadata"]["namespace"]
    while True:
        count = world.next_count(f"names/{owner['kind']}/{ns}/{owner['metadata']['name']}")
        name = prefix + short_hash(f"{ns}/{prefix}#{count}", 5)
        if world.find("Pod", ns, name) is None:
            return name


def sync_replicasets(world: World) -> None:
    """Keep exactly ``replicas`` pods per ReplicaSet, named ``<rs>-<5 chars>``; for the
    ReplicaSets the change touched, or that own a touched pod (all on a full pass)."""
    for rs in world.ordered_among("ReplicaSet", touched_with_pods(world, "ReplicaSet")):
        pods = world.owned("Pod", rs)
        want = rs["spec"].get("replicas", 1)
        for _ in range(want - len(pods)):
            prefix = rs["metadata"]["name"] + "-"
            new_pod(
                world,
                rs,
                _generated_name(world, rs, prefix),
                rs["spec"]["template"],
                {},
                generate_name=prefix,
            )
        if len(pods) > want:
            for pod in _deletion_order(world, pods)[: len(pods) - want]:
                world.remove("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])


def _deletion_order(world: World, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ReplicaSet controller's preference when scaling down: unscheduled, not running, not
    ready, on a crowded node, then the newest."""
    per_node = Counter(pod_node(p) for p in pods)

    def rank(pod: dict[str, Any]) -> tuple[bool, bool, bool, int, int, str]:
        node = pod_node(pod)
        return (
            bool(node),
            bool(world.facts(pod)["ip"]),
            world.is_ready(pod),
            -per_node[node],
            -world.created_seq("Pod", pod),
            pod["metadata"]["name"],
        )

    return sorted(pods, key=rank)


def _pin_to_node(spec: Mapping[str, Any], node_name: str) -> dict[str, Any]:
    """The pod's affinity with a required matchFields term for one node (as DaemonSets do)."""
    affinity = deep_copy(spec.get("affinity") or {})
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity.setdefault("nodeAffinity", {})["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [term]
    }
    return affinity


def sync_daemonsets(world: World) -> None:
    """One pod per eligible node, ``<ds>-<5 chars>``; a changed template replaces them (for the
    DaemonSets the change or their pods' changes touched; all on a full pass)."""
    for ds in world.ordered_among("DaemonSet", touched_with_pods(world, "DaemonSet")):
        meta = ds["metadata"]
        template = ds["spec"]["template"]
        revision = template_hash(template)
        spec = pod_spec_for(template)
        pods = world.owned("Pod", ds)
        for node in world.nodes:
            here = [p for p in pods if pod_node(p) == node["name"]]
            wanted = daemonset_wants(spec, node)
            keep = None
            if wanted:
                keep = next(
                    (p for p in here if labels_of(p).get(REVISION_HASH_LABEL) == revision), None
                )
            for pod in here:
                if pod is not keep:
                    world.remove("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
            if keep is None and wanted:
                prefix = meta["name"] + "-"
                new_pod(
                    world,
                    ds,
                    _generated_name(world, ds, prefix),
                    template,
                    {
                        REVISION_HASH_LABEL: revision,
                        "pod-template-generation": str(meta.get("generation", 1)),
                    },
                    {"affinity": _pin_to_node(spec, node["name"]), "nodeName": node["name"]},
                    generate_name=prefix,
                )


def sync_statefulsets(world: World) -> None:
    """Pods ``<name>-0`` .. ``<name>-(n-1)`` with hostname and subdomain; a changed template
    replaces them (for the StatefulSets the change or their pods' changes touched)."""
    for sts in world.ordered_among("StatefulSet", touched_with_pods(world, "StatefulSet")):
        meta, spec = sts["metadata"], sts["spec"]
        ns, name = meta["namespace"], meta["name"]
        revision = f"{name}-{template_hash(spec['template'])}"
        want = spec.get("replicas", 1)
        for pod in world.owned("Pod", sts):
            ordinal = pod["metadata"]["name"].rsplit("-", 1)[-1]
            stale = labels_of(pod).get(REVISION_HASH_LABEL) != revision
            if not ordinal.isdigit() or int(ordinal) >= want or stale:
                world.remove("Pod", ns, pod["metadata"]["name"])
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            if world.find("Pod", ns, pod_name) is not None:
                continue
            updates: dict[str, Any] = {"hostname": pod_name}
            if spec.get("serviceName"):
                updates["subdomain"] = spec["serviceName"]
            new_pod(
                world,
                sts,
                pod_name,
                spec["template"],
                {
                    REVISION_HASH_LABEL: revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                },
                updates,
            )
