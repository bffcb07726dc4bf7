"""Ingress routing: send a request with a Host header and a path to the ingress controller's
address and check that the backend that answered is one of the intended Service's endpoints.

The Lab seam's probe only asks ``GET /hostname``, so the routed requests are sent with ``curl``
from a node (``lab.node_exec``); a probe from outside the cluster first proves the controller's
address is reachable from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from labkit.checks.result import Result, failure_hint, poll, settle_wait
from labkit.checks.stages import Report
from labkit.checks.targets import split_ref
from labkit.checks.view import ClusterView
from labkit.commands import INGRESSES, LAB_STATUS
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.objects import meta, name_of, namespace_of
from labkit.values import OUTSIDE

VIAS = ("loadbalancer", "nodeport")
UNNAMED = "a backend whose answer names no pod of the lab"


@dataclass(frozen=True)
class HttpAnswer:
    """What one routed request got back."""

    status: int | None
    headers: Mapping[str, str]
    body: str
    error: str = ""


def parse_curl_i(text: str) -> HttpAnswer:
    """``curl -i`` output -> status, headers (lower-case names) and body."""
    normalized = text.replace("\r\n", "\n")
    head, _, body = normalized.partition("\n\n")
    lines = head.splitlines()
    while lines and lines[0].startswith("HTTP/") and " 100 " in f" {lines[0]} ":
        head, _, body = body.partition("\n\n")
        lines = head.splitlines()
    if not lines or not lines[0].startswith("HTTP/"):
        return HttpAnswer(None, {}, normalized.strip(), "no HTTP answer")
    parts = lines[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return HttpAnswer(status, headers, body.strip())


def answering_pod(answer: HttpAnswer, pod_names: set[str]) -> str | None:
    """The pod that served the request: a body that is a pod's name alone, as agnhost
    serve-hostname answers at every path (and netexec at /hostname)."""
    body = answer.body.strip()
    return body if body in pod_names else None


class Address(NamedTuple):
    """Where the routed requests go: the controller's IP and port."""

    ip: str
    port: int


def _rules(ing: Mapping[str, Any]) -> list[dict[str, Any]]:
    return (ing.get("spec") or {}).get("rules") or []


def controller_address(view: ClusterView, report: Report, host: str, via: str) -> Address | Result:
    """The controller's address for this host (from the Ingress status, or its Service's
    nodePort), or a failed Result saying which Ingress, class or port is missing."""
    ingresses = view.listing("ingresses")
    serving = [i for i in ingresses if any((r.get("host") or "") in (host, "") for r in _rules(i))]
    serving = [i for i in serving if any(r.get("host") == host for r in _rules(i))] or serving
    action = f"find an Ingress for host {host}"
    if not serving:
        hosts = sorted({r.get("host") or "*" for ing in ingresses for r in _rules(ing)})
        report.add(action, f"none (hosts: {', '.join(hosts) or 'no Ingress'})", False)
        return report.result(
            f"No Ingress has a rule for host {host!r}. Add `rules: - host: {host}` with its "
            f"paths ({view.shell(INGRESSES)} lists the hosts)."
        )
    ing = serving[0]
    ref = f"{namespace_of(ing)}/{name_of(ing)}"
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ip = next((str(e["ip"]) for e in lb if e.get("ip")), None)
    cls = (ing.get("spec") or {}).get("ingressClassName") or (
        meta(ing).get("annotations") or {}
    ).get("kubernetes.io/ingress.class")
    report.add(action, f"{ref} (class {cls or 'none'}), address {ip or 'none'}", bool(ip))
    if not ip:
        classes = sorted(name_of(c) for c in view.listing("ingressclasses"))
        return report.result(
            f"Ingress {ref} has no address, so no controller serves it: its ingressClassName "
            f"({cls or 'unset'}) must name a running controller's class "
            f"({', '.join(classes) or 'none installed'})."
        )
    if via == "loadbalancer":
        return Address(ip, 80)
    nodes = view.node_addresses()
    for svc in view.services:
        status = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if nodes and any(e.get("ip") == ip for e in status):
            for port in (svc.get("spec") or {}).get("ports") or []:
                if int(port.get("port") or 0) == 80 and port.get("nodePort"):
                    return Address(nodes[0].ip, int(port["nodePort"]))
    report.add("the controller's NodePort for port 80", "not found", False)
    return report.result(
        "The ingress controller's Service has no nodePort for port 80; reach it via its load "
        "balancer."
    )


