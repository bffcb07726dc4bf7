"""A pod's hostname, domain and /etc/hosts as kubelet makes them (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.errors import LabError
from labkit.model.podidentity import (
    MANAGED_HOSTS_HEADER,
    managed_hosts_file,
    pod_host_domain,
    pod_hostname,
    pod_hosts_file,
)
from labkit.sandbox import netns_etc
from labkit.sandbox.agent.http import HttpMessage
from labkit.sandbox.agent.netexec import netexec_http_reply, netexec_udp_answer
from labkit.sandbox.agent.spec import parse_spec
from labkit.sandbox.confine import Confinement, bwrap_argv, pod_confinement
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.workloads_json import WorkloadsJson

HEADER = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


@pytest.mark.parametrize(
    "ips, hostname, domain, aliases, tail",
    [
        (["123.45.67.89"], "podFoo", "", [], "123.45.67.89\tpodFoo\n"),
        (["203.0.113.1"], "podFoo", "domainFoo", [], "203.0.113.1\tpodFoo.domainFoo\tpodFoo\n"),
        (
            ["203.0.113.1"],
            "podFoo",
            "domainFoo",
            [{"ip": "123.45.67.89", "hostnames": ["foo", "bar", "baz"]}],
            "203.0.113.1\tpodFoo.domainFoo\tpodFoo\n\n# Entries added by HostAliases.\n"
            "123.45.67.89\tfoo\tbar\tbaz\n",
        ),
        (
            ["203.0.113.1"],
            "podFoo",
            "domainFoo",
            [
                {"ip": "123.45.67.89", "hostnames": ["foo", "bar", "baz"]},
                {"ip": "456.78.90.123", "hostnames": ["park", "doo", "boo"]},
            ],
            "203.0.113.1\tpodFoo.domainFoo\tpodFoo\n\n# Entries added by HostAliases.\n"
            "123.45.67.89\tfoo\tbar\tbaz\n456.78.90.123\tpark\tdoo\tboo\n",
        ),
        (
            ["203.0.113.1", "fd00::6"],
            "podFoo",
            "domainFoo",
            [],
            "203.0.113.1\tpodFoo.domainFoo\tpodFoo\nfd00::6\tpodFoo.domainFoo\tpodFoo\n",
        ),
    ],
)
def test_the_hosts_file_is_what_kubelet_writes(ips, hostname, domain, aliases, tail):
    """kubelet_pods_test.go TestManagedHostsFileContent, case by case (the header, the localhost
    and ip6 lines, ``<ip>\\t<hostname>.<domain>\\t<hostname>``, the HostAliases block)."""
    assert MANAGED_HOSTS_HEADER == HEADER
    assert managed_hosts_file(ips, hostname, domain, aliases) == HEADER + tail


@pytest.mark.parametrize(
    "name, spec_hostname, expected",
    [
        ("test-pod", None, "test-pod"),
        ("test-pod", "custom", "custom"),
        ("a" * 63, None, "a" * 63),
        ("a" * 64, None, "a" * 63),
        ("a" * 62 + "-b" + "c" * 10, None, "a" * 62),  # the cut leaves a '-'
        ("a" * 62 + ".b", None, "a" * 62),  # or a '.'
        ("a" * 61 + "--b", None, "a" * 61),
        ("web-7d9f-abcde", "", "web-7d9f-abcde"),
    ],
)
def test_the_pod_hostname_is_cut_as_kubelet_cuts_it(name, spec_hostname, expected):
    """kubelet_pods.go GeneratePodHostNameAndDomain / truncatePodHostnameIfNeeded
    (kubelet_pods_test.go TestTruncatePodHostname: 63 characters, trailing '-' and '.' trimmed)."""
    assert pod_hostname(name, spec_hostname) == expected


def test_the_domain_comes_from_the_subdomain():
    """GeneratePodHostNameAndDomain: ``<subdomain>.<namespace>.svc.<cluster domain>``."""
    assert pod_host_domain("shop", "db") == "db.shop.svc.cluster.local"
    assert pod_host_domain("shop", None) == ""
    assert pod_host_domain("shop", "db", "corp.example") == "db.shop.svc.corp.example"


def test_a_statefulset_pods_hosts_file_has_its_fqdn():
    """managedHostsFileContent for a pod with hostname and subdomain (a StatefulSet's pod, or any
    pod that sets both), and for a plain pod: the pod name."""
    pod = {
        "metadata": {"name": "db-0", "namespace": "shop"},
        "spec": {"hostname": "db-0", "subdomain": "db"},
    }
    assert pod_hosts_file(pod, ["10.244.1.5"]).endswith(
        "10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n"
    )
    plain = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {}}
    assert pod_hosts_file(plain, ["10.244.1.6"]).endswith(
        "fe00::2\tip6-allrouters\n10.244.1.6\tweb\n"
    )


# --------------------------------------------------------------------------- agnhost /hostname


def _document(pod: dict, net: PodNet) -> dict:
    return json.loads(WorkloadsJson().text([pod], {net.key: net}, [], [], [], {}))


def _net(name: str, host_network: bool = False) -> PodNet:
    netns = "lk-l-w1" if host_network else f"lk-l-p-{name}"
    return PodNet("default", name, "kind-worker", "10.244.1.9", netns, "veth1", host_network)


PORTS = {"containers": [{"name": "c", "image": "agnhost", "ports": [{"containerPort": 8080}]}]}


@pytest.mark.parametrize(
    "pod_spec, host_network, hostname",
    [
        ({}, False, "web"),
        ({"hostname": "custom"}, False, "custom"),
        ({"hostNetwork": True}, True, "kind-worker"),
        ({"hostNetwork": True, "hostname": "ignored"}, True, "kind-worker"),
    ],
)
def test_the_agent_serves_each_pod_with_its_hostname(pod_spec, host_network, hostname):
    """agnhost netexec.go's /hostname handler answers ``os.Hostname()``: the node's name on the
    host network, else spec.hostname or the pod name (GeneratePodHostNameAndDomain)."""
    pod = {"metadata": {"name": "web", "namespace": "default"}, "spec": {**PORTS, **pod_spec}}
    spec = parse_spec(_document(pod, _net("web", host_network)))
    (workload,) = spec.workloads
    assert workload.hostname == hostname
    request = HttpMessage(("GET", "/hostname", "HTTP/1.1"), [])
    reply = netexec_http_reply(workload.hostname, request, ("1.2.3.4", 1), lambda: "")
    assert (reply.status, reply.body) == (200, hostname)
    assert netexec_udp_answer(workload.hostname, b"hostname", ("1.2.3.4", 1)) == hostname.encode()


def test_a_workload_without_hostname_is_its_name_and_a_bad_one_is_named():
    """workloads.json from an older writer: the name stands in; a non-text hostname is a
    problem parse_spec names."""
    raw = {"namespace": "n", "name": "w", "netns": "lk-x", "ip": "10.0.0.1", "role": "netexec"}
    assert parse_spec({"workloads": [raw]}).workloads[0].hostname == "w"
    with pytest.raises(Exception, match="'hostname' is not a str"):
        parse_spec({"workloads": [{**raw, "hostname": 7}]})


# --------------------------------------------------------------------------- host-network pods

MERGED_USR = {"bin": "usr/bin", "lib": "usr/lib"}


def test_a_host_network_pods_own_etc_files_are_bound_over_the_nodes():
    """kubelet mounts a host-network pod's resolv.conf (its dnsPolicy) and hosts
    (nodeHostsFileContent) into the container, over the node's; after /etc itself, so they win."""
    folder = "/run/labkit/l1/pod-etc/default.agent"
    confinement = pod_confinement({}, _net("agent", host_network=True), folder)
    assert confinement.hostname == "kind-worker"
    argv = bwrap_argv(confinement, MERGED_USR)
    etc = argv.index("/etc")
    assert argv[etc + 2 : etc + 8] == [
        "--ro-bind",
        f"{folder}/resolv.conf",
        "/etc/resolv.conf",
        "--ro-bind",
        f"{folder}/hosts",
        "/etc/hosts",
    ]
    assert pod_confinement({}, _net("web")).etc == ()  # ip netns exec mounts a pod's own


