"""NetworkPolicy semantics: every rule of the API, the tricky cases, and the fast truth table."""

from __future__ import annotations

import random

import pytest

from labkit.model.netpol.endpoints import endpoint, namespace_labels
from labkit.model.netpol.policies import PolicyError, RuleRef, parse_policy
from labkit.model.netpol.truthtable import port_query, truth_table
from labkit.model.netpol.verdicts import PolicySet, verdict

# --------------------------------------------------------------------------- builders


def pod(ns, name, ip=None, labels=None, ports=(), host_network=False, node=None):
    """A Pod dict; ports are (number, name, protocol) with name/protocol optional."""
    declared = []
    for p in ports:
        number, name_, proto = (*tuple(p), None, None)[:3]
        entry = {"containerPort": number}
        if name_:
            entry["name"] = name_
        if proto:
            entry["protocol"] = proto
        declared.append(entry)
    doc = {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {})},
        "spec": {"containers": [{"name": "main", "image": "agnhost", "ports": declared}]},
        "status": {"podIP": ip} if ip else {},
    }
    if host_network:
        doc["spec"]["hostNetwork"] = True
    if node:
        doc["spec"]["nodeName"] = node
    return doc


def namespace(name, **labels):
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def policy(name, ns, **spec):
    spec.setdefault("podSelector", {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def labels(**kv):
    return {"matchLabels": kv}


NAMESPACES = [
    namespace("default"),
    namespace("prod", env="prod", team="a"),
    namespace("dev", env="dev", team="b"),
    namespace("kube-system"),
]
WEB = pod("prod", "web", "10.244.1.2", {"app": "web"}, [(8080, "http")])
API = pod(
    "prod", "api", "10.244.1.3", {"app": "api", "tier": "backend"}, [(9090, "http"), (9091, "grpc")]
)
DB = pod("prod", "db", "10.244.2.2", {"app": "db", "tier": "data"}, [(5432, "pg")])
DEVWEB = pod("dev", "web", "10.244.2.3", {"app": "web"}, [(8080, "http")])
DNS = pod(
    "kube-system",
    "coredns",
    "10.244.0.2",
    {"k8s-app": "kube-dns"},
    [(53, "dns", "UDP"), (53, "dns-tcp", "TCP"), (9153, "metrics")],
)
OUT = {"ip": "203.0.113.9"}


def allowed(src, dst, port, protocol="TCP", policies=(), namespaces=NAMESPACES):
    return verdict(src, dst, port, protocol, namespaces=namespaces, policies=list(policies)).allowed


# --------------------------------------------------------------------------- isolation and defaults


def test_no_policy_allows_everything_and_says_why():
    v = verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[])
    assert v.allowed and v.side == "none"
    assert "no policy isolates prod/web for egress" in v.reason
    assert "no policy isolates prod/db for ingress" in v.reason


def test_default_deny_ingress_blocks_and_names_the_policy():
    deny = policy("default-deny", "prod", policyTypes=["Ingress"])
    v = verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[deny])
    assert not v.allowed and v.side == "ingress"
    assert "prod/db is isolated for ingress by policy prod/default-deny" in v.reason
    assert v.ingress.isolated_by == ("prod/default-deny",) and not v.egress.isolated
    # Ingress isolation of prod does not stop prod pods from sending elsewhere.
    assert allowed(WEB, DNS, 53, "UDP", [deny])


@pytest.mark.parametrize(
    "spec",
    [
        {"ingress": []},  # empty list, policyTypes defaulted
        {},  # no ingress key at all
        {"policyTypes": ["Ingress"]},  # explicit type, no rules
        {"policyTypes": ["Ingress"], "ingress": []},
    ],
)
def test_ingress_deny_all_spellings(spec):
    assert not allowed(WEB, DB, 5432, policies=[policy("p", "prod", **spec)])


def test_ingress_list_with_one_empty_rule_allows_everything():
    p = policy("allow-all", "prod", ingress=[{}])
    for src in (WEB, DEVWEB, DNS, OUT):
        v = verdict(src, DB, 5432, namespaces=NAMESPACES, policies=[p])
        assert v.allowed and "prod/allow-all ingress[0]" in v.reason


