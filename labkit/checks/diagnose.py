"""``diagnose``: walk the layers a connection crosses (DNS -> Service -> Endpoints -> policy -> data
plane), judge each with what the cluster says, and name the first broken one.

The check runs as ordered stages, one per layer; the first broken layer ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from labkit.checks.dns import answering_name, cluster_records, explain_queries, pod_resolv_conf
from labkit.checks.dns import queries_evidence as dns_evidence
from labkit.checks.dns_hints import dns_failure_hint
from labkit.checks.pods import missing_pod_hint, one_pod
from labkit.checks.policy import model_verdict, not_enforced_note
from labkit.checks.result import Result, failure_class, failure_hint, poll, settle_wait
from labkit.checks.services import judge_service, resolve_target_port
from labkit.checks.stages import Report, Stages
from labkit.checks.targets import Target, pod_state, scheduling_hint, split_ref, unschedulable
from labkit.checks.view import ClusterView
from labkit.commands import POD_DETAIL, PODS_IN, SERVICES_IN
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.addresses import is_ip
from labkit.model.netpol.verdicts import Verdict
from labkit.model.objects import (
    container_ports,
    name_of,
    namespace_of,
    pick_service_port,
    pod_ip,
    pod_node,
    pod_phase,
    pod_ready,
    ref_of,
)


@dataclass(frozen=True)
class DiagnoseAsk:
    """What diagnose was asked, the client pod found, the view and the report being built."""

    lab: Lab
    view: ClusterView
    report: Report
    src: dict[str, Any]
    target: str
    port: int | str | None
    wait: float
    timeout: float

    def broken(self, layer: str, hint: str, failure: str | None = None) -> Result:
        """End the walk: ``layer`` is the first broken one."""
        return self.report.result(hint, layer=layer, failure=failure)


@dataclass(frozen=True)
class Destination:
    """What the target turned out to be: a Service, or a pod."""

    ask: DiagnoseAsk
    service: dict[str, Any] | None
    pod: dict[str, Any] | None


@dataclass(frozen=True)
class Backends:
    """The pods that should answer, the port each serves, and the address and port to dial."""

    ask: DiagnoseAsk
    via_service: bool
    pods: list[dict[str, Any]]
    ports: dict[str, int | None]
    protocol: str
    probe_ip: str | None
    dst_port: int | None


class BackendVerdict(NamedTuple):
    """What the policy model says about the flow to one backend (shown by display name)."""

    shown: str
    verdict: Verdict


@dataclass(frozen=True)
class Policed:
    """The backends and the policy model's verdict for each one it could judge."""

    backends: Backends
    verdicts: list[BackendVerdict]

    @property
    def denied(self) -> list[BackendVerdict]:
        """The verdicts that deny the flow."""
        return [v for v in self.verdicts if not v.verdict.allowed]

    @property
    def all_denied(self) -> bool:
        """Whether the model denies the flow to every backend it judged (and judged some)."""
        return bool(self.verdicts) and len(self.denied) == len(self.verdicts)

    @property
    def reason(self) -> str:
        """The first (sorted) reason a denial gives."""
        return min(v.verdict.reason for v in self.denied)


def diagnose(
    lab: Lab,
    src: Target,
    target: str,
    port: int | str | None = None,
    *,
    wait: float = 2.0,
    timeout: float = 1.0,
) -> Result:
    """Find the first broken layer between a pod and a target (a DNS name, ``ns/service``,
    ``ns/pod`` or an IP), with the evidence of every layer it checked and the hint for the broken
    one."""
    target = str(target).strip()
    if not target:
        raise LabError(
            "diagnose needs a target.", "Pass a Service name, ns/name, or an IP address."
        )
    view = ClusterView(lab)
    found = one_pod(view, src, "client")
    subject = f"{found.shown} -> {target}" + (f":{port}" if port else "")
    report = Report("diagnose", subject, [found.step])
    if found.usable is None:
        return report.result(missing_pod_hint("client", found.pod, view.shell), layer="data plane")
    ask = DiagnoseAsk(lab, view, report, found.usable, target, port, wait, timeout)
    return (
        Stages(ask).then(dns_layer).then(service_layer).then(policy_layer).finish(data_plane_layer)
    )