@pytest.mark.parametrize(
    "files",
    [
        (("/etc/shadow", "hosts"),),
        (("/run/labkit/l1/x", "passwd"),),
        (("/tmp/x", "hosts"),),
        (("/run/labkit/../../etc/shadow", "hosts"),),
    ],
)
def test_only_a_labs_resolv_conf_and_hosts_can_be_bound(files):
    """Nothing but the lab's own resolv.conf and hosts reaches bwrap's --ro-bind."""
    with pytest.raises(LabError, match="is not a pod's /etc file"):
        bwrap_argv(Confinement("kind-worker", etc=files), MERGED_USR)


def test_a_host_network_pods_files_are_written_and_removed(tmp_path):
    """nodeHostsFileContent: the node's /etc/hosts then the HostAliases block; resolv.conf by
    the pod's dnsPolicy (ClusterFirstWithHostNet: the cluster's)."""
    net = _net("agent", host_network=True)
    pod = {
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "hostNetwork": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["db.local"]}],
        },
    }
    folder = netns_etc.write_host_network_etc(tmp_path, pod, net)
    hosts = (folder / "hosts").read_text()
    assert hosts.startswith(Path("/etc/hosts").read_text(errors="replace"))
    assert hosts.endswith("\n# Entries added by HostAliases.\n10.1.2.3\tdb.local\n")
    assert (folder / "resolv.conf").read_text().startswith("search default.svc.cluster.local ")
    netns_etc.remove_host_network_etc(tmp_path, [net])
    assert not folder.exists()