@pytest.mark.parametrize(
    "rule", [{"from": []}, {"ports": []}, {"from": [], "ports": []}, {"from": None}]
)
def test_empty_from_and_ports_mean_everything(rule):
    p = policy("p", "prod", ingress=[rule])
    assert allowed(DEVWEB, DB, 5432, policies=[p])
    assert allowed(OUT, DB, 1, "UDP", policies=[p])


def test_policy_types_default_adds_egress_only_for_a_non_empty_egress_list():
    with_rules = parse_policy(policy("p", "prod", egress=[{"ports": [{"port": 53}]}]))
    assert with_rules.policy_types == ("Ingress", "Egress")
    # The API server defaults on len(egress) != 0, so an empty list stays ingress-only.
    empty = parse_policy(policy("p", "prod", egress=[]))
    assert empty.policy_types == ("Ingress",)
    assert allowed(WEB, DNS, 53, "UDP", [policy("p", "prod", egress=[])])
    assert not allowed(
        WEB, DNS, 53, "UDP", [policy("p", "prod", policyTypes=["Egress"], egress=[])]
    )


def test_egress_only_policy_ignores_its_ingress_rules():
    p = policy(
        "p",
        "prod",
        policyTypes=["Egress"],
        ingress=[{"from": [{"podSelector": labels(app="none")}]}],
    )
    assert allowed(DEVWEB, DB, 5432, policies=[p])  # not isolated for ingress
    assert not allowed(DB, DEVWEB, 8080, policies=[p])  # isolated for egress, no egress rule


def test_policies_only_affect_pods_of_their_own_namespace():
    deny = policy("deny", "dev", policyTypes=["Ingress", "Egress"])
    assert allowed(WEB, DB, 5432, policies=[deny])
    assert not allowed(WEB, DEVWEB, 8080, policies=[deny])
    assert not allowed(DEVWEB, WEB, 8080, policies=[deny])


def test_pod_selector_of_policy_picks_which_pods_are_isolated():
    p = policy("db-only", "prod", podSelector=labels(app="db"))
    assert not allowed(WEB, DB, 5432, policies=[p])
    assert allowed(DB, WEB, 8080, policies=[p])


# --------------------------------------------------------------------------- peers


SERVER = pod("server", "srv", "10.244.3.2", {"app": "srv"}, [(80,)])
A_CLIENT = pod("a", "client", "10.244.3.3", {"app": "client"})
A_OTHER = pod("a", "other", "10.244.3.4", {"app": "other"})
B_CLIENT = pod("b", "client", "10.244.3.5", {"app": "client"})
SERVER_CLIENT = pod("server", "client", "10.244.3.6", {"app": "client"})
PEER_NS = [namespace("server"), namespace("a", team="a"), namespace("b", team="b")]


@pytest.mark.parametrize(
    "src, and_peer, or_peers",
    [
        (A_CLIENT, True, True),  # namespace and pod both match
        (A_OTHER, False, True),  # namespace matches, pod does not
        (
            B_CLIENT,
            False,
            False,
        ),  # pod labels match, namespace does not (podSelector alone means ns server)
        (SERVER_CLIENT, False, True),  # pod matches in the policy's own namespace
    ],
)
def test_namespace_and_pod_selector_in_one_peer_vs_two_peers(src, and_peer, or_peers):
    one = policy(
        "and",
        "server",
        ingress=[
            {"from": [{"namespaceSelector": labels(team="a"), "podSelector": labels(app="client")}]}
        ],
    )
    two = policy(
        "or",
        "server",
        ingress=[
            {
                "from": [
                    {"namespaceSelector": labels(team="a")},
                    {"podSelector": labels(app="client")},
                ]
            }
        ],
    )
    assert allowed(src, SERVER, 80, policies=[one], namespaces=PEER_NS) is and_peer
    assert allowed(src, SERVER, 80, policies=[two], namespaces=PEER_NS) is or_peers


def test_empty_pod_selector_peer_means_every_pod_of_the_policy_namespace():
    p = policy("same-ns", "prod", ingress=[{"from": [{"podSelector": {}}]}])
    assert allowed(WEB, DB, 5432, policies=[p])
    assert not allowed(DEVWEB, DB, 5432, policies=[p])
    assert not allowed(OUT, DB, 5432, policies=[p])


