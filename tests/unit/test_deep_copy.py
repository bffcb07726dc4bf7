"""labkit.model.copying.deep_copy: the store's copies behave like ``copy.deepcopy``
(Python's copy module: equal values, no container shared, shared references kept shared)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from labkit.model.copying import deep_copy

SAMPLES: list[Any] = [
    None,
    True,
    0,
    -1.5,
    "",
    "ünïcode",
    [],
    {},
    {"a": [1, {"b": None, "c": [True, 2.0, "x"]}], "d": {}},
    [[[]], [{}], ({"t": [1]},)],
    {"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "k": (1, "2")},
]


def containers(value: Any) -> list[Any]:
    """Every dict and list inside ``value`` (itself included)."""
    found: list[Any] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += containers(item)
    elif isinstance(value, (list, tuple)):
        if isinstance(value, list):
            found.append(value)
        for item in value:
            found += containers(item)
    return found


@pytest.mark.parametrize("value", SAMPLES)
def test_equal_to_deepcopy_and_shares_no_container(value: Any) -> None:
    """copy.deepcopy's contract: the copy equals the original and no mutable part is shared."""
    copied = deep_copy(value)
    assert copied == value == copy.deepcopy(value)
    assert type(copied) is type(value)
    originals = {id(c) for c in containers(value)}
    assert not originals & {id(c) for c in containers(copied)}


def test_mutating_the_copy_leaves_the_original() -> None:
    """A change to the store's working copy never reaches the state it was copied from."""
    state = {"objects": {"Pod": {"ns/a": {"metadata": {"labels": {"app": "a"}}}}}}
    copied = deep_copy(state)
    copied["objects"]["Pod"]["ns/a"]["metadata"]["labels"]["app"] = "b"
    copied["objects"]["Pod"]["ns/b"] = {}
    assert state == {"objects": {"Pod": {"ns/a": {"metadata": {"labels": {"app": "a"}}}}}}


def test_shared_references_stay_shared() -> None:
    """Like copy.deepcopy's memo: one object reached twice is copied once."""
    shared = {"x": [1]}
    copied = deep_copy([shared, shared])
    assert copied[0] is copied[1]
    assert copied[0] is not shared
