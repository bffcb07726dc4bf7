"""Pure parts of the sandbox runtime: names, data-plane plans, iptables composition, workload
documents. No namespace is created here."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from labkit.errors import LabError
from labkit.sandbox import fabric, iptables, naming
from labkit.sandbox.capabilities import capabilities_for
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.readiness import readiness_checks
from labkit.sandbox.workloads import (
    ingress_rules,
    pod_nets,
    pod_ports,
    pod_role,
)
from labkit.sandbox.workloads_json import WorkloadsJson

# --------------------------------------------------------------------------- naming


@pytest.mark.parametrize("lab_name", ["netlab", "a", "a-b", "lab-2", "x" * 40])
def test_every_name_of_a_lab_is_its_own(lab_name):
    names = [naming.node_netns(lab_name, i) for i in range(3)] + [
        naming.fabric_netns(lab_name),
        naming.outside_netns(lab_name),
        naming.pod_netns(lab_name, "default", "web-1"),
    ]
    assert all(n.startswith(f"lk-{lab_name}-") for n in names)
    assert all(naming.is_lab_netns(lab_name, n) for n in names)
    assert naming.labs_of(names) == {lab_name}


def test_lab_a_never_claims_lab_a_b():
    other = [
        naming.node_netns("a-b", 0),
        naming.fabric_netns("a-b"),
        naming.outside_netns("a-b"),
        naming.pod_netns("a-b", "default", "x"),
        naming.node_netns("a-p", 1),
        naming.pod_netns("a-p", "ns", "y"),
    ]
    assert not any(naming.is_lab_netns("a", n) for n in other)
    assert not naming.is_lab_netns("a", "lk-a-p-12345")  # too short for a pod hash
    assert not naming.is_lab_netns("a", "lk-a-cp-x")
    assert naming.labs_of(other) == {"a-b", "a-p"}


def test_pod_namespaces_and_pod_veths_are_told_from_the_rest():
    pod = naming.pod_netns("a", "default", "web-1")
    assert naming.is_lab_pod_netns("a", pod)
    assert not naming.is_lab_pod_netns("a-b", pod) and not naming.is_lab_pod_netns("a", "lk-a-cp")
    assert not naming.is_lab_pod_netns("a", naming.pod_netns("a-b", "default", "web-1"))
    for cni in ("flannel", "calico"):
        assert naming.is_pod_host_iface(naming.pod_host_iface(cni, "default", "web-1"))
    for other in ("eth0", "cni0", "flannel.1", "veth-cp", "lo", "cali-x", "veth1"):
        assert not naming.is_pod_host_iface(other)


@pytest.mark.parametrize("bad", ["", "A", "-a", "a-", "a_b", "a/b", "x" * 41, "a b"])
def test_bad_lab_names_are_refused(bad):
    with pytest.raises(LabError):
        naming.check_lab_name(bad)


def test_pod_names_are_stable_and_distinct():
    assert naming.pod_netns("l", "default", "web") == naming.pod_netns("l", "default", "web")
    assert naming.pod_netns("l", "default", "web") != naming.pod_netns("l", "other", "web")
    assert re.fullmatch(r"lk-l-p-[0-9a-f]{10}", naming.pod_netns("l", "default", "web"))


@pytest.mark.parametrize(
    "ns,name",
    [("default", "web"), ("kube-system", "coredns-7d764666f9-abcde"), ("a" * 63, "b" * 253)],
)
def test_interface_names_fit_the_kernel_limit(ns, name):
    flannel = naming.pod_host_iface("flannel", ns, name)
    calico = naming.pod_host_iface("calico", ns, name)
    assert re.fullmatch(r"veth[0-9a-f]{8}", flannel)
    assert re.fullmatch(r"cali[0-9a-f]{11}", calico) and len(calico) == 15
    assert naming.check_ifname(calico) == calico


def test_calico_interface_name_is_calicos_own_hash():
    import hashlib

    assert (
        naming.pod_host_iface("calico", "default", "web")
        == "cali" + hashlib.sha1(b"default.web").hexdigest()[:11]
    )


def test_vtep_macs_are_unicast_local_and_distinct():
    macs = [naming.vtep_mac(i) for i in range(3)]
    assert len(set(macs)) == 3
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert len(mac.split(":")) == 6 and first & 1 == 0 and first & 2


@pytest.mark.parametrize("bad", ["", "x" * 16, "a b", "a/b"])
def test_bad_interface_names_are_refused(bad):
    with pytest.raises(ValueError):
        naming.check_ifname(bad)


# --------------------------------------------------------------------------- fabric plans


def _nodes(cni):
    specs = [
        SimpleNamespace(
            name=f"lab-{n}",
            internal_ip=f"172.18.0.{i + 2}",
            pod_cidr=f"10.244.{i}.0/24" if cni == "flannel" else f"192.168.{i}.0/24",
            ipam_block=None if cni == "flannel" else f"192.168.{10 * (i + 1)}.0/26",
            more_blocks=(),
        )
        for i, n in enumerate(["control-plane", "worker", "worker2"])
    ]
    return fabric.node_nets("lab", cni, specs)


def _lines(stage, netns):
    return [
        line
        for job in stage
        if job.netns == netns
        for kind, payload in job.steps
        if kind != "sysctl"
        for line in payload
    ]


def test_underlay_joins_every_node_and_outside_to_one_bridge():
    nodes = _nodes("flannel")
    create, switch, configure = fabric.underlay_plan("lab", "flannel", nodes, ["192.0.2.10/32"])
    assert _lines(create, None) == [
        f"netns add {n}"
        for n in ["lk-lab-fabric", "lk-lab-outside", "lk-lab-cp", "lk-lab-w1", "lk-lab-w2"]
    ]
    fabric_lines = _lines(switch, "lk-lab-fabric")
    for port, peer in [
        ("veth-cp", "lk-lab-cp"),
        ("veth-w1", "lk-lab-w1"),
        ("veth-w2", "lk-lab-w2"),
        ("veth-outside", "lk-lab-outside"),
    ]:
        assert f"link add {port} type veth peer name eth0 netns {peer}" in fabric_lines
        assert f"link set {port} master br-kind up" in fabric_lines
    outside = _lines(configure, "lk-lab-outside")
    assert "addr add 172.18.0.1/16 dev eth0" in outside
    lb_routes = [line for line in outside if line.startswith("route add 172.18.255.")]
    assert len(lb_routes) == 51
    assert all(" via 172.18.0.3 " in line or " via 172.18.0.4 " in line for line in lb_routes)
    assert "route replace local 192.0.2.10/32 dev lo" in outside
    # the only way on is a veth pair kept inside the namespace: nothing outside the lab is
    # reachable, nothing leaves
    assert [line for line in outside if "default" in line] == [
        "route add default via 169.254.0.1 dev uplink onlink"
    ]
    assert "link add uplink type veth peer name uplink-far" in outside
    assert not any("netns" in line for line in outside)


def test_flannel_node_has_bridge_vtep_and_static_entries_for_the_others():
    nodes = _nodes("flannel")
    job = fabric.node_job("flannel", nodes[1], nodes)
    lines = [line for kind, p in job.steps if kind == "ip" for line in p]
    fdb = [line for kind, p in job.steps if kind == "bridge" for line in p]
    sysctls = {k: v for kind, p in job.steps if kind == "sysctl" for k, v in p.items()}
    assert "addr add 172.18.0.3/16 dev eth0" in lines
    assert "route add default via 172.18.0.1 dev eth0" in lines
    assert "addr add 10.244.1.1/24 dev cni0" in lines
    assert f"link add cni0 address {naming.bridge_mac('cni0/1')} mtu 1450 type bridge" in lines
    vx = next(line for line in lines if line.startswith("link add flannel.1"))
    assert (
        "type vxlan id 1 local 172.18.0.3 dev eth0 dstport 8472 nolearning" in vx
        and "mtu 1450" in vx
    )
    assert "addr add 10.244.1.0/32 dev flannel.1" in lines
    for j, ip in [(0, "172.18.0.2"), (2, "172.18.0.4")]:
        assert f"route add 10.244.{j}.0/24 via 10.244.{j}.0 dev flannel.1 onlink" in lines
        assert (
            f"neigh add 10.244.{j}.0 lladdr {naming.vtep_mac(j)} dev flannel.1 nud permanent"
            in lines
        )
        assert f"fdb add {naming.vtep_mac(j)} dev flannel.1 dst {ip} self permanent" in fdb
    assert not any("10.244.1.0/24 via" in line for line in lines)
    assert (
        sysctls["net/ipv4/ip_forward"] == "1"
        and sysctls["net/bridge/bridge-nf-call-iptables"] == "1"
    )


def test_calico_node_blackholes_its_block_and_routes_the_others_directly():
    """Felix's VXLAN route manager (felix/dataplane/linux/route_mgr.go, ``blackholeRoutes`` and
    ``noEncapRoute``): a blackhole for the own block and, for a node in the same subnet (every
    sandbox node is in 172.18.0.0/16, as Kind's are), ``<block> via <node IP> onlink`` with
    protocol 80 (``dataplanedefs.DefaultRouteProto``), not through the tunnel."""
    nodes = _nodes("calico")
    steps = fabric.node_job("calico", nodes[2], nodes).steps
    lines = [line for kind, p in steps if kind == "ip" for line in p]
    assert "route add blackhole 192.168.30.0/26 proto 80" in lines
    assert "route add 192.168.10.0/26 via 172.18.0.2 dev eth0 proto 80 onlink" in lines
    assert "route add 192.168.20.0/26 via 172.18.0.3 dev eth0 proto 80 onlink" in lines
    assert not any("cni0" in line or "dev vxlan.calico onlink" in line for line in lines)


def test_calico_node_has_felix_vxlan_device_and_every_other_vtep():
    """Felix's VXLAN manager (felix/dataplane/linux/vxlan_mgr.go with felix/vxlanfdb): device
    ``vxlan.calico``, VNI 4096, port 4789, MTU host-50 (``vxlanMTUOverhead``), address = the
    tunnel address IPAM gives first in the block; a permanent ARP and FDB entry per remote VTEP
    whose MAC is ``vtepMACForHost`` (felix/calc/vxlan_resolver.go: 'f' + sha1(node)[0:5])."""
    nodes = _nodes("calico")
    steps = fabric.node_job("calico", nodes[2], nodes).steps
    lines = [line for kind, p in steps if kind == "ip" for line in p]
    fdb = [line for kind, p in steps if kind == "bridge" for line in p]
    mac = naming.calico_vtep_mac("lab-worker2")
    assert (
        f"link add vxlan.calico address {mac} mtu 1450 type vxlan id 4096 local 172.18.0.4 "
        "dev eth0 dstport 4789 nolearning"
    ) in lines
    assert "addr add 192.168.30.0/32 dev vxlan.calico" in lines
    for other, vtep in (("lab-control-plane", "192.168.10.0"), ("lab-worker", "192.168.20.0")):
        other_mac = naming.calico_vtep_mac(other)
        assert f"neigh add {vtep} lladdr {other_mac} dev vxlan.calico nud permanent" in lines
    assert fdb == [
        f"fdb add {naming.calico_vtep_mac('lab-control-plane')} dev vxlan.calico "
        "dst 172.18.0.2 self permanent",
        f"fdb add {naming.calico_vtep_mac('lab-worker')} dev vxlan.calico "
        "dst 172.18.0.3 self permanent",
    ]


def test_calico_vtep_mac_is_felix_deterministic_mac():
    """felix/calc/vxlan_resolver.go ``vtepMACForHost``: HardwareAddr('f' + sha1(name)[0:5])."""
    import hashlib

    for name in ("lab-worker", "netlab-control-plane", "n"):
        raw = bytes.fromhex(naming.calico_vtep_mac(name).replace(":", ""))
        assert raw == b"f" + hashlib.sha1(name.encode()).digest()[:5]
    assert naming.calico_vtep_mac("a") != naming.calico_vtep_mac("b")


def _pod(cni, ns="default", name="web", node="lab-worker", ip="10.244.1.2", host=False):
    return PodNet(
        ns,
        name,
        node,
        ip,
        naming.pod_netns("lab", ns, name),
        "" if host else naming.pod_host_iface(cni, ns, name),
        host,
    )


def test_flannel_pod_plugs_into_cni0_with_hairpin_and_gets_flannel_routes():
    nodes = _nodes("flannel")
    pod = _pod("flannel")
    create, node_stage, pod_stage = fabric.pods_add_plan("flannel", [pod], nodes)
    assert _lines(create, None) == [f"netns add {pod.netns}"]
    node_lines = _lines(node_stage, "lk-lab-w1")
    assert (
        f"link add {pod.iface} mtu 1450 type veth peer name eth0 mtu 1450 netns {pod.netns}"
        in node_lines
    )
    assert f"link set {pod.iface} master cni0" in node_lines
    assert f"link set dev {pod.iface} type bridge_slave hairpin on" in node_lines
    assert _lines(pod_stage, pod.netns) == [
        "link set lo up",
        "addr add 10.244.1.2/24 dev eth0",
        "link set eth0 up",
        "route add default via 10.244.1.1 dev eth0",
        "route add 10.244.0.0/16 via 10.244.1.1 dev eth0",
    ]


def test_calico_pod_is_routed_with_a_32_and_proxy_arp():
    """The calico CNI plugin (cni-plugin/pkg/dataplane/linux/dataplane_linux.go): a /32, routes
    via 169.254.1.1, proxy ARP on the host veth, MTU from Felix's file (host MTU - 50) on both
    ends."""
    nodes = _nodes("calico")
    pod = _pod("calico", ip="192.168.20.1")
    _, node_stage, pod_stage = fabric.pods_add_plan("calico", [pod], nodes)
    node_lines = _lines(node_stage, "lk-lab-w1")
    assert f"route replace 192.168.20.1/32 dev {pod.iface} scope link" in node_lines
    assert (
        f"link add {pod.iface} mtu 1450 address ee:ee:ee:ee:ee:ee type veth "
        f"peer name eth0 mtu 1450 netns {pod.netns}"
    ) in node_lines
    sysctls = {
        k: v
        for job in node_stage
        for kind, p in job.steps
        if kind == "sysctl"
        for k, v in p.items()
    }
    assert sysctls[f"net/ipv4/conf/{pod.iface}/proxy_arp"] == "1"
    assert _lines(pod_stage, pod.netns)[1:] == [
        "addr add 192.168.20.1/32 dev eth0",
        "link set eth0 up",
        "route add 169.254.1.1 dev eth0 scope link",
        "route add default via 169.254.1.1 dev eth0",
    ]


def test_host_network_pods_need_no_plumbing():
    nodes = _nodes("flannel")
    host = _pod("flannel", host=True)
    assert fabric.pods_add_plan("flannel", [host], nodes) == []
    assert fabric.pods_remove_plan([host], nodes) == []


def test_removing_a_pod_deletes_its_veth_then_its_namespace():
    nodes = _nodes("flannel")
    pod = _pod("flannel")
    node_stage, host_stage = fabric.pods_remove_plan([pod], nodes)
    assert _lines(node_stage, "lk-lab-w1") == [f"link del {pod.iface}"]
    assert _lines(host_stage, None) == [f"netns del {pod.netns}"]


# --------------------------------------------------------------------------- iptables composition


def test_compose_orders_fragments_and_declares_builtins_once():
    text = iptables.compose(
        [
            {
                "filter": [
                    ":cali-FORWARD - [0:0]",
                    "-A FORWARD -j cali-FORWARD",
                    "-A cali-FORWARD -j ACCEPT",
                ]
            },
            {
                "filter": [
                    ":INPUT ACCEPT [0:0]",
                    ":FORWARD ACCEPT [0:0]",
                    ":KUBE-FORWARD - [0:0]",
                    "-A FORWARD -j KUBE-FORWARD",
                ],
                "nat": [":KUBE-SERVICES - [0:0]", "-A PREROUTING -j KUBE-SERVICES"],
            },
        ]
    )
    filter_part = text.split("*filter\n")[1].split("COMMIT")[0].splitlines()
    assert filter_part[:3] == [
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
    ]
    assert filter_part.count(":FORWARD ACCEPT [0:0]") == 1
    assert filter_part.index("-A FORWARD -j cali-FORWARD") < filter_part.index(
        "-A FORWARD -j KUBE-FORWARD"
    )
    assert "*mangle" in text and "*nat" in text, "every restore rewrites the tables it owns"
    assert text.index("*mangle") < text.index("*nat") < text.index("*filter")


def test_compose_keeps_a_builtin_policy():
    assert ":FORWARD DROP [0:0]" in iptables.compose([{"filter": [":FORWARD DROP [0:0]"]}])


@pytest.mark.parametrize(
    "fragment,words",
    [
        ({"filter": ["-A FORWARD -j NOWHERE"]}, "NOWHERE"),
        ({"filter": ["-A MISSING -j ACCEPT"]}, "MISSING"),
        ({"bogus": []}, "bogus"),
        ({"filter": ["-I FORWARD -j ACCEPT"]}, "-I"),
        ({"filter": [":FORWARD - [0:0]"]}, "policy"),
    ],
)
def test_compose_refuses_what_iptables_restore_would(fragment, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        iptables.compose([fragment])


def test_flannel_rules_accept_and_masquerade_like_flanneld():
    rules = iptables.flannel_rules("10.244.1.0/24", "10.244.0.0/16")
    text = iptables.compose([rules])
    assert '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD' in text
    assert "-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4" in text
    assert "-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16" in text


def test_calico_nat_outgoing_masquerades_only_leaving_the_pool():
    text = iptables.compose([iptables.calico_nat_rules("192.168.0.0/16")])
    assert "-A cali-nat-outgoing -s 192.168.0.0/16 ! -d 192.168.0.0/16" in text
    assert "-A POSTROUTING" in text and "cali-POSTROUTING" in text


def test_hostport_rules_dnat_to_the_pod():
    rules = iptables.hostport_rules(
        [iptables.HostPort("ingress-system/ctl", "10.244.0.2", "TCP", 80, 8080, "")]
    )
    text = iptables.compose([rules])
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in text
    assert "-j DNAT --to-destination 10.244.0.2:8080" in text
    assert "--dports 80 " in text
    assert iptables.hostport_rules([]) == {}


# --------------------------------------------------------------------------- workloads


def _k8s_pod(
    name,
    image="registry.k8s.io/e2e-test-images/agnhost:2.66.1",
    ns="default",
    node="lab-worker",
    ip="10.244.1.2",
    ports=((8080, "TCP"),),
    host=False,
    probe=None,
):
    container = {
        "name": "c",
        "image": image,
        "ports": [{"containerPort": p, "protocol": pr, "name": f"p{p}"} for p, pr in ports],
    }
    if probe:
        container["readinessProbe"] = probe
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "hostNetwork": host, "containers": [container]},
        "status": {"phase": "Running", "podIP": ip},
    }


@pytest.mark.parametrize(
    "image,role",
    [
        ("registry.k8s.io/coredns/coredns:v1.12.1", "dns"),
        ("labkit/ingress-controller:1", "ingress"),
        ("nginx", "netexec"),
    ],
)
def test_role_follows_the_image(image, role):
    assert pod_role(_k8s_pod("x", image)) == role


def test_ports_are_unique_across_containers():
    pod = _k8s_pod("x", ports=((8080, "TCP"), (53, "UDP")))
    pod["spec"]["containers"].append(
        {"name": "d", "image": "x", "ports": [{"containerPort": 8080}]}
    )
    assert pod_ports(pod) == [{"port": 8080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]


def test_pod_nets_skip_unscheduled_and_use_the_node_for_host_network():
    nodes = _nodes("flannel")
    pending = _k8s_pod("p")
    pending["status"] = {"phase": "Pending"}
    host = _k8s_pod("h", host=True, ip="172.18.0.3")
    nets = pod_nets("lab", "flannel", [_k8s_pod("a"), pending, host], nodes)
    assert set(nets) == {"default/a", "default/h"}
    assert nets["default/h"].netns == "lk-lab-w1" and nets["default/h"].host_network
    assert nets["default/a"].netns == naming.pod_netns("lab", "default", "a")


def test_workloads_document_lists_pods_records_and_ingress():
    nodes = _nodes("flannel")
    pods = [
        _k8s_pod("a"),
        _k8s_pod(
            "dns",
            image="coredns/coredns:1",
            ns="kube-system",
            ip="10.244.1.3",
            ports=((53, "UDP"), (53, "TCP")),
        ),
    ]
    nets = pod_nets("lab", "flannel", pods, nodes)
    svc = {"metadata": {"name": "a", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.5"}}
    sections = {"ingress": [], "dns_namespaces": ["default", "team-b"]}
    doc = json.loads(WorkloadsJson().text(pods, nets, [svc], [], [], sections))
    assert ["a.default.svc.cluster.local.", "A", "10.96.0.5", 30] in doc["dns_records"]
    assert list(doc) == ["workloads", "dns_records", "ingress", "dns_namespaces"]
    assert doc["dns_namespaces"] == ["default", "team-b"]
    roles = {w["name"]: w["role"] for w in doc["workloads"]}
    assert roles == {"a": "netexec", "dns": "dns"}


def test_ingress_rules_resolve_services_to_cluster_ips():
    services = [
        {
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.1.1", "ports": [{"name": "http", "port": 80}]},
        },
        {
            "metadata": {"name": "none", "namespace": "shop"},
            "spec": {"clusterIP": "None", "ports": []},
        },
    ]
    ingress = {
        "metadata": {"name": "i", "namespace": "shop"},
        "spec": {
            "tls": [{"hosts": ["shop.example"]}],
            "rules": [
                {
                    "host": "shop.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/api",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "api", "port": {"name": "http"}}},
                            },
                            {
                                "path": "/x",
                                "pathType": "Exact",
                                "backend": {"service": {"name": "none", "port": {"number": 80}}},
                            },
                            {
                                "path": "/y",
                                "pathType": "Exact",
                                "backend": {"service": {"name": "missing", "port": {"number": 80}}},
                            },
                        ]
                    },
                }
            ],
        },
    }
    rules, tls = ingress_rules([ingress], services)
    assert rules == [
        {
            "host": "shop.example",
            "path": "/api",
            "pathType": "Prefix",
            "backend": {"ip": "10.96.1.1", "port": 80, "service": "shop/api"},
        }
    ]
    assert tls == ["shop.example"]


def test_readiness_checks_resolve_named_ports():
    pod = _k8s_pod(
        "a", probe={"httpGet": {"path": "/healthz", "port": "p8080"}, "timeoutSeconds": 3}
    )
    assert readiness_checks(pod) == [
        {
            "container": "c",
            "kind": "httpGet",
            "port": 8080,
            "path": "/healthz",
            "scheme": "HTTP",
            "timeout": 1.0,
        }
    ]
    tcp = _k8s_pod("b", probe={"tcpSocket": {"port": 9999}})
    assert (
        readiness_checks(tcp)[0]["kind"] == "tcpSocket" and readiness_checks(tcp)[0]["port"] == 9999
    )
    assert readiness_checks(_k8s_pod("c")) == []
    assert (
        readiness_checks(_k8s_pod("d", probe={"exec": {"command": ["true"]}}))[0]["kind"] == "other"
    )


def test_capabilities_say_what_is_enforced():
    assert capabilities_for("calico", True).network_policy is True
    flannel = capabilities_for("flannel", True)
    assert (
        flannel.network_policy is False
        and "Flannel does not implement NetworkPolicy" in flannel.notes[0]
    )
    assert flannel.kube_proxy_mode == "iptables"
    with_sets, without = capabilities_for("calico", True), capabilities_for("calico", False)
    assert any("cali40s: ipsets (hash:net), as Felix does" in n for n in with_sets.notes)
    assert any("no ipset tool or no ip_set kernel module" in n for n in without.notes)


@pytest.mark.parametrize(
    "cni,mode,words",
    [
        ("cilium", "iptables", "kube-proxy replacement"),
        ("weave", None, "weave"),
        ("flannel", "ipvs", "IPVS"),
        ("calico", "nftables", "nftables"),
        ("flannel", "none", "none"),
        ("calico", "bogus", "bogus"),
    ],
)
def test_requests_the_sandbox_cannot_model_are_refused(cni, mode, words):
    from labkit.sandbox.backend import check_request

    with pytest.raises(LabError, match=words):
        check_request(cni, mode)


def test_iptables_mode_is_accepted():
    from labkit.sandbox.backend import check_request

    check_request("flannel", None)
    check_request("calico", "iptables")


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_every_namespace_the_lab_configures_sends_icmp_errors_unlimited(cni):
    nodes = _nodes(cni)
    pod = _pod(cni, ip="10.244.1.2" if cni == "flannel" else "192.168.20.1")
    _, _, configure = fabric.underlay_plan("lab", cni, nodes)
    _, _, pod_stage = fabric.pods_add_plan(cni, [pod], nodes)
    masks = {
        job.netns: p.get("net/ipv4/icmp_ratemask")
        for job in [*configure, *pod_stage]
        for kind, p in job.steps
        if kind == "sysctl" and "net/ipv4/icmp_ratemask" in p
    }
    expected = {naming.outside_netns("lab"), *(n.netns for n in nodes), pod.netns}
    assert set(masks) == expected
    # Destination unreachable (type 3) is exempt; the kernel's other defaults stay limited.
    assert {int(m) for m in masks.values()} == {6168 & ~(1 << 3)}
