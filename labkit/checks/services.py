"""Service health: the Service exists, its selector matches pods (or which labels differ), its
targetPort is a port those pods declare (named targetPorts resolved pod by pod), the pods are
Ready, and the endpoints list them. The tutorial's "service with no endpoints" story, automated.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks.result import Result, Step, make_result, poll
from labkit.checks.targets import (
    PodNames,
    get_service,
    list_pods,
    node_internal_ips,
    pod_state,
    scheduling_hint,
    service_endpoints,
    split_ref,
    unschedulable,
)
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.kubeproxy import parse_iptables_save
from labkit.model.objects import (
    ServiceEndpoint,
    container_ports,
    labels_of,
    meta,
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


def label_differences(
    selector: Mapping[str, str], pods: Sequence[Mapping[str, Any]], names: PodNames
) -> list[str]:
    """For the pods closest to matching, say which selector labels they lack or carry differently.

    Closest = fewest differing labels, then most labels matching, then the most similar values;
    a pod that carries none of the selector's keys is never a candidate.
    """
    scored = []
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
        scored.append(((len(diffs), -matched, -round(similarity, 6)), names(pod), diffs))
    if not scored:
        return []
    best = min(s[0] for s in scored)
    return [
        f"{shown} {' and '.join(diffs)}" for score, shown, diffs in sorted(scored) if score == best
    ]


def resolve_target_port(
    target: Any, protocol: str, pod: Mapping[str, Any]
) -> tuple[int | None, str]:
    """Which container port a Service targetPort reaches on one pod, and words for the evidence.

    A number must be one of the pod's declared containerPorts (the sandbox, like agnhost, only
    listens on those); a name is looked up among the pod's containerPorts of that protocol.
    """
    ports = [cp for cp in container_ports(pod) if cp.protocol == protocol]
    if isinstance(target, str) and not target.isdigit():
        for cp in ports:
            if cp.name == target:
                return cp.number, f"{target} -> {cp.number}"
        names = ", ".join(f"{cp.name}={cp.number}" for cp in ports if cp.name) or "no named ports"
        return None, f"no {protocol} containerPort named {target!r} ({names})"
    number = int(target)
    if not container_ports(pod):
        return number, f"{number} (the pod declares no containerPorts; not verifiable)"
    if any(cp.number == number for cp in ports):
        return number, str(number)
    declared = ", ".join(f"{cp.number}/{cp.protocol}" for cp in container_ports(pod))
    return None, f"{number} is not a containerPort (declared: {declared})"


def judge_service(
    service: str,
    namespace: str,
    svc: Mapping[str, Any] | None,
    pods_here: Sequence[Mapping[str, Any]],
    pods_everywhere: Sequence[Mapping[str, Any]],
    endpoints: Sequence[ServiceEndpoint],
    names: PodNames,
    other_namespaces: Sequence[str] = (),
) -> list[Finding]:
    """Pure judging of one Service from gathered objects: a list of findings in layer order."""
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
                "check the name and namespace with `kubectl get svc -A`.",
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
                str(meta(p).get("namespace"))
                for p in pods_everywhere
                if equality_selector_matches(selector, labels_of(p))
                and meta(p).get("namespace") != namespace
            }
        )
        observed = f"no pod in {namespace} has all of {sel}"
        if diffs:
            observed += "; closest: " + "; ".join(diffs)
        if elsewhere:
            observed += f"; matching pods live in: {', '.join(elsewhere)}"
        if elsewhere:
            hint = (
                f"Pods with {sel} exist only in {', '.join(elsewhere)}, but a Service selects pods in its own "
                f"namespace ({namespace}). Create the Service next to the pods."
            )
        elif diffs:
            hint = (
                f"The selector {sel} matches no pod, so the Service has no endpoints: "
                + "; ".join(diffs)
                + ". Make the selector and the pod template's labels agree "
                "(`kubectl get pods --show-labels`), e.g. fix the selector with `kubectl patch svc`."
            )
        else:
            hint = (
                f"No pod carries any of the labels {sel}. Deploy the workload, or change the selector to "
                "the labels its pods really have (`kubectl get pods --show-labels`)."
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
        per_pod = [(names(p), *resolve_target_port(target, protocol, p)) for p in selected]
        bad = [(shown, words) for shown, number, words in per_pod if number is None]
        observed = "; ".join(f"{shown}: {words}" for shown, _, words in sorted(per_pod))
        if bad:
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
                    f"selected pods do not serve (they declare {', '.join(declared) or 'nothing'}). "
                    "Set targetPort to the containerPort number or its name; kube-proxy forwards "
                    "there and the connection is refused.",
                )
            )
        else:
            findings.append(Finding(Step(label, observed, True)))

    findings.append(judge_readiness(selected, names))

    selected_names = {meta(p).get("name") for p in selected if pod_ready(p)}
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
            "Compare `kubectl get endpointslices -l kubernetes.io/service-name=<svc>` with "
            "the pods.",
        )
    )
    return findings


def judge_readiness(selected: Sequence[Mapping[str, Any]], names: PodNames) -> Finding:
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
                f"The selected pod{'s' if len(unplaced) > 1 else ''} ({shown})", unplaced
            )
            + " A pod without a node is never Ready, so the Service sends it no traffic."
        )
    elif any(pod_phase(p) != "Running" for p in waiting):
        starting = ", ".join(
            f"{names(p)} {pod_phase(p)}" for p in waiting if pod_phase(p) != "Running"
        )
        hint = (
            f"Some selected pods are not Running yet ({starting}), so they are left out of the endpoints. "
            "`kubectl describe pod` shows why they have not started (image pull, CNI, a crashing container)."
        )
    else:
        hint = (
            "Pods that are not Ready are left out of the endpoints (or listed as not ready), so they get no "
            "traffic. `kubectl describe pod` shows the failing readiness probe."
        )
    return Finding(Step("selected pods Ready", observed, False, evidence), hint)


def service_health(
    lab: Lab, service: str, namespace: str = "default", *, wait: float = 3.0
) -> Result:
    """Check a Service from its spec down to its endpoints and name the first thing that is wrong."""
    ns, name = split_ref(service, namespace)

    def gather() -> list[Finding]:
        all_pods = list_pods(lab, None)
        names = PodNames(all_pods)
        svc = get_service(lab, name, ns)
        others = (
            []
            if svc is not None
            else sorted(
                str(meta(s).get("namespace"))
                for s in lab.get("services", namespace=None)
                if meta(s).get("name") == name
            )
        )
        endpoints = service_endpoints(lab, name, ns) if svc is not None else []
        here = [p for p in all_pods if meta(p).get("namespace") == ns]
        return judge_service(name, ns, svc, here, all_pods, endpoints, names, others)

    conv = poll(gather, lambda fs: all(f.step.ok is not False for f in fs), wait=wait)
    findings: list[Finding] = conv.observation
    steps = [f.step for f in findings]
    if steps:
        last = steps[-1]
        steps[-1] = Step(
            last.action, f"{last.observed} ({conv.describe()})", last.ok, last.evidence
        )
    first_bad = next((f for f in findings if f.step.ok is False), None)
    if first_bad is None:
        return make_result(
            "service_health", f"service {ns}/{name}", steps, elapsed_s=conv.elapsed_s
        )
    return make_result(
        "service_health",
        f"service {ns}/{name}",
        steps,
        hint=first_bad.hint,
        elapsed_s=conv.elapsed_s,
    )


# --------------------------------------------------------------------------- kube-proxy's rules


def chained_statistics(probabilities: Sequence[float]) -> list[float]:
    """Effective chances -> the ``statistic --probability`` values of kube-proxy's chain (the last
    rule has no statistic: 1.0). Equal chances over 3 endpoints give 1/3, 1/2, 1."""
    out, left = [], 1.0
    for p in probabilities:
        out.append(1.0 if left <= 1e-9 else min(1.0, p / left))
        left -= p
    if out:
        out[-1] = 1.0
    return out


def judge_rules(
    node: str,
    svc_ref: str,
    svc_port: Mapping[str, Any],
    programmed: Any | None,
    ready: Sequence[ServiceEndpoint],
    pod_of_ip: Mapping[str, str],
) -> Finding:
    """One node's rules for one Service port against its ready endpoints (pure)."""
    label = f"{node}: rules for {svc_ref}:{svc_port.get('name') or svc_port.get('port')}"
    port_name = svc_port.get("name") or None
    wanted = sorted(
        {
            (e.ip, port.number)
            for e in ready
            for port in e.ports
            if port.name == port_name or len(e.ports) == 1
        }
    )
    if programmed is None:
        return Finding(
            Step(label, "none found in iptables-save", False),
            f"kube-proxy has not programmed {svc_ref} on {node}: it is not running there or its rules "
            "are stale. Look at the kube-proxy pod on that node.",
        )
    if programmed.no_endpoints or not programmed.endpoints:
        if wanted:
            return Finding(
                Step(label, f"REJECT although {len(wanted)} endpoints are ready", False),
                f"The rules on {node} still reject {svc_ref} although it has ready endpoints: kube-proxy's "
                "view is stale. Look at the kube-proxy pod on that node.",
            )
        return Finding(
            Step(label, "REJECT: the Service has no endpoints", False),
            f"Service {svc_ref} has no endpoints, so kube-proxy writes a REJECT rule for it "
            '("has no endpoints" in iptables-save) and clients are refused at once. Make its '
            "selector match Ready pods (run service_health).",
        )
    seen = [(e.ip, e.port) for e in programmed.endpoints]
    stats = chained_statistics([e.probability for e in programmed.endpoints])
    evidence = tuple(
        f"{i + 1}. {pod_of_ip.get(ip or '', ip)} ({ip}:{port}): statistic {s:.5f}, chance {e.probability:.3f}"
        if i + 1 < len(seen)
        else f"{i + 1}. {pod_of_ip.get(ip or '', ip)} ({ip}:{port}): the rest, chance {e.probability:.3f}"
        for i, ((ip, port), s, e) in enumerate(zip(seen, stats, programmed.endpoints))
    )
    n = len(seen)
    equal = all(abs(e.probability - 1 / n) < 1e-3 for e in programmed.endpoints)
    same = sorted(seen) == wanted
    observed = f"{n} endpoint{'s' if n != 1 else ''}" + (
        ", equal chances" if equal else ", unequal chances"
    )
    if not same:
        extra = sorted(set(seen) - set(wanted))
        missing = sorted(set(wanted) - set(seen))
        observed += "".join(
            [
                f"; stale: {', '.join(f'{i}:{p}' for i, p in extra)}" if extra else "",
                f"; missing: {', '.join(f'{i}:{p}' for i, p in missing)}" if missing else "",
            ]
        )
    hint = ""
    if not same:
        hint = (
            f"The rules on {node} do not list exactly the ready endpoints of {svc_ref}: kube-proxy's view is "
            "stale. Compare `iptables-save | grep KUBE-SEP` with `kubectl get endpointslices`."
        )
    elif not equal:
        hint = (
            "kube-proxy gives every endpoint the same chance (statistic 1/n, 1/(n-1), ..., then the rest); "
            "these rules do not, so something else wrote them."
        )
    return Finding(Step(label, observed, same and equal, evidence), hint)


