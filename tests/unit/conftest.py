"""Fixtures the unit tests share: the checks' lab double and object builders (``fakes``), an
instant clock for polling checks (``fast_clock``), the fake Kubernetes API server of
fake_apiserver.py and a Kind Lab against it (``fake_api``, ``fake_api_lab``), and a copy of the
class folder in data/classroom (``classroom``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import fakes as fakes_module
import hintcheck
import pytest
from fake_apiserver import FakeAPI

from labkit.checks import result as result_module
from labkit.checks import stages
from labkit.kind import objects
from labkit.kind.lab import KindLab


@pytest.fixture(params=["sandbox", "kind"])
def fakes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The lab double and object builders of tests/unit/fakes.py: ``fakes.web_cluster()``,
    ``fakes.FakeLab([...])``, ``fakes.pod(...)``, ``fakes.service(...)``, ...

    Each test runs once per backend the FakeLab plays, and every hint a check gives in it must
    name only commands that backend has (tests/unit/hintcheck.py)."""
    backend = request.param
    monkeypatch.setattr(fakes_module.FakeLab, "default_backend", backend)
    hints: list[str] = []
    build = stages.make_result

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = build(*args, **kwargs)
        hints.append(result.hint)
        return result

    monkeypatch.setattr(stages, "make_result", watched)
    yield fakes_module
    wrong = {hint: hintcheck.problems(hint, backend) for hint in hints}
    assert not {h: p for h, p in wrong.items() if p}, f"hints wrong on {backend}"


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make polling instant: sleeping advances a fake clock instead of waiting."""
    now = [0.0]
    monkeypatch.setattr(result_module, "clock", lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(result_module, "sleep", sleep)
    return now


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    """A fake API server on loopback (stopped afterwards); the Kind Lab's waits poll it fast."""
    monkeypatch.setattr(objects, "POLL_S", 0.01)
    fake = FakeAPI()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def fake_api_lab(fake_api: FakeAPI) -> KindLab:
    """A calico, iptables-mode Kind Lab named t whose kubeconfig points at ``fake_api``."""
    return KindLab("t", "calico", "iptables", fake_api.kubeconfig)


@pytest.fixture
def classroom(tmp_path: Path) -> Path:
    """A copy of the class folder of progress files in data/classroom, which a test may change."""
    folder = tmp_path / "class"
    shutil.copytree(Path(__file__).parent / "data" / "classroom", folder)
    return folder
