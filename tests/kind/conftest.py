"""Live Kind tests: one lab per session, with the CNI from $LABKIT_KIND_CNI (flannel by default).

Every test here is marked `kind` and skipped, with the reason shown, when no Docker engine answers
or a needed tool is missing. Run them with `pytest -m kind tests/kind`.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from labkit.lab import docker_engine_answers

HERE = Path(__file__).parent
CNI = os.environ.get("LABKIT_KIND_CNI", "flannel")
KUBE_PROXY_MODE = os.environ.get("LABKIT_KIND_KUBE_PROXY_MODE") or None
LAB_NAME = f"lkt-{CNI}"


def _skip_reason() -> str | None:
    ok, why = docker_engine_answers()
    if not ok:
        return f"Kind tests need a Docker engine: {why}"
    tools = ["kind", "kubectl"] + (["helm"] if CNI == "cilium" else [])
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        return f"Kind tests need {', '.join(missing)} on PATH"
    return None


def pytest_collection_modifyitems(config, items):
    ours = [i for i in items if HERE in Path(str(i.fspath)).parents]
    if not ours:
        return
    reason = _skip_reason()
    for item in ours:
        item.add_marker(pytest.mark.kind)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab():
    """A fresh Kind lab for the whole session, removed at the end."""
    from labkit.kind import backend

    if LAB_NAME in backend.names():
        backend.down(LAB_NAME)
    the_lab = backend.up(LAB_NAME, CNI, KUBE_PROXY_MODE)
    yield the_lab
    backend.down(LAB_NAME)


@pytest.fixture(scope="session")
def settings() -> dict:
    """The CNI, kube-proxy mode and lab name this session tests."""
    return {"cni": CNI, "kube_proxy_mode": KUBE_PROXY_MODE, "name": LAB_NAME}


@pytest.fixture(scope="session")
def wait_for_pods():
    """The pod-readiness poller, as a fixture so test modules need not import conftest."""
    return _wait_for_pods


def _wait_for_pods(
    lab, namespace: str, selector: str, count: int, timeout: float = 240.0
) -> list[dict]:
    """Poll until ``count`` pods matching ``selector`` are Running and Ready."""
    deadline = time.monotonic() + timeout
    while True:
        pods = lab.get("pods", namespace=namespace, selector=selector)
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])
        ]
        if len(ready) >= count:
            return ready
        if time.monotonic() > deadline:
            raise AssertionError(
                f"pods {selector} in {namespace} not ready: "
                f"{[(p['metadata']['name'], p['status'].get('phase')) for p in pods]}"
            )
        time.sleep(2)
