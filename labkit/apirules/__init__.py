"""Rules the API server enforces that the OpenAPI schema leaves out: names, ports, required pod
specs, label formats and size limits, so both backends refuse the same objects.

``problems(doc)`` lists each broken rule as ``at <field>: <why>`` (the field as kubectl names it,
e.g. ``spec.ports[0].port``). It reads any shape safely: a wrong type is a problem, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from labkit import inputs
from labkit.apirules.fields import Problems, check_labels, check_text, is_map, mib
from labkit.apirules.kinds import KIND_RULES
from labkit.apirules.pods import check_pod_spec_at

REQUEST_MAX_BYTES = 3 * 1024 * 1024
"""The API server refuses request bodies over 3 MiB."""
ANNOTATIONS_MAX_BYTES = 256 * 1024

_NAME_RULES: dict[str, Callable[[str], str | None]] = {
    "Namespace": inputs.dns1123_label,
    "Service": inputs.dns1035_label,
    **dict.fromkeys(
        ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"), inputs.path_segment
    ),
}
"""Name formats that differ from the usual DNS-1123 subdomain."""
_POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def encoded_size(value: Any, limit: int) -> int:
    """Roughly the bytes ``value`` takes as JSON, counting stops just above ``limit`` (so an
    object built from shared references cannot make this walk explode)."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += len(str(item).encode("utf-8", "replace")) + 2
    return total


def too_large(doc: Mapping[str, Any]) -> str | None:
    """The problem when ``doc`` is over the request limit (checked first, before any walk that
    would take long on a huge or alias-built object), or None."""
    if encoded_size(doc, REQUEST_MAX_BYTES) > REQUEST_MAX_BYTES:
        return f"at (whole object): larger than the API server's {mib(REQUEST_MAX_BYTES)} limit"
    return None


def problems(doc: Mapping[str, Any]) -> Problems:
    """Every rule ``doc`` breaks, as ``at <field>: <why>``; [] when the API server would take
    it. Call ``too_large`` first."""
    kind = str(doc.get("kind") or "")
    found: Problems = []
    _metadata(found, kind, doc.get("metadata"), "metadata")
    path = _POD_SPEC_PATHS.get(kind)
    if path is not None:
        check_pod_spec_at(found, doc, path, kind)
    rule = KIND_RULES.get(kind)
    if rule is not None:
        rule(found, doc)
    return found


def _prefix_rule(rule: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """A name rule for generateName, which may end in '-' (the API server's prefix mode)."""

    def check(value: str) -> str | None:
        return rule(value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value)

    return check


def _metadata(found: Problems, kind: str, meta: Any, path: str) -> None:
    if meta is None:
        return
    if not is_map(meta):
        found.append(f"at {path}: must be a mapping")
        return
    rule = _NAME_RULES.get(kind, inputs.dns1123_subdomain)
    check_text(found, f"{path}.name", meta.get("name"), rule)
    check_text(found, f"{path}.generateName", meta.get("generateName"), _prefix_rule(rule))
    check_text(found, f"{path}.namespace", meta.get("namespace"), inputs.dns1123_label)
    check_labels(found, meta.get("labels"), f"{path}.labels")
    annotations = meta.get("annotations")
    if is_map(annotations):
        for key in annotations:
            check_text(found, f"{path}.annotations", key, inputs.qualified_name)
        if encoded_size(annotations, ANNOTATIONS_MAX_BYTES) > ANNOTATIONS_MAX_BYTES:
            found.append(f"at {path}.annotations: larger than {ANNOTATIONS_MAX_BYTES // 1024} KiB")
