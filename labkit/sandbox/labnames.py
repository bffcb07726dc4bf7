"""Which sandbox labs are on this machine, from the three places a lab leaves its name: its
state folder ``/run/labkit/<lab>``, its namespaces ``/run/netns/lk-<lab>-<role>`` and their
``/etc/netns`` folders. On a usual host all three can be listed without root, so a user who is
not root can still be told which labs are there (only root can use them)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from labkit.errors import LabError
from labkit.sandbox import naming
from labkit.sandbox.netns import NETNS_DIR
from labkit.values import SeenLabs


def _state_folders(root: Path) -> Callable[[list[str]], set[str]]:
    """The lab names among ``root``'s entries: folders named like a lab."""

    def labs(entries: list[str]) -> set[str]:
        found = set()
        for entry in entries:
            if root.joinpath(entry).is_dir():
                with contextlib.suppress(LabError):
                    found.add(naming.check_lab_name(entry))
        return found

    return labs


def scan(
    state_root: Path = naming.STATE_ROOT,
    netns_dir: Path = NETNS_DIR,
    etc_dir: Path = naming.NETNS_ETC,
) -> SeenLabs:
    """Every lab name these folders hold (a folder that is not there holds none); ``complete``
    is False when one of them could not be listed."""
    found: set[str] = set()
    complete = True
    for folder, labs in (
        (state_root, _state_folders(state_root)),
        (netns_dir, naming.labs_of),
        (etc_dir, naming.labs_of),
    ):
        try:
            entries = os.listdir(folder)
        except FileNotFoundError:
            continue
        except OSError:  # no permission to list it, most likely
            complete = False
            continue
        found |= labs(entries)
    return SeenLabs(tuple(sorted(found)), complete)
