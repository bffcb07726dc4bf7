"""A small in-memory Lab double for the checks' unit tests, built from real object dicts, and the
builders for those dicts. Tests reach it through the ``fakes`` fixture (tests/unit/conftest.py).

``FakeLab`` answers ``get`` from the objects it holds (counting the listings in ``reads``) and
simulates a correct data plane on top: pod IPs answer on their declared ports, ClusterIPs / node
ports / load-balancer IPs round-robin over ready endpoints, the policy model decides drops when
``enforce`` is on, the DNS model answers ``resolve``. Faults are injected per test (``overrides``,
``nat``, ``scripts``, ``exec_outputs``). tests/unit/test_checks_fakelab.py checks the double.

``ObjectLab`` only stores objects (apply, delete, get), as the API server would, for the tests of
deploying scenarios and of grading; ``uid()`` changes when ``rebuild()`` plays down-then-up.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from labkit import manifests
from labkit.errors import LabError
from labkit.lab import OUTSIDE, Capabilities, ExecResult, HttpReply, ObjectRef, Probe
from labkit.model.dns.lookup import RecordIndex
from labkit.model.dns.poddns import pod_resolv_conf
from labkit.model.dns.resolver import DNS_SERVICE_IP, cluster_search_path, query_order
from labkit.model.netpol import verdicts
from labkit.model.selectors import (
    equality_selector_matches,
    parse_selector_string,
    selector_matches,
)

# --------------------------------------------------------------------------- object builders


def namespace(name: str, labels: Mapping[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
        },
    }


def node(name: str, ip: str, pod_cidr: str | None = None) -> dict:
    """A Node with its InternalIP (and ``spec.podCIDR`` when given)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ]
        },
    }


def pod(
    name: str,
    ip: str | None,
    *,
    ns: str = "default",
    labels: Mapping[str, str] | None = None,
    ports: Sequence[tuple] = ((8080, "TCP", "http"),),
    node_name: str = "lab-worker",
    ready: bool = True,
    phase: str = "Running",
    owner: str | None = None,
    image: str = "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
    unschedulable: str | None = None,
) -> dict:
    """A Pod as `kubectl get -o json` shows it; ``owner`` = a Deployment name (adds RS owner and
    hash); ``unschedulable`` = the scheduler's message (a Pending pod with PodScheduled=False, no
    node)."""
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if owner:
        template_hash = name[len(owner) + 1 :].split("-")[0]
        meta["labels"]["pod-template-hash"] = template_hash
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{owner}-{template_hash}",
                "uid": "u",
                "controller": True,
            }
        ]
    container_ports = [
        {"containerPort": p[0], "protocol": p[1], **({"name": p[2]} if len(p) > 2 and p[2] else {})}
        for p in ports
    ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if unschedulable is not None:
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": unschedulable,
                }
            ],
        }
        node_name = ""
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": image, "ports": container_ports}]
    }
    if node_name and phase != "Pending":
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def service(
    name: str,
    cluster_ip: str | None,
    *,
    ns: str = "default",
    selector: Mapping[str, str] | None = None,
    ports: Sequence[Mapping[str, Any]] = ({"name": "http", "port": 80, "targetPort": 8080},),
    type_: str = "ClusterIP",
    lb_ip: str | None = None,
    external_name: str | None = None,
    external_traffic_policy: str | None = None,
) -> dict:
    spec: dict[str, Any] = {"type": type_, "ports": [{"protocol": "TCP", **p} for p in ports]}
    if selector is not None:
        spec["selector"] = dict(selector)
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = [cluster_ip]
    if external_name:
        spec["externalName"] = external_name
    if external_traffic_policy:
        spec["externalTrafficPolicy"] = external_traffic_policy
    status: dict[str, Any] = {"loadBalancer": {"ingress": [{"ip": lb_ip}]} if lb_ip else {}}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
        "status": status,
    }


def netpol_doc(name: str, spec: Mapping[str, Any], ns: str = "default") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": dict(spec),
    }


