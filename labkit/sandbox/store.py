"""The sandbox's cluster state: API server, controllers, scheduler and IPAM in one pure object.

``ClusterStore`` takes Kubernetes manifests (already schema-checked by ``labkit.manifests``),
admits them like the API server (defaults, immutable fields, address allocation), then lets the
controllers in ``labkit.sandbox.controllers`` settle the cluster. It never touches the system:
the sandbox backend builds real namespaces from what ``pods()``, ``get()`` and ``nodes()`` say.
Every change works on a copy that replaces the state only when the whole batch succeeded, and the
state is one JSON-ready dict, so ``to_dict``/``from_dict`` round-trip exactly and two stores fed
the same inputs are equal.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.errors import LabError
from labkit.manifests import api_version_of, canonical_kind, describe, is_namespaced
from labkit.model.selectors import parse_selector_string, selector_matches
from labkit.sandbox import bootstrap as _bootstrap
from labkit.sandbox.controllers import (
    FIXED_CLUSTER_IPS,
    LB_POOL,
    NODE_PORT_MAX,
    NODE_PORT_MIN,
    SERVICE_CIDR,
    STORE_STATE_FORMAT,
    World,
    admit_pod_spec,
    allocate_cluster_ip,
    allocate_node_port,
    canonical_json,
    cluster_ip_holder,
    default_ingress_class,
    default_pod_spec,
    empty_state,
    load_balancer_ip,
    node_port_holder,
    reconcile,
    short_hash,
)
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
)
"""Kinds ``apply`` accepts; anything else is refused with a pointer to the Kind backend."""
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
NODE_ROLES = ("control-plane", "worker")


@dataclass(frozen=True)
class NodeSpec:
    """One node of the lab: its name, role, address, pod CIDR and the block its pods' IPs come from."""

    name: str
    role: str
    internal_ip: str
    pod_cidr: str
    ipam_block: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)

    def __hash__(self) -> int:
        return hash((self.name, self.role, self.internal_ip, self.pod_cidr, self.ipam_block))

    def to_dict(self) -> dict[str, Any]:
        """The node as plain JSON data."""
        return {
            "name": self.name,
            "role": self.role,
            "internal_ip": self.internal_ip,
            "pod_cidr": self.pod_cidr,
            "ipam_block": self.ipam_block,
            "labels": dict(self.labels),
            "taints": copy.deepcopy(list(self.taints)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeSpec:
        """Rebuild a node from ``to_dict`` output."""
        return cls(
            name=data["name"],
            role=data["role"],
            internal_ip=data["internal_ip"],
            pod_cidr=data["pod_cidr"],
            ipam_block=data["ipam_block"],
            labels=dict(data.get("labels") or {}),
            taints=copy.deepcopy(list(data.get("taints") or [])),
        )


def kind_like_nodes(lab: str, cni: str) -> list[NodeSpec]:
    """The three nodes of the team's address plan: ``<lab>-control-plane``, ``-worker``, ``-worker2``."""
    return [NodeSpec.from_dict(n) for n in _bootstrap.kind_nodes(lab, cni)]


class ClusterStore:
    """A Kubernetes-shaped cluster state that plays API server, controllers, scheduler and IPAM."""

    def __init__(self, lab: str, cni: str, nodes: list[NodeSpec]) -> None:
        _bootstrap.check_cni(cni)
        _check_nodes(nodes)
        self._state = empty_state(lab, cni, [n.to_dict() for n in nodes])
        reconcile(World(self._state))

    @classmethod
    def bootstrap(cls, lab: str, cni: str) -> ClusterStore:
        """A fresh Kind-like cluster: three nodes and the system objects of a Kind cluster with this CNI."""
        _bootstrap.check_cni(cni)
        store = cls(lab, cni, kind_like_nodes(lab, cni))
        store.apply(_bootstrap.system_manifests(lab, cni, [n.to_dict() for n in store.nodes()]))
        return store

    # ------------------------------------------------------------------ identity and persistence
    @property
    def lab(self) -> str:
        return self._state["lab"]

    @property
    def cni(self) -> str:
        return self._state["cni"]

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (a deep copy)."""
        return copy.deepcopy(self._state)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterStore:
        """Rebuild a store from ``to_dict`` output; refuses data of another format."""
        if (
            not isinstance(data, Mapping)
            or data.get("format") != STORE_STATE_FORMAT
            or "objects" not in data
        ):
            raise LabError(
                "The saved sandbox state is not in a format this labkit understands.",
                "Run `labkit down` and then `labkit up` to start the lab afresh.",
            )
        store = cls.__new__(cls)
        store._state = copy.deepcopy(dict(data))
        return store

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterStore) and self._state == other._state

    def __repr__(self) -> str:
        counts = {
            kind: len(table) for kind, table in sorted(self._state["objects"].items()) if table
        }
        return f"ClusterStore(lab={self.lab!r}, cni={self.cni!r}, objects={counts})"

    # ------------------------------------------------------------------ reads
    def nodes(self) -> list[NodeSpec]:
        """The lab's nodes, control plane first."""
        return [NodeSpec.from_dict(n) for n in self._state["nodes"]]

    def pods(self) -> list[dict[str, Any]]:
        """Every pod with its status, sorted by namespace then name."""
        return self.get("Pod", namespace=None)

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects of a kind (kubectl spellings) like ``kubectl get -o json``; ``namespace=None`` is
        all namespaces; ``selector`` is a ``-l`` string or a LabelSelector. Missing objects give []."""
        canonical = canonical_kind(kind)
        if canonical == "Node":
            items = [
                _bootstrap.node_object(self.lab, self.cni, i, n)
                for i, n in enumerate(self._state["nodes"])
            ]
        else:
            items = list(self._state["objects"].get(canonical, {}).values())
        if is_namespaced(canonical) and namespace is not None:
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        if name is not None:
            items = [o for o in items if o["metadata"]["name"] == name]
        label_selector = _label_selector(selector)
        if label_selector is not None:
            items = [
                o for o in items if selector_matches(label_selector, o["metadata"].get("labels"))
            ]
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return copy.deepcopy(items)

    # ------------------------------------------------------------------ writes
    def apply(self, docs: list[dict], namespace: str | None = None) -> list[ObjectRef]:
        """Create or update objects like ``kubectl apply``, all or nothing; returns their refs in order.

        ``metadata.namespace`` wins over ``namespace``, which wins over ``default``.
        """
        docs = list(docs)
        if not docs:
            return []
        world = World(copy.deepcopy(self._state))
        world.tick()
        try:
            refs = [_admit(world, doc, namespace) for doc in docs]
        except LabError as exc:
            raise LabError(
                f"{exc.what.rstrip('.')}; nothing was applied.", exc.fix, exc.output
            ) from None
        reconcile(world)
        self._state = world.state
        return refs

    def delete(self, refs: Iterable[ObjectRef | Mapping[str, Any]]) -> list[ObjectRef]:
        """Delete objects (refs, ref-like dicts or manifests), all or nothing, with their dependents.

        Returns the requested refs, then every other object that went with them (pods of a
        Deployment, everything in a Namespace, a Service's Endpoints and EndpointSlices).
        Controllers then do their job: a deleted Deployment pod is replaced under a new name.
        """
        world = World(copy.deepcopy(self._state))
        targets: list[tuple[str, str | None, str]] = []
        for ref in refs:
            target = _ref_parts(ref)
            if target not in targets:
                targets.append(target)
        for kind, ns, name in targets:
            _check_deletable(world, kind, ns, name)
        if not targets:
            return []
        world.tick()
        before = set(_identities(world))
        for kind, ns, name in targets:
            if world.find(kind, ns, name) is None:
                continue  # already removed with an earlier target (e.g. its namespace)
            if kind == "Namespace":
                for obj in list(world.all_objects()):
                    if obj["metadata"].get("namespace") == name:
                        world.remove(obj["kind"], name, obj["metadata"]["name"])
            elif kind == "Service":
                world.remove("Endpoints", ns, name)
            world.remove(kind, ns, name)
        reconcile(world)
        gone = sorted(
            before - set(_identities(world)) - set(targets), key=lambda t: (t[0], t[1] or "", t[2])
        )
        self._state = world.state
        return [ObjectRef(k, n, ns) for k, ns, n in targets + gone]

    def set_pod_ready(self, namespace: str, name: str, ready: bool, reason: str = "") -> None:
        """Mark a running pod ready or not (the runtime's readiness probes call this); endpoints follow."""
        pod = World(self._state).find("Pod", namespace, name)
        if pod is None:
            raise LabError(
                f"There is no pod {namespace}/{name} to mark {'ready' if ready else 'not ready'}.",
                "Check the name with `kubectl get pods -A` (lab.get('pods', namespace=None)).",
            )
        facts = World(self._state).facts(pod)
        if not facts["ip"]:
            raise LabError(
                f"Pod {namespace}/{name} is not running (it is Pending), so it has no readiness.",
                "Find out why it is Pending with `kubectl describe pod`, fix that, then try again.",
            )
        wanted_reason = "" if ready else reason
        if facts["ready"] == bool(ready) and facts["readyReason"] == wanted_reason:
            return
        world = World(copy.deepcopy(self._state))
        world.tick()
        facts = world.facts(pod)
        facts["ready"], facts["readyReason"] = bool(ready), wanted_reason
        reconcile(world)
        self._state = world.state


# ---------------------------------------------------------------------------------- helpers


def _check_nodes(nodes: list[NodeSpec]) -> None:
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise LabError(
            f"Node names must be unique, and these repeat: {sorted({n for n in names if names.count(n) > 1})}.",
            "Give every node its own name.",
        )
    for node in nodes:
        if node.role not in NODE_ROLES:
            raise LabError(
                f"Node {node.name} has role {node.role!r}.", f"Use one of: {', '.join(NODE_ROLES)}."
            )
        try:
            ipaddress.ip_address(node.internal_ip)
            ipaddress.ip_network(node.pod_cidr, strict=False)
            ipaddress.ip_network(node.ipam_block, strict=False)
        except ValueError as exc:
            raise LabError(
                f"Node {node.name} has an address that does not parse ({exc}).",
                "Give internal_ip as an address and pod_cidr/ipam_block as CIDRs.",
            ) from None


def _label_selector(selector: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if selector is None:
        return None
    if isinstance(selector, str):
        try:
            return parse_selector_string(selector)
        except ValueError as exc:
            raise LabError(
                f"The label selector {selector!r} does not parse: {exc}.",
                "Write it like kubectl's -l, e.g. app=web,tier!=db or 'env in (a,b)'.",
            ) from None
    if set(selector) <= {"matchLabels", "matchExpressions"}:
        return dict(selector)
    return {"matchLabels": {str(k): str(v) for k, v in selector.items()}}


def _identities(world: World) -> Iterable[tuple[str, str | None, str]]:
    for obj in world.all_objects():
        yield obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def _ref_parts(ref: ObjectRef | Mapping[str, Any]) -> tuple[str, str | None, str]:
    if isinstance(ref, ObjectRef):
        spelled, name, ns = ref.kind, ref.name, ref.namespace
    elif isinstance(ref, Mapping):
        if "metadata" in ref:
            meta = ref.get("metadata") or {}
            spelled, name, ns = str(ref.get("kind", "")), meta.get("name"), meta.get("namespace")
        else:
            spelled, name, ns = str(ref.get("kind", "")), ref.get("name"), ref.get("namespace")
    else:
        raise LabError(
            f"Cannot delete {ref!r}: it is neither an ObjectRef nor a manifest.",
            "Pass ObjectRef objects, dicts with kind/name/namespace, or manifests.",
        )
    try:
        kind = canonical_kind(spelled)
    except LabError:
        kind = spelled
    if not name:
        raise LabError(
            f"Cannot delete a {kind or 'object'} without a name.",
            "Give the name of the object to delete.",
        )
    if kind == "Node":
        raise LabError(
            f"Node {name} cannot be deleted: the sandbox's three nodes are fixed.",
            "Use --backend kind to experiment with adding and removing nodes.",
        )
    if kind not in MODELLED_KINDS:
        raise LabError(
            f"The sandbox does not model {kind}, so there is no {kind} {name} to delete.",
            f"Use --backend kind for {kind} objects.",
        )
    return kind, ((ns or "default") if is_namespaced(kind) else None), str(name)


def _check_deletable(world: World, kind: str, ns: str | None, name: str) -> None:
    if world.find(kind, ns, name) is None:
        where = f"{ns}/{name}" if ns else name
        raise LabError(
            f"{kind} {where} does not exist, so nothing was deleted.",
            f"Check the name and namespace with `kubectl get {kind.lower()} -A`, then delete again.",
        )
    if kind == "Namespace" and name in PROTECTED_NAMESPACES:
        raise LabError(
            f"Namespace {name} is part of every cluster and cannot be deleted; nothing was deleted.",
            "Delete the objects inside it instead.",
        )


def _not_modelled(doc: Mapping[str, Any]) -> LabError:
    kind = doc.get("kind") or "(no kind)"
    return LabError(
        f"The sandbox does not model {kind} ({describe(doc)})",
        f"Use --backend kind for {kind} objects (`labkit up --backend kind`), or leave them out.",
    )


# ---------------------------------------------------------------------------------- admission


def _admit(world: World, doc: Mapping[str, Any], namespace: str | None) -> ObjectRef:
    """Check, default and store one object, as the API server would on ``kubectl apply``."""
    if not isinstance(doc, Mapping):
        raise LabError(
            f"Cannot apply a {type(doc).__name__}: it is not a Kubernetes object.",
            "Pass manifests as dicts (labkit.manifests.load reads files and YAML text).",
        )
    kind = str(doc.get("kind") or "")
    if kind not in MODELLED_KINDS:
        raise _not_modelled(doc)
    meta_in = doc.get("metadata") or {}
    namespaced = is_namespaced(kind)
    ns = (meta_in.get("namespace") or namespace or "default") if namespaced else None
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
    where = f"{kind} {ns}/{name}" if ns else f"{kind} {name}"
    if namespaced and world.find("Namespace", None, ns) is None:
        raise LabError(
            f"Namespace {ns!r} does not exist, so {where} cannot be created",
            f"Create the namespace first (`kubectl create namespace {ns}`), or put its Namespace "
            f"manifest before {where} in the same apply.",
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
    return {
        k: copy.deepcopy(v)
        for k, v in doc.items()
        if k not in ("apiVersion", "kind", "metadata", "status")
    }


def _admit_plain(
    world: World, doc: Mapping[str, Any], obj: dict[str, Any], existing, where: str
) -> None:
    obj.update(_body(doc))


def _admit_namespace(world: World, doc, obj, existing, where: str) -> None:
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
        "name"
    ]
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


def _admit_pod(world: World, doc, obj, existing, where: str) -> None:
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
            f"Delete the pod first (`kubectl delete pod {obj['metadata']['name']} -n "
            f"{obj['metadata']['namespace']}`) and apply again, or run it from a Deployment, "
            f"which replaces pods for you.",
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


def _admit_workload(world: World, doc, obj, existing, where: str) -> None:
    kind = obj["kind"]
    spec = _body(doc).get("spec") or {}
    selector = spec.get("selector") or {}
    template = spec.setdefault("template", {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        raise LabError(
            f"{where} has an empty spec.selector",
            "Select the pods by label, e.g. selector.matchLabels {app: web}, matching the template's labels.",
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
        if canonical_json(old_spec.get("selector")) != canonical_json(selector):
            raise LabError(
                f"{where}: spec.selector cannot change once the {kind} exists",
                f"Delete the {kind} first (`kubectl delete {kind.lower()} {obj['metadata']['name']} -n "
                f"{obj['metadata']['namespace']}`), then apply the new version.",
            )
        if kind == "StatefulSet":
            frozen = sorted(
                k
                for k in set(old_spec) | set(spec)
                if k not in _STATEFULSET_MUTABLE and old_spec.get(k) != spec.get(k)
            )
            if frozen:
                raise LabError(
                    f"{where}: StatefulSet fields {', '.join('spec.' + k for k in frozen)} cannot change",
                    "Delete the StatefulSet first, then apply the new version.",
                )
        generation = existing["metadata"].get("generation", 1) + (old_spec != spec)
        obj["status"] = copy.deepcopy(existing.get("status") or {})
    obj["metadata"]["generation"] = generation
    obj["spec"] = spec


def _service_where(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def _admit_service(world: World, doc, obj, existing, where: str) -> None:
    ns, name = _service_where(obj)
    spec = _body(doc).get("spec") or {}
    svc_type = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    ports = spec.get("ports") or []
    for port in ports:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
        if port.get("nodePort") and svc_type not in ("NodePort", "LoadBalancer"):
            raise LabError(
                f"{where} sets nodePort {port['nodePort']} but is of type {svc_type}",
                "Set type: NodePort (or LoadBalancer), or remove the nodePort field.",
            )
    obj["status"] = {"loadBalancer": {}}
    if svc_type == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(key, None)
        obj["spec"] = spec
        return
    old_spec = (
        existing["spec"]
        if existing is not None and existing["spec"].get("type") != "ExternalName"
        else None
    )
    requested = spec.get("clusterIP") or None
    if old_spec is not None:
        current = old_spec.get("clusterIP")
        if requested is None:
            requested = current
        elif requested != current:
            raise LabError(
                f"{where} has clusterIP {current}, which cannot change to {requested}",
                f"Leave spec.clusterIP out to keep {current}, or delete the Service and apply it again.",
            )
    if requested == "None":
        if svc_type != "ClusterIP":
            raise LabError(
                f"{where} is headless (clusterIP: None) but of type {svc_type}",
                "Only a ClusterIP Service can be headless: set type: ClusterIP or remove clusterIP: None.",
            )
        ip = "None"
    elif requested:
        ip = _check_requested_cluster_ip(world, requested, ns, name, where)
    else:
        ip = allocate_cluster_ip(world, ns, name)
        if ip is None:
            raise LabError(
                f"No ClusterIP is free in {SERVICE_CIDR} for {where}",
                "Delete Services you no longer need, then apply again.",
            )
    spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if svc_type in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        _assign_node_ports(world, spec, old_spec, ns, name, where)
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
        wanted = spec.get("loadBalancerIP")
        if wanted:
            _check_load_balancer_ip(world, wanted, ns, name, where)
        if (
            existing is not None
            and existing["spec"].get("type") == "LoadBalancer"
            and (not wanted or wanted == load_balancer_ip(existing))
        ):
            obj["status"] = copy.deepcopy(existing.get("status") or {"loadBalancer": {}})
    obj["spec"] = spec


def _check_requested_cluster_ip(
    world: World, requested: str, ns: str, name: str, where: str
) -> str:
    try:
        address = ipaddress.ip_address(requested)
    except ValueError:
        raise LabError(
            f"{where} asks for clusterIP {requested!r}, which is not an IP address",
            "Give an address in 10.96.0.0/16, 'None' for a headless Service, or leave it out.",
        ) from None
    if address not in SERVICE_CIDR or address in (
        SERVICE_CIDR.network_address,
        SERVICE_CIDR.broadcast_address,
    ):
        raise LabError(
            f"{where} asks for clusterIP {requested}, outside the service range {SERVICE_CIDR}",
            f"Pick an address inside {SERVICE_CIDR}, or leave clusterIP out to get one.",
        )
    holder = cluster_ip_holder(world, requested, ns, name)
    if holder is None and requested in FIXED_CLUSTER_IPS.values():
        owner = next(k for k, v in FIXED_CLUSTER_IPS.items() if v == requested)
        if owner != (ns, name) and world.find("Service", *owner) is not None:
            holder = "/".join(owner)
    if holder is not None:
        raise LabError(
            f"{where} asks for clusterIP {requested}, which Service {holder} already has",
            "Pick another address, or leave clusterIP out to get a free one.",
        )
    return requested


def _assign_node_ports(
    world: World,
    spec: dict[str, Any],
    old_spec: Mapping[str, Any] | None,
    ns: str,
    name: str,
    where: str,
) -> None:
    in_service: dict[int, set[str]] = {}
    old_ports = (old_spec or {}).get("ports") or []
    for port in spec.get("ports") or []:
        protocol = port["protocol"]
        number = port.get("nodePort")
        if number:
            if not NODE_PORT_MIN <= int(number) <= NODE_PORT_MAX:
                raise LabError(
                    f"{where} asks for nodePort {number}, outside {NODE_PORT_MIN}-{NODE_PORT_MAX}",
                    f"Pick a port between {NODE_PORT_MIN} and {NODE_PORT_MAX}, or leave nodePort out.",
                )
            holder = node_port_holder(world, int(number), ns, name)
            if holder is not None:
                raise LabError(
                    f"{where} asks for nodePort {number}, which Service {holder} already uses",
                    f"Pick another port in {NODE_PORT_MIN}-{NODE_PORT_MAX}, or leave nodePort out to get a free one.",
                )
            if protocol in in_service.get(int(number), set()):
                raise LabError(
                    f"{where} uses nodePort {number} twice for {protocol}",
                    "Give each port of the Service its own nodePort.",
                )
        else:
            number = _previous_node_port(port, old_ports, in_service)
            if number is None or node_port_holder(world, number, ns, name) is not None:
                port_id = f"{port.get('name') or port['port']}/{protocol}"
                number = allocate_node_port(world, ns, name, port_id, set(in_service))
            if number is None:
                raise LabError(
                    f"No NodePort is free in {NODE_PORT_MIN}-{NODE_PORT_MAX} for {where}",
                    "Delete NodePort Services you no longer need, then apply again.",
                )
        port["nodePort"] = int(number)
        in_service.setdefault(int(number), set()).add(protocol)


def _previous_node_port(
    port: Mapping[str, Any], old_ports: list[Mapping[str, Any]], in_service: Mapping[int, set[str]]
) -> int | None:
    """The nodePort this port had before an update (matched by port+protocol, then by name)."""
    for old in old_ports:
        same_port = (
            old.get("port") == port["port"] and old.get("protocol", "TCP") == port["protocol"]
        )
        same_name = bool(port.get("name")) and old.get("name") == port.get("name")
        number = old.get("nodePort")
        if (
            (same_port or same_name)
            and number
            and port["protocol"] not in in_service.get(number, set())
        ):
            return int(number)
    return None


def _check_load_balancer_ip(world: World, wanted: str, ns: str, name: str, where: str) -> None:
    if wanted not in LB_POOL:
        raise LabError(
            f"{where} asks for loadBalancerIP {wanted}, outside the pool {LB_POOL[0]}-{LB_POOL[-1]}",
            "Pick an address from the pool, or leave loadBalancerIP out to get one.",
        )
    for svc in world.ordered("Service"):
        other = svc["metadata"]
        if (other["namespace"], other["name"]) == (ns, name) or svc["spec"].get(
            "type"
        ) != "LoadBalancer":
            continue
        if wanted in (load_balancer_ip(svc), svc["spec"].get("loadBalancerIP")):
            raise LabError(
                f"{where} asks for loadBalancerIP {wanted}, which Service "
                f"{other['namespace']}/{other['name']} already has",
                "Pick another address from the pool, or leave loadBalancerIP out.",
            )


def _admit_network_policy(world: World, doc, obj, existing, where: str) -> None:
    spec = _body(doc).get("spec") or {}
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if "egress" in spec else [])
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in rule.get("ports") or []:
                port.setdefault("protocol", "TCP")
    obj["spec"] = spec


def _admit_ingress(world: World, doc, obj, existing, where: str) -> None:
    spec = _body(doc).get("spec") or {}
    legacy = (obj["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
    if not spec.get("ingressClassName") and not legacy:
        inherited = (existing or {}).get("spec", {}).get("ingressClassName")
        chosen = inherited or (default_ingress_class(world) if existing is None else None)
        if chosen:
            spec["ingressClassName"] = chosen
    obj["spec"] = spec
    obj["status"] = copy.deepcopy((existing or {}).get("status") or {"loadBalancer": {}})


def _admit_secret(world: World, doc, obj, existing, where: str) -> None:
    body = _body(doc)
    data = dict(body.pop("data", None) or {})
    for key, value in (body.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj.update(body)
    obj.setdefault("type", "Opaque")
    if data:
        obj["data"] = data


_ADMITTERS = {
    "Namespace": _admit_namespace,
    "Pod": _admit_pod,
    "Deployment": _admit_workload,
    "ReplicaSet": _admit_workload,
    "DaemonSet": _admit_workload,
    "StatefulSet": _admit_workload,
    "Service": _admit_service,
    "NetworkPolicy": _admit_network_policy,
    "Ingress": _admit_ingress,
    "Secret": _admit_secret,
}
