"""The sandbox's cluster state: API server, controllers, scheduler and IPAM in one pure object.

``ClusterStore`` takes Kubernetes manifests (already schema-checked by ``labkit.manifests``),
admits them like the API server (``labkit.sandbox.cluster.admission``: defaults, immutable fields,
address allocation), then lets the controllers (``labkit.sandbox.cluster.reconcile``) settle the
cluster. It never touches the system: the sandbox backend builds real namespaces from what
``pods()``, ``get()`` and ``nodes()`` say. Every change works on a fork that shares the state's
objects (``World.fork``; a controller puts new objects, never edits stored ones) and replaces the
state only when the whole batch succeeded (so the state is replaced, never edited in place, and
``peek``, ``snapshot`` and ``adopt`` share it without copying); its controllers sync only what the
change touched. The state is one JSON-ready
dict, so ``to_dict``/``from_dict`` round-trip exactly. Each change is stamped with its
``clock``'s reading (the sandbox lab gives the wall clock, so ages are true); a store without one
keeps the model's logical clock, and two such stores fed the same inputs are equal.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labkit.commands import ALL_POD_LABELS, OBJECTS, POD_DETAIL, Command, Shell
from labkit.errors import LabError
from labkit.manifests import canonical_kind, is_namespaced
from labkit.model.copying import deep_copy
from labkit.model.selectors import parse_selector_string, selector_matches
from labkit.sandbox import bootstrap as _bootstrap
from labkit.sandbox.cluster.admission import MODELLED_KINDS, admit
from labkit.sandbox.cluster.reconcile import reconcile
from labkit.sandbox.cluster.world import STORE_STATE_FORMAT, World, empty_state
from labkit.values import ObjectRef

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
NODE_ROLES = ("control-plane", "worker")
Clock = Callable[[], datetime]
"""Where a store reads the time of each change (timezone-aware)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of the lab: its name, role, address, pod CIDR and the block its pods' IPs come
    from."""

    name: str
    role: str
    internal_ip: str
    pod_cidr: str
    ipam_block: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)
    more_blocks: tuple[str, ...] = ()
    """Calico: the further /26 blocks its IPAM claimed for this node as the first ones filled."""

    def __hash__(self) -> int:
        # labels and taints are dicts, so hash the fields that identify the node.
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
            "more_blocks": list(self.more_blocks),
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
            more_blocks=tuple(data.get("more_blocks") or ()),
        )


def kind_like_nodes(lab_name: str, cni: str) -> list[NodeSpec]:
    """The three nodes of the team's address plan: ``<lab_name>-control-plane``, ``-worker``,
    ``-worker2``."""
    return [NodeSpec.from_dict(n) for n in _bootstrap.kind_nodes(lab_name, cni)]


class ClusterStore:
    """A Kubernetes-shaped cluster state that plays API server, controllers, scheduler and IPAM."""

    def __init__(
        self,
        lab_name: str,
        cni: str,
        nodes: list[NodeSpec],
        clock: Clock | None = None,
        born: datetime | None = None,
    ) -> None:
        """A cluster of ``nodes`` made at ``born`` (default: ``clock``'s reading, else the logical
        clock's start); ``clock`` stamps every later change (None: the logical clock)."""
        _bootstrap.check_cni(cni)
        _check_nodes(nodes)
        self._clock = clock
        if born is None and clock is not None:
            born = clock()
        self._state = empty_state(lab_name, cni, [n.to_dict() for n in nodes], born)
        reconcile(World(self._state))

    @classmethod
    def bootstrap(
        cls, lab_name: str, cni: str, clock: Clock | None = None, born: datetime | None = None
    ) -> ClusterStore:
        """A fresh Kind-like cluster: three nodes and the system objects of a Kind cluster with
        this CNI, all stamped with the time it was made (``born``, defaulting as for the
        constructor)."""
        _bootstrap.check_cni(cni)
        if born is None and clock is not None:
            born = clock()
        store = cls(lab_name, cni, kind_like_nodes(lab_name, cni), clock, born)
        nodes = [n.to_dict() for n in store.nodes()]
        store._apply(_bootstrap.system_manifests(lab_name, cni, nodes), None, born)
        return store

    # ------------------------------------------------------------------ identity and persistence
    @property
    def lab_name(self) -> str:
        """Name of the lab this cluster belongs to."""
        return World(self._state).lab_name

    def _shell(self, command: Command, **fields: str) -> str:
        """A command spelt for a learner on this sandbox lab (for an error's fix)."""
        return Shell("sandbox", self.lab_name)(command, **fields)

    @property
    def cni(self) -> str:
        """The CNI the cluster runs (``flannel`` or ``calico``)."""
        return World(self._state).cni

    @property
    def born(self) -> str:
        """When the cluster was made (RFC 3339): its nodes' creation time, when kube-proxy
        started on them."""
        return World(self._state).born()

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (a deep copy)."""
        return deep_copy(self._state)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], clock: Clock | None = None) -> ClusterStore:
        """Rebuild a store from ``to_dict`` output, its later changes stamped by ``clock`` (None:
        the logical clock); refuses data of another format."""
        _check_format(data)
        return cls.adopt(deep_copy(dict(data)), clock)

    @classmethod
    def adopt(cls, data: dict[str, Any], clock: Clock | None = None) -> ClusterStore:
        """``from_dict`` without the copy, for data nobody changes afterwards (a lab's cached
        state): at 300 pods and 500 Services a copy costs a tenth of a change (issue 18)."""
        _check_format(data)
        store = cls.__new__(cls)
        store._state = data
        store._clock = clock
        return store

    def snapshot(self) -> dict[str, Any]:
        """The state as ``to_dict`` gives it but shared, not copied: read-only, for a caller that
        saves it (the store itself only ever replaces it)."""
        return self._state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterStore) and self._state == other._state

    def __repr__(self) -> str:
        counts = {
            kind: len(table) for kind, table in sorted(self._state["objects"].items()) if table
        }
        return f"ClusterStore(lab_name={self.lab_name!r}, cni={self.cni!r}, objects={counts})"

    def _now(self) -> datetime | None:
        """The time of a change starting now: the clock's reading (None: the logical clock)."""
        return None if self._clock is None else self._clock()

    def _change(self, now: datetime | None) -> World:
        """A World for one change made at ``now``: it shares the settled state's objects, and its
        controllers work on what the change touched (``World.fork``)."""
        return World.fork(self._state, now)

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
        """Objects of a kind (kubectl spellings) like ``kubectl get -o json``; ``namespace=None``
        is all namespaces; ``selector`` is a ``-l`` string or a LabelSelector. Missing objects give
        []."""
        canonical = canonical_kind(kind)
        if name is not None and namespace is not None and is_namespaced(canonical):
            # one object by its key, not a sorted list of the kind (a probe's source pod)
            found = World(self._state).find(canonical, namespace, name)
            items = [] if found is None else [found]
        else:
            items = self.peek(canonical)
        if is_namespaced(canonical) and namespace is not None:
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        if name is not None:
            items = [o for o in items if o["metadata"]["name"] == name]
        label_selector = _label_selector(selector)
        if label_selector is not None:
            items = [
                o for o in items if selector_matches(label_selector, o["metadata"].get("labels"))
            ]
        return deep_copy(items)

    def peek(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind, in all namespaces, as ``get`` lists them but not copied:
        read-only, for the data plane, which reads each kind once per change (issue 18)."""
        canonical = canonical_kind(kind)
        if canonical == "Node":
            born = World(self._state).born()
            items = [
                _bootstrap.node_object(self.lab_name, self.cni, i, n, born)
                for i, n in enumerate(self._state["nodes"])
            ]
        else:
            items = list(self._state["objects"].get(canonical, {}).values())
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return items

    # ------------------------------------------------------------------ writes
    def apply(
        self, docs: Iterable[Mapping[str, Any]], namespace: str | None = None
    ) -> list[ObjectRef]:
        """Create or update objects like ``kubectl apply``, all or nothing; returns their refs in
        order.

        ``metadata.namespace`` wins over ``namespace``, which wins over ``default``.
        """
        return self._apply(docs, namespace, self._now())

    def _apply(
        self, docs: Iterable[Mapping[str, Any]], namespace: str | None, now: datetime | None
    ) -> list[ObjectRef]:
        """``apply`` as a change made at ``now`` (None: the logical clock)."""
        docs = list(docs)
        if not docs:
            return []
        world = self._change(now)
        world.tick()
        try:
            refs = [admit(world, doc, namespace) for doc in docs]
        except LabError as exc:
            raise LabError(
                f"{exc.what.rstrip('.')}; nothing was applied.", exc.fix, exc.output
            ) from None
        reconcile(world)
        self._state = world.state
        return refs

    def delete(self, refs: Iterable[ObjectRef | Mapping[str, Any]]) -> list[ObjectRef]:
        """Delete objects (refs, ref-like dicts or manifests), all or nothing, with their
        dependents.

        Returns the requested refs, then every other object that went with them (pods of a
        Deployment, everything in a Namespace, a Service's Endpoints and EndpointSlices).
        Controllers then do their job: a deleted Deployment pod is replaced under a new name.
        """
        world = self._change(self._now())
        targets: list[ObjectRef] = []
        for ref in refs:
            target = _deletion_target(ref)
            if target not in targets:
                targets.append(target)
        for target in targets:
            _check_deletable(world, target)
        if not targets:
            return []
        world.tick()
        before = _identities(world)
        for target in targets:
            kind, ns, name = target.kind, target.namespace, target.name
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
            before - _identities(world) - set(targets),
            key=lambda r: (r.kind, r.namespace or "", r.name),
        )
        self._state = world.state
        return targets + gone

    def set_pod_ready(self, namespace: str, name: str, ready: bool, reason: str = "") -> None:
        """Mark a running pod ready or not (the runtime's readiness probes call this); endpoints
        follow."""
        pod = World(self._state).find("Pod", namespace, name)
        if pod is None:
            raise LabError(
                f"There is no pod {namespace}/{name} to mark {'ready' if ready else 'not ready'}.",
                f"Check the name with {self._shell(ALL_POD_LABELS)}.",
            )
        facts = World(self._state).facts(pod)
        if not facts["ip"]:
            raise LabError(
                f"Pod {namespace}/{name} is not running (it is Pending), so it has no readiness.",
                f"Find out why it is Pending with "
                f"{self._shell(POD_DETAIL, pod=name, ns=namespace)}, fix that, then try again.",
            )
        wanted_reason = "" if ready else reason
        if facts["ready"] == bool(ready) and facts["readyReason"] == wanted_reason:
            return
        world = self._change(self._now())
        world.tick()
        facts = world.facts(pod)
        facts["ready"], facts["readyReason"] = bool(ready), wanted_reason
        reconcile(world)
        self._state = world.state


# ---------------------------------------------------------------------------------- helpers


def _check_nodes(nodes: list[NodeSpec]) -> None:
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise LabError(
            f"Node names must be unique, and these repeat: {repeated}.",
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


def _check_format(data: Any) -> None:
    """Refuse a saved store of another format (or none)."""
    if (
        not isinstance(data, Mapping)
        or data.get("format") != STORE_STATE_FORMAT
        or "objects" not in data
    ):
        raise LabError(
            "The saved sandbox state is not in a format this labkit understands.",
            "Run `labkit down` and then `labkit up` to start the lab afresh.",
        )


def _label_selector(selector: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if selector is None:
        return None
    if isinstance(selector, str):
        try:
            return parse_selector_string(selector)
        except ValueError as exc:
            raise LabError(
                f"The label selector {selector!r} does not parse: {exc}.",
                "Write it as a label selector, e.g. app=web,tier!=db or 'env in (a,b)'.",
            ) from None
    if set(selector) <= {"matchLabels", "matchExpressions"}:
        return dict(selector)
    return {"matchLabels": {str(k): str(v) for k, v in selector.items()}}


def _identities(world: World) -> set[ObjectRef]:
    return {
        ObjectRef(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        for obj in world.all_objects()
    }


def _deletion_target(ref: ObjectRef | Mapping[str, Any]) -> ObjectRef:
    """The object a delete request means, in canonical spelling; refuses what cannot go."""
    name: str | None
    ns: str | None
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
    return ObjectRef(kind, str(name), (ns or "default") if is_namespaced(kind) else None)


def _check_deletable(world: World, target: ObjectRef) -> None:
    kind, ns, name = target.kind, target.namespace, target.name
    if world.find(kind, ns, name) is None:
        where = f"{ns}/{name}" if ns else name
        raise LabError(
            f"{kind} {where} does not exist, so nothing was deleted.",
            f"Check the name and namespace with "
            f"{Shell('sandbox', world.lab_name)(OBJECTS, kind=kind.lower())}, then delete again.",
        )
    if kind == "Namespace" and name in PROTECTED_NAMESPACES:
        raise LabError(
            f"Namespace {name} is part of every cluster and cannot be deleted; nothing was "
            "deleted.",
            "Delete the objects inside it instead.",
        )
