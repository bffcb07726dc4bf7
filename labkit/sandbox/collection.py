"""A lab's long-lived state and Python's cyclic garbage collector (issue 18).

Between changes a lab process keeps its cluster state, its store and the data plane's caches:
over 100,000 containers at 300 pods, 500 Services and 300 policies. The collector's full pass
walks every one of them (55 ms on the 2-CPU machine), and the objects each change leaves behind
trigger one about every third change. Frozen after each change (``gc.freeze``), those objects are
left out of later collections; reference counting still frees them when a later change replaces
them. Only a reference cycle that becomes garbage while frozen waits: every
``FULL_COLLECTION_EVERY`` changes everything is unfrozen and collected once.
"""

from __future__ import annotations

import gc
import threading

FULL_COLLECTION_EVERY = 64
"""How many changes apart the frozen objects are collected (a full pass each time)."""

_changes = 0
_lock = threading.Lock()


def after_change() -> None:
    """Leave every object alive now out of later automatic collections; every
    ``FULL_COLLECTION_EVERY``-th call first collects everything, frozen objects included."""
    global _changes
    with _lock:
        _changes += 1
        if _changes % FULL_COLLECTION_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()
