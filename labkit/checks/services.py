"""Service health: the Service exists, its selector matches pods (or which labels differ), its
targetPort is a port those pods declare (named targetPorts resolved pod by pod), the pods are
Ready, and the endpoints list them. The tutorial's "service with no endpoints" story, automated.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from labkit.checks.result import Result, Step, poll, settle_wait
from labkit.checks.stages import Report
from labkit.checks.targets import (
    PodNames,
    pod_state,
    scheduling_hint,
    split_ref,
    unschedulable,
)
from labkit.checks.view import ClusterView
from labkit.commands import ENDPOINTS, POD_DETAIL, POD_LABELS, SERVICES, Shell
from labkit.lab import Lab
from labkit.model.objects import (
    ServiceEndpoint,
    container_ports,
    labels_of,
    name_of,
    namespace_of,
    pod_phase,
    pod_ready,
)
from labkit.model.selectors import equality_selector_matches


@dataclass(frozen=True)
class Finding:
    """One judged aspect of a Service, and the hint if it is the first thing wrong."""

    step: Step
    hint: str = ""


def selector_text(selector: Mapping[str, str]) -> str:
    """``app=x,tier=y`` (sorted) for messages."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


class _Closeness(NamedTuple):
    """How close a pod's labels come to a selector (lower is closer), and what differs."""

    score: tuple[int, int, float]
    shown: str
    diffs: list[str]


class TargetPort(NamedTuple):
    """The container port a Service targetPort reaches on one pod (None: none), in words too."""

    number: int | None
    words: str


def label_differences(
    selector: Mapping[str, str], pods: Sequence[Mapping[str, Any]], names: PodNames
) -> list[str]:
    """For the pods closest to matching, say which selector labels they lack or carry differently.

    Closest = fewest differing labels, then most labels matching, then the most similar values;
    a pod that carries none of the selector's keys is never a candidate.
    """
    scored: list[_Closeness] = []
    for pod in pods:
        labels = labels_of(pod)
        if not any(key in labels for key in selector):
            continue
        diffs, similarity = [], 0.0
        for key, want in sorted(selector.items()):
            have = labels.get(key)
            if have is None:
                diffs.append(f"lacks {key}={want}")
            elif have != str(want):
                diffs.append(f"has {key}={have}, not {key}={want}")
                similarity += difflib.SequenceMatcher(None, have, str(want)).ratio()
        matched = len(selector) - len(diffs)
        score = (len(diffs), -matched, -round(similarity, 6))
        scored.append(_Closeness(score, names(pod), diffs))
    if not scored:
        return []
    best = min(c.score for c in scored)
    return [f"{c.shown} {' and '.join(c.diffs)}" for c in sorted(scored) if c.score == best]


def resolve_target_port(target: Any, protocol: str, pod: Mapping[str, Any]) -> TargetPort:
    """Which container port a Service targetPort reaches on one pod, and words for the evidence.

    A number must be one of the pod's declared containerPorts (the sandbox, like agnhost, only
    listens on those); a name is looked up among the pod's containerPorts of that protocol.
    """
    ports = [cp for cp in container_ports(pod) if cp.protocol == protocol]
    if isinstance(target, str) and not target.isdigit():
        for cp in ports:
            if cp.name == target:
                return TargetPort(cp.number, f"{target} -> {cp.number}")
        names = ", ".join(f"{cp.name}={cp.number}" for cp in ports if cp.name) or "no named ports"
        return TargetPort(None, f"no {protocol} containerPort named {target!r} ({names})")
    number = int(target)
    if not container_ports(pod):
        return TargetPort(number, f"{number} (the pod declares no containerPorts; not verifiable)")
    if any(cp.number == number for cp in ports):
        return TargetPort(number, str(number))
    declared = ", ".join(f"{cp.number}/{cp.protocol}" for cp in container_ports(pod))
    return TargetPort(None, f"{number} is not a containerPort (declared: {declared})")


