"""Issue 17 (agnhost ``/hostname``, the pod's /etc/hosts) on a real sandbox lab: Kubernetes' e2e
cases that read a pod's hostname and /etc/hosts, re-expressed. Lab ``tei``, Flannel."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.sandbox
LAB = "tei"
NS = "dns-e2e"
ZONE = "cluster.local"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
NETSHOOT = "{name: querier, image: nicolaka/netshoot}"


def _manifests(node: str) -> str:
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: dns-test-hosts, namespace: {NS}}}
spec: {{hostname: dns-querier-1, subdomain: dns-test-service, containers: [{NETSHOOT}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: dns-test-service-2, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{dns-test-hostname-attribute: "true"}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: dns-test-hostname
  namespace: {NS}
  labels: {{dns-test-hostname-attribute: "true"}}
spec: {{hostname: dns-querier-2, subdomain: dns-test-service-2, containers: [{NETSHOOT}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: endpoint-host-network, namespace: {NS}, labels: {{app: itp-host}}}}
spec:
  hostNetwork: true
  nodeName: {node}
  containers:
  - name: agnhost
    image: {AGNHOST}
    args: [netexec, --http-port=10180]
    ports: [{{containerPort: 10180}}]
---
apiVersion: v1
kind: Service
metadata: {{name: itp-host, namespace: {NS}}}
spec:
  internalTrafficPolicy: Local
  selector: {{app: itp-host}}
  ports: [{{port: 80, targetPort: 10180}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client-same-node, namespace: {NS}}}
spec: {{nodeName: {node}, containers: [{NETSHOOT}]}}
"""


@pytest.fixture(scope="module")
def lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "flannel", quiet=True)
    try:
        lab.apply(_manifests(_worker(lab)))
        yield lab
    finally:
        backend.down(LAB)


def _worker(lab) -> str:
    return next(
        node["metadata"]["name"]
        for node in lab.get("nodes", namespace=None)
        if node["metadata"]["name"].endswith("-worker")
    )


def _out(lab, pod: str, command: str) -> str:
    got = lab.exec(f"{NS}/{pod}", command)
    assert got.ok, got.stderr
    return got.stdout


def test_etc_hosts_entries_for_the_cluster(lab):
    """e2e test/e2e/network/dns.go: should provide /etc/hosts entries for the cluster

    A pod with hostname and subdomain and no Service behind them finds both its FQDN and its
    hostname with ``getent hosts`` (dns.go createProbeCommand's hostEntries): only kubelet's
    /etc/hosts (kubelet_pods.go managedHostsFileContent) can answer."""
    ip = lab.get("pods", "dns-test-hosts", namespace=NS)[0]["status"]["podIP"]
    fqdn = f"dns-querier-1.dns-test-service.{NS}.svc.{ZONE}"
    for name in (fqdn, "dns-querier-1"):
        assert _out(lab, "dns-test-hosts", f"getent hosts {name}").split() == [
            ip,
            fqdn,
            "dns-querier-1",
        ]
    assert _out(lab, "dns-test-hosts", "cat /etc/hosts").endswith(
        f"fe00::2\tip6-allrouters\n{ip}\t{fqdn}\tdns-querier-1\n"
    )


def test_dns_for_pods_for_hostname(lab):
    """e2e test/e2e/network/dns.go: should provide DNS for pods for Hostname

    The pod (hostname dns-querier-2, subdomain = a headless Service selecting it) resolves its
    FQDN and its bare hostname, and its UTS hostname is spec.hostname
    (GeneratePodHostNameAndDomain)."""
    ip = lab.get("pods", "dns-test-hostname", namespace=NS)[0]["status"]["podIP"]
    fqdn = f"dns-querier-2.dns-test-service-2.{NS}.svc.{ZONE}"
    for name in (fqdn, "dns-querier-2"):
        assert _out(lab, "dns-test-hostname", f"getent hosts {name}").split()[0] == ip
    assert _out(lab, "dns-test-hostname", "hostname").strip() == "dns-querier-2"
    assert lab.resolve(f"{NS}/client-same-node", fqdn) == [ip]  # CoreDNS has it too


def test_internal_traffic_policy_local_to_a_host_network_pod(lab):
    """e2e test/e2e/network/service.go: should respect internalTrafficPolicy=Local Pod and Node, to Pod (hostNetwork: true)

    agnhost netexec's /hostname answers os.Hostname() (test/images/agnhost/netexec/netexec.go),
    which for a host-network endpoint is its node's name, from a pod on that node and from the
    node itself."""
    node = _worker(lab)
    url = "http://itp-host/hostname"
    assert _out(lab, "client-same-node", f"curl -s --max-time 3 {url}") == node
    ip = lab.get("services", "itp-host", namespace=NS)[0]["spec"]["clusterIP"]
    on_node = lab.node_exec(node, f"curl -s --max-time 3 http://{ip}/hostname")
    assert on_node.ok and on_node.stdout == node, on_node.stderr
