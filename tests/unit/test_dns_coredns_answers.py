"""Cluster DNS answers as CoreDNS's kubernetes plugin gives them (pure): SRV without
``_port._proto``, PTR per Service, endpoint names, the query's case, ANY, NS glue, dns-version,
empty namespaces, and the loadbalance plugin's shuffle. Each test names the CoreDNS source
(github.com/coredns/coredns) it follows."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from labkit.model.dns.loadbalance import round_robin, shuffle_answer
from labkit.model.dns.lookup import Answer, RecordIndex
from labkit.model.dns.records import Record, records, srv_weight

Z = "cluster.local."


def svc(name, ns, cluster_ip, ports=(), **spec):
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": cluster_ip, "ports": list(ports), **spec},
    }


def eps(service, ns, addresses, ports, name=None):
    """An EndpointSlice of ready endpoints: ``addresses`` are IPs or (IP, hostname) pairs."""
    endpoints = []
    for address in addresses:
        ip, hostname = address if isinstance(address, tuple) else (address, None)
        endpoint = {"addresses": [ip], "conditions": {"ready": True}}
        if hostname:
            endpoint["hostname"] = hostname
        endpoints.append(endpoint)
    return {
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": {
            "name": name or f"{service}-x",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": service},
        },
        "endpoints": endpoints,
        "ports": list(ports),
    }


DNS_PORTS = [
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    {"name": "metrics", "port": 9153, "protocol": "TCP"},
]
SERVICES = [
    svc("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443}]),
    svc("kube-dns", "kube-system", "10.96.0.10", DNS_PORTS),
    svc("web", "default", "10.96.10.10", [{"name": "http", "port": 80}, {"port": 9090}]),
    svc("web-alt", "default", "10.96.10.11", [{"name": "http", "port": 80}]),
    svc("db", "data", "None", [{"name": "postgres", "port": 5432}]),
    svc("ext", "default", None, type="ExternalName", externalName="api.example.com"),
]
SLICES = [
    eps("kubernetes", "default", ["172.18.0.2"], [{"name": "https", "port": 6443}]),
    eps("kube-dns", "kube-system", ["10.244.0.2", "10.244.0.3"], DNS_PORTS),
    eps("web", "default", ["10.244.1.5", "10.244.2.6"], [{"name": "http", "port": 8080}]),
    eps("web-alt", "default", ["10.244.1.5"], [{"name": "http", "port": 8080}]),
    eps(
        "db",
        "data",
        [("10.244.1.7", "db-0"), "10.244.2.8"],
        [{"name": "postgres", "port": 5432}, {"name": "metrics", "port": 9187}],
    ),
]
INDEX = RecordIndex(records(SERVICES, SLICES), namespaces=["default", "empty", "kube-system"])


def rr(name, rtype, value, ttl=30):
    return Record(name, rtype, value, ttl)


def summary(answer: Answer):
    return answer.rcode, sorted((r.name, r.rtype, r.value) for r in answer.answers)


# --------------------------------------------------------------------------- SRV


def test_srv_without_port_and_protocol_gives_every_port_of_a_cluster_ip_service():
    """CoreDNS plugin/kubernetes/kubernetes.go findServices (ClusterIP branch, matchPortAndProtocol
    with empty port/protocol) and plugin/backend_lookup.go SRV; handler_test.go
    "svc1.testns.svc.cluster.local." SRV: one answer per port, target the Service, its address
    as additional record, weights 100/n."""
    web = f"web.default.svc.{Z}"
    got = INDEX.lookup(web, "SRV")
    assert summary(got) == (
        "NOERROR",
        [(web, "SRV", f"0 50 80 {web}"), (web, "SRV", f"0 50 9090 {web}")],
    )
    assert got.additional == [rr(web, "A", "10.96.10.10")]


def test_srv_without_port_counts_duplicates_in_the_weight():
    """CoreDNS plugin/backend_lookup.go SRV: the weight counts every answer before isDuplicate
    drops a repeated (target, port): kube-dns's 53/UDP and 53/TCP make two of three."""
    dns = f"kube-dns.kube-system.svc.{Z}"
    assert summary(INDEX.lookup(dns, "SRV"))[1] == [
        (dns, "SRV", f"0 33 53 {dns}"),
        (dns, "SRV", f"0 33 9153 {dns}"),
    ]


