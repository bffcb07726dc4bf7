"""Rendered rule fragments, reused while what they are rendered from is unchanged.

A change to one object used to re-render every node's policy and kube-proxy rules from every
object (issue 18). The renderers are pure functions of their arguments, so a fragment is kept
per node and renderer with what its arguments were, and rendered again only when the next call's
differ. A list of API objects is compared by each object's uid and resourceVersion: the store
bumps an object's resourceVersion whenever it changes (``World.put``, as the API server does)
and gives a new incarnation a new uid, so equal versions mean equal objects, and comparing them
costs a few tuples instead of every field. Any other argument, or a list holding an object
without both, is compared with ``==``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Versions:
    """A list of API objects, as what identifies each one's content: (uid, resourceVersion)."""

    stamps: tuple[tuple[str, str], ...]


class FragmentCache:
    """The last fragment per (node, renderer) and what its arguments were."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[tuple[Any, ...], Any]] = {}
        self.renders = 0
        """How many calls rendered (the rest reused a fragment): what tests count."""

    def render(self, node: str, renderer: Callable[..., T], *args: Any, **derived: Any) -> T:
        """``renderer(*args, **derived)``, reused from the last call for this node and renderer
        when ``args`` are the same (lists of API objects by version, the rest by ``==``).
        ``derived`` is passed on but not compared: only what follows from ``args`` (such as them
        parsed once for every node). Callers must not mutate the arguments they passed, nor the
        result."""
        key = tuple(_versions(arg) for arg in args)
        slot = (node, f"{renderer.__module__}.{renderer.__qualname__}")
        cached = self._entries.get(slot)
        if cached is not None and cached[0] == key:
            fragment: T = cached[1]
            return fragment
        fragment = renderer(*args, **derived)
        self.renders += 1
        self._entries[slot] = (key, fragment)
        return fragment


def _versions(value: Any) -> Any:
    """A list of API objects as their versions when every one has a uid and a resourceVersion;
    anything else as itself."""
    if not isinstance(value, list) or not value:
        return value
    stamps = []
    for obj in value:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        uid = meta.get("uid") if isinstance(meta, dict) else None
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not uid or not version:
            return value
        stamps.append((uid, version))
    return _Versions(tuple(stamps))
