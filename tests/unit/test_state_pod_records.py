"""A save records each pod's network as ``dataclasses.asdict`` gives it, and a pod whose network
the last state already recorded keeps that very record, so the journal line of one more pod
names that pod alone.

Upstream: the kubelet's pod status manager writes a pod's status only when it differs from what
it last wrote (kubernetes/kubernetes pkg/kubelet/status/status_manager.go ``updateStatusInternal``:
"Ignoring same status for pod"), and a strategic merge patch names only what changed.
"""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest

from labkit.sandbox import statejournal
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.state import built_pods, with_data_plane


def _net(rng: random.Random, name: str) -> PodNet:
    host = rng.random() < 0.2
    return PodNet(
        "demo",
        name,
        rng.choice(("lab-worker", "lab-worker2")),
        f"10.244.{rng.randrange(3)}.{rng.randrange(2, 9)}",
        "lk-lab-w1" if host else f"lk-lab-p-{name}",
        "" if host else f"cali{name}",
        host,
    )


@pytest.mark.parametrize("seed", range(6))
def test_records_equal_asdict_and_unchanged_ones_are_kept(seed: int) -> None:
    rng = random.Random(seed)
    state = with_data_plane({"name": "lab"}, {}, {})
    for _ in range(20):
        built = built_pods(state)
        for name in rng.sample([f"p{i}" for i in range(8)], rng.randrange(0, 4)):
            if rng.random() < 0.3:
                built.pop(f"demo/{name}", None)
            else:
                built[f"demo/{name}"] = _net(rng, name)
        saved = with_data_plane(state, {}, built)
        assert saved["pods"] == {key: asdict(net) for key, net in sorted(built.items())}
        assert list(saved["pods"]) == sorted(built)
        for key, record in saved["pods"].items():
            before = state["pods"].get(key)
            assert (record is before) == (before == record)
        changed = {key for key in saved["pods"] if saved["pods"][key] is not state["pods"].get(key)}
        changed |= state["pods"].keys() - saved["pods"].keys()
        ops = [op for op in statejournal.delta(state, saved) if op[0][0] == "pods"]
        assert {op[0][1] for op in ops} == changed
        state = saved
