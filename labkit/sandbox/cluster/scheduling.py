"""The scheduler: which nodes a pod may run on (taints, selectors and affinity, host ports, room
for one more pod), in the scheduler's own words when none fits, and binding unbound pods to the
least busy node."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from labkit.model.objects import pod_node, pod_phase
from labkit.sandbox.cluster.world import World

MAX_PODS = 110
"""kubelet's default ``--max-pods``: the node's ``status.allocatable.pods``, system pods
included."""


class Unfit(NamedTuple):
    """Why the scheduler filtered a node out, and whether preemption could help there (a
    filter's ``Unschedulable``, as opposed to ``UnschedulableAndUnresolvable``)."""

    reason: str
    preemptible: bool


def tolerates(tolerations: Iterable[Mapping[str, Any]] | None, taint: Mapping[str, Any]) -> bool:
    """Whether any toleration matches a taint (key, operator Equal/Exists, value, effect)."""
    for tol in tolerations or []:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def untolerated_taint(spec: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first NoSchedule/NoExecute taint of ``node`` the pod does not tolerate."""
    for taint in node.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
            spec.get("tolerations"), taint
        ):
            return dict(taint)
    return None


def _requirement_holds(req: Mapping[str, Any], values_of: Mapping[str, str]) -> bool:
    key, op = str(req.get("key") or ""), req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    present = key in values_of
    if op == "In":
        return present and values_of[key] in values
    if op == "NotIn":
        return not present or values_of[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(values_of[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def matches_node(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector and required node affinity (nodeSelectorTerms ORed, their requirements
    ANDed)."""
    labels = node.get("labels") or {}
    if any(labels.get(k) != str(v) for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node["name"]}
    for term in terms:
        exprs, field_reqs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if (
            (exprs or field_reqs)
            and all(_requirement_holds(e, labels) for e in exprs)
            and all(_requirement_holds(f, fields) for f in field_reqs)
        ):
            return True
    return False


def daemonset_wants(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether a DaemonSet's pod belongs on ``node`` (node selector, affinity, taints)."""
    return untolerated_taint(spec, node) is None and matches_node(spec, node)


def host_ports(spec: Mapping[str, Any]) -> set[tuple[int, str]]:
    """(port, protocol) pairs a pod takes on its node: hostPorts, or every containerPort with
    hostNetwork."""
    taken = set()
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            number = port.get("hostPort") or (
                port.get("containerPort") if spec.get("hostNetwork") else None
            )
            if number:
                taken.add((int(number), str(port.get("protocol", "TCP"))))
    return taken


def unfit_reason(
    spec: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: list[dict[str, Any]]
) -> Unfit | None:
    """Why the scheduler would filter ``node`` out for this pod (its own words), or None if it
    fits.

    Filters run in the scheduler's order: TaintToleration, NodeAffinity (both unresolvable by
    preemption), NodePorts, NodeResourcesFit (``len(pods)+1 > allowedPodNumber``: "Too many
    pods").
    """
    taint = untolerated_taint(spec, node)
    if taint is not None:
        return Unfit(
            f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}",
            False,
        )
    if not matches_node(spec, node):
        return Unfit("node(s) didn't match Pod's node affinity/selector", False)
    wanted = host_ports(spec)
    if wanted:
        used: set[tuple[int, str]] = set()
        for other in pods_on_node:
            used |= host_ports(other["spec"])
        if wanted & used:
            return Unfit("node(s) didn't have free ports for the requested pod ports", True)
    if len(pods_on_node) + 1 > MAX_PODS:
        return Unfit("Too many pods", True)
    return None


def unschedulable_message(unfit: list[Unfit], total: int) -> str:
    """The scheduler's FailedScheduling message for a pod no node fits (FitError.Error(): each
    reason counted, sorted); every pod here has priority 0, so preemption finds no victims where
    it is tried and is "not helpful" where the filter's failure is unresolvable."""
    parts = sorted(
        f"{count} {reason}" for reason, count in Counter(u.reason for u in unfit).items()
    )
    tried = sum(1 for u in unfit if u.preemptible)
    preemption = sorted(
        f"{count} {what}"
        for what, count in (
            ("Preemption is not helpful for scheduling", len(unfit) - tried),
            ("No preemption victims found for incoming pod", tried),
        )
        if count
    )
    return (
        f"0/{total} nodes are available: {', '.join(parts)}. "
        f"preemption: 0/{total} nodes are available: {', '.join(preemption)}."
    )


def holds_a_place(pod: Mapping[str, Any]) -> bool:
    """Whether a bound pod counts against its node's max-pods (the scheduler does not watch
    pods that Succeeded or Failed)."""
    return pod_phase(pod) not in ("Succeeded", "Failed")


def schedule_pods(world: World) -> None:
    """Bind every unbound pod: filter nodes (taints, selector/affinity, host ports, max-pods),
    pick the one with the fewest pods (ties by name); a pod no node fits keeps the scheduler's
    message."""
    pods = world.ordered("Pod")
    per_node: dict[str, list[dict[str, Any]]] = {n["name"]: [] for n in world.nodes}
    for pod in pods:
        node_name = pod_node(pod)
        if node_name is not None and node_name in per_node and holds_a_place(pod):
            per_node[node_name].append(pod)
    for pod in pods:
        if pod_node(pod):
            continue
        reasons: list[Unfit] = []
        fits = []
        for node in world.nodes:
            reason = unfit_reason(pod["spec"], node, per_node[node["name"]])
            if reason is None:
                fits.append(node)
            else:
                reasons.append(reason)
        facts = world.facts(pod)
        if not fits:
            facts["unschedulable"] = unschedulable_message(reasons, len(world.nodes))
            continue
        chosen = min(fits, key=lambda n: (len(per_node[n["name"]]), n["name"]))
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = chosen["name"]
        world.put(bound)
        facts["unschedulable"] = None
        per_node[chosen["name"]].append(bound)
