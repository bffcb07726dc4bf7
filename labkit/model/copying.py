"""A fast deep copy of plain data (the store's JSON-shaped state).

The sandbox's store hands out copies (``get``, ``to_dict``, ``from_dict``), and a change's nodes
(a change otherwise shares the settled state's objects: ``World.fork``). ``copy.deepcopy``
walks it in Python, one call per value; a pickle round trip walks it in C, about 3-4 times
faster at 300 pods + 500 Services + 300 policies, and gives the same deep copy: equal values,
no container shared with the original, shared references inside kept shared.
"""

from __future__ import annotations

import pickle
from typing import TypeVar

T = TypeVar("T")


def deep_copy(value: T) -> T:
    """A deep copy of ``value`` (picklable data: dicts, lists, strings, numbers, datetimes...)."""
    copied: T = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return copied
