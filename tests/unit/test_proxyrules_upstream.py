# ruff: noqa: E501  (upstream's expected rules are kept verbatim, one per line)
"""The sandbox's kube-proxy rules for a LoadBalancer with externalTrafficPolicy Local and a
healthCheckNodePort, against kubernetes' own expected dump for the same Service
(pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules, Service ns2/svc2)."""

from __future__ import annotations

import shlex
from collections import Counter

from labkit.sandbox.proxyrules import render_proxy_rules

# Upstream's expected lines for ns2/svc2 (kube-proxy writes them in its own option order; the
# kernel stores the same rule, and iptables-save prints it in canonical order, /32 added).
UPSTREAM_SVC2 = {
    "filter": [
        '-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP',
    ],
    "nat": [
        "-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT",
        '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
        '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
        "-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80",
        '-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
        '-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ',
    ],
}
_VALUED = {"-s", "-d", "-p", "-m", "--comment", "--dport", "--src-type", "--dst-type"}


def canonical(line: str) -> tuple[str, Counter[tuple[str, ...]], tuple[str, ...]]:
    """A rule as the kernel keeps it: its chain, its matches in any order (addresses without a
    /32), and its target with arguments."""
    tokens = shlex.split(line)
    chain, rest = tokens[1], tokens[2:]
    target = tuple(rest[rest.index("-j") :]) if "-j" in rest else ()
    rest = rest[: rest.index("-j")] if "-j" in rest else rest
    matches: Counter[tuple[str, ...]] = Counter()
    negate = False
    i = 0
    while i < len(rest):
        if rest[i] == "!":
            negate, i = True, i + 1
            continue
        option = rest[i]
        value = rest[i + 1].removesuffix("/32") if option in _VALUED else ""
        matches[("!" if negate else "", option, value)] += 1
        negate, i = False, i + (2 if option in _VALUED else 1)
    return chain, matches, target


def by_chain(lines: list[str]) -> dict[str, list[tuple[Counter[tuple[str, ...]], tuple[str, ...]]]]:
    chains: dict[str, list[tuple[Counter[tuple[str, ...]], tuple[str, ...]]]] = {}
    for line in lines:
        chain, matches, target = canonical(line)
        chains.setdefault(chain, []).append((matches, target))
    return chains


def test_local_load_balancer_with_health_check_matches_upstreams_expected_dump():
    """TestOverallIPTablesRules' ns2/svc2: type LoadBalancer, externalTrafficPolicy Local,
    healthCheckNodePort 30000, nodePort 3001, externalIP 192.168.99.22, LB IP 1.2.3.4, one
    endpoint on another node, cluster CIDR 10.0.0.0/8. Every rule of the Service, chain by chain
    and in order, is the rule upstream expects (the health check ACCEPT in KUBE-NODEPORTS, the
    DROPs for no local endpoints, the KUBE-EXT short-circuits)."""
    node = {
        "kind": "Node",
        "metadata": {"name": "test-hostname"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.2"}]},
    }
    svc = {
        "kind": "Service",
        "metadata": {"namespace": "ns2", "name": "svc2"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "clusterIP": "172.30.0.42",
            "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 3001}],
            "externalIPs": ["192.168.99.22"],
            "healthCheckNodePort": 30000,
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    }
    eps = {
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "ns2",
            "name": "svc2-1",
            "labels": {"kubernetes.io/service-name": "svc2"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.180.0.2"]}],
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}],
    }
    tables = render_proxy_rules(node, [node], [svc], [eps], "10.0.0.0/8")
    for table, expected in UPSTREAM_SVC2.items():
        ours = [
            line
            for line in tables[table]
            if line.startswith("-A ")
            and any(key in line for key in ("ns2/svc2", "GNZBNJ2PO5MGZ6GT", "RS4RBKLTHTF2IUXJ"))
        ]
        assert by_chain(ours) == by_chain(expected), table
