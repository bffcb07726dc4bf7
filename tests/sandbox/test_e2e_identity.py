"""Issue 17 (agnhost ``/hostname``, the pod's /etc/hosts) and 12.5 (pod identity) on a real
sandbox lab: Kubernetes' e2e cases that read a pod's hostname and /etc/hosts, re-expressed, and
a StatefulSet's pods, which get hostname and subdomain from their controller. Lab ``tei``,
Flannel."""

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
---
apiVersion: v1
kind: Pod
metadata: {{name: named-server, namespace: {NS}}}
spec:
  hostname: custom-name
  containers:
  - name: agnhost
    image: {AGNHOST}
    args: [netexec, --http-port=8080, --udp-port=8081]
    ports: [{{containerPort: 8080}}, {{containerPort: 8081, protocol: UDP}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{NETSHOOT}]}}
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
    node itself."""  # noqa: E501
    node = _worker(lab)
    url = "http://itp-host/hostname"
    assert _out(lab, "client-same-node", f"curl -s --max-time 3 {url}") == node
    ip = lab.get("services", "itp-host", namespace=NS)[0]["spec"]["clusterIP"]
    on_node = lab.node_exec(node, f"curl -s --max-time 3 http://{ip}/hostname")
    assert on_node.ok and on_node.stdout == node, on_node.stderr


def test_agnhost_answers_with_spec_hostname_over_http_and_udp(lab):
    """agnhost netexec.go's /hostname handler and UDP ``hostname`` command answer
    os.Hostname(), which kubelet sets to spec.hostname when a pod names one
    (kubelet_pods.go GeneratePodHostNameAndDomain), not to the pod's name."""
    ip = lab.get("pods", "named-server", namespace=NS)[0]["status"]["podIP"]
    http = _out(lab, "client-same-node", f"curl -s --max-time 3 http://{ip}:8080/hostname")
    udp_ask = f"exec 3<>/dev/udp/{ip}/8081; printf hostname >&3; "
    udp_ask += "timeout 2 dd bs=512 count=1 status=none <&3"
    udp = _out(lab, "client-same-node", f"bash -c '{udp_ask}'")
    assert (http, udp) == ("custom-name", "custom-name")
    assert _out(lab, "named-server", "hostname").strip() == "custom-name"


def test_a_statefulset_pod_knows_its_stable_name(lab):
    """A StatefulSet's controller gives each pod hostname = pod name and subdomain =
    serviceName (pkg/controller/statefulset stateful_set_utils.go updateIdentity); kubelet
    then writes its FQDN into /etc/hosts (managedHostsFileContent) and sets its hostname."""
    ip = lab.get("pods", "db-0", namespace=NS)[0]["status"]["podIP"]
    fqdn = f"db-0.db.{NS}.svc.{ZONE}"
    assert f"{ip}\t{fqdn}\tdb-0\n" in _out(lab, "db-0", "cat /etc/hosts")
    assert _out(lab, "db-0", "hostname").strip() == "db-0"
    assert _out(lab, "db-0", "hostname -f").strip() == fqdn