def test_empty_namespace_selector_means_every_namespace_but_no_outside_address():
    p = policy("any-ns", "prod", ingress=[{"from": [{"namespaceSelector": {}}]}])
    assert allowed(DEVWEB, DB, 5432, policies=[p])
    assert allowed(DNS, DB, 5432, policies=[p])
    assert not allowed(OUT, DB, 5432, policies=[p])
    both = policy(
        "web-anywhere",
        "prod",
        ingress=[{"from": [{"namespaceSelector": {}, "podSelector": labels(app="web")}]}],
    )
    assert allowed(DEVWEB, DB, 5432, policies=[both])
    assert not allowed(DNS, DB, 5432, policies=[both])


def test_automatic_namespace_name_label_is_added():
    p = policy(
        "from-dev",
        "prod",
        ingress=[
            {"from": [{"namespaceSelector": labels(**{"kubernetes.io/metadata.name": "dev"})}]}
        ],
    )
    assert allowed(DEVWEB, DB, 5432, policies=[p])
    assert not allowed(DNS, DB, 5432, policies=[p])
    # Also for a namespace that was not passed at all.
    stray = pod("stray", "x", "10.244.9.9")
    q = policy(
        "from-stray",
        "prod",
        ingress=[
            {"from": [{"namespaceSelector": labels(**{"kubernetes.io/metadata.name": "stray"})}]}
        ],
    )
    assert allowed(stray, DB, 5432, policies=[q], namespaces=[])
    assert namespace_labels(["x"]) == {"x": {"kubernetes.io/metadata.name": "x"}}


@pytest.mark.parametrize(
    "expr, web, api, db",
    [
        ({"key": "tier", "operator": "In", "values": ["backend", "data"]}, False, True, True),
        ({"key": "tier", "operator": "NotIn", "values": ["data"]}, True, True, False),
        ({"key": "tier", "operator": "Exists"}, False, True, True),
        ({"key": "tier", "operator": "DoesNotExist"}, True, False, False),
    ],
)
def test_match_expressions_in_peers(expr, web, api, db):
    target = pod("prod", "target", "10.244.1.9", {"app": "target"})
    p = policy(
        "p",
        "prod",
        podSelector=labels(app="target"),
        ingress=[{"from": [{"podSelector": {"matchExpressions": [expr]}}]}],
    )
    assert [allowed(src, target, 80, policies=[p]) for src in (WEB, API, DB)] == [web, api, db]


