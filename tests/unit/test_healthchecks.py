"""kube-proxy's service health checks on sandbox nodes: which Services get one, the counts each
node reports, kube-proxy's HTTP answer, the agent's spec for it, and the load balancer that
follows the checks."""

from __future__ import annotations

import json

import pytest

from labkit.sandbox.agent.healthcheck import health_check_answer
from labkit.sandbox.agent.listeners import ListenerKey, listener_keys
from labkit.sandbox.agent.spec import HealthCheckSpec, parse_spec
from labkit.sandbox.fabric import NodeNet, lb_addresses, lb_route_node
from labkit.sandbox.healthchecks import (
    ServiceHealth,
    health_check_entries,
    load_balancer_targets,
    service_health,
)

NODES = [
    NodeNet(name, i, f"lk-t-{short}", f"172.18.0.{i + 2}", f"10.244.{i}.0/24", f"10.244.{i}.0/24")
    for i, (name, short) in enumerate(
        [("t-control-plane", "cp"), ("t-worker", "w1"), ("t-worker2", "w2")]
    )
]


def lb_service(
    name: str, policy: str = "Local", ports: int = 1, health: int | None = 32000
) -> dict:
    spec = {
        "type": "LoadBalancer",
        "clusterIP": "10.96.5.5",
        "externalTrafficPolicy": policy,
        "ports": [
            {"name": f"p{i}", "port": 80 + i, "protocol": "TCP", "nodePort": 31000 + i}
            for i in range(ports)
        ],
    }
    if health is not None:
        spec["healthCheckNodePort"] = health
    return {
        "kind": "Service",
        "metadata": {"namespace": "ns", "name": name},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.210"}]}},
    }


def slice_of(name: str, ports: int, endpoints: list[tuple[str, str, bool]]) -> dict:
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "ns",
            "name": f"{name}-x",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": f"p{i}", "port": 8080 + i, "protocol": "TCP"} for i in range(ports)],
        "endpoints": [
            {"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}}
            for ip, node, ready in endpoints
        ],
    }


def test_counts_are_distinct_ready_local_endpoint_ips_per_service():
    """pkg/proxy/endpointschangetracker.go LocalReadyEndpoints: per Service (not per port), the
    number of distinct local ready endpoint IPs ("10.0.0.1:80 and 10.0.0.1:443 ... 1 endpoint")."""
    services = [lb_service("web", ports=2)]
    slices = [
        slice_of(
            "web",
            2,
            [
                ("10.244.1.5", "t-worker", True),
                ("10.244.1.6", "t-worker", True),
                ("10.244.1.7", "t-worker", False),
                ("10.244.2.5", "t-worker2", False),
            ],
        )
    ]
    [check] = service_health(services, slices)
    assert (check.namespace, check.name, check.port) == ("ns", "web", 32000)
    assert check.load_balancer_ips == ("172.18.255.210",)
    assert [check.count(n.name) for n in NODES] == [0, 2, 0]


@pytest.mark.parametrize(
    "svc",
    [
        lb_service("cluster", policy="Cluster", health=None),
        lb_service("cluster-with-port", policy="Cluster", health=32001),
        {**lb_service("np"), "spec": {**lb_service("np")["spec"], "type": "NodePort"}},
    ],
)
def test_only_local_load_balancers_get_a_health_check(svc):
    """pkg/api/v1/service/util.go NeedsHealthCheck: type LoadBalancer and policy Local."""
    assert service_health([svc], []) == []


def test_every_node_serves_every_check_with_its_own_count():
    """pkg/proxy/healthcheck/service_health.go SyncServices/SyncEndpoints: one listener per
    Service on each node, reporting that node's count (0 where it has none)."""
    check = ServiceHealth("ns", "web", 32000, (), {"t-worker2": 1})
    assert health_check_entries([check], NODES) == [
        {"namespace": "ns", "name": "web", "netns": n.netns, "port": 32000, "local_endpoints": c}
        for n, c in zip(NODES, [0, 0, 1], strict=True)
    ]


def test_load_balancer_follows_the_health_check():
    """The cloud load balancer targets only nodes whose healthCheckNodePort answers 200
    (test/e2e/network/loadbalancer.go "should only target nodes with endpoints"); other pool
    addresses keep their usual node."""
    addresses = lb_addresses()
    default = lb_route_node("172.18.255.210", NODES)
    other = next(n for n in NODES[1:] if n != default)
    moved = ServiceHealth("ns", "web", 32000, ("172.18.255.210",), {other.name: 1})
    targets = load_balancer_targets([moved], NODES, addresses)
    assert targets["172.18.255.210"] == other
    assert all(targets[a] == lb_route_node(a, NODES) for a in addresses if a != "172.18.255.210")
    on_control_plane = ServiceHealth("ns", "web", 32000, ("172.18.255.210",), {NODES[0].name: 1})
    nowhere = ServiceHealth("ns", "web", 32000, ("172.18.255.210",), {})
    for check in (on_control_plane, nowhere):
        assert load_balancer_targets([check], NODES, addresses)["172.18.255.210"] == default


@pytest.mark.parametrize(("count", "status"), [(0, 503), (1, 200), (3, 200)])
def test_answer_is_kube_proxys(count, status):
    """service_health.go hcHandler.ServeHTTP: 200 when count != 0 (kube-proxy healthy), else 503;
    Content-Type application/json, nosniff, X-Load-Balancing-Endpoint-Weight; the body is the
    dedented, newline-trimmed JSON it prints with tabs."""
    got_status, body, headers = health_check_answer("ns", "web", count)
    assert got_status == status
    assert body == (
        '{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "web"\n\t},\n'
        f'\t"localEndpoints": {count},\n\t"serviceProxyHealthy": true\n}}'
    )
    assert json.loads(body) == {
        "service": {"namespace": "ns", "name": "web"},
        "localEndpoints": count,
        "serviceProxyHealthy": True,
    }
    assert headers == [
        ("Content-Type", "application/json"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Load-Balancing-Endpoint-Weight", str(count)),
    ]


def test_agent_spec_health_checks_become_listeners_and_report_counts():
    """The agent binds one TCP listener per check in the node's namespace and answers with the
    count of the latest workloads.json."""
    entry = {"namespace": "ns", "name": "web", "netns": "lk-t-w1", "port": 32000}
    spec = parse_spec({"health_checks": [{**entry, "local_endpoints": 2}]})
    assert spec.health_checks == (HealthCheckSpec("ns", "web", "lk-t-w1", 32000, 2),)
    assert list(listener_keys(spec)) == [
        ListenerKey("lk-t-w1", "TCP", 32000, "healthcheck", "ns/web")
    ]
    assert spec.health_count("lk-t-w1", 32000) == 2
    assert spec.health_count("lk-t-w2", 32000) == 0
    with pytest.raises(ValueError, match=r"health_checks\[0\]: port 70000 is outside 1-65535"):
        parse_spec({"health_checks": [{**entry, "port": 70000, "local_endpoints": 0}]})
    with pytest.raises(ValueError, match=r"health_checks\[0\]: 'local_endpoints' is missing"):
        parse_spec({"health_checks": [entry]})
