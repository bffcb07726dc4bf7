"""Whether two scenarios can share one lab, in any of their states at once: the capstone deploys
several side by side, and one must never break another.

They clash when both define one object differently (scenarios 03 and 17 both define Deployment
``postgres`` in ``default``), when a Service or NetworkPolicy of one selects pods of the other,
or when both claim one nodePort. An object both define identically (the ``client`` pod) is shared.
``redefinitions``, ``selections`` and ``node_port_clashes`` tell the three apart: a lesson that
resets its own scenario gets a redefined object back, but not its pods out of another's selector.
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
    return [
        *redefinitions(first, second),
        *selections(first, second),
        *node_port_clashes(first, second),
    ]


def redefinitions(first: Scenario, second: Scenario) -> list[str]:
    """Each object both define differently: deploying one replaces the other's, so a lesson that
    resets its own scenario afterwards gets its object back."""
    ours, theirs = all_documents(first), all_documents(second)
    return [
        f"both define {kind} {ns or '-'}/{name} differently"
        for kind, ns, name in sorted(_shared(ours, theirs), key=str)
        if kind != "Namespace"
        and len({repr(d) for d in [*ours, *theirs] if object_key(d) == (kind, ns, name)}) > 1
    ]


def selections(first: Scenario, second: Scenario) -> list[str]:
    """Each Service or NetworkPolicy of one that selects pods of the other: it stays in force
    while the other runs, even after the other resets its own scenario."""
    ours, theirs = all_documents(first), all_documents(second)
    shared = _shared(ours, theirs)
    return [
        *_selecting(first, ours, [d for d in theirs if object_key(d) not in shared]),
        *_selecting(second, theirs, [d for d in ours if object_key(d) not in shared]),
    ]


def node_port_clashes(first: Scenario, second: Scenario) -> list[str]:
    """Each nodePort both claim: the second Service to ask for it is refused."""
    ours, theirs = _node_ports(all_documents(first)), _node_ports(all_documents(second))
    return [f"both claim nodePort {port}" for port in sorted(ours & theirs)]


def _shared(ours: list[Doc], theirs: list[Doc]) -> set[tuple[str, str | None, str]]:
    """The keys of the objects both define (identically or not)."""
    return {object_key(d) for d in ours} & {object_key(d) for d in theirs}


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
