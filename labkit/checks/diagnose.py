"""``diagnose``: walk the layers a connection crosses (DNS -> Service -> Endpoints -> policy -> data
plane), judge each with what the cluster says, and name the first broken one.
"""

from __future__ import annotations

from labkit.checks.connectivity import missing_pod_hint, one_pod
from labkit.checks.dns import cluster_records, dns_failure_hint, explain_queries, pod_resolv_conf
from labkit.checks.policy import model_verdict, not_enforced_note
from labkit.checks.result import Result, Step, classify, failure_hint, make_result, poll
from labkit.checks.services import judge_service, resolve_target_port
from labkit.checks.targets import (
    PodNames,
    Target,
    get_service,
    list_pods,
    pod_state,
    scheduling_hint,
    service_endpoints,
    split_ref,
    unschedulable,
)
from labkit.errors import LabError
from labkit.lab import Lab, Probe
from labkit.model.addresses import is_ip
from labkit.model.objects import (
    meta,
    pick_service_port,
    pod_ip,
    pod_phase,
    pod_ready,
    ref_of,
)


def _find_by_ip(lab: Lab, ip: str) -> tuple[dict | None, dict | None]:
    """The Service whose ClusterIP is ``ip``, or the pod whose IP it is."""
    for svc in lab.get("services", namespace=None):
        spec = svc.get("spec") or {}
        if ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]):
            return svc, None
    for pod in lab.get("pods", namespace=None):
        if pod_ip(pod) == ip:
            return None, pod
    return None, None


