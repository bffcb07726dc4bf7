"""What a sandbox lab models and enforces, per CNI (the seam's ``Capabilities``)."""

from __future__ import annotations

from labkit.sandbox.state import KUBE_PROXY_MODE
from labkit.values import Capabilities

LOAD_BALANCER_MODEL = (
    "LoadBalancer addresses (172.18.255.200-250) are VIPs (status ipMode: VIP): the outside "
    "namespace routes each to one worker, for externalTrafficPolicy: Local the first whose "
    "healthCheckNodePort answers 200, and kube-proxy DNATs it, so with Local pods see the real "
    "client address. On Kind, cloud-provider-kind instead runs one Envoy proxy container per "
    "Service (ipMode: Proxy) that connects to the nodes' nodePorts, following the same health "
    "check: pods see the proxy's address there, never the client's."
)


def capabilities_for(cni: str) -> Capabilities:
    """What the sandbox enforces with this CNI."""
    common = (
        "kube-proxy runs in iptables mode on every node (the sandbox's kernel has no IPVS).",
        LOAD_BALANCER_MODEL,
    )
    if cni == "calico":
        return Capabilities(
            network_policy=True,
            kube_proxy_mode=KUBE_PROXY_MODE,
            outside_addresses=True,
            converges_on_apply=True,
            concurrent_checks=True,
            load_balancer_model=LOAD_BALANCER_MODEL,
            notes=(
                "Calico mode: NetworkPolicies are enforced with iptables on every node; blocked "
                "packets are dropped.",
                *common,
            ),
        )
    return Capabilities(
        network_policy=False,
        kube_proxy_mode=KUBE_PROXY_MODE,
        outside_addresses=True,
        converges_on_apply=True,
        concurrent_checks=True,
        load_balancer_model=LOAD_BALANCER_MODEL,
        notes=(
            "Flannel does not implement NetworkPolicy: policies are stored, but traffic they would "
            "block still flows, exactly as on a real Flannel cluster. Use --cni calico to see them "
            "enforced.",
            *common,
        ),
    )
