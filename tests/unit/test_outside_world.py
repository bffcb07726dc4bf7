"""The outside world's resolver, CoreDNS's forwarding to it, and the node's resolv.conf (pure:
wire messages in and out, no sockets)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from labkit.model.dns.lookup import RecordIndex
from labkit.model.dns.records import Record
from labkit.model.dns.resolver import parse_resolv_conf
from labkit.sandbox import fabric
from labkit.sandbox.agent.spec import parse_spec
from labkit.sandbox.capabilities import capabilities_for
from labkit.sandbox.dns import respond_forwarding
from labkit.sandbox.dns_forward import forwarded, upstream_server
from labkit.sandbox.outside_dns import resolve
from labkit.sandbox.outside_world import ZONE, node_resolv_conf, world_addresses, world_names
from labkit.sandbox.workloads import outside_workloads

CLUSTER = RecordIndex(
    [
        Record("web.default.svc.cluster.local.", "A", "10.96.10.10"),
        Record("10.10.96.10.in-addr.arpa.", "PTR", "web.default.svc.cluster.local."),
        Record("ext.default.svc.cluster.local.", "CNAME", "www.example.com."),
        Record("gone.default.svc.cluster.local.", "CNAME", "nowhere.example.com."),
    ]
)


def _ask(name: str, qtype: str = "A", rd: int = 1) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    query.header.rd = rd
    return DNSRecord.parse(resolve(query.pack()))


def _flags(reply: DNSRecord) -> tuple[int, int, int]:
    return reply.header.aa, reply.header.ra, reply.header.rd


# ----------------------------------------------------------------------------- the resolver


def test_the_resolver_answers_as_a_recursive_resolver():
    """RFC 1035 4.1.1: a recursive server sets RA and, answering from what it looked up rather
    than from a zone it serves, leaves AA clear; ID and RD are copied from the query."""
    reply = _ask("example.com")
    assert reply.header.rcode == RCODE.NOERROR and _flags(reply) == (0, 1, 1)
    assert [(str(r.rname), QTYPE[r.rtype], str(r.rdata)) for r in reply.rr] == [
        ("example.com.", "A", "192.0.2.10")
    ]
    assert _ask("example.com", rd=0).header.rd == 0


def test_an_alias_is_followed_to_its_address():
    """RFC 1034 3.6.2 / 4.3.2 step 3a: a resolver answering for an alias returns the CNAME and
    then the target's records."""
    reply = _ask("WWW.example.com")
    assert [(str(r.rname), QTYPE[r.rtype], str(r.rdata)) for r in reply.rr] == [
        ("WWW.example.com.", "CNAME", "example.com."),
        ("example.com.", "A", "192.0.2.10"),
    ]
    assert [QTYPE[r.rtype] for r in _ask("www.example.com", "CNAME").rr] == ["CNAME"]


@pytest.mark.parametrize(
    ("name", "zone", "mname"),
    [
        ("nope.example.com", "example.com.", "ns.icann.org."),
        ("nope.example.net", "example.net.", "ns.icann.org."),
        ("github.test", ".", "a.root-servers.net."),
        ("10.0.18.172.in-addr.arpa", ".", "a.root-servers.net."),
    ],
)
def test_unknown_names_are_nxdomain_with_the_enclosing_soa(name, zone, mname):
    """RFC 2308 section 2.1: a name error carries the SOA of the zone that denied it in the
    authority section; RA stays set (the resolver did the recursion)."""
    reply = _ask(name, "PTR" if name.endswith("arpa") else "A")
    assert reply.header.rcode == RCODE.NXDOMAIN and _flags(reply) == (0, 1, 1) and not reply.rr
    assert [(str(r.rname), str(r.rdata).split()[0]) for r in reply.auth] == [(zone, mname)]


