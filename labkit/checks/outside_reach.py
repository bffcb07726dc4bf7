"""``external_to_service``: reach a Service from outside the cluster, at every node's InternalIP on
its nodePort or at its load-balancer address; every request must connect and be answered by one
of its endpoints.

The check runs as ordered stages: find the Service, find where outside clients enter (the node
ports or the load balancer), send the connections, then judge them, who answered and the spread.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.checks.reach import (
    ServiceTarget,
    Traffic,
    check_requests,
    describe_outcomes,
    find_service_port,
    ready_endpoints_step,
    send_to_service,
    worst_failure,
)
from labkit.checks.result import Result, failure_hint, poll, settle_wait
from labkit.checks.stages import Report, Stages
from labkit.checks.targets import split_ref
from labkit.checks.view import ClusterView
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.objects import LoadBalancerIngress, load_balancer_ingress
from labkit.values import OUTSIDE

VIAS = ("nodeport", "loadbalancer")
IP_MODES = {
    "VIP": "as a VIP (ipMode VIP): the nodes take packets for the address and kube-proxy "
    "forwards them like a nodePort's",
    "Proxy": "through a proxy (ipMode Proxy; on Kind, cloud-provider-kind's Envoy container): "
    "it opens its own connections to the nodes' nodePorts, so pods see the proxy's address, "
    "never the client's",
}
"""What each ``status.loadBalancer.ingress[].ipMode`` means for the traffic (KEP-1860)."""


@dataclass(frozen=True)
class OutsideReachAsk:
    """What external_to_service was asked, with the lab, its view and the report being built."""

    lab: Lab
    view: ClusterView
    report: Report
    namespace: str
    service: str
    via: str
    requests: int
    port: int | str | None
    expect_spread: bool
    wait: float
    timeout: float


@dataclass(frozen=True)
class Entry:
    """One address outside clients dial: a node's InternalIP (labelled with the node's name) on
    the nodePort, or the load balancer's address on the Service port."""

    label: str
    ip: str
    port: int


@dataclass(frozen=True)
class Found:
    """The Service found."""

    ask: OutsideReachAsk
    target: ServiceTarget


@dataclass(frozen=True)
class Entries:
    """The Service and the addresses to dial."""

    ask: OutsideReachAsk
    target: ServiceTarget
    entries: list[Entry]


OutsideTraffic = Traffic[Entries]
"""The connections sent from outside to the entries."""


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
    """Reach a Service from outside the cluster: at every node's InternalIP on its nodePort, or at
    its load-balancer address; every request must connect and be answered by one of its
    endpoints."""
    if via not in VIAS:
        raise LabError(
            f"via must be one of {VIAS}, not {via!r}.", 'Use via="nodeport" or via="loadbalancer".'
        )
    requests = check_requests(requests, 10)
    ns, svc_name = split_ref(service, namespace)
    view = ClusterView(lab)
    report = Report("external_to_service", f"outside -> service {ns}/{svc_name} via {via}")
    ask = OutsideReachAsk(
        lab, view, report, ns, svc_name, via, requests, port, expect_spread, wait, timeout
    )
    return (
        Stages(ask)
        .then(find_service)
        .then(node_ports if via == "nodeport" else load_balancer)
        .then(send)
        .then(all_connected)
        .then(only_endpoints_answered)
        .finish(spread)
    )


def find_service(ask: OutsideReachAsk) -> Found | Result:
    """The Service and the port meant must exist."""
    target = find_service_port(ask.view, ask.report, ask.service, ask.namespace, ask.port)
    return target if isinstance(target, Result) else Found(ask, target)


def node_ports(found: Found) -> Entries | Result:
    """The Service opens its nodePort on every node; with externalTrafficPolicy Local, only nodes
    running a ready endpoint answer, so only those are dialled (there must be some)."""
    ask, target, report = found.ask, found.target, found.ask.report
    node_port = int(target.port.get("nodePort") or 0)
    exposed = target.type in ("NodePort", "LoadBalancer") and node_port > 0
    report.add(
        "the Service opens a port on every node",
        f"nodePort {node_port}" if exposed else f"no: type {target.type} has no nodePort",
        exposed,
    )
    if not exposed:
        return report.result(
            f"A {target.type} Service is reachable only inside the cluster. Set "
            "`type: NodePort` (optionally `nodePort: 30000-32767`) to open the same port "
            "on every node's IP."
        )
    entries = [Entry(n.name, n.ip, node_port) for n in ask.view.node_addresses()]
    if target.spec.get("externalTrafficPolicy") == "Local":
        report.add(
            "externalTrafficPolicy",
            "Local: only nodes with a ready endpoint answer, and the client IP is kept",
        )
        hosts = {e.node for e in target.endpoints if e.ready and e.node}
        entries = [e for e in entries if e.label in hosts]
    ready_endpoints_step(report, ask.view, target)
    if not entries:
        report.add("nodes that should answer", "none: no node hosts a ready endpoint", False)
        return report.result(
            "With externalTrafficPolicy: Local only nodes that run a ready endpoint answer, "
            "and none does. Make the pods Ready or use externalTrafficPolicy: Cluster."
        )
    return Entries(ask, target, entries)


