"""Grade what kube-proxy programmed for a Service: read `iptables-save` on each node and compare
the KUBE-SVC/KUBE-SEP chains with the Service's ready endpoints and a fair 1/n split."""
from __future__ import annotations

from labkit.checks.result import Result, Step, make_result
from labkit.checks.targets import get_service, meta, service_endpoints
from labkit.lab import Lab
from labkit.model.kubeproxy import ServicePort, parse_iptables_save

_TOLERANCE = 1e-6


def _nodes(lab: Lab, node: str | None) -> list[str]:
    names = sorted(meta(n)["name"] for n in lab.get("nodes", namespace=None))
    return [node] if node else names


def _rule_lines(dump: str, chain: str | None) -> list[str]:
    """The `-A` lines of one service chain, as a learner would grep them."""
    if not chain:
        return []
    return [line for line in dump.splitlines() if line.startswith(f"-A {chain} ")]


def _judge_port(entry: ServicePort, ready_ips: set[str], node: str) -> tuple[Step, str | None]:
    """One step per service port: endpoints as programmed vs ready endpoints, and the odds."""
    label = f"{node}: {entry.display_name} ({entry.cluster_ip}:{entry.port}/{entry.protocol})"
    if entry.no_endpoints:
        return Step(f"rules on {label}", "REJECT: kube-proxy found no ready endpoints", False), "no-endpoints"
    shares = [f"{ep.ip}:{ep.port} chance {ep.probability:.3f}" for ep in entry.endpoints]
    programmed = {ep.ip for ep in entry.endpoints if ep.ip}
    n = len(entry.endpoints)
    fair = n > 0 and all(abs(ep.probability - 1 / n) < _TOLERANCE for ep in entry.endpoints)
    if programmed != ready_ips:
        missing, extra = sorted(ready_ips - programmed), sorted(programmed - ready_ips)
        return Step(f"rules on {label}", f"endpoints differ (missing {missing or 'none'}, stale {extra or 'none'})",
                    False, tuple(shares)), "stale"
    if not fair:
        return Step(f"rules on {label}", f"{n} endpoints but the split is not 1/{n} each", False, tuple(shares)), "unfair"
    return Step(f"rules on {label}", f"{n} endpoint(s), each chosen with chance 1/{n}", True, tuple(shares)), None


_HINTS = {
    "no-endpoints": (
        "The Service has no endpoints, so kube-proxy installs a REJECT rule for it and clients get "
        "'connection refused' at once. Compare the Service's selector with the pods' labels "
        "(check service_health shows which labels differ), and make sure the pods are Ready."),
    "stale": (
        "The node's rules do not list the Service's ready endpoints. kube-proxy rewrites its rules "
        "when EndpointSlices change: check that kube-proxy runs on that node and look at its logs."),
    "unfair": (
        "kube-proxy gives endpoint k of n the probability 1/(n-k+1) of the remaining traffic "
        "(1/3, then 1/2, then the rest for three endpoints), so each gets 1/n overall."),
    "missing": (
        "There are no kube-proxy rules for this Service on the node. Headless Services "
        "(clusterIP: None) and ExternalName Services get none by design; otherwise check that "
        "kube-proxy runs in iptables mode (`kubectl -n kube-system get ds kube-proxy`)."),
}


def kube_proxy_rules(lab: Lab, service: str, namespace: str = "default", node: str | None = None) -> Result:
    """Every node (or the one named) has KUBE-SVC/KUBE-SEP rules for the Service that list exactly
    its ready endpoints, each with an equal chance."""
    subject = f"{namespace}/{service}"
    svc = get_service(lab, service, namespace)
    if svc is None:
        return make_result("kube_proxy_rules", subject,
                           [Step("look up the Service", f"no Service {subject}", False)],
                           hint=f"Create the Service first, or check its name with `kubectl get svc -n {namespace}`.",
                           failure="missing", layer="Service")
    ready_ips = {ep.ip for ep in service_endpoints(lab, service, namespace) if ep.ready}
    steps = [Step("read the Service's ready endpoints", f"{len(ready_ips)} ready", None, tuple(sorted(ready_ips)))]
    problems: list[str] = []
    for node_name in _nodes(lab, node):
        dump = lab.node_exec(node_name, ["iptables-save"])
        if not dump.ok:
            steps.append(Step(f"iptables-save on {node_name}", f"failed: {dump.stderr.strip()[:200]}", False))
            problems.append("missing")
            continue
        entries = [e for e in parse_iptables_save(dump.stdout, service_names=[subject])
                   if e.namespace == namespace and e.name == service]
        if not entries:
            steps.append(Step(f"rules on {node_name}", f"no KUBE-SVC chain for {subject}", False))
            problems.append("missing")
            continue
        for entry in entries:
            step, problem = _judge_port(entry, ready_ips, node_name)
            if node_name == _nodes(lab, node)[0]:
                step = Step(step.action, step.observed, step.ok, step.evidence + tuple(_rule_lines(dump.stdout, entry.chain)))
            steps.append(step)
            if problem:
                problems.append(problem)
    if not problems:
        return make_result("kube_proxy_rules", subject, steps, layer=None)
    first = problems[0]
    return make_result("kube_proxy_rules", subject, steps, hint=_HINTS[first],
                       failure="refused" if first == "no-endpoints" else "error",
                       layer="Endpoints" if first == "no-endpoints" else "kube-proxy")
