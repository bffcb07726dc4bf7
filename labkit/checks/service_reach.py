"""``pod_to_service``: send connections from a pod to a Service's ClusterIP; every one must connect,
be answered by one of the Service's endpoints and, when asked, every ready endpoint must answer
(kube-proxy load balancing).

The check runs as ordered stages: find the source, find the Service, send the connections, then
judge that all connected, that only endpoints answered, the spread, and the policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labkit.checks.pods import missing_pod_hint, one_pod, shown
from labkit.checks.policy import not_enforced_note
from labkit.checks.reach import (
    ServiceTarget,
    SourcePod,
    Traffic,
    check_requests,
    denied_by_policy,
    describe_outcomes,
    find_service_port,
    ready_endpoints_step,
    send_to_service,
    worst_failure,
)
from labkit.checks.result import Result, failure_hint
from labkit.checks.stages import Report, Stages
from labkit.checks.targets import Target, split_ref
from labkit.checks.view import ClusterView
from labkit.commands import ENDPOINTS, SERVICE_RULES
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.objects import pod_node, ref_of


@dataclass(frozen=True)
class ServiceReachAsk:
    """What pod_to_service was asked, with the lab, its view and the report being built."""

    lab: Lab
    view: ClusterView
    report: Report
    src: Target
    namespace: str
    service: str
    port: int | str | None
    requests: int
    expect_spread: bool
    wait: float
    timeout: float


ServiceClient = SourcePod[ServiceReachAsk]
"""The source pod found."""


@dataclass(frozen=True)
class Dial:
    """The source pod and the Service (with its ClusterIP) it connects to."""

    ask: ServiceReachAsk
    src: dict[str, Any]
    target: ServiceTarget
    cluster_ip: str


ServiceTraffic = Traffic[Dial]
"""The connections sent from the source pod to the ClusterIP."""


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
    requests = check_requests(requests, 20)
    ns, svc_name = split_ref(service, namespace)
    view = ClusterView(lab)
    report = Report("pod_to_service", f"{shown(src)} -> service {ns}/{svc_name}")
    ask = ServiceReachAsk(
        lab, view, report, src, ns, svc_name, port, requests, expect_spread, wait, timeout
    )
    return (
        Stages(ask)
        .then(find_source)
        .then(find_service)
        .then(send)
        .then(all_connected)
        .then(only_endpoints_answered)
        .then(spread)
        .finish(policies_agree)
    )


def find_source(ask: ServiceReachAsk) -> ServiceClient | Result:
    """The source pod must exist, run and have an IP."""
    found = one_pod(ask.view, ask.src, "source")
    ask.report.steps.append(found.step)
    if found.pod is not None:
        ask.report.subject = f"{found.shown} -> service {ask.namespace}/{ask.service}"
    if found.usable is None:
        return ask.report.result(missing_pod_hint("source", found.pod, ask.view.shell))
    return ServiceClient(ask, found.usable)


def find_service(source: ServiceClient) -> Dial | Result:
    """The Service and port must exist, and the Service must have a ClusterIP to dial."""
    ask = source.ask
    target = find_service_port(ask.view, ask.report, ask.service, ask.namespace, ask.port)
    if isinstance(target, Result):
        return target
    cluster_ip = target.spec.get("clusterIP")
    if not cluster_ip or cluster_ip == "None":
        raise LabError(
            f"Service {target.ref} is headless (clusterIP: None), so it has no virtual IP to "
            "load-balance.",
            "Check a headless Service with dns_resolves (one A record per pod).",
        )
    ask.report.subject += f":{target.number}/{target.protocol}"
    ready_endpoints_step(ask.report, ask.view, target)
    return Dial(ask, source.pod, target, str(cluster_ip))


def send(dial: Dial) -> ServiceTraffic:
    """Send the connections until all connect (and, for the spread, every ready endpoint has
    answered) or the wait runs out."""
    target = dial.target
    pairs = [(ref_of(dial.src), dial.cluster_ip, target.number, target.protocol)]
    return send_to_service(dial, pairs * dial.ask.requests)


def all_connected(traffic: ServiceTraffic) -> ServiceTraffic | Result:
    """Every connection connected; else fail, explained by the endpoints or the policies."""
    dial, probes = traffic.aim, traffic.probes
    ask, target = dial.ask, dial.target
    ok = all(p.ok for p in probes) and worst_failure(probes) is None
    traffic.report.add(
        f"{ask.requests} connections from {ask.view.names(dial.src)} to "
        f"{dial.cluster_ip}:{target.number}/{target.protocol}",
        f"{describe_outcomes(probes)} ({traffic.conv.describe()})",
        ok,
    )
    if ok:
        return traffic
    failure = worst_failure(traffic.attempts) or "error"
    hint = failure_hint(
        failure,
        "service",
        ask.view.shell,
        svc=target.name,
        ns=target.namespace,
        node=pod_node(dial.src) or "<node>",
    )
    if not target.ready:
        hint = (
            f"Service {target.ref} has no ready endpoints, so nothing can answer on its "
            f"ClusterIP. Run service_health(lab, '{target.name}', namespace='{target.namespace}') "
            "to see whether the selector, the targetPort or readiness is wrong."
        )
    elif failure == "timeout" and ask.lab.capabilities.network_policy:
        denied = denied_by_policy(ask.view, dial.src, target)
        if denied:
            hint = f"A NetworkPolicy drops the traffic at the endpoints: {denied}"
    return traffic.report.result(hint, failure=failure)


def only_endpoints_answered(traffic: ServiceTraffic) -> ServiceTraffic | Result:
    """No pod outside the Service's endpoints answered (stale rules would send them traffic)."""
    strangers = traffic.shown(traffic.served - set(traffic.aim.target.ready))
    if not strangers:
        return traffic
    traffic.report.add(
        "only endpoints of the Service answered",
        f"no: {', '.join(strangers)} also answered",
        False,
    )
    return traffic.report.result(
        "Pods that are not endpoints answered: the node's rules are stale. "
        f"Compare {_rules(traffic, 'KUBE-SEP')} with {_endpoints(traffic)}."
    )


