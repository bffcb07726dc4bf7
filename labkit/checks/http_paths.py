"""``http_paths``: send HTTP requests (a method and a path each) from a pod to a pod or a Service
and judge each answer's status against the one expected, e.g. ``{"GET /hostname": 200, "GET
/clientip": 403}`` under a CiliumNetworkPolicy with ``toPorts.rules.http``.

How a request ends says who decided it: a 403 "Access denied" is Cilium's proxy (an HTTP rule
denied it on a connection L3/L4 policy allowed); a timeout is an L3/L4 drop (no HTTP rule ever
saw it); any other status is the application's own answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labkit.checks.l7 import cilium_policies, http_rules_on, l7_denial_hint
from labkit.checks.pods import missing_pod_hint, one_pod, shown
from labkit.checks.policy import model_verdict
from labkit.checks.reach import check_port, endpoint_port, find_service_port
from labkit.checks.result import Convergence, Result, classify, failure_hint, poll, settle_wait
from labkit.checks.stages import Report, Stages
from labkit.checks.targets import Target
from labkit.checks.view import ClusterView
from labkit.errors import LabError
from labkit.inputs import check_http_request
from labkit.lab import Lab
from labkit.model.ciliuml7 import DENIED_BODY, DENIED_STATUS
from labkit.model.objects import name_of, namespace_of, pod_ip, ref_of
from labkit.values import HttpReply

EXAMPLE = '{"GET /hostname": 200, "GET /clientip": 403}'


def parse_expect(expect: Any) -> dict[tuple[str, str], int]:
    """``{"GET /path": status}`` -> ``{(method, path): status}``; a LabError names a bad entry."""
    if not isinstance(expect, Mapping) or not expect:
        raise LabError(
            f"expect must map requests to statuses, not {expect!r}.", f"Use e.g. expect={EXAMPLE}."
        )
    parsed: dict[tuple[str, str], int] = {}
    for request, status in expect.items():
        method, _, path = str(request).strip().partition(" ")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise LabError(
                f"The status expected for {request!r} is {status!r}, not an HTTP status.",
                f"Give a number from 100 to 599, e.g. expect={EXAMPLE}.",
            )
        parsed[check_http_request(method, path.strip())] = status
    return parsed


def is_proxy_denial(reply: HttpReply) -> bool:
    """Whether the answer is Cilium's proxy denying the request: 403 with "Access denied"."""
    return reply.status == DENIED_STATUS and reply.body.strip() == DENIED_BODY.strip()


def said(reply: HttpReply) -> str:
    """How one request ended, in words: the status and who gave it, or the outcome (never the
    body: a hostname or a client port changes from run to run)."""
    if reply.outcome != "connected":
        return f"{reply.outcome} ({reply.detail})" if reply.detail else reply.outcome
    if reply.status is None:
        return f"connected, no HTTP answer ({reply.detail})"
    if is_proxy_denial(reply):
        return f"{reply.status} Access denied (Cilium's proxy)"
    return f"{reply.status} from the application"


# --------------------------------------------------------------------------- stage inputs


@dataclass(frozen=True)
class HttpAsk:
    """What http_paths was asked, with the lab, its view and the report being built."""

    lab: Lab
    view: ClusterView
    report: Report
    src: Target
    dst: Target
    port: int
    expect: dict[tuple[str, str], int]
    wait: float
    timeout: float


@dataclass(frozen=True)
class Aimed:
    """The source pod, the address dialled, and the pods behind it with the port each serves the
    requests on (one pod, or a Service's ready endpoints)."""

    ask: HttpAsk
    src: dict[str, Any]
    address: str
    servers: list[tuple[dict[str, Any], int]]


@dataclass(frozen=True)
class Sent:
    """The requests sent: how the poll converged, and the last answer to each."""

    aim: Aimed
    conv: Convergence[list[HttpReply]]


# --------------------------------------------------------------------------- the check


def http_paths(
    lab: Lab,
    src: Target,
    dst: Target,
    port: int,
    expect: Mapping[str, int],
    *,
    wait: float = 5.0,
    timeout: float = 1.0,
) -> Result:
    """Send each request of ``expect`` (``"GET /hostname"``) from pod ``src`` to ``dst`` on
    ``port`` and pass when every answer has the status expected (a 403 from Cilium's proxy counts).

    ``dst`` is a pod target (``"ns/name"`` or a selector), or ``{"service": name, "namespace":
    ns}`` for a Service's ClusterIP (``port`` is then the Service port).
    """
    port, wanted = check_port(port), parse_expect(expect)
    report = Report("http_paths", "")
    requests = ", ".join(f"{m} {p} -> {s}" for (m, p), s in wanted.items())
    report.subject = f"{shown(src)} -> {describe_dst(dst)}:{port} ({requests})"
    ask = HttpAsk(lab, ClusterView(lab), report, src, dst, port, wanted, wait, timeout)
    return Stages(ask).then(find_ends).then(send).finish(judge)


def describe_dst(dst: Target) -> str:
    """A destination as the subject shows it: a Service as ``service ns/name``, else the pod."""
    if isinstance(dst, Mapping) and "service" in dst:
        return f"service {dst.get('namespace', 'default')}/{dst['service']}"
    return shown(dst)


