"""Cluster DNS semantics (pure): resolver query order, resolv.conf, spec records, lookups."""

from __future__ import annotations

import random

import pytest

from labkit.model.dns.lookup import Answer, RecordIndex, ResolverQuery, explain_lookup
from labkit.model.dns.names import dashed, fqdn, reverse_name
from labkit.model.dns.poddns import pod_resolv_conf
from labkit.model.dns.records import RECORD_ORDER, SCHEMA_VERSION, Record, records
from labkit.model.dns.resolver import (
    ResolvConf,
    cluster_search_path,
    parse_resolv_conf,
    query_order,
)

SEARCH = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
Z = "cluster.local."


# --------------------------------------------------------------------------- query order


@pytest.mark.parametrize(
    "name, ndots, expected",
    [
        # bare service name: 0 dots < 5, search list first, the bare name last
        (
            "web",
            5,
            [
                "web.default.svc.cluster.local.",
                "web.svc.cluster.local.",
                "web.cluster.local.",
                "web.",
            ],
        ),
        # svc.ns: 1 dot, still below ndots
        (
            "web.prod",
            5,
            [
                "web.prod.default.svc.cluster.local.",
                "web.prod.svc.cluster.local.",
                "web.prod.cluster.local.",
                "web.prod.",
            ],
        ),
        # svc.ns.svc: the third candidate is the real name
        (
            "web.prod.svc",
            5,
            [
                "web.prod.svc.default.svc.cluster.local.",
                "web.prod.svc.svc.cluster.local.",
                "web.prod.svc.cluster.local.",
                "web.prod.svc.",
            ],
        ),
        # the full name without a trailing dot has 4 dots < 5: three wasted queries first
        (
            "web.prod.svc.cluster.local",
            5,
            [
                "web.prod.svc.cluster.local.default.svc.cluster.local.",
                "web.prod.svc.cluster.local.svc.cluster.local.",
                "web.prod.svc.cluster.local.cluster.local.",
                "web.prod.svc.cluster.local.",
            ],
        ),
        # trailing dot: absolute, tried alone
        ("web.prod.svc.cluster.local.", 5, ["web.prod.svc.cluster.local."]),
        ("web.", 5, ["web."]),
        # 5 dots reaches ndots: as written first, then the search list
        (
            "a.b.c.d.e.f",
            5,
            [
                "a.b.c.d.e.f.",
                "a.b.c.d.e.f.default.svc.cluster.local.",
                "a.b.c.d.e.f.svc.cluster.local.",
                "a.b.c.d.e.f.cluster.local.",
            ],
        ),
        # 4 dots is one short of 5
        (
            "a.b.c.d.e",
            5,
            [
                "a.b.c.d.e.default.svc.cluster.local.",
                "a.b.c.d.e.svc.cluster.local.",
                "a.b.c.d.e.cluster.local.",
                "a.b.c.d.e.",
            ],
        ),
        # ndots:1 (the glibc default) tries dotted names as written first
        (
            "example.com",
            1,
            [
                "example.com.",
                "example.com.default.svc.cluster.local.",
                "example.com.svc.cluster.local.",
                "example.com.cluster.local.",
            ],
        ),
        (
            "web",
            1,
            [
                "web.default.svc.cluster.local.",
                "web.svc.cluster.local.",
                "web.cluster.local.",
                "web.",
            ],
        ),
        # ndots:0 makes even a bare name absolute-first
        (
            "web",
            0,
            [
                "web.",
                "web.default.svc.cluster.local.",
                "web.svc.cluster.local.",
                "web.cluster.local.",
            ],
        ),
    ],
)
def test_query_order(name, ndots, expected):
    assert query_order(name, SEARCH, ndots) == expected


def test_query_order_default_ndots_is_five():
    assert query_order("a.b.c.d", SEARCH) == query_order("a.b.c.d", SEARCH, 5)
    assert query_order("a.b.c.d", SEARCH)[-1] == "a.b.c.d."


def test_query_order_without_search_list():
    assert query_order("web", []) == ["web."]
    assert query_order("a.b.c.d.e.f", []) == ["a.b.c.d.e.f."]


def test_query_order_root_on_search_list_is_the_bare_name_once():
    assert query_order("web", ["default.svc.cluster.local", "."]) == [
        "web.default.svc.cluster.local.",
        "web.",
    ]


def test_query_order_normalises_search_domains_and_keeps_case():
    assert query_order("Web", ["Default.svc.cluster.local.", ".svc.cluster.local"]) == [
        "Web.Default.svc.cluster.local.",
        "Web.svc.cluster.local.",
        "Web.",
    ]


def test_query_order_clamps_ndots_like_glibc():
    name = ".".join("abcdefghijklmnop")  # 15 dots
    assert query_order(name, SEARCH, 40)[0] == name + "."


@pytest.mark.parametrize("name", ["", "   ", ".", "a..b", ".web"])
def test_query_order_rejects_bad_names(name):
    with pytest.raises(ValueError):
        query_order(name, SEARCH)


