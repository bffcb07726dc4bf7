"""Grade what a learner submits against the live lab: a prediction beside the truth the lab shows
(one probe per connection, with the policy model's view as evidence), or a fact found on the lab
(compared with the lab's own objects and interfaces, whitespace and case aside, never revealed
when wrong)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from labkit.checks.podnet import parse_links
from labkit.checks.policy import model_verdict
from labkit.checks.result import Result, Step, make_result
from labkit.checks.targets import Target, choose_pods, parse_target
from labkit.checks.view import ClusterView
from labkit.commands import NODE_CIDRS, NODE_LINKS, NODE_LIST, POD_LINKS, POD_LIST, Command
from labkit.course.exercise_questions import Case, Connection, Finding
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.addresses import is_ip
from labkit.model.objects import (
    is_host_network,
    name_of,
    namespace_of,
    node_internal_ip,
    node_pod_cidr,
    pod_ip,
    pod_node,
    pod_phase,
    ref_of,
    strip_port,
)
from labkit.values import OUTCOMES, Probe

Obj = dict[str, Any]

_FACT_WORDS = {
    "pod_ip": "the IP of",
    "pod_node": "the node of",
    "node_ip": "the node IP of",
    "node_pod_cidr": "the podCIDR of the node of",
    "host_veth": "the node-side veth of",
}
_LOOKUPS: dict[str, Command] = {
    "pod_ip": POD_LIST,
    "pod_node": POD_LIST,
    "node_ip": NODE_LIST,
    "node_pod_cidr": NODE_CIDRS,
}
"""Where the lab shows each fact read from its objects: pods with their IPs and nodes, nodes with
their InternalIPs, nodes with their podCIDRs (``host_veth`` is read from interfaces instead)."""
_NODE_FACTS = ("pod_node", "node_ip")
"""Facts that name a node, so a hint must not name the pod's node while one is asked."""


@dataclass(frozen=True)
class Observation:
    """One connection made on the lab: both pods (no destination pod when a name or address was
    dialled), the probe, and what the policies allow."""

    src: Obj
    dst: Obj | None
    probe: Probe
    policies: str | None

    def evidence(self, view: ClusterView) -> tuple[str, ...]:
        """Who connected to whom, across which nodes, how it ended, as the server saw it."""
        probe = self.probe
        seen = strip_port(probe.client_ip)
        to = probe.dst if self.dst is None else _where(view, self.dst)
        lines = [
            f"{_where(view, self.src)} -> {to} port {probe.port}/{probe.protocol}: {probe.outcome}",
            f"the server saw the client as {seen}" if seen else "the server saw no client",
        ]
        if self.dst is None:  # a dialled name or address: which pod answered, if any
            answered = next((p for p in view.pods if name_of(p) == probe.served_by), None)
            if answered is not None:
                lines.append(f"answered by {_where(view, answered)}")
        if self.policies is not None:
            lines.append(f"what the NetworkPolicies allow (model): {self.policies}")
        return tuple(lines)


def grade_prediction(lab: Lab, exercise_id: str, cases: Sequence[Case], prediction: Any) -> Result:
    """Each case's prediction beside the truth observed on the lab: one point per case right."""
    said = _submitted([c.key for c in cases], prediction, "prediction")
    for case in cases:
        _check_prediction(case, said[case.key])
    view = ClusterView(lab)
    seen: dict[str, Observation | str] = {}
    steps = []
    for case in cases:
        key = repr(case.connection)
        first = key not in seen
        if said[case.key] is not None and first:
            seen[key] = _observe(lab, view, case.connection)
        steps.append(_prediction_step(view, case, said[case.key], seen.get(key), first))
    if all(said[c.key] is None for c in cases):
        hint = _unanswered("prediction", {c.key: c.choices() for c in cases})
    else:
        hint = (
            "Compare your prediction with what the lab did, case by case: the evidence says who "
            "connected to whom, across which nodes, and which address the server saw."
        )
    return _result("prediction", exercise_id, steps, hint)


def grade_answer(lab: Lab, exercise_id: str, findings: Sequence[Finding], answer: Any) -> Result:
    """Each answer compared with the fact on the lab (any pod the target picks counts); a wrong
    answer is not told the right one."""
    said = _submitted([f.key for f in findings], answer, "answer")
    view = ClusterView(lab)
    steps = [_finding_step(view, f, said[f.key]) for f in findings]
    if all(said[f.key] is None for f in findings):
        hint = _unanswered("answer", {f.key: _asked(f) for f in findings})
    else:
        hint = _look_it_up(view, findings)
    return _result("answer", exercise_id, steps, hint)


