"""The Kind Lab: the seam's operations on a real Kind cluster. Objects go through the Kubernetes
API (`labkit.kind.objects`), commands through the exec API and `docker exec` for nodes, probes
and lookups through an agnhost container added to the source pod (`labkit.kind.probe`), and
probes from OUTSIDE through the lab's outside container on the kind network
(`labkit.kind.hostcontainers`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import yaml
from kubernetes.client.exceptions import ApiException

from labkit import inputs
from labkit.errors import LabError
from labkit.kind import cluster, detect, handmade, hostcontainers, pins
from labkit.kind import probe as probes
from labkit.kind.lab_access import KindAccess
from labkit.kind.objects import KindObjects, api_reason
from labkit.model.objects import meta, pod_ip, pod_phase
from labkit.values import (
    OUTSIDE,
    Capabilities,
    HttpReply,
    Probe,
    split_pod_ref,
)

PROBE_START_TIMEOUT_S = 180.0
"""First probe from a pod waits for the agnhost image to be pulled onto its node."""
MAX_PROBE_THREADS = 32


class ProbeJob(NamedTuple):
    """One probe of a `probe_many` batch."""

    src: str
    dst: str
    port: int
    protocol: str = "TCP"


# --------------------------------------------------------------------------- the Lab


class KindLab(KindAccess):
    """A running Kind lab, driven through its own kubeconfig (its objects and commands from
    `labkit.kind.lab_access`)."""

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
        super().__init__(name, KindObjects(name, kubeconfig))
        self.cni = cni
        self.kube_proxy_mode = kube_proxy_mode
        self.capabilities: Capabilities = detect.capabilities(cni, kube_proxy_mode, load_balancer)
        self._outside_ready = False
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
