"""What the write verbs share: naming objects as kubectl prints them (``deployment.apps/web``),
reading live objects, turning a live object back into a manifest, checking documents the way the
API server would (every document before any is applied), and writing through the Lab seam."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit import manifests
from labkit.errors import LabError
from labkit.kubectl import resources
from labkit.kubectl.fetch import not_found
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.resources import Resource
from labkit.kubectl.sources import Document
from labkit.lab import Lab, ObjectRef

READ_ONLY_KINDS = ("Node", "Event")
"""Served types the sandbox's API server computes itself: nothing writes them."""
SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields")
"""Metadata the API server sets; a manifest made from a live object leaves them out."""
SEPARATE_TYPE = (
    "error: there is no need to specify a resource type as a separate argument when passing "
    "arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of "
    "'kubectl get resource resource/<resource_name>'"
)


def writable(kind: str) -> Resource | None:
    """The served type of a manifest's kind that the sandbox stores, or None."""
    found = resources.find(kind)
    return None if found is None or found.kind in READ_ONLY_KINDS else found


def plural(resource: Resource) -> str:
    """``plural.group``, as the API server names a type in its errors."""
    return resource.plural + (f".{resource.group}" if resource.group else "")


def named(resource: Resource, name: str) -> str:
    """``kind.group/name``, as kubectl prints an object it changed."""
    return f"{resource.qualified}/{name}"


def targets(words: Sequence[str], *, names_needed: bool = True) -> list[tuple[Resource, str]]:
    """``TYPE NAME...`` or ``TYPE/NAME...`` as (type, name) pairs (a bare ``TYPE`` gives one
    pair with an empty name when ``names_needed`` is false), with kubectl's errors."""
    if not words:
        return []
    if "/" not in words[0]:
        resource = type_of(words[0])
        if len(words) == 1:
            if names_needed:
                raise KubectlError("error: resource(s) were provided, but no name was specified")
            return [(resource, "")]
        if any("/" in word for word in words[1:]):
            raise KubectlError(SEPARATE_TYPE)
        return [(resource, name) for name in words[1:]]
    if any("/" not in word for word in words):
        raise KubectlError(SEPARATE_TYPE)
    return [(type_of(w.partition("/")[0]), w.partition("/")[2]) for w in words]


def type_of(word: str) -> Resource:
    """The served type a word names, or kubectl's error for one the server does not have."""
    resource = resources.find(word)
    if resource is None:
        raise KubectlError(f'error: the server doesn\'t have a resource type "{word}"')
    return resource


def live(lab: Lab, resource: Resource, name: str, namespace: str) -> dict[str, Any] | None:
    """The object as the lab holds it now, or None."""
    scope = namespace if resource.namespaced else None
    found = lab.get(resource.kind, name, scope)
    return found[0] if found else None


def must_exist(lab: Lab, resource: Resource, name: str, namespace: str) -> dict[str, Any]:
    """The live object, or kubectl's NotFound error."""
    obj = live(lab, resource, name, namespace)
    if obj is None:
        raise KubectlError(not_found(resource, name))
    if resource.kind in READ_ONLY_KINDS:
        raise KubectlError(
            f"error: labkit kubectl on the sandbox cannot change {resource.plural}: the sandbox "
            "computes them itself (use a Kind lab to change them)"
        )
    return obj


