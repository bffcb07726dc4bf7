"""CustomResourceDefinitions in one apply batch, pure: which documents are resources of a kind
the batch itself defines, so they are applied only once that CRD is Established (as kubectl
users do with `kubectl wait --for=condition=Established crd/<name>`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.errors import LabError

CRD_KIND = "CustomResourceDefinition"
CRD_API_VERSION = "apiextensions.k8s.io/v1"

KindKey = tuple[str, str]
"""(apiVersion, kind) of a custom resource, e.g. ("example.com/v1", "Widget")."""


def defined_kinds(docs: Sequence[Mapping[str, Any]]) -> dict[KindKey, bool]:
    """Every served version of every kind the batch's CRDs define, mapped to whether its objects
    live in a namespace (``spec.scope``, Namespaced unless Cluster)."""
    kinds: dict[KindKey, bool] = {}
    for doc in docs:
        if doc.get("kind") != CRD_KIND:
            continue
        spec = doc.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        if not group or not kind:
            continue
        namespaced = spec.get("scope", "Namespaced") != "Cluster"
        for version in spec.get("versions") or []:
            if version.get("name") and version.get("served", True):
                kinds[(f"{group}/{version['name']}", str(kind))] = namespaced
    return kinds


def key_of(doc: Mapping[str, Any]) -> KindKey:
    """A document's (apiVersion, kind)."""
    return str(doc.get("apiVersion", "")), str(doc.get("kind", ""))


def split(
    docs: Sequence[dict[str, Any]], defined: Mapping[KindKey, bool]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the documents that can be applied at once, the resources of kinds ``defined`` by the
    batch's CRDs), each in the batch's order."""
    now = [d for d in docs if key_of(d) not in defined]
    later = [d for d in docs if key_of(d) in defined]
    return now, later


def crd_names(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the CRDs in a batch (``<plural>.<group>``), in order."""
    return [
        str((d.get("metadata") or {}).get("name"))
        for d in docs
        if d.get("kind") == CRD_KIND and (d.get("metadata") or {}).get("name")
    ]


def check_names(docs: Sequence[Mapping[str, Any]]) -> None:
    """Refuse custom resources without a name before anything is applied (the API server checks
    the rest against the CRD's schema in its dry run)."""
    unnamed = [str(d.get("kind")) for d in docs if not (d.get("metadata") or {}).get("name")]
    if unnamed:
        raise LabError(
            f"{', '.join(unnamed)}: at metadata.name: required; nothing was applied.",
            "Give every object a metadata.name, then apply again.",
        )
