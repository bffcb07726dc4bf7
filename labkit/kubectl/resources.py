"""The resource types `labkit kubectl` serves on the sandbox, spelt as kubectl spells them
(plural, singular, short names, ``kind.group``), and what ``all`` expands to."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One resource type: its Kind, plural, API group ("" for core), short names, scope."""

    kind: str
    plural: str
    group: str
    short: tuple[str, ...]
    namespaced: bool
    warning: str = ""
    """What the API server warns about on every request for this type (kubectl prints it)."""

    @property
    def qualified(self) -> str:
        """``kind.group`` in lower case, as ``-o name`` and multi-type tables prefix names."""
        return self.kind.lower() + (f".{self.group}" if self.group else "")

    def spellings(self) -> set[str]:
        """Every way kubectl accepts this type on the command line."""
        names = {self.plural, self.kind.lower(), *self.short}
        if self.group:
            names |= {f"{n}.{self.group}" for n in (self.plural, self.kind.lower())}
        return names


RESOURCES = (
    Resource("Pod", "pods", "", ("po",), True),
    Resource("Service", "services", "", ("svc",), True),
    Resource(
        "Endpoints",
        "endpoints",
        "",
        ("ep",),
        True,
        "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice",
    ),
    Resource("EndpointSlice", "endpointslices", "discovery.k8s.io", (), True),
    Resource("Node", "nodes", "", ("no",), False),
    Resource("Namespace", "namespaces", "", ("ns",), False),
    Resource("NetworkPolicy", "networkpolicies", "networking.k8s.io", ("netpol",), True),
    Resource("CiliumNetworkPolicy", "ciliumnetworkpolicies", "cilium.io", ("cnp",), True),
    Resource("Ingress", "ingresses", "networking.k8s.io", ("ing",), True),
    Resource("IngressClass", "ingressclasses", "networking.k8s.io", (), False),
    Resource("Deployment", "deployments", "apps", ("deploy",), True),
    Resource("ReplicaSet", "replicasets", "apps", ("rs",), True),
    Resource("DaemonSet", "daemonsets", "apps", ("ds",), True),
    Resource("StatefulSet", "statefulsets", "apps", ("sts",), True),
    Resource("ConfigMap", "configmaps", "", ("cm",), True),
    Resource("Secret", "secrets", "", (), True),
    Resource("ServiceAccount", "serviceaccounts", "", ("sa",), True),
    Resource("Event", "events", "", ("ev",), True),
)
_BY_SPELLING = {spelling: r for r in RESOURCES for spelling in r.spellings()}
ALL = tuple(
    _BY_SPELLING[name]
    for name in ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets")
)
"""What ``kubectl get all`` lists (the ``all`` category of the types the sandbox has)."""


def find(spelling: str) -> Resource | None:
    """The resource type a spelling names (case-insensitive), or None."""
    return _BY_SPELLING.get(spelling.lower())


def nearest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The closest of ``choices`` to a mistyped word, if any is close."""
    found = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    return found[0] if found else None


def spellings() -> list[str]:
    """Every resource spelling served, for suggestions."""
    return sorted(_BY_SPELLING)
