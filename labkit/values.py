"""Value types and names every layer shares: what a lab applied, ran, probed and can do.

They sit at the bottom of the package so that backends can build them and checks can read them
without either importing the other; `labkit.lab` re-exports them as part of the seam.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.errors import LabError

BACKENDS = ("kind", "sandbox")
CNIS = ("flannel", "calico", "cilium")
# The CNI of connect(), labkit up and make lab on every backend: Calico enforces NetworkPolicy,
# so no lesson meets a policy that silently does nothing.
DEFAULT_CNI = "calico"
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs", "none")
DEFAULT_LAB_NAME = "netlab"
OUTSIDE = "@outside"
"""Probe source meaning "a client outside the cluster" (the container ``<lab>-outside`` on the
kind Docker network on Kind, the namespace ``lk-<lab>-outside`` on the sandbox)."""

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
        """Whether the command exited 0."""
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
    http_status: int | None = None
    """The status of the probe's HTTP question when it was not 200 (a 403 from Cilium's proxy:
    an HTTP rule denied the request on a connection L3/L4 policy allowed)."""

    @property
    def ok(self) -> bool:
        """Whether the connection was made."""
        return self.outcome == "connected"

    def to_dict(self) -> dict[str, Any]:
        """The probe as plain data (progress files, JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class HttpReply:
    """One HTTP request from inside ``src``'s network namespace: how the connection ended
    (``outcome``, one of OUTCOMES) and, once connected, the answer's status and body (None when
    no answer came: a connection made but never answered, or one the server closed)."""

    src: str
    dst: str
    port: int
    method: str
    path: str
    outcome: str
    status: int | None = None
    body: str = ""
    detail: str = ""

    @property
    def request(self) -> str:
        """``GET /hostname``: the request line's method and target."""
        return f"{self.method} {self.path}"

    def to_dict(self) -> dict[str, Any]:
        """The answer as plain data (progress files, JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class Capabilities:
    """What this backend and CNI really enforce and offer, so checks never report a false
    verdict and scenarios never reach for a method a backend lacks."""

    network_policy: bool
    kube_proxy_mode: str
    load_balancer: bool = True
    ingress: bool = True
    outside_addresses: bool = False
    """Whether ``add_outside_address`` can give the lab's outside world a whole address range."""
    converges_on_apply: bool = False
    """Whether ``apply`` and ``delete`` return only once the data plane matches (the sandbox):
    checks then judge their first look instead of polling while a cluster converges (Kind)."""
    concurrent_checks: bool = False
    """Whether a scenario's checks may run at the same time: the sandbox's probes are sockets in
    local namespaces; Kind's share one debug container per pod, so they run in turn."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    load_balancer_model: str = ""
    """Which LoadBalancer model the lab shows, and how the other backend's differs (status
    prints it, so nothing a learner sees on one backend is contradicted on the other)."""
    cni_model: tuple[str, ...] = ()
    """Which of the CNI's own behaviours the lab models and which not, where the backend imitates
    a data plane it does not run (Cilium's eBPF on the sandbox); status prints each line."""


@dataclass(frozen=True)
class DoctorLine:
    """One finding of `labkit doctor`: what was checked, whether it is fine, what was seen, and
    the fix when not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


@dataclass(frozen=True)
class LabSummary:
    """One lab on this machine as `labkit ls` lists it: its backend and CNI, whether it is
    ready, when it was made (``time.time()``) and the memory its processes hold, in MiB (None:
    not known to this backend)."""

    name: str
    backend: str
    cni: str | None
    status: str
    created: float | None = None
    memory_mb: float | None = None


@dataclass(frozen=True)
class SeenLabs:
    """Sandbox labs a user who is not root can tell are on this machine (only root can use
    them): the names read without root, and whether every place a lab leaves its name could be
    read (if not, others may be hidden)."""

    names: tuple[str, ...]
    complete: bool


def split_pod_ref(ref: str, namespace: str = "default") -> tuple[str, str]:
    """``"ns/name"`` or ``"name"`` -> ``(namespace, name)``."""
    if "/" in ref:
        ns, _, name = ref.partition("/")
        return ns, name
    return namespace, ref


def validate_cni(cni: str) -> str:
    """Refuse a CNI name we do not support, naming the ones we do."""
    if cni not in CNIS:
        raise LabError(
            f"Unknown CNI {cni!r}.", f"Choose one of: {', '.join(CNIS)} (e.g. --cni calico)."
        )
    return cni
