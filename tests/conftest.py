"""Shared test settings: tiers are chosen by folder and marker, never silently skipped."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/sandbox as `sandbox` and skip it, with the reason, when not
    root."""
    not_root = os.geteuid() != 0
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}tests{os.sep}sandbox{os.sep}" in path:
            item.add_marker(pytest.mark.sandbox)
            if not_root:
                item.add_marker(
                    pytest.mark.skip(
                        reason=(
                            "sandbox tests build real network namespaces and need root: run "
                            "`sudo make test`"
                        )
                    )
                )


@pytest.fixture(autouse=True)
def progress_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Graded attempts a test records go to a file of its own, never the learner's
    ~/.labkit/progress.jsonl."""
    path = tmp_path_factory.mktemp("progress") / "progress.jsonl"
    monkeypatch.setenv("LABKIT_PROGRESS", str(path))
    return path
