"""The sandbox cluster's clock: changes are stamped with the ``now`` given (whole seconds, never
backwards), the logical clock without one, and the lab's creation time on its nodes and system
objects; a state saved before the clock took ``now`` still loads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from labkit.sandbox.cluster.world import (
    EPOCH,
    World,
    clock_reading,
    empty_state,
    rfc3339,
)
from labkit.sandbox.store import ClusterStore, kind_like_nodes
from labkit.values import ObjectRef

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
BORN = datetime(2026, 12, 6, 12, 0, 0, 250000, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    """``seconds`` after BORN."""
    return BORN + timedelta(seconds=seconds)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """A clock the test sets by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def pod(name: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"containers": [{"name": "app", "image": AGNHOST}]},
    }


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": AGNHOST}]},
            },
        },
    }


# --------------------------------------------------------------------------- the pure clock


@pytest.mark.parametrize(
    ("when", "reading", "text"),
    [
        (EPOCH, 0, "2026-01-01T00:00:00Z"),
        (EPOCH + timedelta(seconds=4, microseconds=999999), 4, "2026-01-01T00:00:04Z"),
        (BORN, 29332800, "2026-12-06T12:00:00Z"),
        (EPOCH - timedelta(microseconds=1), -1, "2025-12-31T23:59:59Z"),
        (datetime(2026, 12, 6, 13, 0, tzinfo=timezone(timedelta(hours=1))), 29332800, None),
    ],
)
def test_a_time_reads_as_whole_seconds_after_the_epoch_rounded_down(when, reading, text):
    assert clock_reading(when) == reading
    assert rfc3339(reading) == (text or stamp(BORN))


def test_without_now_the_clock_moves_one_second_per_change():
    world = World(empty_state("netlab", "flannel", []))
    assert world.timestamp() == world.born() == "2026-01-01T00:00:00Z"
    world.tick()
    world.tick()
    assert world.timestamp() == "2026-01-01T00:00:02Z"
    assert world.born() == "2026-01-01T00:00:00Z"


def test_a_change_is_stamped_with_now_in_whole_seconds():
    state = empty_state("netlab", "flannel", [], born=BORN)
    assert World(state).timestamp() == World(state).born() == "2026-12-06T12:00:00Z"
    world = World(state, now=at(65.9))
    world.tick()
    assert world.timestamp() == "2026-12-06T12:01:06Z"
    assert world.born() == "2026-12-06T12:00:00Z"


def test_the_clock_never_goes_backwards():
    state = empty_state("netlab", "flannel", [], born=BORN)
    World(state, now=at(30)).tick()
    stepped_back = World(state, now=at(-3600))
    stepped_back.tick()
    assert stepped_back.timestamp() == stamp(at(30))
    World(state, now=at(31)).tick()
    assert World(state).timestamp() == stamp(at(31))


def test_an_object_keeps_its_creation_time_when_put_again_later():
    state = empty_state("netlab", "flannel", [], born=BORN)
    first = World(state, now=at(10))
    first.tick()
    first.put(pod("web"))
    later = World(state, now=at(500))
    later.tick()
    stored = later.put(pod("web", {"app": "web", "tier": "front"}))
    assert stored["metadata"]["creationTimestamp"] == stamp(at(10))
    assert stored["metadata"]["resourceVersion"] == "2"


# --------------------------------------------------------------------------- the store's clock


def test_nodes_and_system_objects_carry_the_time_the_lab_was_made():
    clock = Clock(at(2))
    store = ClusterStore.bootstrap("netlab", "calico", clock, BORN)
    objects = [*store.get("nodes", namespace=None), *store.get("pods", namespace=None)]
    objects += store.get("deployments", namespace=None) + store.get("namespaces")
    assert len(objects) > 10
    assert {o["metadata"]["creationTimestamp"] for o in objects} == {stamp(BORN)}
    node = store.get("nodes", namespace=None)[0]
    assert {c["lastTransitionTime"] for c in node["status"]["conditions"]} == {stamp(BORN)}


