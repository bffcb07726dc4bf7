"""kubectl get's structured outputs: ``-o yaml`` (keys sorted, strings quoted the way Go's
YAML quotes them), ``-o json`` (four-space indent), ``-o name`` and the ``List`` a query of
many objects prints as."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml


def as_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Objects wrapped the way kubectl prints a query of many: a ``v1`` ``List``."""
    return {
        "apiVersion": "v1",
        "items": list(items),
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


class _GoStyleDumper(yaml.SafeDumper):
    """PyYAML emitting what sigs.k8s.io/yaml emits: ambiguous and empty strings in double
    quotes, multi-line strings as literal blocks."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    # the tag a plain scalar would resolve to (PyYAML's stubs leave resolve untyped)
    plain_tag = dumper.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if value == "" or plain_tag != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_GoStyleDumper.add_representer(str, _string)


def to_yaml(data: Any) -> str:
    """``-o yaml``: keys in order, two-space indent, lists flush under their key."""
    return yaml.dump(
        data, Dumper=_GoStyleDumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )


def to_json(data: Any) -> str:
    """``-o json``: four-space indent, fields in the object's own order."""
    return json.dumps(data, indent=4, ensure_ascii=False) + "\n"