def test_srv_without_port_on_a_headless_service_gives_each_endpoint_each_port():
    """CoreDNS findServices (headless branch) + plugin.SRV; handler_test.go "SRV Service
    (Headless)": one answer per endpoint per port, weight 100/4, the endpoints' addresses as
    additional records under their endpoint names."""
    base = f"db.data.svc.{Z}"
    got = INDEX.lookup(base, "SRV")
    targets = [(f"db-0.{base}", "10.244.1.7"), (f"10-244-2-8.{base}", "10.244.2.8")]
    assert summary(got)[1] == sorted(
        (base, "SRV", f"0 25 {port} {host}") for host, _ in targets for port in (5432, 9187)
    )
    assert sorted(got.additional) == sorted(rr(host, "A", ip) for host, ip in targets)


@pytest.mark.parametrize(
    "qname, rcode, count",
    [
        (f"_http._tcp.web.default.svc.{Z}", "NOERROR", 1),
        (f"http.tcp.web.default.svc.{Z}", "NOERROR", 1),  # parse.go stripUnderscore
        (f"_HTTP._TCP.web.default.svc.{Z}", "NOERROR", 1),  # kubernetes.go match: EqualFold
        (f"_http._udp.web.default.svc.{Z}", "NXDOMAIN", 0),
        (f"_postgres._tcp.db.data.svc.{Z}", "NOERROR", 2),
        (f"a._http._tcp.web.default.svc.{Z}", "NXDOMAIN", 0),  # parse.go: too long
        (f"ext.default.svc.{Z}", "NOERROR", 0),  # Services: ExternalName has no SRV
        (f"_http._tcp.ext.default.svc.{Z}", "NXDOMAIN", 0),
    ],
)
def test_srv_port_and_protocol_matching(qname, rcode, count):
    """CoreDNS plugin/kubernetes/parse.go parseRequest and kubernetes.go matchPortAndProtocol."""
    got = INDEX.lookup(qname, "SRV")
    assert (got.rcode, len(got.answers)) == (rcode, count)


def test_a_query_at_a_port_name_answers_the_addresses():
    """CoreDNS findServices answers ``_port._proto.<svc>`` for any type: A gives the cluster IP
    (or the endpoints holding that port, for a headless Service)."""
    assert summary(INDEX.lookup(f"_http._tcp.web.default.svc.{Z}", "A"))[1] == [
        (f"_http._tcp.web.default.svc.{Z}", "A", "10.96.10.10")
    ]
    got = INDEX.lookup(f"_metrics._tcp.db.data.svc.{Z}", "A")
    assert sorted(r.value for r in got.answers) == ["10.244.1.7", "10.244.2.8"]


@pytest.mark.parametrize(
    "offers, weight", [(1, 100), (2, 50), (3, 33), (4, 25), (5, 20), (6, 16), (7, 14), (200, 1)]
)
def test_srv_weight(offers, weight):
    """CoreDNS plugin/backend_lookup.go SRV: floor(100/(100n)*100), at least 1; handler_test.go
    gives 16 for six answers and 50 for a dual-stack Service."""
    assert srv_weight(offers) == weight


def test_dual_stack_srv_weight_halves():
    """CoreDNS handler_test.go "svc-dual-stack" SRV: two cluster IPs, one port: ``0 50 80`` once,
    with the A and the AAAA as additional records."""
    dual = svc("dual", "default", "10.0.0.3", [{"name": "http", "port": 80}])
    dual["spec"]["clusterIPs"] = ["10.0.0.3", "10::3"]
    got = RecordIndex(records([dual], [])).lookup(f"dual.default.svc.{Z}", "SRV")
    assert summary(got)[1] == [(f"dual.default.svc.{Z}", "SRV", f"0 50 80 dual.default.svc.{Z}")]
    assert sorted(r.rtype for r in got.additional) == ["A", "AAAA"]


