"""The sandbox data plane, end to end in real namespaces: pod to pod, Services, NodePort,
LoadBalancer, Ingress, DNS and NetworkPolicy, on both CNIs."""

from __future__ import annotations

import collections
import re

import pytest

from labkit.errors import LabError
from labkit.lab import OUTSIDE, Lab
from labkit.sandbox import naming


def pods_of(lab, namespace, app=None):
    selector = {"app": app} if app else None
    return lab.get("pods", namespace=namespace, selector=selector)


def pod_ip(pod):
    return pod["status"]["podIP"]


def test_the_lab_implements_the_seam(any_lab):
    assert isinstance(any_lab, Lab)
    assert any_lab.backend == "sandbox"
    nodes = any_lab.get("nodes", namespace=None)
    assert [n["metadata"]["name"] for n in nodes] == [
        f"{any_lab.name}-control-plane",
        f"{any_lab.name}-worker",
        f"{any_lab.name}-worker2",
    ]


def test_pods_get_addresses_from_their_nodes_block(any_lab):
    for pod in pods_of(any_lab, "demo"):
        node = pod["spec"]["nodeName"]
        index = {"control-plane": 0, "worker": 1, "worker2": 2}[
            node.removeprefix(f"{any_lab.name}-")
        ]
        ip = pod_ip(pod)
        if any_lab.cni in ("flannel", "cilium"):
            assert ip.startswith(f"10.244.{index}.")
        else:
            assert ip.startswith(f"192.168.{10 * (index + 1)}.")
        addr = any_lab.exec(f"demo/{pod['metadata']['name']}", "ip -4 -o addr show dev eth0")
        assert addr.ok and ip in addr.stdout


def test_pod_to_pod_across_nodes_keeps_the_source_ip(any_lab):
    client = any_lab.get("pod", "client-a", "demo")[0]
    target = any_lab.get("pod", "client-b", "demo")[0]
    assert client["spec"]["nodeName"] != target["spec"]["nodeName"]
    probe = any_lab.probe("demo/client-a", pod_ip(target), 8080)
    assert probe.ok, probe.detail
    assert probe.served_by == "client-b"
    assert probe.client_ip == pod_ip(client), "no NAT between pods"


