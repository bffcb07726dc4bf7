"""``pod_to_pod``: connect from one pod to another pod's IP (or to a literal address, or to its own
localhost) and judge the outcome: connected or blocked as expected, by the pod meant, and without
NAT; where the policy model and the data plane disagree, say which one dropped the flow.

The check runs as ordered stages: find the source, find the destination, connect, then judge
a connection that should be blocked, or one that should get through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks.l7 import l7_denial_hint
from labkit.checks.pods import missing_pod_hint, one_pod, shown
from labkit.checks.policy import model_verdict, not_enforced_note
from labkit.checks.reach import SourcePod, check_port, check_protocol
from labkit.checks.result import (
    Convergence,
    Result,
    classify,
    failure_class,
    failure_hint,
    poll,
    settle_wait,
)
from labkit.checks.stages import Report, Stages
from labkit.checks.targets import Target, pod_summary
from labkit.checks.view import ClusterView
from labkit.commands import NAT_RULES, POD_DETAIL, POD_LIST
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.addresses import is_ip
from labkit.model.ciliuml7 import DENIED_STATUS
from labkit.model.netpol.verdicts import Verdict
from labkit.model.objects import (
    container_ports,
    is_host_network,
    name_of,
    namespace_of,
    pod_ip,
    pod_node,
    ref_of,
    strip_port,
)
from labkit.values import Probe

EXPECTATIONS = ("connected", "blocked")
LOCALHOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
REACHED = ("connected", "timeout", "unreachable")
"""Outcomes that answer "did it get through": a refusal or an error answers neither way."""


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


def pod_with_ip(pods: Sequence[Mapping[str, Any]], address: str) -> dict[str, Any] | None:
    """The pod (not hostNetwork) whose podIP is ``address``, or None."""
    for pod in pods:
        if pod_ip(pod) == address and not is_host_network(pod):
            return dict(pod)
    return None


# --------------------------------------------------------------------------- stage inputs


@dataclass(frozen=True)
class PodReachAsk:
    """What pod_to_pod was asked, with the lab, its view and the report being built."""

    lab: Lab
    view: ClusterView
    report: Report
    src: Target
    dst: Target
    port: int
    protocol: str
    expect: str
    no_nat: bool
    wait: float
    timeout: float

    @property
    def address(self) -> str | None:
        """The destination's literal address, when ``dst`` names one."""
        return literal_address(self.dst)

    @property
    def local(self) -> bool:
        """Whether the destination is the source pod's own loopback."""
        return self.address is not None and is_loopback(self.address)

    @property
    def wants_block(self) -> bool:
        """Whether the connection must be dropped."""
        return self.expect == "blocked"

    def flow(self, dst_text: str) -> str:
        """``dst:port/protocol (expect)`` for the subject."""
        return f"{dst_text}:{self.port}/{self.protocol} ({self.expect})"


PodSource = SourcePod[PodReachAsk]
"""The source pod found."""


@dataclass(frozen=True)
class Ends:
    """Both ends: the source pod, the destination pod (None for an address no pod owns) and the
    address dialled."""

    ask: PodReachAsk
    src: dict[str, Any]
    dst: dict[str, Any] | None
    dst_ip: str

    def failure_hint(self, failure: str) -> str:
        """The hint for how the connection failed, its commands naming the destination pod and
        the source's node."""
        names = {"node": pod_node(self.src) or "<node>"}
        if self.dst is not None:
            names.update(pod=name_of(self.dst), ns=namespace_of(self.dst))
        return failure_hint(failure, "pod", self.ask.view.shell, **names)


@dataclass(frozen=True)
class Connection:
    """The connection made: how the poll converged (and its last probe), and the policy model's
    view (None where it cannot judge: localhost, or no destination pod)."""

    ends: Ends
    conv: Convergence[Probe]
    verdict: Verdict | None

    @property
    def probe(self) -> Probe:
        """The last probe."""
        return self.conv.observation

    @property
    def ask(self) -> PodReachAsk:
        """What was asked."""
        return self.ends.ask

    @property
    def report(self) -> Report:
        """The report being built."""
        return self.ends.ask.report

    @property
    def enforced(self) -> bool:
        """Whether this lab enforces NetworkPolicies."""
        return self.ask.lab.capabilities.network_policy

    @property
    def action(self) -> str:
        """The step that reports the connection."""
        e = self.ends
        src = self.ask.view.names(e.src)
        return f"connect from {src} to {e.dst_ip}:{self.ask.port}/{self.ask.protocol}"

    @property
    def observed(self) -> str:
        """The outcome, who answered, and how the poll converged."""
        e, names = self.ends, self.ask.view.names
        home = namespace_of(e.dst if e.dst is not None else e.src)
        served_by = self.probe.served_by
        answered = f", answered by {names.by_name(served_by, home)}" if served_by else ""
        return f"{self.probe.outcome}{answered} ({self.conv.describe()})"