def test_match_expressions_in_policy_pod_selector():
    p = policy(
        "p", "prod", podSelector={"matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    )
    assert allowed(DEVWEB, WEB, 8080, policies=[p])
    assert not allowed(DEVWEB, API, 9090, policies=[p])


@pytest.mark.parametrize(
    "src_ip, expected",
    [
        ("203.0.113.9", True),
        ("203.0.113.200", True),
        ("203.0.113.130", False),  # except 203.0.113.128/26
        ("198.51.100.1", False),
    ],
)
def test_ip_block_with_except(src_ip, expected):
    p = policy(
        "p",
        "prod",
        ingress=[
            {"from": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/26"]}}]}
        ],
    )
    assert allowed({"ip": src_ip}, DB, 5432, policies=[p]) is expected


def test_ip_block_matches_pod_ips_like_calico_and_host_network_pods_only_by_ip():
    p = policy(
        "p",
        "prod",
        podSelector=labels(app="db"),
        ingress=[{"from": [{"ipBlock": {"cidr": "10.244.1.0/24"}}]}],
    )
    assert allowed(WEB, DB, 5432, policies=[p])  # 10.244.1.2 is inside
    assert not allowed(DEVWEB, DB, 5432, policies=[p])  # 10.244.2.3 is not
    node_agent = pod("prod", "agent", "10.244.1.250", {"app": "web"}, host_network=True)
    assert allowed(node_agent, DB, 5432, policies=[p])
    by_label = policy(
        "q",
        "prod",
        podSelector=labels(app="db"),
        ingress=[{"from": [{"podSelector": labels(app="web")}]}],
    )
    assert not allowed(node_agent, DB, 5432, policies=[by_label])
    assert allowed(WEB, DB, 5432, policies=[by_label])


def test_host_network_pods_are_never_isolated():
    node_agent = pod("prod", "agent", "172.18.0.3", {"app": "db"}, host_network=True)
    deny = policy("deny", "prod", policyTypes=["Ingress", "Egress"])
    assert (
        allowed(WEB, node_agent, 10250, policies=[deny]) is False
    )  # web's egress is still isolated
    assert allowed(DEVWEB, node_agent, 10250, policies=[deny])
    assert allowed(node_agent, DEVWEB, 8080, policies=[deny])


# --------------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    "ports, port, protocol, expected",
    [
        ([{"port": 5432}], 5432, "TCP", True),
        ([{"port": 5432}], 5433, "TCP", False),
        ([{"port": 5432}], 5432, "UDP", False),  # protocol defaults to TCP
        ([{"protocol": "UDP", "port": 5432}], 5432, "UDP", True),
        ([{"protocol": "UDP"}], 9999, "UDP", True),  # no port: all ports of UDP
        ([{"protocol": "UDP"}], 9999, "TCP", False),
        ([{"protocol": "SCTP", "port": 7777}], 7777, "SCTP", True),
        ([{"protocol": "SCTP", "port": 7777}], 7777, "TCP", False),
        ([{"port": 32000, "endPort": 32768}], 32000, "TCP", True),  # range bounds are inclusive
        ([{"port": 32000, "endPort": 32768}], 32768, "TCP", True),
        ([{"port": 32000, "endPort": 32768}], 31999, "TCP", False),
        ([{"port": 32000, "endPort": 32768}], 32769, "TCP", False),
        ([{"port": 80}, {"protocol": "UDP", "port": 53}], 53, "UDP", True),
        ([{"port": 80}, {"protocol": "UDP", "port": 53}], 53, "TCP", False),
    ],
)
def test_ports_numbers_ranges_and_protocols(ports, port, protocol, expected):
    p = policy("p", "prod", podSelector=labels(app="db"), ingress=[{"ports": ports}])
    assert allowed(WEB, DB, port, protocol, policies=[p]) is expected


def test_named_ingress_port_resolves_per_destination_pod():
    # web calls 8080 "http", api calls 9090 "http": one rule, two different numbers.
    p = policy("http-only", "prod", ingress=[{"ports": [{"port": "http"}]}])
    assert allowed(DEVWEB, WEB, 8080, policies=[p])
    assert not allowed(DEVWEB, WEB, 9090, policies=[p])
    assert allowed(DEVWEB, API, 9090, policies=[p])
    assert not allowed(DEVWEB, API, 8080, policies=[p])
    assert not allowed(DEVWEB, DB, 5432, policies=[p])  # db declares no "http"
    # A probe may name the port too; it resolves against the destination.
    assert allowed(DEVWEB, API, "http", policies=[p])
    assert not allowed(DEVWEB, API, "grpc", policies=[p])


def test_named_port_needs_the_same_protocol():
    p = policy("dns", "kube-system", ingress=[{"ports": [{"port": "dns", "protocol": "UDP"}]}])
    assert allowed(WEB, DNS, 53, "UDP", policies=[p])
    assert not allowed(WEB, DNS, 53, "TCP", policies=[p])  # 53/TCP is called dns-tcp
    q = policy(
        "dns-tcp-name", "kube-system", ingress=[{"ports": [{"port": "dns"}]}]
    )  # TCP + "dns": no such port
    assert not allowed(WEB, DNS, 53, "UDP", policies=[q])
    assert not allowed(WEB, DNS, 53, "TCP", policies=[q])


def test_named_egress_port_resolves_against_each_destination():
    p = policy("to-http", "dev", policyTypes=["Egress"], egress=[{"ports": [{"port": "http"}]}])
    assert allowed(DEVWEB, WEB, 8080, policies=[p])
    assert allowed(DEVWEB, API, 9090, policies=[p])
    assert not allowed(DEVWEB, API, 8080, policies=[p])
    assert not allowed(DEVWEB, {"ip": "203.0.113.9"}, 8080, policies=[p])


def test_named_port_with_ip_block_egress_reaches_pods_in_range_but_nothing_outside():
    p = policy(
        "p",
        "dev",
        policyTypes=["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "http"}]}],
    )
    assert not allowed(DEVWEB, OUT, 8080, policies=[p])
    assert allowed(DEVWEB, WEB, 8080, policies=[p])
    numbered = policy(
        "p",
        "dev",
        policyTypes=["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 8080}]}],
    )
    assert allowed(DEVWEB, OUT, 8080, policies=[numbered])


def test_verdict_refuses_a_named_port_it_cannot_resolve():
    with pytest.raises(PolicyError, match="declares no TCP containerPort named 'nope'"):
        verdict(WEB, DB, "nope", namespaces=NAMESPACES, policies=[])
    with pytest.raises(PolicyError, match="not a pod"):
        verdict(WEB, OUT, "http", namespaces=NAMESPACES, policies=[])
    assert verdict(WEB, DB, "5432", namespaces=NAMESPACES, policies=[]).allowed


# ------------------------------------------------------------------ egress, both sides, union


DNS_EGRESS_RULE = {
    "to": [
        {
            "namespaceSelector": labels(**{"kubernetes.io/metadata.name": "kube-system"}),
            "podSelector": labels(**{"k8s-app": "kube-dns"}),
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}],
}


def test_egress_isolation_blocks_dns_until_a_dns_rule_is_added():
    lockdown = policy("lockdown", "prod", policyTypes=["Ingress", "Egress"])
    v = verdict(WEB, DNS, 53, "UDP", namespaces=NAMESPACES, policies=[lockdown])
    assert not v.allowed and v.side == "egress"
    assert "prod/web is isolated for egress by policy prod/lockdown" in v.reason
    allow_dns = policy("allow-dns", "prod", policyTypes=["Egress"], egress=[DNS_EGRESS_RULE])
    v = verdict(WEB, DNS, 53, "UDP", namespaces=NAMESPACES, policies=[lockdown, allow_dns])
    assert v.allowed and v.side == "egress"
    assert "egress allowed by prod/allow-dns egress[0]" in v.reason
    assert not allowed(WEB, DNS, 53, "TCP", policies=[lockdown, allow_dns])  # only UDP allowed
    assert not allowed(WEB, DNS, 9153, "TCP", policies=[lockdown, allow_dns])
    assert not allowed(WEB, DB, 5432, policies=[lockdown, allow_dns])


def test_flow_needs_egress_at_source_and_ingress_at_destination():
    out = policy(
        "web-out",
        "prod",
        podSelector=labels(app="web"),
        policyTypes=["Egress"],
        egress=[{"to": [{"podSelector": labels(app="db")}]}],
    )
    inn = policy(
        "db-in",
        "prod",
        podSelector=labels(app="db"),
        ingress=[{"from": [{"podSelector": labels(app="api")}]}],
    )
    v = verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[out, inn])
    assert not v.allowed and v.side == "ingress" and v.egress.allowed
    fix = policy(
        "db-in-web",
        "prod",
        podSelector=labels(app="db"),
        ingress=[{"from": [{"podSelector": labels(app="web")}]}],
    )
    v = verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[out, inn, fix])
    assert v.allowed and v.side == "both"
    assert "egress allowed by prod/web-out egress[0]" in v.reason
    assert "ingress allowed by prod/db-in-web ingress[0]" in v.reason


def test_blocked_on_both_sides():
    deny = policy("deny", "prod", policyTypes=["Ingress", "Egress"])
    v = verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[deny])
    assert (
        not v.allowed and v.side == "both" and v.reason.startswith("blocked on egress and ingress")
    )


def test_policies_are_a_union_and_rule_indexes_are_named():
    deny = policy("deny", "prod")
    from_web = policy(
        "from-web",
        "prod",
        podSelector=labels(app="db"),
        ingress=[
            {"from": [{"podSelector": labels(app="nothing")}]},
            {"from": [{"podSelector": labels(app="web")}], "ports": [{"port": 5432}]},
        ],
    )
    from_dev = policy(
        "from-dev",
        "prod",
        podSelector=labels(app="db"),
        ingress=[{"from": [{"namespaceSelector": labels(env="dev")}]}],
    )
    pols = [deny, from_web, from_dev]
    v = verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=pols)
    assert v.allowed and v.ingress.allowed_by == (RuleRef("prod/from-web", "ingress", 1),)
    assert "prod/from-web ingress[1]" in v.reason
    assert allowed(DEVWEB, DB, 5432, policies=pols)
    v = verdict(API, DB, 5432, namespaces=NAMESPACES, policies=pols)
    assert not v.allowed
    assert "policies prod/deny, prod/from-dev, prod/from-web" in v.reason


