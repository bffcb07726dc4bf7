"""``SandboxLab``: the Lab seam over the namespace data plane.

Objects go into the cluster store; the data plane is then reconciled to match it: pod namespaces
and veths added or removed, every node's iptables rules re-rendered and restored, the agent told
which pods serve what. State lives in ``/run/labkit/<lab>/state.json``; changes hold the lab's
lifecycle lock and an ``fcntl`` lock on the state folder, so a CLI and a notebook can share one lab.
A change that fails midway is rolled back to the previous state.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from labkit import manifests
from labkit.errors import LabError
from labkit.model.addresses import is_ip
from labkit.sandbox import fabric, iptables, naming
from labkit.sandbox.fabric import NodeNet, PodNet
from labkit.values import OUTSIDE, Capabilities, ExecResult, ObjectRef, Probe, split_pod_ref

LAB_STATE_FORMAT = 1
STATE_FILE = "state.json"
LOCK_FILE = "lock"
WORKLOADS_FILE = "workloads.json"
KUBE_PROXY_MODE = "iptables"
READINESS_TIMEOUT_S = 1.0
AGENT_RELOAD_TIMEOUT_S = 15.0
DNS_IMAGE_MARK = "coredns"
INGRESS_IMAGE_MARK = "labkit/ingress-controller"


# --------------------------------------------------------------------------- pure helpers


def capabilities_for(cni: str) -> Capabilities:
    """What the sandbox enforces with this CNI."""
    common = (
        "kube-proxy runs in iptables mode on every node (the sandbox's kernel has no IPVS).",
        "LoadBalancer addresses come from 172.18.255.200-250 and are reachable from the outside namespace.",
    )
    if cni == "calico":
        return Capabilities(
            network_policy=True,
            kube_proxy_mode=KUBE_PROXY_MODE,
            outside_addresses=True,
            notes=(
                "Calico mode: NetworkPolicies are enforced with iptables on every node; blocked packets are dropped.",
                *common,
            ),
        )
    return Capabilities(
        network_policy=False,
        kube_proxy_mode=KUBE_PROXY_MODE,
        outside_addresses=True,
        notes=(
            "Flannel does not implement NetworkPolicy: policies are stored, but traffic they would block "
            "still flows, exactly as on a real Flannel cluster. Use --cni calico to see them enforced.",
            *common,
        ),
    )


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def pod_role(pod: Mapping[str, Any]) -> str:
    """How the agent emulates a pod, judged by its images: cluster DNS, ingress controller or netexec."""
    images = [str(c.get("image") or "") for c in (pod.get("spec") or {}).get("containers") or []]
    if any(DNS_IMAGE_MARK in image for image in images):
        return "dns"
    if any(INGRESS_IMAGE_MARK in image for image in images):
        return "ingress"
    return "netexec"


def pod_ports(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every declared containerPort of every container, unique by (port, protocol)."""
    seen: list[dict[str, Any]] = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            entry = {
                "port": int(port["containerPort"]),
                "protocol": str(port.get("protocol") or "TCP").upper(),
            }
            if entry["protocol"] in ("TCP", "UDP") and entry not in seen:
                seen.append(entry)
    return seen


def is_host_network(pod: Mapping[str, Any]) -> bool:
    """Whether the pod shares its node's network namespace."""
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def pod_nets(
    lab: str, cni: str, pods: Iterable[Mapping[str, Any]], nodes: Sequence[NodeNet]
) -> dict[str, PodNet]:
    """The pods that need a data plane (scheduled, with an address, not finished), by ``ns/name``."""
    by_name = {n.name: n for n in nodes}
    wanted: dict[str, PodNet] = {}
    for pod in pods:
        ns, name = _meta(pod)
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        node = by_name.get(str(spec.get("nodeName") or ""))
        ip = status.get("podIP")
        if node is None or not ip or status.get("phase") in ("Succeeded", "Failed"):
            continue
        host = is_host_network(pod)
        wanted[f"{ns}/{name}"] = PodNet(
            namespace=ns,
            name=name,
            node=node.name,
            ip=str(ip),
            netns=node.netns if host else naming.pod_netns(lab, ns, name),
            iface="" if host else naming.pod_host_iface(cni, ns, name),
            host_network=host,
        )
    return wanted


