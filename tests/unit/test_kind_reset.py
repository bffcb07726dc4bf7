"""`labkit reset` on Kind keeps bare Pods: the Kind Lab's delete returns only once its objects are
gone, so the re-apply creates a new Pod instead of updating one that is still terminating and then
vanishes. Against the fake API server of fake_apiserver.py (no Docker)."""

import pytest

from labkit import scenarios
from labkit.errors import LabError
from labkit.kind import objects
from labkit.lab import ObjectRef

SCENARIO = "05-sidecar-logging"  # one bare Pod, default/app-pod


def test_reset_waits_for_the_terminating_pod_then_creates_it_again(fake_api, fake_api_lab):
    """kubernetes/kubectl pkg/cmd/delete/delete.go: `--wait` ("wait for resources to be gone
    before returning. This waits for finalizers.") with `--cascade=foreground`; the API server
    keeps a deleted Pod, with metadata.deletionTimestamp, for its grace period
    (kubernetes pkg/registry/core/pod/strategy.go CheckGracefulDelete), and an apply meanwhile
    only updates the doomed object."""
    scenarios.deploy(fake_api_lab, SCENARIO)
    first = fake_api.objects[("pods", "default", "app-pod")]["metadata"]["uid"]
    fake_api.terminating["app-pod"] = 3  # still there for three reads after the DELETE

    assert scenarios.reset(fake_api_lab, SCENARIO) == [ObjectRef("Pod", "app-pod", "default")]

    pod = fake_api.objects[("pods", "default", "app-pod")]
    assert "deletionTimestamp" not in pod["metadata"]  # a new Pod, not the terminating one
    assert pod["metadata"]["uid"] != first
    calls = [(r.method, r.path.rpartition("/")[2]) for r in fake_api.requests]
    deleted = calls.index(("DELETE", "app-pod?propagationPolicy=Foreground"))
    applied = next(i for i, (method, _) in enumerate(calls) if i > deleted and method == "PATCH")
    # read until the fourth read found it gone, then applied
    assert calls[deleted + 1 : applied] == [("GET", "app-pod")] * 4


def test_delete_gives_up_after_its_bound_naming_what_still_terminates(
    fake_api, fake_api_lab, monkeypatch
):
    """kubernetes/kubectl pkg/cmd/delete/delete.go: `--timeout`, the wait for deletion is
    bounded; a Pod held by a finalizer stays terminating."""
    monkeypatch.setattr(objects, "DELETE_WAIT_S", 0.05)
    fake_api.add("pods", {"metadata": {"name": "stuck", "namespace": "shop", "uid": "u1"}})
    fake_api.terminating["stuck"] = 10**6
    with pytest.raises(LabError) as err:
        fake_api_lab.delete(ObjectRef("Pod", "stuck", "shop"))
    assert err.value.what == "Still terminating after 0 s: Pod shop/stuck."
    assert "metadata.finalizers" in err.value.fix


def test_a_new_object_of_the_same_name_ends_the_wait(fake_api, fake_api_lab, monkeypatch):
    """kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go ObjectMeta.UID: an
    object created again under the same name (a StatefulSet's Pod) has a new uid, so the deleted
    one is gone."""
    monkeypatch.setattr(objects, "DELETE_WAIT_S", 0.05)
    fake_api.add("pods", {"metadata": {"name": "web-0", "namespace": "default", "uid": "old"}})
    fake_api.terminating["web-0"] = 10**6
    wait = objects.poll_until

    def recreated_then_wait(*args, **kwargs):
        fake_api.add("pods", {"metadata": {"name": "web-0", "namespace": "default", "uid": "new"}})
        return wait(*args, **kwargs)

    monkeypatch.setattr(objects, "poll_until", recreated_then_wait)
    fake_api_lab.delete(ObjectRef("Pod", "web-0", "default"))
    assert fake_api_lab.get("pod", "web-0")[0]["metadata"]["uid"] == "new"


def test_poll_until_returns_what_never_finished():
    """The bounded wait itself: the last answer when time runs out, nothing once done."""
    now = [0.0]
    answers = iter([["a", "b"], ["b"], ["b"], ["b"]])
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    left = objects.poll_until(lambda: next(answers), 2.0, 1.0, clock=lambda: now[0], sleep=sleep)
    assert left == ["b"] and slept == [1.0, 1.0]
    assert objects.poll_until(lambda: [], 0.0, 1.0, sleep=slept.append) == []
