"""The Lab seam: the one interface that notebooks, checks and scenarios use to talk to a cluster.

Two backends implement it (``labkit.kind`` for real Kind clusters, ``labkit.sandbox`` for the
namespace-based data plane), so everything above this module runs unchanged on either.
Objects are plain dicts in the Kubernetes JSON shape.
"""
from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from labkit.errors import LabError

BACKENDS = ("kind", "sandbox")
CNIS = ("flannel", "calico", "cilium")
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs", "none")
DEFAULT_LAB_NAME = "netlab"
OUTSIDE = "@outside"
"""Probe source meaning "a client outside the cluster" (the host on Kind, ``lk-<lab>-outside`` on the sandbox)."""

OUTCOMES = ("connected", "refused", "timeout", "dns", "unreachable", "error")


@dataclass(frozen=True)
class ObjectRef:
    """Names one applied object."""

    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        scope = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()}/{scope}{self.name}"


@dataclass(frozen=True)
class ExecResult:
    """What a command run inside a pod or node printed and returned."""

    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Probe:
    """One connection attempt from inside ``src``'s network namespace to ``dst:port``.

    ``outcome`` is one of OUTCOMES. When the server is a lab agent (agnhost netexec on Kind),
    ``served_by`` is the answering pod's hostname and ``client_ip`` the source address it saw,
    which proves load balancing and the absence of NAT.
    """

    src: str
    dst: str
    port: int
    protocol: str
    outcome: str
    latency_s: float | None = None
    served_by: str | None = None
    client_ip: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "connected"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Capabilities:
    """What this backend and CNI really enforce, so checks never report a false verdict."""

    network_policy: bool
    kube_proxy_mode: str
    load_balancer: bool = True
    ingress: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class Lab(Protocol):
    """A running cluster, whatever builds it."""

    name: str
    backend: str
    cni: str
    capabilities: Capabilities

    def apply(self, manifests: Any, namespace: str | None = None) -> list[ObjectRef]: ...
    def delete(self, manifests_or_refs: Any) -> None: ...
    def get(self, kind: str, name: str | None = None, namespace: str | None = "default",
            selector: str | dict | None = None) -> list[dict]: ...
    def exec(self, pod: str, command: str | Sequence[str], namespace: str = "default",
             timeout: float = 10.0) -> ExecResult: ...
    def node_exec(self, node: str, command: str | Sequence[str], timeout: float = 10.0) -> ExecResult: ...
    def probe(self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0) -> Probe: ...
    def probe_many(self, pairs: Iterable[tuple], timeout: float = 1.0) -> list[Probe]: ...
    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]: ...


def split_pod_ref(ref: str, namespace: str = "default") -> tuple[str, str]:
    """``"ns/name"`` or ``"name"`` -> ``(namespace, name)``."""
    if "/" in ref:
        ns, _, name = ref.partition("/")
        return ns, name
    return namespace, ref


# --------------------------------------------------------------------------- backend choice


def docker_engine_answers(timeout: float = 5.0) -> tuple[bool, str]:
    """Whether a Docker engine answers ``docker info``; the reason in words either way."""
    if not shutil.which("docker"):
        return False, "no `docker` command on PATH"
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"`docker info` did not answer within {timeout:.0f} s"
    if proc.returncode != 0 or not proc.stdout.strip():
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        return False, f"the docker client is installed but no engine answers ({first})"
    return True, f"Docker engine {proc.stdout.strip()} answers"


def sandbox_possible() -> tuple[bool, str]:
    """Whether this machine can run the sandbox backend (Linux, root)."""
    if platform.system() != "Linux":
        return False, f"the sandbox needs Linux network namespaces and this is {platform.system()}"
    if os.geteuid() != 0:
        return False, "the sandbox creates network namespaces, which needs root"
    return True, "Linux and running as root"


def choose_backend(backend: str = "auto") -> tuple[str, str]:
    """Resolve ``auto`` to a concrete backend; returns ``(backend, why)``."""
    if backend not in ("auto", *BACKENDS):
        raise LabError(f"Unknown backend {backend!r}.",
                       f"Use one of: auto, {', '.join(BACKENDS)}.")
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


def backend_module(backend: str):
    """The module implementing a backend: it provides up(), attach(), down(), names()."""
    if backend not in BACKENDS:
        raise LabError(f"Unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")
    return importlib.import_module(f"labkit.{backend}.backend")


def validate_cni(cni: str) -> str:
    """Refuse a CNI name we do not support, naming the ones we do."""
    if cni not in CNIS:
        raise LabError(f"Unknown CNI {cni!r}.", f"Choose one of: {', '.join(CNIS)} (e.g. --cni calico).")
    return cni


def connect(backend: str = "auto", cni: str = "flannel", name: str = DEFAULT_LAB_NAME,
            kube_proxy_mode: str | None = None, quiet: bool = False) -> Lab:
    """Attach to lab ``name``, bringing it up first if it is not running.

    This is the one call a notebook's first cell needs. It says which backend it picked and why.
    """
    validate_cni(cni)
    chosen, why = choose_backend(backend)
    module = backend_module(chosen)
    lab = module.attach(name)
    if lab is not None:
        if lab.cni != cni and not quiet:
            print(f"labkit: lab {name!r} is already running with CNI {lab.cni}; using it "
                  f"(run `labkit down --name {name}` first to switch to {cni}).", file=sys.stderr)
        if not quiet:
            print(f"labkit: attached to running {chosen} lab {name!r} ({lab.cni}); {why}.", file=sys.stderr)
        return lab
    if not quiet:
        print(f"labkit: bringing up {chosen} lab {name!r} with {cni}; {why}.", file=sys.stderr)
    return module.up(name=name, cni=cni, kube_proxy_mode=kube_proxy_mode)


def find_backends(name: str) -> list[str]:
    """The backends that hold a lab of this name, asking each one that can run here."""
    found = []
    if sandbox_possible()[0] and name in backend_module("sandbox").names():
        found.append("sandbox")
    if docker_engine_answers()[0] and name in backend_module("kind").names():
        found.append("kind")
    return found


def down(name: str = DEFAULT_LAB_NAME) -> list[str]:
    """Remove lab ``name`` from whichever backend holds it; returns those backends (none: nothing ran)."""
    holders = find_backends(name)
    for backend in holders:
        backend_module(backend).down(name)
    return holders


class ScenarioMixin:
    """`lab.deploy(name)`, `lab.reset(name)` and `lab.check(name)` for notebooks.

    The work lives in `labkit.scenarios`; this is the one deliberate upward call from the seam
    (declared in .importlinter), so a learner's cell can stay a one-liner on either backend.
    """

    def deploy(self, scenario: str, variant: str | None = None) -> list[ObjectRef]:
        from labkit import scenarios

        return scenarios.deploy(self, scenario, variant=variant)  # type: ignore[arg-type]

    def reset(self, scenario: str) -> list[ObjectRef]:
        from labkit import scenarios

        return scenarios.reset(self, scenario)  # type: ignore[arg-type]

    def check(self, scenario: str, variant: str | None = None) -> list[Any]:
        from labkit import scenarios

        return scenarios.run_checks(self, scenario, variant=variant)  # type: ignore[arg-type]
