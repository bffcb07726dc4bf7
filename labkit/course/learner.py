"""The object `labkit.connect()` hands a notebook: a backend's Lab plus `deploy`, `reset` and
`check`, composed here rather than inherited by backends, so the seam never calls upward."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from labkit.checks.result import Result
from labkit.console import show_messages
from labkit.course import grading
from labkit.lab import (
    DEFAULT_CNI,
    DEFAULT_LAB_NAME,
    Capabilities,
    ExecResult,
    HttpReply,
    Lab,
    ObjectRef,
    PortSpec,
    Probe,
    connect_backend,
)


class LearnerLab:
    """A running lab with the learner's one-liners; every seam call goes to the backend's Lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def __repr__(self) -> str:
        return f"<{self.backend} lab {self.name!r} ({self.cni})>"

    # ---- what the seam reports

    @property
    def name(self) -> str:
        """The lab's name (``netlab`` unless chosen)."""
        return self.lab.name

    @property
    def backend(self) -> str:
        """``kind`` or ``sandbox``."""
        return self.lab.backend

    @property
    def cni(self) -> str:
        """``flannel``, ``calico`` or ``cilium``."""
        return self.lab.cni

    def uid(self) -> str:
        """This lab's identity (new whenever it is built again under the same name)."""
        return self.lab.uid()

    @property
    def capabilities(self) -> Capabilities:
        """What this backend and CNI enforce and offer."""
        return self.lab.capabilities

    # ---- the seam, passed through

    def apply(self, manifests: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Create or update objects from manifests (paths, YAML text, dicts)."""
        return self.lab.apply(manifests, namespace)

    def delete(self, manifests_or_refs: Any) -> None:
        """Delete the objects named by manifests or ObjectRefs."""
        self.lab.delete(manifests_or_refs)

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects of a kind; ``namespace=None`` means all namespaces."""
        return self.lab.get(kind, name, namespace, selector)

    def exec(
        self,
        pod: str,
        command: str | Sequence[str],
        namespace: str = "default",
        timeout: float = 10.0,
    ) -> ExecResult:
        """Run a command in a pod."""
        return self.lab.exec(pod, command, namespace, timeout)

    def exec_interactive(
        self,
        pod: str,
        argv: Sequence[str],
        namespace: str = "default",
        container: str | None = None,
        tty: bool = True,
    ) -> int:
        """Run a command in a pod with this process's terminal; its exit code."""
        return self.lab.exec_interactive(pod, argv, namespace, container, tty)

    def logs(self, pod: str, namespace: str = "default", container: str | None = None) -> str:
        """What the pod's container printed, as ``kubectl logs`` shows it."""
        return self.lab.logs(pod, namespace, container)

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command on a node."""
        return self.lab.node_exec(node, command, timeout)

    def netns_add(self, node: str, name: str) -> None:
        """Create an empty network namespace on a node, as ``ip netns add NAME`` there does."""
        self.lab.netns_add(node, name)

    def netns_delete(self, node: str, name: str) -> None:
        """Remove a namespace made with ``netns_add`` (none there is fine)."""
        self.lab.netns_delete(node, name)

    def netns_list(self, node: str) -> list[str]:
        """The namespaces made with ``netns_add`` on a node."""
        return self.lab.netns_list(node)

    def netns_exec(
        self, node: str, name: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command inside a namespace made on a node, as ``ip netns exec NAME`` would."""
        return self.lab.netns_exec(node, name, command, timeout)

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        """One connection attempt from inside ``src``'s network namespace (a pod, a node,
        ``"node:name"`` for a namespace made with ``netns_add``, or OUTSIDE)."""
        return self.lab.probe(src, dst, port, protocol, timeout)

    def probe_many(self, pairs: Iterable[tuple[Any, ...]], timeout: float = 1.0) -> list[Probe]:
        """Many probes at once."""
        return self.lab.probe_many(pairs, timeout)

    def http_request(
        self,
        src: str,
        dst: str,
        port: int,
        method: str = "GET",
        path: str = "/",
        timeout: float = 1.0,
    ) -> HttpReply:
        """One HTTP request from inside pod ``src`` to ``dst:port``."""
        return self.lab.http_request(src, dst, port, method, path, timeout)

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        """Resolve ``name`` through ``src``'s resolver."""
        return self.lab.resolve(src, name, rtype)

    def add_outside_address(self, cidr: str, ports: Iterable[PortSpec] = ()) -> None:
        """Give the outside world an address range (sandbox only)."""
        self.lab.add_outside_address(cidr, ports)

    def __getattr__(self, attribute: str) -> Any:
        # What a backend offers beyond the seam (e.g. the sandbox's outside_addresses()).
        if attribute == "lab":
            raise AttributeError(attribute)
        return getattr(self.lab, attribute)

    # ---- the learner's one-liners

    def deploy(self, scenario: str, variant: str | None = None) -> list[ObjectRef]:
        """Deploy a tutorial scenario's starting state, or a later step or broken variant, from
        whatever state it is in; recorded as `labkit deploy` does."""
        return grading.deploy(self.lab, scenario, variant)

    def reset(self, scenario: str) -> list[ObjectRef]:
        """Put a scenario back at its starting state; recorded as `labkit reset` does."""
        return grading.reset(self.lab, scenario)

    def check(
        self, scenario: str, variant: str | None = None, learner: str | None = None
    ) -> list[Result]:
        """Grade a scenario (or one of its variants) with the checks it declares, once that state
        was deployed, and record the attempt in the learner's progress file as `labkit check`
        does."""
        return grading.grade(self.lab, scenario, variant, learner)


def connect(
    backend: str = "auto",
    cni: str = DEFAULT_CNI,
    name: str = DEFAULT_LAB_NAME,
    kube_proxy_mode: str | None = None,
    quiet: bool = False,
) -> LearnerLab:
    """Attach to lab ``name``, bringing it up first if it is not running; the one call a
    notebook's first cell needs. It says which backend it picked and why, unless ``quiet``
    (warnings and errors still show)."""
    show_messages(to_stdout=True)
    return LearnerLab(connect_backend(backend, cni, name, kube_proxy_mode, quiet=quiet))
