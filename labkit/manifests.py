"""Load Kubernetes manifests from files, YAML text, dicts or lists; name kinds; validate schemas.

Every backend applies through here so a malformed manifest is refused before anything changes.
"""

from __future__ import annotations

import copy
import functools
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import LabError

KUBERNETES_VERSION = "1.36"
"""The Kubernetes minor our pinned Kind node image runs; schemas are checked against it."""

# kubectl spelling (lower case) -> (Kind, apiVersion, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {}


def _register(kind: str, api_version: str, namespaced: bool, *spellings: str) -> None:
    for spelling in (kind.lower(), *spellings):
        _KINDS[spelling] = (kind, api_version, namespaced)


_register("Namespace", "v1", False, "namespaces", "ns")
_register("Node", "v1", False, "nodes", "no")
_register("Pod", "v1", True, "pods", "po")
_register("Service", "v1", True, "services", "svc")
_register("Endpoints", "v1", True, "endpoint", "ep")
_register("ConfigMap", "v1", True, "configmaps", "cm")
_register("Secret", "v1", True, "secrets")
_register("ServiceAccount", "v1", True, "serviceaccounts", "sa")
_register("Deployment", "apps/v1", True, "deployments", "deploy")
_register("ReplicaSet", "apps/v1", True, "replicasets", "rs")
_register("DaemonSet", "apps/v1", True, "daemonsets", "ds")
_register("StatefulSet", "apps/v1", True, "statefulsets", "sts")
_register("EndpointSlice", "discovery.k8s.io/v1", True, "endpointslices")
_register("NetworkPolicy", "networking.k8s.io/v1", True, "networkpolicies", "netpol")
_register("Ingress", "networking.k8s.io/v1", True, "ingresses", "ing")
_register("IngressClass", "networking.k8s.io/v1", False, "ingressclasses")


def canonical_kind(spelling: str) -> str:
    """kubectl's spellings (``svc``, ``pods``, ``NetworkPolicy``) -> the Kind name."""
    entry = _KINDS.get(spelling.strip().lower())
    if entry is None:
        known = sorted({k for k, _, _ in _KINDS.values()})
        raise LabError(
            f"Unknown kind {spelling!r}.", f"Use a Kubernetes kind such as {', '.join(known)}."
        )
    return entry[0]


def is_namespaced(kind: str) -> bool:
    """Whether objects of this kind live in a namespace (Namespace and Node do not)."""
    entry = _KINDS.get(kind.lower())
    return True if entry is None else entry[2]


def api_version_of(kind: str) -> str:
    """The apiVersion we use for a kind (for objects a backend creates itself)."""
    return _KINDS[canonical_kind(kind).lower()][1]


def load(source: Any) -> list[dict[str, Any]]:
    """Read manifests from a path, YAML/JSON text, a dict, or a list of any of these.

    ``List`` objects are flattened; empty documents are dropped; each result is a deep copy.
    """
    docs: list[dict[str, Any]] = []
    for item in _as_items(source):
        if isinstance(item, Mapping):
            docs.extend(_flatten(copy.deepcopy(dict(item))))
            continue
        text, origin = _read_text(item)
        try:
            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise LabError(
                f"{origin} is not valid YAML: {exc}",
                "Fix the indentation or syntax at the line shown, then apply again.",
            ) from None
        for doc in loaded:
            if not isinstance(doc, Mapping):
                raise LabError(
                    f"{origin} holds a {type(doc).__name__}, not a Kubernetes object.",
                    "Each YAML document must be a mapping with apiVersion, kind and metadata.",
                )
            docs.extend(_flatten(dict(doc)))
    return docs


def _as_items(source: Any) -> list[Any]:
    if isinstance(source, (str, Path, Mapping)):
        return [source]
    if isinstance(source, Iterable):
        return list(source)
    raise LabError(
        f"Cannot read manifests from a {type(source).__name__}.",
        "Pass a file path, YAML text, a dict, or a list of these.",
    )


