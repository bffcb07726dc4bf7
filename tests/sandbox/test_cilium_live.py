"""Cilium on the sandbox, on real namespaces: Cilium's devices and routes, no kube-proxy rules on
any node, and Services translated in the client pod's own namespace (lab ``tci``)."""

from __future__ import annotations

import re
import time

NODES = ("control-plane", "worker", "worker2")


def _pods(lab, prefix):
    return [p for p in lab.get("Pod", namespace="demo") if p["metadata"]["name"].startswith(prefix)]


def _rx_packets(lab, node, dev):
    out = lab.node_exec(node, ["ip", "-s", "-o", "link", "show", dev]).stdout
    return int(re.search(r"RX:.*?\\\s+(\d+)\s+(\d+)", out).group(2))


def test_nodes_have_ciliums_devices_and_lxc_veths(cilium_lab):
    """Cilium's host devices (pkg/datapath/linux: the cilium_host/cilium_net veth pair, the
    collect-metadata ``cilium_vxlan`` on port 8472) and its endpoint veths, named by
    pkg/datapath/connector Endpoint2IfName (``lxc`` + 12 hex)."""
    lab = cilium_lab
    for short in NODES:
        node = f"{lab.name}-{short}"
        links = lab.node_exec(node, ["ip", "-d", "-o", "link", "show"]).stdout
        assert re.search(r"cilium_net@cilium_host: .* veth", links), node
        assert re.search(r"cilium_host@cilium_net: .* veth", links), node
        assert re.search(r"cilium_vxlan: .*vxlan external .*dstport 8472", links), node
        assert "flannel.1" not in links and "vxlan.calico" not in links
    worker = lab.node_exec(f"{lab.name}-worker", ["ip", "-o", "link", "show"]).stdout
    client = _pods(lab, "client-a")[0]
    assert client["spec"]["nodeName"] == f"{lab.name}-worker"
    assert re.search(r"\d+: lxc[0-9a-f]{12}@if\d+:", worker)


def test_a_pod_routes_via_its_nodes_cilium_host(cilium_lab):
    """A Cilium pod's routes (plugins/cilium-cni): a /32 on eth0, ``<cilium_host> dev eth0
    scope link`` and ``default via <cilium_host> dev eth0 mtu 1450`` (the tunnel's route MTU)."""
    lab = cilium_lab
    host = lab.node_exec(f"{lab.name}-worker", ["ip", "-4", "-o", "addr", "show", "cilium_host"])
    router = re.search(r"inet (\S+)/32", host.stdout).group(1)
    routes = [
        r.strip()
        for r in lab.exec("client-a", ["ip", "route"], namespace="demo").stdout.splitlines()
    ]
    assert routes == [f"default via {router} dev eth0 mtu 1450", f"{router} dev eth0 scope link"]
    addr = lab.exec("client-a", ["ip", "-4", "-o", "addr", "show", "eth0"], namespace="demo")
    assert re.search(r"inet 10\.244\.1\.\d+/32", addr.stdout)


def test_no_node_carries_kube_proxy_rules(cilium_lab):
    """kubeProxyReplacement=true (Cilium's kube-proxy-free guide): no KUBE-SERVICES,
    KUBE-NODEPORTS, KUBE-SVC/SEP rules on any node; kubelet's own empty canary and hint chains
    (pkg/kubelet/kubelet_network_linux.go) are all that is called KUBE-."""
    lab = cilium_lab
    web = next(s for s in lab.get("Service", namespace="demo") if s["metadata"]["name"] == "web")
    cluster_ip = web["spec"]["clusterIP"]
    for short in NODES:
        saved = lab.node_exec(f"{lab.name}-{short}", "iptables-save").stdout
        rules = [line for line in saved.splitlines() if line.startswith("-A")]
        assert not [r for r in rules if "KUBE-" in r], short
        chains = set(re.findall(r"^:(KUBE-\S+)", saved, re.M))
        assert chains == {"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}, short
        assert "CILIUM_POST_nat" in saved and "cilium masquerade non-cluster" in saved
        prerouting = [r for r in rules if r.startswith(("-A PREROUTING", "-A CILIUM_PRE_nat"))]
        assert not [r for r in prerouting if cluster_ip in r], short


def test_the_client_pod_translates_the_cluster_ip_and_the_backend_sees_the_pod(cilium_lab):
    """Cilium's socket LB (bpf/bpf_sock.c): the ClusterIP is replaced by a backend before the
    packet leaves the client, here by the client's own nat OUTPUT rules; the backend, on another
    node, sees the client pod's address, and the packet crosses ``cilium_vxlan``."""
    lab = cilium_lab
    web = next(s for s in lab.get("Service", namespace="demo") if s["metadata"]["name"] == "web")
    cluster_ip = web["spec"]["clusterIP"]
    saved = lab.exec("client-b", ["iptables-save", "-t", "nat"], namespace="demo").stdout
    assert re.search(rf"-A CILIUM_SOCK_LB -d {re.escape(cluster_ip)}/32 -p tcp", saved)
    client_b = _pods(lab, "client-b")[0]
    remote = [
        p for p in _pods(lab, "web-") if p["spec"]["nodeName"] != client_b["spec"]["nodeName"]
    ]
    assert remote
    before = _rx_packets(lab, remote[0]["spec"]["nodeName"], "cilium_vxlan")
    seen = set()
    for _ in range(12):
        probe = lab.probe("demo/client-b", cluster_ip, 80)
        assert probe.outcome == "connected", probe.detail
        assert probe.client_ip == client_b["status"]["podIP"], probe.detail
        seen.add(probe.served_by)
    assert {p["metadata"]["name"] for p in remote} & seen
    assert _rx_packets(lab, remote[0]["spec"]["nodeName"], "cilium_vxlan") > before


def test_a_new_backend_reaches_every_clients_namespace(cilium_lab):
    """The pod-side rules follow the EndpointSlices as kube-proxy's would (partial syncs): a
    Service without backends is refused (ICMP port unreachable: Cilium's default
    service-no-backend-response ``reject``, bpf/lib/nodeport.h ``tail_no_service_ipv4``) until
    it gains its first backend, which then serves."""
    lab = cilium_lab
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "later", "namespace": "demo"},
        "spec": {"selector": {"app": "later"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "later", "namespace": "demo", "labels": {"app": "later"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                    "args": ["netexec", "--http-port=8080"],
                    "ports": [{"containerPort": 8080}],
                }
            ]
        },
    }
    lab.apply([svc])
    try:
        ip = lab.get("Service", "later", namespace="demo")[0]["spec"]["clusterIP"]
        assert lab.probe("demo/client-a", ip, 80).outcome == "refused"
        lab.apply([pod])
        deadline = time.monotonic() + 10
        while (probe := lab.probe("demo/client-a", ip, 80)).outcome != "connected":
            assert time.monotonic() < deadline, probe.detail
            time.sleep(0.2)
        assert probe.served_by == "later"
    finally:
        lab.delete(
            [o for o in (svc, pod) if lab.get("Pod" if o is pod else "Service", "later", "demo")]
        )