def test_outside_peers_have_one_side_only():
    deny = policy("deny", "prod", policyTypes=["Ingress", "Egress"])
    v = verdict(OUT, WEB, 8080, namespaces=NAMESPACES, policies=[deny])
    assert not v.allowed and not v.egress.applies and v.side == "ingress"
    v = verdict(WEB, OUT, 443, namespaces=NAMESPACES, policies=[deny])
    assert not v.allowed and not v.ingress.applies and v.side == "egress"
    v = verdict(OUT, {"ip": "198.51.100.7"}, 443, namespaces=NAMESPACES, policies=[deny])
    assert v.allowed and "neither end is a pod" in v.reason


def test_a_pod_always_reaches_itself():
    deny = policy("deny", "prod", policyTypes=["Ingress", "Egress"])
    v = verdict(WEB, WEB, 8080, namespaces=NAMESPACES, policies=[deny])
    assert v.allowed and "itself" in v.reason and v.side == "none"


def test_verdict_is_truthy_like_allowed():
    assert bool(verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[]))
    assert not bool(verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[policy("d", "prod")]))


# --------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"ingress": [{"from": [{}]}]}, "names no peer"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "combines ipBlock",
        ),
        (
            {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}
                ]
            },
            "not strictly inside",
        ),
        (
            {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}
                ]
            },
            "not strictly inside",
        ),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]}, "no prefix length"),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]}, "is not a CIDR"),
        ({"ingress": [{"ports": [{"port": "80"}]}]}, "quoted number"),
        (
            {"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            "endPort with the named port",
        ),
        ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}, "endPort 80 is below port 90"),
        ({"ingress": [{"ports": [{"endPort": 80}]}]}, "endPort without port"),
        ({"ingress": [{"ports": [{"port": 70000}]}]}, "outside 1-65535"),
        ({"ingress": [{"ports": [{"port": "Bad_Name"}]}]}, "not a valid port name"),
        ({"ingress": [{"ports": [{"protocol": "tcp", "port": 80}]}]}, "in capitals"),
        ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "Use TCP, UDP or SCTP"),
        ({"policyTypes": ["ingress"]}, "policyType 'ingress'"),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]
                }
            },
            "operator 'Equals'",
        ),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "without values"),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]
                }
            },
            "Drop the values",
        ),
        ({"podSelector": {"app": "web"}}, "LabelSelector does not know"),
        ({"ingress": [{"to": [{"podSelector": {}}]}]}, "uses 'to'"),
    ],
)
def test_invalid_policies_are_refused_with_a_fix(spec, message):
    with pytest.raises(PolicyError, match=message) as err:
        verdict(WEB, DB, 5432, namespaces=NAMESPACES, policies=[policy("bad", "prod", **spec)])
    assert err.value.fix


