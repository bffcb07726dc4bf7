"""The Lab seam: the one interface that checks, scenarios and notebooks use to talk to a cluster.

Two backends implement it (``labkit.kind`` for real Kind clusters, ``labkit.sandbox`` for the
namespace-based data plane), so everything above this module runs unchanged on either. Objects
are plain dicts in the Kubernetes JSON shape. This module holds the protocols and backend choice;
the value types live in `labkit.values` (below the backends) and are re-exported here.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from labkit.errors import LabError
from labkit.machine import docker_engine_answers, sandbox_needs_root, sandbox_possible
from labkit.values import (
    BACKENDS,
    CNIS,
    DEFAULT_CNI,
    DEFAULT_LAB_NAME,
    KUBE_PROXY_MODES,
    OUTCOMES,
    OUTSIDE,
    Capabilities,
    DoctorLine,
    ExecResult,
    HttpReply,
    LabSummary,
    ObjectRef,
    Probe,
    SeenLabs,
    split_pod_ref,
    validate_cni,
)

__all__ = [
    "BACKENDS",
    "CNIS",
    "DEFAULT_CNI",
    "DEFAULT_LAB_NAME",
    "KUBE_PROXY_MODES",
    "OUTCOMES",
    "OUTSIDE",
    "Backend",
    "Capabilities",
    "DoctorLine",
    "ExecResult",
    "HttpReply",
    "Lab",
    "LabSummary",
    "ObjectRef",
    "Probe",
    "SeenLabs",
    "backend_module",
    "choose_backend",
    "connect_backend",
    "docker_engine_answers",
    "down",
    "down_all",
    "find_backends",
    "hidden_lab_error",
    "labs_needing_root",
    "list_labs",
    "root_only_error",
    "sandbox_possible",
    "split_pod_ref",
    "validate_cni",
]

log = logging.getLogger("labkit")

PortSpec = int | tuple[int, str]
"""A port an outside host serves: a number (TCP) or ``(number, protocol)``."""


@runtime_checkable
class Lab(Protocol):
    """A running cluster, whatever builds it."""

    name: str
    backend: str
    cni: str
    capabilities: Capabilities

    def uid(self) -> str:
        """This lab's identity: it changes when the lab is taken down and brought up again under
        the same name (progress ties a deployed scenario to it)."""
        ...

    def apply(self, manifests: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Create or update objects from manifests (paths, YAML text, dicts)."""
        ...

    def delete(self, manifests_or_refs: Any) -> None:
        """Delete the objects named by manifests or ObjectRefs."""
        ...

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects of a kind (kubectl's spellings); ``namespace=None`` means all namespaces."""
        ...

    def exec(
        self,
        pod: str,
        command: str | Sequence[str],
        namespace: str = "default",
        timeout: float = 10.0,
    ) -> ExecResult:
        """Run a command in a pod's network namespace."""
        ...

    def exec_interactive(
        self,
        pod: str,
        argv: Sequence[str],
        namespace: str = "default",
        container: str | None = None,
        tty: bool = True,
    ) -> int:
        """Run ``argv`` in a pod with this process's stdin, stdout and stderr and return its exit
        code; with ``tty`` and a terminal on stdin, on a terminal in the pod (``exec -it``)."""
        ...

    def logs(self, pod: str, namespace: str = "default", container: str | None = None) -> str:
        """What the pod's container printed (``kubectl logs``); on the sandbox, what its server
        saw, as the agent logged it, or CoreDNS's and kube-proxy's start-up lines."""
        ...

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command on a node."""
        ...

    def netns_add(self, node: str, name: str) -> None:
        """Create an empty network namespace ``name`` on ``node`` (only ``lo``, down), as
        ``ip netns add NAME`` on the node does; a name is 1-15 of ``a-z0-9-`` starting with a
        letter, and an existing one is refused (``netns_delete`` it first). The node's shell
        (``node_exec``) sees it at ``/run/netns/NAME``, so ``ip link set X netns NAME`` works."""
        ...

    def netns_delete(self, node: str, name: str) -> None:
        """Remove a namespace made with ``netns_add`` (and the veth ends in it); none is fine."""
        ...

    def netns_list(self, node: str) -> list[str]:
        """The namespaces made with ``netns_add`` on ``node``."""
        ...

    def netns_exec(
        self, node: str, name: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command inside a namespace made on ``node``, as ``ip netns exec NAME CMD`` on
        the node would (confined like a pod's shell, with the node's hostname)."""
        ...

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        """One connection attempt from inside ``src``'s network namespace: a pod
        (``"namespace/name"``), a node (its name), a namespace made on a node with ``netns_add``
        (``"node:name"``), or OUTSIDE."""
        ...

    def probe_many(self, pairs: Iterable[tuple[Any, ...]], timeout: float = 1.0) -> list[Probe]:
        """Many probes at once; ``pairs`` are ``(src, dst, port[, protocol])``."""
        ...

    def http_request(
        self,
        src: str,
        dst: str,
        port: int,
        method: str = "GET",
        path: str = "/",
        timeout: float = 1.0,
    ) -> HttpReply:
        """One HTTP request (``method`` ``path``) from inside pod ``src`` to ``dst:port``: how the
        connection ended and the status and body answered (a proxy's 403 is an answer)."""
        ...

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        """Resolve ``name`` through ``src``'s resolver (its resolv.conf and search path)."""
        ...

    def add_outside_address(self, cidr: str, ports: Iterable[PortSpec] = ()) -> None:
        """Give the outside world an address range serving ``ports``; only where
        ``capabilities.outside_addresses`` is true (a LabError elsewhere)."""
        ...


class Backend(Protocol):
    """What a backend module (`labkit.kind.backend`, `labkit.sandbox.backend`) provides."""

    def up(
        self,
        lab_name: str = DEFAULT_LAB_NAME,
        cni: str = DEFAULT_CNI,
        kube_proxy_mode: str | None = None,
        *,
        quiet: bool = False,
    ) -> Lab:
        """Bring lab ``lab_name`` up (or reuse it when it already runs) and return it; ``quiet``
        shows no progress."""
        ...

    def attach(self, lab_name: str = DEFAULT_LAB_NAME) -> Lab | None:
        """The running lab ``lab_name``, or None when there is none."""
        ...

    def down(self, lab_name: str = DEFAULT_LAB_NAME) -> bool:
        """Remove lab ``lab_name``; whether there was anything to remove."""
        ...

    def names(self) -> list[str]:
        """The labs this backend holds on this machine."""
        ...

    def doctor_checks(self, cni: str | None = None) -> list[DoctorLine]:
        """What this backend needs of the machine, each failing line naming its fix."""
        ...

    def summaries(self) -> list[LabSummary]:
        """Every lab this backend holds on this machine, as `labkit ls` lists it."""
        ...


# --------------------------------------------------------------------------- backend choice


def choose_backend(backend: str = "auto") -> tuple[str, str]:
    """Resolve ``auto`` to a concrete backend; returns ``(backend, why)``."""
    if backend not in ("auto", *BACKENDS):
        raise LabError(f"Unknown backend {backend!r}.", f"Use one of: auto, {', '.join(BACKENDS)}.")
    if backend != "auto":
        return backend, f"asked for {backend}"
    docker_ok, docker_why = docker_engine_answers()
    if docker_ok:
        return "kind", f"auto: {docker_why}, so Kind"
    sandbox_ok, sandbox_why = sandbox_possible()
    if sandbox_ok:
        return "sandbox", f"auto: {docker_why}; {sandbox_why}, so the sandbox"
    raise LabError(
        f"No backend can run here: {docker_why}, and {sandbox_why}.",
        "Either start a Docker engine (Docker Desktop, or `sudo systemctl start docker`) and use "
        "--backend kind, or run as root on Linux (`sudo labkit up --backend sandbox`).",
    )


def backend_module(backend: str) -> Backend:
    """The module implementing a backend, imported only when asked for (Kind's pulls in the
    Kubernetes client)."""
    if backend not in BACKENDS:
        raise LabError(f"Unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")
    return cast(Backend, importlib.import_module(f"labkit.{backend}.backend"))


def connect_backend(
    backend: str = "auto",
    cni: str = DEFAULT_CNI,
    lab_name: str = DEFAULT_LAB_NAME,
    kube_proxy_mode: str | None = None,
    *,
    quiet: bool = False,
) -> Lab:
    """Attach to lab ``lab_name``, bringing it up first if it is not running (on Kind, starting
    what runs beside a running cluster, as `labkit up` does); logs which backend it picked and
    why, and shows the bring-up's progress, unless ``quiet``."""
    validate_cni(cni)
    chosen, why = choose_backend(backend)
    module = backend_module(chosen)
    lab = module.attach(lab_name)
    if lab is not None:
        if lab.cni != cni:
            log.warning(
                "lab %r is already running with CNI %s; using it (run `labkit down --name %s` "
                "first to switch to %s).",
                lab_name,
                lab.cni,
                lab_name,
                cni,
            )
        if chosen == "kind":
            # A read never starts what runs beside a Kind cluster (its outside client,
            # cloud-provider-kind); connect() does, as `labkit up` does, and says so.
            return module.up(lab_name, lab.cni, kube_proxy_mode, quiet=quiet)
        if not quiet:
            log.info("attached to running %s lab %r (%s); %s.", chosen, lab_name, lab.cni, why)
        return lab
    if not quiet:
        log.info("bringing up %s lab %r with %s; %s.", chosen, lab_name, cni, why)
    return module.up(lab_name, cni, kube_proxy_mode, quiet=quiet)


def _usable_backends() -> list[str]:
    """The backends that can run on this machine, sandbox first."""
    found = []
    if sandbox_possible()[0]:
        found.append("sandbox")
    if docker_engine_answers()[0]:
        found.append("kind")
    return found


def list_labs() -> list[LabSummary]:
    """Every lab on this machine, on every backend that can run here, by backend then name."""
    return [lab for b in _usable_backends() for lab in backend_module(b).summaries()]


def down_all() -> list[LabSummary]:
    """Remove every lab on this machine that a backend usable here holds, logging a line as each
    goes (30 labs take a while); returns those removed."""
    labs = list_labs()
    for number, lab in enumerate(labs, start=1):
        began = time.perf_counter()
        backend_module(lab.backend).down(lab.name)
        log.info(
            "[%d/%d] %s lab %s down (%.2fs)",
            number,
            len(labs),
            lab.backend,
            lab.name,
            time.perf_counter() - began,
        )
    return labs


def find_backends(lab_name: str) -> list[str]:
    """The backends that hold a lab of this name, asking each one that can run here."""
    found = []
    if sandbox_possible()[0] and lab_name in backend_module("sandbox").names():
        found.append("sandbox")
    if docker_engine_answers()[0] and lab_name in backend_module("kind").names():
        found.append("kind")
    return found


def labs_needing_root() -> SeenLabs | None:
    """The sandbox labs a user who is not root can tell are on this Linux machine (their names
    can be read without root, but only root can use them); None as root, or off Linux."""
    if not sandbox_needs_root():
        return None
    from labkit.sandbox.labnames import scan

    return scan()


def root_only_error(seen: SeenLabs, command: str) -> LabError | None:
    """What a user who is not root is not shown: the sandbox labs ``seen`` (or that some may be
    hidden), with ``sudo command`` as the fix; None when there is nothing unseen."""
    if seen.names:
        more = "" if seen.complete else " (and maybe others)"
        return LabError(
            f"Sandbox labs on this machine that only root can use: {', '.join(seen.names)}{more}.",
            f"Run it as root: `sudo {command}`.",
        )
    if not seen.complete:
        return LabError(
            "Sandbox labs may be on this machine, but only root can see them.",
            f"Run it as root: `sudo {command}`.",
        )
    return None


def hidden_lab_error(lab_name: str, command: str) -> LabError | None:
    """Why lab ``lab_name``, held by no backend usable here, may still be on this machine: as a
    user who is not root, a sandbox lab that only root can use (or see), ``sudo command`` being
    the fix; None when it is truly not there."""
    seen = labs_needing_root()
    if seen is None:
        return None
    if lab_name in seen.names:
        return LabError(
            f"Lab {lab_name!r} is a sandbox lab, and only root can use sandbox labs.",
            f"Run it as root: `sudo {command}`.",
        )
    if not seen.complete:
        return LabError(
            f"No lab named {lab_name!r} that this user can see; sandbox labs need root to be seen.",
            f"If it is a sandbox lab, run it as root: `sudo {command}`.",
        )
    return None


def down(lab_name: str = DEFAULT_LAB_NAME) -> list[str]:
    """Remove lab ``lab_name`` from whichever backend holds it; returns those backends (none:
    nothing ran)."""
    holders = find_backends(lab_name)
    for backend in holders:
        backend_module(backend).down(lab_name)
    return holders
