"""Ages on a real sandbox lab are wall-clock ages: a pod applied now shows an AGE of seconds in
`labkit kubectl get pods` and a creationTimestamp within seconds of now; the nodes carry the time
the lab was made; the lab's uid stays what it was. Lab ``tage``, Flannel."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from labkit.printers.ages import parse_time

pytestmark = pytest.mark.sandbox
LAB = "tage"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "fresh", "labels": {"app": "fresh"}},
    "spec": {"containers": [{"name": "app", "image": AGNHOST, "args": ["netexec"]}]},
}
SLACK = timedelta(seconds=5)


@pytest.fixture(scope="module")
def made():
    """The lab, with the wall-clock times just before and just after ``up``."""
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    before = datetime.now(timezone.utc)
    lab = backend.up(LAB, "flannel", quiet=True)
    after = datetime.now(timezone.utc)
    try:
        yield lab, before, after
    finally:
        backend.down(LAB)


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", "kubectl", "--name", LAB, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def seconds(age: str) -> int:
    """An AGE cell of under two minutes (``42s``) in seconds; fails on anything longer."""
    assert age.endswith("s") and age[:-1].isdigit(), f"AGE {age!r} is not a few seconds"
    return int(age[:-1])


def test_a_pod_applied_now_is_seconds_old(made):
    lab, _, _ = made
    uid = lab.uid()
    lab.apply([POD])
    applied = datetime.now(timezone.utc)
    (pod,) = lab.get("pods", "fresh")
    created = parse_time(pod["metadata"]["creationTimestamp"])
    assert created is not None and abs(created - applied) < SLACK
    assert parse_time(pod["status"]["startTime"]) == created
    done = kubectl("get", "pods")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split()[4] == "AGE"
    (row,) = [line.split() for line in lines if line.split()[0] == "fresh"]
    assert seconds(row[4]) < 60
    assert lab.uid() == uid


def test_nodes_and_system_pods_carry_the_time_the_lab_was_made(made):
    lab, before, after = made
    stamps = {
        parse_time(obj["metadata"]["creationTimestamp"])
        for obj in lab.get("nodes", namespace=None) + lab.get("pods", namespace="kube-system")
    }
    (born,) = stamps
    assert born is not None and before - timedelta(seconds=1) <= born <= after
    done = kubectl("get", "nodes")
    assert done.returncode == 0, done.stderr
    for row in (line.split() for line in done.stdout.splitlines()[1:]):
        assert seconds(row[3]) < 60