def test_flannel_crosses_nodes_over_vxlan(flannel_lab):
    route = flannel_lab.node_exec(f"{flannel_lab.name}-worker", "ip route show 10.244.2.0/24")
    assert route.stdout.strip() == "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"
    details = flannel_lab.node_exec(
        f"{flannel_lab.name}-worker", ["ip", "-d", "link", "show", "flannel.1"]
    ).stdout
    assert "vxlan id 1" in details and "dstport 8472" in details and "nolearning" in details
    mtu = flannel_lab.exec("demo/client-a", "cat /sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == "1450"


def test_calico_routes_pods_with_32s(calico_lab):
    client = calico_lab.get("pod", "client-a", "demo")[0]
    iface = naming.pod_host_iface("calico", "demo", "client-a")
    routes = calico_lab.node_exec(f"{calico_lab.name}-worker", "ip route").stdout
    assert f"{pod_ip(client)} dev {iface} scope link" in routes
    assert "blackhole 192.168.20.0/26" in routes
    assert "192.168.30.0/26 via 172.18.0.4 dev eth0" in routes
    inside = calico_lab.exec("demo/client-a", "ip route").stdout
    assert "default via 169.254.1.1 dev eth0" in inside


def test_cluster_ip_spreads_requests_over_every_endpoint(any_lab):
    svc = any_lab.get("svc", "web", "demo")[0]
    ip = svc["spec"]["clusterIP"]
    probes = any_lab.probe_many([("demo/client-a", ip, 80)] * 60, timeout=2.0)
    assert all(p.ok for p in probes), [p.detail for p in probes if not p.ok]
    counts = collections.Counter(p.served_by for p in probes)
    names = {p["metadata"]["name"] for p in pods_of(any_lab, "demo", "web")}
    assert set(counts) == names, counts
    assert min(counts.values()) >= 5, counts
    client = any_lab.get("pod", "client-a", "demo")[0]
    assert {p.client_ip for p in probes} == {pod_ip(client)}


def test_node_rules_read_like_kube_proxy(kube_proxy_lab):
    saved = kube_proxy_lab.node_exec(f"{kube_proxy_lab.name}-worker", "iptables-save").stdout
    svc_lines = [
        line
        for line in saved.splitlines()
        if line.startswith("-A KUBE-SERVICES ") and "demo/web:http cluster IP" in line
    ]
    assert svc_lines, saved
    chain = re.search(r"-j (KUBE-SVC-\S+)", svc_lines[0]).group(1)
    dispatch = [
        line
        for line in saved.splitlines()
        if line.startswith(f"-A {chain} ") and "KUBE-SEP-" in line
    ]
    assert len(dispatch) == 3
    assert "--probability 0.33333333349" in dispatch[0]
    assert "--probability 0.50000000000" in dispatch[1]
    assert "statistic" not in dispatch[2]
    seps = [re.search(r"-j (KUBE-SEP-\S+)", line).group(1) for line in dispatch]
    for sep in seps:
        assert re.search(rf"-A {sep} -p tcp .*-j DNAT --to-destination \S+:8080", saved)


def test_node_port_answers_at_every_node_from_outside(any_lab):
    ips = ["172.18.0.2", "172.18.0.3", "172.18.0.4"]
    probes = any_lab.probe_many([(OUTSIDE, ip, 30080) for ip in ips], timeout=2.0)
    assert all(p.ok for p in probes), [p.detail for p in probes]
    assert all(p.served_by.startswith("web-") for p in probes)


def test_load_balancer_gets_a_pool_address_reachable_from_outside(any_lab):
    svc = any_lab.get("svc", "web-lb", "demo")[0]
    ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert ip.startswith("172.18.255.")
    probe = any_lab.probe(OUTSIDE, ip, 80, timeout=2.0)
    assert probe.ok, probe.detail
    assert probe.served_by.startswith("web-")


def test_pod_ips_are_not_reachable_from_outside(any_lab):
    target = any_lab.get("pod", "client-b", "demo")[0]
    assert any_lab.probe(OUTSIDE, pod_ip(target), 8080).outcome == "timeout"


def test_ingress_routes_paths_to_different_services(any_lab):
    controller = any_lab.get("svc", "ingress-controller", "ingress-system")[0]
    ip = controller["status"]["loadBalancer"]["ingress"][0]["ip"]
    outside = naming.outside_netns(any_lab.name)
    from labkit.sandbox.netns import run_in_netns

    def get(path):
        result = run_in_netns(
            outside,
            [
                "curl",
                "-s",
                "-i",
                "--max-time",
                "3",
                "-H",
                "Host: shop.example",
                f"http://{ip}{path}",
            ],
        )
        assert result.ok, result.stderr
        return result.stdout

    api, dash, other = get("/api/items"), get("/dashboard"), get("/nowhere")
    # api's pods run agnhost netexec, whose rootHandler answers any other path with the time;
    # dashboard's run serve-hostname, which answers its name at every path (as on Kind)
    assert api.replace("\r\n", "\n").partition("\n\n")[2].startswith("NOW: "), api
    assert re.fullmatch(r"dashboard-\S+", dash.replace("\r\n", "\n").partition("\n\n")[2]), dash
    assert other.startswith("HTTP/1.1 404")


def test_services_without_ready_endpoints_refuse(any_lab):
    any_lab.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "nobody", "namespace": "demo"},
            "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]},
        }
    )
    try:
        ip = any_lab.get("svc", "nobody", "demo")[0]["spec"]["clusterIP"]
        assert any_lab.probe("demo/client-a", ip, 80).outcome == "refused"
    finally:
        any_lab.delete("svc/demo/nobody")


def test_udp_service(any_lab):
    ip = any_lab.get("svc", "api", "demo")[0]["spec"]["clusterIP"]
    probe = any_lab.probe("demo/client-a", ip, 9090, "UDP")
    assert probe.ok, probe.detail
    assert probe.served_by.startswith("api-")


# --------------------------------------------------------------------------- DNS


@pytest.mark.parametrize(
    "name",
    [
        "web",
        "web.demo",
        "web.demo.svc",
        "web.demo.svc.cluster.local",
        "web.demo.svc.cluster.local.",
    ],
)
def test_service_names_resolve_through_the_pods_resolver(any_lab, name):
    ip = any_lab.get("svc", "web", "demo")[0]["spec"]["clusterIP"]
    assert any_lab.resolve("demo/client-a", name) == [ip]