def test_invalid_endpoints_and_duplicates_are_refused():
    with pytest.raises(PolicyError, match="not an IP address"):
        verdict({"ip": "nope"}, DB, 80, namespaces=[], policies=[])
    with pytest.raises(PolicyError, match="neither metadata"):
        verdict({"name": "x"}, DB, 80, namespaces=[], policies=[])
    with pytest.raises(PolicyError, match="appears twice"):
        PolicySet([], [policy("a", "prod"), policy("a", "prod")])
    with pytest.raises(PolicyError, match="Expected kind NetworkPolicy"):
        PolicySet([], [{"kind": "Service", "metadata": {"name": "x"}}])


# --------------------------------------------------------------------------- truth tables


SMALL = [
    pod("x", "a", "10.0.0.1", {"pod": "a"}, [(80, "serve-80-tcp"), (81, "serve-81-udp", "UDP")]),
    pod("x", "b", "10.0.0.2", {"pod": "b"}, [(80, "serve-80-tcp")]),
    pod("y", "a", "10.0.0.3", {"pod": "a"}, [(80, "serve-80-tcp")]),
]
SMALL_NS = [namespace("x", ns="x"), namespace("y", ns="y")]
ONLY_FROM_XA = policy(
    "only-a",
    "x",
    podSelector=labels(pod="b"),
    ingress=[{"from": [{"podSelector": labels(pod="a")}], "ports": [{"port": 80}]}],
)


