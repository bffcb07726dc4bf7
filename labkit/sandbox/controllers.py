"""What the sandbox's control plane does after every change: controllers, scheduler, IPAM.

Everything here is pure: it reads and rewrites one JSON-ready state dict (wrapped by ``World``)
and never touches the system. ``reconcile`` runs the loops a real cluster runs (garbage
collector, Deployment / ReplicaSet / DaemonSet / StatefulSet controllers, scheduler, CNI IPAM,
LoadBalancer allocator, EndpointSlice and Endpoints controllers, status writers) in one
deterministic pass, so the same inputs always give the same names, nodes and addresses.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from labkit.model.selectors import equality_selector_matches

KUBERNETES_VERSION = "v1.36.1"
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
FIXED_CLUSTER_IPS = {
    ("default", "kubernetes"): "10.96.0.1",
    ("kube-system", "kube-dns"): "10.96.0.10",
}
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767
LB_POOL = tuple(f"172.18.255.{i}" for i in range(200, 251))
API_SERVER_PORT = 6443
INGRESS_NAMESPACE, INGRESS_SERVICE, INGRESS_CLASS = "ingress-system", "ingress-controller", "labkit"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
SLICE_MIRROR = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet Kubernetes uses for generated name suffixes and pod-template hashes (no vowels)."""

STORE_STATE_FORMAT = 1


# --------------------------------------------------------------------------- small pure helpers


def short_hash(text: str, length: int) -> str:
    """``length`` characters of SAFE_CHARS derived from ``text`` (stable across runs and machines)."""
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
            return ref.get("uid")
    return None


def object_uid(lab: str, kind: str, namespace: str | None, name: str) -> str:
    """A uid derived from the lab and the object's identity, so rebuilt states compare equal."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"labkit://{lab}/{kind}/{namespace or ''}/{name}"))


def ip_sort_key(ip: str) -> int:
    """Sort key that orders IPv4 addresses numerically."""
    return int(ipaddress.ip_address(ip))


# --------------------------------------------------------------------------- the state


def empty_state(lab: str, cni: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A cluster with nodes and nothing else, as the dict ``World`` works on."""
    return {
        "format": STORE_STATE_FORMAT,
        "lab": lab,
        "cni": cni,
        "nodes": copy.deepcopy(nodes),
        "clock": 0,
        "resourceVersion": 0,
        "seq": 0,
        "objects": {},
        "created": {},
        "counters": {},
        "ipamCursor": {},
        "pods": {},
    }