# --------------------------------------------------------------------------- DNS


def dns_layer(ask: DiagnoseAsk) -> Destination | Result:
    """Resolve the target: an address is taken as is, ``ns/name`` names a Service (resolved as
    ``name.ns``) or a pod, anything else is a DNS name resolved in the client."""
    report, view, target = ask.report, ask.view, ask.target
    if is_ip(target):
        report.add("dns", f"skipped: {target} is an address")
        return by_address(ask, target)
    if "/" in target:
        ns, name = split_ref(target)
        svc = view.service(name, ns)
        pod = view.pod(name, ns) if svc is None else None
        if svc is None and pod is None:
            report.add("service", f"no Service or pod {ns}/{name}", False)
            return ask.broken(
                "service",
                f"Neither a Service nor a pod {ns}/{name} exists; check "
                f"{view.shell(SERVICES_IN, ns=ns)} and {view.shell(PODS_IN, ns=ns)}.",
            )
        if svc is None:
            report.add("dns", f"skipped: {target} is a pod")
            return Destination(ask, None, pod)
        dns_name = f"{name}.{ns}"
        answers = ask.lab.resolve(ref_of(ask.src), dns_name, "A")
        cluster_ip = (svc.get("spec") or {}).get("clusterIP")
        ok = bool(answers) or cluster_ip in (None, "None")
        report.add("dns", f"{dns_name} -> {', '.join(sorted(answers)) or 'no answer'}", ok)
        if not ok:
            wanted = [cluster_ip or ""]
            hint = dns_failure_hint(view, ask.src, dns_name, [], wanted, wanted, None)
            return ask.broken("dns", hint, "dns")
        return Destination(ask, svc, None)
    conf, _ = pod_resolv_conf(ask.lab, ask.src)
    tried, model_values = explain_queries(target, "A", conf, cluster_records(view))
    answers = sorted(ask.lab.resolve(ref_of(ask.src), target, "A"))
    via = answering_name(tried)
    report.add(
        "dns",
        f"{target} -> {', '.join(answers) or 'no answer'}"
        + (f" (via {via})" if answers and via else ""),
        bool(answers),
        dns_evidence(tried),
    )
    if not answers:
        wanted = model_values or ["?"]
        hint = dns_failure_hint(view, ask.src, target, [], wanted, model_values, None)
        return ask.broken("dns", hint, "dns")
    return by_address(ask, answers[0])


def by_address(ask: DiagnoseAsk, address: str) -> Destination | Result:
    """The Service whose ClusterIP is ``address``, or else the pod whose IP it is."""
    for svc in ask.view.services:
        spec = svc.get("spec") or {}
        if address in (spec.get("clusterIPs") or [spec.get("clusterIP")]):
            return Destination(ask, svc, None)
    pod = next((p for p in ask.view.pods if pod_ip(p) == address), None)
    if pod is not None:
        return Destination(ask, None, pod)
    ask.report.add("service", f"{address} belongs to no Service and no pod", False)
    return ask.broken(
        "service",
        f"{address} is not a Service ClusterIP nor a pod IP of this cluster: an address "
        "from a deleted object, or the name points outside the cluster.",
        "unreachable",
    )


# --------------------------------------------------------------------------- Service and endpoints


def service_layer(dest: Destination) -> Backends | Result:
    """For a Service: its port and its endpoints (judged like service_health); for a pod: the
    port it declares and whether it has an IP."""
    if dest.service is not None:
        return service_backends(dest.ask, dest.service)
    assert dest.pod is not None
    return pod_backend(dest.ask, dest.pod)


