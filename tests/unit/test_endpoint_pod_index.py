"""The EndpointSlice controller's pod index (labkit.sandbox.cluster.endpoints.selected_pods):
the same pods, in the same order, as testing every pod of the namespace against the Service's
selector, as upstream's controller does (pkg/controller/endpointslice reconciler: the Service's
selector listed against the pod lister, labels.SelectorFromSet: every key=value present)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from labkit.model.selectors import equality_selector_matches
from labkit.sandbox.cluster.endpoints import pod_index, selected_pods
from labkit.sandbox.cluster.world import World
from labkit.sandbox.store import ClusterStore

LABEL_SETS: list[dict[str, str] | None] = [
    None,
    {},
    {"app": "a"},
    {"app": "b"},
    {"app": "a", "tier": "web"},
    {"app": "b", "tier": "web"},
    {"tier": "web"},
    {"app": "1"},
]
SELECTORS: list[dict[str, Any] | None] = [
    None,
    {},
    {"app": "a"},
    {"app": "b"},
    {"tier": "web"},
    {"app": "a", "tier": "web"},
    {"tier": "web", "app": "b"},
    {"app": "c"},
    {"app": 1},
]


def world_of_pods() -> World:
    """Pods in two namespaces, every label set in each, created in a shuffled order."""
    store = ClusterStore.bootstrap("idx", "calico")
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}
    ]
    pairs = list(itertools.product(["default", "other"], enumerate(LABEL_SETS)))
    for ns, (i, labels) in pairs[1::2] + pairs[::2]:
        meta: dict[str, Any] = {"name": f"p{i}", "namespace": ns}
        if labels is not None:
            meta["labels"] = labels
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        )
    store.apply(docs)
    return World(store.to_dict())


@pytest.mark.parametrize("selector", SELECTORS, ids=repr)
@pytest.mark.parametrize("namespace", ["default", "other", "absent"])
def test_index_selects_what_a_scan_selects(selector: Any, namespace: str) -> None:
    """Every selector shape (none, empty, one pair, two pairs in either order, no match, a
    non-string value) against every label set: the indexed answer equals the full scan."""
    world = world_of_pods()
    scan = [
        p
        for p in world.ordered("Pod", namespace)
        if equality_selector_matches(selector, p["metadata"].get("labels"))
    ]
    assert selected_pods(pod_index(world), namespace, selector) == scan
    if selector in ({"app": "a"}, {"app": 1}) and namespace != "absent":
        assert scan, "the sample must select something"