def service_port(service: Mapping[str, Any], port: Mapping[str, Any] | None) -> int | None:
    """The number of an Ingress backend's service port (given by number or by name)."""
    port = port or {}
    if port.get("number") is not None:
        return int(port["number"])
    for entry in (service.get("spec") or {}).get("ports") or []:
        if port.get("name") is not None and entry.get("name") == port.get("name"):
            return int(entry["port"])
    return None


def ingress_rules(
    ingresses: Iterable[Mapping[str, Any]], services: Iterable[Mapping[str, Any]]
) -> tuple[list[dict], list[str]]:
    """Ingress paths resolved to their Service's ClusterIP and port (the agent's ``ingress`` list),
    and the TLS host names. Paths whose Service is missing or headless are left out."""
    by_ref = {_meta(s): s for s in services}
    rules: list[dict] = []
    tls: list[str] = []

    def backend_of(ns: str, backend: Mapping[str, Any] | None) -> dict | None:
        svc_ref = (backend or {}).get("service") or {}
        svc = by_ref.get((ns, str(svc_ref.get("name") or "")))
        if svc is None:
            return None
        ip = (svc.get("spec") or {}).get("clusterIP")
        port = service_port(svc, svc_ref.get("port"))
        if not ip or ip == "None" or port is None:
            return None
        return {"ip": str(ip), "port": port, "service": f"{ns}/{svc_ref['name']}"}

    for ing in ingresses:
        ns, _ = _meta(ing)
        spec = ing.get("spec") or {}
        for entry in spec.get("tls") or []:
            tls.extend(h for h in entry.get("hosts") or [] if h not in tls)
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = backend_of(ns, path.get("backend"))
                if backend is not None:
                    rules.append(
                        {
                            "host": rule.get("host"),
                            "path": path.get("path") or "/",
                            "pathType": path.get("pathType") or "Prefix",
                            "backend": backend,
                        }
                    )
        default = backend_of(ns, spec.get("defaultBackend"))
        if default is not None:
            rules.append({"host": None, "path": "/", "pathType": "Prefix", "backend": default})
    return rules, tls