def test_cross_namespace_names_need_the_namespace(any_lab):
    ip = any_lab.get("svc", "db", "data")[0]["spec"]["clusterIP"]
    assert any_lab.resolve("demo/client-a", "db") == []
    assert any_lab.resolve("demo/client-a", "db.data") == [ip]


def test_headless_service_answers_every_ready_pod(any_lab):
    expected = sorted(pod_ip(p) for p in pods_of(any_lab, "demo", "web"))
    assert sorted(any_lab.resolve("demo/client-a", "web-headless")) == expected


def test_srv_records_for_named_ports(any_lab):
    srv = any_lab.resolve("demo/client-a", "_http._tcp.web.demo.svc.cluster.local", "SRV")
    assert srv == ["0 100 80 web.demo.svc.cluster.local."]


def test_external_name_is_a_cname(any_lab):
    assert any_lab.resolve("demo/client-a", "search", "CNAME") == ["db.data.svc.cluster.local"]
    db_ip = any_lab.get("svc", "db", "data")[0]["spec"]["clusterIP"]
    assert any_lab.resolve("demo/client-a", "search") == [db_ip]


def test_getent_inside_the_pod_uses_the_cluster_resolver(any_lab):
    conf = any_lab.exec("demo/client-a", "cat /etc/resolv.conf").stdout
    assert "search demo.svc.cluster.local svc.cluster.local cluster.local" in conf
    assert "nameserver 10.96.0.10" in conf and "ndots:5" in conf
    hosts = any_lab.exec("demo/client-a", ["getent", "hosts", "web"])
    assert hosts.ok and "web.demo.svc.cluster.local" in hosts.stdout


def test_probe_by_name(any_lab):
    probe = any_lab.probe("demo/client-a", "db.data", 5432)
    assert probe.ok and probe.served_by.startswith("db-")
    assert any_lab.probe("demo/client-a", "no-such-service", 80).outcome == "dns"


# --------------------------------------------------------------------------- NetworkPolicy

POLICY_NS = "secure"


def _policy_workload(ns):
    def pod(name, labels):
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "containers": [
                    {"name": "c", "image": "agnhost", "ports": [{"containerPort": 8080}]}
                ]
            },
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        pod("server", {"app": "server"}),
        pod("frontend", {"role": "frontend"}),
        pod("intruder", {"role": "other"}),
    ]


DENY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": POLICY_NS},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}
ALLOW = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-frontend", "namespace": POLICY_NS},
    "spec": {
        "podSelector": {"matchLabels": {"app": "server"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                "ports": [{"port": 8080}],
            }
        ],
    },
}


def test_policies_are_enforced_only_by_calico(any_lab):
    any_lab.apply(_policy_workload(POLICY_NS))
    try:
        server = pod_ip(any_lab.get("pod", "server", POLICY_NS)[0])
        pairs = [(f"{POLICY_NS}/frontend", server, 8080), (f"{POLICY_NS}/intruder", server, 8080)]
        assert all(p.ok for p in any_lab.probe_many(pairs)), "open before any policy"
        any_lab.apply(DENY)
        denied = any_lab.probe_many(pairs, timeout=0.5)
        any_lab.apply(ALLOW)
        allowed = any_lab.probe_many(pairs, timeout=0.5)
        assert any_lab.capabilities.network_policy == (any_lab.cni != "flannel")
        if any_lab.capabilities.network_policy:
            assert [p.outcome for p in denied] == ["timeout", "timeout"], "dropped, not refused"
            assert [p.outcome for p in allowed] == ["connected", "timeout"]
            assert allowed[0].client_ip == pod_ip(any_lab.get("pod", "frontend", POLICY_NS)[0])
        if any_lab.cni == "calico":
            saved = any_lab.node_exec(
                any_lab.get("pod", "server", POLICY_NS)[0]["spec"]["nodeName"],
                "iptables-save -t filter",
            ).stdout
            assert "cali-tw-" + naming.pod_host_iface("calico", POLICY_NS, "server") in saved
        if not any_lab.capabilities.network_policy:
            assert "does not implement NetworkPolicy" in " ".join(any_lab.capabilities.notes) or (
                "NetworkPolicy enforcement" in " ".join(any_lab.capabilities.notes)
            )
            assert all(p.ok for p in denied + allowed), (
                "Flannel stores policies but does not enforce them"
            )
        any_lab.delete([DENY, ALLOW])
        assert all(p.ok for p in any_lab.probe_many(pairs)), "open again once the policies are gone"
    finally:
        any_lab.delete(_policy_workload(POLICY_NS)[1:])


