"""After a change, the objects alive are left out of automatic collections, and a reference
cycle that became garbage meanwhile is collected at the next full collection, which comes every
``FULL_COLLECTION_EVERY`` changes.

Upstream: CPython's ``gc.freeze`` ("Freeze all the objects tracked by the garbage collector;
move them to a permanent generation and ignore them in all the future collections") and
``gc.unfreeze`` ("Unfreeze the objects in the permanent generation, put them back into the
oldest generation"), the Python standard library's gc module documentation.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from labkit.sandbox import collection


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    """The collector as it was: nothing left frozen by these tests."""
    yield
    gc.unfreeze()


def test_a_change_freezes_what_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collection, "_changes", 0)
    gc.unfreeze()
    kept = [Node() for _ in range(10)]
    collection.after_change()
    assert gc.get_freeze_count() >= len(kept)


def test_a_frozen_cycle_is_collected_at_the_next_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collection, "_changes", 0)
    a, b = Node(), Node()
    a.other, b.other = b, a
    watch = weakref.ref(a)
    del a, b
    collection.after_change()  # the cycle, garbage already, is frozen with the rest
    for _ in range(collection.FULL_COLLECTION_EVERY - 2):
        collection.after_change()
        gc.collect()
        assert watch() is not None
    collection.after_change()
    assert watch() is None