# --------------------------------------------------------------------------- PTR


@pytest.mark.parametrize(
    "ip, names",
    [
        # a pod behind two Services: one PTR each (reverse_test.go "double-ep")
        (
            "10.244.1.5",
            [f"10-244-1-5.web.default.svc.{Z}", f"10-244-1-5.web-alt.default.svc.{Z}"],
        ),
        ("10.244.2.6", [f"10-244-2-6.web.default.svc.{Z}"]),
        # the CoreDNS pods are kube-dns's endpoints, the API server is kubernetes's
        ("10.244.0.2", [f"10-244-0-2.kube-dns.kube-system.svc.{Z}"]),
        ("172.18.0.2", [f"172-18-0-2.kubernetes.default.svc.{Z}"]),
        # a headless endpoint's hostname names it
        ("10.244.1.7", [f"db-0.db.data.svc.{Z}"]),
        # a cluster IP gives its Service alone (reverse.go serviceRecordForIP)
        ("10.96.10.10", [f"web.default.svc.{Z}"]),
    ],
)
def test_ptr_gives_one_record_per_service_holding_the_address(ip, names):
    """CoreDNS plugin/kubernetes/reverse.go serviceRecordForIP (cluster IPs first, else every
    endpoint with that address) and plugin/backend_lookup.go PTR; reverse_test.go TestReverse."""
    reverse = ".".join(reversed(ip.split("."))) + ".in-addr.arpa."
    got = INDEX.lookup(reverse, "PTR")
    assert summary(got) == ("NOERROR", sorted((reverse, "PTR", name) for name in names))


@pytest.mark.parametrize(
    "qname, qtype, rcode, answers",
    [
        ("99.99.244.10.in-addr.arpa.", "PTR", "NXDOMAIN", []),  # nobody holds it
        ("1.244.10.in-addr.arpa.", "PTR", "NXDOMAIN", []),  # not a whole address
        ("in-addr.arpa.", "PTR", "NOERROR", []),  # parse.go: apex, NODATA
        ("5.1.244.10.in-addr.arpa.", "A", "NXDOMAIN", []),  # Records: not svc/pod
        (f"web.default.svc.{Z}", "PTR", "NOERROR", []),  # a forward name with no PTR
        (f"ext.default.svc.{Z}", "PTR", "NOERROR", [("PTR", "api.example.com.")]),
        (f"nope.default.svc.{Z}", "PTR", "NXDOMAIN", []),
    ],
)
def test_ptr_edges(qname, qtype, rcode, answers):
    """CoreDNS plugin/kubernetes/reverse.go Reverse (a name that is no full address goes through
    Records) and plugin/backend_lookup.go PTR (any service host that is a name becomes a PTR,
    which makes an ExternalName's target one); reverse_test.go "svc1.testns.svc.cluster.local."
    PTR."""
    got = INDEX.lookup(qname, qtype)
    assert (got.rcode, [(r.rtype, r.value) for r in got.answers]) == (rcode, answers)


def test_ipv6_ptr():
    """CoreDNS plugin/pkg/dnsutil/reverse.go ExtractAddressFromReverse for ip6.arpa names."""
    v6 = svc("v6", "default", "fd00:10:96::a", [{"name": "http", "port": 80}])
    reverse = "a.0.0.0." + "0.0.0.0." * 4 + "6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
    got = RecordIndex(records([v6], [])).lookup(reverse, "PTR")
    assert summary(got)[1] == [(reverse, "PTR", f"v6.default.svc.{Z}")]


# --------------------------------------------------------------------------- endpoint names


