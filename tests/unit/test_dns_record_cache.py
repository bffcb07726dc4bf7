"""Per-Service and per-pod DNS records kept between syncs give exactly the full recompute's
records, each once (as rows, in the objects' order: the agent's index sorts them). A Service
whose object and slices kept their resourceVersions is unchanged, and so is a pod that kept its
own, as CoreDNS's plugin/kubernetes/controller.go (dnsControl.detectChanges: "If both objects
have the same resource version, they are identical") and the API's resource versions (Kubernetes
docs, API concepts, "Resource versions": changed on every modification) have it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from labkit.model.dns.records import RECORD_ORDER, Record, records
from labkit.sandbox import dns_record_cache
from labkit.sandbox.dns_record_cache import ServiceRecordCache

Obj = dict[str, Any]


class World:
    """Services, slices and pods whose every change bumps the object's resourceVersion."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.version = 0
        self.services: dict[str, Obj] = {}
        self.slices: dict[str, Obj] = {}
        self.pods: list[Obj] = []

    def stamp(self, obj: Obj) -> Obj:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def service(self, name: str) -> None:
        kind = self.rng.choice(["ClusterIP", "ClusterIP", "Headless", "ExternalName"])
        spec: Obj = {"ports": [{"name": "http", "port": self.rng.choice([80, 8080])}]}
        if kind == "ExternalName":
            spec = {"type": "ExternalName", "externalName": f"{name}.example.com"}
        else:
            spec["clusterIP"] = (
                "None" if kind == "Headless" else f"10.96.0.{self.rng.randint(2, 250)}"
            )
        meta = {"name": name, "namespace": "default"}
        self.services[name] = self.stamp({"kind": "Service", "metadata": meta, "spec": spec})

    def endpoint_slice(self, service: str) -> None:
        endpoints = [
            {
                "addresses": [f"10.244.{self.rng.randint(0, 2)}.{self.rng.randint(2, 250)}"],
                "conditions": {"ready": self.rng.random() < 0.8},
            }
            for _ in range(self.rng.randint(0, 3))
        ]
        meta = {
            "name": f"{service}-{self.rng.randint(0, 1)}",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        }
        obj = {"kind": "EndpointSlice", "metadata": meta, "endpoints": endpoints}
        obj["ports"] = [{"name": "http", "port": 8080, "protocol": "TCP"}]
        self.slices[meta["name"]] = self.stamp(obj)

    def change(self) -> None:
        names = [f"svc{i}" for i in range(8)]
        what = self.rng.choice(["service", "slice", "slice", "drop-service", "drop-slice", "pod"])
        if what == "service":
            self.service(self.rng.choice(names))
        elif what == "slice":
            self.endpoint_slice(self.rng.choice(names))
        elif what == "drop-service" and self.services:
            del self.services[self.rng.choice(sorted(self.services))]
        elif what == "drop-slice" and self.slices:
            del self.slices[self.rng.choice(sorted(self.slices))]
        elif what == "pod":
            ip = f"10.244.1.{self.rng.randint(2, 250)}"
            name = f"pod{self.rng.randint(0, 3)}"
            meta = {"namespace": "default", "name": name, "uid": f"uid-{name}"}
            pod = self.stamp({"metadata": meta, "status": {"podIP": ip}})
            self.pods = [p for p in self.pods if p["metadata"]["name"] != name] + [pod]


def _rows(encoded: list[str]) -> list[list[Any]]:
    """The rows the agent reads from the encoded parts (each object's, none empty)."""
    assert all(encoded)
    rows: list[list[Any]] = json.loads("[" + ", ".join(encoded) + "]")
    return rows


def _records(rows: list[list[Any]]) -> list[Record]:
    """Rows as the sorted records the agent's index holds; each row must be there once."""
    found = [Record(*row) for row in rows]
    assert len(set(found)) == len(found), "a record is listed twice"
    return sorted(found, key=RECORD_ORDER)


@pytest.mark.parametrize("seed", range(12))
def test_kept_records_equal_a_full_recompute(seed: int) -> None:
    world = World(random.Random(seed))
    cache = ServiceRecordCache()
    for _ in range(60):
        world.change()
        services, slices = list(world.services.values()), list(world.slices.values())
        rows = _rows(cache.encoded(services, slices, world.pods))
        assert _records(rows) == records(services, slices, world.pods)


def test_only_a_changed_service_is_derived_again(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(random.Random(7))
    for name in ("a", "b", "c"):
        world.service(name)
        world.endpoint_slice(name)
    derived: list[str] = []
    real = dns_record_cache.service_records

    def counting(svc: Obj, *args: Any) -> Any:
        derived.append(svc["metadata"]["name"])
        return real(svc, *args)

    monkeypatch.setattr(dns_record_cache, "service_records", counting)
    cache = ServiceRecordCache()
    _rows(cache.encoded(list(world.services.values()), list(world.slices.values()), []))
    world.endpoint_slice("b")
    _rows(cache.encoded(list(world.services.values()), list(world.slices.values()), []))
    world.service("c")
    _rows(cache.encoded(list(world.services.values()), list(world.slices.values()), []))
    assert derived == ["a", "b", "c", "b", "c"]


def test_objects_without_resource_versions_are_always_derived() -> None:
    svc = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.9"}}
    cache = ServiceRecordCache()
    first = _rows(cache.encoded([svc], [], []))
    svc["spec"]["clusterIP"] = "10.96.0.10"
    assert (
        _records(_rows(cache.encoded([svc], [], []))) == records([svc], [], []) != _records(first)
    )


def test_only_a_changed_pod_is_derived_again(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(random.Random(3))
    for _ in range(12):
        world.change()
    derived: list[str] = []
    real = dns_record_cache.pod_records

    def counting(pods: list[Obj], *args: Any) -> Any:
        derived.extend(p["metadata"]["name"] for p in pods)
        return real(pods, *args)

    monkeypatch.setattr(dns_record_cache, "pod_records", counting)
    cache = ServiceRecordCache()
    pods = [
        world.stamp({"metadata": {"namespace": "default", "name": n, "uid": n}, "status": {}})
        for n in ("a", "b")
    ]
    _rows(cache.encoded([], [], pods))
    pods[1] = world.stamp({**pods[1], "status": {"podIP": "10.244.2.9"}})
    rows = _rows(cache.encoded([], [], pods))
    assert derived == ["a", "b", "b"]
    assert ["10-244-2-9.default.pod.cluster.local.", "A", "10.244.2.9", 30] in rows