def slices_for(
    services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[dict]:
    """What the EndpointSlice controller would write for these Services and pods."""
    pods = list(pods)
    out = []
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector")
        if not sel:
            continue
        ns = svc["metadata"]["namespace"]
        chosen = [
            p
            for p in pods
            if p["metadata"]["namespace"] == ns
            and equality_selector_matches(sel, p["metadata"].get("labels"))
            and p["status"].get("podIP")
        ]
        ports = []
        for sp in svc["spec"]["ports"]:
            target = sp.get("targetPort", sp["port"])
            number = target
            if isinstance(target, str):
                number = (
                    next(
                        (
                            c["containerPort"]
                            for c in chosen[0]["spec"]["containers"][0]["ports"]
                            if c.get("name") == target
                        ),
                        None,
                    )
                    if chosen
                    else None
                )
            ports.append(
                {"name": sp.get("name", ""), "port": number, "protocol": sp.get("protocol", "TCP")}
            )
        endpoints = [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {
                    "ready": any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"]["conditions"]
                    )
                },
                "nodeName": p["spec"].get("nodeName"),
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns},
            }
            for p in chosen
        ]
        out.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "addressType": "IPv4",
                "metadata": {
                    "name": f"{svc['metadata']['name']}-abcde",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": svc["metadata"]["name"]},
                },
                "endpoints": endpoints,
                "ports": ports,
            }
        )
    return out


_KINDS = {
    "pod": "Pod",
    "pods": "Pod",
    "service": "Service",
    "services": "Service",
    "svc": "Service",
    "namespaces": "Namespace",
    "namespace": "Namespace",
    "nodes": "Node",
    "node": "Node",
    "networkpolicies": "NetworkPolicy",
    "netpol": "NetworkPolicy",
    "endpointslices": "EndpointSlice",
    "endpoints": "Endpoints",
    "ingresses": "Ingress",
    "ingress": "Ingress",
    "ingressclasses": "IngressClass",
    "ciliumnetworkpolicy": "CiliumNetworkPolicy",
    "ciliumnetworkpolicies": "CiliumNetworkPolicy",
}


class HandMade:
    """Namespaces made by hand on nodes (``netns_*``), as names only: a probe from one answers
    what a test scripts, else ``unreachable`` (a fresh namespace has no route anywhere)."""

    def _made(self) -> dict[str, list[str]]:
        return self.__dict__.setdefault("made", {})

    def netns_add(self, node: str, name: str) -> None:
        made = self._made().setdefault(node, [])
        if name in made:
            raise LabError(f"{name} exists", "netns_delete it first")
        made.append(name)

    def netns_delete(self, node: str, name: str) -> None:
        if name in self._made().get(node, []):
            self._made()[node].remove(name)

    def netns_list(self, node: str) -> list[str]:
        return sorted(self._made().get(node, []))

    def netns_exec(self, node: str, name: str, command, timeout: float = 10.0) -> ExecResult:
        argv = tuple(command) if not isinstance(command, str) else (command,)
        return ExecResult(argv, 0 if name in self.netns_list(node) else 1, "")