@pytest.mark.parametrize(
    "qname, qtype, rcode, answers",
    [
        (f"10-244-1-5.web.default.svc.{Z}", "A", "NOERROR", ["10.244.1.5"]),
        (f"10-244-2-6.web.default.svc.{Z}", "A", "NOERROR", ["10.244.2.6"]),
        (
            f"10-244-1-5.web.default.svc.{Z}",
            "SRV",
            "NOERROR",
            [f"0 100 8080 10-244-1-5.web.default.svc.{Z}"],
        ),
        (f"10-244-0-3.kube-dns.kube-system.svc.{Z}", "A", "NOERROR", ["10.244.0.3"]),
        (f"10-244-1-5.web.default.svc.{Z}", "AAAA", "NOERROR", []),
        (f"10-244-9-9.web.default.svc.{Z}", "A", "NXDOMAIN", []),
        (f"10-244-1-7.db.data.svc.{Z}", "A", "NXDOMAIN", []),  # it is named db-0
        (f"db-0.db.data.svc.{Z}", "A", "NOERROR", ["10.244.1.7"]),
        (f"endpoint.ext.default.svc.{Z}", "CNAME", "NXDOMAIN", []),
    ],
)
def test_endpoint_names_answer_for_every_service(qname, qtype, rcode, answers):
    """CoreDNS plugin/kubernetes/kubernetes.go findServices: "Endpoint query or headless
    service" (``svc.Headless() || r.endpoint != ""``) answers an endpoint name for ClusterIP
    Services too, with the endpoint's IP; endpointHostname names it; handler_test.go
    "endpoint.external.testns.svc.cluster.local." is NXDOMAIN."""
    got = INDEX.lookup(qname, qtype)
    assert (got.rcode, sorted(r.value for r in got.answers)) == (rcode, answers)


# --------------------------------------------------------------------------- the query's case


def test_owner_names_keep_the_query_case():
    """CoreDNS plugin/kubernetes/handler_case_test.go TestPreserveCase: answers are owned by the
    name as asked; names built from the zone (SRV target, additional, SOA) take its spelling."""
    asked = "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL."
    got = INDEX.lookup(asked, "SRV")
    target = "web.default.svc.cLuStEr.LoCaL."
    assert got.answers == [rr(asked, "SRV", f"0 100 80 {target}")]
    assert got.additional == [rr(target, "A", "10.96.10.10")]
    a = INDEX.lookup("WeB.DeFaUlT.SvC.cLuStEr.LoCaL.", "A")
    assert a.answers == [rr("WeB.DeFaUlT.SvC.cLuStEr.LoCaL.", "A", "10.96.10.10")]
    missing = INDEX.lookup("not-a-service.default.svc.ClUsTeR.lOcAl.", "A")
    assert missing.rcode == "NXDOMAIN"
    assert missing.authority[0].name == "ClUsTeR.lOcAl."
    assert missing.authority[0].value.startswith("ns.dns.ClUsTeR.lOcAl. hostmaster.ClUsTeR.lOcAl. ")
    soa = INDEX.lookup("Cluster.local.", "SOA")
    assert [r.name for r in soa.answers] == ["Cluster.local."]
    ptr = INDEX.lookup("5.2.244.10.IN-ADDR.ARPA.", "PTR")
    assert [r.name for r in ptr.answers] == []  # no such endpoint: nothing to own
    ptr = INDEX.lookup("6.2.244.10.IN-ADDR.ARPA.", "PTR")
    assert ptr.answers == [rr("6.2.244.10.IN-ADDR.ARPA.", "PTR", f"10-244-2-6.web.default.svc.{Z}")]


# --------------------------------------------------------------------------- types and names


