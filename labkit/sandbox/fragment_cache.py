"""Rendered rule fragments, reused while what they are rendered from is unchanged.

A change to one object used to re-render every node's policy and kube-proxy rules from every
object (issue 18). The renderers are pure functions of their arguments, so a fragment is kept
per node and renderer with the arguments it came from, and rendered again only when the next
call's arguments differ (``==``). The store replaces an object on a change and never edits it, so
unchanged objects are the very same ones from one pass to the next and compare by identity; a
store read again from its file compares by content, in C. Kubernetes objects as the store admits
them (the schema fixes every field's type) never hold ``1`` where ``True`` was, so equal
arguments render the same fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class FragmentCache:
    """The last fragment per (node, renderer) and the arguments it was rendered from."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[tuple[Any, ...], Any]] = {}
        self.renders = 0
        """How many calls rendered (the rest reused a fragment): what tests count."""

    def render(self, node: str, renderer: Callable[..., T], *args: Any, **derived: Any) -> T:
        """``renderer(*args, **derived)``, reused from the last call for this node and renderer
        when ``args`` equal that call's. ``derived`` is passed on but not compared: only what
        follows from ``args`` (such as them parsed once for every node). Callers must not mutate
        the arguments they passed, nor the result."""
        slot = (node, f"{renderer.__module__}.{renderer.__qualname__}")
        cached = self._entries.get(slot)
        if cached is not None and cached[0] == args:
            fragment: T = cached[1]
            return fragment
        fragment = renderer(*args, **derived)
        self.renders += 1
        self._entries[slot] = (args, fragment)
        return fragment