def test_without_a_birth_time_the_store_is_made_at_its_clocks_reading():
    store = ClusterStore.bootstrap("netlab", "flannel", Clock(at(7)))
    (node, *_) = store.get("nodes", namespace=None)
    assert node["metadata"]["creationTimestamp"] == stamp(at(7))
    assert {p["metadata"]["creationTimestamp"] for p in store.pods()} == {stamp(at(7))}
    bare = ClusterStore("netlab", "flannel", kind_like_nodes("netlab", "flannel"), Clock(at(9)))
    (node, *_) = bare.get("nodes", namespace=None)
    assert node["metadata"]["creationTimestamp"] == stamp(at(9))


def test_changes_carry_the_clocks_time_and_keep_their_creation_time():
    clock = Clock(at(0))
    store = ClusterStore.bootstrap("netlab", "flannel", clock)
    clock.now = at(90.7)
    store.apply([pod("web"), deployment("api", 2)])
    (web,) = store.get("pod", "web")
    assert web["metadata"]["creationTimestamp"] == stamp(at(90))
    assert web["status"]["startTime"] == stamp(at(90))
    assert web["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] == stamp(at(90))
    assert {c["lastTransitionTime"] for c in web["status"]["conditions"]} == {stamp(at(90))}
    api = store.get("pods", selector="app=api")
    assert [p["metadata"]["creationTimestamp"] for p in api] == [stamp(at(90))] * 2
    clock.now = at(400)
    store.apply([pod("web", {"app": "web", "tier": "front"})])
    store.set_pod_ready("default", "web", False, "probe failed")
    (web,) = store.get("pod", "web")
    assert web["metadata"]["creationTimestamp"] == stamp(at(90))
    ready = next(c for c in web["status"]["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == stamp(at(400))
    clock.now = at(500)
    store.delete([ObjectRef("Pod", api[0]["metadata"]["name"], "default")])
    replacement = [p for p in store.get("pods", selector="app=api") if p not in api]
    assert [p["metadata"]["creationTimestamp"] for p in replacement] == [stamp(at(500))]


def test_a_clock_that_steps_back_reuses_the_last_time():
    clock = Clock(at(60))
    store = ClusterStore.bootstrap("netlab", "flannel", clock, BORN)
    store.apply([pod("first")])
    clock.now = at(-7200)
    store.apply([pod("second")])
    (second,) = store.get("pod", "second")
    assert second["metadata"]["creationTimestamp"] == stamp(at(60))


def test_the_clock_survives_a_round_trip_through_the_state():
    clock = Clock(at(0))
    store = ClusterStore.bootstrap("netlab", "flannel", clock, BORN)
    store.apply([pod("first")])
    clock.now = at(-10)
    restored = ClusterStore.from_dict(store.to_dict(), clock)
    restored.apply([pod("second")])
    assert restored.get("pod", "second")[0]["metadata"]["creationTimestamp"] == stamp(BORN)
    assert restored.get("nodes", namespace=None)[0]["metadata"]["creationTimestamp"] == stamp(BORN)


def test_a_state_saved_before_the_clock_took_now_still_loads_and_stamps_true_times():
    old = ClusterStore.bootstrap("netlab", "flannel").to_dict()
    del old["born"]  # what a state file written before the wall clock holds
    store = ClusterStore.from_dict(old, Clock(at(0)))
    assert store.get("nodes", namespace=None)[0]["metadata"]["creationTimestamp"] == stamp(EPOCH)
    store.apply([pod("web")])
    assert store.get("pod", "web")[0]["metadata"]["creationTimestamp"] == stamp(BORN)


def test_stores_without_a_clock_stay_deterministic():
    logical = ClusterStore.bootstrap("netlab", "flannel")
    assert logical.get("nodes", namespace=None)[0]["metadata"]["creationTimestamp"] == stamp(EPOCH)
    logical.apply([pod("web")])
    assert logical.get("pod", "web")[0]["metadata"]["creationTimestamp"] == "2026-01-01T00:00:02Z"
    again = ClusterStore.bootstrap("netlab", "flannel")
    again.apply([pod("web")])
    assert again == logical
