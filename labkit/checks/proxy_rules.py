"""kube-proxy's rules: read the iptables rules on every node (or one) and check that each port of
a Service leads to exactly its ready endpoints, each with the same chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks.result import Result, Step, poll, settle_wait
from labkit.checks.services import Finding, note_convergence
from labkit.checks.stages import Report
from labkit.checks.targets import split_ref
from labkit.checks.view import ClusterView
from labkit.commands import (
    ENDPOINTS,
    IPVS_RULES,
    LAB_STATUS,
    NFT_RULES,
    SERVICE_RULES,
    SERVICES,
    Shell,
)
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.kubeproxy.assemble import parse_iptables_save
from labkit.model.kubeproxy.serviceports import ServicePort
from labkit.model.objects import ServiceEndpoint, is_host_network, pod_ip


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
    programmed: ServicePort | None,
    ready: Sequence[ServiceEndpoint],
    pod_of_ip: Mapping[str, str],
    shell: Shell,
) -> Finding:
    """One node's rules for one Service port against its ready endpoints (pure; the hints'
    commands spelt for ``shell``)."""
    label = f"{node}: rules for {svc_ref}:{svc_port.get('name') or svc_port.get('port')}"
    ns, _, name = svc_ref.partition("/")
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
            f"kube-proxy has not programmed {svc_ref} on {node}: it is not running there or its "
            "rules are stale. Look at the kube-proxy pod on that node.",
        )
    if programmed.no_endpoints or not programmed.endpoints:
        if wanted:
            return Finding(
                Step(label, f"REJECT although {len(wanted)} endpoints are ready", False),
                f"The rules on {node} still reject {svc_ref} although it has ready endpoints: "
                "kube-proxy's view is stale. Look at the kube-proxy pod on that node.",
            )
        return Finding(
            Step(label, "REJECT: the Service has no endpoints", False),
            f"Service {svc_ref} has no endpoints, so kube-proxy writes a REJECT rule for it "
            '("has no endpoints" in iptables-save) and clients are refused at once. Make its '
            "selector match Ready pods (run service_health).",
        )
    seen = [(e.ip, e.port) for e in programmed.endpoints]
    stats = chained_statistics([e.probability for e in programmed.endpoints])
    evidence = []
    for i, (e, stat) in enumerate(zip(programmed.endpoints, stats, strict=True), start=1):
        who = f"{i}. {pod_of_ip.get(e.ip or '', e.ip)} ({e.ip}:{e.port})"
        share = f"statistic {stat:.5f}" if i < len(seen) else "the rest"
        evidence.append(f"{who}: {share}, chance {e.probability:.3f}")
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
        rules = shell(SERVICE_RULES, node=node, chain="KUBE-SEP")
        hint = (
            f"The rules on {node} do not list exactly the ready endpoints of {svc_ref}: "
            f"kube-proxy's view is stale. Compare {rules} with {shell(ENDPOINTS, ns=ns, svc=name)}."
        )
    elif not equal:
        hint = (
            "kube-proxy gives every endpoint the same chance (statistic 1/n, 1/(n-1), ..., then "
            "the rest); these rules do not, so something else wrote them."
        )
    return Finding(Step(label, observed, same and equal, tuple(evidence)), hint)


def kube_proxy_rules(
    lab: Lab,
    service: str,
    namespace: str = "default",
    node: str | None = None,
    *,
    wait: float = 3.0,
) -> Result:
    """Read kube-proxy's iptables rules on every node (or one) and check that each Service port
    reaches exactly its ready endpoints, each with the same chance (1/n, 1/(n-1), ..., 1).

    Rules follow endpoint changes within a moment, so every attempt of the poll reads the rules
    and the endpoints afresh."""
    ns, name = split_ref(service, namespace)
    view = ClusterView(lab)
    report = Report("kube_proxy_rules", f"kube-proxy rules of service {ns}/{name}")
    svc = view.service(name, ns)
    if svc is None:
        report.add(f"find service {ns}/{name}", "not found", False)
        return report.result(
            f"There is no Service {name!r} in namespace {ns!r}; {view.shell(SERVICES)} lists them."
        )
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") in (None, "None"):
        raise LabError(
            f"Service {ns}/{name} has no cluster IP (headless or ExternalName), so kube-proxy "
            "writes no rules for it.",
            "Check a headless Service with dns_resolves instead.",
        )
    report.add(
        f"find service {ns}/{name}",
        f"clusterIP {spec.get('clusterIP')}, {len(spec.get('ports') or [])} port(s)",
        True,
    )
    mode = lab.capabilities.kube_proxy_mode
    nodes = [n.name for n in view.node_addresses()] if node is None else [node]
    if mode == "none":
        report.add("kube-proxy mode", "none: replaced by the CNI")
        return report.result(
            f"No kube-proxy runs here: {lab.cni}'s kube-proxy replacement serves Services, so no "
            "node has KUBE-* rules for this check to read. Cannot grade here; a probe to the "
            "Service (service_reach) still shows whether it answers.",
            verdict="partial",
        )
    if mode != "iptables":
        report.add("kube-proxy mode", mode)
        rules = {"ipvs": IPVS_RULES, "nftables": NFT_RULES}.get(mode)
        shown = f" ({view.shell(rules, node=nodes[0])} shows them)" if rules and nodes else ""
        return report.result(
            f"kube-proxy runs in {mode} mode here; this check reads iptables-mode rules"
            f"{shown}. Cannot grade here.",
            verdict="partial",
        )
    pod_of_ip = {
        str(pod_ip(p)): view.names(p) for p in view.pods if pod_ip(p) and not is_host_network(p)
    }

    def gather() -> list[Finding]:
        ready = [e for e in ClusterView(lab).endpoints(name, ns) if e.ready]
        return [
            judge_rules(
                node_name, f"{ns}/{name}", svc_port, programmed, ready, pod_of_ip, view.shell
            )
            for node_name in nodes
            for svc_port, programmed in programmed_ports(lab, node_name, ns, name, spec)
        ]

    conv = poll(gather, lambda fs: all(f.step.ok for f in fs), wait=settle_wait(lab, wait))
    findings: list[Finding] = conv.observation
    report.steps += [f.step for f in findings]
    report.elapsed_s = conv.elapsed_s
    note_convergence(report, conv.describe())
    first_bad = next((f for f in findings if f.step.ok is False), None)
    if first_bad is None:
        return report.result()
    return report.result(
        first_bad.hint, failure="refused" if "no endpoints" in first_bad.hint else None
    )


def programmed_ports(
    lab: Lab, node: str, namespace: str, name: str, spec: Mapping[str, Any]
) -> list[tuple[dict[str, Any], ServicePort | None]]:
    """Each port of the Service's spec with what kube-proxy programmed for it on ``node`` (None
    when its rules are missing), read from ``iptables-save`` there."""
    dump = lab.node_exec(node, ["iptables-save"])
    if not dump.ok:
        raise LabError(
            f"`iptables-save` failed on node {node}: {dump.stderr.strip()}.",
            f"Check that the lab is up ({Shell.of(lab)(LAB_STATUS)}).",
        )
    ports = [
        sp
        for sp in parse_iptables_save(dump.stdout)
        if sp.namespace == namespace and sp.name == name
    ]
    found = []
    for svc_port in spec.get("ports") or []:
        protocol = str(svc_port.get("protocol") or "TCP").upper()
        programmed = next(
            (
                sp
                for sp in ports
                if sp.port == int(svc_port["port"]) and (sp.protocol or "TCP").upper() == protocol
            ),
            None,
        )
        found.append((dict(svc_port), programmed))
    return found