def served_ingresses(ingresses: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Ingresses the lab's controller serves: those the store gave the controller's address
    (class ``labkit``, or no class while ``labkit`` is the default)."""
    return [
        i for i in ingresses if ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    ]


def workloads_document(
    pods: Iterable[Mapping[str, Any]],
    nets: Mapping[str, PodNet],
    records: Iterable[Any],
    ingress: list[dict],
    tls_hosts: list[str],
) -> dict[str, Any]:
    """The agent's ``workloads.json``: who serves which ports where, DNS records, Ingress routes.

    Host-network pods serve in their node's namespace: only those that declare ports are listed,
    and only the first of them per node, since the agent gives each namespace to one pod.
    """
    workloads = []
    used_netns: set[str] = set()
    for pod in sorted(pods, key=_meta):
        ns, name = _meta(pod)
        net = nets.get(f"{ns}/{name}")
        if net is None or net.netns in used_netns or (net.host_network and not pod_ports(pod)):
            continue
        used_netns.add(net.netns)
        workloads.append(
            {
                "namespace": ns,
                "name": name,
                "netns": net.netns,
                "ip": net.ip,
                "role": pod_role(pod),
                "ports": pod_ports(pod),
            }
        )
    return {
        "workloads": workloads,
        "dns_records": [[r.name, r.rtype, r.value, int(r.ttl)] for r in records],
        "ingress": ingress,
        "tls_hosts": tls_hosts,
    }


def readiness_checks(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod's readiness probes reduced to what the node must try: tcp or http, port, path."""
    checks = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        spec = container.get("readinessProbe")
        if not spec:
            continue
        named = {
            p.get("name"): int(p["containerPort"])
            for p in container.get("ports") or []
            if p.get("name")
        }
        timeout = min(float(spec.get("timeoutSeconds") or 1), READINESS_TIMEOUT_S)
        for kind in ("tcpSocket", "httpGet"):
            if kind in spec:
                raw = (spec[kind] or {}).get("port")
                port = (
                    named.get(raw)
                    if isinstance(raw, str) and not raw.isdigit()
                    else int(raw)
                    if raw is not None
                    else None
                )
                checks.append(
                    {
                        "container": container.get("name"),
                        "kind": kind,
                        "port": port,
                        "path": (spec[kind] or {}).get("path") or "/",
                        "scheme": (spec[kind] or {}).get("scheme") or "HTTP",
                        "timeout": timeout,
                    }
                )
                break
        else:
            checks.append(
                {
                    "container": container.get("name"),
                    "kind": "other",
                    "port": None,
                    "path": "",
                    "scheme": "",
                    "timeout": timeout,
                }
            )
    return checks


# --------------------------------------------------------------------------- locks


_held: dict[tuple[str, int], tuple[socket.socket, int]] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def lifecycle_lock(name: str, timeout: float = 60.0) -> Iterator[None]:
    """One ``up``, ``down`` or change of lab ``name`` at a time, across processes and threads
    (re-entrant within one thread).

    The lock is an abstract unix socket name: the kernel frees it when its holder exits, even
    after ``kill -9``, and it leaves no file behind.
    """
    key = (name, threading.get_ident())
    with _held_guard:
        entry = _held.get(key)
        if entry is not None:
            _held[key] = (entry[0], entry[1] + 1)
    if entry is None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock.bind(f"\0labkit-sandbox-{name}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    sock.close()
                    raise LabError(
                        f"Another labkit process has been changing lab {name!r} for {timeout:g} s.",
                        "Wait for it to finish, or stop it, then try again.",
                    ) from None
                time.sleep(0.02)
        with _held_guard:
            _held[key] = (sock, 1)
    try:
        yield
    finally:
        with _held_guard:
            sock, depth = _held[key]
            if depth == 1:
                del _held[key]
                sock.close()
            else:
                _held[key] = (sock, depth - 1)


# --------------------------------------------------------------------------- state file


class StateFile:
    """``/run/labkit/<lab>/state.json`` with an exclusive ``fcntl`` lock for writers.

    Writes replace the file atomically, so readers never need the lock. The lock is re-entrant
    within a process (a thread lock plus a depth count around one ``flock``).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise LabError(
                f"Lab state {self.path} is gone: the lab was taken down.",
                "Bring it up again with `labkit up` (or `labkit.connect()` in a notebook).",
            ) from None
        except json.JSONDecodeError as exc:
            raise LabError(
                f"Lab state {self.path} is damaged ({exc}).",
                "Run `labkit down` then `labkit up` to rebuild the lab.",
            ) from None
        if data.get("format") != LAB_STATE_FORMAT:
            raise LabError(
                f"Lab state {self.path} has an unknown format.",
                "It was written by another labkit version: `labkit down` then `labkit up`.",
            )
        return data

    def stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def write(self, data: Mapping[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def locked(self, timeout: float = 60.0) -> Iterator[None]:
        """Hold the lab's write lock (waits for another process's change to finish)."""
        with self._thread_lock:
            if self._depth == 0:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(
                    self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            os.close(fd)
                            raise LabError(
                                f"Another labkit process has held lab {self.directory.name!r} for "
                                f"{timeout:g} s.",
                                "Wait for it to finish, or stop it and run "
                                f"`labkit down --name {self.directory.name}`.",
                            ) from None
                        time.sleep(0.01)
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None


# --------------------------------------------------------------------------- the lab


class StoreView:
    """Read-only lists from a store, fetched once (the store deep-copies on every read).

    ``refresh()`` after the store changed (e.g. readiness updates)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._lists: dict[str, list[dict]] = {}

    def all(self, kind: str) -> list[dict]:
        if kind not in self._lists:
            self._lists[kind] = self.store.get(kind, None, None, None)
        return self._lists[kind]

    def pods(self) -> list[dict]:
        return self.all("Pod")

    def refresh(self) -> None:
        self._lists.clear()


class SandboxLab:
    """A running sandbox lab (implements ``labkit.lab.Lab``)."""

    backend = "sandbox"

    def __init__(self, name: str) -> None:
        self.name = naming.check_lab_name(name)
        self.state_dir = naming.state_dir(name)
        self._state_file = StateFile(self.state_dir)
        self._cache: tuple[tuple[int, int] | None, dict[str, Any], Any] | None = None
        state = self._state()
        self.cni: str = state["cni"]
        self.capabilities = capabilities_for(self.cni)

    def __repr__(self) -> str:
        return f"SandboxLab(name={self.name!r}, cni={self.cni!r})"

    # ---- state

    def _state(self) -> dict[str, Any]:
        stamp = self._state_file.stamp()
        if self._cache is None or self._cache[0] != stamp or stamp is None:
            data = self._state_file.read()
            self._cache = (stamp, data, None)
        return self._cache[1]

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold both locks for a change; a lab taken down meanwhile is refused before the state
        lock would recreate its folder (which would leave ``/run/labkit/<lab>/lock`` behind)."""
        with lifecycle_lock(self.name):
            self._state()  # raises "the lab was taken down" when the state file is gone
            with self._state_file.locked():
                yield

    def _store(self):
        """The cluster store as last saved (parsed once per state version)."""
        from labkit.sandbox.store import ClusterStore

        state = self._state()
        assert self._cache is not None
        if self._cache[2] is None:
            self._cache = (self._cache[0], state, ClusterStore.from_dict(state["store"]))
        return self._cache[2]

    def _built(self, state: Mapping[str, Any]) -> dict[str, PodNet]:
        return {key: PodNet(**value) for key, value in (state.get("pods") or {}).items()}

    def _save(self, state: dict[str, Any], store: Any, built: Mapping[str, PodNet]) -> None:
        state = dict(state)
        state["store"] = store.to_dict()
        state["pods"] = {key: asdict(net) for key, net in sorted(built.items())}
        state["updated"] = time.time()
        self._state_file.write(state)
        self._cache = (self._state_file.stamp(), state, store)

    def _nodes(self, store: Any) -> list[NodeNet]:
        return fabric.node_nets(self.name, self.cni, store.nodes())

    # ---- Lab seam: objects

    def apply(self, manifests_: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Validate and store the objects, then make the data plane match; all or nothing."""
        docs = manifests.load(manifests_)
        if not docs:
            raise LabError(
                "There was nothing to apply (no Kubernetes objects in the input).",
                "Pass a manifest file, YAML text, or a dict with apiVersion, kind and metadata.",
            )
        manifests.validate(docs)
        return self._change(lambda store: store.apply(docs, namespace))

    def delete(self, manifests_or_refs: Any) -> None:
        """Remove objects (given as ObjectRefs, ``kind/name`` strings or manifests) and their data plane."""
        refs = self._refs(manifests_or_refs)
        self._change(lambda store: store.delete(refs))

    def _refs(self, items: Any) -> list[ObjectRef]:
        if isinstance(items, ObjectRef):
            return [items]
        if (
            isinstance(items, (list, tuple))
            and items
            and all(isinstance(i, ObjectRef) for i in items)
        ):
            return list(items)
        if (
            isinstance(items, str)
            and "\n" not in items
            and "/" in items
            and ":" not in items
            and not items.endswith((".yaml", ".yml", ".json"))
        ):
            kind, _, rest = items.partition("/")
            ns, name = split_pod_ref(rest)
            kind = manifests.canonical_kind(kind)
            return [ObjectRef(kind, name, ns if manifests.is_namespaced(kind) else None)]
        refs = []
        for doc in manifests.load(items):
            kind = manifests.canonical_kind(str(doc.get("kind", "")))
            refs.append(
                ObjectRef(
                    kind, str((doc.get("metadata") or {}).get("name")), manifests.namespace_of(doc)
                )
            )
        return refs

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | dict | None = None,
    ) -> list[dict]:
        """Objects in the Kubernetes JSON shape, status filled in (copies: change them freely)."""
        return self._store().get(kind, name, namespace, selector)

    def _change(self, mutate) -> Any:
        """Run ``mutate`` on a copy of the store, converge the data plane, save; roll back on failure."""
        from labkit.sandbox.store import ClusterStore

        with self._writing():
            state = self._state()  # never mutated: _save writes a new dict
            built = self._built(state)
            store = ClusterStore.from_dict(state["store"])  # from_dict copies
            result = mutate(store)
            try:
                self.converge(store, built)
            except BaseException as exc:
                self._roll_back(state, built, exc)
                raise
            self._save(state, store, built)
            return result

    def _roll_back(
        self, state: Mapping[str, Any], built: dict[str, PodNet], cause: BaseException
    ) -> None:
        from labkit.sandbox.store import ClusterStore

        previous = ClusterStore.from_dict(state["store"])
        try:
            self.converge(previous, built)
        except Exception as exc:  # the lab is now in an unknown shape: say how to get out
            raise LabError(
                f"Applying failed ({cause}) and restoring lab {self.name!r} failed too.",
                f"Rebuild the lab: `labkit down --name {self.name}` then `labkit up --name {self.name}`.",
                output=str(exc),
            ) from cause

    # ---- reconciliation

    def converge(self, store: Any, built: dict[str, PodNet]) -> None:
        """Make the data plane match ``store``; ``built`` (what exists) is updated as work is done."""
        nodes = self._nodes(store)
        view = StoreView(store)
        wanted = pod_nets(self.name, self.cni, view.pods(), nodes)
        gone = [net for key, net in built.items() if wanted.get(key) != net]
        new = [net for key, net in wanted.items() if built.get(key) != net]
        if any(net.key in wanted for net in gone):
            # A pod rebuilt under the same name: the agent must let go of the old namespace first.
            self._publish(view, {k: v for k, v in built.items() if k in wanted and wanted[k] == v})
        if gone:
            self._remove_pods(gone, nodes, built)
        if new:
            for net in new:
                built[net.key] = net
            for net in new:
                if not net.host_network:
                    fabric.write_pod_etc(net, self._resolv_conf(net.namespace))
            fabric.run_stages(
                fabric.pods_add_plan(self.cni, new, nodes), "add pod network namespaces"
            )
        published = self._publish(view, wanted)
        if self._update_readiness(view, wanted, nodes):
            view.refresh()
            published = self._publish(view, wanted, previous=published)
        self._load_rules(view, nodes, wanted)

    def _remove_pods(
        self, gone: list[PodNet], nodes: list[NodeNet], built: dict[str, PodNet]
    ) -> None:
        fabric.run_stages(fabric.pods_remove_plan(gone, nodes), "remove pods", ignore_errors=True)
        left = set(fabric.list_netns()) & {n.netns for n in gone if not n.host_network}
        if left:
            raise LabError(
                f"Could not remove the namespaces of {len(left)} pod(s): {', '.join(sorted(left))}.",
                f"Run `labkit down --name {self.name}` and bring the lab up again.",
            )
        fabric.remove_pod_etc(n.netns for n in gone if not n.host_network)
        for net in gone:
            built.pop(net.key, None)

    @staticmethod
    def _resolv_conf(namespace: str) -> str:
        from labkit.model.dns import render_resolv_conf

        return render_resolv_conf(namespace)

    def _publish(
        self, view: StoreView, nets: Mapping[str, PodNet], previous: dict | None = None
    ) -> dict:
        """Write workloads.json for these pods and make the agent serve exactly that."""
        from labkit.model.dns import records
        from labkit.sandbox.agent import agent_command

        services = view.all("Service")
        slices = view.all("EndpointSlice")
        pods = view.pods()
        rules, tls = ingress_rules(served_ingresses(view.all("Ingress")), services)
        document = workloads_document(pods, nets, records(services, slices, pods), rules, tls)
        outside = self._state().get("outside") or {}
        if outside.get("ports") and outside.get("addresses"):
            document["workloads"].append(
                {
                    "namespace": "outside",
                    "name": "outside",
                    "netns": naming.outside_netns(self.name),
                    "ip": fabric.GATEWAY_IP,
                    "role": "netexec",
                    "ports": outside["ports"],
                }
            )
        if document == previous:
            return document
        path = self.state_dir / WORKLOADS_FILE
        tmp = path.with_name(f".{WORKLOADS_FILE}.tmp")
        tmp.write_text(json.dumps(document))
        os.replace(tmp, path)
        try:
            answer = agent_command(str(self.state_dir), "reload", timeout=AGENT_RELOAD_TIMEOUT_S)
        except LabError:
            # The agent died (killed, or the machine ran out of memory): start a new one, which
            # reads workloads.json as it starts, and ask again.
            from labkit.sandbox.agent import start_agent

            start_agent(str(self.state_dir))
            answer = agent_command(str(self.state_dir), "reload", timeout=AGENT_RELOAD_TIMEOUT_S)
        if not answer.startswith("ok"):
            raise LabError(
                "The workload agent could not serve every pod port.",
                "Check that no two containers of a pod declare the same port, then apply again.",
                output=answer,
            )
        return document

    def _update_readiness(
        self, view: StoreView, wanted: Mapping[str, PodNet], nodes: list[NodeNet]
    ) -> bool:
        """Run every readinessProbe from the pod's node, as the kubelet does; True if any changed."""
        by_node = {n.name: n for n in nodes}
        jobs = []
        for pod in view.pods():
            ns, name = _meta(pod)
            net = wanted.get(f"{ns}/{name}")
            checks = readiness_checks(pod)
            if net is None or not checks:
                continue
            jobs.append((pod, net, by_node[net.node], checks))
        if not jobs:
            return False

        def run(job):
            pod, net, node, checks = job
            results = [_try_readiness(node.netns, net.ip, check) for check in checks]
            failed = [text for ok, text in results if not ok]
            return (
                pod,
                (not failed),
                ("; ".join(failed) if failed else "; ".join(t for _, t in results)),
            )

        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            outcomes = list(pool.map(run, jobs))
        changed = False
        for pod, ready, reason in outcomes:
            ns, name = _meta(pod)
            before = _pod_ready(pod)
            view.store.set_pod_ready(ns, name, ready, reason)
            changed |= before != ready
        return changed

    def render_rules(self, view: StoreView, node: NodeNet, wanted: Mapping[str, PodNet]) -> str:
        """The complete iptables-restore input for one node: policy (Calico), kube-proxy, CNI, hostPorts."""
        from labkit.sandbox.proxyrules import render_proxy_rules

        cluster_cidr = fabric.CLUSTER_CIDRS[self.cni]
        node_objects = view.all("Node")
        this_node = next(n for n in node_objects if n["metadata"]["name"] == node.name)
        services = view.all("Service")
        slices = view.all("EndpointSlice")
        fragments: list[Mapping[str, Sequence[str]]] = []
        local = {k: v for k, v in wanted.items() if v.node == node.name}
        pods = view.pods()
        if self.cni == "calico":
            from labkit.sandbox.policyrules import render_policy_rules

            iface_of = {
                (v.namespace, v.name): v.iface for v in local.values() if not v.host_network
            }
            fragments.append(
                render_policy_rules(
                    node.name, pods, view.all("Namespace"), view.all("NetworkPolicy"), iface_of
                )
            )
        fragments.append(
            render_proxy_rules(this_node, node_objects, services, slices, cluster_cidr)
        )
        if self.cni == "flannel":
            fragments.append(iptables.flannel_rules(node.pod_cidr, cluster_cidr))
        else:
            fragments.append(iptables.calico_nat_rules(cluster_cidr))
        fragments.append(iptables.hostport_rules(_host_ports(pods, local)))
        return iptables.compose(fragments)

    def _load_rules(
        self, view: StoreView, nodes: list[NodeNet], wanted: Mapping[str, PodNet]
    ) -> None:
        texts = {node.netns: self.render_rules(view, node, wanted) for node in nodes}
        with ThreadPoolExecutor(max_workers=len(texts)) as pool:
            list(pool.map(lambda item: iptables.restore(*item), texts.items()))

    # ---- Lab seam: running things

    def _pod(self, pod: str, namespace: str = "default") -> tuple[dict[str, Any], PodNet]:
        ns, name = split_pod_ref(pod, namespace)
        state = self._state()
        found = self._store().get("Pod", name, ns, None)
        net = (state.get("pods") or {}).get(f"{ns}/{name}")
        if not found:
            raise LabError(
                f"There is no pod {name!r} in namespace {ns!r} of lab {self.name!r}.",
                f"List the pods with `labkit status --name {self.name}` or lab.get('pods', namespace=None), "
                "and pass 'namespace/name'.",
            )
        if net is None:
            raise LabError(
                f"Pod {ns}/{name} has no network yet (it is not scheduled or has no IP).",
                "Look at its status with lab.get('pod', name, namespace) (e.g. a nodeSelector no node matches).",
            )
        return found[0], PodNet(**net)

    def _node(self, node: str) -> NodeNet:
        nodes = self._nodes(self._store())
        for n in nodes:
            if node in (n.name, n.short, n.netns):
                return n
        raise LabError(
            f"There is no node {node!r} in lab {self.name!r}.",
            f"Use one of: {', '.join(n.name for n in nodes)}.",
        )

    def exec(
        self,
        pod: str,
        command: str | Sequence[str],
        namespace: str = "default",
        timeout: float = 10.0,
    ) -> ExecResult:
        """Run a command in the pod's network namespace (its node's, for a host-network pod)."""
        from labkit.sandbox.netns import run_in_netns

        _, net = self._pod(pod, namespace)
        return run_in_netns(net.netns, _argv(command), timeout)

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command in a node's network namespace (``iptables-save``, ``ip route``...)."""
        from labkit.sandbox.netns import run_in_netns

        return run_in_netns(self._node(node).netns, _argv(command), timeout)

    def _source(self, src: str) -> tuple[str, str | None, str]:
        """(netns, resolv.conf text, label) of a probe source: a pod, a node, or OUTSIDE."""
        if src == OUTSIDE:
            return naming.outside_netns(self.name), "", OUTSIDE
        if "/" not in src:
            nodes = self._nodes(self._store())
            for n in nodes:
                if src in (n.name, n.netns):
                    return n.netns, "", n.name
        pod, net = self._pod(src)
        policy = (pod.get("spec") or {}).get("dnsPolicy") or "ClusterFirst"
        resolv = (
            self._resolv_conf(net.namespace)
            if not net.host_network or policy == "ClusterFirstWithHostNet"
            else ""
        )
        return net.netns, resolv, net.key

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        """Connect from inside ``src`` (``ns/name`` or OUTSIDE) to ``dst:port`` and report what answered."""
        return self.probe_many([(src, dst, port, protocol)], timeout)[0]

    def probe_many(self, pairs: Iterable[Any], timeout: float = 1.0) -> list[Probe]:
        """Many probes at once: ``(src, dst, port[, protocol])`` tuples or dicts with those keys."""
        from labkit.sandbox.probe import ProbeRequest, probe_many

        requests = []
        for item in pairs:
            if isinstance(item, Mapping):
                src, dst, port = item["src"], item["dst"], item["port"]
                protocol = item.get("protocol", "TCP")
            else:
                src, dst, port, *rest = item
                protocol = rest[0] if rest else "TCP"
            netns, resolv, label = self._source(str(src))
            requests.append(
                ProbeRequest(netns, str(dst), int(port), str(protocol).upper(), label, resolv)
            )
        return probe_many(requests, timeout)

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        """Answers for ``name`` through the source pod's own resolver (resolv.conf search path, ndots)."""
        from labkit.sandbox.netns import run_in_netns

        netns, _, _ = self._source(src)
        rtype = rtype.upper()
        if rtype == "A":
            result = run_in_netns(netns, ["getent", "ahostsv4", name], timeout=10)
            found: list[str] = []
            for line in result.stdout.splitlines():
                address = line.split()[0] if line.split() else ""
                if address and address not in found:
                    found.append(address)
            return found
        if rtype == "PTR" and is_ip(name):
            query = ["-x", name]  # the reverse name of an address, as `dig -x` builds it
        else:
            query = ["+search", "-t", rtype, name]
        result = run_in_netns(netns, ["dig", "+short", "+time=2", "+tries=1", *query], timeout=10)
        return [
            line.strip().rstrip(".") if rtype in ("CNAME", "PTR", "NS") else line.strip()
            for line in result.stdout.splitlines()
            if line.strip() and not line.startswith(";")
        ]

    # ---- addresses outside the cluster

    def outside_addresses(self) -> list[str]:
        """Ranges that answer in the outside namespace (besides the gateway 172.18.0.1)."""
        return list((self._state().get("outside") or {}).get("addresses") or [])

    def add_outside_address(self, cidr: str, ports: Iterable[int | tuple[int, str]] = ()) -> None:
        """Give the outside namespace a whole address range (e.g. a payment gateway's
        ``192.168.5.0/24``) and, optionally, ports it serves there like netexec (``served_by`` is
        ``outside``). Pods reach it through their node's default route, as they would reach an
        external service; nothing leaves the lab."""
        self._change_outside(cidr, present=True, ports=ports)

    def remove_outside_address(self, cidr: str) -> None:
        """Take an address range added with ``add_outside_address`` away again."""
        self._change_outside(cidr, present=False, ports=())

    def _change_outside(
        self, cidr: str, present: bool, ports: Iterable[int | tuple[int, str]]
    ) -> None:
        try:
            network = str(ipaddress.ip_network(cidr, strict=False))
            lines = fabric.outside_address_lines(network, present)
        except ValueError as exc:
            raise LabError(
                f"{cidr!r} is not an IPv4 address or range ({exc}).",
                "Give an address like 203.0.113.10 or a range like 192.168.5.0/24.",
            ) from None
        with self._writing():
            state = dict(self._state())
            outside = dict(state.get("outside") or {"addresses": [], "ports": []})
            addresses = [a for a in outside.get("addresses") or [] if a != network]
            if present:
                addresses.append(network)
                served = list(outside.get("ports") or [])
                for item in ports:
                    port, protocol = (
                        (item, "TCP")
                        if isinstance(item, int)
                        else (int(item[0]), str(item[1]).upper())
                    )
                    if {"port": port, "protocol": protocol} not in served:
                        served.append({"port": port, "protocol": protocol})
                outside["ports"] = served
            elif network not in (outside.get("addresses") or []):
                raise LabError(
                    f"{network} is not one of the outside addresses of lab {self.name!r}.",
                    f"Remove one that is there: {', '.join(outside['addresses'])}."
                    if outside.get("addresses")
                    else "Nothing needs removing: no outside address was added to this lab.",
                )
            outside["addresses"] = addresses
            fabric.run_stages(
                [[fabric.Job(naming.outside_netns(self.name)).ip(*lines)]],
                f"{'add' if present else 'remove'} outside address {network}",
            )
            state["outside"] = outside
            store = self._store()
            self._state_file.write({**state, "updated": time.time()})
            self._cache = None
            built = self._built(state)
            self._publish(StoreView(store), built)


