"""The one pod a check runs from (or looks at): found through the check's view, with the step that
says what was found, and the hint to give when it cannot be used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from labkit.checks.result import Step
from labkit.checks.targets import Target, pod_summary, scheduling_hint, scheduling_problem
from labkit.checks.targets import unschedulable as waits_for_node
from labkit.checks.view import ClusterView
from labkit.commands import ALL_POD_LABELS, POD_DETAIL, Shell
from labkit.model.objects import name_of, namespace_of, pod_ip, pod_phase


class FoundPod(NamedTuple):
    """The pod a target means (None when nothing matches), the step that says so, and how to
    show it in a result's subject (its display name, or the target as given)."""

    pod: dict[str, Any] | None
    step: Step
    shown: str

    @property
    def usable(self) -> dict[str, Any] | None:
        """The pod when it is Running with an IP, else None."""
        return self.pod if self.step.ok else None


def one_pod(view: ClusterView, target: Target, role: str) -> FoundPod:
    """Find the single pod a target means, with the step that says what was found (and, for a pod
    the scheduler could not place, its PodScheduled message as evidence)."""
    spec, pods = view.find_pods(target)
    action = f"find the {role} pod {spec.describe()}"
    if not pods:
        what = "no pod named" if spec.name else "no pod matches"
        return FoundPod(None, Step(action, f"{what} {spec.describe()}", False), shown(target))
    pod = pods[0]
    ok = pod_phase(pod) == "Running" and bool(pod_ip(pod))
    problem = scheduling_problem(pod)
    evidence = (problem.describe(),) if problem is not None and not ok else ()
    step = Step(action, pod_summary(pod, view.names), ok, evidence)
    return FoundPod(pod, step, view.names(pod))


def shown(target: Target) -> str:
    """A target as a result's subject shows it before (or without) finding its pod."""
    if isinstance(target, str):
        return target if "/" in target else f"default/{target}"
    return f"{target.get('namespace', 'default')}/{{{target.get('selector')}}}"


def missing_pod_hint(role: str, pod: Mapping[str, Any] | None, shell: Shell) -> str:
    """Why a pod a check needs is unusable: it does not exist, the scheduler found no node for it,
    or it has no network yet (commands spelt for ``shell``)."""
    if pod is None:
        return (
            f"The {role} pod does not exist (no pod matches the name or selector). List them "
            f"with {shell(ALL_POD_LABELS)} and check the name, namespace and labels."
        )
    if waits_for_node(pod):
        return scheduling_hint(f"The {role} pod", [pod], shell)
    detail = shell(POD_DETAIL, pod=name_of(pod), ns=namespace_of(pod))
    if pod_phase(pod) == "Running" and not pod_ip(pod):
        return (
            f"The {role} pod is Running without an IP: the CNI did not wire its network. "
            f"{detail} shows the sandbox or CNI error."
        )
    return (
        f"The {role} pod is {pod_phase(pod)} without an IP, so it has no network. "
        f"{detail} shows why (image pull, CNI errors, a container that exited)."
    )
