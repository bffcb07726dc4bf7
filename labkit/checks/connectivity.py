"""Reachability checks: pod to pod (and the absence of NAT), pod to a Service's ClusterIP (and
load balancing over its endpoints), and from outside the cluster to a NodePort or LoadBalancer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks.policy import model_verdict, not_enforced_note
from labkit.checks.result import Result, Step, classify, failure_hint, make_result, poll
from labkit.checks.targets import (
    PodNames,
    Target,
    find_pods,
    get_service,
    list_pods,
    node_internal_ips,
    pod_summary,
    scheduling_hint,
    scheduling_problem,
    service_endpoints,
    split_ref,
    unschedulable,
)
from labkit.errors import LabError
from labkit.lab import OUTSIDE, Lab, Probe
from labkit.model.addresses import is_ip
from labkit.model.objects import (
    ServiceEndpoint,
    container_ports,
    meta,
    pick_service_port,
    pod_ip,
    pod_phase,
    ref_of,
    strip_port,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
EXPECTATIONS = ("connected", "blocked")


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


def one_pod(lab: Lab, target: Target, role: str, names: PodNames) -> tuple[dict | None, Step]:
    """Find the single pod a target means, with the step that says what was found (and, for a
    pod the scheduler could not place, its PodScheduled message as evidence)."""
    spec, pods = find_pods(lab, target)
    if not pods:
        what = "no pod named" if spec.name else "no pod matches"
        return None, Step(
            f"find the {role} pod {spec.describe()}", f"{what} {spec.describe()}", False
        )
    pod = pods[0]
    ok = pod_phase(pod) == "Running" and bool(pod_ip(pod))
    problem = scheduling_problem(pod)
    evidence = (problem.describe(),) if problem is not None and not ok else ()
    return pod, Step(
        f"find the {role} pod {spec.describe()}", pod_summary(pod, names), ok, evidence
    )


def open_on_pod(
    lab: Lab, target: Target, role: str
) -> tuple[PodNames, dict | None, list[Step], str]:
    """The opening that single-pod checks share: stable pod names, the pod, the step that found it,
    and how to show the pod in the result's subject."""
    names = PodNames(list_pods(lab, None))
    pod, step = one_pod(lab, target, role, names)
    return names, pod, [step], names(pod) if pod is not None else str(target)


def missing_pod_hint(role: str, pod: Mapping[str, Any] | None) -> str:
    """Why a pod a check needs is unusable: it does not exist, the scheduler found no node for it,
    or it has no network yet."""
    if pod is None:
        return (
            f"The {role} pod does not exist (no pod matches the name or selector). List them "
            "with `kubectl get pods -A --show-labels` and check the name, namespace and labels."
        )
    if unschedulable(pod):
        return scheduling_hint(f"The {role} pod", [pod])
    if pod_phase(pod) == "Running" and not pod_ip(pod):
        return (
            f"The {role} pod is Running without an IP: the CNI did not wire its network. "
            "`kubectl describe pod` shows the sandbox or CNI error."
        )
    return (
        f"The {role} pod is {pod_phase(pod)} without an IP, so it has no network. "
        "`kubectl describe pod` shows why (image pull, CNI errors, a container that exited)."
    )


def describe_outcomes(probes: Sequence[Probe]) -> str:
    """``"18 of 20 connected; 2 timeout"``: counts per outcome, sorted, deterministic."""
    counts: dict[str, int] = {}
    for p in probes:
        counts[p.outcome] = counts.get(p.outcome, 0) + 1
    ok = counts.pop("connected", 0)
    rest = "; ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    return f"{ok} of {len(probes)} connected" + (f"; {rest}" if rest else "")


def worst_failure(probes: Sequence[Probe]) -> str | None:
    """The failure class most probes show (ties broken by name), or None if all connected cleanly."""
    classes: dict[str, int] = {}
    for p in probes:
        cls = classify(p.outcome)
        if cls:
            classes[cls] = classes.get(cls, 0) + 1
    if not classes:
        return None
    return sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