def _argv(command: str | Sequence[str]) -> list[str]:
    """A shell string runs through ``sh -c`` (pipes work); a list runs as given."""
    if isinstance(command, str):
        if not command.strip():
            raise LabError(
                "No command was given to run.", "Pass a command, e.g. 'ip addr' or ['ip', 'addr']."
            )
        return ["sh", "-c", command]
    return [str(c) for c in command]


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _host_ports(
    pods: Iterable[Mapping[str, Any]], local: Mapping[str, PodNet]
) -> list[tuple[str, str, str, int, int, str]]:
    out = []
    for pod in pods:
        ns, name = _meta(pod)
        net = local.get(f"{ns}/{name}")
        if net is None or net.host_network:
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("hostPort"):
                    out.append(
                        (
                            f"{ns}/{name}",
                            net.ip,
                            str(port.get("protocol") or "TCP"),
                            int(port["hostPort"]),
                            int(port["containerPort"]),
                            str(port.get("hostIP") or ""),
                        )
                    )
    return out


def _try_readiness(node_netns: str, ip: str, check: Mapping[str, Any]) -> tuple[bool, str]:
    """One readiness probe from the node: TCP connect, or HTTP GET expecting 200-399."""
    from labkit.sandbox.netns import socket_in_netns

    kind, port = check["kind"], check["port"]
    if kind == "other":
        return (
            True,
            f"container {check['container']}: exec/grpc probes are not run by the sandbox (counted as passing)",
        )
    if port is None:
        return (
            False,
            f"container {check['container']}: readiness probe names a port the container does not declare",
        )
    target = f"{ip}:{port}"
    sock = socket_in_netns(node_netns, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(check["timeout"])
    try:
        try:
            sock.connect((ip, port))
        except OSError as exc:
            return False, f"Readiness probe failed: dial tcp {target}: {exc.strerror or exc}"
        if kind == "tcpSocket" or check["scheme"] == "HTTPS":
            return True, f"tcp {target} accepted"
        sock.sendall(
            f"GET {check['path']} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: kube-probe/1.36\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n" not in head and len(head) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        parts = head.split(b"\r\n", 1)[0].split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if 200 <= status < 400:
            return True, f"GET http://{target}{check['path']} answered {status}"
        return (
            False,
            f"Readiness probe failed: HTTP probe failed with statuscode: {status or 'none'}",
        )
    except OSError as exc:
        return False, f"Readiness probe failed: {target}: {exc.strerror or exc}"
    finally:
        sock.close()