def manifest_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A live object as a manifest to apply again: no status, no server-set metadata."""
    doc = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = doc.get("metadata") or {}
    doc["metadata"] = {k: v for k, v in meta.items() if k not in SERVER_FIELDS}
    return doc


def write(lab: Lab, docs: list[dict[str, Any]], namespace: str) -> list[ObjectRef]:
    """Apply documents already checked, all or nothing, through the Lab seam; the refs name
    what was written (generated names included)."""
    try:
        return list(lab.apply(docs, namespace))
    except LabError as exc:
        raise KubectlError(f"error: {exc.what}") from None


@dataclass(frozen=True)
class Problem:
    """One refused document: its line when it is the only error, and among several."""

    alone: str
    among: str


def invalid(kind: str, name: str, causes: list[str], during: str) -> Problem:
    """The API server's Invalid error, as kubectl prints it alone (``The Service "web" is
    invalid: ...``) and among others (``Error from server (Invalid): error when ...``)."""
    head = f'{kind} "{name}" is invalid'
    alone = f"The {head}: " + (causes[0] if len(causes) == 1 else "\n* " + "\n* ".join(causes))
    detail = causes[0] if len(causes) == 1 else f"[{', '.join(causes)}]"
    prefix = f"error when {during}: " if during else ""
    return Problem(alone, f"Error from server (Invalid): {prefix}{head}: {detail}")


def plain(line: str) -> Problem:
    """An error printed the same alone or among others."""
    return Problem(line, line)


def report(problems: Sequence[Problem]) -> str:
    """The stderr kubectl prints for these errors (one: unwrapped; several: one line each)."""
    if len(problems) == 1:
        return problems[0].alone + "\n"
    return "".join(p.among + "\n" for p in problems)


def causes(doc: Mapping[str, Any]) -> list[str]:
    """What the API server would refuse in ``doc``, each as ``field: why``."""
    prefix = manifests.describe(doc) + ": "
    return [p.removeprefix(prefix).removeprefix("at ") for p in manifests.problems(doc)]


def not_modelled(kind: str, version: str, name: str, source: str) -> str:
    """The line for a document of a kind the sandbox does not store."""
    return (
        f"error: labkit kubectl on the sandbox does not model {kind} objects "
        f'({version}, "{name}" in {source}); use a Kind lab for them'
    )


def check(
    lab: Lab, documents: Sequence[Document], namespace: str, enforced: bool, verb: str
) -> list[Problem]:
    """Every reason the API server would refuse a document of ``verb`` (apply or create) or the
    namespace it lands in, before any is applied."""
    namespaces = {n["metadata"]["name"] for n in lab.get("namespaces", namespace=None)}
    found = []
    for item in documents:
        problem = _problem(lab, item, namespace, enforced, verb, namespaces)
        if problem is not None:
            found.append(problem)
    return found


def _problem(
    lab: Lab,
    item: Document,
    namespace: str,
    enforced: bool,
    verb: str,
    namespaces: set[str],
) -> Problem | None:
    """Why one document would be refused, or None; a Namespace it makes joins ``namespaces``."""
    doc, source = item.doc, item.source
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if not kind or not version or not isinstance(kind, str) or not isinstance(version, str):
        missing = [f"{f} not set" for f, v in (("apiVersion", version), ("kind", kind)) if not v]
        return plain(
            f'error: error validating "{source}": error validating data: '
            f"[{', '.join(missing) or 'apiVersion and kind must be text'}]; if you choose "
            "to ignore these errors, turn validation off with --validate=false"
        )
    meta = doc["metadata"] if isinstance(doc.get("metadata"), Mapping) else {}
    name = str(meta.get("name") or meta.get("generateName") or "")
    doc_ns = meta.get("namespace")
    problems = causes(doc)
    if any(p.startswith("kind: Kubernetes ") for p in problems):
        return plain(
            f'error: resource mapping not found for name: "{name}" namespace: '
            f'"{doc_ns or ""}" from "{source}": no matches for kind "{kind}" in version '
            f'"{version}"\nensure CRDs are installed first'
        )
    resource = writable(kind)
    if resource is None:
        return plain(not_modelled(kind, version, name, source))
    lands = (doc_ns or namespace) if resource.namespaced else ""
    if problems:
        new = verb == "create" or live(lab, resource, name, lands or namespace) is None
        return invalid(kind, name, problems, f'{"creating" if new else "applying"} "{source}"')
    if kind == "Namespace":
        namespaces.add(name)
    if not resource.namespaced:
        return None
    if enforced and doc_ns and doc_ns != namespace:
        return plain(
            f'error: the namespace from the provided object "{doc_ns}" does not match '
            f"the namespace \"{namespace}\". You must pass '--namespace={doc_ns}' to "
            "perform this operation."
        )
    if lands not in namespaces:
        return plain(
            f'Error from server (NotFound): error when creating "{source}": namespaces '
            f'"{lands}" not found'
        )
    return None
