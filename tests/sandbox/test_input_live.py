"""Malformed input at a live sandbox lab: each bad manifest and each bad argument of the lab's
calls is a one-line LabError naming the field or argument, and the lab (its objects, outside
ranges and namespaces) is exactly as before. Lookups still work through the option-proof argv.
"""

from __future__ import annotations

import copy
import math
import subprocess

import pytest

from labkit.errors import LabError
from labkit.sandbox.cluster.admission import MODELLED_KINDS

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "fuzz", "namespace": "demo"},
    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "fuzz", "namespace": "demo"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"b{i}: &b{i} [{', '.join(['*' + ('a' if i == 0 else f'b{i - 1}')] * 10)}]\n" for i in range(8)
)


def _with(doc, path, value):
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


NEW_NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fuzz"}}
MANIFESTS = (
    [
        (_with(POD, ("metadata", "name"), name), "metadata.name")
        for name in ("a;rm -rf /", "../../etc/passwd", "Web", "wéb", "x" * 254)
    ]
    + [
        (_with(SERVICE, ("spec", "ports", 0, "port"), port), "spec.ports[0].port")
        for port in (0, 70000, -5)
    ]
    + [
        ({**POD, "spec": None}, "spec"),
        (_with(POD, ("kind",), "../../../../etc/passwd"), "kind"),
        (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "big"},
                "data": {"a": "x" * 2_000_000},
            },
            "data",
        ),
        (BOMB, "aliases"),
    ]
)

BAD_CALLS = [
    ("name", "resolve", ("demo/client-a", "-f/etc/shadow")),
    ("name", "resolve", ("demo/client-a", "--help", "SRV")),
    ("name", "resolve", ("demo/client-a", "web;id")),
    ("rtype", "resolve", ("demo/client-a", "web", "-f")),
    ("dst", "probe", ("demo/client-a", "-f/etc/shadow", 80)),
    ("port", "probe", ("demo/client-a", "web", 0)),
    ("port", "probe", ("demo/client-a", "web", 70000)),
    ("timeout", "probe", ("demo/client-a", "web", 80, "TCP", -1)),
    ("timeout", "probe", ("demo/client-a", "web", 80, "TCP", math.nan)),
    ("timeout", "exec", ("demo/client-a", "true", "default", 0)),
    ("timeout", "node_exec", ("tf-worker", "true", -5)),
    ("outside cannot take", "add_outside_address", ("0.0.0.0/0",)),
    ("outside cannot take", "add_outside_address", ("10.96.0.0/24",)),
    ("outside cannot take", "add_outside_address", ("10.244.1.0/24",)),
    ("outside cannot take", "add_outside_address", ("172.18.0.3",)),
    ("not an IPv4", "add_outside_address", ("not-a-range",)),
    ("outside port", "add_outside_address", ("203.0.113.0/24", [70000])),
]


def snapshot(lab):
    """What a refused call must not change: every object, the outside ranges, the namespaces."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return (
        {kind: lab.get(kind, namespace=None) for kind in MODELLED_KINDS},
        lab.outside_addresses(),
        sorted(
            line.split()[0] for line in netns.splitlines() if line.startswith(f"lk-{lab.name}-")
        ),
    )


@pytest.mark.parametrize(("source", "field"), MANIFESTS, ids=[f for _, f in MANIFESTS])
def test_bad_manifests_change_nothing(flannel_lab, source, field):
    before = snapshot(flannel_lab)
    batch = source if isinstance(source, str) else [NEW_NAMESPACE, source]
    with pytest.raises(LabError) as err:
        flannel_lab.apply(batch)
    assert field in err.value.what and "\n" not in err.value.what
    assert snapshot(flannel_lab) == before


@pytest.mark.parametrize(
    ("argument", "method", "args"), BAD_CALLS, ids=[f"{m}-{a}" for a, m, _ in BAD_CALLS]
)
def test_bad_calls_change_nothing(flannel_lab, argument, method, args):
    before = snapshot(flannel_lab)
    with pytest.raises(LabError) as err:
        getattr(flannel_lab, method)(*args)
    assert argument in err.value.what and "\n" not in err.value.what
    assert snapshot(flannel_lab) == before


def test_lookups_still_work_through_the_option_proof_argv(flannel_lab):
    lab = flannel_lab
    web = lab.get("service", "web", namespace="demo")[0]["spec"]["clusterIP"]
    assert lab.resolve("demo/client-a", "web") == [web]
    assert lab.resolve("demo/client-a", "_http._tcp.web", "SRV")
    assert lab.resolve("demo/client-a", web, "PTR") == ["web.demo.svc.cluster.local"]
