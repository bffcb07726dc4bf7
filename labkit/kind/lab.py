"""The Kind Lab: the seam's operations against a real Kind cluster through the Kubernetes API
(official client, the lab's own kubeconfig), `docker exec` for nodes, and agnhost for probes."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    NotFoundError,
    ResourceNotFoundError,
    ResourceNotUniqueError,
)
from kubernetes.stream import stream

from labkit import manifests
from labkit.errors import LabError
from labkit.kind import cluster, detect, tools
from labkit.kind import probe as probes
from labkit.values import OUTSIDE, Capabilities, ExecResult, ObjectRef, Probe, split_pod_ref

FIELD_MANAGER = "labkit"
PROBE_START_TIMEOUT_S = 180.0
"""First probe from a pod waits for the agnhost image to be pulled onto its node."""
MAX_PROBE_THREADS = 32


# --------------------------------------------------------------------------- pure helpers


def as_argv(command: str | Sequence[str]) -> list[str]:
    """A string runs through ``sh -c`` (pipes and globs work); a list runs as given."""
    return ["sh", "-c", command] if isinstance(command, str) else [str(c) for c in command]


def exit_code(status_text: str) -> tuple[int, str]:
    """Exit code and message from the exec API's status channel (a metav1.Status in JSON)."""
    try:
        status = json.loads(status_text) if status_text else {}
    except json.JSONDecodeError:
        return 1, status_text.strip()
    if not status or status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), status.get("message", "")
            except (TypeError, ValueError):
                break
    return 1, status.get("message", "exec failed")


def selector_string(selector: str | Mapping[str, Any] | None) -> str | None:
    """A label selector as the API's query string: "a=b,c!=d", from a string, a map, or a LabelSelector."""
    if selector is None or isinstance(selector, str):
        return selector or None
    if "matchLabels" in selector or "matchExpressions" in selector:
        parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
        for expr in selector.get("matchExpressions") or []:
            key, op, values = expr["key"], expr["operator"], expr.get("values") or []
            if op == "In":
                parts.append(f"{key} in ({','.join(values)})")
            elif op == "NotIn":
                parts.append(f"{key} notin ({','.join(values)})")
            elif op == "Exists":
                parts.append(key)
            elif op == "DoesNotExist":
                parts.append(f"!{key}")
            else:
                raise LabError(
                    f"Unknown selector operator {op!r}.", "Use In, NotIn, Exists or DoesNotExist."
                )
        return ",".join(parts) or None
    return ",".join(f"{k}={v}" for k, v in selector.items()) or None


def apply_order(docs: Sequence[dict]) -> list[dict]:
    """Namespaces and CRDs first, so the objects that live in them can be created in one batch."""
    first = {"Namespace": 0, "CustomResourceDefinition": 1}
    return sorted(docs, key=lambda d: first.get(str(d.get("kind")), 2))


def with_namespace(docs: Sequence[dict], namespace: str | None) -> list[dict]:
    """Fill in the namespace of namespaced objects that do not name one (``namespace`` or default)."""
    out = []
    for doc in docs:
        doc = dict(doc)
        if manifests.is_namespaced(str(doc.get("kind", ""))) and not (
            doc.get("metadata") or {}
        ).get("namespace"):
            doc["metadata"] = {**(doc.get("metadata") or {}), "namespace": namespace or "default"}
        out.append(doc)
    return out


def _api_reason(exc: ApiException) -> str:
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason or exc)


# --------------------------------------------------------------------------- the Lab


