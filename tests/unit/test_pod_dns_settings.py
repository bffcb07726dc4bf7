"""A pod's resolv.conf from dnsPolicy and dnsConfig, as kubelet composes it (pure), and the API
server's refusal of dnsConfig it would not store."""

from __future__ import annotations

from typing import Any

import pytest

from labkit import apirules
from labkit.model.dns.poddns import (
    MAX_DNS_SEARCH_LIST_CHARS,
    DnsSettings,
    dns_type,
    fit_searches,
    format_resolv_conf,
    merge_dns_options,
    parse_host_resolv_conf,
    pod_dns,
    pod_resolv_conf,
)

CLUSTER_NS = "10.0.0.10"
HOST_RESOLV = "nameserver 8.8.8.8\nsearch host.domain\n"
"""TestGetPodDNSCustom's node resolv.conf (testHostNameserver, testHostDomain)."""
NS_SVC, SVC = "testNS.svc.kubernetes.io", "svc.kubernetes.io"


def _dns(spec: dict[str, Any], node: str = HOST_RESOLV) -> DnsSettings:
    return pod_dns(spec, "testNS", node, (CLUSTER_NS,), "kubernetes.io")


@pytest.mark.parametrize(
    "text, servers, searches, options",
    [
        ("", [], [], []),
        (" ", [], [], []),
        ("\t\n\t", [], [], []),
        ("#comment\n", [], [], []),
        (" #comment\n", [], [], []),
        ("#comment\nnameserver 1.2.3.4\nsearch", ["1.2.3.4"], [], []),
        ("nameserver 1.2.3.4", ["1.2.3.4"], [], []),
        ("\tnameserver 1.2.3.4", ["1.2.3.4"], [], []),
        ("nameserver \t 1.2.3.4", ["1.2.3.4"], [], []),
        ("nameserver 1.2.3.4\nnameserver 5.6.7.8", ["1.2.3.4", "5.6.7.8"], [], []),
        ("nameserver 1.2.3.4 #comment", ["1.2.3.4"], [], []),
        ("search ", [], [], []),
        ("search foo bar bat\n", [], ["foo", "bar", "bat"], []),
        ("search foo\nsearch bar", [], ["bar"], []),
        ("search foo. bar.", [], ["foo", "bar"], []),
        ("nameserver 1.2.3.4\nsearch foo\nnameserver 5.6.7.8\nsearch bar", ["1.2.3.4", "5.6.7.8"],
         ["bar"], []),
        ("options ndots:5 attempts:2", [], [], ["ndots:5", "attempts:2"]),
        ("options ndots:1\noptions ndots:5 attempts:3", [], [], ["ndots:5", "attempts:3"]),
    ],
)  # fmt: skip
def test_the_nodes_resolv_conf_is_read_as_kubelet_reads_it(text, servers, searches, options):
    """kubelet dns_test.go TestParseResolvConf: nameservers add up, the last search and options
    lines win."""
    assert parse_host_resolv_conf(text) == DnsSettings(
        tuple(servers), tuple(searches), tuple(options)
    )


@pytest.mark.parametrize(
    "policy, host_network, kind",
    [
        ("ClusterFirst", False, "cluster"),
        ("ClusterFirstWithHostNet", True, "cluster"),
        ("ClusterFirstWithHostNet", False, "cluster"),
        ("Default", False, "host"),
        ("Default", True, "host"),
        ("ClusterFirst", True, "host"),
        ("None", False, "none"),
        ("None", True, "none"),
    ],
)
def test_the_policy_picks_the_base(policy, host_network, kind):
    """kubelet dns_test.go TestGetPodDNSType (ClusterFirst on the host network falls back to
    Default)."""
    assert dns_type(policy, host_network) == kind


def test_an_unknown_policy_is_refused():
    """TestGetPodDNSType's "invalid DNS policy, should return error"."""
    with pytest.raises(ValueError, match="not one of"):
        dns_type("invalidPolicy", False)


