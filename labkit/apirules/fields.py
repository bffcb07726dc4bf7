"""Checks of single fields shared by the API server's rules: text formats, ports, protocols,
lists of mappings. Each appends ``at <field>: <why>`` to a list of problems."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeGuard

from labkit import inputs
from labkit.model.addresses import is_ip

Problems = list[str]
PROTOCOLS = ("TCP", "UDP", "SCTP")


def mib(size: int) -> str:
    """A size in MiB as messages print it (``3 MiB``)."""
    return f"{size / (1024 * 1024):g} MiB"


def is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether a field holds a mapping (any other shape is a problem for the caller)."""
    return isinstance(value, Mapping)


def each_item(found: Problems, value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path[i], item)`` for each mapping in a list field; a wrong shape is a problem."""
    if value is None:
        return
    if not isinstance(value, list):
        found.append(f"at {path}: must be a list")
        return
    for i, item in enumerate(value):
        if is_map(item):
            yield f"{path}[{i}]", item
        else:
            found.append(f"at {path}[{i}]: must be a mapping")


def check_text(found: Problems, path: str, value: Any, rule: Callable[[str], str | None]) -> None:
    """Apply a string rule to a field, when the field is set."""
    if value is None:
        return
    if not isinstance(value, str):
        found.append(f"at {path}: must be text")
        return
    problem = rule(value)
    if problem is not None:
        found.append(f"at {path}: {inputs.shown(value)} {problem}")


def check_port(found: Problems, path: str, value: Any, zero_ok: bool = False) -> None:
    """A port number 1-65535 when set (0 too where ``zero_ok``: "allocate one")."""
    if value is None or (zero_ok and value == 0 and not isinstance(value, bool)):
        return
    problem = inputs.port_number(value)
    if problem is not None:
        found.append(f"at {path}: {problem}")


def check_port_or_name(found: Problems, path: str, value: Any, zero_ok: bool = False) -> None:
    """A port number, or a port name (IANA_SVC_NAME) where the field takes either."""
    if isinstance(value, str):
        check_text(found, path, value, inputs.port_name)
    else:
        check_port(found, path, value, zero_ok)


def check_labels(found: Problems, labels: Any, path: str) -> None:
    """Label keys are qualified names and values label values."""
    if not is_map(labels):
        return
    for key, value in labels.items():
        check_text(found, path, key, inputs.qualified_name)
        if isinstance(value, str):
            check_text(found, f"{path}[{inputs.shown(key)}]", value, inputs.label_value)


def text_list(found: Problems, value: Any, path: str) -> list[str]:
    """A list of strings field ([] when unset); a wrong shape is a problem."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        found.append(f"at {path}: must be a list of text")
        return []
    return value


def check_protocol(found: Problems, path: str, value: Any) -> None:
    """TCP, UDP or SCTP when set."""
    if value is not None and value not in PROTOCOLS:
        found.append(f"at {path}: {inputs.shown(value)} must be one of {', '.join(PROTOCOLS)}")


def address_problem(value: str) -> str | None:
    """A text rule: None for an IP address, else why not."""
    return None if is_ip(value) else "is not an IP address"