@pytest.mark.parametrize(
    "qname, qtype, rcode",
    [
        (f"web.default.svc.{Z}", "ANY", "NOERROR"),
        (f"web.default.svc.{Z}", "MX", "NOERROR"),
        (f"web.default.svc.{Z}", "CNAME", "NOERROR"),
        (f"web.default.svc.{Z}", "TXT", "NOERROR"),
        (f"web.default.svc.{Z}", "SOA", "NOERROR"),
        (f"nope.default.svc.{Z}", "SOA", "NOERROR"),  # SOA: only the apex, no name check
        (f"nope.default.svc.{Z}", "MX", "NXDOMAIN"),
        (f"nope.default.svc.{Z}", "ANY", "NXDOMAIN"),
        (f"svc.{Z}", "NS", "NOERROR"),  # handler_test.go: NS for qname != zone
        (f"default.svc.{Z}", "NS", "NOERROR"),
        (f"foo.{Z}", "NS", "NXDOMAIN"),
        (f"foo.svc.{Z}", "NS", "NXDOMAIN"),
        (Z, "A", "NOERROR"),
        (Z, "TXT", "NXDOMAIN"),  # Services TXT: no record of another type at the apex
        (f"dns.{Z}", "A", "NXDOMAIN"),  # parse.go: neither svc nor pod
        (f"dns-version.{Z}", "A", "NXDOMAIN"),
        (f"ns.dns.{Z}", "TXT", "NXDOMAIN"),  # TXT goes through Records, not isDefaultNS
        (f"a.b.c.web.default.svc.{Z}", "A", "NXDOMAIN"),
    ],
)
def test_nodata_or_nxdomain_per_type(qname, qtype, rcode):
    """CoreDNS plugin/kubernetes/handler.go ServeDNS's switch (SOA only at the apex, NS only at
    the apex, a fake A lookup for ANY and other types) and kubernetes.go Services (TXT: NODATA
    only when another type has records); handler_test.go's NS and SOA cases."""
    got = INDEX.lookup(qname, qtype)
    assert (got.rcode, got.answers) == (rcode, [])
    assert [r.rtype for r in got.authority] == ["SOA"]


def test_ns_answer_carries_the_glue_address():
    """CoreDNS plugin/backend_lookup.go NS with plugin/kubernetes/ns.go nsAddrs: NS names the
    kube-dns Service, and its cluster IP comes as an additional record (ns_test.go TestNsAddrs)."""
    got = INDEX.lookup(Z, "NS")
    name = f"kube-dns.kube-system.svc.{Z}"
    assert (got.answers, got.additional) == ([rr(Z, "NS", name)], [rr(name, "A", "10.96.0.10")])


def test_dns_version_has_ttl_28800():
    """CoreDNS plugin/kubernetes/kubernetes.go Services: ``dns-version.<zone>`` TXT is the schema
    version with TTL 28800 (handler_test.go "TXT Schema"), under any zone the plugin serves."""
    for qname in (f"dns-version.{Z}", "DNS-Version.Cluster.Local.", "dns-version.in-addr.arpa."):
        assert INDEX.lookup(qname, "TXT").answers == [Record(qname, "TXT", "1.1.0", 28800)]


# --------------------------------------------------------------------------- namespaces


@pytest.mark.parametrize("qtype", ["A", "AAAA", "SRV", "PTR", "CNAME", "MX", "ANY", "NS"])
@pytest.mark.parametrize("qname", [f"empty.svc.{Z}", f"empty.pod.{Z}", f"svc.{Z}", f"pod.{Z}"])
def test_an_existing_empty_namespace_is_nodata(qname, qtype):
    """CoreDNS plugin/kubernetes/kubernetes.go findServices/findPods ("handle empty service
    name": NODATA if the namespace exists) and parse.go ("return NODATA for apex queries")."""
    assert INDEX.lookup(qname, qtype).nodata


@pytest.mark.parametrize(
    "qname, qtype, rcode",
    [
        (f"empty.svc.{Z}", "TXT", "NXDOMAIN"),  # Services TXT: no records, so a name error
        (f"web.empty.svc.{Z}", "A", "NXDOMAIN"),  # findServices: no such Service
        (f"_http._tcp.web.empty.svc.{Z}", "SRV", "NXDOMAIN"),
        (f"nowhere.svc.{Z}", "A", "NXDOMAIN"),  # namespaceExposed: no such namespace
        (f"nowhere.pod.{Z}", "A", "NXDOMAIN"),
        (f"web.nowhere.svc.{Z}", "A", "NXDOMAIN"),
        (f"10-1-2-3.nowhere.pod.{Z}", "A", "NXDOMAIN"),
    ],
)
def test_names_under_or_beside_an_empty_namespace(qname, qtype, rcode):
    """CoreDNS plugin/kubernetes/kubernetes.go Records (errNsNotExposed), findServices
    (errNoItems for a missing Service) and Services (TXT)."""
    assert INDEX.lookup(qname, qtype).rcode == rcode