# --------------------------------------------------------------------------- the check


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
    if address is not None and is_loopback(address) and expect == "blocked":
        raise LabError(
            f"Traffic to {dst} never leaves the source pod, so no NetworkPolicy can block it.",
            'Use expect="connected" for localhost, or dial another pod to test a block.',
        )
    report = Report("pod_to_pod", "")
    ask = PodReachAsk(
        lab, ClusterView(lab), report, src, dst, port, protocol, expect, no_nat, wait, timeout
    )
    report.subject = f"{shown(src)} -> {ask.flow(address if address is not None else shown(dst))}"
    return (
        Stages(ask)
        .then(find_source)
        .then(find_destination)
        .then(connect)
        .finish(judge_block if ask.wants_block else judge_connection)
    )


def find_source(ask: PodReachAsk) -> PodSource | Result:
    """The source pod must exist, run and have an IP."""
    found = one_pod(ask.view, ask.src, "source")
    ask.report.steps.append(found.step)
    if found.usable is None:
        return ask.report.result(missing_pod_hint("source", found.pod, ask.view.shell))
    return PodSource(ask, found.usable)


def find_destination(source: PodSource) -> Ends | Result:
    """The destination: a pod target (which must run with an IP), the source's own localhost, or
    a literal address (judged as the pod that owns it, if any); then whether it declares the
    port."""
    ask, report, names = source.ask, source.ask.report, source.ask.view.names
    src_name = names(source.pod)
    address = ask.address
    if address is None:
        found = one_pod(ask.view, ask.dst, "destination")
        report.steps.append(found.step)
        report.subject = f"{src_name} -> {ask.flow(found.shown)}"
        if found.usable is None:
            return report.result(missing_pod_hint("destination", found.pod, ask.view.shell))
        ends = Ends(ask, source.pod, found.usable, str(pod_ip(found.usable)))
    elif ask.local:
        report.subject = f"{src_name} -> {ask.flow(f'{address} (its own localhost)')}"
        report.add(
            f"the destination {ask.dst}",
            f"localhost inside {src_name}: every container of the pod shares its network "
            "namespace, so this never touches the pod network",
        )
        ends = Ends(ask, source.pod, source.pod, address)
    else:
        owner = pod_with_ip(ask.view.pods, address)
        report.subject = f"{src_name} -> {ask.flow(address)}"
        said = (
            f"the IP of {pod_summary(owner, names)}" if owner is not None else "no pod has this IP"
        )
        report.add(f"the destination {address}", said)
        ends = Ends(ask, source.pod, owner, address)
    if ends.dst is not None:
        declared = container_ports(ends.dst)
        if not any(cp.number == ask.port and cp.protocol == ask.protocol for cp in declared):
            listed = ", ".join(f"{cp.number}/{cp.protocol}" for cp in declared) or "none"
            report.add(
                f"is {ask.port}/{ask.protocol} a containerPort of {names(ends.dst)}",
                f"no (declared: {listed})",
            )
    return ends


def connect(ends: Ends) -> Connection:
    """Probe until the outcome is the one expected (or the wait runs out); a block that this lab
    cannot enforce is probed once, as waiting would not change it. Adds the model's view."""
    ask = ends.ask
    enforced = ask.lab.capabilities.network_policy
    verdict = (
        None
        if ask.local or ends.dst is None
        else model_verdict(ask.view, ends.src, ends.dst, ask.port, ask.protocol)
    )

    def done(p: Probe) -> bool:
        return p.outcome in REACHED and (p.outcome == "connected") != ask.wants_block

    conv = poll(
        lambda: ask.lab.probe(ref_of(ends.src), ends.dst_ip, ask.port, ask.protocol, ask.timeout),
        done,
        wait=0.0 if (ask.wants_block and not enforced) else settle_wait(ask.lab, ask.wait),
    )
    ask.report.elapsed_s = conv.elapsed_s
    if verdict is not None:
        ask.report.add("what the NetworkPolicies allow (model)", verdict.reason)
    return Connection(ends, conv, verdict)


# --------------------------------------------------------------------------- expect="blocked"


def judge_block(attempt: Connection) -> Result:
    """The connection must be dropped: pass on a drop (saying who dropped it when the policies
    allow the flow), partial where policies are not enforced, else fail with why it got through."""
    report, probe, verdict = attempt.report, attempt.probe, attempt.verdict
    if probe.outcome == "connected" and not attempt.enforced:
        report.add(attempt.action, attempt.observed)
        return report.result(not_enforced_note(attempt.ask.lab), verdict="partial")
    blocked = probe.outcome in ("timeout", "unreachable")
    report.add(attempt.action, attempt.observed, blocked)
    if blocked:
        if verdict is not None and verdict.allowed:
            report.add(
                "who dropped it",
                "the policies allow this flow, so the drop is in the data plane (routing), "
                "not a NetworkPolicy",
            )
        return report.result()
    if probe.outcome == "connected":
        agrees = (
            f" The model agrees: {verdict.reason}."
            if verdict is not None and verdict.allowed
            else ""
        )
        return report.result(
            "The connection went through, so no NetworkPolicy isolates this flow. A pod is only "
            "isolated once a policy selects it (podSelector) for that direction (policyTypes); "
            "then only the listed peers and ports are allowed." + agrees
        )
    failure = classify(probe.outcome)
    return report.result(attempt.ends.failure_hint(failure or "error"), failure=failure)