def _curl(lab: Lab, node: str, address: str, port: int, host: str, path: str) -> HttpAnswer:
    url = f"http://{address}:{port}{path}"
    command = ["curl", "-sS", "-i", "--max-time", "3", "-H", f"Host: {host}", url]
    result = lab.node_exec(node, command, timeout=6.0)
    if not result.ok and not result.stdout.strip():
        return HttpAnswer(
            None,
            {},
            "",
            (result.stderr.strip().splitlines() or [f"curl exit {result.returncode}"])[-1],
        )
    return parse_curl_i(result.stdout)


@dataclass(frozen=True)
class Route:
    """One path of the check: the Service it should reach and that Service's ready pods."""

    path: str
    namespace: str
    service: str
    endpoint_pods: frozenset[str]

    @property
    def ref(self) -> str:
        """``ns/service``."""
        return f"{self.namespace}/{self.service}"

    def reached(self, answer: HttpAnswer, all_pods: set[str]) -> bool:
        """A 2xx answer whose body names one of the Service's endpoint pods: a status alone
        cannot tell which Service's pod answered."""
        if answer.status is None or not 200 <= answer.status < 300:
            return False
        return answering_pod(answer, all_pods) in self.endpoint_pods


class RouteProblem(NamedTuple):
    """Why one route failed: its failure class (None: it reached the wrong backend) and hint."""

    failure: str | None
    hint: str


def route_problem(route: Route, host: str, answer: HttpAnswer, who: str) -> RouteProblem:
    """What a route's wrong answer means: no HTTP at all, no rule (404), a backend without ready
    endpoints (502-504), the application's refusal, or a rule naming another Service."""
    path, status = route.path, answer.status
    if status is None:
        return RouteProblem(
            "error", f"{path}: the controller did not answer over HTTP: " + (answer.error or "")
        )
    if status == 404:
        return RouteProblem(
            "http",
            f"{path}: no Ingress rule matches host {host} and this path (the controller's "
            "default backend answered 404). Check spec.rules[].host and the path; pathType "
            "Prefix matches whole path elements (/api matches /api/v1, not /apiv1).",
        )
    if status in (502, 503, 504):
        return RouteProblem(
            "http",
            f"{path}: the rule's backend Service did not answer ({status}): it has no "
            "ready endpoints or the Ingress names a Service port it does not expose. Run "
            f"service_health(lab, '{route.service}', namespace='{route.namespace}').",
        )
    if status >= 400:
        return RouteProblem(
            "http",
            f"{path}: the backend answered {status}; the route works but the "
            "application refused the request.",
        )
    if who == UNNAMED:
        return RouteProblem(
            None,
            f"{path}: HTTP {status}, but the body names no pod, so nothing shows that "
            f"{route.ref} answered: its pods must answer with their own name at every path "
            "(as agnhost serve-hostname does).",
        )
    return RouteProblem(
        None,
        f"{path} reached {who}, not {route.ref}: the rule for this path names another "
        "backend service (or a longer path of another rule wins). Fix "
        "backend.service.name for this path.",
    )


