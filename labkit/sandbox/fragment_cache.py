"""Rendered rule fragments, reused while what they are rendered from is unchanged.

A change to one object used to re-render every node's policy and kube-proxy rules from every
object (issue 18). The renderers are pure functions of their arguments, so a fragment is kept
per node and renderer with the pickled arguments it came from, and rendered again only when
the pickled arguments of the next call differ. Pickling without a memo writes a value out in
full each time it occurs, so the bytes depend on content alone, not on which objects are shared.
Equal bytes unpickle to equal arguments of the same types, so a hit is always what rendering
would return; unequal bytes for equal arguments (another dict order) only cost a render.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class FragmentCache:
    """The last fragment per (node, renderer) and the pickled arguments it was rendered from."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[bytes, Any]] = {}
        self.renders = 0
        """How many calls rendered (the rest reused a fragment): what tests count."""

    def render(self, node: str, renderer: Callable[..., T], *args: Any, **derived: Any) -> T:
        """``renderer(*args, **derived)``, reused from the last call for this node and renderer
        when ``args`` pickle to the same bytes. ``derived`` is passed on but not compared: only
        what follows from ``args`` (such as them parsed once for every node). Callers must not
        mutate the result."""
        key = _content_bytes(args)
        slot = (node, f"{renderer.__module__}.{renderer.__qualname__}")
        cached = self._entries.get(slot)
        if cached is not None and cached[0] == key:
            fragment: T = cached[1]
            return fragment
        fragment = renderer(*args, **derived)
        self.renders += 1
        self._entries[slot] = (key, fragment)
        return fragment


def _content_bytes(value: Any) -> bytes:
    """``value`` pickled without a memo: the same bytes for the same content, however its
    objects are shared (store reads share strings and dicts unpredictably)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(value)
    return out.getvalue()
