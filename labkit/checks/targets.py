"""What a check points at: a pod by ``"ns/name"`` or the pods a selector picks, stable display
names for pods so results never show random pod hashes, and a pod's scheduling facts in words.

Everything here is pure: it reads object dicts (from a :class:`~labkit.checks.view.ClusterView`)
and never talks to a lab.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.commands import NODE_LABELS, POD_DETAIL, Shell
from labkit.errors import LabError
from labkit.model.objects import (
    labels_of,
    meta,
    name_of,
    namespace_of,
    pod_ip,
    pod_node,
    pod_phase,
    pod_ready,
)
from labkit.model.selectors import parse_selector_string, selector_matches
from labkit.values import OUTSIDE

Target = str | Mapping[str, Any]
"""``"ns/name"`` (or ``"name"`` in the default namespace), or
``{"namespace": ns, "selector": "app=x"}``."""


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target: one named pod, or the Running pods a selector picks."""

    namespace: str
    name: str | None = None
    selector: str | None = None
    all: bool = False

    def describe(self) -> str:
        """``ns/name`` for a named pod, ``ns/{app=x}`` for a selector."""
        if self.name:
            return f"{self.namespace}/{self.name}"
        return f"{self.namespace}/{{{self.selector}}}"


def parse_target(target: Target, namespace: str = "default") -> TargetSpec:
    """Read a target; refuse anything that is neither a pod ref nor a selector mapping."""
    if isinstance(target, str):
        text = target.strip()
        if not text or text == OUTSIDE or text.count("/") > 1 or text.strip("/") != text:
            raise LabError(
                f"{target!r} is not a pod reference.",
                'Name a pod as "namespace/name", or pass {"namespace": ..., "selector": "app=x"}.',
            )
        ns, name = split_ref(text, namespace)
        return TargetSpec(namespace=ns, name=name)
    if isinstance(target, Mapping):
        unknown = set(target) - {"namespace", "selector", "all", "name"}
        if unknown:
            raise LabError(
                f"Unknown target keys {sorted(unknown)} in {dict(target)!r}.",
                "Use only namespace, selector (like app=web), name and all.",
            )
        ns = str(target.get("namespace") or namespace)
        if target.get("name"):
            return TargetSpec(namespace=ns, name=str(target["name"]))
        selector = target.get("selector")
        if isinstance(selector, Mapping):
            selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        if not selector or not isinstance(selector, str):
            raise LabError(
                f"The target {dict(target)!r} has no selector.",
                'Give a label selector, e.g. {"namespace": "default", "selector": "app=web"}.',
            )
        try:
            parse_selector_string(selector)
        except ValueError as exc:
            raise LabError(
                f"The selector {selector!r} cannot be read: {exc}.",
                "Write it as a label selector, e.g. app=web,tier!=db.",
            ) from None
        return TargetSpec(namespace=ns, selector=selector, all=bool(target.get("all")))
    raise LabError(
        f"A target must be a string or a mapping, not {type(target).__name__}.",
        'Use "namespace/name" or {"namespace": ..., "selector": "app=x"}.',
    )


# --------------------------------------------------------------------------- choosing pods

_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Failed": 2, "Succeeded": 3}


