"""Fixtures the unit tests share: the checks' lab double and object builders (``fakes``), and an
instant clock for polling checks (``fast_clock``)."""

from __future__ import annotations

from types import ModuleType

import fakes as fakes_module
import pytest

from labkit.checks import result as result_module


@pytest.fixture
def fakes() -> ModuleType:
    """The lab double and object builders of tests/unit/fakes.py: ``fakes.web_cluster()``,
    ``fakes.FakeLab([...])``, ``fakes.pod(...)``, ``fakes.service(...)``, ..."""
    return fakes_module


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make polling instant: sleeping advances a fake clock instead of waiting."""
    now = [0.0]
    monkeypatch.setattr(result_module, "clock", lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(result_module, "sleep", sleep)
    return now