class KindLab:
    """A running Kind lab, driven through its own kubeconfig."""

    backend = "kind"

    def __init__(
        self, name: str, cni: str, kube_proxy_mode: str, kubeconfig: dict[str, Any]
    ) -> None:
        self.name = name
        self.cni = cni
        self.kube_proxy_mode = kube_proxy_mode
        self.capabilities: Capabilities = detect.capabilities(cni, kube_proxy_mode)
        self._configuration = k8s.Configuration()
        k8s_config.load_kube_config_from_dict(
            kubeconfig, client_configuration=self._configuration, persist_config=False
        )
        self._api = k8s.ApiClient(self._configuration)
        self._dynamic: DynamicClient | None = None
        self._lock = threading.Lock()
        self._probe_ready: set[tuple[str, str, str]] = set()
        self._probe_locks: dict[tuple[str, str], threading.Lock] = {}

    def __repr__(self) -> str:
        return f"KindLab(name={self.name!r}, cni={self.cni!r}, kube_proxy_mode={self.kube_proxy_mode!r})"

    @classmethod
    def attach(cls, name: str) -> KindLab | None:
        """The lab named ``name`` if a Kind cluster of that name runs one of our CNIs, else None."""
        if name not in cluster.cluster_names():
            return None
        kubeconfig = yaml.safe_load(cluster.kubeconfig_text(name))
        probe_lab = cls(name, "flannel", "iptables", kubeconfig)
        daemonsets = probe_lab.get("daemonsets", namespace=None)
        cni = detect.detect_cni(daemonsets)
        if cni is None:
            return None
        kube_proxy = probe_lab.get("configmap", "kube-proxy", namespace="kube-system")
        mode = detect.detect_kube_proxy_mode(daemonsets, kube_proxy[0] if kube_proxy else None)
        return cls(name, cni, mode, kubeconfig)

    # ----------------------------------------------------------------- API plumbing

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                try:
                    self._dynamic = DynamicClient(self._api)
                except Exception as exc:
                    raise LabError(
                        f"Cannot reach the API server of Kind lab {self.name!r}: {exc}",
                        f"Check that the lab runs (`kind get clusters`, `docker ps`); "
                        f"`labkit down --name {self.name}` and `labkit up` recreate it.",
                    ) from None
            return self._dynamic

    def _resource(self, kind: str, api_version: str | None = None):
        """The API resource for a kind spelled as kubectl accepts it (or a Kind + apiVersion)."""
        try:
            if api_version:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            try:
                canonical = manifests.canonical_kind(kind)
            except LabError:
                return self._discover(kind)
            return self.dynamic.resources.get(
                api_version=manifests.api_version_of(canonical), kind=canonical
            )
        except (ResourceNotFoundError, ResourceNotUniqueError):
            raise LabError(
                f"This cluster serves no kind {kind!r}"
                + (f" in {api_version}" if api_version else "")
                + ".",
                "Check the spelling (`kubectl api-resources` lists what exists); custom kinds need "
                "their CRD installed first.",
            ) from None

    def _discover(self, spelling: str):
        """A kind labkit does not list (a CRD such as TigeraStatus): match kind, plural, singular or short name."""
        wanted = spelling.strip().lower()
        for resource in self.dynamic.resources.search():
            if getattr(resource, "subresource", None) or "/" in (
                getattr(resource, "name", "") or "/"
            ):
                continue
            names = {
                str(resource.kind).lower(),
                str(resource.name).lower(),
                str(getattr(resource, "singular_name", "") or "").lower(),
                *[str(s).lower() for s in getattr(resource, "short_names", None) or []],
            }
            if wanted in names:
                return resource
        raise ResourceNotFoundError(spelling)

    @staticmethod
    def _plain(obj: Any, kind: str, api_version: str) -> dict:
        data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
        data.setdefault("apiVersion", api_version)
        data.setdefault("kind", kind)
        return data

    # ----------------------------------------------------------------- seam: objects

    def apply(self, manifests_source: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Validate every document, dry-run them on the server, then server-side apply them all."""
        docs = apply_order(with_namespace(manifests.load(manifests_source), namespace))
        manifests.validate(docs)
        created_namespaces = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
        resources = [self._resource(d["kind"], d["apiVersion"]) for d in docs]
        namespaces = [
            manifests.namespace_of(d) if r.namespaced else None for d, r in zip(docs, resources)
        ]
        problems = []
        for doc, resource, ns in zip(docs, resources, namespaces):
            try:
                resource.server_side_apply(
                    body=doc,
                    namespace=ns,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                    dry_run="All",
                )
            except ApiException as exc:
                reason = _api_reason(exc)
                if exc.status == 404 and ns in created_namespaces:
                    continue  # its namespace is created by this same batch
                problems.append(f"{manifests.describe(doc)}: {reason}")
        if problems:
            raise LabError(
                "The API server refused these objects, so nothing was applied:\n  - "
                + "\n  - ".join(problems),
                "Fix the fields named above and apply again.",
            )
        refs = []
        for doc, resource, ns in zip(docs, resources, namespaces):
            try:
                resource.server_side_apply(
                    body=doc, namespace=ns, field_manager=FIELD_MANAGER, force_conflicts=True
                )
            except ApiException as exc:
                done = ", ".join(str(r) for r in refs) or "none"
                raise LabError(
                    f"The API server rejected {manifests.describe(doc)}: {_api_reason(exc)}",
                    f"Fix it and apply again (already applied: {done}).",
                ) from None
            refs.append(ObjectRef(doc["kind"], doc["metadata"]["name"], ns))
        return refs

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | dict | None = None,
    ) -> list[dict]:
        """Objects as plain dicts in the Kubernetes JSON shape; ``namespace=None`` means all namespaces."""
        resource = self._resource(kind)
        ns = namespace if resource.namespaced else None
        try:
            if name and (ns or not resource.namespaced):
                return [
                    self._plain(
                        resource.get(name=name, namespace=ns), resource.kind, resource.group_version
                    )
                ]
            listed = resource.get(
                namespace=ns,
                label_selector=selector_string(selector),
                field_selector=f"metadata.name={name}" if name else None,
            )
        except NotFoundError:
            return []
        except ApiException as exc:
            raise LabError(
                f"Listing {kind} failed: {_api_reason(exc)}",
                "Check that the lab is running (`labkit status`).",
            ) from None
        items = listed.to_dict().get("items") or []
        return [self._plain(i, resource.kind, resource.group_version) for i in items]

    def delete(self, manifests_or_refs: Any) -> None:
        """Delete objects named by ObjectRefs or by manifests; objects already gone are fine."""
        items = (
            [manifests_or_refs] if isinstance(manifests_or_refs, ObjectRef) else manifests_or_refs
        )
        targets: list[tuple[str, str | None, str, str | None]] = []
        if (
            isinstance(items, (list, tuple))
            and items
            and all(isinstance(i, ObjectRef) for i in items)
        ):
            targets = [(r.kind, None, r.name, r.namespace) for r in items]
        else:
            for doc in with_namespace(manifests.load(items), None):
                targets.append(
                    (
                        doc["kind"],
                        doc.get("apiVersion"),
                        doc["metadata"]["name"],
                        manifests.namespace_of(doc),
                    )
                )
        last = {"Namespace": 2, "CustomResourceDefinition": 1}
        targets.sort(key=lambda t: last.get(t[0], 0))  # namespaces after what lives in them
        for kind, api_version, name, ns in targets:
            resource = self._resource(kind, api_version)
            try:
                resource.delete(name=name, namespace=ns if resource.namespaced else None)
            except NotFoundError:
                continue
            except ApiException as exc:
                raise LabError(
                    f"Deleting {kind}/{name} failed: {_api_reason(exc)}",
                    "Check the name and namespace, then try again.",
                ) from None

    # ----------------------------------------------------------------- seam: commands

    def exec(
        self,
        pod: str,
        command: str | Sequence[str],
        namespace: str = "default",
        timeout: float = 10.0,
        container: str | None = None,
    ) -> ExecResult:
        """Run a command in a pod's container through the Kubernetes exec API."""
        ns, name = split_pod_ref(pod, namespace)
        argv = as_argv(command)
        if container is None:
            found = self.get("pod", name, namespace=ns)
            if not found:
                raise LabError(
                    f"Pod {ns}/{name} does not exist in lab {self.name!r}.",
                    f"List the pods with `kubectl get pods -n {ns}` and use one of those names.",
                )
            container = found[0]["spec"]["containers"][0]["name"]
        # stream() swaps the ApiClient's transport while it runs, so each exec gets its own client.
        core = k8s.CoreV1Api(k8s.ApiClient(self._configuration))
        try:
            resp = stream(
                core.connect_get_namespaced_pod_exec,
                name,
                ns,
                command=argv,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except ApiException as exc:
            raise LabError(
                f"Cannot exec into pod {ns}/{name}: {_api_reason(exc)}",
                f"Check that the pod exists and is Running (`kubectl get pod -n {ns} {name}`).",
            ) from None
        try:
            resp.run_forever(timeout=timeout)
            stdout, stderr = resp.read_stdout(), resp.read_stderr()
            if resp.is_open():
                resp.close()
                return ExecResult(
                    tuple(argv), 124, stdout, stderr + f"\n(timed out after {timeout:g} s)"
                )
            code, message = exit_code(resp.read_channel(3))
        finally:
            if resp.is_open():
                resp.close()
        if code and message and not stderr:
            stderr = message
        return ExecResult(tuple(argv), code, stdout, stderr)

    def nodes(self) -> list[str]:
        """Node names (Kind node containers carry the same names)."""
        return [n["metadata"]["name"] for n in self.get("nodes", namespace=None)]

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command on a node with `docker exec` (a Kind node is a container)."""
        names = self.nodes()
        if node not in names:
            raise LabError(
                f"Lab {self.name!r} has no node {node!r}.", f"Use one of: {', '.join(names)}."
            )
        argv = ["docker", "exec", node, *as_argv(command)]
        try:
            proc = subprocess.run(
                [tools.find("docker"), *argv[1:]], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            return ExecResult(tuple(argv), 124, out or "", f"(timed out after {timeout:g} s)")
        return ExecResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    # ----------------------------------------------------------------- seam: probes

    def _ensure_probe_container(self, ns: str, name: str) -> None:
        """Add the agnhost ephemeral container to a pod once and wait until it runs."""
        with self._lock:
            lock = self._probe_locks.setdefault((ns, name), threading.Lock())
        with lock:
            pods = self.get("pod", name, namespace=ns)
            if not pods:
                raise LabError(
                    f"Probe source pod {ns}/{name} does not exist.",
                    f"Use a pod name from `kubectl get pods -n {ns}` (or {OUTSIDE!r} for the host).",
                )
            pod = pods[0]
            key = (ns, name, pod["metadata"].get("uid", ""))
            if key in self._probe_ready:
                return
            phase = (pod.get("status") or {}).get("phase")
            if phase != "Running":
                raise LabError(
                    f"Probe source pod {ns}/{name} is {phase or 'not running'}.",
                    f"Wait until it is Running (`kubectl get pod -n {ns} {name} -w`).",
                )
            state = probes.probe_container_state(pod)
            if state == "absent":
                core = k8s.CoreV1Api(self._api)
                try:
                    # The reply is not needed; leaving it raw avoids strict model parsing of the pod.
                    reply = core.patch_namespaced_pod_ephemeralcontainers(
                        name,
                        ns,
                        probes.ephemeral_patch(),
                        _preload_content=False,
                        _content_type="application/strategic-merge-patch+json",
                    )
                    getattr(reply, "release_conn", lambda: None)()
                except ApiException as exc:
                    raise LabError(
                        f"Cannot add the probe container to pod {ns}/{name}: {_api_reason(exc)}",
                        "Probes need ephemeral containers; a restrictive Pod Security level on "
                        "the namespace can forbid them.",
                    ) from None
            deadline = time.monotonic() + PROBE_START_TIMEOUT_S
            while state != "running":
                if state.startswith("terminated"):
                    raise LabError(
                        f"The probe container in pod {ns}/{name} stopped ({state}).",
                        "Delete and recreate the pod, then probe again.",
                    )
                if time.monotonic() > deadline:
                    raise LabError(
                        f"The probe container in pod {ns}/{name} did not start ({state}).",
                        f"The node may still be pulling {probes.pins.AGNHOST_IMAGE}; on an offline "
                        "machine, `kind load docker-image` it first.",
                    )
                time.sleep(0.5)
                pods = self.get("pod", name, namespace=ns)
                state = probes.probe_container_state(pods[0]) if pods else "terminated: pod deleted"
            self._probe_ready.add(key)

    def _destination(self, dst: str) -> str:
        """A pod reference "ns/name" becomes that pod's IP; anything else is used as written."""
        if "/" not in dst:
            return dst
        ns, name = split_pod_ref(dst)
        pods = self.get("pod", name, namespace=ns)
        ip = pods and (pods[0].get("status") or {}).get("podIP")
        if not ip:
            raise LabError(
                f"Probe destination pod {dst} has no IP (missing or not started).",
                "Use a running pod, a Service name, or an IP address.",
            )
        return ip

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        """Connect from inside ``src``'s network namespace (or from the host for OUTSIDE) to dst:port."""
        protocol = protocol.upper()
        target = self._destination(dst)
        if src == OUTSIDE:
            reading = probes.outside_probe(target, port, protocol, timeout)
        else:
            ns, name = split_pod_ref(src)
            self._ensure_probe_container(ns, name)
            result = self.exec(
                f"{ns}/{name}",
                probes.probe_command(target, port, protocol, timeout),
                container=probes.PROBE_CONTAINER,
                timeout=2 * timeout + 15,
            )
            reading = probes.parse_probe_output(result.stdout + result.stderr, protocol)
        return Probe(
            src=src,
            dst=dst,
            port=int(port),
            protocol=protocol,
            outcome=reading.outcome,
            latency_s=reading.latency_s,
            served_by=reading.served_by,
            client_ip=reading.client_ip,
            detail=reading.detail,
        )

    def probe_many(self, pairs: Iterable[tuple], timeout: float = 1.0) -> list[Probe]:
        """Run many probes at once; each pair is (src, dst, port) or (src, dst, port, protocol)."""
        jobs = [tuple(p) if len(p) == 4 else (*p, "TCP") for p in pairs]
        if not jobs:
            return []
        sources = {split_pod_ref(j[0]) for j in jobs if j[0] != OUTSIDE}
        with ThreadPoolExecutor(
            max_workers=min(MAX_PROBE_THREADS, max(len(jobs), len(sources)))
        ) as pool:
            list(pool.map(lambda s: self._ensure_probe_container(*s), sources))
            return list(pool.map(lambda j: self.probe(j[0], j[1], j[2], j[3], timeout), jobs))

    def add_outside_address(self, cidr: str, ports: Iterable[int | tuple[int, str]] = ()) -> None:
        """Refused: on Kind the range would have to exist on the host's own network, which labkit
        never changes (``capabilities.outside_addresses`` is false)."""
        raise LabError(
            f"Kind lab {self.name!r} cannot serve the outside range {cidr}: labkit never "
            "changes the host's own network.",
            "Use the sandbox backend for scenarios with outside hosts (`labkit up --backend sandbox`).",
        )

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        """Look ``name`` up through ``src``'s resolver (its search list and ndots apply)."""
        if src == OUTSIDE:
            raise LabError(
                "Cluster DNS answers inside the cluster only.", 'Resolve from a pod ("ns/name").'
            )
        ns, pod = split_pod_ref(src)
        self._ensure_probe_container(ns, pod)
        result = self.exec(
            f"{ns}/{pod}",
            probes.resolve_command(name, rtype),
            container=probes.PROBE_CONTAINER,
            timeout=probes.DIG_TIMEOUT_S * 3 + 5,
        )
        text = result.stdout + result.stderr
        if probes.dig_failed(text, result.returncode):
            raise LabError(
                f"Pod {ns}/{pod} reached no DNS server while looking up {name!r}.",
                "Check CoreDNS (`kubectl -n kube-system get pods -l k8s-app=kube-dns`) and any "
                "NetworkPolicy that limits egress to port 53.",
                output=text,
            )
        return probes.parse_dig(result.stdout, rtype)
