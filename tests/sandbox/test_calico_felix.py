"""Calico mode as Kind installs it (VXLANCrossSubnet pool, tigera-operator's Felix settings), on
the session's Calico lab: the VXLAN device, MTU and routes Felix programs, and the INPUT hook
that applies a pod's egress policies to its own node."""

from __future__ import annotations

import re

import pytest

from labkit.sandbox import fabric_calico, ipsets, naming

NS = "felix-hooks"


def _node_of(lab, ref):
    namespace, name = ref.split("/")
    return lab.get("pod", name, namespace)[0]["spec"]["nodeName"]


def test_same_subnet_blocks_are_routed_directly_and_pods_have_vxlan_mtu(calico_lab):
    """Felix's route manager (felix/dataplane/linux/route_mgr.go ``noEncapRoute``: a
    VXLANCrossSubnet block whose node is in the same subnet is routed ``via <node IP>`` on the
    parent device, onlink, protocol 80) beside ``vxlan.calico`` (vxlan_mgr.go: VNI 4096, port
    4789); pod and host veth MTU = host MTU - 50 (int_dataplane.go ``vxlanMTUOverhead``).
    Cross-node traffic therefore leaves through eth0, not the tunnel."""
    lab = calico_lab
    worker = f"{lab.name}-worker"
    assert _node_of(lab, "demo/client-a") == worker
    target = lab.get("pod", "client-b", "demo")[0]
    assert target["spec"]["nodeName"] == f"{lab.name}-worker2"
    route = lab.node_exec(worker, "ip route show 192.168.30.0/26").stdout.strip()
    assert route == "192.168.30.0/26 via 172.18.0.4 dev eth0 proto 80 onlink"
    got = lab.node_exec(worker, f"ip route get {target['status']['podIP']}").stdout
    assert " dev eth0 " in got and "vxlan.calico" not in got
    details = lab.node_exec(worker, "ip -d link show vxlan.calico").stdout
    for word in ("mtu 1450", "vxlan id 4096", "local 172.18.0.3", "dstport 4789", "nolearning"):
        assert word in details, details
    assert naming.calico_vtep_mac(worker) in details
    vtep = lab.node_exec(worker, "ip -4 -o addr show vxlan.calico").stdout
    assert "inet 192.168.20.0/32" in vtep
    assert lab.exec("demo/client-a", "cat /sys/class/net/eth0/mtu").stdout.strip() == "1450"
    iface = naming.pod_host_iface("calico", "demo", "client-a")
    assert lab.node_exec(worker, f"cat /sys/class/net/{iface}/mtu").stdout.strip() == "1450"

    def tunnel_tx():
        out = lab.node_exec(worker, "cat /sys/class/net/vxlan.calico/statistics/tx_packets")
        return int(out.stdout)

    before = tunnel_tx()
    probe = lab.probe("demo/client-a", target["status"]["podIP"], 8080)
    assert probe.ok and probe.client_ip == lab.get("pod", "client-a", "demo")[0]["status"]["podIP"]
    assert tunnel_tx() == before, "same-subnet traffic does not take vxlan.calico"
    assert any(
        str(fabric_calico.CALICO_MTU) in n and "VXLANCrossSubnet" in n
        for n in lab.capabilities.notes
    )


def _workload(worker):
    host_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "host-web", "namespace": NS},
        "spec": {
            "hostNetwork": True,
            "nodeName": worker,
            "containers": [{"name": "c", "image": "agnhost", "ports": [{"containerPort": 8080}]}],
        },
    }
    client = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": NS, "labels": {"app": "client"}},
        "spec": {
            "nodeName": worker,
            "containers": [{"name": "c", "image": "agnhost", "ports": [{"containerPort": 8080}]}],
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    return [namespace, host_pod, client]


DENY_EGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "client-no-egress", "namespace": NS},
    "spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]},
}


