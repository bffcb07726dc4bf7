"""Pure judgements of readiness: given objects as `kubectl get -o json` returns them, say what is
still not ready, in words a learner can act on. An empty list means ready."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.kind.actions import Wait
from labkit.model.objects import name_of


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The status condition of type ``kind`` (e.g. Ready, Available), if the object reports it."""
    conditions: list[Mapping[str, Any]] = (obj.get("status") or {}).get("conditions") or []
    return next((cond for cond in conditions if cond.get("type") == kind), None)


def _is_true(obj: Mapping[str, Any], kind: str) -> bool:
    cond = condition(obj, kind)
    return cond is not None and cond.get("status") == "True"


def _name(obj: Mapping[str, Any]) -> str:
    return name_of(obj) or "?"


def nodes_pending(nodes: Sequence[Mapping[str, Any]], expected: int) -> list[str]:
    """Nodes missing or not Ready (with the kubelet's reason, e.g. "NetworkPluginNotReady")."""
    pending: list[str] = []
    if len(nodes) < expected:
        pending.append(f"{len(nodes)} of {expected} nodes registered")
    for node in nodes:
        if not _is_true(node, "Ready"):
            cond = condition(node, "Ready") or {}
            why = cond.get("message") or cond.get("reason") or "no Ready condition yet"
            pending.append(f"node {_name(node)} NotReady: {why}")
    return pending


def daemonset_pending(ds: Mapping[str, Any] | None, namespace: str, name: str) -> list[str]:
    """A DaemonSet is ready when it runs an up-to-date, ready pod on every node it targets."""
    if ds is None:
        return [f"daemonset {namespace}/{name} not created yet"]
    st = ds.get("status") or {}
    desired = int(st.get("desiredNumberScheduled") or 0)
    ready = int(st.get("numberReady") or 0)
    updated = int(st.get("updatedNumberScheduled") or 0)
    if desired == 0:
        return [f"daemonset {namespace}/{name} has scheduled no pods yet"]
    if ready < desired or updated < desired:
        return [f"daemonset {namespace}/{name}: {ready}/{desired} pods ready"]
    return []


def deployment_pending(dep: Mapping[str, Any] | None, namespace: str, name: str) -> list[str]:
    """A Deployment is ready when all its wanted replicas are available and up to date."""
    if dep is None:
        return [f"deployment {namespace}/{name} not created yet"]
    wanted = (dep.get("spec") or {}).get("replicas")
    wanted = 1 if wanted is None else int(wanted)
    st = dep.get("status") or {}
    available = int(st.get("availableReplicas") or 0)
    updated = int(st.get("updatedReplicas") or 0)
    if available < wanted or updated < wanted:
        return [f"deployment {namespace}/{name}: {available}/{wanted} replicas available"]
    return []


def conditions_pending(
    objs: Sequence[Mapping[str, Any]], kind_label: str, names: Sequence[str], condition_type: str
) -> list[str]:
    """Named objects (TigeraStatus, CRDs) that are missing or whose condition is not True."""
    by_name = {_name(o): o for o in objs}
    pending: list[str] = []
    for name in names:
        obj = by_name.get(name)
        if obj is None:
            pending.append(f"{kind_label} {name} not reported yet")
        elif not _is_true(obj, condition_type):
            cond = condition(obj, condition_type) or {}
            # TigeraStatus explains trouble in its Degraded condition.
            degraded = condition(obj, "Degraded") or {}
            why = (
                degraded.get("message") if degraded.get("status") == "True" else cond.get("message")
            )
            pending.append(
                f"{kind_label} {name} not {condition_type}" + (f": {why}" if why else "")
            )
    return pending


def pending(wait: Wait, objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """What ``wait`` is still waiting for, given the objects of its kind (in its namespace)."""
    if wait.what == "nodes":
        return nodes_pending(objects, wait.count)
    by_name = {_name(o): o for o in objects}
    out: list[str] = []
    if wait.what == "daemonset":
        for name in wait.names:
            out += daemonset_pending(by_name.get(name), wait.namespace or "default", name)
    elif wait.what == "deployment":
        for name in wait.names:
            out += deployment_pending(by_name.get(name), wait.namespace or "default", name)
    elif wait.what == "ingressclass":
        out += [
            f"ingressclass {name} not created yet (cloud-provider-kind looks for new Kind "
            "clusters every 30 s)"
            for name in wait.names
            if name not in by_name
        ]
    elif wait.what == "tigerastatus":
        out += conditions_pending(objects, "tigerastatus", wait.names, "Available")
    else:
        out += conditions_pending(objects, "crd", wait.names, "Established")
    return out
