"""Reading kube-proxy's iptables-save output back into service ports and endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.model.kubeproxy.assemble import parse_iptables_save
from labkit.model.kubeproxy.chains import (
    endpoint_chain,
    iptables_comment,
    port_proto_hash,
    service_chain,
    service_port_name,
    statistic_probability,
)
from labkit.model.kubeproxy.serviceports import ServicePort, WeightedEndpoint, format_services

DATA = Path(__file__).parent / "data" / "kubeproxy"


def load(name: str) -> list[ServicePort]:
    return parse_iptables_save((DATA / name).read_text())


def by_name(entries: list[ServicePort]) -> dict[str, ServicePort]:
    return {sp.display_name: sp for sp in entries}


def shares(sp: ServicePort) -> list[tuple[str | None, int | None, float]]:
    return [(ep.ip, ep.port, ep.probability) for ep in sp.endpoints]


# --------------------------------------------------------------------------- naming


def test_chain_hashes_match_kube_proxy():
    # Values from kube-proxy's own unit tests (ns1/svc1 port p80, endpoint 10.180.0.1:80).
    assert port_proto_hash("ns1/svc1:p80", "tcp") == "XPGD46QRK7WJZT7O"
    assert service_chain("KUBE-SVC-", "ns1/svc1:p80", "TCP") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert service_chain("KUBE-EXT-", "ns2/svc2:p80", "tcp") == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"
    assert endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_chain_families_share_one_hash_and_protocol_changes_it():
    names = {
        service_chain(p, "lab/web:http", "tcp")[len(p) :]
        for p in ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-")
    }
    assert len(names) == 1
    assert service_chain("KUBE-SVC-", "lab/web:http", "udp") != service_chain(
        "KUBE-SVC-", "lab/web:http", "tcp"
    )


def test_unknown_chain_prefix_is_refused():
    with pytest.raises(ValueError):
        service_chain("KUBE-NOPE-", "a/b", "tcp")


@pytest.mark.parametrize(
    ("ns", "name", "port", "expected"),
    [
        ("default", "web", "http", "default/web:http"),
        ("default", "web", "", "default/web"),
        ("default", "web", None, "default/web"),
    ],
)
def test_service_port_name(ns, name, port, expected):
    assert service_port_name(ns, name, port) == expected


@pytest.mark.parametrize(
    ("p", "printed"),
    [
        (1 / 2, "0.50000000000"),
        (1 / 3, "0.33333333349"),
        (1 / 4, "0.25000000000"),
        (1 / 5, "0.20000000019"),
        (1 / 6, "0.16666666651"),
        (1.0, "1.00000000000"),
        (0.0, "0.00000000000"),
    ],
)
def test_statistic_probability_prints_like_iptables_save(p, printed):
    assert statistic_probability(p) == printed
    # Feeding the printed value back in is stable (iptables-save -> iptables-restore -> save).
    assert statistic_probability(float(printed)) == printed


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_statistic_probability_rejects_out_of_range(p):
    with pytest.raises(ValueError):
        statistic_probability(p)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain_word-1", "plain_word-1"),
        ("ns/svc:p80", '"ns/svc:p80"'),
        ("kubernetes service portals", '"kubernetes service portals"'),
        ('say "hi"', '"say \\"hi\\""'),
    ],
)
def test_comment_quoting(text, quoted):
    assert iptables_comment(text) == quoted


# --------------------------------------------------------------------------- a full kind worker


@pytest.fixture(scope="module")
def worker() -> dict[str, ServicePort]:
    return by_name(load("kind-worker-flannel.txt"))


def test_worker_lists_every_service_port_once(worker):
    assert sorted(worker) == [
        "default/kubernetes:https",
        "kube-system/kube-dns:dns",
        "kube-system/kube-dns:dns-tcp",
        "kube-system/kube-dns:metrics",
        "lab/catalog",
        "lab/edge:web",
        "lab/frontend:http",
        "lab/ledger:http",
        "lab/orders:grpc",
    ]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("default/kubernetes:https", 1),
        ("kube-system/kube-dns:dns", 2),
        ("lab/frontend:http", 3),
        ("lab/catalog", 5),
    ],
)
def test_every_endpoint_gets_one_nth(worker, name, count):
    sp = worker[name]
    assert len(sp.endpoints) == count
    for ep in sp.endpoints:
        assert ep.probability == pytest.approx(1 / count, abs=1e-6)
    assert sum(ep.probability for ep in sp.endpoints) == pytest.approx(1.0, abs=1e-9)


def test_three_endpoint_service_in_detail(worker):
    sp = worker["lab/frontend:http"]
    assert (sp.namespace, sp.name, sp.port_name, sp.protocol) == ("lab", "frontend", "http", "TCP")
    assert (sp.cluster_ip, sp.port, sp.node_port) == ("10.96.120.15", 80, 30808)
    assert [(ip, port) for ip, port, _ in sp.endpoints] == [
        ("10.244.1.7", 8080),
        ("10.244.1.9", 8080),
        ("10.244.2.6", 8080),
    ]
    assert sp.endpoints[0] == ("10.244.1.7", 8080, pytest.approx(1 / 3, abs=1e-6))
    assert isinstance(sp.endpoints[0], WeightedEndpoint)
    assert sp.chain == "KUBE-SVC-TBADUGEKBYRFDH6S"
    assert sp.external_traffic_policy == "Cluster"
    assert sp.internal_traffic_policy == "Cluster"
    assert sp.masquerade.external and sp.masquerade.hairpin
    assert sp.masquerade.unless_source == "10.244.0.0/16"
    assert not sp.no_endpoints


def test_unnamed_port_and_udp(worker):
    catalog = worker["lab/catalog"]
    assert catalog.port_name == "" and catalog.port == 9000
    dns = worker["kube-system/kube-dns:dns"]
    assert (dns.protocol, dns.cluster_ip, dns.port) == ("UDP", "10.96.0.10", 53)
    assert {ep.ip for ep in dns.endpoints} == {"10.244.0.3", "10.244.0.4"}


def test_load_balancer_with_local_policy(worker):
    edge = worker["lab/edge:web"]
    assert edge.load_balancer_ips == ["172.18.255.210"]
    assert edge.node_port == 31234
    assert edge.external_traffic_policy == "Local"
    assert edge.health_check_node_port == 30555
    # The cluster IP still reaches both pods; outside traffic only the one on this node.
    assert shares(edge) == [
        ("10.244.1.30", 80, pytest.approx(0.5)),
        ("10.244.2.31", 80, pytest.approx(0.5)),
    ]
    assert edge.local_endpoints == [("10.244.1.30", 80, pytest.approx(1.0))]
    assert edge.external_endpoints == edge.local_endpoints
    assert not edge.masquerade.external  # Local keeps the client's source IP


def test_services_without_endpoints_are_rejected(worker):
    orders = worker["lab/orders:grpc"]
    assert orders.no_endpoints and orders.endpoints == []
    assert (orders.cluster_ip, orders.port, orders.protocol) == ("10.96.3.3", 50051, "TCP")
    ledger = worker["lab/ledger:http"]
    assert ledger.no_endpoints and ledger.node_port == 30999 and ledger.cluster_ip == "10.96.71.71"


def test_masquerade_mark_and_snat(worker):
    masq = worker["default/kubernetes:https"].masquerade
    assert masq.mark == "0x4000"
    assert masq.snat and masq.random_fully
    assert not masq.all_sources


def test_cni_chains_are_ignored(worker):
    assert not any("FLANNEL" in (sp.chain or "") for sp in worker.values())


# --------------------------------------------------------------------------- comments missing


def test_large_cluster_mode_names_come_from_kube_services():
    entries = by_name(load("large-cluster-calico.txt"))
    search = entries["team-a/search:http"]
    assert shares(search) == [
        ("192.168.20.5", 8000, pytest.approx(0.5)),
        ("192.168.30.7", 8000, pytest.approx(0.5)),
    ]
    assert search.masquerade.unless_source == "192.168.0.0/16"
    assert entries["team-a/index"].endpoints == [("192.168.20.9", 7000, pytest.approx(1.0))]


def test_without_any_comment_addresses_and_endpoints_remain():
    entries = load("no-comments.txt")
    assert all(sp.namespace is None and sp.name is None for sp in entries)
    by_ip = {sp.cluster_ip: sp for sp in entries}
    search = by_ip["10.96.140.2"]
    assert (search.port, search.protocol, search.node_port) == (80, "TCP", 32080)
    assert shares(search) == [
        ("192.168.20.5", 8000, pytest.approx(0.5)),
        ("192.168.30.7", 8000, pytest.approx(0.5)),
    ]
    assert search.external_traffic_policy == "Cluster" and search.masquerade.external
    dns = by_ip["10.96.150.9"]
    assert (dns.port, dns.protocol, dns.endpoints) == (
        53,
        "UDP",
        [("192.168.40.2", 5353, pytest.approx(1.0))],
    )
    rejected = by_ip["10.96.160.1"]
    assert rejected.no_endpoints and rejected.port == 8443
    assert (
        search.masquerade.mark == "0x4000"
        and search.masquerade.snat
        and not search.masquerade.random_fully
    )


def test_known_service_names_recover_hashed_chains():
    entries = parse_iptables_save(
        (DATA / "no-comments.txt").read_text(), service_names=["team-a/search:http", "team-a/other"]
    )
    names = {sp.cluster_ip: sp.service for sp in entries}
    assert names["10.96.140.2"] == "team-a/search"
    assert names["10.96.150.9"] is None  # its hash matches no known name


def test_grep_excerpt_without_table_headers():
    entries = by_name(load("grep-excerpt.txt"))
    greeter = entries["demo/greeter"]
    assert [ep.ip for ep in greeter.endpoints] == ["10.244.1.4", "10.244.2.8", "10.244.2.9"]
    for ep in greeter.endpoints:  # rounded 0.33332 / 0.5 still spread about evenly
        assert ep.probability == pytest.approx(1 / 3, abs=1e-4)
    assert entries["demo/greeter-old"].no_endpoints


# --------------------------------------------------------------------------- weights and old shapes


def test_arbitrary_weights_multiply_the_remaining_mass():
    entries = by_name(load("weighted-restore-input.txt"))
    weighted = entries["lab/weighted:http"]
    assert [round(ep.probability, 9) for ep in weighted.endpoints] == [0.7, 0.15, 0.15]
    assert (
        weighted.cluster_ip == "10.96.9.9" and weighted.masquerade.unless_source == "10.244.0.0/16"
    )


def test_chain_without_catch_all_leaves_mass_unassigned():
    leaky = by_name(load("weighted-restore-input.txt"))["lab/leaky:http"]
    assert [ep.probability for ep in leaky.endpoints] == [pytest.approx(0.5), pytest.approx(0.25)]
    assert leaky.protocol == "UDP"


def test_older_kube_proxy_with_xlb_chains_and_counters():
    shop = by_name(load("legacy-xlb-counters.txt"))["old/shop:http"]
    assert (shop.cluster_ip, shop.port, shop.node_port) == ("10.96.5.5", 80, 31080)
    assert shop.load_balancer_ips == ["172.18.255.220"]
    assert shop.external_traffic_policy == "Local"
    assert shop.local_endpoints == [("10.244.1.40", 8080, pytest.approx(1.0))]
    assert len(shop.endpoints) == 2
    assert shop.masquerade.unless_source == "10.244.0.0/16"
    assert shop.masquerade.mark == "0x4000"  # not KUBE-MARK-DROP's 0x8000
    assert not shop.masquerade.external  # the NodePort masquerade only covered 127.0.0.0/8 clients


def test_session_affinity_rules_do_not_count_as_dispatch():
    svc, sep = (
        service_chain("KUBE-SVC-", "a/b:p", "tcp"),
        endpoint_chain("a/b:p", "tcp", "10.1.0.5:80"),
    )
    text = "\n".join(
        [
            "*nat",
            '-A KUBE-SERVICES -d 10.96.1.1/32 -p tcp -m comment --comment "a/b:p cluster IP" '
            f"-m tcp --dport 80 -j {svc}",
            f'-A {svc} -m comment --comment "a/b:p -> 10.1.0.5:80" '
            "-m recent --rcheck --seconds 10800 --reap "
            f"--name {sep} --mask 255.255.255.255 --rsource -j {sep}",
            f'-A {svc} -m comment --comment "a/b:p -> 10.1.0.5:80" -j {sep}',
            f'-A {sep} -p tcp -m comment --comment "a/b:p" '
            f"-m recent --set --name {sep} --mask 255.255.255.255 "
            "--rsource -m tcp -j DNAT --to-destination 10.1.0.5:80",
            "COMMIT",
        ]
    )
    [sp] = parse_iptables_save(text)
    assert sp.session_affinity
    assert sp.endpoints == [("10.1.0.5", 80, pytest.approx(1.0))]


def test_escaped_quotes_and_inline_counters():
    text = "\n".join(
        [
            "*nat",
            "-A KUBE-SERVICES -d 10.96.2.2/32 -p tcp "
            '-m comment --comment "x/y:z cluster IP \\"quoted\\"" '
            "-m tcp --dport 81 -c 4 240 -j KUBE-SVC-AAAAAAAAAAAAAAAA",
            "-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-BBBBBBBBBBBBBBBB",
            "-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m tcp -j DNAT --to-destination 10.1.1.1:8081",
            "COMMIT",
        ]
    )
    [sp] = parse_iptables_save(text)
    assert (sp.service, sp.port_name, sp.cluster_ip, sp.port) == ("x/y", "z", "10.96.2.2", 81)
    assert sp.endpoints == [("10.1.1.1", 8081, 1.0)]


@pytest.mark.parametrize(
    "text", ["", "*nat\nCOMMIT\n", "# nothing here\n", "not iptables at all\n"]
)
def test_text_without_kube_proxy_rules_gives_nothing(text):
    assert parse_iptables_save(text) == []


def test_endpoint_from_arrow_comment_when_sep_chain_is_missing():
    text = (
        '-A KUBE-SVC-CCCCCCCCCCCCCCCC -m comment --comment "q/r:s -> 10.2.0.9:7070" '
        "-j KUBE-SEP-DDDDDDDDDDDDDDDD\n"
    )
    [sp] = parse_iptables_save(text)
    assert sp.service == "q/r" and sp.endpoints == [("10.2.0.9", 7070, 1.0)]


# --------------------------------------------------------------------------- the table for people


def test_format_services_table():
    table = format_services(load("grep-excerpt.txt"))
    assert table == (
        "SERVICE           CLUSTER-IP          NODEPORT  EXTERNAL  POLICY  ENDPOINTS\n"
        "demo/greeter      10.96.45.10:80/TCP  -         -         -       10.244.1.4:5678 33.3%\n"
        "                                                                  10.244.2.8:5678 33.3%\n"
        "                                                                  10.244.2.9:5678 33.3%\n"
        "demo/greeter-old  10.96.45.11:80/TCP  -         -         -       "
        "none (REJECT: connection refused)\n"
    )


def test_format_services_shows_policy_and_external_addresses(worker):
    table = format_services([worker["lab/edge:web"]])
    assert "172.18.255.210" in table and "Local" in table and "31234" in table
    assert format_services([]) == "SERVICE  CLUSTER-IP  NODEPORT  EXTERNAL  POLICY  ENDPOINTS\n"
