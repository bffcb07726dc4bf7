"""Why a DNS answer differs from the one wanted, in words a learner can act on: the wrong
namespace, a misspelt name, an egress policy that drops DNS queries, or stale cluster DNS.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks.policy import model_verdict
from labkit.checks.result import failure_hint
from labkit.checks.view import ClusterView
from labkit.commands import ALL_ENDPOINTS, ENDPOINTS, POD_LABELS, SERVICES
from labkit.model.addresses import is_ip
from labkit.model.objects import labels_of, name_of, namespace_of, pod_phase
from labkit.model.selectors import equality_selector_matches


def dns_failure_hint(
    view: ClusterView,
    src_pod: Mapping[str, Any],
    name: str,
    observed: list[str],
    wanted: list[str],
    model_values: list[str],
    answered: str | None,
) -> str:
    """The likely mistake behind a DNS answer that differs: namespace, spelling, egress policy,
    stale DNS."""
    src_ns = namespace_of(src_pod)
    shell = view.shell
    if not observed and model_values:
        blocked = dns_egress_denied(view, src_pod) if view.lab.capabilities.network_policy else ""
        if blocked:
            return (
                "The cluster has records for this name but the pod got no answer: an egress "
                f"NetworkPolicy on the client drops its DNS queries ({blocked}). Allow egress to "
                "kube-dns on 53/UDP and 53/TCP (namespaceSelector kube-system + podSelector "
                "k8s-app=kube-dns)."
            )
        return (
            "The cluster has records for this name but the pod got no answer: check that the DNS "
            "pods are Running and that the kube-dns Service has endpoints "
            f"({shell(ENDPOINTS, ns='kube-system', svc='kube-dns')})."
        )
    if not observed:
        label = name.rstrip(".").split(".")[0].lower()
        pointed = namespace_of_name(name, src_ns)
        same_name = [s for s in view.services if name_of(s) == label]
        if same_name:
            return _elsewhere_hint(view, name, label, pointed, src_ns, same_name)
        close = near_names(label, [(name_of(s), namespace_of(s)) for s in view.services], pointed)
        if close:
            return (
                f"Nothing is called {label!r}; did you mean {', '.join(close)}? Service names "
                f"come from metadata.name ({shell(SERVICES)})."
            )
        return failure_hint("dns", "any", shell)
    if not wanted:
        return (
            f"The name resolves ({', '.join(observed)}) although it should not: a Service or "
            f"record with this name exists. Check {shell(SERVICES)} for what answers it."
        )
    if answered and observed == model_values:
        return (
            f"The name resolves to {', '.join(observed)} (via {answered}), not to "
            f"{', '.join(wanted)}. With ndots:5 a short name is tried in the client's namespace "
            f"({src_ns}) first: qualify it with the target's namespace (name.namespace) so the "
            "search path reaches the right Service."
        )
    if not all(is_ip(v) for v in observed):
        return (
            f"The answers {', '.join(observed)} differ from {', '.join(wanted)}; compare the "
            "Service's ports and names."
        )
    return (
        "The DNS answer differs from what the Services say: cluster DNS is stale or the pod asks "
        "another server. Compare the pod's nameserver with the kube-dns ClusterIP and the records "
        f"with {shell(SERVICES)} and {shell(ALL_ENDPOINTS)}."
    )


def namespace_of_name(name: str, client_namespace: str) -> str:
    """The namespace a Service name points into: its second label (``svc.ns``, ``svc.ns.svc...``),
    or the client's own namespace for a short name."""
    parts = [p for p in name.rstrip(".").lower().split(".") if p]
    return parts[1] if len(parts) >= 2 else client_namespace


def near_names(
    label: str, services: Sequence[tuple[str, str]], namespace: str, n: int = 3
) -> list[str]:
    """Service names a learner probably meant by ``label``, best first: names that contain it or
    that it contains (``auth`` for ``auth-service``), then names sharing its first word
    (``auth-svc``), then names spelled alike; only the best kind found is returned. A name that
    lives in another namespace than ``namespace`` is shown as ``name.ns``."""
    where: dict[str, list[str]] = {}
    for svc_name, ns in services:
        if svc_name != label:
            where.setdefault(svc_name, []).append(ns)
    candidates = sorted(where)
    head = label.split("-")[0]
    contained = [
        c for c in candidates if min(len(c), len(label)) >= 3 and (c in label or label in c)
    ]
    same_word = [c for c in candidates if len(head) >= 3 and c.split("-")[0] == head]
    for tier in (
        sorted(contained, key=lambda c: (abs(len(c) - len(label)), c)),
        sorted(same_word, key=lambda c: (abs(len(c) - len(label)), c)),
        difflib.get_close_matches(label, candidates, n=n),
    ):
        if tier:
            return [c if namespace in where[c] else f"{c}.{sorted(where[c])[0]}" for c in tier[:n]]
    return []


def _elsewhere_hint(
    view: ClusterView,
    name: str,
    label: str,
    pointed: str,
    src_ns: str,
    same_name: Sequence[Mapping[str, Any]],
) -> str:
    """The name points at a namespace without that Service, but one exists elsewhere: say which
    of those Services has ready endpoints (worth pointing at) and why the others have none."""
    namespaces = [namespace_of(s) for s in same_name]
    text = (
        f"No Service {label!r} exists in namespace {pointed}, where {name} points, but one exists "
        f"in namespace {', '.join(namespaces)}."
    )
    if "." not in name.rstrip("."):
        text += f" A short name only searches the client's own namespace ({src_ns})."
    pods = view.pods
    usable: list[str] = []
    for svc in same_name:
        ns = namespace_of(svc)
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or any(e.ready for e in view.endpoints(label, ns)):
            usable.append(ns)
            continue
        selector = spec.get("selector") or {}
        homes = sorted(
            {
                namespace_of(p)
                for p in pods
                if selector
                and equality_selector_matches(selector, labels_of(p))
                and namespace_of(p) != ns
                and pod_phase(p) not in ("Succeeded", "Failed")
            }
        )
        text += f" The Service {label}.{ns} has no ready endpoints"
        if homes:
            sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            text += (
                f": the pods its selector {sel} matches run in {', '.join(homes)}, and a Service "
                "only selects pods in its own namespace"
            )
        elif selector:
            text += " (no Running pod matches its selector)"
        text += "."
    if usable:
        where = ", ".join(f"{label}.{ns}" for ns in usable)
        text += (
            f" The Service with ready endpoints is in {', '.join(usable)}: write {where} (or the "
            f"full {label}.{usable[0]}.svc.cluster.local), or create the Service in {pointed}."
        )
    elif pointed in {namespace_of(p) for p in pods}:
        text += (
            f" Create the Service in {pointed}, next to the pods it should select "
            f"({view.shell(POD_LABELS, ns=pointed)})."
        )
    else:
        text += " Pointing at it would not help yet: fix the Service first (run service_health)."
    return text


def dns_egress_denied(view: ClusterView, src_pod: Mapping[str, Any]) -> str:
    """The policy model's reason when the pod may not reach any kube-dns endpoint on 53/UDP
    (else ""), whether or not this lab enforces policies."""
    reasons = []
    for ep in view.endpoints("kube-dns", "kube-system"):
        pod = view.pod(ep.pod, "kube-system") if ep.pod else None
        if pod is None or not ep.ready:
            continue
        verdict = model_verdict(view, src_pod, pod, 53, "UDP")
        if verdict is None or verdict.allowed:
            return ""
        reasons.append(verdict.reason)
    return min(reasons, default="")