def kube_proxy_rules(
    lab: Lab,
    service: str,
    namespace: str = "default",
    node: str | None = None,
    *,
    wait: float = 3.0,
) -> Result:
    """Read kube-proxy's iptables rules on every node (or one) and check that each Service port
    reaches exactly its ready endpoints, each with the same chance (1/n, 1/(n-1), ..., 1)."""
    ns, name = split_ref(service, namespace)
    subject = f"kube-proxy rules of service {ns}/{name}"
    svc = get_service(lab, name, ns)
    if svc is None:
        step = Step(f"find service {ns}/{name}", "not found", False)
        return make_result(
            "kube_proxy_rules",
            subject,
            [step],
            hint=f"There is no Service {name!r} in namespace {ns!r}; `kubectl get svc -A` lists them.",
        )
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") in (None, "None"):
        raise LabError(
            f"Service {ns}/{name} has no cluster IP (headless or ExternalName), so kube-proxy writes "
            "no rules for it.",
            "Check a headless Service with dns_resolves instead.",
        )
    steps = [
        Step(
            f"find service {ns}/{name}",
            f"clusterIP {spec.get('clusterIP')}, {len(spec.get('ports') or [])} port(s)",
            True,
        )
    ]
    mode = lab.capabilities.kube_proxy_mode
    if mode != "iptables":
        steps.append(Step("kube-proxy mode", mode, None))
        return make_result(
            "kube_proxy_rules",
            subject,
            steps,
            verdict="partial",
            hint=f"kube-proxy runs in {mode} mode here; this check reads iptables-mode rules "
            "(`ipvsadm -Ln` or `nft list ruleset` show the others). Cannot grade here.",
        )
    nodes = [n for n, _ in node_internal_ips(lab)] if node is None else [node]
    pod_names = PodNames(list_pods(lab, None))
    pod_of_ip = {
        str((p.get("status") or {}).get("podIP")): pod_names(p)
        for p in list_pods(lab, None)
        if (p.get("status") or {}).get("podIP") and not (p.get("spec") or {}).get("hostNetwork")
    }

    def gather() -> list[Finding]:
        ready = [e for e in service_endpoints(lab, name, ns) if e.ready]
        findings = []
        for node_name in nodes:
            dump = lab.node_exec(node_name, ["iptables-save"])
            if not dump.ok:
                raise LabError(
                    f"`iptables-save` failed on node {node_name}: {dump.stderr.strip()}.",
                    "Check that the lab is up (`labkit status`).",
                )
            ports = [
                sp
                for sp in parse_iptables_save(dump.stdout)
                if sp.namespace == ns and sp.name == name
            ]
            for svc_port in spec.get("ports") or []:
                programmed = next(
                    (
                        sp
                        for sp in ports
                        if sp.port == int(svc_port["port"])
                        and (sp.protocol or "TCP").upper()
                        == str(svc_port.get("protocol") or "TCP").upper()
                    ),
                    None,
                )
                findings.append(
                    judge_rules(node_name, f"{ns}/{name}", svc_port, programmed, ready, pod_of_ip)
                )
        return findings

    conv = poll(gather, lambda fs: all(f.step.ok for f in fs), wait=wait)
    findings: list[Finding] = conv.observation
    steps += [f.step for f in findings]
    last = steps[-1]
    steps[-1] = Step(last.action, f"{last.observed} ({conv.describe()})", last.ok, last.evidence)
    first_bad = next((f for f in findings if f.step.ok is False), None)
    if first_bad is None:
        return make_result("kube_proxy_rules", subject, steps, elapsed_s=conv.elapsed_s)
    return make_result(
        "kube_proxy_rules",
        subject,
        steps,
        hint=first_bad.hint,
        elapsed_s=conv.elapsed_s,
        failure="refused" if "no endpoints" in first_bad.hint else None,
    )