def test_query_order_rejects_negative_ndots():
    with pytest.raises(ValueError, match="ndots"):
        query_order("web", SEARCH, -1)


# --------------------------------------------------------------------------- resolv.conf


def test_a_cluster_first_pods_resolv_conf_is_what_kubelet_writes():
    """kubelet dns.go GetPodDNS (ClusterFirst) as containerd writes it."""
    assert pod_resolv_conf({}, "default", "", ("10.96.0.10",)) == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


def test_a_cluster_first_pods_resolv_conf_in_another_domain():
    text = pod_resolv_conf({}, "shop", "", ("10.96.0.53",), cluster_domain="corp.example")
    assert text.splitlines() == [
        "search shop.svc.corp.example svc.corp.example corp.example",
        "nameserver 10.96.0.53",
        "options ndots:5",
    ]


def test_cluster_search_path():
    assert cluster_search_path("prod") == [
        "prod.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ]


def test_parse_resolv_conf_round_trips_the_rendered_file():
    conf = parse_resolv_conf(pod_resolv_conf({}, "prod", "", ("10.96.0.10",)))
    assert conf == ResolvConf(
        nameservers=("10.96.0.10",),
        search=tuple(cluster_search_path("prod")),
        ndots=5,
        timeout=5,
        attempts=2,
        options=("ndots:5",),
    )


def test_parse_resolv_conf_defaults_for_an_empty_file():
    assert parse_resolv_conf("") == ResolvConf((), (), 1, 5, 2, ())


def test_parse_resolv_conf_glibc_rules():
    conf = parse_resolv_conf("""
# a comment
; another comment
nameserver 10.0.0.1
nameserver not-an-ip
nameserver 10.0.0.2
nameserver fe80::1%eth0
nameserver 10.0.0.4
search a.example b.example.
options ndots:20 timeout:2 attempts:9 rotate ndots:x
""")
    assert conf.nameservers == ("10.0.0.1", "10.0.0.2", "fe80::1%eth0")
    assert conf.search == ("a.example", "b.example")
    assert conf.ndots == 15
    assert conf.timeout == 2
    assert conf.attempts == 5
    assert "rotate" in conf.options


@pytest.mark.parametrize(
    "text, search",
    [
        ("domain corp.example\nsearch a.example b.example\n", ("a.example", "b.example")),
        ("search a.example b.example\ndomain corp.example\n", ("corp.example",)),
        ("search one.example\nsearch two.example\n", ("two.example",)),
    ],
)
def test_parse_resolv_conf_last_search_or_domain_wins(text, search):
    assert parse_resolv_conf(text).search == search


# --------------------------------------------------------------------------- objects


def service(
    name,
    namespace="default",
    *,
    cluster_ip=None,
    ports=(),
    type_=None,
    external=None,
    publish_not_ready=False,
    annotations=None,
    cluster_ips=None,
):
    spec = {"ports": list(ports)}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    if cluster_ips is not None:
        spec["clusterIPs"] = cluster_ips
    if type_:
        spec["type"] = type_
    if external:
        spec["externalName"] = external
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    meta = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def endpoint(ip, *, ready=True, hostname=None):
    ep = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def eslice(service_name, namespace, endpoints, ports, name=None):
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": {
            "name": name or f"{service_name}-abcde",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "endpoints": list(endpoints),
        "ports": list(ports),
    }


def pod(name, namespace, ip):
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"podIP": ip},
    }


def rec(name, rtype, value):
    return Record(name, rtype, value, 30)


def without_version(recs):
    return [r for r in recs if not r.name.startswith("dns-version.")]


# --------------------------------------------------------------------------- records per kind


def test_clusterip_service_records():
    """CoreDNS plugin/kubernetes/kubernetes.go findServices (ClusterIP branch) and
    plugin/backend_lookup.go SRV: the Service's name answers SRV for every port (weight 100/n over
    the n ports), ``_port._proto`` answers SRV and A for its port."""
    svc = service(
        "web",
        cluster_ip="10.96.10.10",
        ports=[
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "Metrics", "port": 9090},
        ],
    )
    assert without_version(records([svc], [])) == sorted(
        [
            rec("web.default.svc.cluster.local.", "A", "10.96.10.10"),
            rec("10.10.96.10.in-addr.arpa.", "PTR", "web.default.svc.cluster.local."),
            rec(
                "_http._tcp.web.default.svc.cluster.local.",
                "SRV",
                "0 100 80 web.default.svc.cluster.local.",
            ),
            rec("_http._tcp.web.default.svc.cluster.local.", "A", "10.96.10.10"),
            rec(
                "_metrics._tcp.web.default.svc.cluster.local.",
                "SRV",
                "0 100 9090 web.default.svc.cluster.local.",
            ),
            rec("_metrics._tcp.web.default.svc.cluster.local.", "A", "10.96.10.10"),
            rec("web.default.svc.cluster.local.", "SRV", "0 50 80 web.default.svc.cluster.local."),
            rec(
                "web.default.svc.cluster.local.", "SRV", "0 50 9090 web.default.svc.cluster.local."
            ),
        ]
    )