def _look_it_up(view: ClusterView, findings: Sequence[Finding]) -> str:
    """Where the asked facts are on the lab, in the backend's own commands (never the facts)."""
    objects = [f for f in findings if f.fact in _LOOKUPS]
    said = []
    if objects:
        spelt = dict.fromkeys(view.shell(_LOOKUPS[f.fact]) for f in objects)
        said.append(
            f"Look it up on the lab with {' and '.join(spelt)} (pods with their IPs and nodes; "
            "nodes with their InternalIPs and podCIDRs), and copy the value as the lab shows it."
        )
    hide_node = any(f.fact in _NODE_FACTS for f in findings)
    for target in dict.fromkeys(_shown(f.pod) for f in findings if f.fact == "host_veth"):
        spec = replace(parse_target(target), all=True)
        pod = next(iter(choose_pods(spec, view.pods)), None)
        pod_name, ns = (name_of(pod), namespace_of(pod)) if pod else ("<pod>", "<namespace>")
        node = (pod_node(pod) if pod and not hide_node else None) or "<node>"
        said.append(
            f"In {target}, {view.shell(POD_LINKS, pod=pod_name, ns=ns)} shows eth0@ifN: N is the "
            f"index of its peer on the pod's node, where {view.shell(NODE_LINKS, node=node)} "
            "lists the interface with that index. Submit its name (without the @ifM part)."
        )
    return " ".join(said)


# --------------------------------------------------------------------------- submissions


def _submitted(keys: Sequence[str], value: Any, what: str) -> dict[str, Any]:
    """The learner's value per key (None: unanswered); a bare value answers a single question."""
    if value is None or value == "" or (isinstance(value, Mapping) and not value):
        return dict.fromkeys(keys)
    if not isinstance(value, Mapping):
        if len(keys) == 1:
            return {keys[0]: value}
        raise LabError(
            f"This exercise asks {len(keys)} things, so the {what} is a dict.",
            f"Pass {what}={{...}} with the keys {', '.join(map(repr, keys))}.",
        )
    unknown = [str(k) for k in value if k not in keys]
    if unknown:
        raise LabError(
            f"The {what} has keys this exercise does not ask about: "
            f"{', '.join(map(repr, unknown))}.",
            f"Use the keys {', '.join(map(repr, keys))}.",
        )
    return {k: None if value.get(k) == "" else value.get(k) for k in keys}


def _check_prediction(case: Case, value: Any) -> None:
    """Refuse a prediction outside the case's choices (None is unanswered, and allowed)."""
    if value is None:
        return
    fits = (
        isinstance(value, str) and _text(value) in OUTCOMES
        if case.truth == "outcome"
        else isinstance(value, bool)
    )
    if not fits:
        raise LabError(
            f"The prediction for {case.key!r} is {value!r}, not one of its choices.",
            f"Predict one of: {case.choices()}.",
        )


def _unanswered(what: str, choices: Mapping[str, str]) -> str:
    listed = ", ".join(f"{key!r}: <{choice}>" for key, choice in choices.items())
    return f"Nothing was submitted. Record your {what} first, then check: {what}={{{listed}}}."


def _result(check: str, exercise_id: str, steps: list[Step], hint: str) -> Result:
    right = sum(1 for s in steps if s.ok)
    verdict = "pass" if right == len(steps) else "fail" if right == 0 else "partial"
    return make_result(check, f"exercise {exercise_id}", steps, verdict=verdict, hint=hint)


# --------------------------------------------------------------------------- predictions


def _observe(lab: Lab, view: ClusterView, connection: Connection) -> Observation | str:
    """Probe the first pair of running pods that fits the connection (or from the first source
    to the name or address it dials), or say why there is none."""
    sources = _running(view, connection.src)
    if connection.to is not None:
        if not sources:
            return f"no running pod for {_shown(connection.src)}"
        src = sources[0]
        probe = lab.probe(ref_of(src), connection.to, connection.port, connection.protocol)
        return Observation(src, None, probe, None)
    assert connection.dst is not None  # parse_cases gives a case either dst or to
    destinations = _running(view, connection.dst)
    for src in sources:
        for dst in destinations:
            same = pod_node(src) == pod_node(dst)
            if connection.nodes == "any" or same == (connection.nodes == "same"):
                probe = lab.probe(
                    ref_of(src), str(pod_ip(dst)), connection.port, connection.protocol
                )
                verdict = model_verdict(view, src, dst, connection.port, connection.protocol)
                policies = verdict.reason if verdict is not None else "the model cannot judge it"
                if verdict is not None and not lab.capabilities.network_policy:
                    policies += f" (not enforced here: {lab.cni} has no policy engine)"
                return Observation(src, dst, probe, policies)
    where = "" if connection.nodes == "any" else f" on {connection.nodes} nodes"
    return f"no running pod pair{where} for {_shown(connection.src)} -> {_shown(connection.dst)}"