def service_backends(ask: DiagnoseAsk, svc: dict[str, Any]) -> Backends | Result:
    """The Service must expose the port and have ready endpoints; they are the backends."""
    report, view = ask.report, ask.view
    ns, name = namespace_of(svc), name_of(svc)
    svc_port = pick_service_port(svc, ask.port)
    spec = svc.get("spec") or {}
    if svc_port is None:
        listed = ", ".join(str(p.get("port")) for p in spec.get("ports") or []) or "none"
        report.add("service", f"{ns}/{name} has no port {ask.port} (ports: {listed})", False)
        return ask.broken(
            "service",
            f"Service {ns}/{name} does not expose port {ask.port}; it exposes {listed}. "
            "Clients connect to the Service port, which forwards to the targetPort.",
        )
    protocol = str(svc_port.get("protocol") or "TCP").upper()
    target_port = svc_port.get("targetPort", svc_port.get("port"))
    report.add(
        "service",
        f"{ns}/{name}: type {spec.get('type') or 'ClusterIP'}, clusterIP "
        f"{spec.get('clusterIP')}, port {svc_port.get('port')}/{protocol} -> targetPort "
        f"{target_port}",
        True,
    )
    endpoints = view.endpoints(name, ns)
    findings = judge_service(
        name, ns, svc, view.pods_in(ns), view.pods, endpoints, view.names, shell=view.shell
    )
    bad = next((f for f in findings[1:] if f.step.ok is False), None)
    if bad is not None:
        observed = f"{bad.step.action}: {bad.step.observed}"
        report.add("endpoints", observed, False, bad.step.evidence)
        return ask.broken("endpoints", bad.hint)
    summary = next((f.step for f in reversed(findings) if f.step.action == "ready endpoints"), None)
    report.add("endpoints", summary.observed if summary else "ready", True)
    behind = (view.pod(e.pod, ns) for e in endpoints if e.ready and e.pod)
    pods = [p for p in behind if p is not None]
    ports = {ref_of(p): resolve_target_port(target_port, protocol, p).number for p in pods}
    cluster_ip = spec.get("clusterIP")
    probe_ip: str | None
    dst_port: int | None
    if cluster_ip and cluster_ip != "None":
        probe_ip, dst_port = cluster_ip, int(svc_port["port"])
    else:
        probe_ip = pod_ip(pods[0]) if pods else None
        dst_port = ports.get(ref_of(pods[0])) if pods else None
    return Backends(ask, True, pods, ports, protocol, probe_ip, dst_port)


def pod_backend(ask: DiagnoseAsk, pod: dict[str, Any]) -> Backends | Result:
    """The pod must declare the port (the first containerPort when none is given) and have an
    IP; it is the only backend."""
    report, names = ask.report, ask.view.names
    port, protocol = ask.port, "TCP"
    if port is None:
        declared = container_ports(pod)
        if not declared:
            raise LabError(
                f"Pod {ref_of(pod)} declares no containerPort, so diagnose cannot pick a port.",
                "Pass port=... explicitly.",
            )
        port, protocol = declared[0].number, declared[0].protocol
    dst_port = int(port) if str(port).isdigit() else resolve_target_port(port, protocol, pod).number
    if dst_port is None:
        report.add("endpoints", f"{names(pod)} declares no port named {port}", False)
        return ask.broken("endpoints", f"Pod {names(pod)} has no containerPort named {port!r}.")
    report.add("service", "skipped: the target is a pod")
    probe_ip = pod_ip(pod)
    if probe_ip is None:
        report.add(
            "endpoints",
            f"{names(pod)} is {pod_phase(pod)} with no IP",
            False,
            (pod_state(pod, names),),
        )
        shell = ask.view.shell
        hint = (
            scheduling_hint(f"The pod {names(pod)}", [pod], shell)
            if unschedulable(pod)
            else f"The pod {names(pod)} is {pod_phase(pod)} without an IP, so there is nothing "
            f"to connect to; {shell(POD_DETAIL, pod=name_of(pod), ns=namespace_of(pod))} shows "
            "why it has not started."
        )
        return ask.broken("endpoints", hint)
    ready = "Ready" if pod_ready(pod) else "not Ready"
    report.add("endpoints", f"{names(pod)} is {pod_phase(pod)}, {ready}")
    return Backends(ask, False, [pod], {ref_of(pod): dst_port}, protocol, probe_ip, dst_port)


# --------------------------------------------------------------------------- policy