def test_egress_isolated_pod_cannot_reach_its_own_nodes_host_network_port(calico_lab):
    """Felix's INPUT hook (felix/rules/static.go ``filterInputChain``: ``-i cali+ -g
    cali-wl-to-host``; ``filterWorkloadToHostChain``: cali-from-wl-dispatch, then the
    DefaultEndpointToHostAction ACCEPT that tigera/operator's calico-node sets): a pod under an
    egress deny-all policy cannot connect to a hostNetwork pod's port on its own node, which it
    reaches without the policy; a pod on another node, not isolated, still reaches it."""
    lab = calico_lab
    worker = f"{lab.name}-worker"
    docs = _workload(worker)
    lab.apply(docs)
    try:
        host_ip = lab.get("pod", "host-web", NS)[0]["status"]["podIP"]
        assert host_ip == "172.18.0.3"
        pairs = [(f"{NS}/client", host_ip, 8080), ("demo/client-b", host_ip, 8080)]
        assert [p.outcome for p in lab.probe_many(pairs)] == ["connected", "connected"]
        lab.apply(DENY_EGRESS)
        denied = lab.probe_many(pairs, timeout=0.5)
        assert [p.outcome for p in denied] == ["timeout", "connected"]
        saved = lab.node_exec(worker, "iptables-save -t filter").stdout
        iface = naming.pod_host_iface("calico", NS, "client")
        assert re.search(
            r'-A cali-INPUT -i cali\+ -m comment --comment "cali:\S{16}" '
            r"-g cali-wl-to-host",
            saved,
        ), saved
        assert f"-i {iface} -m comment" in saved and f"-g cali-fw-{iface}" in saved
        lab.delete([DENY_EGRESS])
        assert [p.outcome for p in lab.probe_many(pairs)] == ["connected", "connected"]
    finally:
        lab.delete(docs[::-1])


def test_node_rules_read_like_felix_with_hashes_and_namespace_profiles(calico_lab):
    """What ``iptables-save`` shows of Felix's filter rules on a node: every cali rule carries
    ``cali:<16 characters>`` (felix/iptables/renderer.go ``RenderAppend``), the hooks have the
    hashes of Calico's own dump (felix/fv/cali-iptables-dump.txt), and each local pod's
    workload chains end in its namespace's profile chains ``cali-pri-kns.<ns>`` /
    ``cali-pro-kns.<ns>`` (felix/rules/endpoints.go, felix/rules/policy.go
    ``ProfileChainName``)."""
    lab = calico_lab
    saved = lab.node_exec(f"{lab.name}-worker", "iptables-save -t filter").stdout
    cali = [line for line in saved.splitlines() if line.startswith("-A cali-")]
    assert cali and all(re.search(r'--comment "cali:[\w-]{16}"', line) for line in cali)
    assert '-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD' in saved
    assert '-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT' in saved
    iface = naming.pod_host_iface("calico", "demo", "client-a")
    tw = [line for line in cali if line.startswith(f"-A cali-tw-{iface} ")]
    assert any(line.endswith("-j cali-pri-kns.demo") for line in tw), tw
    assert ":cali-pro-kns.demo - [0:0]" in saved
    assert tw[-1].endswith('-m comment --comment "Drop if no profiles matched" -j DROP')


ALLOW_FROM_CLIENT_A = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "web-from-client-a", "namespace": "demo"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}],
    },
}


def test_policy_peers_are_ipsets_on_the_node(calico_lab):
    """Felix matches a selector peer with an IPv4 ``hash:net`` set named ``cali40s:<id>``
    (felix/ipsets/ipset_defs.go ``NameForMainIPSet``, felix/rules/rule_defs.go source IP set
    matches) holding the selected pods' addresses: the selected clients get through, another pod
    does not, and the set goes once no policy needs it."""
    if not ipsets.available():
        pytest.skip("this machine has no ipset tool or ip_set module: peers stay inline")
    lab = calico_lab
    web = lab.get("pods", namespace="demo", selector={"app": "web"})
    node = web[0]["spec"]["nodeName"]
    client_ips = [lab.get("pod", n, "demo")[0]["status"]["podIP"] for n in ("client-a", "client-b")]
    other = lab.get("pods", namespace="demo", selector={"app": "dashboard"})[0]["metadata"]["name"]
    lab.apply(ALLOW_FROM_CLIENT_A)
    try:
        sets = lab.node_exec(node, "ipset list -n").stdout.split()
        ours = [name for name in sets if name.startswith("cali40s:")]
        assert len(ours) == 1 and len(ours[0]) == 31, sets
        members = lab.node_exec(node, f"ipset list {ours[0]}").stdout
        assert "Type: hash:net" in members and all(ip in members for ip in client_ips)
        saved = lab.node_exec(node, "iptables-save -t filter").stdout
        assert f"-m set --match-set {ours[0]} src" in saved
        web_ip = web[0]["status"]["podIP"]
        probes = lab.probe_many([("demo/client-a", web_ip, 8080), (f"demo/{other}", web_ip, 8080)])
        assert [p.outcome for p in probes] == ["connected", "timeout"]
    finally:
        lab.delete([ALLOW_FROM_CLIENT_A])
    assert not [
        n for n in lab.node_exec(node, "ipset list -n").stdout.split() if n.startswith("cali40s:")
    ]
