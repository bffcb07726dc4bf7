"""Load Kubernetes manifests from files, YAML text, dicts or lists; name kinds; validate schemas.

Every backend applies through here so a malformed manifest is refused before anything changes.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from labkit import apirules
from labkit.errors import LabError
from labkit.inputs import shown
from labkit.model.ciliumpolicy import schema as cilium_schema

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
_register("CiliumNetworkPolicy", "cilium.io/v2", True, "ciliumnetworkpolicies", "cnp")


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
    Text over the API server's request limit, and YAML whose aliases expand past it, are
    refused before any object is built.
    """
    try:
        return _load(source)
    except RecursionError:
        raise LabError(
            "The manifests are nested too deeply to be Kubernetes objects.",
            "Apply plain manifests (a few levels of mappings and lists).",
        ) from None


def _load(source: Any) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for item in _as_items(source):
        if isinstance(item, Mapping):
            docs.extend(_flatten(copy.deepcopy(dict(item)), "the manifest"))
            continue
        text, origin = _read_text(item)
        if len(text) > apirules.REQUEST_MAX_BYTES:
            raise _too_large(origin)
        try:
            loaded = [d for d in yaml.load_all(text, Loader=_BoundedLoader) if d is not None]
        except _AliasBomb:
            raise _too_large(origin, " once its YAML aliases are expanded") from None
        except yaml.YAMLError as exc:
            raise LabError(
                f"{origin} is not valid YAML: {' '.join(str(exc).split())}",
                "Fix the indentation or syntax at the line shown, then apply again.",
            ) from None
        for doc in loaded:
            if not isinstance(doc, Mapping):
                raise LabError(
                    f"{origin} holds a {type(doc).__name__}, not a Kubernetes object.",
                    "Each YAML document must be a mapping with apiVersion, kind and metadata.",
                )
            docs.extend(_flatten(dict(doc), origin))
    return docs


class _AliasBomb(Exception):
    """A YAML document whose aliases expand past the request limit."""


def _too_large(origin: str, how: str = "") -> LabError:
    limit = apirules.REQUEST_MAX_BYTES // (1024 * 1024)
    return LabError(
        f"{origin} is larger than the API server's {limit} MiB request limit{how}.",
        "Split it into several smaller objects (a ConfigMap holds at most 1 MiB of data).",
    )


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """The size of a composed YAML node with every alias expanded (each node counted once)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.ScalarNode):
        size = len(node.value) + 1
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    else:
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that measures a document before building it: aliases may not expand
    it past the request limit (a "billion laughs" document)."""

    def construct_document(self, node: yaml.Node) -> Any:
        if _expanded_size(node, {}) > apirules.REQUEST_MAX_BYTES:
            raise _AliasBomb
        return super().construct_document(node)


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
                f"Manifest file {shown(str(path), 200)} does not exist.",
                "Check the path (relative paths start at the current folder).",
            )
        if path.stat().st_size > apirules.REQUEST_MAX_BYTES:
            raise _too_large(str(path))
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise LabError(
                f"Cannot read manifest file {path}: "
                f"{'it is not UTF-8 text' if isinstance(exc, UnicodeDecodeError) else exc}.",
                "Pass a YAML or JSON file saved as UTF-8 text.",
            ) from None
    if isinstance(item, str):
        return item, "the manifest text"
    raise LabError(
        f"Cannot read manifests from a {type(item).__name__}.",
        "Pass a file path, YAML text, a dict, or a list of these.",
    )


def _flatten(doc: dict[str, Any], origin: str) -> list[dict[str, Any]]:
    if doc.get("kind") != "List":
        return [doc]
    items = doc.get("items") or []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise LabError(
            f"{origin} holds a List whose items are not all Kubernetes objects.",
            "Give the List's items as a list of mappings with apiVersion, kind and metadata.",
        )
    return [dict(i) for i in items]


def describe(doc: Mapping[str, Any]) -> str:
    """``Kind/name`` (or ``Kind/namespace/name``) for messages, each part short and printable."""
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    ns = meta.get("namespace")
    name = meta.get("name") or meta.get("generateName") or "?"
    scope = f"{shown(ns)}/" if ns else ""
    return f"{shown(doc.get('kind') or '?')}/{scope}{shown(name)}"


