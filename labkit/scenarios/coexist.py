"""Whether two scenarios can share one lab, in any of their states at once: the capstone deploys
several side by side, and one must never break another.

They clash when both define one object differently (scenarios 03 and 17 both define Deployment
``postgres`` in ``default``), when a Service or NetworkPolicy of one selects pods of the other,
or when both claim one nodePort. An object both define identically (the ``client`` pod) is shared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labkit.model.selectors import equality_selector_matches, selector_matches
from labkit.scenarios import Scenario, all_documents, object_key

Doc = dict[str, Any]


def conflicts(first: Scenario, second: Scenario) -> list[str]:
    """Why ``first`` and ``second`` cannot run on one lab side by side (empty when they can);
    every state and fix of each counts."""
    ours, theirs = all_documents(first), all_documents(second)
    shared = {object_key(d) for d in ours} & {object_key(d) for d in theirs}
    found = [
        f"both define {kind} {ns or '-'}/{name} differently"
        for kind, ns, name in sorted(shared, key=str)
        if kind != "Namespace"
        and len({repr(d) for d in [*ours, *theirs] if object_key(d) == (kind, ns, name)}) > 1
    ]
    found += _selecting(first, ours, [d for d in theirs if object_key(d) not in shared])
    found += _selecting(second, theirs, [d for d in ours if object_key(d) not in shared])
    found += [
        f"both claim nodePort {port}" for port in sorted(_node_ports(ours) & _node_ports(theirs))
    ]
    return found


def _selecting(owner: Scenario, docs: Iterable[Doc], others: list[Doc]) -> list[str]:
    """Each Service or NetworkPolicy of ``docs`` that selects a pod among ``others``."""
    pods = [(object_key(p), labels) for p in others if (labels := _pod_labels(p)) is not None]
    found = []
    for doc in docs:
        kind, namespace, name = object_key(doc)
        hit = next((key for key, labels in pods if key[1] == namespace and _selects(doc, labels)), None)
        if hit is not None:
            found.append(f"{kind} {namespace}/{name} of {owner.name} selects the pods of {hit[2]}")
    return found


def _selects(doc: Doc, labels: dict[str, str]) -> bool:
    """Whether a Service's selector or a NetworkPolicy's podSelector picks pods with ``labels``."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Service":
        return equality_selector_matches(spec.get("selector"), labels)
    return doc.get("kind") == "NetworkPolicy" and selector_matches(spec.get("podSelector"), labels)


def _pod_labels(doc: Doc) -> dict[str, str] | None:
    """The labels of a Pod, or of the pods a workload creates; None for anything else."""
    if doc.get("kind") == "Pod":
        return dict((doc.get("metadata") or {}).get("labels") or {})
    template = (doc.get("spec") or {}).get("template")
    if isinstance(template, dict):
        return dict((template.get("metadata") or {}).get("labels") or {})
    return None


def _node_ports(docs: Iterable[Doc]) -> set[int]:
    return {
        int(port["nodePort"])
        for doc in docs
        if doc.get("kind") == "Service"
        for port in (doc.get("spec") or {}).get("ports") or []
        if port.get("nodePort")
    }