def test_a_known_name_without_the_type_is_nodata():
    """RFC 2308 section 2.2: NODATA is NOERROR with no answers and the SOA in authority."""
    reply = _ask("api.example.net", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert [str(r.rname) for r in reply.auth] == ["example.net."]


def test_the_resolver_ignores_responses_and_garbage():
    """RFC 1035 4.1.1: QR=1 marks a response; answering one could make two servers loop."""
    response = DNSRecord.question("example.com")
    response.header.qr = 1
    assert resolve(response.pack()) == b"" and resolve(b"\x00\x01") == b""


def test_world_addresses_lie_outside_every_cluster_range():
    """RFC 5737 documentation ranges, and none of the lab's: node network, Services, pods."""
    for cidr in world_addresses():
        network = ipaddress.ip_network(cidr)
        assert any(network.subnet_of(ipaddress.ip_network(d)) for d in DOC_RANGES), cidr
        for cni in fabric.SANDBOX_CNIS:
            assert fabric.outside_range_problem(cidr, cni, []) is None
    assert set(world_names()) == {r.name.rstrip(".") for r in ZONE}
    assert "gateway.payments.example.net" in world_names()


DOC_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


# ----------------------------------------------------------------------------- node resolv.conf


def test_the_node_resolv_conf_names_the_gateway_as_on_kind():
    """kind images/base/files/usr/local/bin/entrypoint, enable_network_magic: Docker's
    127.0.0.11 in /etc/resolv.conf is replaced by the network gateway; Docker writes
    ``options ndots:0`` for its embedded resolver. CoreDNS forwards to that nameserver."""
    conf = parse_resolv_conf(node_resolv_conf())
    assert conf.nameservers == (fabric.GATEWAY_IP,) and conf.ndots == 0 and conf.search == ()
    assert upstream_server() == (fabric.GATEWAY_IP, 53)


# ----------------------------------------------------------------------------- forwarding


@pytest.mark.parametrize(
    ("name", "qtype", "expected"),
    [
        ("example.com.", "A", True),
        ("www.google.com", "AAAA", True),
        ("web.default.svc.cluster.local.", "A", False),
        ("nope.default.svc.cluster.local.", "A", False),
        ("10.10.96.10.in-addr.arpa.", "PTR", False),
        ("3.0.18.172.in-addr.arpa.", "PTR", True),
    ],
)
def test_what_the_kubernetes_plugin_hands_to_forward(name, qtype, expected):
    """kubeadm's Corefile: ``kubernetes cluster.local in-addr.arpa ip6.arpa { fallthrough
    in-addr.arpa ip6.arpa }`` then ``forward . /etc/resolv.conf``. plugin/kubernetes/handler.go
    ServeDNS calls the next plugin only on a name error under a fallthrough zone; names in no
    zone of the plugin never reach it."""
    assert forwarded(CLUSTER, name, qtype) is expected


def _through_coredns(name: str, qtype: str = "A", upstream=None) -> DNSRecord:
    asked: list[str] = []

    async def to_resolver(query: bytes) -> bytes | None:
        asked.append(str(DNSRecord.parse(query).q.qname))
        return resolve(query)

    query = DNSRecord.question(name, qtype).pack()
    wire = asyncio.run(respond_forwarding(query, lambda: CLUSTER, upstream or to_resolver))
    reply = DNSRecord.parse(wire)
    reply.asked = asked  # type: ignore[attr-defined]
    return reply


def test_forwarded_answers_are_the_upstreams_as_they_came():
    """plugin/forward/forward.go ServeDNS writes the upstream's reply (w.WriteMsg(ret)): its
    rcode and its flags, RA included, reach the client unchanged."""
    found = _through_coredns("example.com")
    assert found.header.rcode == RCODE.NOERROR and _flags(found) == (0, 1, 1)
    assert [str(r.rdata) for r in found.rr] == ["192.0.2.10"]
    missing = _through_coredns("nope.example.com")
    assert missing.header.rcode == RCODE.NXDOMAIN and _flags(missing) == (0, 1, 1)
    ptr = _through_coredns("3.0.18.172.in-addr.arpa", "PTR")
    assert ptr.header.rcode == RCODE.NXDOMAIN and ptr.asked == ["3.0.18.172.in-addr.arpa."]


def test_cluster_answers_are_authoritative_without_recursion():
    """plugin/kubernetes/handler.go ServeDNS: m.SetReply(r) then m.Authoritative = true, so AA
    is set and RA clear (dig: "recursion requested but not available"); nothing is asked
    upstream."""
    reply = _through_coredns("web.default.svc.cluster.local")
    assert _flags(reply) == (1, 0, 1) and reply.asked == []
    nx = _through_coredns("nope.default.svc.cluster.local")
    assert nx.header.rcode == RCODE.NXDOMAIN and _flags(nx) == (1, 0, 1) and nx.asked == []


def test_an_external_name_gets_its_targets_records_from_upstream():
    """plugin/backend_lookup.go A: a CNAME whose target is outside the zone is looked up
    elsewhere (b.Lookup, the upstream) and its answers follow the CNAME; the reply stays the
    kubernetes plugin's (AA, no RA). The Kubernetes DNS spec (docs/specification.md, 2.3
    ExternalName) gives only the CNAME; CoreDNS adds the chase."""
    reply = _through_coredns("ext.default.svc.cluster.local")
    assert _flags(reply) == (1, 0, 1) and reply.asked == ["www.example.com."]
    assert [(str(r.rname), QTYPE[r.rtype], str(r.rdata)) for r in reply.rr] == [
        ("ext.default.svc.cluster.local.", "CNAME", "www.example.com."),
        ("www.example.com.", "CNAME", "example.com."),
        ("example.com.", "A", "192.0.2.10"),
    ]
    # a target upstream denies leaves the CNAME alone (m1.Answer is empty)
    assert [QTYPE[r.rtype] for r in _through_coredns("gone.default.svc.cluster.local").rr] == [
        "CNAME"
    ]


def test_no_upstream_answer_is_servfail():
    """plugin/forward/forward.go ServeDNS: when no upstream answers it returns
    dns.RcodeServerFailure, which the server writes as SERVFAIL."""

    async def silent(query: bytes) -> bytes | None:
        return None

    assert _through_coredns("example.com", upstream=silent).header.rcode == RCODE.SERVFAIL


def test_the_resolver_answers_edns_with_edns():
    """RFC 6891 section 7: a responder that understands EDNS includes an OPT record in its
    response to a request that had one (and none otherwise)."""
    query = DNSRecord.question("example.com")
    query.add_ar(EDNS0(udp_len=4096))
    reply = DNSRecord.parse(resolve(query.pack()))
    assert [QTYPE[r.rtype] for r in reply.ar] == ["OPT"]
    assert _ask("example.com").ar == []


def test_the_outside_resolver_and_servers_share_its_namespace_on_distinct_ports():
    """The agent may serve two workloads in one namespace (the outside's resolver on 53 and its
    netexec servers) but refuses two that claim the same port there, which one bind would
    lose."""
    spec = parse_spec({"workloads": outside_workloads("lab", [{"port": 8443, "protocol": "TCP"}])})
    assert [w.role for w in spec.workloads] == ["resolver", "netexec"]
    clash = outside_workloads("lab", [{"port": 53, "protocol": "UDP"}])
    with pytest.raises(ValueError, match="both serve UDP/53"):
        parse_spec({"workloads": clash})


@pytest.mark.parametrize("cni", fabric.SANDBOX_CNIS)
def test_capabilities_name_the_outside_world(cni):
    """The capability notes a notebook and ``labkit up`` show name every outside host and the
    resolver, so a learner knows what ``curl example.com`` reaches on the sandbox."""
    note = next(n for n in capabilities_for(cni, True).notes if n.startswith("An outside world"))
    assert all(name in note for name in world_names()) and fabric.GATEWAY_IP in note