def load_balancer(found: Found) -> Entries | Result:
    """This lab runs a load-balancer implementation, the Service is a LoadBalancer, and it got
    an external address (on Kind, polled while cloud-provider-kind starts its proxy); how the
    address carries traffic follows its ipMode."""
    ask, target, report = found.ask, found.target, found.ask.report
    if not ask.lab.capabilities.load_balancer:
        report.add("a load-balancer implementation runs", "no")
        notes = [n for n in ask.lab.capabilities.notes if "LoadBalancer" in n]
        return report.result(
            "This lab has no load-balancer implementation, so LoadBalancer Services stay "
            "<pending>: cannot grade here." + "".join(f" {n}" for n in notes),
            verdict="partial",
        )
    if target.type != "LoadBalancer":
        report.add("the Service is a LoadBalancer", f"no: type {target.type}", False)
        return report.result(
            f"A {target.type} Service gets no external address. Set `type: LoadBalancer`."
        )

    lb, waited = load_balancer_ingress(target.service), ""
    if lb is None and settle_wait(ask.lab, ask.wait) > 0:
        conv = poll(
            lambda: reread_ingress(ask.lab, target),
            lambda found: found is not None,
            wait=settle_wait(ask.lab, ask.wait),
        )
        lb, waited = conv.observation, f" ({conv.describe()})"
    report.add(
        "the Service has an external address",
        f"{lb.address}" + (f" (ipMode {lb.ip_mode})" if lb.ip_mode else "") + waited
        if lb
        else f"no: EXTERNAL-IP <pending>{waited}",
        lb is not None,
    )
    if lb is None:
        return report.result(
            "The LoadBalancer has no address yet (<pending>): the load-balancer "
            "implementation has not assigned one. Check its pods and its address pool."
        )
    if lb.ip_mode in IP_MODES:
        report.add("how traffic reaches the pods", IP_MODES[lb.ip_mode])
    ready_endpoints_step(report, ask.view, target)
    return Entries(ask, target, [Entry("load balancer", lb.address, target.number)])


def reread_ingress(lab: Lab, target: ServiceTarget) -> LoadBalancerIngress | None:
    """The Service's load-balancer address as the cluster shows it now."""
    found = lab.get("service", target.name, namespace=target.namespace)
    return load_balancer_ingress(found[0]) if found else None


def send(entries: Entries) -> OutsideTraffic:
    """Spread the requests over the entries and send them until all connect (and, for the
    spread, every ready endpoint has answered) or the wait runs out."""
    ask, target = entries.ask, entries.target
    per_entry = max(1, -(-ask.requests // len(entries.entries)))
    pairs = [
        (OUTSIDE, e.ip, e.port, target.protocol) for e in entries.entries for _ in range(per_entry)
    ]
    return send_to_service(entries, pairs)


def all_connected(traffic: OutsideTraffic) -> OutsideTraffic | Result:
    """Every connection to every entry connected; else fail with the hint for how it failed."""
    ask, target = traffic.aim.ask, traffic.aim.target
    failed_any = False
    for entry in traffic.aim.entries:
        got = [p for p in traffic.probes if p.dst == entry.ip]
        ok = bool(got) and all(p.ok for p in got) and worst_failure(got) is None
        failed_any |= not ok
        where = f"{entry.ip}:{entry.port}" + (f" ({entry.label})" if ask.via == "nodeport" else "")
        traffic.report.add(
            f"{len(got)} connections from outside to {where}",
            f"{describe_outcomes(got)} ({traffic.conv.describe()})",
            ok,
        )
    if not failed_any:
        return traffic
    failure = worst_failure(traffic.attempts) or "error"
    hint = failure_hint(failure, "external", ask.view.shell, svc=target.name, ns=target.namespace)
    if not target.ready:
        hint = (
            f"Service {target.ref} has no ready endpoints, so the node forwards to nothing. "
            f"Run service_health(lab, '{target.name}', namespace='{target.namespace}')."
        )
    return traffic.report.result(hint, failure=failure)


def only_endpoints_answered(traffic: OutsideTraffic) -> OutsideTraffic | Result:
    """No pod outside the Service's endpoints answered."""
    strangers = traffic.shown(traffic.served - set(traffic.aim.target.ready))
    if not strangers:
        return traffic
    traffic.report.add(
        "only endpoints of the Service answered", f"no: {', '.join(strangers)}", False
    )
    return traffic.report.result(
        "Pods that are not endpoints of this Service answered: another Service "
        "owns this port, or the node's rules are stale."
    )


def spread(traffic: OutsideTraffic) -> Result:
    """With ``expect_spread``, every ready endpoint answered at least once."""
    report, ready, served = traffic.report, traffic.aim.target.ready, traffic.served
    if not traffic.aim.ask.expect_spread:
        report.add("who answered", "endpoints of the Service only" if served else "(not reported)")
        return report.result()
    missing = traffic.shown(set(ready) - served)
    report.add(
        "traffic spread over the endpoints",
        f"{len(served)} of {len(ready)} answered"
        + (f" (never: {', '.join(missing)})" if missing else ""),
        not missing,
    )
    if not missing:
        return report.result()
    return report.result(
        "Some ready endpoints never answered; check that each listens on the "
        "targetPort and is Ready."
    )
