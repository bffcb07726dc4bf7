"""Cilium on the sandbox, pure parts: names, the node and pod plans, the system objects, the
client-side Service translation and the node's Cilium chains, the capabilities."""

from __future__ import annotations

import hashlib
import re
from types import SimpleNamespace

import pytest

from labkit.errors import LabError
from labkit.sandbox import fabric, iptables, naming
from labkit.sandbox.backend import check_request
from labkit.sandbox.bootstrap import system_manifests
from labkit.sandbox.capabilities import capabilities_for
from labkit.sandbox.ciliumlb import (
    NO_BACKEND,
    SOCK_LB,
    cilium_node_rules,
    lb_chain,
    socket_lb_rules,
)
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.proxyports import service_ports
from labkit.sandbox.state import kube_proxy_mode_for
from labkit.sandbox.store import ClusterStore, kind_like_nodes
from labkit.sandbox.system.cilium import CILIUM_VERSION


def _nodes():
    specs = [
        SimpleNamespace(
            name=f"lab-{n}",
            internal_ip=f"172.18.0.{i + 2}",
            pod_cidr=f"10.244.{i}.0/24",
            ipam_block=f"10.244.{i}.0/24",
            more_blocks=(),
        )
        for i, n in enumerate(["control-plane", "worker", "worker2"])
    ]
    return fabric.node_nets("lab", "cilium", specs)


def _lines(stage, netns):
    return [
        line
        for job in stage
        if job.netns == netns
        for kind, payload in job.steps
        if kind != "sysctl"
        for line in payload
    ]


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("ns,name", [("default", "web"), ("a" * 63, "b" * 253)])
def test_lxc_names_follow_ciliums_endpoint2ifname(ns, name):
    """pkg/datapath/connector Endpoint2IfName: ``lxc`` + sha256 of the endpoint id, truncated to
    IFNAMSIZ - len("tmp") - 1 = 12 hex characters (``namespace/name`` stands in for the id)."""
    iface = naming.pod_host_iface("cilium", ns, name)
    assert iface == "lxc" + hashlib.sha256(f"{ns}/{name}".encode()).hexdigest()[:12]
    assert len(iface) == 15 and naming.check_ifname(iface) == iface
    assert naming.is_pod_host_iface(iface)
    assert not naming.is_pod_host_iface("lxc_health") and not naming.is_pod_host_iface("lxc12")


# --------------------------------------------------------------------------- plans


def test_cilium_node_has_host_net_pair_and_an_external_vxlan_on_8472():
    """Cilium's tunnel device (pkg/datapath/linux/devices ``cilium_vxlan``: collect-metadata
    VXLAN on defaults.TunnelPortVXLAN 8472) and the cilium_host/cilium_net veth pair, the host's
    router address a /32 on cilium_host; other podCIDRs go into the tunnel with the route MTU."""
    nodes = _nodes()
    stage = fabric.underlay_plan("lab", "cilium", nodes)[2]
    lines = _lines(stage, "lk-lab-w1")
    assert "link add cilium_host type veth peer name cilium_net" in lines
    assert "addr add 10.244.1.1/32 dev cilium_host" in lines
    vxlan = next(line for line in lines if line.startswith("link add cilium_vxlan"))
    assert "type vxlan external dstport 8472 nolearning" in vxlan
    assert (
        "route add 10.244.2.0/24 encap ip id 0 dst 172.18.0.4 via 10.244.2.1 dev cilium_vxlan "
        "onlink src 10.244.1.1 mtu 1450"
    ) in lines
    assert (
        f"neigh add 10.244.0.1 lladdr {naming.cilium_vxlan_mac(0)} dev cilium_vxlan nud permanent"
    ) in lines
    assert not any("10.244.1.0/24" in line for line in lines if line.startswith("route"))


def test_cilium_pod_routes_via_cilium_host_like_a_cilium_pod():
    """A Cilium pod's ``ip route`` (plugins/cilium-cni: the /32 address, ``<router> dev eth0
    scope link`` and ``default via <router> dev eth0 mtu <route MTU>``); the lxc veth keeps the
    device MTU 1500."""
    nodes = _nodes()
    pod = PodNet(
        "demo",
        "web",
        "lab-worker",
        "10.244.1.5",
        "lk-lab-p-0123456789",
        naming.pod_host_iface("cilium", "demo", "web"),
    )
    _, node_stage, pod_stage = fabric.pods_add_plan("cilium", [pod], nodes)
    assert _lines(pod_stage, pod.netns) == [
        "link set lo up",
        "addr add 10.244.1.5/32 dev eth0",
        "link set eth0 up",
        "route add 10.244.1.1 dev eth0 scope link",
        "route add default via 10.244.1.1 dev eth0 mtu 1450",
    ]
    node_lines = _lines(node_stage, "lk-lab-w1")
    assert (
        f"link add {pod.iface} mtu 1500 type veth peer name eth0 mtu 1500 netns {pod.netns}"
    ) in node_lines
    assert f"route replace 10.244.1.5/32 dev {pod.iface} scope link src 10.244.1.1" in node_lines