def test_truth_table_renders_like_cyclonus():
    table = truth_table(list(reversed(SMALL)), [80], namespaces=SMALL_NS, policies=[ONLY_FROM_XA])
    assert table.render() == "\n".join(
        [
            "80/TCP: rows = from, columns = to; . allowed, X blocked",
            "+--------+--------+--------+--------+",
            "| 80/TCP | x/a    | x/b    | y/a    |",
            "+--------+--------+--------+--------+",
            "| x/a    | .      | .      | .      |",
            "| x/b    | .      | .      | .      |",
            "| y/a    | .      | X      | .      |",
            "+--------+--------+--------+--------+",
        ]
    )
    assert str(table) == table.render()
    assert table.blocked("80/TCP") == [("y/a", "x/b")]


def test_truth_table_cells_ports_and_named_ports():
    table = truth_table(
        [*SMALL, {"ip": "203.0.113.9"}],
        [80, (81, "UDP"), "serve-81-udp", "81/UDP"],
        namespaces=SMALL_NS,
        policies=[ONLY_FROM_XA],
    )
    assert table.ports == ("80/TCP", "81/UDP", "serve-81-udp")  # duplicates collapse
    assert table.labels == ("x/a", "x/b", "y/a", "203.0.113.9")
    assert table.cells[("y/a", "x/b", "80/TCP")] is False
    assert table.cells[("203.0.113.9", "x/b", "80/TCP")] is False
    assert table.cells[("y/a", "x/b", "81/UDP")] is False  # only port 80 allowed
    assert table.cells[("y/a", "x/a", "serve-81-udp")] is True
    assert table.cells[("y/a", "x/b", "serve-81-udp")] is None  # x/b declares no such port
    assert table.allowed("x/a", "x/b", 80) is True
    assert table.allowed("x/a", "x/b", "serve-81-udp") is None
    text = table.render("serve-81-udp")
    assert "- port not declared by the destination" in text
    assert "| y/a          | .            | -            | -            | -            |" in text
    assert len(table.cells) == 4 * 4 * 3


def test_truth_table_is_deterministic_whatever_the_input_order():
    pols = [ONLY_FROM_XA, policy("deny-y", "y")]
    first = truth_table(SMALL, [80, 81], namespaces=SMALL_NS, policies=pols).render()
    rng = random.Random(1)
    for _ in range(5):
        pods, pol = SMALL[:], pols[:]
        rng.shuffle(pods)
        rng.shuffle(pol)
        assert truth_table(pods, [80, 81], namespaces=SMALL_NS, policies=pol).render() == first


@pytest.mark.parametrize(
    "ports, message",
    [
        ([], "no ports"),
        ([0], "outside 1-65535"),
        ([(80, "tcp", 1)], "not \\(port, protocol\\)"),
        ([(80, "ICMP")], "Use TCP, UDP or SCTP"),
        ([1.5], "neither a number nor a name"),
    ],
)
def test_truth_table_refuses_bad_ports(ports, message):
    with pytest.raises(PolicyError, match=message):
        truth_table(SMALL, ports, namespaces=SMALL_NS, policies=[])


def test_truth_table_refuses_duplicate_pods_and_unknown_cells():
    with pytest.raises(PolicyError, match="appears twice"):
        truth_table(SMALL + SMALL[:1], [80], namespaces=SMALL_NS, policies=[])
    table = truth_table(SMALL, [80], namespaces=SMALL_NS, policies=[])
    with pytest.raises(PolicyError, match="no endpoint 'x/zz'"):
        table.allowed("x/zz", "x/a", 80)
    with pytest.raises(PolicyError, match="no port '443/TCP'"):
        table.allowed("x/a", "x/a", 443)


# --------------------------------------------------------------------------- fast path == slow path


APPS = ["web", "api", "db", "cache"]


