"""The Kind Lab: the seam's operations on a real Kind cluster. Objects go through the Kubernetes
API (`labkit.kind.objects`), commands through the exec API and `docker exec` for nodes, probes
and lookups through an agnhost container added to the source pod (`labkit.kind.probe`), and
probes from OUTSIDE through the lab's outside container on the kind network
(`labkit.kind.hostcontainers`)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from labkit import inputs
from labkit.errors import LabError
from labkit.kind import cluster, detect, handmade, hostcontainers, pins, tools
from labkit.kind import probe as probes
from labkit.kind.objects import KindObjects, api_reason
from labkit.kind.plan import default_paths
from labkit.model.objects import meta, name_of, pod_ip, pod_phase
from labkit.values import (
    OUTSIDE,
    Capabilities,
    ExecResult,
    HttpReply,
    ObjectRef,
    Probe,
    split_pod_ref,
)

PROBE_START_TIMEOUT_S = 180.0
"""First probe from a pod waits for the agnhost image to be pulled onto its node."""
MAX_PROBE_THREADS = 32


# --------------------------------------------------------------------------- pure helpers


def as_argv(command: str | Sequence[object]) -> list[str]:
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


def exec_interactive_argv(
    kubectl: str,
    kubeconfig: str,
    lab_name: str,
    pod_ref: tuple[str, str],
    argv: Sequence[str],
    container: str | None,
    tty: bool,
) -> list[str]:
    """``kubectl exec -i[t]`` on the lab's context for ``(namespace, name)``: stdin always
    attached, a terminal only when there is one (as kubectl asks)."""
    namespace, name = pod_ref
    flags = ["-it"] if tty else ["-i"]
    if container is not None:
        flags += ["-c", container]
    return [
        kubectl, "--kubeconfig", kubeconfig, "--context", f"kind-{lab_name}",
        "exec", *flags, "-n", namespace, name, "--", *argv,
    ]  # fmt: skip


class ProbeJob(NamedTuple):
    """One probe of a `probe_many` batch."""

    src: str
    dst: str
    port: int
    protocol: str = "TCP"


# --------------------------------------------------------------------------- the Lab


class KindLab:
    """A running Kind lab, driven through its own kubeconfig."""

    backend = "kind"

    def __init__(
        self,
        name: str,
        cni: str,
        kube_proxy_mode: str,
        kubeconfig: dict[str, Any],
        *,
        load_balancer: bool = False,
    ) -> None:
        self.name = name
        self.cni = cni
        self.kube_proxy_mode = kube_proxy_mode
        self.capabilities: Capabilities = detect.capabilities(cni, kube_proxy_mode, load_balancer)
        self._outside_ready = False
        self.objects = KindObjects(name, kubeconfig)
        self._lock = threading.Lock()
        self._probe_ready: set[tuple[str, str, str]] = set()
        self._probe_locks: dict[tuple[str, str], threading.Lock] = {}

    def __repr__(self) -> str:
        return (
            f"KindLab(name={self.name!r}, cni={self.cni!r}, "
            f"kube_proxy_mode={self.kube_proxy_mode!r})"
        )

    def uid(self) -> str:
        """The cluster's identity: the uid of its kube-system namespace (new with every
        `kind create cluster`, the usual cluster id)."""
        found = self.get("namespace", "kube-system", namespace=None)
        if not found:
            raise LabError(
                f"Kind cluster {self.name!r} has no kube-system namespace.",
                f"Recreate it: `labkit down --name {self.name}`, then "
                f"`labkit up --backend kind --name {self.name}`.",
            )
        return str(meta(found[0])["uid"])

    @classmethod
    def attach(cls, name: str) -> KindLab | None:
        """The lab ``name`` if a Kind cluster of that name runs one of our CNIs, else None."""
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
        serving = detect.cloud_provider_serves(
            hostcontainers.container_state(hostcontainers.CLOUD_PROVIDER),
            probe_lab.get("ingressclasses", namespace=None),
        )
        return cls(name, cni, mode, kubeconfig, load_balancer=serving)

    # ----------------------------------------------------------------- seam: objects

    def apply(self, manifests: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Validate every document, dry-run them all on the server, then server-side apply them."""
        return self.objects.apply(manifests, namespace)

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects as plain dicts in the Kubernetes JSON shape; ``namespace=None`` means all
        namespaces."""
        return self.objects.get(kind, name, namespace, selector)

    def delete(self, manifests_or_refs: Any) -> None:
        """Delete objects named by ObjectRefs or by manifests; objects already gone are fine."""
        self.objects.delete(manifests_or_refs)

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
        timeout = inputs.check_timeout(timeout)
        ns, name = split_pod_ref(pod, namespace)
        inputs.check_ref(name, ns)
        argv = as_argv(command)
        if container is None:
            found = self.get("pod", name, namespace=ns)
            if not found:
                raise LabError(
                    f"Pod {ns}/{name} does not exist in lab {self.name!r}.",
                    f"List the pods with `kubectl get pods -n {ns}` and use one of those names.",
                )
            container = found[0]["spec"]["containers"][0]["name"]
        core = self.objects.core(own_client=True)
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
                f"Cannot exec into pod {ns}/{name}: {api_reason(exc)}",
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

    def exec_interactive(
        self,
        pod: str,
        argv: Sequence[str],
        namespace: str = "default",
        container: str | None = None,
        tty: bool = True,
    ) -> int:
        """``kubectl exec -it`` into the pod with this process's terminal; its exit code."""
        ns, name = split_pod_ref(pod, namespace)
        inputs.check_ref(name, ns)
        command = exec_interactive_argv(
            tools.find("kubectl"),
            str(default_paths(self.name).user_kubeconfig),
            self.name,
            (ns, name),
            [str(a) for a in argv],
            container,
            tty and sys.stdin.isatty(),
        )
        return subprocess.run(command, check=False).returncode

    def logs(self, pod: str, namespace: str = "default", container: str | None = None) -> str:
        """What the pod's container printed, read through the API (``kubectl logs``)."""
        ns, name = split_pod_ref(pod, namespace)
        inputs.check_ref(name, ns)
        try:
            text = self.objects.core().read_namespaced_pod_log(name, ns, container=container)
        except ApiException as exc:
            raise LabError(
                f"Cannot read the logs of pod {ns}/{name}: {api_reason(exc)}",
                f"Check the pod and its containers: `kubectl describe pod -n {ns} {name}`.",
            ) from None
        return str(text)

    def nodes(self) -> list[str]:
        """Node names (Kind node containers carry the same names)."""
        return [name_of(n) for n in self.get("nodes", namespace=None)]

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command on a node with `docker exec` (a Kind node is a container)."""
        return self._docker(node, ["docker", "exec", node, *as_argv(command)], timeout)

    def _docker(self, node: str, argv: list[str], timeout: float = 10.0) -> ExecResult:
        """Run a ``docker exec`` argv on one of the lab's nodes."""
        timeout = inputs.check_timeout(timeout)
        names = self.nodes()
        if node not in names:
            raise LabError(
                f"Lab {self.name!r} has no node {node!r}.", f"Use one of: {', '.join(names)}."
            )
        return self._run_docker(argv, timeout)

    def _run_docker(self, argv: list[str], timeout: float) -> ExecResult:
        """Run a ``docker`` argv, its timeout an exit code 124 as ``timeout`` gives."""
        try:
            proc = subprocess.run(
                [tools.find("docker"), *argv[1:]], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else ""
            return ExecResult(tuple(argv), 124, out or "", f"(timed out after {timeout:g} s)")
        return ExecResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    # ----------------------------------------------------------------- seam: hand-made namespaces

    def netns_add(self, node: str, name: str) -> None:
        """``ip netns add NAME`` in the node container."""
        if name in self.netns_list(node):
            raise LabError(
                f"Node {node} already has a network namespace {name!r}.",
                f"Remove it first with lab.netns_delete({node!r}, {name!r}), or pick another name.",
            )
        self._checked(node, handmade.add_argv(node, name), f"create namespace {name!r}")

    def netns_delete(self, node: str, name: str) -> None:
        """``ip netns delete NAME`` in the node container, when it is there."""
        if name in self.netns_list(node):
            self._checked(node, handmade.delete_argv(node, name), f"delete namespace {name!r}")

    def netns_list(self, node: str) -> list[str]:
        """The hand-made namespaces ``ip netns list`` shows in the node container."""
        listed = self._checked(node, handmade.list_argv(node), "list namespaces")
        return handmade.parse_list(listed.stdout)

    def netns_exec(
        self, node: str, name: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """``ip netns exec NAME CMD`` in the node container."""
        self._hand_exists(node, name)
        return self._docker(node, handmade.exec_argv(node, name, as_argv(command)), timeout)

    def _hand_exists(self, node: str, name: str) -> None:
        if inputs.check_hand_netns(name) not in self.netns_list(node):
            raise LabError(
                f"Node {node} has no network namespace {name!r}.",
                f"Create it with lab.netns_add({node!r}, {name!r}).",
            )

    def _checked(self, node: str, argv: list[str], what: str) -> ExecResult:
        result = self._docker(node, argv)
        if not result.ok:
            raise LabError(
                f"Could not {what} on node {node}: {result.stderr.strip() or 'it failed'}.",
                f"Look at the node with `docker exec {node} ip netns list`.",
            )
        return result

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
                    f"Use a pod name from `kubectl get pods -n {ns}` "
                    f"(or {OUTSIDE!r} for a client outside the cluster).",
                )
            pod = pods[0]
            key = (ns, name, str(meta(pod).get("uid", "")))
            if key in self._probe_ready:
                return
            phase = pod_phase(pod)
            if phase != "Running":
                raise LabError(
                    f"Probe source pod {ns}/{name} is {phase}, not Running.",
                    f"Wait until it is Running (`kubectl get pod -n {ns} {name} -w`).",
                )
            state = probes.probe_container_state(pod)
            if state == "absent":
                core = self.objects.core()
                try:
                    # The reply is not needed; leaving it raw avoids strict model parsing of
                    # the pod.
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
                        f"Cannot add the probe container to pod {ns}/{name}: {api_reason(exc)}",
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
                        f"The node may still be pulling {pins.AGNHOST_IMAGE}; on an offline "
                        "machine, `kind load docker-image` it first.",
                    )
                time.sleep(0.5)
                pods = self.get("pod", name, namespace=ns)
                state = probes.probe_container_state(pods[0]) if pods else "terminated: pod deleted"
            self._probe_ready.add(key)

    def _ensure_outside(self) -> None:
        """Start the lab's outside container unless it runs (a lab made before it existed, or one
        whose container was removed, gets it on its first probe from OUTSIDE)."""
        with self._lock:
            if not self._outside_ready:
                name = hostcontainers.outside_name(self.name)
                hostcontainers.start(name, hostcontainers.outside_run_argv(self.name))
                self._outside_ready = True

    def _destination(self, dst: str) -> str:
        """A pod reference "ns/name" becomes that pod's IP; anything else is used as written."""
        if "/" not in dst:
            return dst
        ns, name = split_pod_ref(dst)
        pods = self.get("pod", name, namespace=ns)
        ip = pod_ip(pods[0]) if pods else None
        if not ip:
            raise LabError(
                f"Probe destination pod {dst} has no IP (missing or not started).",
                "Use a running pod, a Service name, or an IP address.",
            )
        return ip

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        """Connect from inside ``src``'s network namespace (or from the lab's outside container for
        OUTSIDE) to dst:port."""
        timeout = inputs.check_timeout(timeout)
        src, dst, port, protocol = inputs.check_probe((src, dst, port, protocol))
        target = self._destination(dst)
        hand = inputs.hand_source(src)
        if src == OUTSIDE:
            self._ensure_outside()
            command = probes.probe_command(target, port, protocol, timeout)
            argv = hostcontainers.outside_exec_argv(self.name, command)
            result = self._run_docker(argv, timeout=2 * timeout + 15)
            reading = probes.parse_probe_output(result.stdout + result.stderr, protocol)
        elif hand is not None:
            self._hand_exists(*hand)
            argv = handmade.probe_argv(*hand, target, port, protocol, timeout)
            result = self._docker(hand[0], argv, timeout=2 * timeout + 15)
            reading = probes.parse_probe_output(result.stdout + result.stderr, protocol)
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
            http_status=reading.http_status,
        )

    def http_request(
        self,
        src: str,
        dst: str,
        port: int,
        method: str = "GET",
        path: str = "/",
        timeout: float = 1.0,
    ) -> HttpReply:
        """One HTTP request from the probe container of pod ``src`` to ``dst:port`` (curl, after
        `agnhost connect` classified the connection)."""
        timeout = inputs.check_timeout(timeout)
        src, dst, port, _ = inputs.check_probe((src, dst, port))
        method, path = inputs.check_http_request(method, path)
        if src == OUTSIDE or inputs.hand_source(src) is not None:
            raise LabError(
                f"HTTP requests start from a pod, not {src!r}.",
                'Send the request from a pod ("namespace/name").',
            )
        ns, name = split_pod_ref(src)
        self._ensure_probe_container(ns, name)
        result = self.exec(
            f"{ns}/{name}",
            probes.request_command(self._destination(dst), port, method, path, timeout),
            container=probes.PROBE_CONTAINER,
            timeout=2 * timeout + 15,
        )
        reading = probes.parse_request_output(result.stdout + result.stderr)
        return HttpReply(src, dst, port, method, path, *reading)

    def probe_many(self, pairs: Iterable[tuple[Any, ...]], timeout: float = 1.0) -> list[Probe]:
        """Run many probes at once; each pair is (src, dst, port) or (src, dst, port, protocol)."""
        timeout = inputs.check_timeout(timeout)
        jobs = [ProbeJob(*inputs.check_probe(pair)) for pair in pairs]
        if not jobs:
            return []
        sources = {
            split_pod_ref(job.src)
            for job in jobs
            if job.src != OUTSIDE and inputs.hand_source(job.src) is None
        }
        if any(job.src == OUTSIDE for job in jobs):
            self._ensure_outside()
        with ThreadPoolExecutor(
            max_workers=min(MAX_PROBE_THREADS, max(len(jobs), len(sources)))
        ) as pool:
            list(pool.map(lambda source: self._ensure_probe_container(*source), sources))
            return list(
                pool.map(
                    lambda job: self.probe(job.src, job.dst, job.port, job.protocol, timeout),
                    jobs,
                )
            )

    def add_outside_address(self, cidr: str, ports: Iterable[int | tuple[int, str]] = ()) -> None:
        """Refused: on Kind the range would have to exist on the host's own network, which labkit
        never changes (``capabilities.outside_addresses`` is false)."""
        raise LabError(
            f"Kind lab {self.name!r} cannot serve the outside range {cidr}: labkit never "
            "changes the host's own network.",
            "Use the sandbox backend for scenarios with outside hosts "
            "(`labkit up --backend sandbox`).",
        )

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        """Look ``name`` up through ``src``'s resolver (its search list and ndots apply)."""
        name, rtype = inputs.check_lookup(name, rtype)
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