class FakeLab(HandMade):
    """A recorded lab: objects in, simulated probes out (see the module docstring)."""

    default_backend = "sandbox"
    """The backend a FakeLab plays unless given one (the ``fakes`` fixture runs tests on each)."""

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        cni: str = "calico",
        enforce: bool = True,
        load_balancer: bool = True,
        auto_slices: bool = True,
        backend: str | None = None,
    ) -> None:
        self.name = "fake"
        self.backend = backend or self.default_backend
        self.cni = cni
        self.capabilities = Capabilities(
            network_policy=enforce, kube_proxy_mode="iptables", load_balancer=load_balancer
        )
        self.objects: list[dict] = [dict(o) for o in objects]
        if auto_slices and not any(o["kind"] == "EndpointSlice" for o in self.objects):
            self.objects += slices_for(
                [o for o in self.objects if o["kind"] == "Service"],
                [o for o in self.objects if o["kind"] == "Pod"],
            )
        self.enforce = enforce
        self.overrides: dict[tuple, Callable[[Probe], Probe] | str] = {}
        self.nat: dict[str, str] = {}
        self.scripts: dict[tuple, list[str]] = {}
        self.exec_outputs: dict[tuple, ExecResult] = {}
        self.resolve_overrides: dict[tuple[str, str, str], list[str]] = {}
        self.http_answers: dict[tuple[str, str], tuple[int, str]] = {}
        self.calls: list[tuple] = []
        self.reads: Counter[str] = Counter()
        self._rr = itertools.count()

    # ---- objects
    def of(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | dict | None = None,
    ) -> list[dict]:
        self.reads[kind] += 1
        canonical = _KINDS[kind.lower()]
        out = []
        for o in self.of(canonical):
            meta = o["metadata"]
            if name is not None and meta.get("name") != name:
                continue
            if (
                namespace is not None
                and canonical not in ("Node", "Namespace", "IngressClass")
                and meta.get("namespace", "default") != namespace
            ):
                continue
            if selector is not None:
                sel = parse_selector_string(selector) if isinstance(selector, str) else selector
                if not selector_matches(sel, meta.get("labels")):
                    continue
            out.append(o)
        return [dict(o) for o in out]

    def apply(self, manifests, namespace=None):
        raise AssertionError("a check changed the cluster (apply); checks only look")

    def delete(self, manifests_or_refs):
        raise AssertionError("a check changed the cluster (delete); checks only look")

    # ---- running things
    def exec(
        self, pod: str, command, namespace: str = "default", timeout: float = 10.0
    ) -> ExecResult:
        key = (f"{namespace}/{pod}", tuple(command) if not isinstance(command, str) else (command,))
        self.calls.append(("exec", *key))
        if key in self.exec_outputs:
            return self.exec_outputs[key]
        if key[1] == ("cat", "/etc/resolv.conf"):
            return ExecResult(key[1], 0, pod_resolv_conf({}, namespace, "", (DNS_SERVICE_IP,)))
        return ExecResult(key[1], 127, "", f"{key[1][0]}: not recorded")

    def node_exec(self, node: str, command, timeout: float = 10.0) -> ExecResult:
        key = (node, tuple(command) if not isinstance(command, str) else (command,))
        self.calls.append(("node_exec", *key))
        if key in self.exec_outputs:
            return self.exec_outputs[key]
        return ExecResult(key[1], 127, "", f"{key[1][0]}: not recorded")

    def _pods(self) -> list[dict]:
        return self.of("Pod")

    def _pod_by_ref(self, ref: str) -> dict:
        ns, _, name = ref.partition("/")
        return next(
            p
            for p in self._pods()
            if p["metadata"]["name"] == name and p["metadata"]["namespace"] == ns
        )

    def _backends(
        self, ip: str, port: int, protocol: str, src: str
    ) -> tuple[list[tuple[dict, int]], bool]:
        """Ready endpoint pods and target ports behind a service address; (backends, is_service)."""
        for svc in self.of("Service"):
            spec = svc["spec"]
            lb = [
                i.get("ip")
                for i in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress", [])
            ]
            node_ips = [
                a["address"]
                for n in self.of("Node")
                for a in n["status"]["addresses"]
                if a["type"] == "InternalIP"
            ]
            for sp in spec.get("ports", []):
                hit = (
                    (ip == spec.get("clusterIP") and sp["port"] == port)
                    or (ip in lb and sp["port"] == port)
                    or (src == OUTSIDE and ip in node_ips and sp.get("nodePort") == port)
                )
                if not hit or sp.get("protocol", "TCP") != protocol:
                    continue
                ns = svc["metadata"]["namespace"]
                found = []
                for sl in self.of("EndpointSlice"):
                    if (
                        sl["metadata"]["namespace"] != ns
                        or sl["metadata"]["labels"]["kubernetes.io/service-name"]
                        != svc["metadata"]["name"]
                    ):
                        continue
                    number = next(
                        (p["port"] for p in sl["ports"] if p.get("name", "") == sp.get("name", "")),
                        None,
                    )
                    for ep in sl["endpoints"]:
                        if ep["conditions"]["ready"]:
                            found.append(
                                (self._pod_by_ref(f"{ns}/{ep['targetRef']['name']}"), number)
                            )
                if (
                    spec.get("externalTrafficPolicy") == "Local"
                    and src == OUTSIDE
                    and ip in node_ips
                ):
                    node_name = next(
                        n["metadata"]["name"]
                        for n in self.of("Node")
                        if any(a["address"] == ip for a in n["status"]["addresses"])
                    )
                    found = [f for f in found if f[0]["spec"].get("nodeName") == node_name]
                return found, True
        return [], False

    def _one(self, src: str, dst: str, port: int, protocol: str) -> Probe:
        protocol = protocol.upper()
        key = (src, dst, port)
        if self.scripts.get(key):
            outcome = self.scripts[key].pop(0)
            if outcome != "auto":
                return Probe(src, dst, port, protocol, outcome)
        override = (
            self.overrides.get(key) or self.overrides.get((src, dst)) or self.overrides.get(dst)
        )
        if isinstance(override, str):
            return Probe(src, dst, port, protocol, override)
        if ":" in src:
            node, _, name = src.partition(":")
            assert name in self.netns_list(node), f"no namespace {name} on {node}"
            return Probe(src, dst, port, protocol, "unreachable")
        src_ip = "172.18.0.1" if src == OUTSIDE else self._pod_by_ref(src)["status"]["podIP"]
        backends, is_service = self._backends(dst, port, protocol, src)
        if src != OUTSIDE and dst in ("127.0.0.1", "::1"):  # the source pod's own loopback
            me = self._pod_by_ref(src)
            if not any(
                c.get("containerPort") == port and c.get("protocol", "TCP") == protocol
                for container in me["spec"]["containers"]
                for c in container.get("ports", [])
            ):
                return Probe(src, dst, port, protocol, "refused")
            return Probe(
                src, dst, port, protocol, "connected", 0.001, me["metadata"]["name"], f"{dst}:40000"
            )
        if is_service:
            if not backends:
                return Probe(src, dst, port, protocol, "refused" if src != OUTSIDE else "timeout")
            target, number = backends[next(self._rr) % len(backends)]
        else:
            target = next((p for p in self._pods() if p["status"].get("podIP") == dst), None)
            number = port
            if target is None:
                return Probe(src, dst, port, protocol, "unreachable")
        if number is None or not any(
            c["containerPort"] == number and c.get("protocol", "TCP") == protocol
            for c in target["spec"]["containers"][0]["ports"]
        ):
            return Probe(src, dst, port, protocol, "refused")
        if self.enforce and src != OUTSIDE:
            verdict = verdicts.verdict(
                self._pod_by_ref(src),
                target,
                number,
                protocol,
                namespaces=self.of("Namespace"),
                policies=self.of("NetworkPolicy"),
            )
            if not verdict.allowed:
                return Probe(src, dst, port, protocol, "timeout")
        seen = self.nat.get(src, src_ip)
        result = Probe(
            src, dst, port, protocol, "connected", 0.001, target["metadata"]["name"], seen
        )
        return override(result) if callable(override) else result

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        self.calls.append(("probe", src, dst, port, protocol))
        return self._one(src, dst, port, protocol)

    def probe_many(self, pairs, timeout: float = 1.0) -> list[Probe]:
        out = []
        for item in pairs:
            src, dst, port, *rest = item
            out.append(self.probe(src, dst, port, rest[0] if rest else "TCP", timeout))
        return out

    def http_request(
        self,
        src: str,
        dst: str,
        port: int,
        method: str = "GET",
        path: str = "/",
        timeout: float = 1.0,
    ) -> HttpReply:
        """The connection as ``probe`` simulates it; once connected, the answer set in
        ``http_answers[(method, path)]``, else 200 with the answering pod's name."""
        self.calls.append(("http_request", src, dst, port, method, path))
        probe = self._one(src, dst, port, "TCP")
        if not probe.ok:
            return HttpReply(src, dst, port, method, path, probe.outcome)
        status, body = self.http_answers.get((method, path), (200, probe.served_by or ""))
        return HttpReply(src, dst, port, method, path, "connected", status, body)

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        self.calls.append(("resolve", src, name, rtype))
        if (src, name, rtype) in self.resolve_overrides:
            return list(self.resolve_overrides[(src, name, rtype)])
        ns = src.split("/")[0]
        index = RecordIndex.from_objects(
            self.of("Service"), self.of("EndpointSlice"), self._pods(), self.of("Namespace")
        )
        search = cluster_search_path(ns)
        for candidate in query_order(name, search, 5):
            reply = index.lookup(candidate, rtype)
            values = [
                r.value.rstrip(".") if rtype in ("PTR", "CNAME") else r.value
                for r in reply.answers
                if r.rtype == rtype
            ]
            if values:
                return values
        return []