def spread(traffic: ServiceTraffic) -> ServiceTraffic | Result:
    """With ``expect_spread``, every ready endpoint answered at least once."""
    report, ready, served = traffic.report, traffic.aim.target.ready, traffic.served
    if not traffic.aim.ask.expect_spread:
        report.add("who answered", "endpoints of the Service only" if served else "(not reported)")
        return traffic
    missing = traffic.shown(set(ready) - served)
    seen = (
        f"{len(served)} of {len(ready)} ready endpoints answered: "
        f"{', '.join(traffic.shown(served)) or 'none'}"
    )
    if missing:
        seen += f" (never: {', '.join(missing)})"
    ok = not missing and bool(ready)
    report.add("load balancing over the endpoints", seen, ok)
    if ok:
        return traffic
    return report.result(
        "Some ready endpoints never answered. kube-proxy picks an endpoint per new "
        "connection with probabilities 1/n, 1/(n-1), ...: read them with "
        f"{_rules(traffic, 'KUBE-SVC')} on the client's node, and check that every endpoint "
        "listens on the targetPort."
    )


def _rules(traffic: ServiceTraffic, chain: str) -> str:
    """The command that shows kube-proxy's ``chain`` rules on the client's node."""
    dial = traffic.aim
    return dial.ask.view.shell(SERVICE_RULES, node=pod_node(dial.src) or "<node>", chain=chain)


def _endpoints(traffic: ServiceTraffic) -> str:
    """The command that shows the Service's EndpointSlices."""
    target = traffic.aim.target
    return traffic.aim.ask.view.shell(ENDPOINTS, ns=target.namespace, svc=target.name)


def policies_agree(traffic: ServiceTraffic) -> Result:
    """Pass, unless the connections got through only because this lab does not enforce
    policies that deny the source every endpoint (partial: cannot grade here)."""
    ask, dial = traffic.aim.ask, traffic.aim
    if ask.lab.capabilities.network_policy:
        return traffic.report.result()
    denied = denied_by_policy(ask.view, dial.src, dial.target)
    if not denied:
        return traffic.report.result()
    traffic.report.add("what the NetworkPolicies allow (model)", denied)
    return traffic.report.result(
        "The connections went through only because policies are not enforced: on a cluster "
        f"that enforces them they would be dropped ({denied}). " + not_enforced_note(ask.lab),
        verdict="partial",
    )