def test_unnamed_port_has_srv_only_at_the_service_name():
    """CoreDNS matchPortAndProtocol (plugin/kubernetes/kubernetes.go): an SRV query without
    ``_port._proto`` matches every port, named or not; no ``_port`` name matches an unnamed one."""
    svc = service("plain", cluster_ip="10.96.20.20", ports=[{"port": 80, "protocol": "TCP"}])
    base = "plain.default.svc.cluster.local."
    assert without_version(records([svc], [])) == sorted(
        [
            rec(base, "A", "10.96.20.20"),
            rec("20.20.96.10.in-addr.arpa.", "PTR", base),
            rec(base, "SRV", f"0 100 80 {base}"),
        ]
    )


def test_udp_port_srv_uses_udp_label():
    """CoreDNS findServices + plugin.SRV: three ports give weight 33 at the Service's name, and
    the two port-53 answers with one target collapse into one record (isDuplicate)."""
    svc = service(
        "kube-dns",
        "kube-system",
        cluster_ip="10.96.0.10",
        ports=[
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53},
            {"name": "metrics", "port": 9153, "protocol": "TCP"},
        ],
    )
    srv = sorted((r.name, r.value) for r in records([svc], []) if r.rtype == "SRV")
    base = "kube-dns.kube-system.svc.cluster.local."
    assert srv == sorted(
        [
            (f"_dns._udp.{base}", f"0 100 53 {base}"),
            (f"_dns-tcp._tcp.{base}", f"0 100 53 {base}"),
            (f"_metrics._tcp.{base}", f"0 100 9153 {base}"),
            (base, f"0 33 53 {base}"),
            (base, f"0 33 9153 {base}"),
        ]
    )


@pytest.mark.parametrize("type_", ["NodePort", "LoadBalancer"])
def test_nodeport_and_loadbalancer_get_a_records_like_clusterip(type_):
    svc = service(
        "edge",
        cluster_ip="10.96.30.30",
        type_=type_,
        ports=[{"name": "http", "port": 80, "nodePort": 30080}],
    )
    got = records([svc], [])
    assert rec("edge.default.svc.cluster.local.", "A", "10.96.30.30") in got
    assert (
        rec(
            "_http._tcp.edge.default.svc.cluster.local.",
            "SRV",
            "0 100 80 edge.default.svc.cluster.local.",
        )
        in got
    )


def test_clusterip_records_do_not_depend_on_endpoints():
    svc = service("web", cluster_ip="10.96.10.10", ports=[{"name": "http", "port": 80}])
    not_ready = eslice(
        "web", "default", [endpoint("10.244.1.5", ready=False)], [{"name": "http", "port": 8080}]
    )
    assert records([svc], []) == records([svc], [not_ready])


def test_dual_stack_cluster_ips():
    svc = service("web", cluster_ip="10.96.10.10", cluster_ips=["10.96.10.10", "fd00:10:96::a"])
    got = records([svc], [])
    assert rec("web.default.svc.cluster.local.", "AAAA", "fd00:10:96::a") in got
    assert rec(reverse_name("fd00:10:96::a"), "PTR", "web.default.svc.cluster.local.") in got
    assert reverse_name("fd00:10:96::a").endswith(".ip6.arpa.")


HEADLESS_SLICE = eslice(
    "db",
    "data",
    [
        endpoint("10.244.1.5", hostname="db-0"),
        endpoint("10.244.2.7"),
        endpoint("10.244.1.9", ready=False, hostname="db-2"),
    ],
    [
        {"name": "postgres", "port": 5432, "protocol": "TCP"},
        {"name": "", "port": 9187, "protocol": "TCP"},
    ],
)


def test_headless_service_records():
    """CoreDNS findServices (headless branch) + plugin.SRV, as handler_test.go's hdls1 cases: one
    answer per ready endpoint per port, the Service's name with all of them (weight 100/4 over
    two endpoints with two ports), ``_postgres._tcp`` with the matching ones, each endpoint's
    name with its own (handler_test.go "SRV Service (Headless)")."""
    svc = service("db", "data", cluster_ip="None", ports=[{"name": "postgres", "port": 5432}])
    base = "db.data.svc.cluster.local."
    db0, other = f"db-0.{base}", f"10-244-2-7.{base}"
    assert without_version(records([svc], [HEADLESS_SLICE])) == sorted(
        [
            rec(base, "A", "10.244.1.5"),
            rec(base, "A", "10.244.2.7"),
            rec(db0, "A", "10.244.1.5"),
            rec(other, "A", "10.244.2.7"),
            rec("5.1.244.10.in-addr.arpa.", "PTR", db0),
            rec("7.2.244.10.in-addr.arpa.", "PTR", other),
            rec(f"_postgres._tcp.{base}", "SRV", f"0 50 5432 {db0}"),
            rec(f"_postgres._tcp.{base}", "SRV", f"0 50 5432 {other}"),
            rec(f"_postgres._tcp.{base}", "A", "10.244.1.5"),
            rec(f"_postgres._tcp.{base}", "A", "10.244.2.7"),
            rec(base, "SRV", f"0 25 5432 {db0}"),
            rec(base, "SRV", f"0 25 9187 {db0}"),
            rec(base, "SRV", f"0 25 5432 {other}"),
            rec(base, "SRV", f"0 25 9187 {other}"),
            rec(db0, "SRV", f"0 50 5432 {db0}"),
            rec(db0, "SRV", f"0 50 9187 {db0}"),
            rec(other, "SRV", f"0 50 5432 {other}"),
            rec(other, "SRV", f"0 50 9187 {other}"),
        ]
    )


