"""Admission: what the API server checks, defaults and refuses when an object is applied.

``admit`` turns one manifest into the stored object (name, namespace, metadata, defaulted spec)
and raises a LabError naming the fix when the API server would refuse it. Services, whose
addresses and ports are allocated here, are admitted in ``service_admission``.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from typing import Any

from labkit.commands import DELETE, Shell
from labkit.errors import LabError
from labkit.manifests import api_version_of, describe, is_namespaced
from labkit.model.selectors import selector_matches
from labkit.sandbox.cluster.podspecs import admit_pod_spec, default_pod_spec
from labkit.sandbox.cluster.service_admission import admit_service
from labkit.sandbox.cluster.world import World, canonical_json, short_hash
from labkit.values import ObjectRef

MODELLED_KINDS = (
    "Namespace",
    "Pod",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Service",
    "Endpoints",
    "EndpointSlice",
    "NetworkPolicy",
    "Ingress",
    "IngressClass",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "CiliumNetworkPolicy",
)
"""Kinds ``apply`` accepts; anything else is refused with a pointer to the Kind backend."""
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"

Admitter = Callable[[World, Mapping[str, Any], dict[str, Any], dict[str, Any] | None, str], None]
"""Fills ``obj`` (the object to store) from the manifest ``doc``, given what is stored already
(``existing``); ``where`` names the object in error messages."""


def _not_modelled(doc: Mapping[str, Any]) -> LabError:
    """The error for a manifest of a kind the sandbox does not model."""
    kind = doc.get("kind") or "(no kind)"
    return LabError(
        f"The sandbox does not model {kind} ({describe(doc)})",
        f"Use --backend kind for {kind} objects (`labkit up --backend kind`), or leave them out.",
    )


def admit(world: World, doc: Mapping[str, Any], namespace: str | None) -> ObjectRef:
    """Check, default and store one object, as the API server would on ``kubectl apply``."""
    if not isinstance(doc, Mapping):
        raise LabError(
            f"Cannot apply a {type(doc).__name__}: it is not a Kubernetes object.",
            "Pass manifests as dicts (labkit.manifests.load reads files and YAML text).",
        )
    doc = without_nulls(doc)
    kind = str(doc.get("kind") or "")
    if kind not in MODELLED_KINDS:
        raise _not_modelled(doc)
    meta_in = doc.get("metadata") or {}
    namespaced = is_namespaced(kind)
    ns: str | None = (meta_in.get("namespace") or namespace or "default") if namespaced else None
    name = meta_in.get("name")
    if not name:
        prefix = meta_in.get("generateName")
        if not prefix:
            raise LabError(
                f"{describe(doc)} has no metadata.name",
                "Give every object a name under metadata.name.",
            )
        count = world.next_count(f"generateName/{kind}/{ns}/{prefix}")
        name = prefix + short_hash(f"{kind}/{ns}/{prefix}#{count}", 5)
    name = str(name)
    where = f"{kind} {ns}/{name}" if ns else f"{kind} {name}"
    if ns is not None and world.find("Namespace", None, ns) is None:
        raise LabError(
            f"Namespace {ns!r} does not exist, so {where} cannot be created",
            f"Apply a Namespace named {ns} first, or put its Namespace manifest before {where} in "
            "the same apply.",
        )
    existing = world.find(kind, ns, name)
    obj: dict[str, Any] = {
        "apiVersion": api_version_of(kind),
        "kind": kind,
        "metadata": _metadata(meta_in, name, ns, existing),
    }
    _ADMITTERS.get(kind, _admit_plain)(world, doc, obj, existing, where)
    world.put(obj)
    return ObjectRef(kind, name, ns)


def without_nulls(value: Any) -> Any:
    """A copy without the fields set to null: the API server reads null as "not set", so they
    get their defaults."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _metadata(
    meta_in: Mapping[str, Any], name: str, ns: str | None, existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if meta_in.get("generateName"):
        meta["generateName"] = meta_in["generateName"]
    labels = {str(k): str(v) for k, v in (meta_in.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (meta_in.get("annotations") or {}).items()}
    owners = copy.deepcopy(meta_in.get("ownerReferences") or [])
    old = (existing or {}).get("metadata") or {}
    if existing is not None and not owners and old.get("ownerReferences"):
        # An object a controller made keeps its owner and the labels the controller set.
        owners = copy.deepcopy(old["ownerReferences"])
        labels = {**(old.get("labels") or {}), **labels}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    if owners:
        meta["ownerReferences"] = owners
    if existing is not None and "generation" in old:
        meta["generation"] = old["generation"]
    return meta


def _body(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's fields other than apiVersion, kind, metadata and status (a copy)."""
    return {
        k: copy.deepcopy(v)
        for k, v in doc.items()
        if k not in ("apiVersion", "kind", "metadata", "status")
    }


def _spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the manifest's spec ({} when absent)."""
    return copy.deepcopy(dict(doc.get("spec") or {}))


def _admit_plain(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    obj.update(_body(doc))


def _admit_namespace(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}


def _check_node_name(world: World, spec: Mapping[str, Any], where: str) -> None:
    wanted = spec.get("nodeName")
    if wanted and world.node(wanted) is None:
        names = ", ".join(n["name"] for n in world.nodes)
        raise LabError(
            f"{where} asks for node {wanted!r}, which is not a node of this lab",
            f"Use one of: {names}; or drop spec.nodeName and let the scheduler choose.",
        )


def _admit_pod(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    spec_in = doc.get("spec") or {}
    spec = admit_pod_spec(default_pod_spec(spec_in))
    _check_node_name(world, spec, where)
    if existing is None:
        obj["spec"] = spec
        return
    old = copy.deepcopy(existing["spec"])
    if "nodeName" not in spec_in:
        old.pop("nodeName", None)
    if old != spec:
        changed = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
        fields = ", ".join(f"spec.{k}" for k in changed)
        raise LabError(
            f"{where} already exists and its spec cannot change ({fields} differ): a pod's spec is "
            f"fixed once it is created, only labels and annotations can be updated",
            f"Delete the pod first ({_delete(world, 'pod', obj['metadata'])}) and apply again, or "
            "run it from a Deployment, which replaces pods for you.",
        )
    obj["spec"] = copy.deepcopy(existing["spec"])
    obj["status"] = copy.deepcopy(existing.get("status") or {})


_WORKLOAD_DEFAULTS: dict[str, dict[str, Any]] = {
    "Deployment": {
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
    },
    "ReplicaSet": {"replicas": 1},
    "DaemonSet": {
        "revisionHistoryLimit": 10,
        "updateStrategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
        },
    },
    "StatefulSet": {
        "replicas": 1,
        "podManagementPolicy": "OrderedReady",
        "revisionHistoryLimit": 10,
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    },
}
_STATEFULSET_MUTABLE = {
    "replicas",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "ordinals",
    "revisionHistoryLimit",
}


def _admit_workload(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    kind = obj["kind"]
    spec = _spec(doc)
    selector = spec.get("selector") or {}
    template = spec.setdefault("template", {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        raise LabError(
            f"{where} has an empty spec.selector",
            "Select the pods by label, e.g. selector.matchLabels {app: web}, matching the "
            "template's labels.",
        )
    if not selector_matches(selector, labels):
        raise LabError(
            f"{where}: spec.selector does not match the labels of spec.template.metadata.labels "
            f"({labels or 'none'})",
            "Give the pod template the labels the selector asks for (or fix the selector).",
        )
    for key, value in _WORKLOAD_DEFAULTS[kind].items():
        spec.setdefault(key, copy.deepcopy(value))
    template["spec"] = default_pod_spec(template.get("spec"))
    _check_node_name(world, template["spec"], where)
    generation = 1
    if existing is not None:
        old_spec = existing["spec"]
        _check_workload_update(world, kind, old_spec, spec, obj["metadata"], where)
        generation = existing["metadata"].get("generation", 1) + (old_spec != spec)
        obj["status"] = copy.deepcopy(existing.get("status") or {})
    obj["metadata"]["generation"] = generation
    obj["spec"] = spec


def _check_workload_update(
    world: World,
    kind: str,
    old_spec: Mapping[str, Any],
    spec: Mapping[str, Any],
    meta: Mapping[str, Any],
    where: str,
) -> None:
    """Refuse changes to immutable fields: the selector, and most of a StatefulSet's spec."""
    if canonical_json(old_spec.get("selector")) != canonical_json(spec.get("selector") or {}):
        raise LabError(
            f"{where}: spec.selector cannot change once the {kind} exists",
            f"Delete the {kind} first ({_delete(world, kind.lower(), meta)}), then apply the new "
            "version.",
        )
    if kind == "StatefulSet":
        frozen = sorted(
            k
            for k in set(old_spec) | set(spec)
            if k not in _STATEFULSET_MUTABLE and old_spec.get(k) != spec.get(k)
        )
        if frozen:
            raise LabError(
                f"{where}: StatefulSet fields {', '.join('spec.' + k for k in frozen)} "
                "cannot change",
                "Delete the StatefulSet first, then apply the new version.",
            )


def _admit_network_policy(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    spec = _spec(doc)
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if "egress" in spec else [])
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in rule.get("ports") or []:
                port.setdefault("protocol", "TCP")
    obj["spec"] = spec


def _admit_cilium_policy(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    """Cilium's CRD is served only where Cilium runs; a policy the lab cannot enforce is
    refused rather than stored unenforced."""
    from labkit.sandbox.ciliumpolicy import policy_documents

    if world.cni != "cilium":
        raise LabError(
            f'no matches for kind "CiliumNetworkPolicy" in version "cilium.io/v2" ({where}): '
            f"this lab runs {world.cni}, which installs no Cilium CRDs.",
            "Use a NetworkPolicy, or a lab with --cni cilium.",
        )
    obj.update(_body(doc))
    policy_documents([], [obj])
    obj["status"] = {
        "conditions": [
            {
                "type": "Valid",
                "status": "True",
                "message": "Policy validation succeeded",
                "lastTransitionTime": world.timestamp(),
            }
        ]
    }


def _delete(world: World, kind: str, meta: Mapping[str, Any]) -> str:
    """How a learner deletes one object of this lab (to re-create it)."""
    shell = Shell("sandbox", world.lab_name)
    return shell(DELETE, kind=kind, name=str(meta["name"]), ns=str(meta["namespace"]))


def default_ingress_class(world: World) -> str | None:
    """Name of the IngressClass annotated as the cluster default, if any."""
    for ic in world.ordered("IngressClass"):
        if (ic["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            return str(ic["metadata"]["name"])
    return None


def _admit_ingress(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    spec = _spec(doc)
    legacy = (obj["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
    if not spec.get("ingressClassName") and not legacy:
        inherited = (existing or {}).get("spec", {}).get("ingressClassName")
        chosen = inherited or (default_ingress_class(world) if existing is None else None)
        if chosen:
            spec["ingressClassName"] = chosen
    obj["spec"] = spec
    obj["status"] = copy.deepcopy((existing or {}).get("status") or {"loadBalancer": {}})


def _admit_secret(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    body = _body(doc)
    data = dict(body.pop("data", None) or {})
    for key, value in (body.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj.update(body)
    obj.setdefault("type", "Opaque")
    if data:
        obj["data"] = data


_ADMITTERS: dict[str, Admitter] = {
    "Namespace": _admit_namespace,
    "Pod": _admit_pod,
    "Deployment": _admit_workload,
    "ReplicaSet": _admit_workload,
    "DaemonSet": _admit_workload,
    "StatefulSet": _admit_workload,
    "Service": admit_service,
    "NetworkPolicy": _admit_network_policy,
    "CiliumNetworkPolicy": _admit_cilium_policy,
    "Ingress": _admit_ingress,
    "Secret": _admit_secret,
}
