"""One LoadBalancer story on both backends: each lab says which model it shows (the sandbox's
routed VIP, cloud-provider-kind's Envoy proxy on Kind) and how the other differs, and the
sandbox's Services carry the ipMode its story names."""

from __future__ import annotations

import dataclasses

import pytest

from labkit.kind import detect
from labkit.sandbox.capabilities import capabilities_for
from labkit.sandbox.store import ClusterStore
from labkit.status import render_status


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_sandbox_says_vip_and_how_kind_differs(cni):
    """cloud-provider-kind pkg/loadbalancer/server.go sets status ipMode Proxy and proxy.go runs
    Envoy's tcp_proxy to every node's nodePort, health-checking /healthz on healthCheckNodePort
    for externalTrafficPolicy Local: the client address is lost; the sandbox's VIP keeps it."""
    caps = capabilities_for(cni, True)
    model = caps.load_balancer_model
    assert "ipMode: VIP" in model and "ipMode: Proxy" in model
    assert "cloud-provider-kind" in model and "Envoy" in model
    assert model in caps.notes


@pytest.mark.parametrize("cni", ["flannel", "calico", "cilium"])
def test_kind_says_proxy_and_how_the_sandbox_differs(cni):
    """The same two models from Kind's side (cloud-provider-kind proxy.go generateConfig)."""
    caps = detect.capabilities(cni, "iptables")
    model = caps.load_balancer_model
    assert "ipMode: Proxy" in model and "ipMode: VIP" in model
    assert "never the client's" in model
    assert model in caps.notes


def test_sandbox_services_carry_the_ipmode_the_story_names():
    """KEP-1860 status.loadBalancer.ingress[].ipMode: VIP means the node handles the address
    itself (kube-proxy DNATs it), as the sandbox's capability note says."""
    store = ClusterStore.from_dict(ClusterStore.bootstrap("netlab", "flannel").to_dict())
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "lb", "namespace": "default"},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            }
        ]
    )
    [ingress] = store.get("svc", "lb", "default")[0]["status"]["loadBalancer"]["ingress"]
    assert ingress["ipMode"] == "VIP"


def test_status_prints_the_load_balancer_model(fakes):
    lab = fakes.web_cluster()
    assert "LoadBalancer model" not in render_status(lab)
    lab.capabilities = dataclasses.replace(
        lab.capabilities, load_balancer_model=capabilities_for("calico", True).load_balancer_model
    )
    header = render_status(lab).split("\n\n")[0]
    assert header.splitlines()[1] == (
        f"LoadBalancer model: {capabilities_for('calico', True).load_balancer_model}"
    )