def web_cluster(
    *, enforce: bool = True, cni: str = "calico", extra: Sequence[dict] = ()
) -> FakeLab:
    """Two namespaces, a client pod, a 3-replica web Deployment behind a Service, a DB pod."""
    objects = [
        namespace("default"),
        namespace("shop", {"team": "shop"}),
        namespace("kube-system"),
        node("lab-control-plane", "172.18.0.2", "10.244.0.0/24"),
        node("lab-worker", "172.18.0.3", "10.244.1.0/24"),
        node("lab-worker2", "172.18.0.4", "10.244.2.0/24"),
        pod("client", "10.244.1.2", labels={"app": "client"}),
        pod("web-5d4f8c7b9d-abcde", "10.244.1.3", labels={"app": "web"}, owner="web"),
        pod(
            "web-5d4f8c7b9d-fghij",
            "10.244.2.3",
            labels={"app": "web"},
            owner="web",
            node_name="lab-worker2",
        ),
        pod(
            "web-5d4f8c7b9d-klmno",
            "10.244.2.4",
            labels={"app": "web"},
            owner="web",
            node_name="lab-worker2",
        ),
        pod("db", "10.244.2.5", ns="shop", labels={"app": "db"}, ports=((5432, "TCP", "pg"),)),
        pod(
            "coredns-7c65d6cfc9-xyzab",
            "10.244.0.2",
            ns="kube-system",
            labels={"k8s-app": "kube-dns"},
            owner="coredns",
            node_name="lab-control-plane",
            image="registry.k8s.io/coredns/coredns:v1.12.1",
            ports=((53, "UDP", "dns"), (53, "TCP", "dns-tcp")),
        ),
        service("web", "10.96.10.10", selector={"app": "web"}),
        service(
            "db",
            "10.96.20.20",
            ns="shop",
            selector={"app": "db"},
            ports=({"name": "pg", "port": 5432, "targetPort": "pg"},),
        ),
        service(
            "kube-dns",
            "10.96.0.10",
            ns="kube-system",
            selector={"k8s-app": "kube-dns"},
            ports=(
                {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "targetPort": 53},
            ),
        ),
        *extra,
    ]
    return FakeLab(objects, cni=cni, enforce=enforce)