class World:
    """The cluster's state (one JSON-ready dict) with the accessors controllers need."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    # ---- identity and time
    @property
    def lab(self) -> str:
        return self.state["lab"]

    @property
    def cni(self) -> str:
        return self.state["cni"]

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return self.state["nodes"]

    def node(self, name: str | None) -> dict[str, Any] | None:
        return next((n for n in self.nodes if n["name"] == name), None)

    def timestamp(self) -> str:
        """The logical clock as an RFC 3339 time (one second per change made to the cluster)."""
        return (EPOCH + timedelta(seconds=self.state["clock"])).strftime("%Y-%m-%dT%H:%M:%SZ")

    def tick(self) -> None:
        self.state["clock"] += 1

    def uid(self, kind: str, namespace: str | None, name: str) -> str:
        return object_uid(self.lab, kind, namespace, name)

    def next_count(self, counter: str) -> int:
        counters = self.state["counters"]
        counters[counter] = counters.get(counter, 0) + 1
        return counters[counter]

    # ---- objects
    def table(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.state["objects"].setdefault(kind, {})

    def find(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.state["objects"].get(kind, {}).get(object_key(namespace, name))

    def ordered(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind in creation order (optionally of one namespace)."""
        created = self.state["created"]
        items = [
            o
            for o in self.state["objects"].get(kind, {}).values()
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]
        return sorted(items, key=lambda o: created.get(f"{kind}/{_key_of(o)}", 0))

    def owned(self, kind: str, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Objects of ``kind`` whose controller is ``owner``, in creation order."""
        uid = owner["metadata"]["uid"]
        return [
            o
            for o in self.ordered(kind, owner["metadata"].get("namespace"))
            if controller_uid(o) == uid
        ]

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object; keeps uid and creationTimestamp, bumps resourceVersion on change."""
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
                self.state["pods"][key] = {
                    "ip": None,
                    "unschedulable": None,
                    "ipError": None,
                    "ready": True,
                    "readyReason": "",
                }
        meta.pop("resourceVersion", None)
        if old is not None:
            previous = old["metadata"].get("resourceVersion")
            old["metadata"].pop("resourceVersion", None)
            unchanged = old == obj
            old["metadata"]["resourceVersion"] = previous
            if unchanged:
                meta["resourceVersion"] = previous
                table[key] = obj
                return obj
        self.state["resourceVersion"] += 1
        meta["resourceVersion"] = str(self.state["resourceVersion"])
        table[key] = obj
        return obj

    def remove(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = object_key(namespace, name)
        obj = self.state["objects"].get(kind, {}).pop(key, None)
        self.state["created"].pop(f"{kind}/{key}", None)
        if kind == "Pod":
            self.state["pods"].pop(key, None)
        return obj

    def all_objects(self) -> Iterable[dict[str, Any]]:
        for table in self.state["objects"].values():
            yield from table.values()

    def facts(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        """What the kubelet and CNI know of a pod: IP, scheduling failure, readiness."""
        return self.state["pods"][_key_of(pod)]


def _key_of(obj: Mapping[str, Any]) -> str:
    return object_key(obj["metadata"].get("namespace"), obj["metadata"]["name"])


# --------------------------------------------------------------------------- pod specs


def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (the API server's default)."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def default_pod_spec(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A pod spec with the fields the API server fills in when they are left out."""
    out = copy.deepcopy(dict(spec or {}))
    out.setdefault("restartPolicy", "Always")
    out.setdefault("dnsPolicy", "ClusterFirst")
    out.setdefault("schedulerName", "default-scheduler")
    out.setdefault("terminationGracePeriodSeconds", 30)
    out.setdefault("securityContext", {})
    for field in ("containers", "initContainers"):
        for container in out.get(field) or []:
            container.setdefault("imagePullPolicy", image_pull_policy(container.get("image", "")))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    return out


_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
_DEFAULT_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
)


def _covers(toleration: Mapping[str, Any], key: str, effect: str) -> bool:
    return toleration.get("key") in (key, None, "") and toleration.get("effect") in (
        effect,
        None,
        "",
    )


def admit_pod_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What admission adds when a pod is created: service account, priority, 300 s eviction tolerations."""
    out = copy.deepcopy(dict(spec))
    out.setdefault("serviceAccountName", "default")
    out.setdefault("priority", _PRIORITIES.get(out.get("priorityClassName", ""), 0))
    tolerations = out.setdefault("tolerations", [])
    for key, effect in _DEFAULT_TOLERATIONS:
        if not any(_covers(t, key, effect) for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": effect, "tolerationSeconds": 300}
            )
    return out


def pod_spec_for(template: Mapping[str, Any]) -> dict[str, Any]:
    """The spec a pod created from this template gets (defaults, then admission)."""
    return admit_pod_spec(default_pod_spec(template.get("spec")))


def container_port(pod: Mapping[str, Any], name: str, protocol: str) -> int | None:
    """The number of a named container port (with this protocol) in any container of the pod."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


# --------------------------------------------------------------------------- scheduling predicates


def tolerates(tolerations: Iterable[Mapping[str, Any]] | None, taint: Mapping[str, Any]) -> bool:
    """Whether any toleration matches a taint (key, operator Equal/Exists, value, effect)."""
    for tol in tolerations or []:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def untolerated_taint(spec: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first NoSchedule/NoExecute taint of ``node`` the pod does not tolerate."""
    for taint in node.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
            spec.get("tolerations"), taint
        ):
            return dict(taint)
    return None


def _requirement_holds(req: Mapping[str, Any], values_of: Mapping[str, str]) -> bool:
    key, op = req.get("key"), req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    present = key in values_of
    if op == "In":
        return present and values_of[key] in values
    if op == "NotIn":
        return not present or values_of[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(values_of[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def matches_node(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector and required node affinity (nodeSelectorTerms ORed, their requirements ANDed)."""
    labels = node.get("labels") or {}
    if any(labels.get(k) != str(v) for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node["name"]}
    for term in terms:
        exprs, field_reqs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if (
            (exprs or field_reqs)
            and all(_requirement_holds(e, labels) for e in exprs)
            and all(_requirement_holds(f, fields) for f in field_reqs)
        ):
            return True
    return False


def host_ports(spec: Mapping[str, Any]) -> set[tuple[int, str]]:
    """Ports a pod takes on its node: hostPorts, or every containerPort with hostNetwork."""
    taken = set()
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            number = port.get("hostPort") or (
                port.get("containerPort") if spec.get("hostNetwork") else None
            )
            if number:
                taken.add((int(number), port.get("protocol", "TCP")))
    return taken


def unfit_reason(
    spec: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: list[dict[str, Any]]
) -> str | None:
    """Why the scheduler would filter ``node`` out for this pod (its own words), or None if it fits.

    Filters run in the scheduler's order: TaintToleration, NodeAffinity, NodePorts.
    """
    taint = untolerated_taint(spec, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
    if not matches_node(spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    wanted = host_ports(spec)
    if wanted:
        used: set[tuple[int, str]] = set()
        for other in pods_on_node:
            used |= host_ports(other["spec"])
        if wanted & used:
            return "node(s) didn't have free ports for the requested pod ports"
    return None


def unschedulable_message(reasons: list[str], total: int) -> str:
    """The scheduler's FailedScheduling message for a pod no node fits."""
    parts = sorted(f"{count} {reason}" for reason, count in Counter(reasons).items())
    return (
        f"0/{total} nodes are available: {', '.join(parts)}. preemption: 0/{total} nodes are available: "
        f"{total} Preemption is not helpful for scheduling."
    )


# --------------------------------------------------------------------------- allocators


def cluster_ip_holder(world: World, ip: str, namespace: str, name: str) -> str | None:
    """``ns/name`` of another Service that already has ClusterIP ``ip``."""
    for svc in world.ordered("Service"):
        meta = svc["metadata"]
        if (meta["namespace"], meta["name"]) != (namespace, name) and svc["spec"].get(
            "clusterIP"
        ) == ip:
            return f"{meta['namespace']}/{meta['name']}"
    return None


def allocate_cluster_ip(world: World, namespace: str, name: str) -> str | None:
    """A free ClusterIP from 10.96.0.0/16: fixed for kubernetes and kube-dns, else hash of ns/name + linear probe."""
    fixed = FIXED_CLUSTER_IPS.get((namespace, name))
    if fixed and cluster_ip_holder(world, fixed, namespace, name) is None:
        return fixed
    taken = {
        s["spec"].get("clusterIP")
        for s in world.ordered("Service")
        if (s["metadata"]["namespace"], s["metadata"]["name"]) != (namespace, name)
    }
    taken |= {ip for key, ip in FIXED_CLUSTER_IPS.items() if key != (namespace, name)}
    base, size = int(SERVICE_CIDR.network_address), SERVICE_CIDR.num_addresses - 2
    start = (
        int.from_bytes(hashlib.sha256(f"{namespace}/{name}".encode()).digest()[:8], "big") % size
    )
    for step in range(size):
        ip = str(ipaddress.ip_address(base + 1 + (start + step) % size))
        if ip not in taken:
            return ip
    return None


def node_port_holder(world: World, port: int, namespace: str, name: str) -> str | None:
    """``ns/name`` of another Service that already holds NodePort ``port``."""
    for svc in world.ordered("Service"):
        meta = svc["metadata"]
        if (meta["namespace"], meta["name"]) == (namespace, name):
            continue
        if any(p.get("nodePort") == port for p in svc["spec"].get("ports") or []):
            return f"{meta['namespace']}/{meta['name']}"
    return None


def allocate_node_port(
    world: World, namespace: str, name: str, port_id: str, taken: set[int]
) -> int | None:
    """A free NodePort in 30000-32767 from a hash of ns/name/port, probing linearly."""
    held = set(taken)
    for svc in world.ordered("Service"):
        if (svc["metadata"]["namespace"], svc["metadata"]["name"]) != (namespace, name):
            held |= {p["nodePort"] for p in svc["spec"].get("ports") or [] if p.get("nodePort")}
    size = NODE_PORT_MAX - NODE_PORT_MIN + 1
    start = (
        int.from_bytes(hashlib.sha256(f"{namespace}/{name}/{port_id}".encode()).digest()[:8], "big")
        % size
    )
    for step in range(size):
        candidate = NODE_PORT_MIN + (start + step) % size
        if candidate not in held:
            return candidate
    return None


def load_balancer_ip(svc: Mapping[str, Any]) -> str | None:
    """The address in a Service's status.loadBalancer, if it has one."""
    for entry in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if entry.get("ip"):
            return entry["ip"]
    return None


def pod_ip_range(block: str, cni: str) -> tuple[int, int]:
    """First and last pod address of a node's IPAM block (Flannel's cni0 takes .1, Calico starts at .1)."""
    net = ipaddress.ip_network(block, strict=False)
    first = int(net.network_address) + (2 if cni == "flannel" else 1)
    last = int(net.broadcast_address) - 1
    return first, last


# --------------------------------------------------------------------------- reconcile


def reconcile(world: World) -> None:
    """Run every controller once, in dependency order, until the state is consistent."""
    ensure_service_accounts(world)
    collect_garbage(world)
    sync_deployments(world)
    collect_garbage(world)
    sync_replicasets(world)
    sync_daemonsets(world)
    sync_statefulsets(world)
    schedule_pods(world)
    assign_pod_ips(world)
    assign_load_balancer_ips(world)
    sync_endpoints(world)
    write_pod_statuses(world)
    write_workload_statuses(world)
    write_ingress_statuses(world)


def ensure_service_accounts(world: World) -> None:
    """Every namespace has a ``default`` ServiceAccount (the service account controller's job)."""
    for ns in world.ordered("Namespace"):
        name = ns["metadata"]["name"]
        if world.find("ServiceAccount", name, "default") is None:
            world.put(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name},
                }
            )


def collect_garbage(world: World) -> list[tuple[str, str | None, str]]:
    """Delete objects whose every owner is gone, repeatedly (Deployment -> ReplicaSet -> Pod)."""
    removed: list[tuple[str, str | None, str]] = []
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
                doomed.append(
                    (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
                )
        if not doomed:
            return removed
        for kind, namespace, name in doomed:
            world.remove(kind, namespace, name)
        removed.extend(doomed)


def _template_with_labels(template: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(template))
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **extra}
    return out


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(
            (obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")
        )
    except ValueError:
        return 0


def sync_deployments(world: World) -> None:
    """One ReplicaSet per pod template: the current one runs ``replicas`` pods, older ones are scaled to 0."""
    for deploy in world.ordered("Deployment"):
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
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        replicas = spec.get("replicas", 1)
        rs = {
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
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + _surge(spec, replicas)),
                    "deployment.kubernetes.io/revision": str(revision),
                },
                "ownerReferences": [owner_reference(deploy)],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": _template_with_labels(template, {"pod-template-hash": pod_hash}),
            },
            "status": copy.deepcopy((current or {}).get("status") or {"replicas": 0}),
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
                scaled = copy.deepcopy(old)
                scaled["spec"]["replicas"] = 0
                scaled["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
                scaled["metadata"].setdefault("annotations", {})[
                    "deployment.kubernetes.io/desired-replicas"
                ] = str(replicas)
                world.put(scaled)
        history = sorted(
            (o for o in world.owned("ReplicaSet", deploy) if o["metadata"]["name"] != rs_name),
            key=_revision,
        )
        limit = spec.get("revisionHistoryLimit", 10)
        for old in history[: max(0, len(history) - limit)]:
            world.remove("ReplicaSet", ns, old["metadata"]["name"])
        annotated = copy.deepcopy(deploy)
        annotated["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = (
            str(revision)
        )
        world.put(annotated)


def _scaled_value(value: Any, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = replicas * int(value[:-1]) / 100
        return int(-(-exact // 1)) if round_up else int(exact // 1)
    return int(value or 0)


def _surge(spec: Mapping[str, Any], replicas: int) -> int:
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    return _scaled_value(rolling.get("maxSurge", "25%"), replicas, round_up=True)


def new_pod(
    world: World,
    owner: Mapping[str, Any],
    name: str,
    template: Mapping[str, Any],
    extra_labels: Mapping[str, str],
    spec_updates: Mapping[str, Any] | None = None,
    generate_name: str | None = None,
) -> dict[str, Any]:
    """A pod created by a controller from its template."""
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
        meta["annotations"] = copy.deepcopy(tmeta["annotations"])
    meta["ownerReferences"] = [owner_reference(owner)]
    return world.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def _generated_name(world: World, owner: Mapping[str, Any], prefix: str) -> str:
    ns = owner["metadata"]["namespace"]
    while True:
        count = world.next_count(f"names/{owner['kind']}/{ns}/{owner['metadata']['name']}")
        name = prefix + short_hash(f"{ns}/{prefix}#{count}", 5)
        if world.find("Pod", ns, name) is None:
            return name


def _ready(world: World, pod: Mapping[str, Any]) -> bool:
    facts = world.facts(pod)
    return bool(facts["ip"]) and facts["ready"]


def sync_replicasets(world: World) -> None:
    """Keep exactly ``replicas`` pods per ReplicaSet, named ``<rs>-<5 chars>``."""
    for rs in world.ordered("ReplicaSet"):
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
    """The ReplicaSet controller's preference when scaling down: unscheduled, not running, not ready,
    on a crowded node, then the newest."""
    per_node = Counter(p["spec"].get("nodeName") for p in pods)
    created = world.state["created"]

    def rank(pod: dict[str, Any]) -> tuple:
        facts = world.facts(pod)
        node = pod["spec"].get("nodeName")
        return (
            bool(node),
            bool(facts["ip"]),
            _ready(world, pod),
            -per_node[node],
            -created.get(f"Pod/{_key_of(pod)}", 0),
            pod["metadata"]["name"],
        )

    return sorted(pods, key=rank)


def daemonset_wants(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether a DaemonSet's pod belongs on ``node`` (node selector, affinity, taints)."""
    return untolerated_taint(spec, node) is None and matches_node(spec, node)


def sync_daemonsets(world: World) -> None:
    """One pod per eligible node, ``<ds>-<5 chars>``; a changed template replaces them."""
    for ds in world.ordered("DaemonSet"):
        meta = ds["metadata"]
        template = ds["spec"]["template"]
        revision = template_hash(template)
        spec = pod_spec_for(template)
        pods = world.owned("Pod", ds)
        for node in world.nodes:
            here = [p for p in pods if p["spec"].get("nodeName") == node["name"]]
            keep = None
            if daemonset_wants(spec, node):
                keep = next(
                    (
                        p
                        for p in here
                        if p["metadata"]["labels"].get("controller-revision-hash") == revision
                    ),
                    None,
                )
            for pod in here:
                if pod is not keep:
                    world.remove("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
            if keep is None and daemonset_wants(spec, node):
                affinity = copy.deepcopy(spec.get("affinity") or {})
                affinity.setdefault("nodeAffinity", {})[
                    "requiredDuringSchedulingIgnoredDuringExecution"
                ] = {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node["name"]]}
                            ]
                        }
                    ]
                }
                prefix = meta["name"] + "-"
                new_pod(
                    world,
                    ds,
                    _generated_name(world, ds, prefix),
                    template,
                    {
                        "controller-revision-hash": revision,
                        "pod-template-generation": str(meta.get("generation", 1)),
                    },
                    {"affinity": affinity, "nodeName": node["name"]},
                    generate_name=prefix,
                )


def sync_statefulsets(world: World) -> None:
    """Pods ``<name>-0`` .. ``<name>-(n-1)`` with hostname and subdomain; a changed template replaces them."""
    for sts in world.ordered("StatefulSet"):
        meta, spec = sts["metadata"], sts["spec"]
        ns, name = meta["namespace"], meta["name"]
        revision = f"{name}-{template_hash(spec['template'])}"
        want = spec.get("replicas", 1)
        for pod in world.owned("Pod", sts):
            ordinal = pod["metadata"]["name"].rsplit("-", 1)[-1]
            stale = pod["metadata"]["labels"].get("controller-revision-hash") != revision
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
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                },
                updates,
            )


def schedule_pods(world: World) -> None:
    """Bind every unbound pod: filter nodes (taints, selector/affinity, host ports), pick the one
    with the fewest pods (ties by name); a pod no node fits keeps the scheduler's message."""
    pods = world.ordered("Pod")
    per_node: dict[str, list[dict[str, Any]]] = {n["name"]: [] for n in world.nodes}
    for pod in pods:
        if pod["spec"].get("nodeName") in per_node:
            per_node[pod["spec"]["nodeName"]].append(pod)
    for pod in pods:
        if pod["spec"].get("nodeName"):
            continue
        reasons, fits = [], []
        for node in world.nodes:
            reason = unfit_reason(pod["spec"], node, per_node[node["name"]])
            if reason is None:
                fits.append(node)
            else:
                reasons.append(reason)
        facts = world.facts(pod)
        if not fits:
            facts["unschedulable"] = unschedulable_message(reasons, len(world.nodes))
            continue
        chosen = min(fits, key=lambda n: (len(per_node[n["name"]]), n["name"]))
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = chosen["name"]
        world.put(bound)
        facts["unschedulable"] = None
        per_node[chosen["name"]].append(bound)


def assign_pod_ips(world: World) -> None:
    """CNI IPAM: node IP for hostNetwork pods, else the next free address of the node's block
    after the last one handed out (host-local style, so a freed address is not reused at once)."""
    in_use = {f["ip"] for f in world.state["pods"].values() if f["ip"]}
    for pod in world.ordered("Pod"):
        facts = world.facts(pod)
        node = world.node(pod["spec"].get("nodeName"))
        if facts["ip"] or node is None:
            continue
        if pod["spec"].get("hostNetwork"):
            facts["ip"] = node["internal_ip"]
            continue
        first, last = pod_ip_range(node["ipam_block"], world.cni)
        size = max(0, last - first + 1)
        cursor = world.state["ipamCursor"].get(node["name"], -1)
        facts["ipError"] = None
        for step in range(1, size + 1):
            offset = (cursor + step) % size
            ip = str(ipaddress.ip_address(first + offset))
            if ip not in in_use:
                facts["ip"] = ip
                in_use.add(ip)
                world.state["ipamCursor"][node["name"]] = offset
                break
        else:
            span = (
                f"{ipaddress.ip_address(first)}-{ipaddress.ip_address(last)}"
                if size
                else node["ipam_block"]
            )
            facts["ipError"] = (
                f"failed to allocate for range 0: no IP addresses available in range set: {span}"
            )


def assign_load_balancer_ips(world: World) -> None:
    """The LoadBalancer pool (172.18.255.200-250): the requested address or the lowest free one."""
    services = world.ordered("Service")
    used = {load_balancer_ip(s) for s in services if s["spec"].get("type") == "LoadBalancer"} - {
        None
    }
    for svc in services:
        if svc["spec"].get("type") != "LoadBalancer":
            if (svc.get("status") or {}).get("loadBalancer"):
                cleared = copy.deepcopy(svc)
                cleared["status"] = {"loadBalancer": {}}
                world.put(cleared)
            continue
        if load_balancer_ip(svc):
            continue
        wanted = svc["spec"].get("loadBalancerIP")
        ip = (
            wanted
            if wanted and wanted not in used
            else next((a for a in LB_POOL if a not in used), None)
        )
        if ip is None:
            continue
        used.add(ip)
        assigned = copy.deepcopy(svc)
        assigned["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
        world.put(assigned)


# --------------------------------------------------------------------------- endpoints


def _address(world: World, pod: Mapping[str, Any], svc_name: str) -> dict[str, Any]:
    meta, spec = pod["metadata"], pod["spec"]
    address: dict[str, Any] = {"ip": world.facts(pod)["ip"]}
    if spec.get("hostname") and spec.get("subdomain") == svc_name:
        address["hostname"] = spec["hostname"]
    address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
    return address


def endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The service's ports as this pod serves them; a named targetPort the pod lacks is left out."""
    ports = []
    for sp in service["spec"].get("ports") or []:
        protocol = sp.get("protocol", "TCP")
        target = sp.get("targetPort", sp["port"])
        if isinstance(target, str):
            number = container_port(pod, target, protocol)
            if number is None:
                continue
        else:
            number = int(target)
        port = {"name": sp.get("name", ""), "port": number, "protocol": protocol}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    return ports


def _service_endpoints(
    world: World, svc: Mapping[str, Any]
) -> list[tuple[list[dict[str, Any]], dict[str, Any], bool]]:
    """(ports, address, ready) for each pod the Service selects that has an IP."""
    meta, spec = svc["metadata"], svc["spec"]
    if (meta["namespace"], meta["name"]) == ("default", "kubernetes"):
        return [
            (
                [{"name": "https", "port": API_SERVER_PORT, "protocol": "TCP"}],
                {"ip": n["internal_ip"]},
                True,
            )
            for n in world.nodes
            if n.get("role") == "control-plane"
        ]
    out = []
    for pod in world.ordered("Pod", meta["namespace"]):
        if not world.facts(pod)["ip"] or not equality_selector_matches(
            spec.get("selector"), pod["metadata"].get("labels")
        ):
            continue
        ready = bool(spec.get("publishNotReadyAddresses")) or _ready(world, pod)
        out.append((endpoint_ports(svc, pod), _address(world, pod, meta["name"]), ready))
    return out


def _endpoints_port(port: Mapping[str, Any]) -> dict[str, Any]:
    """An Endpoints (v1) port: like a slice port, without an empty name."""
    return {k: v for k, v in port.items() if k != "name" or v}


Member = tuple[dict[str, Any], bool]


def _group_by_ports(
    entries: list[tuple[list[dict[str, Any]], dict[str, Any], bool]],
) -> list[tuple[list[dict[str, Any]], list[Member]]]:
    groups: dict[str, tuple[list[dict[str, Any]], list[Member]]] = {}
    for ports, address, ready in entries:
        key = canonical_json(sorted(ports, key=canonical_json))
        groups.setdefault(key, (ports, []))[1].append((address, ready))
    return [groups[k] for k in sorted(groups)]


def _is_system_slice(obj: Mapping[str, Any]) -> bool:
    return (obj["metadata"].get("namespace"), obj["metadata"]["name"]) == ("default", "kubernetes")


def sync_endpoints(world: World) -> None:
    """Endpoints (v1) and EndpointSlices for every Service: selected pods with an IP, grouped by
    port mapping, ready or not; selector-less Services get their user Endpoints mirrored."""
    wanted_slices: set[str] = set()
    wanted_endpoints: set[str] = set()
    for svc in world.ordered("Service"):
        meta, spec = svc["metadata"], svc["spec"]
        ns, name = meta["namespace"], meta["name"]
        if spec.get("type") == "ExternalName":
            continue
        system = (ns, name) == ("default", "kubernetes")
        if not spec.get("selector") and not system:
            wanted_slices |= {object_key(ns, n) for n in _mirror_endpoints(world, svc)}
            continue
        groups = _group_by_ports(_service_endpoints(world, svc))
        _write_endpoints(world, svc, groups)
        wanted_endpoints.add(object_key(ns, name))
        if system:
            _write_slice(
                world,
                svc,
                name,
                groups[0][0] if groups else [],
                groups[0][1] if groups else [],
                None,
            )
            wanted_slices.add(object_key(ns, name))
            continue
        if not groups:  # the controller keeps one empty placeholder slice
            groups = [([], [])]
        for ports, members in groups:
            suffix = short_hash(
                f"{ns}/{name}/" + canonical_json(ports) if members else f"{ns}/{name}/placeholder",
                5,
            )
            _write_slice(world, svc, f"{name}-{suffix}", ports, members, SLICE_CONTROLLER)
            wanted_slices.add(object_key(ns, f"{name}-{suffix}"))
    for sl in world.ordered("EndpointSlice"):
        managed = (sl["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) in (
            SLICE_CONTROLLER,
            SLICE_MIRROR,
        )
        if (managed or _is_system_slice(sl)) and _key_of(sl) not in wanted_slices:
            world.remove("EndpointSlice", sl["metadata"]["namespace"], sl["metadata"]["name"])
    for ep in world.ordered("Endpoints"):
        if (ep["metadata"].get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true" and _key_of(
            ep
        ) not in wanted_endpoints:
            world.remove("Endpoints", ep["metadata"]["namespace"], ep["metadata"]["name"])


def _headless_label(svc: Mapping[str, Any]) -> dict[str, str]:
    return {"service.kubernetes.io/headless": ""} if svc["spec"].get("clusterIP") == "None" else {}


def _write_endpoints(
    world: World, svc: Mapping[str, Any], groups: list[tuple[list[dict[str, Any]], list[Member]]]
) -> None:
    meta = svc["metadata"]
    subsets = []
    for ports, members in groups:
        if not ports and svc["spec"].get("ports"):
            continue  # Endpoints (v1) lists a pod only under the ports it actually serves
        subset: dict[str, Any] = {}
        ready = sorted((a for a, r in members if r), key=lambda a: ip_sort_key(a["ip"]))
        not_ready = sorted((a for a, r in members if not r), key=lambda a: ip_sort_key(a["ip"]))
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ports:
            subset["ports"] = [_endpoints_port(p) for p in ports]
        subsets.append(subset)
    labels = {**(meta.get("labels") or {}), **_headless_label(svc), SKIP_MIRROR_LABEL: "true"}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
    }
    if subsets:
        obj["subsets"] = subsets
    world.put(obj)


def _write_slice(
    world: World,
    svc: Mapping[str, Any],
    slice_name: str,
    ports: list[dict[str, Any]],
    members: list[Member],
    managed_by: str | None,
) -> None:
    """One EndpointSlice; ``managed_by`` None marks the API server's own ``kubernetes`` slice."""
    meta = svc["metadata"]
    endpoints = []
    for address, ready in sorted(members, key=lambda m: ip_sort_key(m[0]["ip"])):
        entry: dict[str, Any] = {
            "addresses": [address["ip"]],
            "conditions": {"ready": ready, "serving": ready, "terminating": False},
        }
        for field in ("hostname", "nodeName"):
            if address.get(field):
                entry[field] = address[field]
        if address.get("targetRef"):
            entry["targetRef"] = dict(address["targetRef"])
        endpoints.append(entry)
    obj_meta: dict[str, Any] = {
        "name": slice_name,
        "namespace": meta["namespace"],
        "labels": {SERVICE_NAME_LABEL: meta["name"]},
    }
    if managed_by:
        obj_meta["labels"] = {
            **(meta.get("labels") or {}),
            **_headless_label(svc),
            SERVICE_NAME_LABEL: meta["name"],
            MANAGED_BY_LABEL: managed_by,
        }
        obj_meta["ownerReferences"] = [owner_reference(svc)]
    world.put(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": obj_meta,
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [dict(p) for p in ports],
        }
    )


def _mirror_endpoints(world: World, svc: Mapping[str, Any]) -> list[str]:
    """Mirror a user's Endpoints of a selector-less Service into EndpointSlices (one per subset)."""
    meta = svc["metadata"]
    ep = world.find("Endpoints", meta["namespace"], meta["name"])
    if ep is None or (ep["metadata"].get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return []
    names = []
    for index, subset in enumerate(ep.get("subsets") or []):
        ports = [
            {"name": p.get("name", ""), "port": p["port"], "protocol": p.get("protocol", "TCP")}
            for p in subset.get("ports") or []
        ]
        members = [(a, True) for a in subset.get("addresses") or []]
        members += [(a, False) for a in subset.get("notReadyAddresses") or []]
        key = f"{meta['namespace']}/{meta['name']}/mirror/{index}"
        name = f"{meta['name']}-{short_hash(key, 5)}"
        _write_slice(world, svc, name, ports, members, SLICE_MIRROR)
        names.append(name)
    return names


# --------------------------------------------------------------------------- statuses


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
            keep = (
                before is not None and before.get("status") == cond["status"] and before.get(field)
            )
            cond[field] = before[field] if keep else now
    return new


def qos_class(spec: Mapping[str, Any]) -> str:
    """BestEffort without requests/limits, Guaranteed when every container's limits equal requests."""
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


def pod_status(world: World, pod: Mapping[str, Any]) -> dict[str, Any]:
    """The kubelet's view of a pod: phase, IPs, conditions, container statuses."""
    spec, meta = pod["spec"], pod["metadata"]
    facts = world.facts(pod)
    old = (pod.get("status") or {}).get("conditions")
    now = world.timestamp()
    node = world.node(spec.get("nodeName"))
    if node is None:
        conditions = [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "reason": "Unschedulable",
                "message": facts["unschedulable"] or "no nodes available",
            }
        ]
        return {
            "phase": "Pending",
            "conditions": _with_times(conditions, old, now),
            "qosClass": qos_class(spec),
        }
    containers = spec.get("containers") or []
    names = " ".join(c["name"] for c in containers)
    running = bool(facts["ip"])
    ready = running and facts["ready"]

    def cond(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        c: dict[str, Any] = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
        }
        if not ok and reason:
            c["reason"] = reason
        if not ok and message:
            c["message"] = message
        return c

    unready = f"containers with unready status: [{names}]"
    if running and facts.get("readyReason"):
        unready += f" ({facts['readyReason']})"
    conditions = [
        cond(
            "PodReadyToStartContainers",
            running,
            "FailedCreatePodSandBox",
            facts.get("ipError") or "",
        ),
        cond("Initialized", True),
        cond("Ready", ready, "ContainersNotReady", unready),
        cond("ContainersReady", ready, "ContainersNotReady", unready),
        cond("PodScheduled", True),
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
    statuses = []
    for c in containers:
        entry: dict[str, Any] = {
            "name": c["name"],
            "image": c.get("image", ""),
            "ready": ready,
            "restartCount": 0,
            "started": running,
        }
        if running:
            entry["containerID"] = (
                "containerd://"
                + hashlib.sha256(f"{world.lab}/{meta['uid']}/{c['name']}".encode()).hexdigest()
            )
            entry["state"] = {"running": {"startedAt": meta["creationTimestamp"]}}
        else:
            entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
        statuses.append(entry)
    status["containerStatuses"] = statuses
    return status


def write_pod_statuses(world: World) -> None:
    """Refresh every pod's status from what the scheduler, IPAM and readiness say."""
    for pod in world.ordered("Pod"):
        status = pod_status(world, pod)
        if status != pod.get("status"):
            updated = copy.deepcopy(pod)
            updated["status"] = status
            world.put(updated)


def _put_status(world: World, obj: Mapping[str, Any], status: dict[str, Any]) -> None:
    if obj.get("status") != status:
        updated = copy.deepcopy(dict(obj))
        updated["status"] = status
        world.put(updated)


def _counts(world: World, pods: list[dict[str, Any]]) -> tuple[int, int]:
    return len(pods), sum(1 for p in pods if _ready(world, p))


def write_workload_statuses(world: World) -> None:
    """status of ReplicaSets, Deployments, DaemonSets and StatefulSets from their pods."""
    now = world.timestamp()
    for rs in world.ordered("ReplicaSet"):
        total, ready = _counts(world, world.owned("Pod", rs))
        status: dict[str, Any] = {
            "replicas": total,
            "fullyLabeledReplicas": total,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        _put_status(world, rs, status)
    for deploy in world.ordered("Deployment"):
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
        minimum = want - _scaled_value(rolling.get("maxUnavailable", "25%"), want, round_up=False)
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
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": total,
            "updatedReplicas": len(updated),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": _with_times(
                conditions,
                (deploy.get("status") or {}).get("conditions"),
                now,
                ("lastUpdateTime", "lastTransitionTime"),
            ),
        }
        if total - ready > 0:
            status["unavailableReplicas"] = total - ready
        _put_status(world, deploy, status)
    for ds in world.ordered("DaemonSet"):
        spec = pod_spec_for(ds["spec"]["template"])
        eligible = {n["name"] for n in world.nodes if daemonset_wants(spec, n)}
        pods = world.owned("Pod", ds)
        revision = template_hash(ds["spec"]["template"])
        on_eligible = [p for p in pods if p["spec"].get("nodeName") in eligible]
        total, ready = _counts(world, on_eligible)
        status = {
            "currentNumberScheduled": total,
            "desiredNumberScheduled": len(eligible),
            "numberMisscheduled": len(pods) - total,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": sum(
                1
                for p in on_eligible
                if p["metadata"]["labels"].get("controller-revision-hash") == revision
            ),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if len(eligible) - ready > 0:
            status["numberUnavailable"] = len(eligible) - ready
        _put_status(world, ds, status)
    for sts in world.ordered("StatefulSet"):
        revision = f"{sts['metadata']['name']}-{template_hash(sts['spec']['template'])}"
        total, ready = _counts(world, world.owned("Pod", sts))
        _put_status(
            world,
            sts,
            {
                "observedGeneration": sts["metadata"].get("generation", 1),
                "replicas": total,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": total,
                "updatedReplicas": total,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            },
        )


def default_ingress_class(world: World) -> str | None:
    """Name of the IngressClass annotated as the cluster default, if any."""
    for ic in world.ordered("IngressClass"):
        if (ic["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            return ic["metadata"]["name"]
    return None


def write_ingress_statuses(world: World) -> None:
    """Ingresses of the ``labkit`` class get the ingress controller's LoadBalancer address."""
    controller = world.find("Service", INGRESS_NAMESPACE, INGRESS_SERVICE)
    ip = load_balancer_ip(controller) if controller else None
    for ing in world.ordered("Ingress"):
        cls = ing["spec"].get("ingressClassName") or (ing["metadata"].get("annotations") or {}).get(
            "kubernetes.io/ingress.class"
        )
        served = ip is not None and cls == INGRESS_CLASS
        lb = {"ingress": [{"ip": ip}]} if served else {}
        _put_status(world, ing, {"loadBalancer": lb})