def _prediction_step(
    view: ClusterView, case: Case, said: Any, observed: Observation | str | None, first: bool
) -> Step:
    """The prediction beside the truth, with the connection's evidence under its first case; an
    unanswered case shows no truth (predict first, then observe)."""
    if said is None or observed is None:
        return Step(case.key, "no prediction yet: the lab shows its answer once you predict", False)
    yours = f"you predicted {_shown_value(said)}"
    if isinstance(observed, str):
        return Step(case.key, f"{yours}; the lab cannot show it: {observed}", False)
    probe, evidence = observed.probe, observed.evidence(view) if first else ()
    if case.truth == "outcome":
        truth: Any = probe.outcome
        right = _text(said) == truth
    else:
        seen = strip_port(probe.client_ip)
        if seen is None:
            text = f"{yours}; no server saw the client (the connection ended {probe.outcome})"
            return Step(case.key, text, False, evidence)
        truth = seen == pod_ip(observed.src)
        right = said is truth
    verdict = "right" if right else "wrong"
    text = f"{yours}; the lab: {_shown_value(truth)} ({verdict})"
    return Step(case.key, text, right, evidence)


def _running(view: ClusterView, target: Target) -> list[Obj]:
    spec = replace(parse_target(target), all=True)
    return [p for p in choose_pods(spec, view.pods) if pod_phase(p) == "Running" and pod_ip(p)]


def _where(view: ClusterView, pod: Obj) -> str:
    return f"{view.names(pod)} ({pod_ip(pod)} on {pod_node(pod)})"


# --------------------------------------------------------------------------- findings


def _finding_step(view: ClusterView, finding: Finding, said: Any) -> Step:
    """One answer beside the fact on the lab; an interface name counts with its ``@ifN`` too."""
    action = f"{finding.key}: {_asked(finding)}"
    spec = replace(parse_target(finding.pod), all=True)
    facts = {_text(v) for p in choose_pods(spec, view.pods) if (v := _fact(view, finding.fact, p))}
    if not facts:
        return Step(action, "the lab has no such fact now: run `ex.setup()` first", False)
    if said is None:
        return Step(action, "no answer", False)
    given = str(said).split("@")[0] if finding.fact == "host_veth" else str(said)
    right = _text(given) in facts
    verdict = "right, as the lab says" if right else "not what the lab says"
    return Step(action, f"you answered {_shown_value(said)}: {verdict}", right)


def _fact(view: ClusterView, fact: str, pod: Obj) -> str | None:
    if fact == "pod_ip":
        return pod_ip(pod)
    if fact == "host_veth":
        return host_veth(view.lab, pod)
    node = pod_node(pod)
    if fact == "pod_node" or node is None:
        return node
    found = view.node(node)
    if found is None:
        return None
    return node_internal_ip(found) if fact == "node_ip" else node_pod_cidr(found)


def host_veth(lab: Lab, pod: Obj) -> str | None:
    """The name of the node's interface at the other end of the pod's eth0 (eth0@ifN: the node's
    link with index N), read from both ends on the lab; None without a wired pod to read."""
    node = pod_node(pod)
    if node is None or not pod_ip(pod) or is_host_network(pod):
        return None
    inside = lab.exec(name_of(pod), ["ip", "-o", "link", "show"], namespace=namespace_of(pod))
    eth0 = next((i for i in parse_links(inside.stdout) if i.name == "eth0"), None)
    if not inside.ok or eth0 is None or eth0.peer_index is None:
        return None
    outside = lab.node_exec(node, ["ip", "-o", "link", "show"])
    links = parse_links(outside.stdout) if outside.ok else []
    return next((i.name for i in links if i.index == eth0.peer_index), None)


# --------------------------------------------------------------------------- words


def _text(value: Any) -> str:
    """A value as compared: whitespace collapsed, lower case, an IP or a network (no host bits
    set) in its canonical form."""
    text = " ".join(str(value).split()).lower()
    if is_ip(text):
        return str(ipaddress.ip_address(text))
    try:
        return str(ipaddress.ip_network(text)) if "/" in text else text
    except ValueError:  # not a network, or an address with a prefix ("10.244.1.1/24")
        return text


def _asked(finding: Finding) -> str:
    return f"{_FACT_WORDS[finding.fact]} {_shown(finding.pod)}"


def _shown(target: Target) -> str:
    return parse_target(target).describe()


def _shown_value(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