def ingress_routes(
    lab: Lab,
    host: str,
    routes: Mapping[str, str],
    via: str = "loadbalancer",
    namespace: str = "default",
    *,
    wait: float = 5.0,
) -> Result:
    """For each ``path -> "ns/service"``: request ``http://<controller>/<path>`` with
    ``Host: host``; it must answer 2xx from an endpoint of that Service."""
    if via not in VIAS:
        raise LabError(
            f"via must be one of {VIAS}, not {via!r}.", 'Use via="loadbalancer" or via="nodeport".'
        )
    if not routes:
        raise LabError(
            "ingress_routes needs at least one route.", 'Pass routes={"/api": "default/api"}.'
        )
    for path in routes:
        if not str(path).startswith("/"):
            raise LabError(
                f"Route path {path!r} does not start with '/'.", "Write paths like /api."
            )
    view = ClusterView(lab)
    wanted = {}
    for path, ref in sorted(routes.items()):
        ns, svc = split_ref(ref, namespace)
        ready = frozenset(e.pod for e in view.endpoints(svc, ns) if e.ready and e.pod)
        wanted[path] = Route(path, ns, svc, ready)
    subject = f"http://{host} routes " + ", ".join(f"{r.path} -> {r.ref}" for r in wanted.values())
    report = Report("ingress_routes", subject)
    address = controller_address(view, report, host, via)
    if isinstance(address, Result) and settle_wait(lab, wait) > 0:
        # On Kind, cloud-provider-kind writes the address once its Gateway's Envoy runs.
        def look() -> tuple[ClusterView, Report, Address | Result]:
            again, fresh = ClusterView(lab), Report("ingress_routes", subject)
            return again, fresh, controller_address(again, fresh, host, via)

        found = poll(
            look, lambda seen: not isinstance(seen[2], Result), wait=settle_wait(lab, wait)
        )
        view, report, address = found.observation
    if isinstance(address, Result):
        return address
    outside = lab.probe(OUTSIDE, address.ip, address.port, "TCP", 1.0)
    report.add(
        f"connect from outside the cluster to {address.ip}:{address.port}",
        outside.outcome,
        outside.ok,
    )
    if not outside.ok:
        known = outside.outcome in ("timeout", "refused", "dns", "unreachable")
        return report.result(
            failure_hint(outside.outcome if known else "error", "external", view.shell),
            failure=outside.outcome,
        )
    nodes = view.node_addresses()
    if not nodes:
        raise LabError("The lab reports no nodes.", f"Check the lab with {view.shell(LAB_STATUS)}.")
    node = nodes[0].name
    all_pods = {name_of(p) for p in view.pods}
    service_of = {pod: r.ref for r in wanted.values() for pod in r.endpoint_pods}

    def observe() -> dict[str, HttpAnswer]:
        return {p: _curl(lab, node, address.ip, address.port, host, p) for p in wanted}

    def all_reached(answers: dict[str, HttpAnswer]) -> bool:
        return all(wanted[p].reached(a, all_pods) for p, a in answers.items())

    conv = poll(observe, all_reached, wait=settle_wait(lab, wait))
    report.elapsed_s = conv.elapsed_s
    problems: list[RouteProblem] = []
    for route in wanted.values():
        answer = conv.observation[route.path]
        pod = answering_pod(answer, all_pods)
        if pod:
            who = (
                f"an endpoint of {service_of[pod]}"
                if pod in service_of
                else view.names.by_name(pod, route.namespace)
            )
        else:
            who = UNNAMED
        ok = route.reached(answer, all_pods)
        if answer.status is None:
            seen = f"no HTTP answer ({answer.error or 'curl failed'})"
        elif pod is None and not 200 <= answer.status < 300:
            seen = f"HTTP {answer.status}"  # the controller's own answer, or an error page
        else:
            seen = f"HTTP {answer.status} from {who}"
        report.add(
            f"GET {route.path} with Host: {host} (from {node})",
            f"{seen}{'' if ok else f'; wanted an endpoint of {route.ref}'} ({conv.describe()})",
            ok,
        )
        if not ok:
            problems.append(route_problem(route, host, answer, who))
    if not problems:
        return report.result()
    return report.result(
        " ".join(p.hint for p in problems),
        failure=next((p.failure for p in problems if p.failure), None),
    )
