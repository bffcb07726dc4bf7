"""Issue 17's kube-proxy fixes on real sandbox labs, each re-expressing a case of Kubernetes' e2e
network suite: Services kube-proxy ignores, type changes that drop type-dependent fields, and
LoadBalancer traffic with externalTrafficPolicy Local."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

NS = "proxyfix"


def serve_hostname(name: str, replicas: int = 3) -> list[dict[str, Any]]:
    """The e2e suite's serve-hostname backends (agnhost serve-hostname on 9376) in namespace NS."""
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"name": name}},
                "template": {
                    "metadata": {"labels": {"name": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": name,
                                "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                                "args": ["serve-hostname"],
                                "ports": [{"containerPort": 9376}],
                            }
                        ]
                    },
                },
            },
        }
    ]


def service(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A Service in NS selecting serve_hostname(name)'s pods on port 80 -> 9376."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels or {})},
        "spec": {
            "selector": {"name": name},
            "ports": [{"port": 80, "targetPort": 9376, "protocol": "TCP"}],
            **spec,
        },
    }


@pytest.fixture
def proxyfix(any_lab) -> Iterator[Any]:
    """The session lab with namespace NS, deleted afterwards with all it holds."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    any_lab.apply([namespace])
    try:
        yield any_lab
    finally:
        any_lab.delete([namespace])


def reaches(lab, name: str) -> bool:
    """Whether the client pod on the first worker reaches Service ``name``'s cluster IP."""
    ip = lab.get("svc", name, NS)[0]["spec"]["clusterIP"]
    return bool(lab.probe("demo/client-a", ip, 80, timeout=1.0).ok)


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("service.kubernetes.io/service-proxy-name", "foo-bar"),
        ("service.kubernetes.io/headless", ""),
    ],
)
def test_kube_proxy_ignores_labelled_services(proxyfix, label, value):
    """e2e test/e2e/network/service.go: should implement service.kubernetes.io/service-proxy-name

    The same It's sibling "should implement service.kubernetes.io/headless" runs as the second
    case. kube-proxy lists Services through the selector of cmd/kube-proxy/app/server.go
    (``!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless``): a labelled
    Service is down, an unlabelled one up; labelling it takes it down, unlabelling brings it back.
    """
    lab = proxyfix
    lab.apply(serve_hostname("svc-disabled", 2) + serve_hostname("svc-toggled", 2))
    disabled = service("svc-disabled", {label: value})
    toggled = service("svc-toggled")
    lab.apply([disabled, toggled])
    assert reaches(lab, "svc-toggled")
    assert not reaches(lab, "svc-disabled")
    labelled = copy.deepcopy(toggled)
    labelled["metadata"]["labels"] = {label: value}
    lab.apply([labelled])
    assert not reaches(lab, "svc-toggled")
    lab.apply([toggled])
    assert reaches(lab, "svc-toggled")
    assert not reaches(lab, "svc-disabled")