# --------------------------------------------------------------------------- expect="connected"


def judge_connection(attempt: Connection) -> Result:
    """The connection must get through, to the pod meant, without NAT, and policies that are not
    enforced must not be what let it through."""
    return (
        Stages(attempt)
        .then(connected)
        .then(answered_by_destination)
        .then(source_ip_kept)
        .finish(policies_agree)
    )


def connected(attempt: Connection) -> Connection | Result:
    """The probe connected; else fail with the hint for how it failed."""
    ask, probe, verdict = attempt.ask, attempt.probe, attempt.verdict
    denied = probe.outcome == "connected" and probe.http_status == DENIED_STATUS
    ok = probe.outcome == "connected" and not denied
    attempt.report.add(attempt.action, attempt.observed, ok)
    if ok:
        return attempt
    if denied and attempt.ends.dst is not None:
        return attempt.report.result(
            l7_denial_hint(ask.lab, attempt.ends.dst, ask.port), failure="http"
        )
    failure = failure_class(p.outcome for p in attempt.conv.observations)
    hint = attempt.ends.failure_hint(failure or "error")
    if ask.local and failure == "refused":
        src = attempt.ends.src
        detail = ask.view.shell(POD_DETAIL, pod=name_of(src), ns=namespace_of(src))
        hint = (
            f"Nothing in {ask.view.names(src)} listens on "
            f"{attempt.ends.dst_ip}:{ask.port}. The containers of a pod share one network "
            "namespace, so another container must listen on that port: check that the sidecar "
            f"container exists and serves this port (its containerPort, in {detail})."
        )
    elif failure == "timeout" and verdict is not None and not verdict.allowed and attempt.enforced:
        hint = (
            f"A NetworkPolicy drops this flow: {verdict.reason}. "
            "Add a rule that allows this source and port, in the right direction."
        )
    return attempt.report.result(hint, failure=failure)


def answered_by_destination(attempt: Connection) -> Connection | Result:
    """The pod that answered is the destination pod (not another pod that took over its IP)."""
    dst, served_by = attempt.ends.dst, attempt.probe.served_by
    if dst is None or not served_by or served_by == name_of(dst):
        return attempt
    attempt.report.add(
        "the pod that answered is the destination",
        f"no: {attempt.ask.view.names.by_name(served_by)} answered",
        False,
    )
    return attempt.report.result(
        "Another pod answered on this IP: the address was re-used. Look up the destination's "
        f"current IP with {attempt.ask.view.shell(POD_LIST)}."
    )


def source_ip_kept(attempt: Connection) -> Connection | Result:
    """The server saw the client's own pod IP (no NAT); on localhost, its loopback address."""
    ask, report = attempt.ask, attempt.report
    seen = strip_port(attempt.probe.client_ip)
    action = "source IP as the server saw it"
    if ask.local:
        if seen is not None:
            report.add(action, f"{seen} (localhost: the pod talked to itself)")
        return attempt
    if not ask.no_nat or attempt.ends.dst is None:
        return attempt
    if seen is None:
        report.add(action, "the server did not report it")
        return attempt
    src_ip = pod_ip(attempt.ends.src)
    kept = seen == src_ip
    nat = "(no NAT)" if kept else "(NAT)"
    report.add(action, f"{seen} {'=' if kept else '!='} the client's pod IP {src_ip} {nat}", kept)
    if kept:
        return attempt
    rules = ask.view.shell(NAT_RULES, node=pod_node(attempt.ends.src) or "<node>")
    return report.result(
        f"The server saw {seen}, not the pod IP {src_ip}: something masqueraded pod-to-pod "
        "traffic. Kubernetes requires pods to reach each other without NAT; look for a "
        f"MASQUERADE rule in the nat table on the source node ({rules})."
    )


def policies_agree(attempt: Connection) -> Result:
    """Pass, unless the flow got through only because this lab does not enforce policies that
    would drop it (partial: cannot grade here)."""
    verdict = attempt.verdict
    if verdict is None or verdict.allowed or attempt.enforced:
        return attempt.report.result()
    return attempt.report.result(
        "The connection went through only because policies are not enforced: on a cluster "
        f"that enforces them it would be dropped ({verdict.reason}). "
        + not_enforced_note(attempt.ask.lab),
        verdict="partial",
    )
