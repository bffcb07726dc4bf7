"""Label selectors as Kubernetes evaluates them (matchLabels and matchExpressions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """True when ``labels`` satisfy a LabelSelector; an empty selector ``{}`` matches everything.

    ``None`` is treated like an empty selector: callers that need "absent selects nothing"
    semantics (e.g. a Service with no selector) must check for absence themselves.
    """
    labels = labels or {}
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key"), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(
                f"unknown matchExpressions operator {op!r}; use one of {', '.join(_OPERATORS)}"
            )
        if not ok:
            return False
    return True


def equality_selector_matches(
    selector: Mapping[str, str] | None, labels: Mapping[str, str] | None
) -> bool:
    """A Service/ReplicaSet-style map selector: every key=value must be present.

    An empty or absent map selects nothing here (a Service without a selector gets no
    automatic endpoints), which is the opposite of an empty LabelSelector.
    """
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == str(v) for k, v in selector.items())


def parse_selector_string(text: str) -> dict[str, Any]:
    """Turn kubectl's ``-l`` syntax (``app=web,tier!=db,env in (a,b),!legacy,team``) into a
    LabelSelector."""
    match_labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    for part in _split_top_level(text):
        part = part.strip()
        if not part:
            continue
        lowered = part.replace("  ", " ")
        if " notin " in lowered or " in " in lowered:
            op = "NotIn" if " notin " in lowered else "In"
            key, _, rest = lowered.partition(" notin " if op == "NotIn" else " in ")
            rest = rest.strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise ValueError(
                    f"selector term {part!r} needs its values in parentheses, e.g. env in (a,b)"
                )
            values = [v.strip() for v in rest[1:-1].split(",") if v.strip()]
            exprs.append({"key": key.strip(), "operator": op, "values": values})
        elif "!=" in part:
            key, value = part.split("!=", 1)
            exprs.append({"key": key.strip(), "operator": "NotIn", "values": [value.strip()]})
        elif "==" in part or "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            match_labels[key.strip()] = value.strip()
        elif part.startswith("!"):
            exprs.append({"key": part[1:].strip(), "operator": "DoesNotExist"})
        else:
            exprs.append({"key": part, "operator": "Exists"})
    selector: dict[str, Any] = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if exprs:
        selector["matchExpressions"] = exprs
    return selector


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