# --------------------------------------------------------------------------- pod to pod


LOCALHOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def literal_address(target: Target) -> str | None:
    """The address a ``dst`` names literally (an IP, or ``localhost`` -> 127.0.0.1), else None."""
    if not isinstance(target, str):
        return None
    text = target.strip()
    if text.lower() in LOCALHOST_NAMES:
        return "127.0.0.1"
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return str(ipaddress.ip_address(text)) if is_ip(text) else None


def is_loopback(address: str) -> bool:
    """Whether an address is the pod's own loopback (127.0.0.0/8, ::1)."""
    return ipaddress.ip_address(address).is_loopback


def pod_with_ip(pods: Sequence[Mapping[str, Any]], address: str) -> dict | None:
    """The pod (not hostNetwork) whose podIP is ``address``, or None."""
    for pod in pods:
        if pod_ip(pod) == address and not (pod.get("spec") or {}).get("hostNetwork"):
            return dict(pod)
    return None


def pod_to_pod(
    lab: Lab,
    src: Target,
    dst: Target,
    port: int,
    protocol: str = "TCP",
    expect: str = "connected",
    no_nat: bool = True,
    *,
    wait: float = 5.0,
    timeout: float = 1.0,
) -> Result:
    """Connect from one pod to another pod's IP; with ``expect="blocked"`` the connection must be
    dropped (by a policy). When connected, the server must see the client's own pod IP (no NAT).

    ``dst`` is a pod target, or a literal IP: ``127.0.0.1`` (or ``localhost``) is the source pod's
    own loopback, shared by all its containers (a sidecar); another IP is dialled as given (and
    judged as that pod when a pod owns it). ``no_nat`` is only judged when the destination is a pod.
    """
    port, protocol = check_port(port), check_protocol(protocol)
    if expect not in EXPECTATIONS:
        raise LabError(
            f"expect must be one of {EXPECTATIONS}, not {expect!r}.",
            'Use expect="connected" or expect="blocked".',
        )
    address = literal_address(dst)
    local = address is not None and is_loopback(address)
    if local and expect == "blocked":
        raise LabError(
            f"Traffic to {dst} never leaves the source pod, so no NetworkPolicy can block it.",
            'Use expect="connected" for localhost, or dial another pod to test a block.',
        )
    all_pods = list_pods(lab, None)
    names = PodNames(all_pods)
    steps: list[Step] = []
    dst_text = address if address is not None else _shown(dst, None, names)
    subject = f"{_shown(src, None, names)} -> {dst_text}:{port}/{protocol} ({expect})"
    src_pod, step = one_pod(lab, src, "source", names)
    steps.append(step)
    if not step.ok:
        return make_result("pod_to_pod", subject, steps, hint=missing_pod_hint("source", src_pod))
    assert src_pod is not None
    dst_pod: dict | None
    if address is None:
        dst_pod, step = one_pod(lab, dst, "destination", names)
        steps.append(step)
        subject = f"{names(src_pod)} -> {_shown(dst, dst_pod, names)}:{port}/{protocol} ({expect})"
        if not step.ok:
            return make_result(
                "pod_to_pod", subject, steps, hint=missing_pod_hint("destination", dst_pod)
            )
        assert dst_pod is not None
        dst_ip = str(pod_ip(dst_pod))
    elif local:
        dst_pod, dst_ip = dict(src_pod), address
        subject = f"{names(src_pod)} -> {address} (its own localhost):{port}/{protocol} ({expect})"
        steps.append(
            Step(
                f"the destination {dst}",
                f"localhost inside {names(src_pod)}: every container of "
                "the pod shares its network namespace, so this never touches the pod network",
                None,
            )
        )
    else:
        dst_pod, dst_ip = pod_with_ip(all_pods, address), address
        subject = f"{names(src_pod)} -> {address}:{port}/{protocol} ({expect})"
        owner = (
            f"the IP of {pod_summary(dst_pod, names)}"
            if dst_pod is not None
            else "no pod has this IP"
        )
        steps.append(Step(f"the destination {address}", owner, None))
    if dst_pod is not None:
        declared = [
            cp for cp in container_ports(dst_pod) if cp.number == port and cp.protocol == protocol
        ]
        if not declared:
            ports = (
                ", ".join(f"{cp.number}/{cp.protocol}" for cp in container_ports(dst_pod)) or "none"
            )
            steps.append(
                Step(
                    f"is {port}/{protocol} a containerPort of {names(dst_pod)}",
                    f"no (declared: {ports})",
                    None,
                )
            )

    enforced = lab.capabilities.network_policy
    verdict = (
        None if local or dst_pod is None else model_verdict(lab, src_pod, dst_pod, port, protocol)
    )
    wants_block = expect == "blocked"

    def done(p: Probe) -> bool:
        return (
            (p.outcome == "connected") != wants_block
            if p.outcome in ("connected", "timeout", "unreachable")
            else False
        )

    effective_wait = 0.0 if (wants_block and not enforced) else wait
    conv = poll(
        lambda: lab.probe(ref_of(src_pod), dst_ip, port, protocol, timeout),
        done,
        wait=effective_wait,
    )
    probe: Probe = conv.observation
    failure = classify(probe.outcome)
    home = meta(dst_pod).get("namespace") if dst_pod is not None else meta(src_pod).get("namespace")
    answered = f", answered by {names.by_name(probe.served_by, home)}" if probe.served_by else ""
    observed = f"{probe.outcome}{answered} ({conv.describe()})"
    if verdict is not None:
        steps.append(Step("what the NetworkPolicies allow (model)", verdict.reason, None))
    action = f"connect from {names(src_pod)} to {dst_ip}:{port}/{protocol}"

    if wants_block:
        if probe.outcome == "connected" and not enforced:
            steps.append(Step(action, observed, None))
            return make_result(
                "pod_to_pod",
                subject,
                steps,
                verdict="partial",
                hint=not_enforced_note(lab),
                failure=None,
                elapsed_s=conv.elapsed_s,
            )
        blocked = probe.outcome in ("timeout", "unreachable")
        steps.append(Step(action, observed, blocked))
        if blocked:
            if verdict is not None and verdict.allowed:
                steps.append(
                    Step(
                        "who dropped it",
                        "the policies allow this flow, so the drop is in the "
                        "data plane (routing), not a NetworkPolicy",
                        None,
                    )
                )
            return make_result("pod_to_pod", subject, steps, elapsed_s=conv.elapsed_s)
        if probe.outcome == "connected":
            reason = (
                f" The model agrees: {verdict.reason}."
                if verdict is not None and verdict.allowed
                else ""
            )
            hint = (
                "The connection went through, so no NetworkPolicy isolates this flow. A pod is only "
                "isolated once a policy selects it (podSelector) for that direction (policyTypes); "
                "then only the listed peers and ports are allowed." + reason
            )
            return make_result("pod_to_pod", subject, steps, hint=hint, elapsed_s=conv.elapsed_s)
        return make_result(
            "pod_to_pod",
            subject,
            steps,
            failure=failure,
            hint=failure_hint(failure or "error", "pod"),
            elapsed_s=conv.elapsed_s,
        )

    connected = probe.outcome == "connected" and failure is None
    steps.append(Step(action, observed, connected))
    if not connected:
        hint = failure_hint(failure or "error", "pod")
        if local and failure == "refused":
            hint = (
                f"Nothing in {names(src_pod)} listens on {dst_ip}:{port}. The containers of a pod share "
                "one network namespace, so another container must listen on that port: check that the "
                "sidecar container exists and serves this port (its containerPort), "
                "`kubectl get pod -o jsonpath='{.spec.containers[*].ports}'`."
            )
        elif failure == "timeout" and verdict is not None and not verdict.allowed and enforced:
            hint = (
                f"A NetworkPolicy drops this flow: {verdict.reason}. "
                "Add a rule that allows this source and port, in the right direction."
            )
        return make_result(
            "pod_to_pod", subject, steps, hint=hint, failure=failure, elapsed_s=conv.elapsed_s
        )
    if dst_pod is not None and probe.served_by and probe.served_by != meta(dst_pod).get("name"):
        steps.append(
            Step(
                "the pod that answered is the destination",
                f"no: {names.by_name(probe.served_by)} answered",
                False,
            )
        )
        return make_result(
            "pod_to_pod",
            subject,
            steps,
            elapsed_s=conv.elapsed_s,
            hint="Another pod answered on this IP: the address was re-used. Look up the "
            "destination's current IP with `kubectl get pod -o wide`.",
        )
    if local:
        seen = strip_port(probe.client_ip)
        if seen is not None:
            steps.append(
                Step(
                    "source IP as the server saw it",
                    f"{seen} (localhost: the pod talked to itself)",
                    None,
                )
            )
    elif no_nat and dst_pod is not None:
        seen = strip_port(probe.client_ip)
        src_ip = pod_ip(src_pod)
        if seen is None:
            steps.append(
                Step("source IP as the server saw it", "the server did not report it", None)
            )
        else:
            kept = seen == src_ip
            steps.append(
                Step(
                    "source IP as the server saw it",
                    f"{seen} {'=' if kept else '!='} the client's pod IP {src_ip}"
                    + (" (no NAT)" if kept else " (NAT)"),
                    kept,
                )
            )
            if not kept:
                return make_result(
                    "pod_to_pod",
                    subject,
                    steps,
                    elapsed_s=conv.elapsed_s,
                    hint=f"The server saw {seen}, not the pod IP {src_ip}: something masqueraded pod-to-pod "
                    "traffic. Kubernetes requires pods to reach each other without NAT; look for a "
                    "MASQUERADE rule in the nat table on the source node (`iptables-save -t nat`).",
                )
    if verdict is not None and not verdict.allowed and not enforced:
        return make_result(
            "pod_to_pod",
            subject,
            steps,
            verdict="partial",
            elapsed_s=conv.elapsed_s,
            hint=f"The connection went through only because policies are not enforced: on a "
            f"cluster that enforces them it would be dropped ({verdict.reason}). "
            + not_enforced_note(lab),
        )
    return make_result("pod_to_pod", subject, steps, elapsed_s=conv.elapsed_s)