# --------------------------------------------------------------------------- system objects


def test_cilium_cluster_has_agent_envoy_and_operator_but_no_kube_proxy():
    """The Cilium Helm chart with kubeProxyReplacement=true: DaemonSets ``cilium`` and
    ``cilium-envoy``, Deployment ``cilium-operator`` (operator.replicas 2), ConfigMap
    ``cilium-config``; no kube-proxy DaemonSet (install/kubernetes/cilium/values.yaml)."""
    nodes = [n.to_dict() for n in kind_like_nodes("lab", "cilium")]
    objects = system_manifests("lab", "cilium", nodes)
    named = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("DaemonSet", "cilium"), ("DaemonSet", "cilium-envoy")} <= named
    assert ("Deployment", "cilium-operator") in named and ("DaemonSet", "kube-proxy") not in named
    config = next(o for o in objects if o["metadata"]["name"] == "cilium-config")["data"]
    assert config["kube-proxy-replacement"] == "true" and config["ipam"] == "kubernetes"
    store = ClusterStore.bootstrap("lab", "cilium")
    agents = [p for p in store.pods() if p["metadata"]["labels"].get("k8s-app") == "cilium"]
    assert sorted(p["spec"]["nodeName"] for p in agents) == [n["name"] for n in nodes]
    for node in store.get("Node", None, None, None):
        cidr = node["spec"]["podCIDR"]
        assert re.fullmatch(r"10\.244\.[0-2]\.0/24", cidr)
        annotations = node["metadata"]["annotations"]
        assert annotations["network.cilium.io/ipv4-cilium-host"] == cidr.replace("0/24", "1")


def test_cilium_version_is_the_kind_backends_pin():
    from labkit.kind.pins import CILIUM_VERSION as KIND_PIN

    assert f"v{KIND_PIN}" == CILIUM_VERSION


def test_sandbox_cilium_always_replaces_kube_proxy():
    """Cilium on the sandbox is only the kubeProxyReplacement=true install."""
    check_request("cilium", None)
    check_request("cilium", "none")
    with pytest.raises(LabError, match="replacement"):
        check_request("cilium", "iptables")
    assert kube_proxy_mode_for("cilium") == "none" and kube_proxy_mode_for("calico") == "iptables"
    caps = capabilities_for("cilium", ipsets=True)
    assert caps.kube_proxy_mode == "none"
    text = " ".join(caps.cni_model)
    for said in ("Not modelled: eBPF", "Hubble", "CILIUM_SOCK_LB", "cilium_vxlan"):
        assert said in text


# --------------------------------------------------------------------------- Service translation


def _svc(name, ports, svc_type="ClusterIP", ip="10.96.0.20", **spec):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"type": svc_type, "clusterIP": ip, "ports": ports, **spec},
    }


def _slice(service, addresses, port=8080, name="http"):
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-x",
            "namespace": "demo",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": name, "port": port, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "nodeName": node, "conditions": {"ready": True}}
            for ip, node in addresses
        ],
    }


NODES = [
    {
        "metadata": {"name": f"lab-{n}"},
        "status": {"addresses": [{"type": "InternalIP", "address": f"172.18.0.{i + 2}"}]},
    }
    for i, n in enumerate(["control-plane", "worker", "worker2"])
]


