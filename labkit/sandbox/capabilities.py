"""What a sandbox lab models and enforces, per CNI (the seam's ``Capabilities``)."""

from __future__ import annotations

from ipaddress import ip_interface

from labkit.sandbox import fabric
from labkit.sandbox.outside_world import RESOLVER_IP, world_names
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


def outside_world_note() -> str:
    """What the lab's outside world holds, for capability notes and ``up``'s summary."""
    return (
        f"An outside world in the outside namespace: a resolver at {RESOLVER_IP} (the nodes' "
        f"nameserver; CoreDNS forwards other names to it) and HTTP servers on 80 and 443 for "
        f"{', '.join(world_names())}; pods reach them masqueraded to their node's address, "
        "and nothing leaves the machine."
    )


def capabilities_for(cni: str) -> Capabilities:
    """What the sandbox enforces with this CNI."""
    common = (
        "kube-proxy runs in iptables mode on every node (the sandbox's kernel has no IPVS).",
        LOAD_BALANCER_MODEL,
        outside_world_note(),
    )
    if cni == "calico":
        underlay = ip_interface(f"{fabric.GATEWAY_IP}/{fabric.UNDERLAY_PREFIX}").network
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
                "Calico as Kind installs it: an IP pool with VXLANCrossSubnet, so every node has "
                f"{fabric.CALICO_VXLAN_DEV} (VNI {fabric.CALICO_VXLAN_VNI}) and pods and their "
                f"cali veths have MTU {fabric.CALICO_MTU} ({fabric.HOST_MTU} minus VXLAN's "
                f"{fabric.HOST_MTU - fabric.CALICO_MTU}). All nodes share one subnet "
                f"({underlay}, like Kind's Docker network), so "
                "Felix routes other nodes' blocks directly via their node IPs (proto "
                f"{fabric.CALICO_ROUTE_PROTO}) and no packet takes the tunnel; across subnets "
                "it would.",
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