def choose_pods(spec: TargetSpec, pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The pods a parsed target means among ``pods``: the named pod whatever its phase, or the
    Running pods a selector picks (by name; only the first unless the target says ``all``).

    When a selector matches pods but none of them runs, those pods are returned instead (Pending
    first, then by name), so a check can say *why* they are unusable rather than "no such pod".
    """
    here = sorted(
        (dict(p) for p in pods if namespace_of(p) == spec.namespace), key=lambda p: name_of(p)
    )
    if spec.name:
        return [p for p in here if name_of(p) == spec.name][:1]
    selector = parse_selector_string(spec.selector or "")
    matching = [p for p in here if selector_matches(selector, labels_of(p))]
    chosen = [p for p in matching if pod_phase(p) == "Running"]
    if not chosen:
        chosen = sorted(matching, key=lambda p: (_PHASE_ORDER.get(pod_phase(p), 1), name_of(p)))
    return chosen if spec.all else chosen[:1]


@dataclass(frozen=True)
class Scheduling:
    """Why a pod has no node yet, as its PodScheduled condition says (reason and message)."""

    reason: str
    message: str

    def describe(self) -> str:
        """``PodScheduled=False (Unschedulable): 0/3 nodes are available: ...``"""
        text = f"PodScheduled=False ({self.reason})"
        return f"{text}: {self.message}" if self.message else text


def scheduling_problem(pod: Mapping[str, Any]) -> Scheduling | None:
    """The PodScheduled=False condition of a pod the scheduler could not place, else None."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and str(cond.get("status")) == "False":
            return Scheduling(
                str(cond.get("reason") or "Unschedulable"), str(cond.get("message") or "").strip()
            )
    return None


def unschedulable(pod: Mapping[str, Any]) -> bool:
    """Whether a pod waits for a node: Pending, with no nodeName or PodScheduled=False."""
    return pod_phase(pod) == "Pending" and (
        scheduling_problem(pod) is not None or pod_node(pod) is None
    )


def pod_state(pod: Mapping[str, Any], names: PodNames) -> str:
    """One line on a pod's phase and, for a pod the scheduler could not place, its message:
    ``default/web#1: Pending, no IP, PodScheduled=False (Unschedulable): 0/3 nodes ...``."""
    ip = f"IP {pod_ip(pod)}" if pod_ip(pod) else "no IP"
    text = f"{names(pod)}: {pod_phase(pod)}, {'Ready' if pod_ready(pod) else 'not Ready'}, {ip}"
    problem = scheduling_problem(pod)
    if problem is not None:
        return f"{text}, {problem.describe()}"
    if pod_node(pod) is None:
        return f"{text}, not scheduled"
    return f"{text}, on {pod_node(pod)}"


def scheduling_hint(subject: str, pods: Sequence[Mapping[str, Any]], shell: Shell) -> str:
    """Why ``subject`` (e.g. "The destination pod") is Pending without a node, and what to check
    (commands spelt for ``shell``)."""
    many = len(pods) > 1
    found = (scheduling_problem(pod) for pod in pods)
    problems = sorted({p for p in found if p and p.message}, key=lambda p: (p.reason, p.message))
    said = (
        f" The scheduler says (status.conditions PodScheduled=False, reason {problems[0].reason}): "
        f'"{problems[0].message.rstrip(".")}".'
        if problems
        else ""
    )
    selectors = sorted(
        {
            ",".join(
                f"{k}={v}"
                for k, v in sorted(((pod.get("spec") or {}).get("nodeSelector") or {}).items())
            )
            for pod in pods
        }
        - {""}
    )
    asks = (
        f" {'They ask' if many else 'It asks'} for nodes labelled {' or '.join(selectors)} "
        "(nodeSelector)."
        if selectors
        else ""
    )
    their = "their" if many else "its"
    first = pods[0] if pods else {}
    detail = shell(POD_DETAIL, pod=name_of(first) or "<pod>", ns=namespace_of(first))
    return (
        f"{subject} {'are' if many else 'is'} Pending: the scheduler found no node for "
        f"{'them' if many else 'it'}, so {'they have' if many else 'it has'} no IP and nothing "
        f"runs.{said}{asks} Compare {their} nodeSelector / node affinity with the nodes' labels "
        f"({shell(NODE_LABELS)}) and {their} tolerations with the nodes' taints; {detail} "
        "shows the scheduler's message."
    )


# --------------------------------------------------------------------------- display names

_HASHED = re.compile(r"^(?P<base>.+)-(?P<hash>[a-z0-9]{5,10})-(?P<suffix>[a-z0-9]{5})$")


def workload_of(pod: Mapping[str, Any]) -> str | None:
    """The Deployment/DaemonSet/ReplicaSet a pod comes from (None for a bare or StatefulSet pod)."""
    name = name_of(pod)
    labels = labels_of(pod)
    for owner in meta(pod).get("ownerReferences") or []:
        kind, owner_name = owner.get("kind"), str(owner.get("name") or "")
        if kind == "ReplicaSet":
            template_hash = labels.get("pod-template-hash")
            if template_hash and owner_name.endswith("-" + template_hash):
                return owner_name[: -len(template_hash) - 1]
            return owner_name
        if kind in ("DaemonSet", "Job"):
            return owner_name
        if kind == "StatefulSet":
            return None
    template_hash = labels.get("pod-template-hash")
    if template_hash:
        m = _HASHED.match(name)
        if m and m.group("hash") == template_hash:
            return m.group("base")
    return None


class PodNames:
    """Stable names for pods in results: bare pods keep ``ns/name``; pods of a workload become
    ``ns/<workload>#k`` (k counts that workload's pods in name order), so no hash is ever shown."""

    def __init__(self, pods: Iterable[Mapping[str, Any]]) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        groups: dict[tuple[str, str], list[str]] = {}
        for pod in pods:
            ns = namespace_of(pod)
            name = name_of(pod)
            workload = workload_of(pod)
            if workload:
                groups.setdefault((ns, workload), []).append(name)
            else:
                self._by_key[(ns, name)] = f"{ns}/{name}"
        for (ns, workload), names in groups.items():
            for k, name in enumerate(sorted(set(names)), start=1):
                self._by_key[(ns, name)] = f"{ns}/{workload}#{k}"

    def __call__(self, pod_or_ref: Mapping[str, Any] | str, namespace: str = "default") -> str:
        """The display name of a pod, or of ``"ns/name"`` (``"name"`` in ``namespace``)."""
        if isinstance(pod_or_ref, Mapping):
            ns = namespace_of(pod_or_ref)
            name = name_of(pod_or_ref)
        else:
            ns, name = split_ref(pod_or_ref, namespace)
        return self._by_key.get((ns, name)) or self._guess(ns, name)

    @staticmethod
    def _guess(ns: str, name: str) -> str:
        m = _HASHED.match(name)
        return f"{ns}/{m.group('base')}-*" if m else f"{ns}/{name}"

    def by_name(self, name: str | None, namespace: str = "default") -> str:
        """Display a pod known only by name (e.g. a probe's ``served_by``)."""
        if not name:
            return "(nobody)"
        if "/" in name:
            return self(name)
        for (ns, pod), shown in self._by_key.items():
            if pod == name and ns == namespace:
                return shown
        for (_, pod), shown in sorted(self._by_key.items()):
            if pod == name:
                return shown
        return self._guess(namespace, name)


def pod_summary(pod: Mapping[str, Any], names: PodNames) -> str:
    """``default/web#1 (Running, Ready, IP 10.244.1.2 on netlab-worker)`` for evidence."""
    ready = "Ready" if pod_ready(pod) else "not Ready"
    ip = f"IP {pod_ip(pod)}" if pod_ip(pod) else "no IP"
    node = f" on {pod_node(pod)}" if pod_node(pod) else ", not scheduled"
    return f"{names(pod)} ({pod_phase(pod)}, {ready}, {ip}{node})"


def split_ref(ref: str, namespace: str = "default") -> tuple[str, str]:
    """``"ns/name"`` or ``"name"`` -> ``(namespace, name)``, for pods and Services alike."""
    if "/" in ref:
        ns, _, name = ref.partition("/")
        if not ns or not name:
            raise LabError(f"{ref!r} is not a reference.", 'Write it as "namespace/name".')
        return ns, name
    return namespace, ref