def test_headless_not_ready_endpoints_are_excluded():
    svc = service("db", "data", cluster_ip="None")
    values = {r.value for r in records([svc], [HEADLESS_SLICE])}
    names = {r.name for r in records([svc], [HEADLESS_SLICE])}
    assert "10.244.1.9" not in values
    assert "db-2.db.data.svc.cluster.local." not in names
    assert "9.1.244.10.in-addr.arpa." not in names


@pytest.mark.parametrize("how", ["spec", "annotation"])
def test_headless_publish_not_ready_addresses(how):
    svc = service(
        "db",
        "data",
        cluster_ip="None",
        publish_not_ready=how == "spec",
        annotations={"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}
        if how == "annotation"
        else None,
    )
    got = records([svc], [HEADLESS_SLICE])
    assert rec("db.data.svc.cluster.local.", "A", "10.244.1.9") in got
    assert rec("db-2.db.data.svc.cluster.local.", "A", "10.244.1.9") in got


def test_headless_unknown_readiness_counts_as_ready():
    sl = eslice("db", "data", [{"addresses": ["10.244.1.5"]}], [])
    assert rec("db.data.svc.cluster.local.", "A", "10.244.1.5") in records(
        [service("db", "data", cluster_ip="None")], [sl]
    )


def test_headless_without_ready_endpoints_has_no_records():
    svc = service("db", "data", cluster_ip="None", ports=[{"name": "postgres", "port": 5432}])
    only_unready = eslice(
        "db", "data", [endpoint("10.244.1.9", ready=False)], [{"name": "postgres", "port": 5432}]
    )
    assert without_version(records([svc], [only_unready])) == []
    assert without_version(records([svc], [])) == []


def test_headless_srv_follows_each_slices_ports():
    """A named targetPort can resolve to different numbers per pod: each slice keeps its ports."""
    svc = service(
        "api", cluster_ip="None", ports=[{"name": "http", "port": 80, "targetPort": "web"}]
    )
    slices = [
        eslice(
            "api",
            "default",
            [endpoint("10.244.1.2")],
            [{"name": "http", "port": 8080}],
            name="api-a",
        ),
        eslice(
            "api",
            "default",
            [endpoint("10.244.2.2")],
            [{"name": "http", "port": 9090}],
            name="api-b",
        ),
    ]
    srv = sorted(
        r.value for r in records([svc], slices) if r.rtype == "SRV" and r.name.startswith("_")
    )
    base = "api.default.svc.cluster.local."
    assert srv == [f"0 50 8080 10-244-1-2.{base}", f"0 50 9090 10-244-2-2.{base}"]


def test_headless_shared_hostname_gets_one_a_per_ip_and_one_srv_target():
    """CoreDNS handler_test.go "dup-name": two endpoints sharing a hostname count twice in the
    weight (0 50) but give one SRV record (plugin/backend_lookup.go isDuplicate)."""
    svc = service("db", "data", cluster_ip="None")
    sl = eslice(
        "db",
        "data",
        [endpoint("10.244.1.5", hostname="db"), endpoint("10.244.2.5", hostname="db")],
        [{"name": "pg", "port": 5432}],
    )
    got = records([svc], [sl])
    assert {
        r.value for r in got if r.name == "db.db.data.svc.cluster.local." and r.rtype == "A"
    } == {"10.244.1.5", "10.244.2.5"}
    assert {(r.name, r.value) for r in got if r.rtype == "SRV"} == {
        (name, "0 50 5432 db.db.data.svc.cluster.local.")
        for name in (
            "db.data.svc.cluster.local.",
            "_pg._tcp.db.data.svc.cluster.local.",
            "db.db.data.svc.cluster.local.",
        )
    }


def test_slices_of_other_namespaces_or_unowned_are_ignored():
    svc = service("db", "data", cluster_ip="None")
    other_ns = eslice("db", "prod", [endpoint("10.244.1.5")], [])
    unowned = eslice("db", "data", [endpoint("10.244.1.6")], [])
    unowned["metadata"]["labels"] = {}
    fqdn_slice = eslice("db", "data", [{"addresses": ["db.example.com"]}], [])
    fqdn_slice["addressType"] = "FQDN"
    assert without_version(records([svc], [other_ns, unowned, fqdn_slice])) == []


def test_legacy_endpoints_object():
    svc = service("db", "data", cluster_ip="None")
    eps = {
        "kind": "Endpoints",
        "metadata": {"name": "db", "namespace": "data"},
        "subsets": [
            {
                "addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}],
                "notReadyAddresses": [{"ip": "10.244.1.9"}],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            }
        ],
    }
    got = records([svc], [eps])
    assert rec("db-0.db.data.svc.cluster.local.", "A", "10.244.1.5") in got
    assert (
        rec(
            "_pg._tcp.db.data.svc.cluster.local.",
            "SRV",
            "0 100 5432 db-0.db.data.svc.cluster.local.",
        )
        in got
    )
    assert "10.244.1.9" not in {r.value for r in got}


def test_external_name_is_a_cname():
    svc = service(
        "payments",
        "shop",
        type_="ExternalName",
        external="API.Payments.Example.com",
        ports=[{"name": "https", "port": 443}],
    )
    assert without_version(records([svc], [])) == [
        rec("payments.shop.svc.cluster.local.", "CNAME", "api.payments.example.com.")
    ]


def test_external_name_without_target_is_rejected():
    with pytest.raises(ValueError, match="externalName"):
        records([service("x", type_="ExternalName")], [])


def test_pod_records():
    got = records(
        [],
        [],
        [
            pod("web-1", "default", "10.244.1.5"),
            pod("pending", "default", None),
            {
                "metadata": {"name": "v6", "namespace": "prod"},
                "status": {"podIPs": [{"ip": "fd00::5"}]},
            },
        ],
    )
    assert without_version(got) == sorted(
        [
            rec("10-244-1-5.default.pod.cluster.local.", "A", "10.244.1.5"),
            rec("fd00--5.prod.pod.cluster.local.", "AAAA", "fd00::5"),
        ]
    )


def test_schema_version_record_and_custom_domain_and_ttl():
    got = records(
        [service("web", "Prod", cluster_ip="10.96.1.1")], [], cluster_domain="Corp.Example", ttl=5
    )
    # CoreDNS plugin/kubernetes/kubernetes.go Services: dns-version's TTL is 28800, whatever
    # the plugin's ttl (handler_test.go "TXT Schema")
    assert Record("dns-version.corp.example.", "TXT", SCHEMA_VERSION, 28800) in got
    assert Record("web.prod.svc.corp.example.", "A", "10.96.1.1", 5) in got


def test_services_without_an_address_publish_nothing():
    assert without_version(records([service("new", cluster_ip=""), service("also-new")], [])) == []


def test_records_are_sorted_and_unique():
    svc = service("web", cluster_ip="10.96.10.10", ports=[{"name": "http", "port": 80}])
    got = records([svc, svc], [])
    assert got == sorted(set(got))


@pytest.mark.parametrize(
    "bad",
    [
        service("Not_A_Label", cluster_ip="10.96.0.5"),
        {"metadata": {"namespace": "default"}, "spec": {"clusterIP": "10.96.0.5"}},
        service("web", cluster_ip="10.96.0.500"),
        service("web", cluster_ip="10.96.0.5", ports=[{"name": "http"}]),
    ],
)
def test_records_reject_bad_services(bad):
    with pytest.raises(ValueError):
        records([bad], [])


def test_helpers():
    assert fqdn("Web.Default.SVC.cluster.local") == "web.default.svc.cluster.local."
    assert fqdn("x.") == "x." and fqdn(".") == "."
    assert reverse_name("10.96.0.10") == "10.0.96.10.in-addr.arpa."
    assert dashed("10.244.1.5") == "10-244-1-5"
    assert (
        str(Record("dns-version.cluster.local.", "TXT", "1.1.0"))
        == 'dns-version.cluster.local.\t30\tIN\tTXT\t"1.1.0"'
    )
    with pytest.raises(ValueError):
        reverse_name("nope")


# --------------------------------------------------------------------------- lookups


def cluster():
    services = [
        service("kubernetes", cluster_ip="10.96.0.1", ports=[{"name": "https", "port": 443}]),
        service(
            "kube-dns",
            "kube-system",
            cluster_ip="10.96.0.10",
            ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}],
        ),
        service("web", cluster_ip="10.96.10.10", ports=[{"name": "http", "port": 80}]),
        service("web", "prod", cluster_ip="10.96.11.11", ports=[{"name": "http", "port": 80}]),
        service("db", "data", cluster_ip="None", ports=[{"name": "postgres", "port": 5432}]),
        service("ext", type_="ExternalName", external="api.example.com"),
        service("alias", type_="ExternalName", external="web.prod.svc.cluster.local"),
        service("dangling", type_="ExternalName", external="missing.default.svc.cluster.local"),
        service("loop-a", type_="ExternalName", external="loop-b.default.svc.cluster.local"),
        service("loop-b", type_="ExternalName", external="loop-a.default.svc.cluster.local"),
    ]
    return RecordIndex(
        records(services, [HEADLESS_SLICE], [pod("web-1", "default", "10.244.1.3")]),
        namespaces=["empty"],
    )


