"""The agent's workloads.json built from parts kept between changes (each pod's entry while its
uid, resourceVersion and network stay; each Service's and pod's DNS rows while their stamps do)
is, after every change of a random sequence, the very text a data plane that keeps nothing
writes, and what ``json.dumps`` writes of the document it holds.

Upstream: a resourceVersion changes on every modification of an object (Kubernetes API
concepts, "Resource versions"), which is how CoreDNS's kubernetes plugin tells a changed object
from an unchanged one (coredns/coredns plugin/kubernetes/controller.go ``dnsControl.Update`` ->
``detectChanges``: "If both objects have the same resource version, they are identical").
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from labkit.sandbox import workloads_json
from labkit.sandbox.dataplane import DataPlane, StoreView
from labkit.sandbox.store import ClusterStore
from labkit.sandbox.workloads import pod_nets

LAB = "wj"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
ARGS = (["netexec", "--http-port=8080"], ["serve-hostname"], ["serve-hostname", "--udp"])


def _deployment(rng: random.Random, name: str) -> dict[str, Any]:
    """agnhost pods in one of its roles, on a host network or not, some with a hostname and
    subdomain (pod DNS records)."""
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "c",
                "image": AGNHOST,
                "args": rng.choice(ARGS),
                "ports": [
                    {"containerPort": rng.choice((8080, 9376)), "protocol": p}
                    for p in rng.sample(("TCP", "UDP"), rng.randrange(0, 3))
                ],
            }
        ]
    }
    if rng.random() < 0.2:
        spec["hostNetwork"] = True
    if rng.random() < 0.3:
        spec.update(hostname=f"h{rng.randrange(3)}", subdomain="sub")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "replicas": rng.randrange(0, 4),
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def _service(rng: random.Random, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"app": f"d{rng.randrange(4)}"},
        "ports": [{"name": "http", "port": rng.choice((80, 8080)), "targetPort": 8080}],
    }
    if name == "s2":  # headless (a Service cannot become so)
        spec["clusterIP"] = "None"
    meta = {"name": name, "namespace": "demo"}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def _ingress(rng: random.Random) -> dict[str, Any]:
    path = {
        "path": f"/{rng.choice(('a', 'b'))}",
        "pathType": "Prefix",
        "backend": {"service": {"name": f"s{rng.randrange(3)}", "port": {"number": 80}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"ingressClassName": "labkit", "rules": [{"http": {"paths": [path]}}]},
    }


def _change(rng: random.Random, store: ClusterStore) -> None:
    what = rng.choice(("deploy", "deploy", "pod", "service", "ingress", "namespace", "delete"))
    if what == "pod":  # made again under its name, another pod (pods are immutable)
        if store.get("Pod", "bare", "demo"):
            store.delete([{"kind": "Pod", "metadata": {"name": "bare", "namespace": "demo"}}])
        template = _deployment(rng, "bare")["spec"]["template"]
        meta = {"name": "bare", "namespace": "demo", "labels": template["metadata"]["labels"]}
        store.apply(
            [{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}]
        )
    elif what == "deploy":
        store.apply([_deployment(rng, f"d{rng.randrange(4)}")])
    elif what == "service":
        store.apply([_service(rng, f"s{rng.randrange(3)}")])
    elif what == "ingress":
        store.apply([_ingress(rng)])
    elif what == "namespace":
        name = f"extra{rng.randrange(2)}"
        store.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    else:
        present = [
            obj
            for kind in ("Deployment", "Service", "Ingress")
            for obj in store.peek(kind)
            if obj["metadata"]["namespace"] == "demo"
        ]
        if present:
            store.delete([rng.choice(present)])


def _text(plane: DataPlane, store: ClusterStore) -> str:
    view = StoreView(store)
    return plane.workloads(view, pod_nets(LAB, plane.cni, view.pods(), plane.nodes(store)), {})


@pytest.mark.parametrize("cni", ["calico", "cilium"])
@pytest.mark.parametrize("seed", range(5))
def test_kept_parts_give_the_text_of_a_fresh_build(seed: int, cni: str, tmp_path: Path) -> None:
    rng = random.Random(seed)
    store = ClusterStore.bootstrap(LAB, cni)
    store.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}])
    plane = DataPlane(LAB, cni, tmp_path)
    for _ in range(25):
        _change(rng, store)
        text = _text(plane, store)
        assert text == _text(DataPlane(LAB, cni, tmp_path), store)
        assert json.dumps(json.loads(text)) == text


def test_only_a_changed_pod_is_encoded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []
    real = workloads_json.workload_entry

    def counting(pod: Any, net: Any) -> Any:
        encoded.append(pod["metadata"]["name"].split("-")[0])
        return real(pod, net)

    monkeypatch.setattr(workloads_json, "workload_entry", counting)
    store = ClusterStore.bootstrap(LAB, "calico")
    store.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}])
    store.apply([_netexec("web", 3)])
    plane = DataPlane(LAB, "calico", tmp_path)
    _text(plane, store)
    assert encoded.count("web") == 3
    encoded.clear()
    _text(plane, store)
    assert encoded == []
    store.apply([_netexec("api", 1)])
    _text(plane, store)
    assert encoded == ["api"]


def _netexec(name: str, replicas: int) -> dict[str, Any]:
    container = {"name": "c", "image": AGNHOST, "ports": [{"containerPort": 8080}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }
