"""Live Kind tests: one lab per session, with the CNI from $LABKIT_KIND_CNI (calico by default).

Every test here is marked `kind` and skipped, with the reason shown, when no Docker engine answers
or a needed tool is missing. Run them with `pytest -m kind tests/kind`.

The cluster comes from pytest-kind-ng's session fixture `kind_cluster`, overridden as its README
shows for a cluster of one's own: KindCluster creates it from the lab's rendered config and pinned
node image (kind and kubectl from PATH), and labkit's plan installs the CNI, cloud-provider-kind
and the waits. Time limits: each test function gets pytest-timeout's TEST_TIMEOUT_S (func_only,
so the session fixture is not charged to the first test), and bringing the lab up has its own
budget, UP_BUDGET_S. The cluster is removed on every way out: the fixture's finalizer, a failed or
timed-out bring-up (labkit's execute), SIGTERM/SIGHUP (made SystemExit so finalizers run) and
interpreter exit (atexit); `--keep-cluster` keeps it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_kind import KindCluster

from labkit.console import StepList
from labkit.errors import LabError
from labkit.kind import backend, execute, exits
from labkit.kind.actions import CreateCluster
from labkit.kind.lab import KindLab
from labkit.lab import docker_engine_answers
from labkit.values import DEFAULT_CNI

HERE = Path(__file__).parent
CNI = os.environ.get("LABKIT_KIND_CNI", DEFAULT_CNI)
KUBE_PROXY_MODE = os.environ.get("LABKIT_KIND_KUBE_PROXY_MODE") or None
LAB_NAME = f"lkt-{CNI}"
TEST_TIMEOUT_S = float(os.environ.get("LABKIT_KIND_TEST_TIMEOUT_S", "300"))
"""Each test function's limit (pytest-timeout, func_only)."""
UP_BUDGET_S = float(os.environ.get("LABKIT_KIND_UP_BUDGET_S", "1500"))
"""Creating the cluster and installing its CNI: image pulls on a cold runner take minutes."""
TIMEOUT_METHOD = "signal" if hasattr(signal, "SIGALRM") else "thread"
"""The signal method fails the test and the session goes on to its finalizers; the thread method
(where there is no SIGALRM) ends the process, and then only atexit cleans up."""


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
        item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S, method=TIMEOUT_METHOD, func_only=True))
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Fail the block after ``seconds`` (SIGALRM; pytest-timeout arms it only around test
    functions here), so a stuck bring-up unwinds through labkit's cleanup."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        pytest.fail(f"Kind lab {LAB_NAME!r} was not up within {seconds:.0f} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def kind_cluster(request) -> Iterator[KindCluster]:
    """pytest-kind-ng's KindCluster for lab LAB_NAME, created from labkit's plan (config, image),
    with its CNI installed; removed at the end unless --keep-cluster."""
    keep = request.config.getoption("keep_cluster")
    if LAB_NAME in backend.names():
        backend.down(LAB_NAME)  # left by an earlier run that was killed outright
    made: list[KindCluster] = []

    def create(action: CreateCluster) -> None:
        handle = KindCluster(
            action.name,
            Path(action.kubeconfig),
            image=action.image,
            kind_path=Path(shutil.which("kind") or "kind"),
            kubectl_path=Path(shutil.which("kubectl") or "kubectl"),
        )
        made.append(handle)
        Path(action.kubeconfig).parent.mkdir(parents=True, exist_ok=True)  # KindCluster touches it
        try:
            handle.create(config_file=action.config_path)
        except subprocess.CalledProcessError as exc:  # what pytest-kind-ng 26.7.0 raises
            raise LabError(
                f"kind could not create cluster {action.name!r} (exit {exc.returncode}).",
                "Its output is above; `labkit doctor` checks the usual causes.",
            ) from None

    removal = exits.Once(lambda: backend.down(LAB_NAME))
    if not keep:
        removal.arm()
        request.addfinalizer(removal)
    plan = backend.plan(LAB_NAME, CNI, KUBE_PROXY_MODE)
    with exits.signals_as_exit():
        with budget(UP_BUDGET_S):
            execute.execute(plan, StepList(total=len(plan.steps)), create=create)
        yield made[0]


@pytest.fixture(scope="session")
def lab(kind_cluster) -> KindLab:
    """The Kind Lab on the session's cluster."""
    found = KindLab.attach(kind_cluster.name)
    assert found is not None, f"no {CNI} DaemonSet found on {kind_cluster.name}"
    return found


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