INDEX = cluster()


def values(answer: Answer, rtype=None):
    return sorted(r.value for r in answer.answers if rtype is None or r.rtype == rtype)


def test_lookup_service_a():
    got = INDEX.lookup("web.default.svc.cluster.local.", "A")
    assert got.rcode == "NOERROR" and values(got) == ["10.96.10.10"]
    assert got.zone == Z and got.authority == [] and not got.nodata


@pytest.mark.parametrize(
    "qname",
    [
        "WEB.Default.Svc.Cluster.Local.",
        "web.default.svc.cluster.local",
        "wEb.DEFAULT.svc.CLUSTER.local",
    ],
)
def test_lookup_is_case_insensitive(qname):
    assert values(INDEX.lookup(qname, "a")) == ["10.96.10.10"]


def test_lookup_cross_namespace():
    assert values(INDEX.lookup("web.prod.svc.cluster.local.", "A")) == ["10.96.11.11"]


def test_lookup_nxdomain_carries_the_zone_soa():
    got = INDEX.lookup("nope.default.svc.cluster.local.", "A")
    assert got.rcode == "NXDOMAIN" and got.answers == []
    assert [r.rtype for r in got.authority] == ["SOA"] and got.authority[0].name == Z
    assert got.authority[0].value.startswith(f"ns.dns.{Z} hostmaster.{Z} ")