@pytest.mark.parametrize(
    "qname, qtype, answers",
    [
        (f"10-244-9-9.empty.pod.{Z}", "A", ["10.244.9.9"]),
        (f"x.10-244-9-9.empty.pod.{Z}", "A", ["10.244.9.9"]),  # findPods reads r.service only
        (f"_a._b.10-244-9-9.empty.pod.{Z}", "A", ["10.244.9.9"]),
        (f"fd00--1.empty.pod.{Z}", "AAAA", ["fd00::1"]),
        (f"fd00-0-0-0-0-0-0-1.empty.pod.{Z}", "AAAA", ["fd00::1"]),
        (f"fd00--1.empty.pod.{Z}", "A", []),
    ],
)
def test_pod_names_in_insecure_mode(qname, qtype, answers):
    """CoreDNS plugin/kubernetes/kubernetes.go findPods (podModeInsecure): three dashes and no
    ``--`` make an IPv4 address, else dashes are colons; any parsable address answers
    (handler_pod_insecure_test.go)."""
    got = INDEX.lookup(qname, qtype)
    assert (got.rcode, [r.value for r in got.answers]) == ("NOERROR", answers)


# --------------------------------------------------------------------------- loadbalance


def addresses(n):
    return [rr("db.data.svc.cluster.local.", "A", f"10.244.0.{i}") for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_round_robin_reaches_every_order_equally(n):
    """CoreDNS plugin/loadbalance/loadbalance.go roundRobinShuffle: over every residue the draws
    can have, each order of n addresses comes out equally often (a fair Fisher-Yates)."""
    section = addresses(n)
    spans = [2] if n == 2 else [n - j for j in range(n)]
    orders = Counter()
    for residues in itertools.product(*(range(s) for s in spans)):
        draw = iter(residues).__next__
        orders[tuple(r.value for r in round_robin(section, draw))] += 1
    assert len(orders) == len(list(itertools.permutations(section)))
    assert len(set(orders.values())) == 1


def test_round_robin_with_a_random_source_spreads_the_first_address():
    """CoreDNS loadbalance.go: with dns.Id()'s random draws, each address leads about equally
    often (seeded, so the count is exact: each of 4 within 10% of 2500 in 10000)."""
    rng = random.Random(12)
    firsts = Counter(
        round_robin(addresses(4), lambda: rng.getrandbits(16))[0].value for _ in range(10000)
    )
    assert all(2250 <= count <= 2750 for count in firsts.values()) and len(firsts) == 4


def test_round_robin_orders_a_mixed_section():
    """CoreDNS loadbalance.go roundRobin: CNAMEs first, then other types in order, then the
    addresses shuffled; a single record or an empty section is left alone."""
    cname = rr("alias.default.svc.cluster.local.", "CNAME", "db.data.svc.cluster.local.")
    srv = rr("x.", "SRV", "0 100 80 y.")
    a1, a2 = addresses(2)
    draws = iter([0])  # even: the two addresses swap
    assert round_robin([a1, srv, a2, cname], lambda: next(draws)) == [cname, srv, a2, a1]
    assert round_robin([a1], lambda: 1) == [a1] and round_robin([], lambda: 1) == []
    odd = iter([1])
    assert round_robin([a1, a2], lambda: next(odd)) == [a1, a2]


def test_shuffle_answer_touches_only_successful_replies():
    """CoreDNS loadbalance.go WriteMsg: a reply whose rcode is not success passes unchanged;
    otherwise answer, authority and additional sections are each reordered."""
    failed = Answer("NXDOMAIN", authority=[rr(Z, "SOA", "x")])
    assert shuffle_answer(failed, lambda: 0) is failed
    srv = INDEX.lookup(f"db.data.svc.{Z}", "SRV")
    shuffled = shuffle_answer(srv, lambda: 0)
    assert shuffled.answers == srv.answers  # SRV records are not addresses: order kept
    assert shuffled.additional == list(reversed(srv.additional))
    headless = INDEX.lookup(f"db.data.svc.{Z}", "A")
    assert shuffle_answer(headless, lambda: 0).answers == list(reversed(headless.answers))
