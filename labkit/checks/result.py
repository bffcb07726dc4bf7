"""What a check hands back: a verdict with points, the steps it ran with their evidence, a hint.

Also the two things every check shares: classifying a failed probe into a failure class with its
hint, and polling until what is observed matches what is expected (or a bounded time runs out).
The text form is deterministic (no timestamps, latencies or pod hashes) so lessons can compare it.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from labkit import commands
from labkit.commands import Command, Shell
from labkit.lab import Lab

VERDICTS = ("pass", "partial", "fail")
"""Best first: a learner's best attempt is the first of these they reached."""

FAILURE_CLASSES = ("timeout", "refused", "dns", "http", "unreachable", "error")

_MARKS = {True: " ok ", False: "FAIL", None: "info"}


class _HtmlMark(NamedTuple):
    symbol: str
    colour: str


# The card's colours: text in JupyterLab's theme colour (light or dark), and white on these
# backgrounds for badges and marks, each at least 4.5:1 (WCAG AA) whatever the theme.
TEXT = "var(--jp-content-font-color1, #1f2328)"
PANEL = "var(--jp-layout-color2, #eeeeee)"
VERDICT_COLOURS = {"pass": "#1a7f37", "partial": "#9a6700", "fail": "#cf222e"}
_HTML_MARKS = {
    True: _HtmlMark("&#10004;", VERDICT_COLOURS["pass"]),
    False: _HtmlMark("&#10008;", VERDICT_COLOURS["fail"]),
    None: _HtmlMark("&#8226;", "#57606a"),
}
_CELL = "text-align:left;vertical-align:top;padding:2px 6px"


def badge(text: str, colour: str) -> str:
    """White bold text on ``colour`` (a verdict's): a card's verdict, an exercise's headline."""
    return (
        f"<span style='background:{colour};color:#ffffff;padding:2px 8px;border-radius:4px;"
        f"font-weight:bold'>{html.escape(text)}</span>"
    )


@dataclass(frozen=True)
class Step:
    """One thing a check did and what it saw; ``ok`` is None for context that is not graded."""

    action: str
    observed: str
    ok: bool | None = None
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready), as a Result's ``steps`` list holds it."""
        return {
            "action": self.action,
            "observed": self.observed,
            "ok": self.ok,
            "evidence": list(self.evidence),
        }


@dataclass
class Result:
    """The graded outcome of one check on one lab."""

    check: str
    subject: str
    verdict: str
    steps: list[Step]
    hint: str = ""
    points: float = 0
    max_points: float = 0
    failure: str | None = None
    layer: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    @property
    def passed(self) -> bool:
        """Whether the verdict is pass."""
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for progress files, widgets and the CLI's --json."""
        return {
            "check": self.check,
            "subject": self.subject,
            "verdict": self.verdict,
            "points": self.points,
            "max_points": self.max_points,
            "failure": self.failure,
            "layer": self.layer,
            "hint": self.hint,
            "steps": [s.to_dict() for s in self.steps],
            "data": self.data,
            "elapsed_s": self.elapsed_s,
        }

    def __str__(self) -> str:
        lines = [
            f"{self.verdict.upper()}  {self.check}: {self.subject}  "
            f"({number_text(self.points)}/{number_text(self.max_points)} points)"
        ]
        if self.layer:
            lines.append(f"  first broken layer: {self.layer}")
        for step in self.steps:
            lines.append(f"  [{_MARKS[step.ok]}] {step.action}: {step.observed}")
            lines.extend(f"         {line}" for line in step.evidence)
        if self.hint:
            prefix = f"  hint ({self.failure}): " if self.failure else "  hint: "
            lines.append(prefix + self.hint)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = VERDICT_COLOURS[self.verdict]
        e = html.escape
        rows = []
        for step in self.steps:
            mark = _HTML_MARKS[step.ok]
            evidence = (
                "<pre style='margin:4px 0 0;font-size:90%;color:inherit;background:transparent;"
                f"white-space:pre-wrap'>{e(chr(10).join(step.evidence))}</pre>"
                if step.evidence
                else ""
            )
            rows.append(
                f"<tr><td style='{_CELL}'><span style='background:{mark.colour};color:#ffffff;"
                f"border-radius:3px;padding:0 4px' class='lk-chrome'>{mark.symbol}</span></td>"
                f"<td style='{_CELL}'>{e(step.action)}</td>"
                f"<td style='{_CELL}'>{e(step.observed)}{evidence}</td></tr>"
            )
        layer = (
            f"<div style='margin:4px 0'>First broken layer: <b>{e(self.layer)}</b></div>"
            if self.layer
            else ""
        )
        hint = ""
        if self.hint:
            label = f"Hint ({e(self.failure)})" if self.failure else "Hint"
            hint = (
                f"<div style='margin-top:6px;padding:6px;background:{PANEL};color:{TEXT};"
                f"border-left:4px solid {colour};border-radius:4px'>"
                f"<b>{label}:</b> {e(self.hint)}</div>"
            )
        return (
            f"<div class='lk-card' style='border:2px solid {colour};border-radius:6px;"
            f"padding:8px;margin:4px 0;font-family:sans-serif;color:{TEXT}'>"
            f"<div>{badge(self.verdict.upper(), colour)} "
            f"<b>{e(self.check)}</b>: {e(self.subject)} "
            f"({number_text(self.points)}/{number_text(self.max_points)} points)</div>"
            f"{layer}<table style='border-collapse:collapse;margin-top:6px'>"
            f"<tr class='lk-chrome'><th style='{_CELL}'></th><th style='{_CELL}'>step</th>"
            f"<th style='{_CELL}'>observed</th></tr>{''.join(rows)}</table>"
            f"{hint}</div>"
        )