def _shown(target: Target, pod: Mapping[str, Any] | None, names: PodNames) -> str:
    if pod is not None:
        return names(pod)
    if isinstance(target, str):
        return target if "/" in target else f"default/{target}"
    return f"{target.get('namespace', 'default')}/{{{target.get('selector')}}}"


# --------------------------------------------------------------------------- pod to service


def ready_endpoint_pods(endpoints: Sequence[ServiceEndpoint]) -> list[str]:
    """Names of the pods behind the ready endpoints, sorted."""
    return sorted({e.pod for e in endpoints if e.ready and e.pod})


def pod_to_service(
    lab: Lab,
    src: Target,
    service: str,
    port: int | str | None = None,
    namespace: str = "default",
    requests: int = 20,
    expect_spread: bool = True,
    *,
    wait: float = 5.0,
    timeout: float = 1.0,
) -> Result:
    """Send ``requests`` connections from a pod to a Service's ClusterIP; all must connect, and with
    ``expect_spread`` every ready endpoint must answer at least once (kube-proxy load balancing)."""
    if int(requests) < 1:
        raise LabError(f"requests must be at least 1, not {requests}.", "Use e.g. requests=20.")
    ns, svc_name = split_ref(service, namespace)
    names = PodNames(list_pods(lab, None))
    subject = f"{_shown(src, None, names)} -> service {ns}/{svc_name}"
    steps: list[Step] = []
    src_pod, step = one_pod(lab, src, "source", names)
    steps.append(step)
    if src_pod is not None:
        subject = f"{names(src_pod)} -> service {ns}/{svc_name}"
    if not step.ok:
        return make_result(
            "pod_to_service", subject, steps, hint=missing_pod_hint("source", src_pod)
        )
    svc, svc_port, problem = _service_and_port(lab, svc_name, ns, port, steps)
    if problem:
        return make_result("pod_to_service", subject, steps, hint=problem)
    assert svc is not None and svc_port is not None
    cluster_ip = (svc.get("spec") or {}).get("clusterIP")
    if not cluster_ip or cluster_ip == "None":
        raise LabError(
            f"Service {ns}/{svc_name} is headless (clusterIP: None), so it has no virtual IP to "
            "load-balance.",
            "Check a headless Service with dns_resolves (one A record per pod).",
        )
    number, proto = int(svc_port["port"]), str(svc_port.get("protocol") or "TCP").upper()
    subject += f":{number}/{proto}"
    endpoints = service_endpoints(lab, svc_name, ns)
    ready = ready_endpoint_pods(endpoints)
    steps.append(
        Step(
            f"ready endpoints of {ns}/{svc_name}",
            f"{len(ready)}: " + (", ".join(sorted(names.by_name(p, ns) for p in ready)) or "none"),
            None,
        )
    )

    pairs = [(ref_of(src_pod), cluster_ip, number, proto)] * int(requests)
    served: set[str] = set()

    def observe() -> list[Probe]:
        return _sample(lab, pairs, timeout, served, set(ready) if expect_spread else set())

    def done(probes: list[Probe]) -> bool:
        if not all(p.ok for p in probes):
            return False
        return not expect_spread or set(ready) <= served

    conv = poll(observe, done, wait=wait)
    probes: list[Probe] = conv.observation
    all_ok = all(p.ok for p in probes) and worst_failure(probes) is None
    steps.append(
        Step(
            f"{requests} connections from {names(src_pod)} to {cluster_ip}:{number}/{proto}",
            f"{describe_outcomes(probes)} ({conv.describe()})",
            all_ok,
        )
    )
    if not all_ok:
        failure = worst_failure(probes) or "error"
        hint = failure_hint(failure, "service")
        if not ready:
            hint = (
                f"Service {ns}/{svc_name} has no ready endpoints, so nothing can answer on its ClusterIP. "
                f"Run service_health(lab, '{svc_name}', namespace='{ns}') to see whether the selector, "
                "the targetPort or readiness is wrong."
            )
        elif failure == "timeout" and lab.capabilities.network_policy:
            denied = _denied_by_policy(lab, src_pod, endpoints, svc_port, ns)
            if denied:
                hint = f"A NetworkPolicy drops the traffic at the endpoints: {denied}"
        return make_result(
            "pod_to_service", subject, steps, hint=hint, failure=failure, elapsed_s=conv.elapsed_s
        )
    shown = sorted(names.by_name(p, ns) for p in served)
    strangers = sorted(names.by_name(p, ns) for p in served - set(ready))
    if strangers:
        steps.append(
            Step(
                "only endpoints of the Service answered",
                f"no: {', '.join(strangers)} also answered",
                False,
            )
        )
        return make_result(
            "pod_to_service",
            subject,
            steps,
            elapsed_s=conv.elapsed_s,
            hint="Pods that are not endpoints answered: the node's rules are stale. "
            "Compare `iptables-save | grep KUBE-SEP` with `kubectl get endpointslices`.",
        )
    if expect_spread:
        missing = sorted(names.by_name(p, ns) for p in set(ready) - served)
        spread_ok = not missing and bool(ready)
        seen = (
            f"{len(served)} of {len(ready)} ready endpoints answered: {', '.join(shown) or 'none'}"
        )
        if missing:
            seen += f" (never: {', '.join(missing)})"
        steps.append(Step("load balancing over the endpoints", seen, spread_ok))
        if not spread_ok:
            return make_result(
                "pod_to_service",
                subject,
                steps,
                elapsed_s=conv.elapsed_s,
                hint="Some ready endpoints never answered. kube-proxy picks an endpoint per new "
                "connection with probabilities 1/n, 1/(n-1), ...: read them with "
                "`iptables-save | grep KUBE-SVC` on a node, and check that every endpoint listens "
                "on the targetPort.",
            )
    else:
        steps.append(
            Step(
                "who answered",
                "endpoints of the Service only" if served else "(not reported)",
                None,
            )
        )
    if not lab.capabilities.network_policy:
        denied = _denied_by_policy(lab, src_pod, endpoints, svc_port, ns)
        if denied:
            steps.append(Step("what the NetworkPolicies allow (model)", denied, None))
            return make_result(
                "pod_to_service",
                subject,
                steps,
                verdict="partial",
                elapsed_s=conv.elapsed_s,
                hint="The connections went through only because policies are not enforced: on a "
                f"cluster that enforces them they would be dropped ({denied}). "
                + not_enforced_note(lab),
            )
    return make_result("pod_to_service", subject, steps, elapsed_s=conv.elapsed_s)


