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


def outside_get(lab, url: str) -> tuple[int, str]:
    """HTTP status and body of a GET from the outside namespace (the e2e suite's test machine)."""
    from labkit.sandbox import naming
    from labkit.sandbox.netns import run_in_netns

    result = run_in_netns(
        naming.outside_netns(lab.name),
        ["curl", "-s", "--max-time", "3", "-w", "\n%{http_code}", url],
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def endpoint_pod(name: str, node: str) -> dict[str, Any]:
    """A netexec pod labelled ``app: name`` pinned to ``node`` (the e2e jig's RC with NodeName)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "netexec",
                    "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                    "args": ["netexec", "--http-port=8080"],
                    "ports": [{"containerPort": 8080}],
                }
            ],
        },
    }


def test_load_balancer_local_only_targets_nodes_with_endpoints(proxyfix):
    """e2e test/e2e/network/loadbalancer.go: should only target nodes with endpoints

    A LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort
    (pkg/registry/core/service/storage/alloc.go allocHealthCheckNodePort); kube-proxy accepts it in
    KUBE-NODEPORTS (pkg/proxy/iptables/proxier.go, "health check node port" rule) and answers on
    every node 200 with localEndpoints 1 where the endpoint runs, 503 elsewhere
    (pkg/proxy/healthcheck/service_health.go hcHandler.ServeHTTP); the load balancer follows the
    check, so the address answers from outside wherever the one endpoint sits.
    """
    from labkit.lab import OUTSIDE

    lab = proxyfix
    name = "external-local-nodes"
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    }
    lab.apply([svc])
    read = lab.get("svc", name, NS)[0]
    health = read["spec"]["healthCheckNodePort"]
    assert 30000 <= health <= 32767
    ingress_ip = read["status"]["loadBalancer"]["ingress"][0]["ip"]
    nodes = {
        n["metadata"]["name"]: next(
            a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"
        )
        for n in lab.get("nodes", namespace=None)
    }
    saved = lab.node_exec(f"{lab.name}-worker", "iptables-save -t filter").stdout
    rule = (
        f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{NS}/{name} health check node port" '
        f"-m tcp --dport {health} -j ACCEPT"
    )
    # Cilium's kube-proxy replacement serves the health check without kube-proxy's rule
    assert (rule in saved) == (lab.capabilities.kube_proxy_mode != "none")
    for endpoint_node in (f"{lab.name}-worker", f"{lab.name}-worker2"):
        pod = endpoint_pod(name, endpoint_node)
        lab.apply([pod])
        try:
            probe = lab.probe(OUTSIDE, ingress_ip, 80, timeout=2.0)
            assert probe.ok, (endpoint_node, probe.detail)
            assert probe.served_by == name
            for node, ip in nodes.items():
                status, body = outside_get(lab, f"http://{ip}:{health}/healthz")
                expected = 1 if node == endpoint_node else 0
                assert status == (200 if expected else 503), (node, status, body)
                assert f'"localEndpoints": {expected},' in body
                assert f'"namespace": "{NS}",' in body and f'"name": "{name}"' in body
        finally:
            lab.delete([pod])


def test_change_the_type_and_ports_of_a_tcp_service(proxyfix):
    """e2e test/e2e/network/loadbalancer.go: should be able to change the type and ports of a TCP service

    Each change is a GET, an edit and a PUT (the jig's UpdateService). ClusterIP -> NodePort ->
    LoadBalancer keeps the node port (storage.go patchAllocatedValues); a new nodePort and a new
    port keep the load balancer address; with no endpoints it stops answering; back to
    ClusterIP the API server clears the node port (strategy.go dropTypeDependentFields) and the
    load balancer address is gone.
    """
    from labkit.lab import OUTSIDE

    lab = proxyfix
    name = "mutability-test"
    lab.apply(serve_hostname(name, 1))
    lab.apply([service(name)])

    def update(change) -> dict[str, Any]:
        read = lab.get("svc", name, NS)[0]
        change(read["spec"])
        lab.apply([read])
        return lab.get("svc", name, NS)[0]

    def lb_answers(ip: str, port: int) -> bool:
        return bool(lab.probe(OUTSIDE, ip, port, timeout=1.0).ok)

    assert reaches(lab, name)
    svc = update(lambda s: s.update(type="NodePort"))
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert lab.probe(OUTSIDE, "172.18.0.3", node_port, timeout=2.0).ok
    svc = update(lambda s: s.update(type="LoadBalancer"))
    assert svc["spec"]["ports"][0]["nodePort"] == node_port
    ingress_ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert lb_answers(ingress_ip, 80)
    svc = update(
        lambda s: s["ports"][0].update(nodePort=node_port + 1 if node_port < 32767 else 30000)
    )
    assert svc["spec"]["ports"][0]["nodePort"] != node_port
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == ingress_ip
    assert lb_answers(ingress_ip, 80)
    svc = update(lambda s: s["ports"][0].update(port=81))
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == ingress_ip
    assert lb_answers(ingress_ip, 81)
    scaled = serve_hostname(name, 0)
    lab.apply(scaled)
    assert not lb_answers(ingress_ip, 81)
    lab.apply(serve_hostname(name, 1))
    assert lb_answers(ingress_ip, 81)
    svc = update(lambda s: s.update(type="ClusterIP"))
    assert "nodePort" not in svc["spec"]["ports"][0]
    assert svc["status"] == {"loadBalancer": {}}
    assert not lb_answers(ingress_ip, 81)
