"""What the reachability checks share: reading their port and protocol arguments, the source pod
they connect from, finding the Service and port they dial, sending batches of probes to it, and
putting a batch's outcomes in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from labkit.checks.policy import model_verdict
from labkit.checks.result import Convergence, Result, failure_class, poll, settle_wait
from labkit.checks.stages import Report
from labkit.checks.view import ClusterView
from labkit.commands import SERVICES
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.objects import ServiceEndpoint, pick_service_port
from labkit.values import Probe

PROTOCOLS = ("TCP", "UDP", "SCTP")

EXTRA_SAMPLES = 4
"""Further batches sent at once when every probe connected but not every endpoint answered yet:
load balancing is random, so this is sampling, not waiting for the cluster to converge."""


def check_port(port: Any) -> int:
    """A port number 1-65535, or a LabError saying so."""
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= 65535 or isinstance(port, bool):
        raise LabError(
            f"{port!r} is not a port number.", "Give a number from 1 to 65535, e.g. port=8080."
        )
    return number


def check_protocol(protocol: str) -> str:
    """TCP, UDP or SCTP (any case), or a LabError naming them."""
    proto = str(protocol).upper()
    if proto not in PROTOCOLS:
        raise LabError(f"Unknown protocol {protocol!r}.", f"Use one of {', '.join(PROTOCOLS)}.")
    return proto


def check_requests(requests: int, example: int) -> int:
    """A positive number of requests, or a LabError suggesting ``example``."""
    if int(requests) < 1:
        raise LabError(
            f"requests must be at least 1, not {requests}.", f"Use e.g. requests={example}."
        )
    return int(requests)


# --------------------------------------------------------------------------- outcomes in words


def describe_outcomes(probes: Sequence[Probe]) -> str:
    """``"18 of 20 connected; 2 timeout"``: counts per outcome, sorted, deterministic."""
    counts: dict[str, int] = {}
    for p in probes:
        counts[p.outcome] = counts.get(p.outcome, 0) + 1
    ok = counts.pop("connected", 0)
    rest = "; ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    return f"{ok} of {len(probes)} connected" + (f"; {rest}" if rest else "")


def worst_failure(probes: Iterable[Probe]) -> str | None:
    """The failure class of these attempts (see :func:`failure_class`), or None if all
    connected."""
    return failure_class(p.outcome for p in probes)


def sample(
    lab: Lab,
    pairs: Sequence[tuple[str, str, int, str]],
    timeout: float,
    served: set[str],
    wanted: set[str],
) -> list[Probe]:
    """Probe a batch, recording who answered; if all connected but some ``wanted`` endpoint has
    not answered yet, send up to EXTRA_SAMPLES more batches. Returns the first batch."""
    first = lab.probe_many(list(pairs), timeout=timeout)
    served.update(p.served_by for p in first if p.ok and p.served_by)
    batch, extra = first, 0
    while wanted - served and all(p.ok for p in batch) and extra < EXTRA_SAMPLES:
        batch = lab.probe_many(list(pairs), timeout=timeout)
        served.update(p.served_by for p in batch if p.ok and p.served_by)
        extra += 1
    return first


# --------------------------------------------------------------------------- the source pod

AskT = TypeVar("AskT")


@dataclass(frozen=True)
class SourcePod(Generic[AskT]):
    """The source pod a check found, with what the check was asked."""

    ask: AskT
    pod: dict[str, Any]


# --------------------------------------------------------------------------- the Service dialled


@dataclass(frozen=True)
class ServiceTarget:
    """The Service a check dials, the port of it meant, and the Service's endpoints."""

    namespace: str
    name: str
    service: dict[str, Any]
    port: dict[str, Any]
    endpoints: list[ServiceEndpoint]

    @property
    def ref(self) -> str:
        """``ns/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        """The Service's spec."""
        return self.service.get("spec") or {}

    @property
    def type(self) -> str:
        """ClusterIP, NodePort, LoadBalancer or ExternalName."""
        return str(self.spec.get("type") or "ClusterIP")

    @property
    def number(self) -> int:
        """The Service port's number (what clients dial)."""
        return int(self.port["port"])

    @property
    def protocol(self) -> str:
        """The Service port's protocol."""
        return str(self.port.get("protocol") or "TCP").upper()

    @property
    def ready(self) -> list[str]:
        """Names of the pods behind the ready endpoints, sorted."""
        return ready_endpoint_pods(self.endpoints)


def ready_endpoint_pods(endpoints: Sequence[ServiceEndpoint]) -> list[str]:
    """Names of the pods behind the ready endpoints, sorted."""
    return sorted({e.pod for e in endpoints if e.ready and e.pod})


