"""The cluster's state: one JSON-ready dict, and ``World``, the accessors every controller uses.

The state holds the API objects by kind, creation order, counters, the IPAM cursor, and per pod
what the kubelet and CNI know (``PodFacts``). Names and uids derive from the inputs only (hashes).
Times come from the clock: whole seconds after ``EPOCH``, moved by each change to the ``now`` the
caller gives (the store passes the wall clock), never backwards; without a ``now`` it is a logical
clock, one second per change, so the same changes always give the same state.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict, cast

from labkit.model.addresses import parse_ip
from labkit.model.copying import deep_copy

KUBERNETES_VERSION = "v1.36.1"
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet Kubernetes uses for generated name suffixes and pod-template hashes (no vowels)."""

STORE_STATE_FORMAT = 1
"""Version of the state dict ``ClusterStore.to_dict`` writes; a saved state of another format
is refused."""


# --------------------------------------------------------------------------- small pure helpers


def short_hash(text: str, length: int) -> str:
    """``length`` characters of SAFE_CHARS derived from ``text`` (stable across runs and
    machines)."""
    number = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(SAFE_CHARS))
        chars.append(SAFE_CHARS[digit])
    return "".join(chars)


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value, whatever its key order (for hashing and comparing)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def template_hash(template: Mapping[str, Any]) -> str:
    """The 10-character ``pod-template-hash`` of a pod template."""
    return short_hash("template:" + canonical_json(template), 10)


def object_key(namespace: str | None, name: str) -> str:
    """Key of an object inside its kind's table: ``ns/name`` or ``name`` when cluster-scoped."""
    return f"{namespace}/{name}" if namespace else name


def key_of(obj: Mapping[str, Any]) -> str:
    """The table key of a stored object (see ``object_key``)."""
    return object_key(obj["metadata"].get("namespace"), obj["metadata"]["name"])


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The controller ownerReference a child of ``owner`` carries."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """uid of the object's controlling owner, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid is not None else None
    return None


def object_uid(lab_name: str, kind: str, namespace: str | None, name: str) -> str:
    """A uid derived from the lab and the object's identity, so rebuilt states compare equal."""
    identity = f"labkit://{lab_name}/{kind}/{namespace or ''}/{name}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, identity))


def clock_reading(now: datetime) -> int:
    """``now`` (timezone-aware) as a reading of the state's clock: whole seconds after ``EPOCH``,
    rounded down, as Kubernetes stamps whole seconds (negative before ``EPOCH``)."""
    return math.floor((now - EPOCH).total_seconds())