CONFIG = {
    "nameservers": ["10.0.0.11"],
    "searches": ["my.domain"],
    "options": [{"name": "ndots", "value": "3"}, {"name": "debug"}],
}


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"dnsPolicy": "None"}, DnsSettings()),
        (
            {
                "dnsPolicy": "None",
                "dnsConfig": {
                    "nameservers": ["203.0.113.1"],
                    "searches": ["my.domain", "second.domain"],
                    "options": [{"name": "ndots", "value": "3"}, {"name": "debug"}],
                },
            },
            DnsSettings(("203.0.113.1",), ("my.domain", "second.domain"), ("ndots:3", "debug")),
        ),
        (
            {"dnsPolicy": "ClusterFirst", "dnsConfig": CONFIG},
            DnsSettings(
                (CLUSTER_NS, "10.0.0.11"),
                (NS_SVC, SVC, "kubernetes.io", "host.domain", "my.domain"),
                ("ndots:3", "debug"),
            ),
        ),
        (
            {"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True, "dnsConfig": CONFIG},
            DnsSettings(
                (CLUSTER_NS, "10.0.0.11"),
                (NS_SVC, SVC, "kubernetes.io", "host.domain", "my.domain"),
                ("ndots:3", "debug"),
            ),
        ),
        (
            {"dnsPolicy": "Default", "dnsConfig": CONFIG},
            DnsSettings(
                ("8.8.8.8", "10.0.0.11"), ("host.domain", "my.domain"), ("ndots:3", "debug")
            ),
        ),
    ],
)  # fmt: skip
def test_dns_config_is_merged_into_the_policys_base(spec, expected):
    """kubelet dns_test.go TestGetPodDNSCustom, case by case."""
    assert _dns(spec) == expected


def test_cluster_first_pods_get_the_cluster_dns_and_search_path():
    """TestGetPodDNS: ClusterFirst (and ClusterFirstWithHostNet on the host network) get only the
    cluster nameserver, the cluster search path first; ClusterFirst on the host network and
    Default get the node's."""
    cluster = DnsSettings(
        (CLUSTER_NS,), (NS_SVC, SVC, "kubernetes.io", "host.domain"), ("ndots:5",)
    )
    host = DnsSettings(("8.8.8.8",), ("host.domain",), ())
    assert _dns({}) == cluster
    assert _dns({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}) == cluster
    assert _dns({"dnsPolicy": "ClusterFirst", "hostNetwork": True}) == host
    assert _dns({"dnsPolicy": "Default"}) == host


def test_node_search_domains_that_repeat_the_cluster_path_are_left_out():
    """generateSearchesForDNSClusterFirst: omitDuplicates over cluster path + host search."""
    node = "nameserver 1.1.1.1\nsearch AAA svc.kubernetes.io BBB kubernetes.io\n"
    assert _dns({}, node).searches == (NS_SVC, SVC, "kubernetes.io", "AAA", "BBB")


def test_duplicate_nameservers_and_searches_from_dns_config_are_merged():
    """appendDNSConfig: omitDuplicates on servers and searches."""
    spec = {"dnsConfig": {"nameservers": [CLUSTER_NS, "1.1.1.1"], "searches": [SVC, "x.y"]}}
    got = _dns(spec, "")
    assert got.servers == (CLUSTER_NS, "1.1.1.1")
    assert got.searches == (NS_SVC, SVC, "kubernetes.io", "x.y")


@pytest.mark.parametrize(
    "existing, extra, expected",
    [
        (["ndots:5", "debug"], [], ["ndots:5", "debug"]),
        (
            ["ndots:5", "debug"],
            [{"name": "single-request"}, {"name": "attempts", "value": "3"}],
            ["ndots:5", "debug", "single-request", "attempts:3"],
        ),
        (
            ["ndots:5", "debug"],
            [
                {"name": "ndots", "value": "3"},
                {"name": "debug"},
                {"name": "single-request"},
                {"name": "attempts", "value": "3"},
            ],
            ["ndots:3", "debug", "single-request", "attempts:3"],
        ),
        (["ndots:5"], [{"name": "ndots", "value": ""}], ["ndots"]),
    ],
)
def test_options_are_merged_by_name(existing, extra, expected):
    """kubelet dns_test.go TestMergeDNSOptions (kubelet's order is random; ours is first
    appearance, so the set is compared as upstream does and the order is ours)."""
    assert merge_dns_options(existing, extra) == tuple(expected)


def test_more_than_three_nameservers_keep_the_first_three():
    """TestFormDNSNameserversFitsLimits: "4 nameservers, trimmed to 3"."""
    spec = {"dnsPolicy": "Default", "dnsConfig": {"nameservers": ["127.0.0.1", "10.0.0.10"]}}
    node = "nameserver 8.8.8.8\nnameserver 1.2.3.4\n"
    assert _dns(spec, node).servers == (
        "8.8.8.8",
        "1.2.3.4",
        "127.0.0.1",
    )