def number_text(value: float) -> str:
    """``3`` for a whole number, ``2.5`` (one decimal) otherwise: points and seconds in messages."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def make_result(
    check: str,
    subject: str,
    steps: Iterable[Step],
    *,
    verdict: str | None = None,
    hint: str = "",
    failure: str | None = None,
    layer: str | None = None,
    data: Mapping[str, Any] | None = None,
    elapsed_s: float | None = None,
) -> Result:
    """Build a Result whose points are its graded steps that passed (one point each).

    Without an explicit verdict: pass when every graded step passed, else fail. A pass never
    carries a hint or failure class; a failed or partial result always says why.
    """
    steps = list(steps)
    graded = [s for s in steps if s.ok is not None]
    points = sum(1 for s in graded if s.ok)
    if verdict is None:
        verdict = "pass" if graded and all(s.ok for s in graded) else "fail"
    if verdict == "pass":
        if any(s.ok is False for s in graded):
            raise ValueError("a passing result cannot contain a failed step")
        hint, failure = "", None
    elif not hint:
        raise ValueError(f"a {verdict} result needs a hint")
    return Result(
        check=check,
        subject=subject,
        verdict=verdict,
        steps=steps,
        hint=hint,
        points=points,
        max_points=len(graded),
        failure=failure,
        layer=layer,
        data=dict(data or {}),
        elapsed_s=None if elapsed_s is None else round(elapsed_s, 3),
    )


# --------------------------------------------------------------------------- failure classes

_HINTS: dict[tuple[str, str], str] = {
    ("timeout", "pod"): (
        "The packets were dropped on the way, so nothing answered before the timeout. Look at the "
        "NetworkPolicies that select the destination (ingress) or the source (egress) with "
        "{policies}; if none applies, look at routing between the nodes ({node_routes} on the "
        "source's node, the CNI's pods)."
    ),
    ("timeout", "service"): (
        "The Service's virtual IP took the packets but no endpoint answered: a NetworkPolicy "
        "dropping them at the pods, or a route to the endpoint's node missing. Probe one endpoint "
        "pod IP directly to tell the two apart."
    ),
    ("timeout", "external"): (
        "Nothing answered from outside the cluster: the node port or load-balancer address is not "
        "forwarded (wrong port, a Service type that does not expose it, externalTrafficPolicy: "
        "Local on a node without endpoints) or a policy drops the traffic at the pods."
    ),
    ("refused", "pod"): (
        "The connection was refused: the packet reached the pod and nothing listens on that port. "
        "Compare the port with the pod's containerPorts ({pod_detail}). A policy never refuses; "
        "it drops, which shows as a timeout."
    ),
    ("refused", "service"): (
        "The Service refused the connection: it has no ready endpoints (kube-proxy rejects "
        "traffic to a Service without endpoints) or its targetPort is not a port the pods listen "
        "on. Run {endpoints} and compare targetPort with the pods' containerPorts."
    ),
    ("refused", "external"): (
        "The node or load balancer refused the connection: the Service has no ready endpoints, or "
        "its targetPort does not match the pods' containerPort."
    ),
    ("dns", "any"): (
        "The name did not resolve. A short name only resolves in the client's own namespace (the "
        "search path starts with <namespace>.svc.cluster.local): from elsewhere use "
        "<service>.<namespace>. Check the spelling with {services}; with ndots:5 a name "
        "with fewer than 5 dots is tried with every search suffix first."
    ),
    ("unreachable", "any"): (
        "There is no route to that address: the IP belongs to no running pod (a stale IP from a "
        "deleted pod, a typo) or the node has no route to the pod's network. Compare with "
        "{pod_list} and {node_routes} on the node."
    ),
    ("http", "any"): (
        "A server answered with an HTTP error: the network path works, the request does not. For "
        "an Ingress, check the Host header and the path against the rules and the backend's "
        "service name and port."
    ),
    ("error", "any"): (
        "The probe itself failed; read the detail shown above and check that the source pod is "
        "Running."
    ),
}

_HINT_COMMANDS: dict[str, Command] = {
    "policies": commands.POLICIES,
    "node_routes": commands.NODE_ROUTES,
    "pod_detail": commands.POD_DETAIL,
    "endpoints": commands.ENDPOINTS,
    "services": commands.SERVICES,
    "pod_list": commands.POD_LIST,
}
"""The commands the failure-class hints name, by their field in the texts above."""

_UNKNOWN = {"ns": "<namespace>", "svc": "<service>", "pod": "<pod>", "node": "<node>"}
"""What a hint's command shows for a name the caller does not know."""


