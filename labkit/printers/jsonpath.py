"""The part of kubectl's JSONPath templates that scripts and guides use: ``{.a.b}``, ``[n]``,
``[*]`` and ``.*``, ``[?(@.field=="value")]``, ``{range ...}...{end}`` and quoted literals
(``{"\\n"}``). Anything else is refused in one line rather than printed wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SUPPORTED = '.field, [n], [*], [?(@.field=="value")], {range ...}{end} and {"literal"}'


class JsonPathError(ValueError):
    """A template this subset cannot evaluate, with kubectl's ``error:`` line."""


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Path:
    steps: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class _Range:
    path: _Path
    body: tuple[Any, ...]


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_FILTER = re.compile(r'\?\(@((?:\.[\w-]+)+)\s*==\s*(?:"([^"]*)"|\'([^\']*)\'|(-?\d+))\)$')


def parse(template: str) -> tuple[Any, ...]:
    """A template as a tree of text, paths and ranges; JsonPathError when it is outside the
    subset or malformed."""
    parts = re.split(r"(\{[^{}]*\})", template)
    stack: list[list[Any]] = [[]]
    ranges: list[_Path] = []
    for part in parts:
        if not part:
            continue
        if not (part.startswith("{") and part.endswith("}")):
            if "{" in part or "}" in part:
                raise _refuse(template, "unmatched brace")
            stack[-1].append(_Text(part))
            continue
        inner = part[1:-1].strip()
        if inner.startswith("range "):
            ranges.append(_parse_path(inner[6:].strip(), template))
            stack.append([])
        elif inner == "end":
            if not ranges:
                raise _refuse(template, "{end} without {range}")
            body = stack.pop()
            stack[-1].append(_Range(ranges.pop(), tuple(body)))
        elif len(inner) >= 2 and inner[0] == inner[-1] == '"':
            stack[-1].append(_Text(_unescape(inner[1:-1])))
        else:
            stack[-1].append(_parse_path(inner, template))
    if ranges:
        raise _refuse(template, "{range} without {end}")
    return tuple(stack[0])


def _refuse(template: str, why: str) -> JsonPathError:
    return JsonPathError(
        f"error: error parsing jsonpath {template}, {why} (labkit kubectl serves {SUPPORTED}; "
        "-o json shows every field)"
    )


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def _parse_path(text: str, template: str) -> _Path:
    text = text.removeprefix("$")
    if text in ("", "@"):
        return _Path(())
    if ".." in text:
        raise _refuse(template, "recursive descent (..) is not served")
    steps: list[tuple[str, Any]] = []
    position = 0
    text = text.removeprefix("@")
    while position < len(text):
        if text[position] == ".":
            match = re.match(r"\.((?:[^.\[\\]|\\.)+)", text[position:])
            if not match:
                raise _refuse(template, f"no field name after '.' at {text[position:]!r}")
            name = match.group(1).replace("\\.", ".")
            steps.append(("all", None) if name == "*" else ("field", name))
            position += match.end()
        elif text[position] == "[":
            end = text.find("]", position)
            if end < 0:
                raise _refuse(template, "unclosed [")
            steps.append(_bracket(text[position + 1 : end], template))
            position = end + 1
        else:
            raise _refuse(template, f"unexpected {text[position:]!r}")
    return _Path(tuple(steps))


def _bracket(inside: str, template: str) -> tuple[str, Any]:
    inside = inside.strip()
    if inside == "*":
        return ("all", None)
    if re.fullmatch(r"-?\d+", inside):
        return ("index", int(inside))
    match = _FILTER.match(inside)
    if match:
        path, text, quoted, number = match.groups()
        value = text if text is not None else quoted if quoted is not None else number
        return ("filter", (tuple(path.strip(".").split(".")), value))
    raise _refuse(template, f"[{inside}] is not served")


def _step(values: Sequence[Any], step: tuple[str, Any]) -> list[Any]:
    kind, arg = step
    out: list[Any] = []
    for value in values:
        if kind == "field" and isinstance(value, dict) and arg in value:
            out.append(value[arg])
        elif kind == "all" and isinstance(value, list):
            out.extend(value)
        elif kind == "all" and isinstance(value, dict):
            out.extend(value.values())
        elif kind == "index" and isinstance(value, list) and -len(value) <= arg < len(value):
            out.append(value[arg])
        elif kind == "filter" and isinstance(value, list):
            out.extend(item for item in value if _matches(item, *arg))
    return out


def _matches(item: Any, path: tuple[str, ...], wanted: str) -> bool:
    for key in path:
        if not isinstance(item, dict) or key not in item:
            return False
        item = item[key]
    return _show(item) == wanted


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _evaluate(nodes: Sequence[Any], current: Any) -> str:
    out = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Path):
            out.append(" ".join(_show(v) for v in _resolve(node, current)))
        else:
            out.extend(_evaluate(node.body, item) for item in _resolve(node.path, current))
    return "".join(out)


def _resolve(path: _Path, current: Any) -> list[Any]:
    values = [current]
    for step in path.steps:
        values = _step(values, step)
    return values


def render(template: str, data: Any) -> str:
    """``template`` evaluated against ``data`` (missing fields print nothing, as kubectl get's
    jsonpath allows)."""
    return _evaluate(parse(template), data)