def diagnose(
    lab: Lab,
    src: Target,
    target: str,
    port: int | str | None = None,
    *,
    wait: float = 2.0,
    timeout: float = 1.0,
) -> Result:
    """Find the first broken layer between a pod and a target (a DNS name, ``ns/service``, ``ns/pod``
    or an IP), with the evidence of every layer it checked and the hint for the broken one."""
    target = str(target).strip()
    if not target:
        raise LabError(
            "diagnose needs a target.", "Pass a Service name, ns/name, or an IP address."
        )
    names = PodNames(list_pods(lab, None))
    steps: list[Step] = []
    src_pod, step = one_pod(lab, src, "client", names)
    steps.append(step)
    subject = f"{names(src_pod) if src_pod is not None else src} -> {target}" + (
        f":{port}" if port else ""
    )
    if not step.ok:
        return make_result(
            "diagnose", subject, steps, hint=missing_pod_hint("client", src_pod), layer="data plane"
        )
    assert src_pod is not None

    def broken(layer: str, hint: str, failure: str | None = None) -> Result:
        return make_result("diagnose", subject, steps, hint=hint, layer=layer, failure=failure)

    # ---- DNS
    svc: dict | None = None
    pod: dict | None = None
    address: str | None = None
    if is_ip(target):
        address = target
        steps.append(Step("dns", f"skipped: {target} is an address", None))
    elif "/" in target:
        ns, name = split_ref(target)
        svc = get_service(lab, name, ns)
        if svc is None:
            pod = next((p for p in list_pods(lab, ns) if meta(p).get("name") == name), None)
        if svc is None and pod is None:
            steps.append(Step("service", f"no Service or pod {ns}/{name}", False))
            return broken(
                "service",
                f"Neither a Service nor a pod {ns}/{name} exists; check `kubectl get svc,pods -n {ns}`.",
            )
        if svc is not None:
            dns_name = f"{name}.{ns}"
            answers = lab.resolve(ref_of(src_pod), dns_name, "A")
            cluster_ip = (svc.get("spec") or {}).get("clusterIP")
            ok = bool(answers) or cluster_ip in (None, "None")
            steps.append(
                Step("dns", f"{dns_name} -> {', '.join(sorted(answers)) or 'no answer'}", ok)
            )
            if not ok:
                return broken(
                    "dns",
                    dns_failure_hint(
                        lab, src_pod, dns_name, [], [cluster_ip or ""], [cluster_ip or ""], None
                    ),
                    "dns",
                )
        else:
            address = pod_ip(pod)
            steps.append(Step("dns", f"skipped: {target} is a pod", None))
    else:
        conf, _ = pod_resolv_conf(lab, src_pod)
        tried, model_values = explain_queries(target, "A", conf, cluster_records(lab))
        answers = sorted(lab.resolve(ref_of(src_pod), target, "A"))
        evidence = tuple(f"{i + 1}. {q} -> {rc}" for i, (q, rc) in enumerate(tried))
        steps.append(
            Step(
                "dns",
                f"{target} -> {', '.join(answers) or 'no answer'}"
                + (
                    f" (via {tried[-1][0]})"
                    if answers and tried and tried[-1][1] == "NOERROR"
                    else ""
                ),
                bool(answers),
                evidence,
            )
        )
        if not answers:
            return broken(
                "dns",
                dns_failure_hint(
                    lab, src_pod, target, [], model_values or ["?"], model_values, None
                ),
                "dns",
            )
        address = answers[0]

    if address is not None and svc is None and pod is None:
        svc, pod = _find_by_ip(lab, address)
        if svc is None and pod is None:
            steps.append(Step("service", f"{address} belongs to no Service and no pod", False))
            return broken(
                "service",
                f"{address} is not a Service ClusterIP nor a pod IP of this cluster: an address "
                "from a deleted object, or the name points outside the cluster.",
                "unreachable",
            )

    # ---- Service and endpoints
    dst_port: int | None = None
    protocol = "TCP"
    probe_ip: str | None = None
    backends: list[dict] = []
    if svc is not None:
        ns, name = meta(svc).get("namespace") or "default", str(meta(svc).get("name"))
        svc_port = pick_service_port(svc, port)
        spec = svc.get("spec") or {}
        if svc_port is None:
            listed = ", ".join(str(p.get("port")) for p in spec.get("ports") or []) or "none"
            steps.append(
                Step("service", f"{ns}/{name} has no port {port} (ports: {listed})", False)
            )
            return broken(
                "service",
                f"Service {ns}/{name} does not expose port {port}; it exposes {listed}. "
                "Clients connect to the Service port, which forwards to the targetPort.",
            )
        protocol = str(svc_port.get("protocol") or "TCP").upper()
        steps.append(
            Step(
                "service",
                f"{ns}/{name}: type {spec.get('type') or 'ClusterIP'}, clusterIP "
                f"{spec.get('clusterIP')}, port {svc_port.get('port')}/{protocol} -> targetPort "
                f"{svc_port.get('targetPort', svc_port.get('port'))}",
                True,
            )
        )
        all_pods = list_pods(lab, None)
        here = [p for p in all_pods if meta(p).get("namespace") == ns]
        endpoints = service_endpoints(lab, name, ns)
        findings = judge_service(name, ns, svc, here, all_pods, endpoints, names)
        bad = next((f for f in findings[1:] if f.step.ok is False), None)
        summary = next(
            (f.step for f in reversed(findings) if f.step.action == "ready endpoints"), None
        )
        if bad is not None:
            steps.append(
                Step(
                    "endpoints", f"{bad.step.action}: {bad.step.observed}", False, bad.step.evidence
                )
            )
            return broken("endpoints", bad.hint)
        steps.append(Step("endpoints", summary.observed if summary else "ready", True))
        by_name = {meta(p).get("name"): p for p in here}
        backends = [by_name[e.pod] for e in endpoints if e.ready and e.pod in by_name]
        target_port = svc_port.get("targetPort", svc_port.get("port"))
        per_pod_port = {
            ref_of(p): resolve_target_port(target_port, protocol, p)[0] for p in backends
        }
        cluster_ip = spec.get("clusterIP")
        probe_ip = (
            cluster_ip
            if cluster_ip and cluster_ip != "None"
            else (pod_ip(backends[0]) if backends else None)
        )
        dst_port = (
            int(svc_port["port"])
            if probe_ip == cluster_ip
            else per_pod_port.get(ref_of(backends[0]))
        )
    else:
        assert pod is not None
        backends = [pod]
        if port is None:
            declared = [
                p
                for c in (pod.get("spec") or {}).get("containers") or []
                for p in c.get("ports") or []
            ]
            if not declared:
                raise LabError(
                    f"Pod {ref_of(pod)} declares no containerPort, so diagnose cannot pick a port.",
                    "Pass port=... explicitly.",
                )
            port = int(declared[0]["containerPort"])
            protocol = str(declared[0].get("protocol") or "TCP").upper()
        dst_port = int(port) if str(port).isdigit() else resolve_target_port(port, protocol, pod)[0]
        if dst_port is None:
            steps.append(Step("endpoints", f"{names(pod)} declares no port named {port}", False))
            return broken("endpoints", f"Pod {names(pod)} has no containerPort named {port!r}.")
        per_pod_port = {ref_of(pod): dst_port}
        probe_ip = pod_ip(pod)
        ready = pod_ready(pod)
        steps.append(Step("service", "skipped: the target is a pod", None))
        if probe_ip is None:
            steps.append(
                Step(
                    "endpoints",
                    f"{names(pod)} is {pod_phase(pod)} with no IP",
                    False,
                    (pod_state(pod, names),),
                )
            )
            hint = (
                scheduling_hint(f"The pod {names(pod)}", [pod])
                if unschedulable(pod)
                else f"The pod {names(pod)} is {pod_phase(pod)} without an IP, so there is nothing to connect to; "
                "`kubectl describe pod` shows why it has not started."
            )
            return broken("endpoints", hint)
        steps.append(
            Step(
                "endpoints",
                f"{names(pod)} is {pod_phase(pod)}, {'Ready' if ready else 'not Ready'}",
                None,
            )
        )

    # ---- policy
    verdicts = []
    for backend in backends:
        number = per_pod_port.get(ref_of(backend))
        if number is None:
            continue
        verdict = model_verdict(lab, src_pod, backend, number, protocol)
        if verdict is not None:
            verdicts.append((names(backend), verdict))
    denied = [(n, v) for n, v in verdicts if not v.allowed]
    enforced = lab.capabilities.network_policy
    if verdicts and len(denied) == len(verdicts):
        reason = sorted(v.reason for _, v in denied)[0]
        if enforced:
            steps.append(Step("policy", reason, False))
            return broken(
                "policy",
                f"NetworkPolicy drops this connection: {reason}. Add a rule that allows this "
                "client and port in the right direction.",
                "timeout",
            )
        steps.append(
            Step("policy", f"{reason} (not enforced here: {lab.cni} has no policy engine)", None)
        )
    elif denied:
        steps.append(
            Step(
                "policy",
                f"allowed to {len(verdicts) - len(denied)} of {len(verdicts)} backends; "
                f"denied: {', '.join(sorted(n for n, _ in denied))}",
                None,
            )
        )
    else:
        steps.append(
            Step(
                "policy",
                sorted(v.reason for _, v in verdicts)[0] if verdicts else "nothing to judge",
                True if verdicts else None,
            )
        )

    # ---- data plane
    if probe_ip is None or dst_port is None:
        steps.append(Step("data plane", "no address to connect to", False))
        return broken(
            "data plane", "The Service has no address and no ready backend to connect to."
        )
    conv = poll(
        lambda: lab.probe(ref_of(src_pod), probe_ip, dst_port, protocol, timeout),
        lambda p: p.ok,
        wait=wait,
    )
    probe: Probe = conv.observation
    answered = ""
    if probe.ok and probe.served_by:
        backend_names = {meta(b).get("name") for b in backends}
        answered = (
            ", answered by an endpoint of the Service"
            if svc is not None and probe.served_by in backend_names
            else f", answered by {names.by_name(probe.served_by)}"
        )
    steps.append(
        Step(
            "data plane",
            f"connect to {probe_ip}:{dst_port}/{protocol}: {probe.outcome}{answered} "
            f"({conv.describe()})",
            probe.ok,
        )
    )
    if not probe.ok:
        failure = classify(probe.outcome) or "error"
        hint = failure_hint(failure, "service" if svc is not None else "pod")
        if denied and not enforced:
            hint += " " + not_enforced_note(lab)
        return make_result(
            "diagnose",
            subject,
            steps,
            hint=hint,
            layer="data plane",
            failure=failure,
            elapsed_s=conv.elapsed_s,
        )
    if verdicts and len(denied) == len(verdicts) and not enforced:
        # It connected only because nothing enforces the policies: neither a pass nor a fail.
        reason = sorted(v.reason for _, v in denied)[0]
        return make_result(
            "diagnose",
            subject,
            steps,
            verdict="partial",
            elapsed_s=conv.elapsed_s,
            hint=f"The connection went through only because policies are not enforced: a "
            f"NetworkPolicy would drop it on a cluster that enforces them ({reason}). "
            + not_enforced_note(lab),
        )
    return make_result("diagnose", subject, steps, elapsed_s=conv.elapsed_s)