def failure_hint(failure: str, target: str, shell: Shell, **names: str) -> str:
    """The hint for a failure class (timeout / refused / dns / http / unreachable / error).

    ``target`` says what was dialled: ``pod`` (a pod IP), ``service`` (a ClusterIP) or ``external``
    (a node port or load-balancer address), because a refusal means something different on each.
    Its commands are spelt for ``shell`` with the ``names`` known (``ns``, ``svc``, ``pod``,
    ``node``); the others show as placeholders.
    """
    if failure not in FAILURE_CLASSES:
        raise ValueError(f"unknown failure class {failure!r}; use one of {FAILURE_CLASSES}")
    text = _HINTS.get((failure, target)) or _HINTS.get((failure, "any")) or _HINTS[(failure, "pod")]
    fields = {**_UNKNOWN, **names}
    return text.format(**{key: shell(cmd, **fields) for key, cmd in _HINT_COMMANDS.items()})


def classify(outcome: str, http_status: int | None = None) -> str | None:
    """A probe outcome (and the HTTP status when a request was sent) -> its failure class, or
    None when it connected without an HTTP error."""
    if outcome == "connected":
        return "http" if http_status is not None and http_status >= 400 else None
    if outcome in FAILURE_CLASSES:
        return outcome
    return "error"


def failure_class(outcomes: Iterable[str]) -> str | None:
    """The one failure class of repeated attempts at the same thing (None when none failed).

    A failure that answered (refused, unreachable, ...) outranks silence: the kernel rate-limits
    the ICMP errors of a REJECT or a missing route (a burst of 6 per destination, then 1 a
    second), so a run of refusals decays into timeouts, but a drop never turns into an answer.
    Among answered failures the most common wins (ties by name); "timeout" only when all were
    silent.
    """
    counts: dict[str, int] = {}
    for outcome in outcomes:
        cls = classify(outcome)
        if cls:
            counts[cls] = counts.get(cls, 0) + 1
    answered = {cls: n for cls, n in counts.items() if cls != "timeout"} or counts
    return min(answered, key=lambda cls: (-answered[cls], cls)) if answered else None


# --------------------------------------------------------------------------- polling

T = TypeVar("T")

clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Convergence(Generic[T]):
    """How a poll ended: the last observation, every observation in order, how many attempts,
    how long, and whether it matched."""

    observation: T
    attempts: int
    elapsed_s: float
    converged: bool
    wait_s: float
    observations: tuple[T, ...]

    def describe(self) -> str:
        """Deterministic words for the evidence: attempts, never raw seconds."""
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if self.converged:
            return f"converged after {tries}"
        if not self.wait_s:
            return f"{tries}, judged as first seen"
        return f"still different after {tries} ({number_text(self.wait_s)} s limit)"


def settle_wait(lab: Lab, wait: float) -> float:
    """How long a check may poll for the cluster to converge: ``wait`` on a lab that converges
    after ``apply`` returns (Kind), nothing on one whose ``apply`` returns converged (sandbox)."""
    return 0.0 if lab.capabilities.converges_on_apply else wait


def poll(
    observe: Callable[[], T], done: Callable[[T], bool], *, wait: float = 5.0, interval: float = 0.5
) -> Convergence[T]:
    """Observe until ``done(observation)`` or ``wait`` seconds have passed (always at least once).

    Policies and endpoints take a moment to apply on a real cluster, so checks retry instead of
    judging the first look; the attempts are reported so a learner sees how long it took.
    """
    start = clock()
    seen: list[T] = []
    while True:
        observation = observe()
        seen.append(observation)
        elapsed = clock() - start
        if done(observation):
            return Convergence(observation, len(seen), elapsed, True, wait, tuple(seen))
        if elapsed + interval > wait:
            return Convergence(observation, len(seen), elapsed, False, wait, tuple(seen))
        sleep(interval)