def judge_service(
    service: str,
    namespace: str,
    svc: Mapping[str, Any] | None,
    pods_here: Sequence[Mapping[str, Any]],
    pods_everywhere: Sequence[Mapping[str, Any]],
    endpoints: Sequence[ServiceEndpoint],
    names: PodNames,
    other_namespaces: Sequence[str] = (),
    *,
    shell: Shell,
) -> list[Finding]:
    """Pure judging of one Service from gathered objects: a list of findings in layer order (the
    hints' commands spelt for ``shell``)."""
    findings: list[Finding] = []
    if svc is None:
        where = (
            f" (a Service of that name exists in: {', '.join(sorted(other_namespaces))})"
            if other_namespaces
            else ""
        )
        findings.append(
            Finding(
                Step(f"find service {namespace}/{service}", f"not found{where}", False),
                f"There is no Service {service!r} in namespace {namespace!r}{where}. Create it, or "
                f"check the name and namespace with {shell(SERVICES)}.",
            )
        )
        return findings
    spec = svc.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"
    ports = spec.get("ports") or []
    port_words = (
        ", ".join(
            f"{p.get('port')}->{p.get('targetPort', p.get('port'))}/{p.get('protocol') or 'TCP'}"
            for p in ports
        )
        or "no ports"
    )
    findings.append(
        Finding(
            Step(
                f"find service {namespace}/{service}",
                f"type {svc_type}, clusterIP {spec.get('clusterIP')}, ports {port_words}",
                True,
            )
        )
    )
    if svc_type == "ExternalName":
        findings.append(
            Finding(
                Step(
                    "endpoints",
                    f"none needed: ExternalName aliases {spec.get('externalName')}",
                    None,
                )
            )
        )
        return findings
    selector = spec.get("selector") or {}
    ready_eps = [e for e in endpoints if e.ready]
    if not selector:
        ok = bool(ready_eps)
        findings.append(Finding(Step("selector", "none: endpoints are managed by hand", None)))
        findings.append(
            Finding(
                Step("ready endpoints", f"{len(ready_eps)}", ok),
                ""
                if ok
                else "A Service without a selector gets no endpoints automatically: add "
                "a selector matching your pods' labels, or create the "
                "EndpointSlice yourself.",
            )
        )
        return findings

    selected = [
        p
        for p in pods_here
        if equality_selector_matches(selector, labels_of(p))
        and pod_phase(p) not in ("Succeeded", "Failed")
    ]
    sel = selector_text(selector)
    if not selected:
        diffs = label_differences(selector, pods_here, names)
        elsewhere = sorted(
            {
                namespace_of(p)
                for p in pods_everywhere
                if equality_selector_matches(selector, labels_of(p))
                and namespace_of(p) != namespace
            }
        )
        observed = f"no pod in {namespace} has all of {sel}"
        if diffs:
            observed += "; closest: " + "; ".join(diffs)
        if elsewhere:
            observed += f"; matching pods live in: {', '.join(elsewhere)}"
        if elsewhere:
            hint = (
                f"Pods with {sel} exist only in {', '.join(elsewhere)}, but a Service selects pods "
                f"in its own namespace ({namespace}). Create the Service next to the pods."
            )
        elif diffs:
            hint = (
                f"The selector {sel} matches no pod, so the Service has no endpoints: "
                + "; ".join(diffs)
                + ". Make the selector and the pod template's labels agree "
                f"({shell(POD_LABELS, ns=namespace)}), then apply the corrected manifest."
            )
        else:
            hint = (
                f"No pod carries any of the labels {sel}. Deploy the workload, or change the "
                f"selector to the labels its pods really have ({shell(POD_LABELS, ns=namespace)})."
            )
        findings.append(Finding(Step(f"pods selected by {sel}", observed, False), hint))
        return findings
    findings.append(
        Finding(
            Step(f"pods selected by {sel}", ", ".join(sorted(names(p) for p in selected)), True)
        )
    )

    for port in ports:
        protocol = str(port.get("protocol") or "TCP").upper()
        target = port.get("targetPort", port.get("port"))
        label = f"targetPort {target} of port {port.get('port')}/{protocol}"
        reached = {names(p): resolve_target_port(target, protocol, p) for p in selected}
        observed = "; ".join(f"{shown}: {reached[shown].words}" for shown in sorted(reached))
        if any(r.number is None for r in reached.values()):
            declared = sorted(
                {
                    f"{cp.number}/{cp.protocol}" + (f" ({cp.name})" if cp.name else "")
                    for p in selected
                    for cp in container_ports(p)
                }
            )
            findings.append(
                Finding(
                    Step(label, observed, False),
                    f"The Service sends port {port.get('port')} to targetPort {target}, which the "
                    "selected pods do not serve (they declare "
                    f"{', '.join(declared) or 'nothing'}). Set targetPort to the containerPort "
                    "number or its name; kube-proxy forwards there and the connection is refused.",
                )
            )
        else:
            findings.append(Finding(Step(label, observed, True)))

    findings.append(judge_readiness(selected, names, shell))

    selected_names = {name_of(p) for p in selected if pod_ready(p)}
    listed = {e.pod for e in ready_eps if e.pod}
    missing = sorted(names.by_name(n, namespace) for n in selected_names - listed)
    strangers = sorted(names.by_name(n, namespace) for n in listed - selected_names)
    shown = (
        ", ".join(sorted(names.by_name(e.pod, namespace) if e.pod else e.ip for e in ready_eps))
        or "none"
    )
    ok = bool(ready_eps) and not missing and not strangers
    extra = (f" (missing: {', '.join(missing)})" if missing else "") + (
        f" (not selected: {', '.join(strangers)})" if strangers else ""
    )
    findings.append(
        Finding(
            Step("ready endpoints", f"{len(ready_eps)}: {shown}{extra}", ok),
            ""
            if ok
            else "The endpoints do not list exactly the selected Ready pods yet; the endpoint "
            "controller updates them within a moment of a label or readiness change. "
            f"Compare {shell(ENDPOINTS, ns=namespace, svc=service)} with the pods.",
        )
    )
    return findings