# ---------------------------------------------------------------------- exec, errors, atomicity


def test_exec_and_node_exec_run_real_commands(any_lab):
    chain = "CILIUM_POST_nat" if any_lab.cni == "cilium" else "KUBE-SERVICES"
    assert (
        chain in any_lab.node_exec(f"{any_lab.name}-control-plane", "iptables-save -t nat").stdout
    )
    pipe = any_lab.node_exec(f"{any_lab.name}-worker", "iptables-save | grep -c 'demo/web:http'")
    assert pipe.ok and int(pipe.stdout) > 0
    assert any_lab.exec("client-a", ["ip", "route"], namespace="demo").ok
    assert (
        "inet 172.18.0.3/16"
        in any_lab.node_exec(f"{any_lab.name}-worker", "ip -4 addr show eth0").stdout
    )


def test_unknown_pod_and_node_are_named_in_the_error(any_lab):
    with pytest.raises(LabError, match="no pod 'ghost' in namespace 'demo'") as err:
        any_lab.exec("demo/ghost", "true")
    assert "labkit status" in err.value.fix
    with pytest.raises(LabError, match="no node 'nowhere'"):
        any_lab.node_exec("nowhere", "true")


def test_a_bad_manifest_changes_nothing(any_lab):
    before = any_lab.get("pods", namespace=None)
    netns_before = sorted(n for n in _netns() if naming.is_lab_netns(any_lab.name, n))
    bad = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "fine", "namespace": "demo"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "broken", "namespace": "demo"},
            "spec": {
                "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": "eighty"}]}]
            },
        },
    ]
    with pytest.raises(LabError):
        any_lab.apply(bad)
    assert any_lab.get("pods", namespace=None) == before
    assert sorted(n for n in _netns() if naming.is_lab_netns(any_lab.name, n)) == netns_before


def test_a_failing_data_plane_change_is_rolled_back(any_lab, monkeypatch):
    from labkit.sandbox import iptables

    before = any_lab.get("pods", namespace=None)
    netns_before = sorted(n for n in _netns() if naming.is_lab_netns(any_lab.name, n))
    rules_before = any_lab.node_exec(f"{any_lab.name}-worker", "iptables-save -t nat").stdout
    calls = []

    def broken(netns, text, timeout=30.0, noflush=False):
        calls.append(netns)
        if len(calls) <= 3:
            raise LabError("simulated iptables failure", "none")
        return real(netns, text, timeout, noflush)

    real = iptables.restore
    monkeypatch.setattr(iptables, "restore", broken)
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "doomed", "namespace": "demo", "labels": {"app": "doomed"}},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]},
    }
    svc = {  # a change that touches every node's rules (a pod alone may touch none)
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "doomed", "namespace": "demo"},
        "spec": {"selector": {"app": "doomed"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    with pytest.raises(LabError, match="simulated"):
        any_lab.apply([doc, svc])
    monkeypatch.undo()
    assert any_lab.get("pods", namespace=None) == before
    assert sorted(n for n in _netns() if naming.is_lab_netns(any_lab.name, n)) == netns_before
    rules_after = any_lab.node_exec(f"{any_lab.name}-worker", "iptables-save -t nat").stdout
    assert "doomed" not in rules_before and "doomed" not in rules_after
    assert not any_lab.get("pod", "doomed", "demo") and not any_lab.get("svc", "doomed", "demo")


def test_node_bridges_keep_their_mac_while_pods_come_and_go(flannel_lab):
    """A bridge would otherwise take its lowest port MAC, and pods with the old gateway MAC in
    their ARP cache would have their packets bridged instead of routed."""

    def macs():
        return {
            n: flannel_lab.node_exec(
                f"{flannel_lab.name}-{n}", "cat /sys/class/net/cni0/address"
            ).stdout
            for n in ("worker", "worker2")
        }

    pinned = {
        "worker": naming.bridge_mac("cni0/1") + "\n",
        "worker2": naming.bridge_mac("cni0/2") + "\n",
    }
    assert macs() == pinned
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "churn", "namespace": "demo"},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "churn"}},
            "template": {
                "metadata": {"labels": {"app": "churn"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    flannel_lab.apply(doc)
    assert macs() == pinned
    flannel_lab.delete(doc)
    assert macs() == pinned
    gateway = flannel_lab.exec("demo/client-a", "ip neigh show 10.244.1.1").stdout
    assert not gateway or pinned["worker"].strip() in gateway


def test_deleting_a_deployment_removes_its_pods_namespaces(any_lab):
    any_lab.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "temp", "namespace": "demo"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "temp"}},
                "template": {
                    "metadata": {"labels": {"app": "temp"}},
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}
                        ]
                    },
                },
            },
        }
    )
    pods = pods_of(any_lab, "demo", "temp")
    spaces = {naming.pod_netns(any_lab.name, "demo", p["metadata"]["name"]) for p in pods}
    assert len(pods) == 2 and spaces <= set(_netns())
    any_lab.delete("deployment/demo/temp")
    assert not pods_of(any_lab, "demo", "temp")
    assert not spaces & set(_netns())