EXTRA_SAMPLES = 4
"""Further batches sent at once when every probe connected but not every endpoint answered yet:
load balancing is random, so this is sampling, not waiting for the cluster to converge."""


def _sample(
    lab: Lab, pairs: list[tuple], timeout: float, served: set[str], wanted: set[str]
) -> list[Probe]:
    """Probe a batch, recording who answered; if all connected but some ``wanted`` endpoint has not
    answered yet, send up to EXTRA_SAMPLES more batches. Returns the first batch."""
    first = lab.probe_many(pairs, timeout=timeout)
    served.update(p.served_by for p in first if p.ok and p.served_by)
    batch, extra = first, 0
    while wanted - served and all(p.ok for p in batch) and extra < EXTRA_SAMPLES:
        batch = lab.probe_many(pairs, timeout=timeout)
        served.update(p.served_by for p in batch if p.ok and p.served_by)
        extra += 1
    return first


def _service_and_port(
    lab: Lab, name: str, namespace: str, port: int | str | None, steps: list[Step]
) -> tuple[dict | None, dict | None, str]:
    """Find the Service and the port meant; on failure the hint to give (else "")."""
    svc = get_service(lab, name, namespace)
    if svc is None:
        elsewhere = sorted(
            meta(s).get("namespace")
            for s in lab.get("services", namespace=None)
            if meta(s).get("name") == name
        )
        where = f" (a Service of that name exists in: {', '.join(elsewhere)})" if elsewhere else ""
        steps.append(Step(f"find service {namespace}/{name}", f"not found{where}", False))
        return (
            None,
            None,
            (
                f"There is no Service {name!r} in namespace {namespace!r}{where}. Check the name "
                "and namespace with `kubectl get svc -A`."
            ),
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
        steps.append(
            Step(
                f"find port {port} on service {namespace}/{name}",
                f"not found (ports: {listed})",
                False,
            )
        )
        return (
            svc,
            None,
            (
                f"Service {namespace}/{name} has no port {port}; it exposes {listed}. Connect to one "
                "of those (the Service port, not the targetPort)."
            ),
        )
    steps.append(
        Step(
            f"find service {namespace}/{name}",
            f"type {spec.get('type') or 'ClusterIP'}, clusterIP {spec.get('clusterIP')}, port "
            f"{svc_port.get('port')}/{svc_port.get('protocol') or 'TCP'} -> targetPort "
            f"{svc_port.get('targetPort', svc_port.get('port'))}",
            True,
        )
    )
    return svc, svc_port, ""


def _denied_by_policy(
    lab: Lab,
    src_pod: Mapping[str, Any] | None,
    endpoints: Sequence[ServiceEndpoint],
    svc_port: Mapping[str, Any],
    namespace: str,
) -> str:
    """If the policy model denies the source every ready endpoint, the reason (else ""), whether
    or not this lab enforces policies (callers decide what a denial means here)."""
    pods = {meta(p).get("name"): p for p in lab.get("pods", namespace=namespace)}
    reasons = []
    for ep in endpoints:
        pod = pods.get(ep.pod)
        if not ep.ready or pod is None:
            continue
        target = _endpoint_port(ep, svc_port)
        verdict = (
            model_verdict(lab, src_pod, pod, target, str(svc_port.get("protocol") or "TCP"))
            if target
            else None
        )
        if verdict is None or verdict.allowed:
            return ""
        reasons.append(verdict.reason)
    return sorted(set(reasons))[0] if reasons else ""


def _endpoint_port(ep: ServiceEndpoint, svc_port: Mapping[str, Any]) -> int | None:
    """The port on the endpoint pod that a Service port leads to."""
    name = svc_port.get("name") or None
    for port in ep.ports:
        if port.name == name or len(ep.ports) == 1:
            return port.number
    target = svc_port.get("targetPort", svc_port.get("port"))
    return int(target) if str(target).isdigit() else None


# --------------------------------------------------------------------------- from outside


VIAS = ("nodeport", "loadbalancer")


def external_to_service(
    lab: Lab,
    service: str,
    namespace: str = "default",
    via: str = "nodeport",
    requests: int = 10,
    *,
    port: int | str | None = None,
    expect_spread: bool = False,
    wait: float = 5.0,
    timeout: float = 1.0,
) -> Result:
    """Reach a Service from outside the cluster: at every node's InternalIP on its nodePort, or at its
    load-balancer address; every request must connect and be answered by one of its endpoints."""
    if via not in VIAS:
        raise LabError(
            f"via must be one of {VIAS}, not {via!r}.", 'Use via="nodeport" or via="loadbalancer".'
        )
    if int(requests) < 1:
        raise LabError(f"requests must be at least 1, not {requests}.", "Use e.g. requests=10.")
    ns, svc_name = split_ref(service, namespace)
    subject = f"outside -> service {ns}/{svc_name} via {via}"
    steps: list[Step] = []
    names = PodNames(list_pods(lab, None))
    svc, svc_port, problem = _service_and_port(lab, svc_name, ns, port, steps)
    if problem:
        return make_result("external_to_service", subject, steps, hint=problem)
    assert svc is not None and svc_port is not None
    spec = svc.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"
    proto = str(svc_port.get("protocol") or "TCP").upper()
    endpoints = service_endpoints(lab, svc_name, ns)
    ready = ready_endpoint_pods(endpoints)
    local = spec.get("externalTrafficPolicy") == "Local"

    if via == "nodeport":
        node_port = svc_port.get("nodePort")
        exposed = svc_type in ("NodePort", "LoadBalancer") and node_port
        steps.append(
            Step(
                "the Service opens a port on every node",
                f"nodePort {node_port}" if exposed else f"no: type {svc_type} has no nodePort",
                bool(exposed),
            )
        )
        if not exposed:
            return make_result(
                "external_to_service",
                subject,
                steps,
                hint=f"A {svc_type} Service is reachable only inside the cluster. Set "
                "`type: NodePort` (optionally `nodePort: 30000-32767`) to open the same port "
                "on every node's IP.",
            )
        nodes = node_internal_ips(lab)
        targets = [(node, ip, int(node_port)) for node, ip in nodes]
        endpoint_nodes = {e.node for e in endpoints if e.ready and e.node}
        if local:
            steps.append(
                Step(
                    "externalTrafficPolicy",
                    "Local: only nodes with a ready endpoint answer, and the client IP is kept",
                    None,
                )
            )
            targets = [t for t in targets if t[0] in endpoint_nodes]
    else:
        if not lab.capabilities.load_balancer:
            steps.append(Step("a load-balancer implementation runs", "no", None))
            return make_result(
                "external_to_service",
                subject,
                steps,
                verdict="partial",
                hint="This lab has no load-balancer implementation, so LoadBalancer Services "
                "stay <pending>: cannot grade here. On Kind run cloud-provider-kind; the "
                "sandbox provides one.",
            )
        if svc_type != "LoadBalancer":
            steps.append(Step("the Service is a LoadBalancer", f"no: type {svc_type}", False))
            return make_result(
                "external_to_service",
                subject,
                steps,
                hint=f"A {svc_type} Service gets no external address. Set `type: LoadBalancer`.",
            )
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        address = next(
            (i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")),
            None,
        )
        steps.append(
            Step(
                "the Service has an external address",
                address or "no: EXTERNAL-IP <pending>",
                bool(address),
            )
        )
        if not address:
            return make_result(
                "external_to_service",
                subject,
                steps,
                hint="The LoadBalancer has no address yet (<pending>): the load-balancer "
                "implementation has not assigned one. Check its pods and its address pool.",
            )
        targets = [("load balancer", address, int(svc_port["port"]))]
    steps.append(
        Step(
            f"ready endpoints of {ns}/{svc_name}",
            f"{len(ready)}: " + (", ".join(sorted(names.by_name(p, ns) for p in ready)) or "none"),
            None,
        )
    )
    if not targets:
        steps.append(
            Step("nodes that should answer", "none: no node hosts a ready endpoint", False)
        )
        return make_result(
            "external_to_service",
            subject,
            steps,
            hint="With externalTrafficPolicy: Local only nodes that run a ready endpoint answer, "
            "and none does. Make the pods Ready or use externalTrafficPolicy: Cluster.",
        )

    per_target = max(1, -(-int(requests) // len(targets)))
    pairs = [(OUTSIDE, ip, p, proto) for _, ip, p in targets for _ in range(per_target)]
    served: set[str] = set()

    def observe() -> list[Probe]:
        return _sample(lab, pairs, timeout, served, set(ready) if expect_spread else set())

    def done(probes: list[Probe]) -> bool:
        return all(p.ok for p in probes) and (not expect_spread or set(ready) <= served)

    conv = poll(observe, done, wait=wait)
    probes: list[Probe] = conv.observation
    by_ip: dict[str, list[Probe]] = {}
    for p in probes:
        by_ip.setdefault(p.dst, []).append(p)
    failed_any = False
    for label, ip, p in targets:
        got = by_ip.get(ip, [])
        ok = bool(got) and all(x.ok for x in got) and worst_failure(got) is None
        failed_any |= not ok
        where = f"{ip}:{p}" + (f" ({label})" if via == "nodeport" else "")
        steps.append(
            Step(
                f"{len(got)} connections from outside to {where}",
                f"{describe_outcomes(got)} ({conv.describe()})",
                ok,
            )
        )
    if failed_any:
        failure = worst_failure(probes) or "error"
        hint = failure_hint(failure, "external")
        if not ready:
            hint = (
                f"Service {ns}/{svc_name} has no ready endpoints, so the node forwards to nothing. "
                f"Run service_health(lab, '{svc_name}', namespace='{ns}')."
            )
        return make_result(
            "external_to_service",
            subject,
            steps,
            hint=hint,
            failure=failure,
            elapsed_s=conv.elapsed_s,
        )
    strangers = sorted(names.by_name(p, ns) for p in served - set(ready))
    if strangers:
        steps.append(
            Step("only endpoints of the Service answered", f"no: {', '.join(strangers)}", False)
        )
        return make_result(
            "external_to_service",
            subject,
            steps,
            elapsed_s=conv.elapsed_s,
            hint="Pods that are not endpoints of this Service answered: another Service "
            "owns this port, or the node's rules are stale.",
        )
    if expect_spread:
        missing = sorted(names.by_name(p, ns) for p in set(ready) - served)
        steps.append(
            Step(
                "traffic spread over the endpoints",
                f"{len(served)} of {len(ready)} answered"
                + (f" (never: {', '.join(missing)})" if missing else ""),
                not missing,
            )
        )
        if missing:
            return make_result(
                "external_to_service",
                subject,
                steps,
                elapsed_s=conv.elapsed_s,
                hint="Some ready endpoints never answered; check that each listens on the "
                "targetPort and is Ready.",
            )
    else:
        steps.append(
            Step(
                "who answered",
                "endpoints of the Service only" if served else "(not reported)",
                None,
            )
        )
    return make_result("external_to_service", subject, steps, elapsed_s=conv.elapsed_s)