def test_search_limits_as_kubelet_applies_them():
    """formDNSSearchFitsLimits (MaxDNSSearchPaths 32, MaxDNSSearchListChars 2048, each domain at
    most 253 characters; TestFormDNSSearchFitsLimits' shapes with today's limits)."""
    base = ["testNS.svc.TEST", "svc.TEST", "TEST"]
    assert fit_searches([*base, "AAA", "BBB"]) == (*base, "AAA", "BBB")
    assert fit_searches([*base, "AAA", "B" * 256, "BBB"]) == (*base, "AAA", "BBB")
    assert fit_searches([*base, "B" * 253]) == (*base, "B" * 253)
    many = [f"d{i}" for i in range(40)]
    assert fit_searches(many) == tuple(many[:32])
    long = [f"{i:02d}" + "x" * 198 for i in range(11)]  # 11 x 200 chars + 10 spaces = 2210
    assert fit_searches(long) == tuple(long[:10])  # 2009 characters
    assert len(" ".join(fit_searches(long))) <= MAX_DNS_SEARCH_LIST_CHARS


def test_the_file_is_written_search_nameservers_options():
    """containerd's CRI writes ``search``, ``nameserver`` lines, then ``options``; empty parts
    are left out."""
    spec = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8"]}}
    assert pod_resolv_conf(spec, "testNS", "", ()) == "nameserver 1.1.1.1\nnameserver 8.8.8.8\n"
    assert format_resolv_conf(DnsSettings()) == ""
    assert pod_resolv_conf({}, "shop", "", ("10.96.0.10",)) == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n"
    )


# --------------------------------------------------------------------------- the API server


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"dnsPolicy": "Cluster"}, "at spec.dnsPolicy: Cluster must be one of"),
        ({"dnsPolicy": "None"}, "at spec.dnsConfig.nameservers: required"),
        ({"dnsPolicy": "None", "dnsConfig": {"searches": ["a"]}}, "nameservers: required"),
        (
            {"dnsConfig": {"nameservers": ["1.2.3.4", "5.6.7.8", "9.8.0.1", "2.3.4.5"]}},
            "at spec.dnsConfig.nameservers: must not have more than 3 nameservers",
        ),
        ({"dnsConfig": {"nameservers": ["1.2.3.c"]}}, "nameservers[0]: 1.2.3.c is not an IP"),
        (
            {"dnsConfig": {"searches": [f"d{i}" for i in range(33)]}},
            "must not have more than 32 search paths",
        ),
        (
            {"dnsConfig": {"searches": ["a" * 63 + "." + "b" * 63] * 17}},
            "must not have more than 2048 characters (including spaces)",
        ),
        ({"dnsConfig": {"searches": ["Bad_Domain"]}}, "searches[0]: Bad_Domain must consist"),
        ({"dnsConfig": {"options": [{"value": "3"}]}}, "options[0].name: required"),
        ({"dnsConfig": {"nameservers": "1.1.1.1"}}, "nameservers: must be a list of text"),
        ({"dnsConfig": "yes"}, "at spec.dnsConfig: must be a mapping"),
        ({"hostname": "Web_1"}, "at spec.hostname: Web_1 must consist"),
        ({"subdomain": "a.b"}, "at spec.subdomain: a.b must consist"),
        ({"hostAliases": [{"ip": "x", "hostnames": ["a"]}]}, "hostAliases[0].ip: x is not an IP"),
        ({"hostAliases": [{"hostnames": ["a"]}]}, "hostAliases[0].ip: required"),
        (
            {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["ok", "No!"]}]},
            "hostAliases[0].hostnames[1]: No! must consist",
        ),
    ],
)
def test_the_api_server_refuses_bad_dns_settings_and_names(spec, problem):
    """pkg/apis/core/validation: validateDNSPolicy, validatePodDNSConfig (None needs a
    nameserver; 3 nameservers, 32 search paths, 2048 characters; IPs; DNS-1123 subdomains;
    option names), ValidatePodSpec's hostname/subdomain labels and validateHostAliases."""
    found = apirules.problems(_pod(**spec))
    assert any(problem in line for line in found), found


@pytest.mark.parametrize(
    "spec",
    [
        {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}},
        {"dnsPolicy": "Default", "dnsConfig": {"searches": ["corp.example.", "example"]}},
        {"dnsConfig": {"options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
        {"hostname": "db-0", "subdomain": "db"},
        {"hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]},
    ],
)
def test_the_api_server_takes_good_dns_settings(spec):
    """The same validation passes what the Kubernetes docs' examples use (a trailing dot on a
    search domain is fine)."""
    assert apirules.problems(_pod(**spec)) == []