def random_cluster(seed: int):
    """A seeded random cluster exercising every feature, including odd endpoints."""
    rng = random.Random(seed)
    nss = [
        namespace(f"n{i}", env=rng.choice(["dev", "prod"]), team=rng.choice("ab")) for i in range(4)
    ]
    pods = []
    for i in range(36):
        ns = f"n{i % 5}"  # n4 is not among the Namespace objects
        ports = [
            (rng.choice([80, 8080]), "http"),
            (53, "dns", "UDP"),
            (rng.choice([7, 8]), "sctp", "SCTP"),
        ]
        pods.append(
            pod(
                ns,
                f"p{i}",
                None if i == 7 else f"10.1.{i // 10}.{i}",
                {"app": rng.choice(APPS), "tier": rng.choice(["fe", "be"])},
                rng.sample(ports, rng.randint(0, 3)),
                host_network=(i == 11),
            )
        )
    pods += [{"ip": "10.1.0.200"}, {"ip": "203.0.113.5"}, {"ip": "203.0.113.77"}]

    def selector():
        return rng.choice(
            [
                {},
                labels(app=rng.choice(APPS)),
                {
                    "matchExpressions": [
                        {"key": "tier", "operator": rng.choice(["In", "NotIn"]), "values": ["fe"]}
                    ]
                },
                {
                    "matchExpressions": [
                        {"key": "app", "operator": rng.choice(["Exists", "DoesNotExist"])}
                    ]
                },
            ]
        )

    def peer():
        k = rng.randrange(6)
        if k == 0:
            return {"podSelector": selector()}
        if k == 1:
            return {"namespaceSelector": rng.choice([{}, labels(env="dev"), labels(team="b")])}
        if k == 2:
            return {"namespaceSelector": labels(team=rng.choice("ab")), "podSelector": selector()}
        if k == 3:
            return {"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.1.0/24"]}}
        if k == 4:
            return {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.64/26"]}}
        return {
            "namespaceSelector": labels(**{"kubernetes.io/metadata.name": f"n{rng.randrange(5)}"})
        }

    def ports():
        return rng.choice(
            [
                [],
                [{"port": 80}],
                [{"port": "http"}],
                [{"port": 8000, "endPort": 8100}],
                [{"protocol": "UDP", "port": 53}],
                [{"protocol": "UDP", "port": "dns"}],
                [{"protocol": "SCTP"}],
                [{"protocol": "SCTP", "port": "sctp"}, {"port": 8080}],
            ]
        )

    def rules(key):
        return rng.choice(
            [
                [],
                [{}],
                [
                    {key: [peer() for _ in range(rng.randint(0, 2))], "ports": ports()}
                    for _ in range(rng.randint(1, 3))
                ],
            ]
        )

    pols = []
    for i in range(14):
        spec = {"podSelector": selector()}
        shape = rng.randrange(4)
        if shape in (0, 1):
            spec["ingress"] = rules("from")
        if shape in (1, 2):
            spec["egress"] = rules("to")
        if shape == 3 or rng.random() < 0.5:
            spec["policyTypes"] = rng.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
        pols.append(policy(f"pol{i}", f"n{rng.randrange(5)}", **spec))
    return nss, pods, pols


@pytest.mark.parametrize("seed", range(6))
def test_truth_table_agrees_with_verdict_on_every_cell(seed):
    nss, pods, pols = random_cluster(seed)
    ports = [80, 8080, 8050, (53, "UDP"), (7, "SCTP"), "http", ("dns", "UDP"), "sctp"]
    table = truth_table(pods, ports, namespaces=nss, policies=pols)
    ps = PolicySet(nss, pols)
    by_label = {ep.label: ep for ep in map(endpoint, pods)}
    checked = blocked = 0
    for port_label in table.ports:
        query = port_query(next(p for p in ports if port_query(p).label == port_label))
        for src in table.labels:
            for dst in table.labels:
                cell = table.allowed(src, dst, port_label)
                resolved = query.resolve(by_label[dst])
                if resolved is None:
                    assert cell is None
                    continue
                expected = ps.verdict(by_label[src], by_label[dst], *resolved)
                assert cell is expected.allowed, (src, dst, port_label, expected.reason)
                checked += 1
                blocked += not cell
    assert checked > 5000 and 0 < blocked < checked  # the workload really mixes both outcomes