_SCHEMA_DIR = f"v{KUBERNETES_VERSION}.0-local-strict"


@functools.lru_cache(maxsize=1)
def _schema_files() -> dict[tuple[str, str], str]:
    """(apiVersion, Kind) -> schema file, for every kind the bundled API definitions serve.

    A fixed table: a manifest's kind and apiVersion are only ever keys into it, never parts of a
    path.
    """
    from kubernetes_validate.utils import schema_contents

    definitions = schema_contents(
        f"kubernetes-json-schema/{_SCHEMA_DIR}/_definitions.json", KUBERNETES_VERSION
    )
    table: dict[tuple[str, str], str] = {}
    for definition in definitions["$defs"].values():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            group_version = f"{group.split('.')[0]}-{version}" if group else version
            table[(f"{group}/{version}" if group else version, kind)] = (
                f"{kind.lower()}-{group_version}.json"
            )
    return table


@functools.lru_cache(maxsize=64)
def _validator(kind: str, api_version: str) -> Any:
    """One compiled schema validator per kind (None when the API serves no such kind), built
    from kubernetes-validate's bundled schemas.

    kubernetes-validate re-reads and recompiles two large JSON files for every document it
    checks; a lab applies dozens, so we keep one validator per kind and reuse it.
    """
    import jsonschema  # type: ignore[import-untyped]  # no stubs; types-jsonschema is not a dependency
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    if (api_version, kind) == (cilium_schema.API_VERSION, cilium_schema.KIND):
        # a CRD's schema: Cilium's, which no Kubernetes release bundles
        return jsonschema.Draft202012Validator(cilium_schema.SCHEMA)
    filename = _schema_files().get((api_version, kind))
    if filename is None:
        return None
    try:
        schema = schema_contents(
            f"kubernetes-json-schema/{_SCHEMA_DIR}/{filename}", KUBERNETES_VERSION
        )
    except FileNotFoundError:
        return None
    definitions = schema_contents(
        f"kubernetes-json-schema/{_SCHEMA_DIR}/_definitions.json", KUBERNETES_VERSION
    )
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(docs: Iterable[Mapping[str, Any]]) -> None:
    """Check every document as the API server would (schema, then its own rules); raise one
    LabError naming each bad field, before anything is applied."""
    found = [problem for doc in docs for problem in problems(doc)]
    if found:
        many = f"{len(found)} problems, so " if len(found) > 1 else ""
        raise LabError(
            f"{'; '.join(found)}; {many}nothing was applied.",
            "Correct the fields named (compare with the kind's page of the Kubernetes API "
            "reference, kubernetes.io/docs/reference/kubernetes-api/), then apply again.",
        )


def problems(doc: Mapping[str, Any]) -> list[str]:
    """What is wrong with one document, each as ``<Kind/name>: at <field>: <why>`` (``[]``:
    the API server would take it)."""
    where = describe(doc)
    kind, api_version, meta = doc.get("kind"), doc.get("apiVersion"), doc.get("metadata")
    if not isinstance(kind, str) or not kind or not isinstance(api_version, str) or not api_version:
        return [f"{where}: at apiVersion and kind: both are required, as text"]
    if not isinstance(meta, Mapping) or not (meta.get("name") or meta.get("generateName")):
        return [f"{where}: at metadata.name: required"]
    too_large = apirules.too_large(doc)
    if too_large is not None:
        return [f"{where}: {too_large}"]
    validator = _validator(kind, api_version)
    if validator is None:
        return [
            f"{where}: at kind: Kubernetes {KUBERNETES_VERSION} serves no kind "
            f"{shown(kind)} in {shown(api_version)}"
        ]
    error = next(iter(validator.iter_errors(dict(doc))), None)
    if error is not None:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [p for p in error.validator_value if p not in error.instance]
            return [f"{where}: at {path[1:] + '.' if path else ''}{missing[0]}: required"]
        return [f"{where}: at {path[1:] or '(top level)'}: {' '.join(error.message.split())[:200]}"]
    return [f"{where}: {problem}" for problem in apirules.problems(doc)]


def namespace_of(doc: Mapping[str, Any], default: str = "default") -> str | None:
    """The namespace an object lands in (None for cluster-scoped kinds)."""
    if not is_namespaced(str(doc.get("kind", ""))):
        return None
    return (doc.get("metadata") or {}).get("namespace") or default
