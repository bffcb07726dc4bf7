"""A sandbox lab's state as its Lab reads and changes it: the state file (cached per version),
both locks around a change, converging the data plane with rollback, and healing what a dead
process left (:meth:`LabState.heal`). :class:`labkit.sandbox.lab.SandboxLab` builds the seam on
it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from labkit.errors import LabError
from labkit.sandbox import handmade, ipsets, leftovers, naming
from labkit.sandbox.capabilities import capabilities_for
from labkit.sandbox.dataplane import DataPlane
from labkit.sandbox.fabric import NodeNet, PodNet
from labkit.sandbox.state import (
    StateFile,
    StateStamp,
    built_pods,
    end_change,
    lab_uid,
    lifecycle_lock,
    pending_change,
    wall_clock,
    with_data_plane,
)

if TYPE_CHECKING:
    from labkit.sandbox.store import ClusterStore

T = TypeVar("T")
log = logging.getLogger("labkit")


@dataclass
class _Cached:
    """The state as last read (and its store, parsed on first use), valid while ``stamp`` is."""

    stamp: StateStamp | None
    state: dict[str, Any]
    store: ClusterStore | None = None
    built: Mapping[str, PodNet] | None = None
    """The pod networks the state records (read-only: a change works on its own copy)."""


class LabState:
    """A sandbox lab's state, locks and healing; the base of ``SandboxLab``."""

    def __init__(self, lab_name: str, state_file: StateFile | None = None) -> None:
        """Open lab ``lab_name`` from its state; ``state_file`` is the one ``up`` holds locked
        while it builds the lab (by default the lab opens its own)."""
        self.name = naming.check_lab_name(lab_name)
        self.state_dir = naming.state_dir(lab_name)
        self._state_file = state_file or StateFile(self.state_dir)
        self._cache: _Cached | None = None
        self.cni: str = self._state()["cni"]
        self.capabilities = capabilities_for(self.cni, ipsets.available())
        self._dataplane = DataPlane(self.name, self.cni, self.state_dir)

    def uid(self) -> str:
        """This lab's identity (new whenever the lab is built again under the same name)."""
        return lab_uid(self._state())

    def _cached(self) -> _Cached:
        """The state as last read, read again when the file changed. Callers keep what this
        returns: ``self._cache`` may be replaced meanwhile by another thread using this lab."""
        stamp = self._state_file.stamp()
        cached = self._cache
        if cached is None or cached.stamp != stamp or stamp is None:
            cached = self._cache = _Cached(stamp, self._state_file.read())
        return cached

    def _state(self) -> dict[str, Any]:
        return self._cached().state

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold both locks for a change; a lab taken down meanwhile is refused before the state
        lock would recreate its folder (which would leave ``/run/labkit/<lab>/lock`` behind)."""
        with lifecycle_lock(self.name):
            self._state()  # raises "the lab was taken down" when the state file is gone
            with self._state_file.locked():
                yield

    def _store(self) -> ClusterStore:
        """The cluster store as last saved (parsed once per state version)."""
        from labkit.sandbox.store import ClusterStore

        cached = self._cached()  # the store is parsed from, and kept with, this one version
        if cached.store is None:
            cached.store = ClusterStore.adopt(cached.state["store"], wall_clock)
        return cached.store

    def _save(
        self, state: Mapping[str, Any], store: ClusterStore, built: Mapping[str, PodNet]
    ) -> None:
        saved = with_data_plane(state, store.snapshot(), built)
        self._state_file.write(saved)
        end_change(self.state_dir)
        self._cache = _Cached(self._state_file.stamp(), saved, store, dict(built))

    def _nodes(self) -> list[NodeNet]:
        return self._dataplane.nodes(self._store())

    def finish_up(self, store: ClusterStore) -> None:
        """The last step of ``up``: start the store's pods (namespaces, the agent's workloads,
        readiness, iptables rules) and record the lab as ready, when ``attach`` finds it."""
        with self._writing():
            state = self._state()
            built: dict[str, PodNet] = {}
            # a full sync: ``up`` may be rebuilding a lab whose rules record outlived its nodes
            self._dataplane.converge(store, built, state.get("outside") or {}, None)
            self._save({**state, "phase": "ready"}, store, built)

    def heal(self) -> None:
        """Make the lab what its state says again when a process died: finish what a command
        killed midway left half done, and restart a workload agent that is gone (cheap when
        nothing is wrong: two directory listings and a connect)."""
        from labkit.sandbox.agent.client import agent_listens

        cached = self._cached()
        if cached.built is None:
            cached.built = built_pods(cached.state)
        state = cached.state
        if (
            pending_change(self.state_dir) is None
            and not leftovers.untracked(self.name, cached.built)
            and handmade.present(self.name)
            == handmade.wanted(self.name, self._nodes(), handmade.recorded(state))
            and agent_listens(str(self.state_dir))
        ):
            return
        with self._writing():
            self._heal_locked()

    def _heal_locked(self) -> None:
        """``heal`` for a caller holding both locks."""
        from labkit.sandbox.agent.client import agent_listens, start_agent
        from labkit.sandbox.store import ClusterStore

        record = handmade.recorded(self._state())
        hand = handmade.settle(self.name, self._nodes(), record)
        if hand != record:
            self._record_hand(hand)
        state = self._state()
        built = built_pods(state)
        touched = pending_change(self.state_dir)
        if touched is None and not leftovers.untracked(self.name, built):
            if not agent_listens(str(self.state_dir)):
                start_agent(str(self.state_dir))  # it serves what workloads.json says
            return
        store = ClusterStore.adopt(state["store"], wall_clock)
        kept, removed = self._dataplane.restore(store, built, touched, state.get("outside") or {})
        self._save(state, store, kept)
        log.info(
            "lab %r: finished what a stopped command left half done (%d pod(s) rebuilt, %d "
            "leftover(s) removed).",
            self.name,
            len(built) - len(kept),
            len(removed),
        )

    def _change(self, mutate: Callable[[ClusterStore], T]) -> T:
        """Run ``mutate`` on a copy of the store, converge the data plane, save; roll back on
        failure."""
        from labkit.sandbox.store import ClusterStore

        with self._writing():
            self._heal_locked()
            cached = self._cached()
            state = cached.state  # never mutated: _save writes a new dict
            outside = state.get("outside") or {}
            if cached.built is None:
                cached.built = built_pods(state)
            built = dict(cached.built)
            routed = self._nodes()
            # the cached state is never changed in place, and neither is a store's (a change
            # replaces it), so the store may share it
            store = ClusterStore.adopt(state["store"], wall_clock)
            result = mutate(store)
            try:
                self._dataplane.converge(store, built, outside, routed)
            except BaseException as exc:
                self._roll_back(state, built, exc, self._dataplane.nodes(store))
                raise
            self._save(state, store, built)
            return result

    def _roll_back(
        self,
        state: Mapping[str, Any],
        built: dict[str, PodNet],
        cause: BaseException,
        routed: list[NodeNet],
    ) -> None:
        from labkit.sandbox.store import ClusterStore

        previous = ClusterStore.adopt(state["store"], wall_clock)
        try:
            self._dataplane.converge(previous, built, state.get("outside") or {}, routed)
            self._save(state, previous, built)
        except Exception as exc:  # the lab is now in an unknown shape: say how to get out
            raise LabError(
                f"Applying failed ({cause}) and restoring lab {self.name!r} failed too.",
                f"Rebuild the lab: `labkit down --name {self.name}` then "
                f"`labkit up --name {self.name}`.",
                output=str(exc),
            ) from cause

    def _node(self, node: str) -> NodeNet:
        nodes = self._nodes()
        for n in nodes:
            if node in (n.name, n.short, n.netns):
                return n
        raise LabError(
            f"There is no node {node!r} in lab {self.name!r}.",
            f"Use one of: {', '.join(n.name for n in nodes)}.",
        )

    def _record_hand(self, made: Mapping[str, list[str]]) -> None:
        """Save which namespaces were made by hand (callers hold both locks)."""
        kept = {node: names for node, names in made.items() if names}
        self._state_file.write({**self._state(), handmade.STATE_KEY: kept, "updated": time.time()})
        self._cache = None