def test_outside_reaches_a_nodeport_at_the_node(cilium_lab):
    """NodePort from outside under kube-proxy replacement (Cilium's kube-proxy-free guide): any
    node's address answers, for a backend on another node with the node's address as source
    (SNAT mode, the default)."""
    lab = cilium_lab
    for ip in ("172.18.0.2", "172.18.0.3", "172.18.0.4"):
        probe = lab.probe("@outside", ip, 30080)
        assert probe.outcome == "connected", probe.detail
        assert probe.served_by.startswith("web-")


def _cnp(spec, name="web-from-a"):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": spec,
    }


WEB_FROM_CLIENT_A = _cnp(
    {
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"k8s:app": "allowed-client"}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        ],
    }
)
ALLOWED_CLIENT = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "allowed", "namespace": "demo", "labels": {"app": "allowed-client"}},
    "spec": {
        "containers": [{"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1"}]
    },
}


def test_a_cilium_network_policy_lets_one_client_in_and_drops_the_other(cilium_lab):
    """Cilium's "Layer 3 Examples" / "Layer 4 Examples" (docs policy/language): an ingress rule
    with fromEndpoints and toPorts; what it does not allow is dropped (a timeout, never a
    refusal), counted by the endpoint's one denial rule, and the backend sees the allowed
    client's own address through the Service."""
    lab = cilium_lab
    lab.apply([ALLOWED_CLIENT, WEB_FROM_CLIENT_A])
    try:
        web = next(
            s for s in lab.get("Service", namespace="demo") if s["metadata"]["name"] == "web"
        )
        ip = web["spec"]["clusterIP"]
        allowed = lab.probe("demo/allowed", ip, 80, timeout=1.0)
        denied = lab.probe("demo/client-b", ip, 80, timeout=0.5)
        assert allowed.outcome == "connected", allowed.detail
        assert allowed.client_ip == _pods(lab, "allowed")[0]["status"]["podIP"]
        assert denied.outcome == "timeout", denied.detail
        dropped = 0
        for server in _pods(lab, "web-"):
            name = server["metadata"]["name"]
            saved = lab.exec(name, ["iptables-save", "-c", "-t", "filter"], namespace="demo")
            drop = next(
                line for line in saved.stdout.splitlines() if "policy denied (ingress)" in line
            )
            assert drop.endswith("-j DROP")
            dropped += int(re.match(r"\[(\d+):", drop).group(1))
        assert dropped >= 1
        assert len(lab.get("CiliumNetworkPolicy", namespace="demo")) == 1
    finally:
        lab.delete([WEB_FROM_CLIENT_A, ALLOWED_CLIENT])
    assert lab.probe("demo/client-b", ip, 80, timeout=1.0).outcome == "connected"


def test_cilium_policies_the_lab_cannot_enforce_are_refused(cilium_lab, calico_lab):
    """Cilium's CRD is served only where Cilium runs (kubectl: no matches for kind); fields
    Cilium 1.20's CRD accepts (pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml:
    toFQDNs, ingressDeny) but the sandbox does not enforce are refused on apply naming the
    field and the Kind fix, never stored unenforced."""
    import pytest

    from labkit.errors import LabError

    with pytest.raises(LabError, match="no matches for kind"):
        calico_lab.apply([WEB_FROM_CLIENT_A])
    selector = {"endpointSelector": {"matchLabels": {"app": "web"}}}
    fqdn = _cnp({**selector, "egress": [{"toFQDNs": [{"matchName": "example.com"}]}]}, "fqdn")
    deny = _cnp({**selector, "ingressDeny": [{"fromEntities": ["world"]}]}, "deny")
    with pytest.raises(LabError, match=r"spec.egress\[0\].toFQDNs is not modelled") as err:
        cilium_lab.apply([fqdn])
    assert "Kind lab with Cilium" in err.value.fix
    with pytest.raises(LabError, match=r"spec\.ingressDeny is not modelled"):
        cilium_lab.apply([deny])
    assert cilium_lab.get("CiliumNetworkPolicy", namespace="demo") == []
