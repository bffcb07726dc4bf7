"""API discovery kept in memory for one client: the kubernetes client's default writes it to a
file in the shared temp folder keyed only by the server's address, so a lab recreated on the
same port (or another user's lab on one VM) would read kinds a different cluster served."""

from __future__ import annotations

import os

from kubernetes.dynamic.discovery import LazyDiscoverer

NO_CACHE_FILE = os.path.join(os.devnull, "discovery.json")
"""A path that can never exist (its parent is a device), so discovery always starts empty."""


class InMemoryDiscoverer(LazyDiscoverer):
    """LazyDiscoverer that never reads or writes a cache file."""

    def __init__(self, client: object, cache_file: str | None = None) -> None:
        super().__init__(client, NO_CACHE_FILE)

    def _write_cache(self) -> None:
        """Keep discovery in this process only."""