def judge_readiness(
    selected: Sequence[Mapping[str, Any]], names: PodNames, shell: Shell
) -> Finding:
    """Whether the selected pods are Ready; for those that are not, each one's phase (and the
    scheduler's message for a pod no node fits), and a hint for the actual cause: scheduling,
    a pod that has not started, or a failing readiness probe."""
    waiting = sorted((p for p in selected if not pod_ready(p)), key=lambda p: names(p))
    if not waiting:
        return Finding(Step("selected pods Ready", "all Ready", True))
    unplaced = [p for p in waiting if unschedulable(p)]
    phases = sorted({pod_phase(p) for p in waiting})
    observed = (
        f"not Ready: {', '.join(names(p) for p in waiting)} "
        f"({', '.join(f'{sum(pod_phase(p) == ph for p in waiting)} {ph}' for ph in phases)}"
        + (", unschedulable" if unplaced else "")
        + ")"
    )
    evidence = tuple(pod_state(p, names) for p in waiting)
    if unplaced:
        shown = ", ".join(names(p) for p in unplaced)
        hint = (
            scheduling_hint(
                f"The selected pod{'s' if len(unplaced) > 1 else ''} ({shown})", unplaced, shell
            )
            + " A pod without a node is never Ready, so the Service sends it no traffic."
        )
    elif any(pod_phase(p) != "Running" for p in waiting):
        idle = [p for p in waiting if pod_phase(p) != "Running"]
        starting = ", ".join(f"{names(p)} {pod_phase(p)}" for p in idle)
        hint = (
            f"Some selected pods are not Running yet ({starting}), so they are left out of the "
            f"endpoints. {_detail(shell, idle[0])} shows why they have not started (image pull, "
            "CNI, a crashing container)."
        )
    else:
        hint = (
            "Pods that are not Ready are left out of the endpoints (or listed as not ready), so "
            f"they get no traffic. {_detail(shell, waiting[0])} shows the failing readiness probe."
        )
    return Finding(Step("selected pods Ready", observed, False, evidence), hint)


def _detail(shell: Shell, pod: Mapping[str, Any]) -> str:
    """The command that shows one pod's spec and status."""
    return shell(POD_DETAIL, pod=name_of(pod), ns=namespace_of(pod))


def service_health(
    lab: Lab, service: str, namespace: str = "default", *, wait: float = 3.0
) -> Result:
    """Check a Service from its spec down to its endpoints and name the first thing that is wrong.

    Endpoints and readiness take a moment to follow a change, so every attempt of the poll
    takes a fresh view of the cluster."""
    ns, name = split_ref(service, namespace)

    def gather() -> list[Finding]:
        view = ClusterView(lab)
        svc = view.service(name, ns)
        others = [] if svc is not None else view.service_namespaces(name)
        endpoints = view.endpoints(name, ns) if svc is not None else []
        return judge_service(
            name,
            ns,
            svc,
            view.pods_in(ns),
            view.pods,
            endpoints,
            view.names,
            others,
            shell=view.shell,
        )

    conv = poll(
        gather,
        lambda fs: all(f.step.ok is not False for f in fs),
        wait=settle_wait(lab, wait),
    )
    findings: list[Finding] = conv.observation
    report = Report("service_health", f"service {ns}/{name}", [f.step for f in findings])
    report.elapsed_s = conv.elapsed_s
    note_convergence(report, conv.describe())
    first_bad = next((f for f in findings if f.step.ok is False), None)
    return report.result(first_bad.hint if first_bad is not None else "")


def note_convergence(report: Report, described: str) -> None:
    """Append how the poll converged to the last step's observation."""
    if report.steps:
        last = report.steps[-1]
        report.steps[-1] = Step(
            last.action, f"{last.observed} ({described})", last.ok, last.evidence
        )
