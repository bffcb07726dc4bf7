"""Reading what a get or describe asks for from a Lab (``lab.get``, the same reads the Python
API makes), with kubectl's NotFound lines for names that are not there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labkit.errors import LabError
from labkit.kubectl.args import Request
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.resources import Resource
from labkit.lab import Lab


@dataclass
class Found:
    """The objects found per type, in the order asked, a NotFound line per missing name, and
    the API server's warnings (kubectl prints them first, on stderr)."""

    groups: list[tuple[Resource, list[dict[str, Any]]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def scope(request: Request, resource: Resource) -> str | None:
    """The namespace to read ``resource`` in: None for every namespace or a cluster-scoped
    type."""
    return None if request.all_namespaces or not resource.namespaced else request.namespace


def objects(lab: Lab, request: Request, resource: Resource) -> list[dict[str, Any]]:
    """Every object of a type in the request's scope and selector."""
    if resource.kind == "Event":
        return []  # the sandbox's API server records no Events
    try:
        return lab.get(resource.kind, None, scope(request, resource), request.selector)
    except LabError as exc:
        raise KubectlError(f"error: {exc.what}") from None


def not_found(resource: Resource, name: str) -> str:
    """kubectl's line for a name that is not there (the resource with its API group, as the
    API server names it: ``deployments.apps``)."""
    group = f".{resource.group}" if resource.group else ""
    return f'Error from server (NotFound): {resource.plural}{group} "{name}" not found'


def gather(lab: Lab, request: Request, *, by_prefix: bool = False) -> Found:
    """The objects of each target; ``by_prefix`` lets a name match every object it begins
    (as describe does when no object has the exact name)."""
    found = Found()
    for resource, names in request.targets:
        if resource.warning and resource.warning not in found.warnings:
            found.warnings.append(resource.warning)
        if names and request.all_namespaces:
            raise KubectlError(
                "error: a resource cannot be retrieved by name across all namespaces"
            )
        listed = objects(lab, request, resource)
        if not names:
            found.groups.append((resource, listed))
            continue
        chosen: list[dict[str, Any]] = []
        for name in names:
            exact = [o for o in listed if o["metadata"]["name"] == name]
            prefixed = [o for o in listed if o["metadata"]["name"].startswith(name)]
            matched = exact or (prefixed if by_prefix else [])
            if not matched:
                found.missing.append(not_found(resource, name))
            chosen.extend(matched)
        found.groups.append((resource, chosen))
    return found


def nothing_found(request: Request) -> str:
    """``No resources found`` with the namespace, as kubectl says it on stderr."""
    namespaced = any(r.namespaced for r, _ in request.targets)
    if request.all_namespaces or not namespaced:
        return "No resources found"
    return f"No resources found in {request.namespace} namespace."