def policy_layer(backends: Backends) -> Policed | Result:
    """Ask the policy model about the flow to each backend; broken when an enforced policy
    denies every one (where nothing enforces policies, say so and carry on)."""
    ask = backends.ask
    verdicts = []
    for pod in backends.pods:
        number = backends.ports.get(ref_of(pod))
        verdict = (
            model_verdict(ask.view, ask.src, pod, number, backends.protocol)
            if number is not None
            else None
        )
        if verdict is not None:
            verdicts.append(BackendVerdict(ask.view.names(pod), verdict))
    policed = Policed(backends, verdicts)
    denied = policed.denied
    if policed.all_denied:
        if ask.lab.capabilities.network_policy:
            ask.report.add("policy", policed.reason, False)
            return ask.broken(
                "policy",
                f"NetworkPolicy drops this connection: {policed.reason}. Add a rule that allows "
                "this client and port in the right direction.",
                "timeout",
            )
        ask.report.add(
            "policy", f"{policed.reason} (not enforced here: {ask.lab.cni} has no policy engine)"
        )
    elif denied:
        ask.report.add(
            "policy",
            f"allowed to {len(verdicts) - len(denied)} of {len(verdicts)} backends; "
            f"denied: {', '.join(sorted(v.shown for v in denied))}",
        )
    else:
        ask.report.add(
            "policy",
            min(v.verdict.reason for v in verdicts) if verdicts else "nothing to judge",
            True if verdicts else None,
        )
    return policed


# --------------------------------------------------------------------------- data plane


def _names(backends: Backends) -> dict[str, str]:
    """What a failure hint's commands name: the Service dialled (or the pod), and the client's
    node."""
    ask = backends.ask
    names = {"node": pod_node(ask.src) or "<node>"}
    svc = next(
        (
            s
            for s in ask.view.services
            if backends.via_service and (s.get("spec") or {}).get("clusterIP") == backends.probe_ip
        ),
        None,
    )
    if svc is not None:
        names.update(svc=name_of(svc), ns=namespace_of(svc))
    elif backends.pods:
        names.update(pod=name_of(backends.pods[0]), ns=namespace_of(backends.pods[0]))
    return names


def data_plane_layer(policed: Policed) -> Result:
    """Connect: pass when the probe connects, unless only unenforced policies let it through."""
    backends = policed.backends
    ask, report = backends.ask, backends.ask.report
    probe_ip, dst_port = backends.probe_ip, backends.dst_port
    if probe_ip is None or dst_port is None:
        report.add("data plane", "no address to connect to", False)
        return ask.broken(
            "data plane", "The Service has no address and no ready backend to connect to."
        )
    conv = poll(
        lambda: ask.lab.probe(ref_of(ask.src), probe_ip, dst_port, backends.protocol, ask.timeout),
        lambda p: p.ok,
        wait=settle_wait(ask.lab, ask.wait),
    )
    report.elapsed_s = conv.elapsed_s
    probe = conv.observation
    answered = ""
    if probe.ok and probe.served_by:
        backend_names = {name_of(b) for b in backends.pods}
        answered = (
            ", answered by an endpoint of the Service"
            if backends.via_service and probe.served_by in backend_names
            else f", answered by {ask.view.names.by_name(probe.served_by)}"
        )
    report.add(
        "data plane",
        f"connect to {probe_ip}:{dst_port}/{backends.protocol}: {probe.outcome}{answered} "
        f"({conv.describe()})",
        probe.ok,
    )
    enforced = ask.lab.capabilities.network_policy
    if not probe.ok:
        failure = failure_class(p.outcome for p in conv.observations) or "error"
        hint = failure_hint(
            failure,
            "service" if backends.via_service else "pod",
            ask.view.shell,
            **_names(backends),
        )
        if policed.denied and not enforced:
            hint += " " + not_enforced_note(ask.lab)
        return ask.broken("data plane", hint, failure)
    if policed.all_denied and not enforced:
        # It connected only because nothing enforces the policies: neither a pass nor a fail.
        return report.result(
            "The connection went through only because policies are not enforced: a "
            "NetworkPolicy would drop it on a cluster that enforces them "
            f"({policed.reason}). " + not_enforced_note(ask.lab),
            verdict="partial",
        )
    return report.result()
