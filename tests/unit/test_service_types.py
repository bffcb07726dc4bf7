"""Type-dependent Service fields: what each type needs, and the API server's dropping of fields a
type change leaves unused (kubernetes pkg/registry/core/service/strategy.go)."""

from __future__ import annotations

import copy
import itertools

import pytest

from labkit.sandbox.cluster.service_types import (
    drop_type_dependent_fields,
    externally_accessible,
    needs_health_check,
    needs_node_ports,
)

TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def read_back(svc_type: str, policy: str = "Local") -> dict:
    """A Service as a GET returns it, with every field its type allocates or defaults."""
    spec: dict = {"type": svc_type, "ports": [{"port": 80, "protocol": "TCP"}]}
    if svc_type in ("NodePort", "LoadBalancer"):
        spec["ports"][0]["nodePort"] = 30080
        spec["externalTrafficPolicy"] = policy
    if svc_type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
        spec["loadBalancerClass"] = "example.com/lb"
        if policy == "Local":
            spec["healthCheckNodePort"] = 31999
    return spec


@pytest.mark.parametrize(("old_type", "new_type"), list(itertools.product(TYPES, TYPES)))
def test_every_type_change_keeps_only_what_the_new_type_uses(old_type, new_type):
    """strategy.go dropTypeDependentFields with needsNodePort, needsHCNodePort,
    canSetLoadBalancerClass and ExternallyAccessible: after GET, set type, PUT, each field the
    new type does not use is gone, each it uses is kept as it was."""
    old = read_back(old_type)
    new = copy.deepcopy(old) | {"type": new_type}
    drop_type_dependent_fields(new, old)
    node_ports = new_type in ("NodePort", "LoadBalancer") and "nodePort" in old["ports"][0]
    assert ("nodePort" in new["ports"][0]) is node_ports
    assert ("healthCheckNodePort" in new) is (
        new_type == "LoadBalancer" and "healthCheckNodePort" in old
    )
    for field in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
        assert (field in new) is (new_type == "LoadBalancer" and field in old)
    assert ("externalTrafficPolicy" in new) is (
        new_type in ("NodePort", "LoadBalancer") and "externalTrafficPolicy" in old
    )


def test_a_value_the_client_changed_is_left_for_validation():
    """strategy.go: wipe only when the user did not also change the field (sameNodePorts is
    'no net-new NodePorts', sameHCNodePort, sameExternalTrafficPolicy)."""
    old = read_back("LoadBalancer")
    new = copy.deepcopy(old) | {"type": "ClusterIP", "healthCheckNodePort": 32001}
    new["ports"][0]["nodePort"] = 30081
    new["externalTrafficPolicy"] = "Cluster"
    drop_type_dependent_fields(new, old)
    assert new["ports"][0]["nodePort"] == 30081
    assert new["healthCheckNodePort"] == 32001
    assert new["externalTrafficPolicy"] == "Cluster"


def test_removing_a_port_still_counts_as_unchanged_node_ports():
    """strategy.go sameNodePorts: old ports a superset of new ones ("users can add, remove, or
    modify ports, as long as they don't add any net-new NodePorts")."""
    old = {
        "type": "NodePort",
        "ports": [{"port": 80, "nodePort": 30080}, {"port": 81, "nodePort": 30081}],
    }
    new = {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}]}
    drop_type_dependent_fields(new, old)
    assert new["ports"] == [{"port": 80}]


def test_local_to_cluster_policy_drops_the_health_check_node_port_only():
    """strategy.go needsHCNodePort: LoadBalancer + Local; switching the policy to Cluster wipes
    healthCheckNodePort but keeps the node ports."""
    old = read_back("LoadBalancer")
    new = copy.deepcopy(old) | {"externalTrafficPolicy": "Cluster"}
    drop_type_dependent_fields(new, old)
    assert "healthCheckNodePort" not in new
    assert new["ports"][0]["nodePort"] == 30080


@pytest.mark.parametrize(
    ("spec", "node_ports", "health", "external"),
    [
        ({"type": "ClusterIP"}, False, False, False),
        ({"type": "ClusterIP", "externalIPs": ["203.0.113.9"]}, False, False, True),
        ({"externalIPs": ["203.0.113.9"]}, False, False, True),
        ({"type": "NodePort", "externalTrafficPolicy": "Local"}, True, False, True),
        ({"type": "LoadBalancer", "externalTrafficPolicy": "Cluster"}, True, False, True),
        ({"type": "LoadBalancer", "externalTrafficPolicy": "Local"}, True, True, True),
        ({"type": "ExternalName", "externalIPs": ["203.0.113.9"]}, False, False, False),
    ],
)
def test_what_each_type_needs(spec, node_ports, health, external):
    """strategy.go needsNodePort / needsHCNodePort; pkg/api/service/util.go ExternallyAccessible
    (LoadBalancer, NodePort, or ClusterIP with externalIPs)."""
    assert needs_node_ports(spec) is node_ports
    assert needs_health_check(spec) is health
    assert externally_accessible(spec) is external