def test_lookup_nodata_when_name_exists_without_the_type():
    got = INDEX.lookup("web.default.svc.cluster.local.", "AAAA")
    assert got.rcode == "NOERROR" and got.answers == [] and got.nodata
    assert [r.rtype for r in got.authority] == ["SOA"]
    assert INDEX.lookup("web.default.svc.cluster.local.", "MX").nodata
    assert INDEX.lookup("web.default.svc.cluster.local.", "TYPE65280").nodata


@pytest.mark.parametrize(
    "qname",
    [
        "default.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
        "empty.svc.cluster.local.",
        "pod.cluster.local.",
        "default.pod.cluster.local.",
        "empty.pod.cluster.local.",
        "in-addr.arpa.",
        "svc.in-addr.arpa.",
    ],
)
def test_lookup_parent_names_exist_with_no_a_records(qname):
    """CoreDNS plugin/kubernetes/parse.go parseRequest ("return NODATA for apex queries": the
    zone, svc, pod) and kubernetes.go findServices/findPods ("handle empty service name":
    NODATA when the namespace exists); handler_test.go "svc.cluster.local." and
    "testns.svc.cluster.local." cases."""
    got = INDEX.lookup(qname, "A")
    assert got.rcode == "NOERROR" and got.answers == []


def test_lookup_unknown_namespace_is_nxdomain():
    assert INDEX.lookup("nowhere.svc.cluster.local.", "A").rcode == "NXDOMAIN"
    assert INDEX.lookup("1-2-3-4.nowhere.pod.cluster.local.", "A").rcode == "NXDOMAIN"


