"""The three patch types of ``kubectl patch``, applied to an object as the API server applies
them (pure):

- ``strategic``: maps merge, ``null`` removes a key, and the lists Kubernetes declares with a
  merge key merge item by item (Service ``spec.ports`` by ``port``; a pod spec's ``containers``,
  ``initContainers`` and ``volumes`` by ``name``, a container's ``ports`` by ``containerPort``,
  ``env`` by ``name``, ``volumeMounts`` by ``mountPath``); every other list is replaced.
  ``$patch: delete`` drops a list item or a map, ``$patch: replace`` replaces a map.
- ``merge`` (RFC 7386): maps merge, ``null`` removes a key, lists are replaced.
- ``json`` (RFC 6902): a list of ``add``, ``remove`` and ``replace`` operations on JSON
  pointers (``/spec/ports/0/targetPort``, ``-`` to append).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

PATCH_TYPES = ("json", "merge", "strategic")
JSON_OPS = ("add", "remove", "replace")
_POD_LISTS = {
    ("containers",): "name",
    ("initContainers",): "name",
    ("volumes",): "name",
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("containers", "env"): "name",
    ("initContainers", "env"): "name",
    ("containers", "volumeMounts"): "mountPath",
    ("initContainers", "volumeMounts"): "mountPath",
}
_POD_SPEC_AT = {
    "Pod": ("spec",),
    **dict.fromkeys(
        ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"), ("spec", "template", "spec")
    ),
}


class PatchError(Exception):
    """A patch that cannot be applied, with the reason as the API server words it."""


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The merge key of the list at ``path`` (map keys only, no indexes) in a ``kind``, or None
    for a list a strategic merge replaces."""
    if kind == "Service" and path == ("spec", "ports"):
        return "port"
    prefix = _POD_SPEC_AT.get(kind)
    if prefix is not None and path[: len(prefix)] == prefix:
        return _POD_LISTS.get(path[len(prefix) :])
    return None


def apply_patch(obj: Mapping[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """``obj`` with ``patch`` applied (a new object; ``obj`` is left alone)."""
    if patch_type == "json":
        result = json_patch(obj, patch)
    else:
        if not isinstance(patch, Mapping):
            raise PatchError(f"a {patch_type} patch must be a map of fields, not {_shape(patch)}")
        if patch_type == "merge":
            result = merge_patch(obj, patch)
        else:
            result = strategic_merge(obj, patch, str(obj.get("kind", "")))
    if not isinstance(result, dict):
        raise PatchError(f"the patched object is {_shape(result)}, not a map of fields")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` merged into ``target``."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(copy.deepcopy(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Mapping[str, Any], kind: str) -> Any:
    """Kubernetes' strategic merge of ``patch`` into ``target`` for the lists named above."""
    return _merge_map(target, patch, kind, ())


def _merge_map(target: Any, patch: Mapping[str, Any], kind: str, path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    rest = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive == "replace":
        return copy.deepcopy(rest)
    if directive is not None:
        raise PatchError(f"unknown patch type: {directive!r} in map")
    for key in rest:
        if key.startswith("$"):
            raise PatchError(f"labkit kubectl does not serve the {key} directive")
    result = dict(copy.deepcopy(target)) if isinstance(target, Mapping) else {}
    for key, value in rest.items():
        here = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            merged = _merge_map(result.get(key), value, kind, here)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and merge_key(kind, here) is not None:
            result[key] = _merge_list(result.get(key), value, kind, here)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(target: Any, patch: list[Any], kind: str, path: tuple[str, ...]) -> list[Any]:
    key = merge_key(kind, path)
    assert key is not None  # only called for keyed lists
    result = list(copy.deepcopy(target)) if isinstance(target, list) else []
    for item in patch:
        if not isinstance(item, Mapping) or key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        at = next(
            (
                i
                for i, old in enumerate(result)
                if isinstance(old, Mapping) and old.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if at is not None:
                del result[at]
            continue
        if at is None:
            merged = _merge_map({}, item, kind, path)
            if merged is not None:
                result.append(merged)
        else:
            merged = _merge_map(result[at], item, kind, path)
            if merged is None:
                del result[at]
            else:
                result[at] = merged
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 ``add``, ``remove`` and ``replace`` applied in order."""
    if not isinstance(operations, list):
        raise PatchError(f"a json patch must be a list of operations, not {_shape(operations)}")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, Mapping):
            raise PatchError(f"a json patch operation must be a map, not {_shape(operation)}")
        op, path = operation.get("op"), operation.get("path")
        if op not in JSON_OPS:
            raise PatchError(
                f"labkit kubectl serves the json patch operations {', '.join(JSON_OPS)}, not {op!r}"
            )
        if not isinstance(path, str):
            raise PatchError(f"{op} operation needs a path (a JSON pointer such as /spec/replicas)")
        if op != "remove" and "value" not in operation:
            raise PatchError(f"{op} operation needs a value")
        doc = _operate(doc, str(op), path, operation.get("value"))
    return doc


def pointer(path: str) -> list[str]:
    """A JSON pointer's tokens (``~1`` is ``/``, ``~0`` is ``~``)."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {path}')
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _operate(doc: Any, op: str, path: str, value: Any) -> Any:
    tokens = pointer(path)
    if not tokens:
        if op == "remove":
            raise PatchError("remove operation does not apply: cannot remove the whole object")
        return copy.deepcopy(value)
    parent: Any = doc
    for token in tokens[:-1]:
        parent = _child(parent, token, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if op != "add" and last not in parent:
            raise PatchError(f"{op} operation does not apply: doc is missing path: {path}")
        if op == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        size = len(parent) + (1 if op == "add" else 0)
        index = len(parent) if op == "add" and last == "-" else _index(last, size, path)
        if op == "add":
            parent.insert(index, copy.deepcopy(value))
        elif op == "remove":
            del parent[index]
        else:
            parent[index] = copy.deepcopy(value)
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path: {path}")
    return doc


def _child(node: Any, token: str, op: str, path: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list):
        return node[_index(token, len(node), path)]
    raise PatchError(f"{op} operation does not apply: doc is missing path: {path}")


def _index(token: str, size: int, path: str) -> int:
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")) or int(token) >= size:
        raise PatchError(f"Unable to access invalid index: {token} (in {path})")
    return int(token)


def _shape(value: Any) -> str:
    return {dict: "a map", list: "a list", str: "text", type(None): "null"}.get(
        type(value), type(value).__name__
    )
