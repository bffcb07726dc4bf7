"""The world outside a sandbox lab, on real namespaces: its resolver, CoreDNS forwarding to it,
an ExternalName that curl follows, pod egress masqueraded by the node, egress policies towards
it, and pod IPs that time out from outside."""

from __future__ import annotations

import pytest

from labkit.lab import OUTSIDE
from labkit.model.objects import pod_ip
from labkit.sandbox import naming
from labkit.sandbox.netns import run_in_netns

CLIENT = "demo/client-a"


def _dig(lab, *args: str) -> str:
    result = lab.exec(CLIENT, ["dig", "+time=2", "+tries=1", *args])
    assert result.ok, result.stderr
    return result.stdout


def _flags(out: str) -> set[str]:
    return set(out.split(";; flags:")[1].split(";")[0].split())


def test_outside_names_are_forwarded_and_carry_the_upstreams_flags(any_lab):
    """coredns plugin/forward (README, forward.go ServeDNS: w.WriteMsg(ret)): kubeadm's Corefile
    ``forward . /etc/resolv.conf`` relays names outside the cluster to the node's resolver and
    returns its reply as it came, so RA is set and AA clear; a name the upstream denies is its
    NXDOMAIN. Cluster names stay the kubernetes plugin's (handler.go ServeDNS: SetReply plus
    Authoritative, no RA), and a reverse name it cannot answer falls through to forward
    (``fallthrough in-addr.arpa ip6.arpa``)."""
    found = _dig(any_lab, "example.com")
    assert "status: NOERROR" in found and _flags(found) == {"qr", "rd", "ra"}
    assert "example.com.\t\t300\tIN\tA\t192.0.2.10" in found
    missing = _dig(any_lab, "nope.example.com")
    assert "status: NXDOMAIN" in missing and _flags(missing) == {"qr", "rd", "ra"}
    cluster = _dig(any_lab, "kubernetes.default.svc.cluster.local")
    assert _flags(cluster) == {"qr", "aa", "rd"}
    assert "recursion requested but not available" in cluster
    node_ip = any_lab.get("nodes")[1]["status"]["addresses"][0]["address"]
    reverse = _dig(any_lab, "-x", node_ip)
    assert "status: NXDOMAIN" in reverse and _flags(reverse) == {"qr", "rd", "ra"}


def test_an_external_name_to_an_outside_host_resolves_and_serves(any_lab):
    """Kubernetes DNS specification (docs/specification.md, 2.3 Records for External Name
    Services): ``<service>.<ns>.svc.<zone>`` is a CNAME to the external name; CoreDNS
    (plugin/backend_lookup.go A) then looks the target up upstream and adds its records, so
    curl from a pod reaches the outside server by the Service's name."""
    refs = any_lab.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "site", "namespace": "demo"},
            "spec": {"type": "ExternalName", "externalName": "www.example.com"},
        }
    )
    try:
        out = _dig(any_lab, "+short", "site.demo.svc.cluster.local")
        assert out.split() == ["www.example.com.", "example.com.", "192.0.2.10"]
        curl = any_lab.exec(CLIENT, "curl -s --max-time 3 http://site/hostname")
        assert curl.ok and curl.stdout.strip() == "outside", curl.stderr
    finally:
        any_lab.delete(refs)


def test_pods_reach_outside_hosts_masqueraded_to_their_node(any_lab):
    """Pod egress is SNATed to the node's address: Flannel's --ip-masq rules (flannel
    pkg/trafficmngr/iptables/iptables.go masqRules: ``-s <cluster> ! -d 224.0.0.0/4 -j
    MASQUERADE``) and Calico's natOutgoing, on for the default pool (calico-node's
    CALICO_IPV4POOL_NAT_OUTGOING defaults to true; felix/rules/nat.go NATOutgoingChain: pool
    source, non-pool destination, MASQUERADE). The outside server sees the node."""
    client = any_lab.get("pod", "client-a", "demo")[0]
    curl = any_lab.exec(CLIENT, "curl -s --max-time 3 http://api.example.net/clientip")
    assert curl.ok, curl.stderr
    seen = curl.stdout.strip().rsplit(":", 1)[0]
    assert seen == client["status"]["hostIP"] != pod_ip(client)


def test_nodes_use_the_outside_resolver_as_on_kind(any_lab):
    """kind images/base/files/usr/local/bin/entrypoint, enable_network_magic: a node's
    resolv.conf names the Docker network's gateway, which answers for the outside world."""
    node = any_lab.get("nodes")[1]["metadata"]["name"]
    result = any_lab.node_exec(node, "grep nameserver /etc/resolv.conf; dig +short api.example.net")
    assert result.ok and result.stdout.split() == ["nameserver", "172.18.0.1", "198.51.100.20"]


def test_a_pod_ip_times_out_from_outside_as_from_a_kind_host(any_lab):
    """A Kind host routes only its Docker network; a pod address follows its default route and
    nobody answers, so a connection times out (it is not refused, nor "unreachable" at once).
    The outside's default route never leaves its namespace."""
    target = any_lab.get("pod", "client-b", "demo")[0]
    assert any_lab.probe(OUTSIDE, pod_ip(target), 8080, timeout=0.5).outcome == "timeout"
    routes = run_in_netns(naming.outside_netns(any_lab.name), ["ip", "route", "show", "default"])
    assert routes.stdout.split()[:5] == ["default", "via", "169.254.0.1", "dev", "uplink"]


def _egress_only(cidrs: list[str]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "egress-to", "namespace": "demo"},
        "spec": {
            "podSelector": {"matchLabels": {"role": "client"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": c}} for c in cidrs]}],
        },
    }


def test_egress_to_the_internet_follows_ipblocks(calico_lab):
    """Kubernetes NetworkPolicy (concepts/services-networking/network-policies, "Behavior of to
    and from selectors", ipBlock): egress allowed only to the cluster's pod range drops a
    connection to an outside host (a timeout; DNS still answers, CoreDNS pods are in the range);
    adding its ipBlock lets it through."""
    refs = calico_lab.apply(_egress_only(["192.168.0.0/16"]))
    try:
        assert calico_lab.resolve(CLIENT, "example.com") == ["192.0.2.10"]
        assert calico_lab.probe(CLIENT, "example.com", 80).outcome == "timeout"
        calico_lab.apply(_egress_only(["192.168.0.0/16", "192.0.2.0/24"]))
        probe = calico_lab.probe(CLIENT, "example.com", 80)
        assert probe.ok and probe.served_by == "outside", probe.detail
        assert calico_lab.probe(CLIENT, "api.example.net", 80).outcome == "timeout"
    finally:
        calico_lab.delete(refs)
    assert calico_lab.probe(CLIENT, "api.example.net", 80).ok


@pytest.mark.parametrize("name", ["example.com", "www.example.com", "gateway.payments.example.net"])
def test_every_outside_name_answers_http(flannel_lab, name):
    """The outside servers answer HTTP like agnhost netexec (test/images/agnhost/netexec:
    /hostname) on every name of the zone."""
    curl = flannel_lab.exec(CLIENT, f"curl -s --max-time 3 http://{name}/hostname")
    assert curl.ok and curl.stdout.strip() == "outside", curl.stderr
