"""What predict and find exercises ask, as data: each question names what the learner submits (a
key) and how the lab computes the truth it is graded against. Parsed and validated here (pure).

A predict exercise lists ``predict:`` cases; each probes from one pod to another and asks for one
truth of that connection::

    - case: frontend -> database (other node)   # the key of the learner's prediction
      truth: outcome        # outcome: connected | refused | timeout | ...; source_kept: True/False
      src: {namespace: default, selector: app=frontend}
      dst: {namespace: default, selector: app=database}
      port: 5432
      protocol: TCP         # optional
      nodes: different      # optional: any (default) | same | different, where src and dst run

Instead of ``dst:`` a case may name ``to:``, a DNS name or address the source dials as a client
would (``to: web`` is the Service web, looked up through the source pod's resolver), so a
prediction can be about a Service's name and port: refused, timeout, or ``dns`` for a name that
does not resolve. ``nodes`` does not apply to it.

A find exercise lists ``find:`` facts of the lab the learner digs out::

    - name: node            # the key of the learner's answer
      fact: pod_node        # pod_ip | pod_node | node_ip (the InternalIP of the pod's node)
                            # | node_pod_cidr (the spec.podCIDR of the pod's node)
                            # | host_veth (the node-side end of the pod's eth0, e.g. cali1a2b...)
      pod: {namespace: default, selector: app=database}   # any pod the target picks counts
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labkit.checks.reach import check_port, check_protocol
from labkit.checks.targets import Target, parse_target
from labkit.errors import LabError
from labkit.inputs import dns_name, shown
from labkit.model.addresses import is_ip
from labkit.values import OUTCOMES

TRUTHS = ("outcome", "source_kept")
"""What a prediction can be about: how a connection ends, and whether the server sees the
client's own pod IP (no NAT)."""

FACTS = ("pod_ip", "pod_node", "node_ip", "node_pod_cidr", "host_veth")
"""What a find answer can be: a pod's IP, the node it runs on, that node's InternalIP, the range
that node hands out pod addresses from (its podCIDR), and the name of the node's interface at the
other end of the pod's eth0 veth."""

NODES = ("any", "same", "different")

_CASE_KEYS = {"case", "truth", "src", "dst", "to", "port", "protocol", "nodes"}
_FIND_KEYS = {"name", "fact", "pod"}


@dataclass(frozen=True)
class Connection:
    """One connection to observe: the first pair of pods the targets pick (by name) that run on
    the same or different nodes, as asked; or, with ``to`` (and no ``dst``), from the first pod
    ``src`` picks to that name or address."""

    src: Target
    dst: Target | None
    port: int
    protocol: str = "TCP"
    nodes: str = "any"
    to: str | None = None


@dataclass(frozen=True)
class Case:
    """One prediction: its key and which truth of which connection it is graded against."""

    key: str
    truth: str
    connection: Connection

    def choices(self) -> str:
        """The values a prediction of this case can take: ``connected|refused|...``."""
        return "|".join(OUTCOMES) if self.truth == "outcome" else "True|False"


@dataclass(frozen=True)
class Finding:
    """One fact to find: its key, which fact, and of which pod."""

    key: str
    fact: str
    pod: Target


def parse_cases(raw: Any, where: str) -> tuple[Case, ...]:
    """The ``predict:`` list of an exercise, or a LabError naming what is wrong."""
    items = _entries(raw, where, "predict", "`- case: NAME` with truth, src, dst (or to) and port")
    cases = []
    for item in items:
        _keys(item, {"case", "truth", "src", "port"}, _CASE_KEYS, where, "predict case")
        truth, nodes = str(item["truth"]), str(item.get("nodes", "any"))
        if ("dst" in item) == ("to" in item) or ("to" in item and "nodes" in item):
            raise LabError(
                f"{where}: a predict case needs either dst (a pod target) or to (a name or "
                "address), and nodes only with dst.",
                "Write `dst: {namespace: ..., selector: app=x}` or `to: web`.",
            )
        if truth not in TRUTHS:
            raise LabError(
                f"{where}: truth {truth!r} is unknown.", f"Use one of: {', '.join(TRUTHS)}."
            )
        if nodes not in NODES:
            raise LabError(
                f"{where}: nodes {nodes!r} is unknown.", f"Use one of: {', '.join(NODES)}."
            )
        try:
            connection = Connection(
                _target(item["src"]),
                _target(item["dst"]) if "dst" in item else None,
                check_port(item["port"]),
                check_protocol(item.get("protocol", "TCP")),
                nodes,
                _dialled(item["to"]) if "to" in item else None,
            )
        except LabError as exc:
            raise LabError(f"{where}: {exc.what}", exc.fix) from None
        cases.append(Case(str(item["case"]), truth, connection))
    _unique([c.key for c in cases], where, "case")
    return tuple(cases)


def parse_findings(raw: Any, where: str) -> tuple[Finding, ...]:
    """The ``find:`` list of an exercise, or a LabError naming what is wrong."""
    items = _entries(raw, where, "find", "`- name: NAME` with fact and pod")
    findings = []
    for item in items:
        _keys(item, _FIND_KEYS, _FIND_KEYS, where, "find entry")
        fact = str(item["fact"])
        if fact not in FACTS:
            raise LabError(
                f"{where}: fact {fact!r} is unknown.", f"Use one of: {', '.join(FACTS)}."
            )
        try:
            pod = _target(item["pod"])
        except LabError as exc:
            raise LabError(f"{where}: {exc.what}", exc.fix) from None
        findings.append(Finding(str(item["name"]), fact, pod))
    _unique([f.key for f in findings], where, "name")
    return tuple(findings)


def _entries(raw: Any, where: str, field: str, example: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw or not all(isinstance(i, dict) for i in raw):
        raise LabError(
            f"{where}: {field} must be a list of entries.", f"List at least one {example}."
        )
    return raw


def _keys(item: dict[str, Any], needed: set[str], allowed: set[str], where: str, what: str) -> None:
    unknown, missing = set(item) - allowed, needed - set(item)
    if unknown or missing:
        wrong = f"has unknown keys {sorted(unknown)}" if unknown else f"lacks {sorted(missing)}"
        raise LabError(f"{where}: a {what} {wrong}.", f"Use only: {', '.join(sorted(allowed))}.")


def _target(raw: Any) -> Target:
    parse_target(raw)  # refuses what is not a pod reference or selector
    return str(raw) if isinstance(raw, str) else dict(raw)


def _dialled(raw: Any) -> str:
    """A name or address a case's source dials: never a pod reference or an option."""
    text = raw if isinstance(raw, str) else ""
    problem = None if is_ip(text) else dns_name(text)
    if problem is not None:
        raise LabError(
            f"to: {shown(raw)} is not a DNS name or an address: {problem}.",
            "Write e.g. `to: web`, `to: web.shop.svc.cluster.local` or `to: 10.96.0.10`.",
        )
    return text


def _unique(keys: list[str], where: str, field: str) -> None:
    doubled = sorted({k for k in keys if keys.count(k) > 1})
    if doubled:
        raise LabError(
            f"{where}: {field} {doubled[0]!r} appears twice.", f"Give every {field} its own text."
        )