def find_service_port(
    view: ClusterView, report: Report, name: str, namespace: str, port: int | str | None
) -> ServiceTarget | Result:
    """Find the Service and the port meant (the first one when ``port`` is None), recording the
    step; a failed Result that says where the Service or port is missing."""
    svc = view.service(name, namespace)
    if svc is None:
        elsewhere = view.service_namespaces(name)
        where = f" (a Service of that name exists in: {', '.join(elsewhere)})" if elsewhere else ""
        report.add(f"find service {namespace}/{name}", f"not found{where}", False)
        return report.result(
            f"There is no Service {name!r} in namespace {namespace!r}{where}. Check the name "
            f"and namespace with {view.shell(SERVICES)}."
        )
    spec = svc.get("spec") or {}
    svc_port = pick_service_port(svc, port)
    if svc_port is None:
        listed = (
            ", ".join(
                f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
            )
            or "none"
        )
        report.add(
            f"find port {port} on service {namespace}/{name}", f"not found (ports: {listed})", False
        )
        return report.result(
            f"Service {namespace}/{name} has no port {port}; it exposes {listed}. Connect to one "
            "of those (the Service port, not the targetPort)."
        )
    report.add(
        f"find service {namespace}/{name}",
        f"type {spec.get('type') or 'ClusterIP'}, clusterIP {spec.get('clusterIP')}, port "
        f"{svc_port.get('port')}/{svc_port.get('protocol') or 'TCP'} -> targetPort "
        f"{svc_port.get('targetPort', svc_port.get('port'))}",
        True,
    )
    return ServiceTarget(namespace, name, svc, svc_port, view.endpoints(name, namespace))


def ready_endpoints_step(report: Report, view: ClusterView, target: ServiceTarget) -> None:
    """Record, as context, which pods are the Service's ready endpoints."""
    shown = sorted(view.names.by_name(p, target.namespace) for p in target.ready)
    report.add(
        f"ready endpoints of {target.ref}", f"{len(target.ready)}: " + (", ".join(shown) or "none")
    )


def denied_by_policy(
    view: ClusterView, src_pod: Mapping[str, Any] | None, target: ServiceTarget
) -> str:
    """If the policy model denies the source every ready endpoint, the reason (else ""), whether
    or not this lab enforces policies (callers decide what a denial means here)."""
    reasons = []
    for ep in target.endpoints:
        pod = view.pod(ep.pod, target.namespace) if ep.pod else None
        if not ep.ready or pod is None:
            continue
        number = endpoint_port(ep, target.port)
        verdict = model_verdict(view, src_pod, pod, number, target.protocol) if number else None
        if verdict is None or verdict.allowed:
            return ""
        reasons.append(verdict.reason)
    return min(reasons, default="")


def endpoint_port(ep: ServiceEndpoint, svc_port: Mapping[str, Any]) -> int | None:
    """The port on the endpoint pod that a Service port leads to."""
    name = svc_port.get("name") or None
    for port in ep.ports:
        if port.name == name or len(ep.ports) == 1:
            return port.number
    target = svc_port.get("targetPort", svc_port.get("port"))
    return int(target) if str(target).isdigit() else None


# --------------------------------------------------------------------------- traffic to a Service


class TrafficAsk(Protocol):
    """What a check sending traffic to a Service was asked, as far as sending it goes."""

    @property
    def lab(self) -> Lab: ...
    @property
    def view(self) -> ClusterView: ...
    @property
    def report(self) -> Report: ...
    @property
    def expect_spread(self) -> bool: ...
    @property
    def wait(self) -> float: ...
    @property
    def timeout(self) -> float: ...


class Aim(Protocol):
    """Where a check's traffic goes: the Service, with what the check was asked."""

    @property
    def ask(self) -> TrafficAsk: ...
    @property
    def target(self) -> ServiceTarget: ...


AimT = TypeVar("AimT", bound=Aim)


@dataclass(frozen=True)
class Traffic(Generic[AimT]):
    """The connections sent to a Service: where they were aimed, the first batch of probes, every
    endpoint that answered in any batch, and how the poll converged."""

    aim: AimT
    probes: list[Probe]
    served: set[str]
    conv: Convergence[list[Probe]]

    @property
    def report(self) -> Report:
        """The report being built."""
        return self.aim.ask.report

    @property
    def attempts(self) -> list[Probe]:
        """The first batch of every attempt of the poll: their failure class is the verdict's."""
        return [p for batch in self.conv.observations for p in batch]

    def shown(self, pods: set[str]) -> list[str]:
        """Display names of pods of the Service's namespace, sorted."""
        names, ns = self.aim.ask.view.names, self.aim.target.namespace
        return sorted(names.by_name(p, ns) for p in pods)


def send_to_service(aim: AimT, pairs: Sequence[tuple[str, str, int, str]]) -> Traffic[AimT]:
    """Send the batch of ``pairs`` until all connect (and, with ``expect_spread``, every ready
    endpoint has answered) or the wait runs out; the report records how long it took."""
    ask = aim.ask
    wanted = set(aim.target.ready) if ask.expect_spread else set()
    served: set[str] = set()

    def done(probes: list[Probe]) -> bool:
        return all(p.ok for p in probes) and wanted <= served

    conv = poll(
        lambda: sample(ask.lab, pairs, ask.timeout, served, wanted),
        done,
        wait=settle_wait(ask.lab, ask.wait),
    )
    ask.report.elapsed_s = conv.elapsed_s
    return Traffic(aim, conv.observation, served, conv)
