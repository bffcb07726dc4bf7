"""The state file's journal, pure: what a change wrote, as operations on the last whole state.

A lab's state is a few megabytes of JSON at 300 pods and 500 Services (issue 18), and one change
touches a few objects of it. So a write appends one line to ``state.journal``: the paths under
which the new state differs from the one before (a value set, or a key gone), found by identity
first (a change shares every object it did not touch) and by equality below that. Each line
names the generation of the whole state (``state.json``) it applies to; rewriting the whole
state (compaction) starts a new generation and a journal holding only its header, so lines of an
older generation are never applied to a newer state. A line without its newline is a write a
killed process left unfinished, and is not part of the state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

DEPTH = 4
"""How deep a difference is looked for: ``store/objects/<kind>/<key>`` is one object."""
GENERATION_KEY = "journal_generation"
"""The key of ``state.json`` naming its generation (removed from the state a reader gets)."""

_MISSING: Any = object()
Operation = list[Any]
"""``[path]`` (the key is gone) or ``[path, value]`` (set), ``path`` a list of keys."""


def delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Operation]:
    """The operations that turn ``old`` into ``new`` (both JSON-ready dicts)."""
    operations: list[Operation] = []
    _diff(old, new, [], operations)
    return operations


def _diff(
    old: Mapping[str, Any], new: Mapping[str, Any], path: list[str], out: list[Operation]
) -> None:
    for key in old.keys() - new.keys():
        out.append([[*path, key]])
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if before is value:
            continue
        if len(path) + 1 < DEPTH and isinstance(before, Mapping) and isinstance(value, Mapping):
            _diff(before, value, [*path, key], out)
        elif before is _MISSING or before != value:
            out.append([[*path, key], value])


def apply(state: dict[str, Any], operations: list[Operation]) -> None:
    """Carry out ``operations`` on ``state`` (freshly read, so edited in place)."""
    for operation in operations:
        path = operation[0]
        target = state
        for key in path[:-1]:
            target = target[key]
        if len(operation) == 1:
            del target[path[-1]]
        else:
            target[path[-1]] = operation[1]


def header(generation: str) -> str:
    """The first line of a new generation's journal."""
    return json.dumps({"generation": generation}) + "\n"


def line(generation: str, operations: list[Operation]) -> str:
    """One change as a journal line."""
    return json.dumps({"generation": generation, "ops": operations}, separators=(",", ":")) + "\n"


def replay(state: dict[str, Any], journal: str) -> tuple[bool, int]:
    """Apply the journal's complete lines of ``state``'s generation to it (in place); returns
    whether the journal belongs to that generation, and how many of its characters were complete
    lines (less than its length after a killed write). Raises ValueError for a damaged line."""
    generation = state.pop(GENERATION_KEY, None)
    complete = journal[: journal.rfind("\n") + 1]
    lines = complete.splitlines()
    if not lines or json.loads(lines[0]).get("generation") != generation:
        return False, len(complete)
    for text in lines[1:]:
        record = json.loads(text)
        if record.get("generation") != generation:
            raise ValueError("a journal line of another generation")
        apply(state, record["ops"])
    return True, len(complete)