class ObjectLab(HandMade):
    """A lab that stores objects and nothing more: apply replaces by kind, namespace and name
    (refusing a namespace that does not exist), delete refuses what is not there."""

    backend = "sandbox"
    cni = "calico"
    capabilities = Capabilities(
        network_policy=True, kube_proxy_mode="iptables", outside_addresses=True
    )

    def __init__(self, name: str = "netlab") -> None:
        self.name = name
        self.builds = 0
        self.rebuild()

    def uid(self) -> str:
        return f"{self.name}-build-{self.builds}"

    def rebuild(self) -> None:
        """``labkit down`` then ``labkit up`` under the same name: a new, empty lab."""
        self.builds += 1
        self.objects: dict[tuple[str, str | None, str], dict] = {
            ("Namespace", None, ns): namespace(ns) for ns in ("default", "kube-system")
        }
        self.outside: list[tuple[str, tuple]] = []

    @staticmethod
    def key(doc: Mapping[str, Any]) -> tuple[str, str | None, str]:
        kind = manifests.canonical_kind(str(doc["kind"]))
        return kind, manifests.namespace_of(doc), str(doc["metadata"]["name"])

    def apply(self, docs: Any, namespace: str | None = None) -> list[ObjectRef]:
        refs = []
        for doc in manifests.load(docs):
            kind, ns, name = self.key(doc)
            if ns is not None and ("Namespace", None, ns) not in self.objects:
                raise AssertionError(f"namespace {ns} does not exist for {kind} {name}")
            self.objects[(kind, ns, name)] = doc
            refs.append(ObjectRef(kind, name, ns))
        return refs

    def delete(self, docs: Any) -> None:
        refs = (
            docs if isinstance(docs, list) and all(isinstance(d, ObjectRef) for d in docs) else []
        )
        keys = [(r.kind, r.namespace, r.name) for r in refs] or [
            self.key(doc) for doc in manifests.load(docs)
        ]
        for key in keys:
            if key not in self.objects:
                raise AssertionError(f"{key} does not exist, so it cannot be deleted")
            del self.objects[key]

    def get(self, kind, name=None, namespace="default", selector=None) -> list[dict]:
        canonical = manifests.canonical_kind(kind)
        return [
            doc
            for (k, ns, n), doc in self.objects.items()
            if k == canonical
            and (name is None or n == name)
            and (namespace is None or ns is None or ns == namespace)
        ]

    def add_outside_address(self, cidr: str, ports: Iterable = ()) -> None:
        self.outside.append((cidr, tuple(ports)))