def test_socket_lb_translates_every_frontend_in_the_clients_namespace():
    """Cilium's socket LB (bpf/bpf_sock.c ``__sock4_xlate_fwd``) picks a backend for ClusterIPs,
    NodePorts on every node address, and LoadBalancer IPs at connect(); a frontend without
    backends is rejected with ICMP port unreachable (option ServiceNoBackendResponse, default
    ``reject``)."""
    web = _svc(
        "web",
        [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}],
        "LoadBalancer",
        status={},
    )
    web["status"] = {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}
    empty = _svc("empty", [{"name": "http", "port": 80}], ip="10.96.0.30")
    slices = [_slice("web", [("10.244.1.5", "lab-worker"), ("10.244.2.5", "lab-worker2")])]
    rules = socket_lb_rules("lab-worker", NODES, [web, empty], slices)
    nat, filt = _rules(rules, "nat"), _rules(rules, "filter")
    port = next(p for p in service_ports([web]) if p.name == "web")
    chain = lb_chain(port)
    assert any("-A OUTPUT" in r and f"-j {SOCK_LB}" in r for r in nat)
    assert any(
        r.startswith(f"-A {SOCK_LB} -d 10.96.0.20/32 -p tcp") and f"{chain}_I" in r for r in nat
    )
    for ip in ("172.18.0.2", "172.18.0.3", "172.18.0.4"):
        assert any(
            f"-d {ip}/32" in r and "--dport 30080" in r and r.endswith(f"-j {chain}") for r in nat
        )
    assert any("-d 172.18.255.200/32" in r and "--dport 80" in r for r in nat)
    dnat = [r for r in nat if r.startswith(f"-A {chain} ")]
    assert len(dnat) == 2 and "--probability 0.50000000000" in dnat[0]
    assert dnat[1].endswith("DNAT --to-destination 10.244.2.5:8080")
    refused = [r for r in filt if "10.96.0.30/32" in r]
    assert len(refused) == 1 and refused[0].endswith(NO_BACKEND)
    assert not any("KUBE-" in r for r in nat + filt)
    iptables.compose([rules])  # every jump lands on a declared chain


def test_internal_traffic_policy_local_uses_only_this_nodes_backends():
    """internalTrafficPolicy: Local (KEP-2086), honoured by Cilium's socket LB too: a node
    without a local backend refuses the ClusterIP."""
    svc = _svc("local", [{"name": "http", "port": 80}], internalTrafficPolicy="Local")
    slices = [_slice("local", [("10.244.2.5", "lab-worker2")])]
    here = socket_lb_rules("lab-worker", NODES, [svc], slices)
    there = socket_lb_rules("lab-worker2", NODES, [svc], slices)
    assert any(r.endswith(NO_BACKEND) for r in _rules(here, "filter"))
    assert not any("DNAT" in r for r in _rules(here, "nat"))
    assert any(r.endswith("DNAT --to-destination 10.244.2.5:8080") for r in _rules(there, "nat"))


def _rules(chains: iptables.Chains, table: str) -> list[str]:
    """Every rule of one table of a socket LB."""
    return [rule for rules in chains.rules[table].values() for rule in rules]


def test_node_rules_are_ciliums_chains_with_the_non_cluster_masquerade():
    """pkg/datapath/iptables/iptables.go: the CILIUM_* chains hooked by ``cilium-feeder`` rules,
    and installMasqueradeRules' "cilium masquerade non-cluster" (from the node's allocation
    range, not to it, not out of a cilium_ device); NodePorts from outside are DNATed at the node,
    with SNAT to the node's address only for a backend elsewhere and never under
    externalTrafficPolicy Local."""
    np = _svc(
        "np", [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}], "NodePort"
    )
    local = _svc(
        "np-local",
        [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30081}],
        "NodePort",
        ip="10.96.0.21",
        externalTrafficPolicy="Local",
    )
    slices = [
        _slice("np", [("10.244.2.5", "lab-worker2")]),
        _slice("np-local", [("10.244.2.6", "lab-worker2")]),
    ]
    rules = cilium_node_rules(NODES[1], [np, local], slices, "10.244.1.0/24")
    assert (
        '-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD'
        in rules["filter"]
    )
    assert (
        "-A CILIUM_POST_nat -s 10.244.1.0/24 ! -d 10.244.1.0/24 ! -o cilium_+ "
        '-m comment --comment "cilium masquerade non-cluster" -j MASQUERADE'
    ) in rules["nat"]
    assert any("--dport 30080" in r and r.startswith("-A CILIUM_PRE_nat") for r in rules["nat"])
    assert any("--dport 30080" in r and "MARK --set-xmark" in r for r in rules["mangle"])
    assert not any("--dport 30081" in r for r in rules["mangle"])
    # no local backend for the Local service on this node: refused, never sent elsewhere
    assert any("--dport 30081" in r and r.endswith(NO_BACKEND) for r in rules["filter"])
    every = [r for table in rules.values() for r in table]
    assert not any("KUBE-" in r for r in every)
    iptables.compose([iptables.kubelet_rules(), rules])


def test_status_says_what_of_cilium_is_modelled(fakes):
    """`labkit status` prints each line of the CNI model under the lab's header."""
    from labkit.status import status_view

    lab = fakes.FakeLab([], cni="cilium")
    lab.capabilities = capabilities_for("cilium", ipsets=True)
    header = status_view(lab).header
    assert "kube-proxy none" in header and "NetworkPolicy enforced" in header
    assert "cilium model: Not modelled: eBPF itself" in header
