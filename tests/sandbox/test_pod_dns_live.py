"""Issue 12.2 on a real sandbox lab: each pod's resolv.conf follows its dnsPolicy and dnsConfig
as kubelet writes it, and lookups from the pod (``lab.resolve``, probes by name) use that file's
nameservers and search list. Lab ``tpd``, Flannel."""

from __future__ import annotations

import os

import pytest

from labkit.errors import LabError
from labkit.sandbox.netns_etc import node_resolv_conf

pytestmark = pytest.mark.sandbox
LAB = "tpd"
NETSHOOT = "{name: c, image: nicolaka/netshoot}"
PODS = f"""
apiVersion: v1
kind: Pod
metadata: {{name: cluster-first}}
spec: {{containers: [{NETSHOOT}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: default-policy}}
spec: {{dnsPolicy: Default, containers: [{NETSHOOT}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: none-policy}}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.96.0.10]
    searches: [default.svc.cluster.local, corp.example]
    options: [{{name: ndots, value: "2"}}, {{name: edns0}}]
  containers: [{NETSHOOT}]
---
apiVersion: v1
kind: Pod
metadata: {{name: none-no-search}}
spec:
  dnsPolicy: None
  dnsConfig: {{nameservers: [10.96.0.10]}}
  containers: [{NETSHOOT}]
---
apiVersion: v1
kind: Pod
metadata: {{name: cluster-first-extra}}
spec:
  dnsConfig:
    nameservers: [10.96.0.11]
    searches: [my.domain, svc.cluster.local]
    options: [{{name: ndots, value: "3"}}, {{name: debug}}]
  containers: [{NETSHOOT}]
---
apiVersion: v1
kind: Pod
metadata: {{name: host-cluster-first}}
spec: {{hostNetwork: true, containers: [{NETSHOOT}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: host-with-host-net}}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  hostAliases: [{{ip: 10.1.2.3, hostnames: [db.corp.example, db]}}]
  containers: [{NETSHOOT}]
---
apiVersion: v1
kind: Pod
metadata: {{name: with-aliases}}
spec:
  hostAliases: [{{ip: 10.1.2.3, hostnames: [db.corp.example, db]}}]
  containers: [{NETSHOOT}]
"""
CLUSTER_SEARCH = "search default.svc.cluster.local svc.cluster.local cluster.local\n"


@pytest.fixture(scope="module")
def lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "flannel", quiet=True)
    try:
        lab.apply(PODS)
        yield lab
    finally:
        backend.down(LAB)


def _resolv(lab, pod: str) -> str:
    got = lab.exec(pod, ["cat", "/etc/resolv.conf"])
    assert got.ok, got.stderr
    return got.stdout


def test_each_policy_writes_the_resolv_conf_kubelet_writes(lab):
    """kubelet pkg/kubelet/network/dns/dns.go GetPodDNS: ClusterFirst gets the cluster DNS, its
    search path and ndots:5; Default the node's resolv.conf as kubelet parses it; None only
    dnsConfig; dnsConfig is appended (appendDNSConfig, mergeDNSOptions); containerd writes
    search, nameserver, options lines."""
    assert _resolv(lab, "cluster-first") == (
        CLUSTER_SEARCH + "nameserver 10.96.0.10\noptions ndots:5\n"
    )
    node = [line for line in node_resolv_conf().splitlines() if not line.startswith("#")]
    assert _resolv(lab, "default-policy").splitlines() == node
    assert _resolv(lab, "none-policy") == (
        "search default.svc.cluster.local corp.example\n"
        "nameserver 10.96.0.10\n"
        "options ndots:2 edns0\n"
    )
    assert _resolv(lab, "none-no-search") == "nameserver 10.96.0.10\n"
    assert _resolv(lab, "cluster-first-extra") == (
        "search default.svc.cluster.local svc.cluster.local cluster.local my.domain\n"
        "nameserver 10.96.0.10\nnameserver 10.96.0.11\n"
        "options ndots:3 debug\n"
    )


def test_lookups_use_the_pods_own_search_list_and_nameservers(lab):
    """glibc res_search over the pod's resolv.conf (resolv.conf(5)): a bare name resolves only
    through a search domain the pod has; a Default pod asks the node's resolver, not the
    cluster's (dns.go getPodDNSType: podDNSHost)."""
    assert lab.resolve("default/cluster-first", "kubernetes") == ["10.96.0.1"]
    assert lab.resolve("default/none-policy", "kubernetes") == ["10.96.0.1"]
    assert lab.resolve("default/none-no-search", "kubernetes") == []
    assert lab.resolve("default/none-no-search", "kubernetes.default.svc.cluster.local") == [
        "10.96.0.1"
    ]
    assert lab.resolve("default/default-policy", "kubernetes.default.svc.cluster.local") == []


def test_host_network_pods_use_the_cluster_dns_only_with_cluster_first_with_host_net(lab):
    """dns.go getPodDNSType: ClusterFirst on the host network falls back to Default (the
    node's resolver); ClusterFirstWithHostNet keeps the cluster DNS."""
    assert lab.resolve("default/host-with-host-net", "kubernetes.default") == ["10.96.0.1"]
    assert lab.resolve("default/host-cluster-first", "kubernetes.default") == []


def test_host_network_pods_see_their_own_resolv_conf_and_hosts(lab):
    """kubelet mounts a host-network pod's own resolv.conf over the node's (dns.go: the cluster's
    for ClusterFirstWithHostNet, the node's for ClusterFirst) and writes its hosts as the node's
    plus hostAliases (kubelet_pods.go nodeHostsFileContent); so a shell in it resolves Services
    as probes do."""
    assert _resolv(lab, "host-with-host-net") == (
        CLUSTER_SEARCH + "nameserver 10.96.0.10\noptions ndots:5\n"
    )
    node = [line for line in node_resolv_conf().splitlines() if not line.startswith("#")]
    assert _resolv(lab, "host-cluster-first").splitlines() == node
    found = lab.exec("host-with-host-net", "getent hosts kubernetes.default")
    assert found.ok and found.stdout.split() == [
        "10.96.0.1",
        "kubernetes.default.svc.cluster.local",
    ]
    hosts = lab.exec("host-with-host-net", ["cat", "/etc/hosts"]).stdout
    assert hosts.endswith("\n# Entries added by HostAliases.\n10.1.2.3\tdb.corp.example\tdb\n")
    assert "Kubernetes-managed" not in lab.exec("host-cluster-first", ["cat", "/etc/hosts"]).stdout


def test_host_aliases_resolve_in_the_pod(lab):
    """kubelet_pods.go hostsEntriesFromHostAliases: each alias is a line of /etc/hosts, which
    glibc reads before DNS (nsswitch.conf ``hosts: files dns``)."""
    for name in ("db", "db.corp.example"):
        got = lab.exec("with-aliases", f"getent hosts {name}")
        assert got.ok and got.stdout.split() == ["10.1.2.3", "db.corp.example", "db"]


def test_a_none_policy_without_nameservers_is_refused_in_one_line(lab):
    """pkg/apis/core/validation validatePodDNSConfig: "must provide at least one DNS nameserver
    when `dnsPolicy` is None"; nothing is created."""
    bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: no-dns}\nspec:\n  dnsPolicy: None\n"
    bad += f"  containers: [{NETSHOOT}]\n"
    with pytest.raises(LabError, match=r"dnsConfig.nameservers: required") as err:
        lab.apply(bad)
    assert "\n" not in err.value.what
    with pytest.raises(LabError, match="There is no pod 'no-dns'"):
        lab.exec("no-dns", ["true"])
