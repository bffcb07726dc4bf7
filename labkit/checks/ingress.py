"""Ingress routing: send a request with a Host header and a path to the ingress controller's
address and check that the backend that answered is one of the intended Service's endpoints.

The Lab seam's probe only asks ``GET /hostname``, so the routed requests are sent with ``curl``
from a node (``lab.node_exec``); a probe from outside the cluster first proves the controller's
address is reachable from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from labkit.checks.result import Result, Step, failure_hint, make_result, poll
from labkit.checks.targets import (
    PodNames,
    list_pods,
    node_internal_ips,
    service_endpoints,
    split_ref,
)
from labkit.errors import LabError
from labkit.lab import OUTSIDE, Lab
from labkit.model.objects import (
    meta,
)

VIAS = ("loadbalancer", "nodeport")
BACKEND_HEADER = "x-labkit-ingress-backend"


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
    """The pod that served the request, read from the body (netexec answers start with its name)."""
    first = answer.body.strip().splitlines()[0] if answer.body.strip() else ""
    token = first.split(":", 1)[0].strip() if ":" in first else first.strip()
    return token if token in pod_names else None


def _address(lab: Lab, host: str, via: str, steps: list[Step]) -> tuple[str | None, int, str]:
    """The controller's address for this host (from the Ingress status / its Service) and a hint."""
    ingresses = lab.get("ingresses", namespace=None)
    serving = sorted(
        (
            ing
            for ing in ingresses
            if any(
                (r.get("host") or "") in (host, "")
                for r in (ing.get("spec") or {}).get("rules") or []
            )
        ),
        key=lambda i: (meta(i).get("namespace"), meta(i).get("name")),
    )
    named = [
        ing
        for ing in serving
        if any(r.get("host") == host for r in (ing.get("spec") or {}).get("rules") or [])
    ]
    serving = named or serving
    if not serving:
        hosts = sorted(
            {
                r.get("host") or "*"
                for ing in ingresses
                for r in (ing.get("spec") or {}).get("rules") or []
            }
        )
        steps.append(
            Step(
                f"find an Ingress for host {host}",
                f"none (hosts: {', '.join(hosts) or 'no Ingress'})",
                False,
            )
        )
        return (
            None,
            0,
            (
                f"No Ingress has a rule for host {host!r}. Add `rules: - host: {host}` with its paths "
                "(`kubectl get ingress -A` lists the hosts)."
            ),
        )
    ing = serving[0]
    ref = f"{meta(ing).get('namespace')}/{meta(ing).get('name')}"
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ip = next((e.get("ip") for e in lb if e.get("ip")), None)
    cls = (ing.get("spec") or {}).get("ingressClassName") or (
        meta(ing).get("annotations") or {}
    ).get("kubernetes.io/ingress.class")
    steps.append(
        Step(
            f"find an Ingress for host {host}",
            f"{ref} (class {cls or 'none'}), address {ip or 'none'}",
            bool(ip),
        )
    )
    if not ip:
        classes = sorted(meta(c).get("name") for c in lab.get("ingressclasses", namespace=None))
        return (
            None,
            0,
            (
                f"Ingress {ref} has no address, so no controller serves it: its ingressClassName "
                f"({cls or 'unset'}) must name a running controller's class "
                f"({', '.join(classes) or 'none installed'})."
            ),
        )
    if via == "loadbalancer":
        return ip, 80, ""
    for svc in lab.get("services", namespace=None):
        status = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if any(e.get("ip") == ip for e in status):
            for port in (svc.get("spec") or {}).get("ports") or []:
                if int(port.get("port") or 0) == 80 and port.get("nodePort"):
                    nodes = node_internal_ips(lab)
                    if nodes:
                        return nodes[0][1], int(port["nodePort"]), ""
    steps.append(Step("the controller's NodePort for port 80", "not found", False))
    return (
        None,
        0,
        "The ingress controller's Service has no nodePort for port 80; reach it via its load balancer.",
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


def ingress_routes(
    lab: Lab,
    host: str,
    routes: Mapping[str, str],
    via: str = "loadbalancer",
    namespace: str = "default",
    *,
    wait: float = 5.0,
) -> Result:
    """For each ``path -> "ns/service"``: request ``http://<controller>/<path>`` with ``Host: host``;
    it must answer 2xx from an endpoint of that Service."""
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
    subject = f"http://{host} routes " + ", ".join(
        f"{p} -> {split_ref(s, namespace)[0]}/{split_ref(s, namespace)[1]}"
        for p, s in sorted(routes.items())
    )
    steps: list[Step] = []
    address, port, problem = _address(lab, host, via, steps)
    if problem:
        return make_result("ingress_routes", subject, steps, hint=problem)
    assert address is not None
    outside = lab.probe(OUTSIDE, address, port, "TCP", 1.0)
    steps.append(
        Step(f"connect from outside the cluster to {address}:{port}", outside.outcome, outside.ok)
    )
    if not outside.ok:
        return make_result(
            "ingress_routes",
            subject,
            steps,
            failure=outside.outcome,
            hint=failure_hint(
                outside.outcome
                if outside.outcome in ("timeout", "refused", "dns", "unreachable")
                else "error",
                "external",
            ),
        )
    nodes = node_internal_ips(lab)
    if not nodes:
        raise LabError("The lab reports no nodes.", "Check the lab with `labkit status`.")
    node = nodes[0][0]
    names = PodNames(list_pods(lab, None))
    wanted = {path: split_ref(svc, namespace) for path, svc in routes.items()}
    endpoint_pods = {
        path: {e.pod for e in service_endpoints(lab, svc, ns) if e.ready and e.pod}
        for path, (ns, svc) in wanted.items()
    }
    all_pods = {str(meta(p).get("name")) for p in list_pods(lab, None)}
    service_of = {
        pod: f"{wanted[path][0]}/{wanted[path][1]}"
        for path, pods in endpoint_pods.items()
        for pod in pods
    }

    def observe() -> dict[str, HttpAnswer]:
        return {path: _curl(lab, node, address, port, host, path) for path in sorted(routes)}

    def route_ok(path: str, answer: HttpAnswer) -> bool:
        if answer.status is None or not 200 <= answer.status < 300:
            return False
        pod = answering_pod(answer, all_pods)
        if pod is not None:
            return pod in endpoint_pods[path]
        backend = answer.headers.get(BACKEND_HEADER)
        return backend is None or backend == "/".join(wanted[path])

    conv = poll(observe, lambda obs: all(route_ok(p, a) for p, a in obs.items()), wait=wait)
    answers: dict[str, HttpAnswer] = conv.observation
    hints: list[tuple[str | None, str]] = []
    for path in sorted(routes):
        ns, svc = wanted[path]
        answer = answers[path]
        pod = answering_pod(answer, all_pods)
        backend = answer.headers.get(BACKEND_HEADER)
        if pod:
            who = (
                f"an endpoint of {service_of[pod]}" if pod in service_of else names.by_name(pod, ns)
            )
        else:
            who = f"service {backend}" if backend else "an unnamed backend"
        ok = route_ok(path, answer)
        if answer.status is None:
            seen = f"no HTTP answer ({answer.error or 'curl failed'})"
        else:
            seen = f"HTTP {answer.status} from {who}"
        steps.append(
            Step(
                f"GET {path} with Host: {host} (from {node})",
                f"{seen}{'' if ok else f'; wanted an endpoint of {ns}/{svc}'} ({conv.describe()})",
                ok,
            )
        )
        if ok:
            continue
        if answer.status is None:
            hints.append(
                (
                    "error",
                    f"{path}: the controller did not answer over HTTP: " + (answer.error or ""),
                )
            )
        elif answer.status == 404:
            hints.append(
                (
                    "http",
                    f"{path}: no Ingress rule matches host {host} and this path (the controller's "
                    "default backend answered 404). Check spec.rules[].host and the path; pathType "
                    "Prefix matches whole path elements (/api matches /api/v1, not /apiv1).",
                )
            )
        elif answer.status in (502, 503, 504):
            hints.append(
                (
                    "http",
                    f"{path}: the rule's backend Service did not answer ({answer.status}): it has no "
                    f"ready endpoints or the Ingress names a Service port it does not expose. Run "
                    f"service_health(lab, '{svc}', namespace='{ns}').",
                )
            )
        elif answer.status >= 400:
            hints.append(
                (
                    "http",
                    f"{path}: the backend answered {answer.status}; the route works but the "
                    "application refused the request.",
                )
            )
        else:
            hints.append(
                (
                    None,
                    f"{path} reached {who}, not {ns}/{svc}: the rule for this path names another "
                    "backend service (or a longer path of another rule wins). Fix "
                    "backend.service.name for this path.",
                )
            )
    if not hints:
        return make_result("ingress_routes", subject, steps, elapsed_s=conv.elapsed_s)
    return make_result(
        "ingress_routes",
        subject,
        steps,
        hint=" ".join(h for _, h in hints),
        failure=next((f for f, _ in hints if f), None),
        elapsed_s=conv.elapsed_s,
    )