def _read_text(item: Any) -> tuple[str, str]:
    if isinstance(item, Path) or (
        isinstance(item, str) and "\n" not in item and item.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(item)
        if not path.is_file():
            raise LabError(
                f"Manifest file {path} does not exist.",
                "Check the path (relative paths start at the current folder).",
            )
        return path.read_text(), str(path)
    if isinstance(item, str):
        return item, "the manifest text"
    raise LabError(
        f"Cannot read manifests from a {type(item).__name__}.",
        "Pass a file path, YAML text, a dict, or a list of these.",
    )


def _flatten(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("kind") == "List":
        return [dict(i) for i in doc.get("items") or []]
    return [doc]


def describe(doc: Mapping[str, Any]) -> str:
    """``Kind/name`` (or ``Kind/namespace/name``) for messages."""
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc.get('kind', '?')}/{ns + '/' if ns else ''}{meta.get('name', '?')}"


@functools.lru_cache(maxsize=64)
def _validator(kind: str, api_version: str, version: str) -> Any:
    """One compiled schema validator per kind, built from kubernetes-validate's bundled schemas.

    kubernetes-validate re-reads and recompiles two large JSON files for every document it
    checks; a lab applies dozens, so we keep one validator per kind and reuse it.
    """
    import jsonschema  # type: ignore[import-untyped]  # no stubs; types-jsonschema is not a dependency
    import kubernetes_validate
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    schema_dir = f"v{version}.0-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(
            version=version, kind=kind, api_version=api_version
        ) from None
    definitions = schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(docs: Iterable[Mapping[str, Any]], version: str = KUBERNETES_VERSION) -> None:
    """Check every document against the Kubernetes schema; raise one LabError listing all
    problems."""
    # jsonschema imports the optional IRI grammar (rfc3987_syntax) when it is installed, which
    # costs about 1.5 s; Kubernetes schemas use no IRI formats and we check no formats at all.
    # None in sys.modules makes that import fail at once, as if the module were not installed.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import kubernetes_validate

    problems: list[str] = []
    for doc in docs:
        where = describe(doc)
        if not doc.get("apiVersion") or not doc.get("kind"):
            problems.append(f"{where}: needs both apiVersion and kind")
            continue
        if not (doc.get("metadata") or {}).get("name") and not (doc.get("metadata") or {}).get(
            "generateName"
        ):
            problems.append(f"{where}: needs metadata.name")
            continue
        try:
            error = next(
                iter(
                    _validator(str(doc["kind"]), str(doc["apiVersion"]), version).iter_errors(
                        dict(doc)
                    )
                ),
                None,
            )
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{where}: no schema for {doc['apiVersion']} {doc['kind']} in Kubernetes {version}"
            )
            continue
        if error is not None:
            path = ".".join(str(p) for p in error.path) or "(top level)"
            problems.append(f"{where}: at {path}: {error.message}")
            continue
        problems.extend(f"{where}: {problem}" for problem in _api_server_rules(doc))
    if problems:
        raise LabError(
            "These manifests are not valid Kubernetes objects, so nothing was applied:\n  - "
            + "\n  - ".join(problems),
            "Correct the fields named above (compare with the kind's page of the Kubernetes API "
            "reference, kubernetes.io/docs/reference/kubernetes-api/), then apply again.",
        )


def _api_server_rules(doc: Mapping[str, Any]) -> list[str]:
    """Rules the API server enforces that the OpenAPI schema leaves optional (so both backends
    refuse the same objects): every container needs an image."""
    spec = doc.get("spec") or {}
    pod_spec = (spec.get("jobTemplate") or {}).get("spec") or spec
    pod_spec = (pod_spec.get("template") or {}).get("spec") or pod_spec
    problems = []
    for field in ("initContainers", "containers"):
        for i, container in enumerate(pod_spec.get(field) or []):
            if isinstance(container, Mapping) and not container.get("image"):
                problems.append(
                    f"at spec.{field}[{i}].image: "
                    f"container {container.get('name', i)!r} has no image"
                )
    return problems


def namespace_of(doc: Mapping[str, Any], default: str = "default") -> str | None:
    """The namespace an object lands in (None for cluster-scoped kinds)."""
    if not is_namespaced(str(doc.get("kind", ""))):
        return None
    return (doc.get("metadata") or {}).get("namespace") or default