def rfc3339(reading: int) -> str:
    """A reading of the state's clock as the API's RFC 3339 time (``2026-01-01T00:00:04Z``)."""
    return (EPOCH + timedelta(seconds=reading)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ip_sort_key(ip: str) -> int:
    """Sort key that orders IPv4 addresses numerically."""
    return int(parse_ip(ip))


# --------------------------------------------------------------------------- the state


class PodFacts(TypedDict):
    """What the kubelet and CNI know of a pod, kept in the state beside its API object."""

    ip: str | None
    unschedulable: str | None
    ipError: str | None
    ready: bool
    readyReason: str


def empty_state(
    lab_name: str, cni: str, nodes: list[dict[str, Any]], born: datetime | None = None
) -> dict[str, Any]:
    """A cluster with nodes and nothing else, as the dict ``World`` works on; its clock starts at
    ``born`` (when the lab was made, which its nodes carry), or at ``EPOCH`` without one."""
    start = 0 if born is None else clock_reading(born)
    return {
        "format": STORE_STATE_FORMAT,
        "lab": lab_name,
        "cni": cni,
        "nodes": copy.deepcopy(nodes),
        "clock": start,
        "born": start,
        "resourceVersion": 0,
        "seq": 0,
        "objects": {},
        "created": {},
        "counters": {},
        "ipamCursor": {},
        "pods": {},
    }


def _same_but_version(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a stored object equals a new one but for its resourceVersion (read, not edited:
    the stored object may be shared with the state the change started from)."""
    if old.keys() != new.keys():
        return False
    meta = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
    return meta == new["metadata"] and all(old[k] == new[k] for k in new if k != "metadata")


class World:
    """The cluster's state (one JSON-ready dict) with the accessors controllers need; ``now`` is
    the time a change made through it happens at (None: the logical clock)."""

    def __init__(
        self, state: dict[str, Any], now: datetime | None = None, base: dict[str, Any] | None = None
    ) -> None:
        self.state = state
        self.now = now
        self.base = base
        """The settled state this change started from, whose objects ``state`` shares (``fork``);
        None: the controllers make full passes."""
        self._children: dict[str, dict[str, dict[str, None]]] = {}
        """Per kind, built on the first ``owned`` and kept by ``put``/``remove``: the keys of the
        objects each controller uid owns (the owner index a controller's informer keeps)."""

    @classmethod
    def fork(cls, state: dict[str, Any], now: datetime | None = None) -> World:
        """A change to the settled ``state`` that shares its objects (never edited in place: a
        controller puts a new object) and copies only the tables, counters, nodes and pod facts,
        so a change costs what it touches, not a deep copy of the cluster (issue 18)."""
        copied = {
            **state,
            "nodes": deep_copy(state["nodes"]),
            "objects": {kind: dict(table) for kind, table in state["objects"].items()},
            "created": dict(state["created"]),
            "counters": dict(state["counters"]),
            "ipamCursor": dict(state["ipamCursor"]),
            "pods": {key: cast(PodFacts, dict(f)) for key, f in state["pods"].items()},
        }
        return cls(copied, now, base=state)

    def changed(self, kind: str) -> set[str] | None:
        """Keys of the ``kind`` objects made, replaced or removed since ``base`` (Pods: also those
        whose facts moved), what a controller's informer would queue; None without a base."""
        if self.base is None:
            return None
        before = self.base["objects"].get(kind, {})
        now = self.state["objects"].get(kind, {})
        keys = {key for key, obj in now.items() if before.get(key) is not obj}
        keys |= before.keys() - now.keys()
        if kind == "Pod":
            facts = self.base["pods"]
            keys |= {key for key, f in self.state["pods"].items() if facts.get(key) != f}
        return keys

    def versions(self, kind: str, key: str) -> list[dict[str, Any]]:
        """The object under ``key`` as ``base`` held it and as it is now (those that exist)."""
        found = [self.state["objects"].get(kind, {}).get(key)]
        if self.base is not None:
            found.insert(0, self.base["objects"].get(kind, {}).get(key))
        return [obj for obj in found if obj is not None]

    def owners_of(self, kind: str, child_kind: str, child_keys: set[str] | None) -> set[str] | None:
        """Keys of the ``kind`` objects controlling a ``child_kind`` object under ``child_keys``,
        before or now (None: ``child_keys`` is None, a full pass)."""
        if child_keys is None:
            return None
        uids = {
            uid
            for key in child_keys
            for obj in self.versions(child_kind, key)
            if (uid := controller_uid(obj)) is not None
        }
        if not uids:
            return set()
        table = self.state["objects"].get(kind, {})
        return {key for key, obj in table.items() if obj["metadata"]["uid"] in uids}

    def ordered_among(self, kind: str, keys: set[str] | None) -> list[dict[str, Any]]:
        """``ordered(kind)`` restricted to ``keys`` (None: all of them)."""
        if keys is None:
            return self.ordered(kind)
        created = self.state["created"]
        table = self.state["objects"].get(kind, {})
        return sorted(
            (table[key] for key in keys if key in table),
            key=lambda o: created.get(f"{kind}/{key_of(o)}", 0),
        )

    # ---- identity and time
    @property
    def lab_name(self) -> str:
        """Name of the lab this cluster belongs to."""
        return str(self.state["lab"])

    @property
    def cni(self) -> str:
        """The CNI the cluster runs (``flannel`` or ``calico``)."""
        return str(self.state["cni"])

    @property
    def nodes(self) -> list[dict[str, Any]]:
        """The nodes (NodeSpec fields as dicts), control plane first."""
        return cast(list[dict[str, Any]], self.state["nodes"])

    def node(self, name: str | None) -> dict[str, Any] | None:
        """The node called ``name``, or None."""
        return next((n for n in self.nodes if n["name"] == name), None)

    def timestamp(self) -> str:
        """The time of the current change, as the API stamps it (RFC 3339, whole seconds)."""
        return rfc3339(int(self.state["clock"]))

    def born(self) -> str:
        """When the cluster was made, as the API stamps it: the time its nodes carry (``EPOCH``
        for a state saved before the cluster recorded it)."""
        return rfc3339(int(self.state.get("born", 0)))

    def tick(self) -> None:
        """Start a change: the clock moves to ``now``, or stays when ``now`` lies before it (the
        wall clock stepped back); without ``now`` it moves one second."""
        if self.now is None:
            self.state["clock"] += 1
        else:
            self.state["clock"] = max(int(self.state["clock"]), clock_reading(self.now))

    def uid(self, kind: str, namespace: str | None, name: str) -> str:
        """The uid an object of this identity gets in this lab."""
        return object_uid(self.lab_name, kind, namespace, name)

    def next_count(self, counter: str) -> int:
        """Bump and return a named counter (for generated names that never repeat)."""
        counters = self.state["counters"]
        counters[counter] = counters.get(counter, 0) + 1
        return int(counters[counter])

    # ---- objects
    def table(self, kind: str) -> dict[str, dict[str, Any]]:
        """The objects of a kind by ``object_key`` (created empty on first use)."""
        return cast(dict[str, dict[str, Any]], self.state["objects"].setdefault(kind, {}))

    def find(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        found = self.state["objects"].get(kind, {}).get(object_key(namespace, name))
        return cast(dict[str, Any] | None, found)

    def ordered(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind in creation order (optionally of one namespace)."""
        created = self.state["created"]
        items = [
            o
            for o in self.state["objects"].get(kind, {}).values()
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]
        return sorted(items, key=lambda o: created.get(f"{kind}/{key_of(o)}", 0))

    def owned(self, kind: str, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Objects of ``kind`` whose controller is ``owner``, in creation order; found through the
        owner index, not a scan of every object of the kind (issue 18)."""
        uid, namespace = owner["metadata"]["uid"], owner["metadata"].get("namespace")
        created = self.state["created"]
        table = self.state["objects"].get(kind, {})
        items = [
            table[key]
            for key in self._owner_index(kind).get(uid, ())
            if namespace is None or table[key]["metadata"].get("namespace") == namespace
        ]
        return sorted(items, key=lambda o: created.get(f"{kind}/{key_of(o)}", 0))

    def _owner_index(self, kind: str) -> dict[str, dict[str, None]]:
        """Controller uid -> keys of the ``kind`` objects it owns (built once per World)."""
        index = self._children.get(kind)
        if index is None:
            index = {}
            for key, obj in self.state["objects"].get(kind, {}).items():
                uid = controller_uid(obj)
                if uid is not None:
                    index.setdefault(uid, {})[key] = None
            self._children[kind] = index
        return index

    def _unindex(self, kind: str, key: str, obj: Mapping[str, Any] | None) -> None:
        index = self._children.get(kind)
        uid = None if obj is None or index is None else controller_uid(obj)
        if index is not None and uid is not None:
            index.get(uid, {}).pop(key, None)

    def created_seq(self, kind: str, obj: Mapping[str, Any]) -> int:
        """The object's place in creation order (0 when not stored)."""
        return int(self.state["created"].get(f"{kind}/{key_of(obj)}", 0))

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object; keeps uid and creationTimestamp, bumps resourceVersion
        only when the object changed (an unchanged one stays stored, and is returned)."""
        kind, meta = obj["kind"], obj["metadata"]
        key = object_key(meta.get("namespace"), meta["name"])
        table = self.table(kind)
        old = table.get(key)
        meta["uid"] = (
            old["metadata"]["uid"] if old else self.uid(kind, meta.get("namespace"), meta["name"])
        )
        meta["creationTimestamp"] = (
            old["metadata"]["creationTimestamp"] if old else self.timestamp()
        )
        if old is None:
            self.state["seq"] += 1
            self.state["created"][f"{kind}/{key}"] = self.state["seq"]
            if kind == "Pod":
                facts: PodFacts = {
                    "ip": None,
                    "unschedulable": None,
                    "ipError": None,
                    "ready": True,
                    "readyReason": "",
                }
                self.state["pods"][key] = facts
        meta.pop("resourceVersion", None)
        if old is not None and _same_but_version(old, obj):
            return old  # kept as it is: the change did not touch it
        self._unindex(kind, key, old)
        if kind in self._children and (uid := controller_uid(obj)) is not None:
            self._children[kind].setdefault(uid, {})[key] = None
        self.state["resourceVersion"] += 1
        meta["resourceVersion"] = str(self.state["resourceVersion"])
        table[key] = obj
        return obj

    def remove(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Drop an object (and a pod's facts); returns what was stored, or None."""
        key = object_key(namespace, name)
        obj = self.state["objects"].get(kind, {}).pop(key, None)
        self._unindex(kind, key, obj)
        self.state["created"].pop(f"{kind}/{key}", None)
        if kind == "Pod":
            self.state["pods"].pop(key, None)
        return cast(dict[str, Any] | None, obj)

    def all_objects(self) -> Iterable[dict[str, Any]]:
        """Every stored object, kind by kind."""
        for table in self.state["objects"].values():
            yield from table.values()

    def facts(self, pod: Mapping[str, Any]) -> PodFacts:
        """What the kubelet and CNI know of a pod: IP, scheduling failure, readiness."""
        return cast(PodFacts, self.state["pods"][key_of(pod)])

    def is_ready(self, pod: Mapping[str, Any]) -> bool:
        """Whether the pod runs and passes readiness, from the kubelet's facts (a pod's Ready
        condition is written from these only at the end of ``reconcile``)."""
        facts = self.facts(pod)
        return bool(facts["ip"]) and facts["ready"]