def test_a_second_process_sees_and_changes_the_same_lab(any_lab):
    import subprocess
    import sys

    config_map = (
        "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'name':'from-cli','namespace':'demo'}}"
    )
    code = (
        f"from labkit.sandbox.backend import attach; lab = attach({any_lab.name!r}); "
        f"lab.apply({config_map}); "
        "print(len(lab.get('pods', namespace='demo')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(any_lab.get("pods", namespace="demo"))
    assert any_lab.get("configmap", "from-cli", "demo")
    any_lab.delete("configmap/demo/from-cli")


def _netns():
    import os

    return os.listdir("/run/netns") if os.path.isdir("/run/netns") else []


def test_addresses_outside_the_cluster_are_reached_through_the_node(any_lab):
    any_lab.add_outside_address("203.0.113.0/24", ports=[8443])
    try:
        assert "203.0.113.0/24" in any_lab.outside_addresses()
        client = any_lab.get("pod", "client-a", "demo")[0]
        probe = any_lab.probe("demo/client-a", "203.0.113.77", 8443, timeout=2.0)
        assert probe.ok, probe.detail
        assert probe.served_by == "outside"
        assert probe.client_ip == client["status"]["hostIP"], (
            "pod traffic leaving the cluster is masqueraded"
        )
    finally:
        any_lab.remove_outside_address("203.0.113.0/24")
    assert any_lab.probe("demo/client-a", "203.0.113.77", 8443).outcome in (
        "unreachable",
        "timeout",
    )
    # the outside world's own payment gateway (203.0.113.10) stays
    assert any_lab.probe("demo/client-a", "203.0.113.10", 443).ok
    with pytest.raises(LabError, match="not one of the outside addresses"):
        any_lab.remove_outside_address("203.0.113.0/24")


def test_host_network_pods_run_in_their_node(any_lab):
    proxy = next(
        p
        for p in any_lab.get("pods", namespace="kube-system")
        if p["metadata"]["labels"].get("k8s-app") in ("kube-proxy", "cilium")
    )
    out = any_lab.exec(f"kube-system/{proxy['metadata']['name']}", "ip -4 -o addr show eth0").stdout
    assert proxy["status"]["hostIP"] in out


def test_kubernetes_service_reaches_the_api_server_on_the_control_plane(any_lab):
    """The API server pod runs in the host network, so what answers is the control-plane node:
    a host-network pod's hostname is its node's (kubelet's GeneratePodHostNameAndDomain is not
    applied to hostNetwork pods; they share the node's UTS namespace)."""
    probe = any_lab.probe_many([{"src": "demo/client-b", "dst": "10.96.0.1", "port": 443}])[0]
    assert probe.ok and probe.served_by == f"{any_lab.name}-control-plane"


def test_readiness_probes_decide_who_gets_traffic(any_lab):
    def pod(name, probe_port):
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo", "labels": {"app": "ready-test"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "agnhost",
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": probe_port}},
                    }
                ]
            },
        }

    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ready-test", "namespace": "demo"},
        "spec": {"selector": {"app": "ready-test"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    docs = [pod("ready-yes", 8080), pod("ready-no", 9999), svc]
    any_lab.apply(docs)
    try:
        states = {
            p["metadata"]["name"]: next(
                c["status"] for c in p["status"]["conditions"] if c["type"] == "Ready"
            )
            for p in pods_of(any_lab, "demo", "ready-test")
        }
        assert states == {"ready-yes": "True", "ready-no": "False"}
        ip = any_lab.get("svc", "ready-test", "demo")[0]["spec"]["clusterIP"]
        served = {p.served_by for p in any_lab.probe_many([("demo/client-a", ip, 80)] * 20)}
        assert served == {"ready-yes"}
        unready = any_lab.get("pod", "ready-no", "demo")[0]
        assert any_lab.probe("demo/client-a", pod_ip(unready), 8080).ok, (
            "an unready pod still answers directly"
        )
    finally:
        any_lab.delete(docs)


def test_ptr_records_name_services_and_pods(any_lab):
    ip = any_lab.get("svc", "web", "demo")[0]["spec"]["clusterIP"]
    assert any_lab.resolve("demo/client-a", ip, "PTR") == ["web.demo.svc.cluster.local"]


def test_tcpdump_on_a_node_sees_vxlan_or_plain_pod_packets(any_lab):
    import subprocess

    target = any_lab.get("pod", "client-b", "demo")[0]
    source = any_lab.get("pod", "client-a", "demo")[0]
    worker = naming.node_netns(any_lab.name, 1)  # client-a's node
    capture = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            worker,
            "timeout",
            "10",
            "tcpdump",
            "-l",
            "-c",
            "4",
            "-nni",
            "eth0",
            "udp port 8472 or tcp port 8080",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while "listening on" not in (line := capture.stderr.readline()):
            assert line, "tcpdump stopped before it listened"
        for _ in range(3):
            any_lab.probe("demo/client-a", pod_ip(target), 8080, timeout=2.0)
        out = capture.communicate(timeout=15)[0]
    finally:
        capture.kill()
        capture.wait()
    if any_lab.cni == "flannel":
        assert "172.18.0.3." in out and "172.18.0.4.8472" in out, out  # VXLAN between the node IPs
    else:
        assert f"{pod_ip(source)}." in out and f"{pod_ip(target)}.8080" in out, (
            out
        )  # pod IPs on the wire


def test_a_pod_reaches_itself_through_its_service(any_lab):
    """Hairpin: the Service's only endpoint is the client; Flannel needs hairpin mode on the cni0
    port and bridge netfilter in the node, Calico routes it back through the node."""
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "loner", "namespace": "demo", "labels": {"app": "loner"}},
            "spec": {
                "containers": [
                    {"name": "c", "image": "agnhost", "ports": [{"containerPort": 8080}]}
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "loner", "namespace": "demo"},
            "spec": {"selector": {"app": "loner"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]
    any_lab.apply(docs)
    try:
        probe = any_lab.probe("demo/loner", "loner", 80)
        assert probe.ok, probe.detail
        assert probe.served_by == "loner"
        pod = any_lab.get("pod", "loner", "demo")[0]
        # kube-proxy masquerades hairpin traffic (KUBE-SEP ... -s <pod> -j KUBE-MARK-MASQ), to the
        # address of the interface it leaves by: cni0's on Flannel, the node's on Calico (cali*
        # have none).
        bridge_ip = pod["status"]["podIP"].rsplit(".", 1)[0] + ".1"
        # Cilium's socket LB instead connects the pod to itself: nothing is masqueraded.
        assert (
            probe.client_ip
            == {
                "flannel": bridge_ip,
                "calico": pod["status"]["hostIP"],
                "cilium": pod["status"]["podIP"],
            }[any_lab.cni]
        )
    finally:
        any_lab.delete(docs)


def test_nodes_and_the_outside_resolve_through_the_outside_resolver(any_lab):
    import time

    began = time.perf_counter()
    assert any_lab.resolve(OUTSIDE, "web.demo.svc.cluster.local") == []
    assert any_lab.resolve(OUTSIDE, "api.example.net") == ["198.51.100.20"]
    proxy = next(
        p
        for p in any_lab.get("pods", namespace="kube-system")
        if p["metadata"]["labels"].get("k8s-app") in ("kube-proxy", "cilium")
    )
    assert any_lab.resolve(f"kube-system/{proxy['metadata']['name']}", "example.com") == [
        "192.0.2.10"
    ]
    assert time.perf_counter() - began < 5
    assert any_lab.probe(OUTSIDE, "web.demo", 80).outcome == "dns"