def find_ends(ask: HttpAsk) -> Aimed | Result:
    """The source pod (running, with an IP), then the destination pod or Service and the pods
    that will answer."""
    found = one_pod(ask.view, ask.src, "source")
    ask.report.steps.append(found.step)
    if found.usable is None:
        return ask.report.result(missing_pod_hint("source", found.pod, ask.view.shell))
    source = found.usable
    if isinstance(ask.dst, Mapping) and "service" in ask.dst:
        ns = str(ask.dst.get("namespace") or "default")
        target = find_service_port(ask.view, ask.report, str(ask.dst["service"]), ns, ask.port)
        if isinstance(target, Result):
            return target
        servers = []
        for ep in target.endpoints:
            pod = ask.view.pod(ep.pod, ns) if ep.ready and ep.pod else None
            number = endpoint_port(ep, target.port)
            if pod is not None and number is not None:
                servers.append((pod, number))
        return Aimed(ask, source, str(target.spec.get("clusterIP")), servers)
    dst = one_pod(ask.view, ask.dst, "destination")
    ask.report.steps.append(dst.step)
    if dst.usable is None:
        return ask.report.result(missing_pod_hint("destination", dst.pod, ask.view.shell))
    return Aimed(ask, source, str(pod_ip(dst.usable)), [(dst.usable, ask.port)])


def send(aim: Aimed) -> Sent:
    """Send every request until each answer has its expected status or the wait runs out
    (policies take a moment to reach the data plane on a real cluster)."""
    ask = aim.ask

    def observe() -> list[HttpReply]:
        return [
            ask.lab.http_request(ref_of(aim.src), aim.address, ask.port, m, p, ask.timeout)
            for m, p in ask.expect
        ]

    def done(replies: list[HttpReply]) -> bool:
        return all(r.status == s for r, s in zip(replies, ask.expect.values(), strict=True))

    conv = poll(observe, done, wait=settle_wait(ask.lab, ask.wait))
    ask.report.elapsed_s = conv.elapsed_s
    return Sent(aim, conv)


def judge(sent: Sent) -> Result:
    """One step per request (its status against the one expected); the hint explains the first
    request that differs: an L7 denial, an L3/L4 drop, or the application's own answer."""
    aim, report = sent.aim, sent.aim.ask.report
    src = aim.ask.view.names(aim.src)
    wrong: list[tuple[HttpReply, int]] = []
    for reply, expected in zip(sent.conv.observation, aim.ask.expect.values(), strict=True):
        ok = reply.status == expected
        report.add(f"{reply.request} from {src} (expect {expected})", said(reply), ok)
        if not ok:
            wrong.append((reply, expected))
    report.add("answers settled", sent.conv.describe())
    if not wrong:
        return report.result()
    reply, expected = wrong[0]
    return report.result(mismatch_hint(aim, reply, expected), failure=classify_reply(reply))


def classify_reply(reply: HttpReply) -> str:
    """The failure class of a request that did not get the status expected."""
    return "http" if reply.outcome == "connected" else (classify(reply.outcome) or "error")


def mismatch_hint(aim: Aimed, reply: HttpReply, expected: int) -> str:
    """Why a request did not get ``expected``: who answered it (the proxy, nobody, the app)."""
    ask, lab = aim.ask, aim.ask.lab
    pod, pod_port = aim.servers[0] if aim.servers else (None, ask.port)
    if reply.outcome != "connected":
        verdict = model_verdict(ask.view, aim.src, pod, pod_port) if pod is not None else None
        if reply.outcome == "timeout" and verdict is not None and not verdict.allowed:
            return (
                f"{reply.request} timed out: the connection itself was dropped at L3/L4 "
                f"({verdict.reason}), so no HTTP rule ever saw the request. An HTTP rule answers "
                f"{DENIED_STATUS} on a connection that was made; first let the client in on port "
                f"{pod_port} (fromEndpoints with toPorts.ports), then narrow it with rules.http."
            )
        names = {"pod": name_of(pod), "ns": namespace_of(pod)} if pod is not None else {}
        return failure_hint(reply.outcome, "pod", ask.view.shell, **names)
    if is_proxy_denial(reply) and pod is not None:
        return l7_denial_hint(lab, pod, pod_port, reply.request)
    if expected == DENIED_STATUS and pod is not None:
        rules = http_rules_on(cilium_policies(lab, namespace_of(pod)), pod, pod_port)
        if lab.cni != "cilium":
            why = f"This lab runs {lab.cni}: only Cilium enforces toPorts.rules.http."
        elif rules:
            why = f"HTTP rules in force on port {pod_port}: {'; '.join(rules)}; none denies it."
        else:
            why = (
                f"No CiliumNetworkPolicy gives port {pod_port} of {ask.view.names(pod)} HTTP rules."
            )
        return (
            f"The application answered {reply.request} with {reply.status}: no HTTP rule stood "
            f"in its way. {why} List only the requests to allow under toPorts.rules.http; "
            f"Cilium's proxy answers every other request {DENIED_STATUS} Access denied. Any "
            "rule without rules.http for the same peer and port allows every request."
        )
    status = "no status" if reply.status is None else reply.status
    return (
        f"{reply.request} reached the application, which answered {status}, not {expected}: "
        "the proxy did not deny it. Check the path and method the server serves (agnhost "
        "netexec serves /hostname, /clientip, /echo?msg=...)."
    )
