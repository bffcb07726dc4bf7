"""A sandbox lab used from several threads of one process (`labkit class up`, a scenario's
checks at once, the dashboard's refresh thread): the cached state and the store parsed from it
stay one version, whatever another thread does to the cache in between."""

from __future__ import annotations

from typing import Any

import pytest

from labkit.sandbox.lab_state import LabState
from labkit.sandbox.store import ClusterStore


class _VersionedStateFile:
    """A state file whose version a test moves on (as another process's change would)."""

    def __init__(self, versions: dict[int, dict[str, Any]]) -> None:
        self.versions = versions
        self.version = 1

    def stamp(self) -> int:
        return self.version

    def read(self) -> dict[str, Any]:
        return self.versions[self.version]


def _state(lab_name: str) -> dict[str, Any]:
    return {"cni": "calico", "store": ClusterStore.bootstrap(lab_name, "calico").snapshot()}


@pytest.fixture
def lab_and_file() -> tuple[LabState, _VersionedStateFile]:
    state_file = _VersionedStateFile({1: _state("tlab"), 2: _state("tlab")})
    return LabState("tlab", state_file=state_file), state_file  # type: ignore[arg-type]


def _other_thread_during_parse(monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """Run ``meanwhile`` while the store is being parsed, once: where a thread switch lands
    when another thread uses the same lab."""
    adopt = ClusterStore.adopt
    pending = [meanwhile]

    def adopt_with_switch(data: dict[str, Any], clock: Any = None) -> ClusterStore:
        if pending:
            pending.pop()()
        return adopt(data, clock)

    monkeypatch.setattr(ClusterStore, "adopt", staticmethod(adopt_with_switch))


def test_a_newer_state_read_meanwhile_never_gets_the_older_store(lab_and_file, monkeypatch):
    """CPython may switch threads between any two bytecodes (the GIL's switch interval,
    Python docs: sys.setswitchinterval), so a check-then-act on ``self._cache`` is racy: a
    thread parsing version 1's store while another read version 2 stored v1's store with v2's
    state, and the lab then showed v1's objects until the next change."""
    lab, state_file = lab_and_file

    def newer_version_read_by_another_thread() -> None:
        state_file.version = 2
        lab._state()

    _other_thread_during_parse(monkeypatch, newer_version_read_by_another_thread)
    assert lab._store().snapshot() is state_file.versions[1]["store"]
    assert lab._store().snapshot() is state_file.versions[2]["store"]


def test_a_cache_dropped_meanwhile_is_no_crash(lab_and_file, monkeypatch):
    """A writer drops the cache (SandboxLab.add_outside_address, LabState._record_hand) while a
    reader parses the store: the reader gets the store of the state it read, not an
    AttributeError on None (Python docs: sys.setswitchinterval, switches between bytecodes)."""
    lab, state_file = lab_and_file
    _other_thread_during_parse(monkeypatch, lambda: setattr(lab, "_cache", None))
    assert lab._store().snapshot() is state_file.versions[1]["store"]
