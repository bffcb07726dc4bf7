"""What a sandbox lab models and enforces, per CNI (the seam's ``Capabilities``)."""

from __future__ import annotations

from ipaddress import ip_interface

from labkit.sandbox import fabric, fabric_calico
from labkit.sandbox.fabric_cilium import (
    CILIUM_DEVICE_MTU,
    CILIUM_ROUTE_MTU,
    CILIUM_VXLAN,
    CILIUM_VXLAN_PORT,
)
from labkit.sandbox.outside_world import RESOLVER_IP, world_names
from labkit.sandbox.state import KUBE_PROXY_MODE, KUBE_PROXY_REPLACED
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


def capabilities_for(cni: str, ipsets: bool) -> Capabilities:
    """What the sandbox enforces with this CNI (``ipsets``: whether policy rules match ipsets,
    which needs the ``ipset`` tool and the kernel's ``ip_set`` module)."""
    common = (
        "kube-proxy runs in iptables mode on every node (the sandbox's kernel has no IPVS).",
        LOAD_BALANCER_MODEL,
        outside_world_note(),
    )
    if cni == "cilium":
        return cilium_capabilities()
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
                "Felix-shaped filter chains (cali-FORWARD, cali-INPUT, cali-wl-to-host, "
                "cali-tw-/cali-fw-<iface>, cali-pi-/cali-po-<policy>, namespace profiles "
                "cali-pri-/cali-pro-kns.<ns>), each rule with Felix's cali:<hash> comment; "
                "an ipBlock's except ranges use a cali-ex- sub-chain of the sandbox's own.",
                "Pod peers of a policy are matched with cali40s: ipsets (hash:net), as Felix "
                "does; named ports are resolved per pod inline."
                if ipsets
                else "This machine has no ipset tool or no ip_set kernel module, so pod peers of "
                "a policy are inline addresses (one rule per address), where Felix matches "
                "cali40s: ipsets.",
                "Calico as Kind installs it: an IP pool with VXLANCrossSubnet, so every node has "
                f"{fabric_calico.CALICO_VXLAN_DEV} (VNI {fabric_calico.CALICO_VXLAN_VNI}) and pods "
                f"and their cali veths have MTU {fabric_calico.CALICO_MTU} ({fabric.HOST_MTU} "
                f"minus VXLAN's {fabric.HOST_MTU - fabric_calico.CALICO_MTU}). All nodes share one "
                "subnet "
                f"({underlay}, like Kind's Docker network), so "
                "Felix routes other nodes' blocks directly via their node IPs (proto "
                f"{fabric_calico.CALICO_ROUTE_PROTO}) and no packet takes the tunnel; across "
                "subnets it would.",
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


CILIUM_LOAD_BALANCER_MODEL = (
    "LoadBalancer addresses (172.18.255.200-250) are VIPs: the outside namespace routes each to "
    "one worker, whose CILIUM_PRE_nat chain sends it to a backend (SNAT to the node's address "
    "for a backend elsewhere; with externalTrafficPolicy: Local only local backends, and pods "
    "see the client's address). From inside the cluster the pod's own socket LB translates it."
)


def cilium_capabilities() -> Capabilities:
    """What a sandbox lab with Cilium (kube-proxy replacement) models, and what it does not."""
    return Capabilities(
        network_policy=True,
        kube_proxy_mode=KUBE_PROXY_REPLACED,
        outside_addresses=True,
        converges_on_apply=True,
        concurrent_checks=True,
        load_balancer_model=CILIUM_LOAD_BALANCER_MODEL,
        cni_model=(
            "Cilium 1.20 as Kind runs it with kubeProxyReplacement=true and ipam.mode=kubernetes: "
            "no kube-proxy DaemonSet, and no node carries kube-proxy's KUBE-* rules (only "
            "kubelet's empty KUBE-KUBELET-CANARY and KUBE-IPTABLES-HINT chains).",
            "Modelled: pods on their node's podCIDR with a /32 on eth0 (MTU "
            f"{CILIUM_DEVICE_MTU}) and a default route via the node's cilium_host address (MTU "
            f"{CILIUM_ROUTE_MTU}); nodes with cilium_host/cilium_net (a veth pair), "
            f"{CILIUM_VXLAN} (VXLAN, external, port {CILIUM_VXLAN_PORT}) that pod traffic between "
            "nodes really crosses, and lxc<12 hex> veths named as Cilium names them.",
            "Modelled: Services are translated in the client pod's own namespace before the "
            "packet leaves it (nat OUTPUT chain CILIUM_SOCK_LB, standing in for Cilium's socket "
            "LB), so backends see the client pod's address; a Service without backends is refused "
            "(ICMP port unreachable, Cilium's service-no-backend-response: reject). "
            "The node's own processes get the same translation; NodePorts, LoadBalancer "
            "addresses and externalIPs from outside are DNATed in CILIUM_PRE_nat.",
            "Modelled: NetworkPolicy and CiliumNetworkPolicy (cilium.io/v2, L3/L4: "
            "endpointSelector, from/toEndpoints, from/toCIDR and CIDRSet, from/toEntities all, "
            "world, cluster, host, remote-node, toPorts ports) enforced in each pod's own "
            "namespace, as Cilium's per-endpoint programs do: CILIUM_POL_IN on INPUT, "
            "CILIUM_POL_OUT on OUTPUT, each ending in one DROP ('cilium: policy denied'); blocked "
            "packets are dropped. The pod's own node always reaches it (allow-localhost); host "
            "and remote-node both mean the node network here.",
            "Modelled: the agent's iptables chains (CILIUM_INPUT/FORWARD/OUTPUT, CILIUM_PRE_nat, "
            "CILIUM_POST_nat with 'cilium masquerade non-cluster', the mangle chains).",
            "Modelled: HTTP rules (toPorts.rules.http: method, path, host, headers) judged by "
            "the workload agent in front of the pod's port, a denied request answered 403 "
            "'Access denied' as Cilium's Envoy does; Hubble's flows (labkit hubble observe) from "
            "NFLOG rules: each pod logs the new connections its policy let in (LABKIT-HUBBLE), "
            "each policy DROP logs first, with security identities computed from label sets; "
            "cilium-dbg status, service list, endpoint list and bpf lb list in the agent pods.",
            "Not modelled: eBPF itself (no BPF programs or maps; netfilter and routes do the "
            "work), identities in enforcement (policies are resolved to addresses), the "
            "tunnel's identity header, Hubble's relay and L7 flow records; DNS rules, deny "
            "rules (ingressDeny/egressDeny), toFQDNs, toServices, from/toNodes, from/toGroups, "
            "icmps, authentication, nodeSelector, enableDefaultDeny, TLS and listener fields and "
            "the other entities: the schema takes them as Cilium's CRD does (a Kind lab with "
            "Cilium enforces them), the sandbox refuses them on apply naming the field.",
        ),
        notes=(outside_world_note(),),
    )