def test_lookup_srv_with_additional_addresses():
    got = INDEX.lookup("_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert values(got) == ["0 100 80 web.default.svc.cluster.local."]
    assert got.additional == [rec("web.default.svc.cluster.local.", "A", "10.96.10.10")]


def test_lookup_headless():
    assert values(INDEX.lookup("db.data.svc.cluster.local.", "A")) == ["10.244.1.5", "10.244.2.7"]
    assert values(INDEX.lookup("db-0.db.data.svc.cluster.local.", "A")) == ["10.244.1.5"]
    assert INDEX.lookup("db-2.db.data.svc.cluster.local.", "A").rcode == "NXDOMAIN"
    srv = INDEX.lookup("_postgres._tcp.db.data.svc.cluster.local.", "SRV")
    assert len(srv.answers) == 2
    assert sorted(r.value for r in srv.additional) == ["10.244.1.5", "10.244.2.7"]


def test_lookup_ptr():
    assert values(INDEX.lookup("10.10.96.10.in-addr.arpa.", "PTR")) == [
        "web.default.svc.cluster.local."
    ]
    assert values(INDEX.lookup("5.1.244.10.in-addr.arpa.", "PTR")) == [
        "db-0.db.data.svc.cluster.local."
    ]
    missing = INDEX.lookup("99.99.244.10.in-addr.arpa.", "PTR")
    assert missing.rcode == "NXDOMAIN" and missing.zone == "in-addr.arpa."
    assert missing.authority[0].name == "in-addr.arpa."


def test_lookup_external_name_returns_the_cname_only():
    got = INDEX.lookup("ext.default.svc.cluster.local.", "A")
    assert got.rcode == "NOERROR"
    assert got.answers == [rec("ext.default.svc.cluster.local.", "CNAME", "api.example.com.")]


def test_lookup_cname_is_chased_inside_the_cluster():
    got = INDEX.lookup("alias.default.svc.cluster.local.", "A")
    assert got.rcode == "NOERROR"
    assert [(r.rtype, r.value) for r in got.answers] == [
        ("CNAME", "web.prod.svc.cluster.local."),
        ("A", "10.96.11.11"),
    ]


def test_lookup_cname_query_is_not_chased():
    got = INDEX.lookup("alias.default.svc.cluster.local.", "CNAME")
    assert [r.rtype for r in got.answers] == ["CNAME"]


def test_lookup_dangling_cname_is_nodata_without_the_cname():
    """CoreDNS plugin/backend_lookup.go A: a CNAME inside the zone whose target gives no address
    is left out ("if len(nextRecords) > 0"), so the answer is NODATA."""
    got = INDEX.lookup("dangling.default.svc.cluster.local.", "A")
    assert got.nodata and got.authority[0].rtype == "SOA"


def test_lookup_cname_loop_stops():
    """CoreDNS plugin/backend_lookup.go A with dnsutil.DuplicateCNAME: a loop ends when a target
    repeats, and a chain that reaches no address is dropped whole (NODATA)."""
    assert INDEX.lookup("loop-a.default.svc.cluster.local.", "A").nodata


@pytest.mark.parametrize(
    "qname", ["example.com.", "web.", "web.default.svc.cluster.local.default.svc.example."]
)
def test_lookup_outside_our_zones_is_nxdomain_without_authority(qname):
    got = INDEX.lookup(qname, "A")
    assert (
        got.rcode == "NXDOMAIN" and got.zone is None and got.authority == [] and got.answers == []
    )


def test_lookup_pods_insecure_and_verified():
    assert values(INDEX.lookup("10-244-1-3.default.pod.cluster.local.", "A")) == ["10.244.1.3"]
    # insecure mode (kind's Corefile): any address in a known namespace
    assert values(INDEX.lookup("10-244-9-9.data.pod.cluster.local.", "A")) == ["10.244.9.9"]
    assert values(INDEX.lookup("10-244-9-9.empty.pod.cluster.local.", "A")) == ["10.244.9.9"]
    assert INDEX.lookup("10-244-9-9.empty.pod.cluster.local.", "AAAA").nodata
    assert INDEX.lookup("10-244-9-999.data.pod.cluster.local.", "A").rcode == "NXDOMAIN"
    assert INDEX.lookup("010-244-9-9.data.pod.cluster.local.", "A").rcode == "NXDOMAIN"
    verified = RecordIndex(INDEX.records, pod_mode="verified")
    assert values(verified.lookup("10-244-1-3.default.pod.cluster.local.", "A")) == ["10.244.1.3"]
    assert verified.lookup("10-244-9-9.data.pod.cluster.local.", "A").rcode == "NXDOMAIN"


def test_lookup_zone_apex_and_nameserver():
    """CoreDNS plugin/kubernetes/ns.go nsAddrs and plugin/backend_lookup.go NS: the zone's NS is
    the kube-dns Service's name, with its cluster IP as glue; ``ns.dns.<zone>`` answers that IP
    (isDefaultNS); SOA names ``ns.dns.<zone>`` (plugin.SOA); ns_test.go TestNsAddrs."""
    assert [r.rtype for r in INDEX.lookup(Z, "SOA").answers] == ["SOA"]
    ns = INDEX.lookup(Z, "NS")
    kube_dns = f"kube-dns.kube-system.svc.{Z}"
    assert ns.answers == [rec(Z, "NS", kube_dns)]
    assert ns.additional == [rec(kube_dns, "A", "10.96.0.10")]
    assert values(INDEX.lookup(f"ns.dns.{Z}", "A")) == ["10.96.0.10"]
    assert INDEX.lookup(f"ns.dns.{Z}", "AAAA").nodata
    assert values(INDEX.lookup(f"dns-version.{Z}", "TXT")) == [SCHEMA_VERSION]
    # without a kube-dns Service there is no nameserver to name: NODATA
    assert RecordIndex(records([], [])).lookup(Z, "NS").nodata


@pytest.mark.parametrize(
    "qname",
    [
        Z,
        "web.default.svc.cluster.local.",
        "ext.default.svc.cluster.local.",
        "_http._tcp.web.default.svc.cluster.local.",
        "empty.svc.cluster.local.",
        f"ns.dns.{Z}",
    ],
)
def test_lookup_any_is_nodata_for_an_existing_name(qname):
    """CoreDNS plugin/kubernetes/handler.go ServeDNS, default case: for ANY (and every type it
    has no case for) it does a fake A lookup only to tell NODATA from NXDOMAIN."""
    got = INDEX.lookup(qname, "ANY")
    assert got.nodata and [r.rtype for r in got.authority] == ["SOA"]


def test_lookup_any_is_nxdomain_for_a_missing_name():
    """CoreDNS handler.go default case: the fake A lookup's name error gives NXDOMAIN."""
    assert INDEX.lookup("nope.default.svc.cluster.local.", "ANY").rcode == "NXDOMAIN"
    assert INDEX.lookup(f"dns-version.{Z}", "ANY").rcode == "NXDOMAIN"


def test_index_serial_follows_content():
    a = RecordIndex(records([service("web", cluster_ip="10.96.10.10")], []))
    b = RecordIndex(records([service("web", cluster_ip="10.96.10.10")], []))
    c = RecordIndex(records([service("web", cluster_ip="10.96.10.11")], []))
    assert a.serial == b.serial != c.serial


def test_index_from_objects():
    idx = RecordIndex.from_objects(
        [service("web", cluster_ip="10.96.10.10")],
        [],
        namespaces=[{"metadata": {"name": "team-a"}}, "team-b"],
    )
    assert values(idx.lookup("web.default.svc.cluster.local.", "A")) == ["10.96.10.10"]
    assert idx.lookup("team-a.svc.cluster.local.", "A").nodata
    assert idx.lookup("team-b.svc.cluster.local.", "A").nodata
    assert len(idx) == len(records([service("web", cluster_ip="10.96.10.10")], []))


def test_index_rejects_unknown_pod_mode():
    with pytest.raises(ValueError, match="pod_mode"):
        RecordIndex([], pod_mode="strict")


# --------------------------------------------------------------------------- explain_lookup


def test_explain_short_name_resolves_on_first_try():
    assert explain_lookup("web", SEARCH, 5, INDEX) == [
        ResolverQuery("web.default.svc.cluster.local.", "NOERROR")
    ]


def test_explain_cross_namespace_name_walks_the_search_list():
    assert explain_lookup("web.prod", SEARCH, 5, INDEX) == [
        ResolverQuery("web.prod.default.svc.cluster.local.", "NXDOMAIN"),
        ResolverQuery("web.prod.svc.cluster.local.", "NOERROR"),
    ]


def test_explain_full_name_without_dot_costs_three_misses():
    attempts = explain_lookup("web.prod.svc.cluster.local", SEARCH, 5, INDEX)
    assert [a.rcode for a in attempts] == ["NXDOMAIN", "NXDOMAIN", "NXDOMAIN", "NOERROR"]
    assert attempts[-1].name == "web.prod.svc.cluster.local."
    assert explain_lookup("web.prod.svc.cluster.local.", SEARCH, 5, INDEX) == [
        ResolverQuery("web.prod.svc.cluster.local.", "NOERROR")
    ]


def test_explain_unknown_name_tries_everything():
    attempts = explain_lookup("nope", SEARCH, 5, INDEX)
    assert [a.name for a in attempts] == query_order("nope", SEARCH, 5)
    assert {a.rcode for a in attempts} == {"NXDOMAIN"}


def test_explain_nodata_keeps_searching_like_glibc():
    # "default" is a namespace: default.svc.cluster.local exists with no A, so the resolver moves on
    attempts = explain_lookup("default", ["svc.cluster.local", "cluster.local"], 5, INDEX)
    assert attempts[0] == ResolverQuery("default.svc.cluster.local.", "NODATA")
    assert [a.rcode for a in attempts] == ["NODATA", "NXDOMAIN", "NXDOMAIN"]


def test_explain_other_namespace_short_name_misses():
    assert {a.rcode for a in explain_lookup("db", SEARCH, 5, INDEX)} == {"NXDOMAIN"}
    assert explain_lookup("db", cluster_search_path("data"), 5, INDEX)[-1] == ResolverQuery(
        "db.data.svc.cluster.local.", "NOERROR"
    )


def test_explain_srv_and_external_name():
    assert explain_lookup("_http._tcp.web", SEARCH, 5, INDEX, qtype="SRV")[0].rcode == "NOERROR"
    assert explain_lookup("ext", SEARCH, 5, INDEX) == [
        ResolverQuery("ext.default.svc.cluster.local.", "NOERROR")
    ]


def test_record_order_is_the_dataclass_order() -> None:
    """RECORD_ORDER sorts as Record's own ``order=True`` comparison does (Python's dataclasses
    documentation, ``order``: fields compared as a tuple, in definition order), so the sorted
    records and the SOA serial CoreDNS derives from them stay what they were."""
    rng = random.Random(18)
    pool = [
        Record(
            rng.choice(["a.", "b.", "a.b.", "_http._tcp.a."]),
            rng.choice(["A", "AAAA", "SRV", "PTR"]),
            rng.choice(["10.0.0.1", "10.0.0.10", "0 100 80 a."]),
            rng.choice([5, 30, 300]),
        )
        for _ in range(300)
    ]
    assert sorted(pool, key=RECORD_ORDER) == sorted(pool)
    assert RecordIndex(pool).records == tuple(sorted(set(pool)))
