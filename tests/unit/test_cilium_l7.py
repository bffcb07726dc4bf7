"""CiliumNetworkPolicy HTTP rules (``labkit.model.ciliuml7``) and the agent's proxy decision and
denial (``labkit.sandbox.agent.l7``), against Cilium's own definitions."""

from __future__ import annotations

import itertools
import re

import pytest

from labkit.model.ciliuml7 import (
    DENIED_BODY,
    HeaderRule,
    HttpRule,
    allows,
    parse_http_rule,
    parse_http_rules,
    rule_allows,
)
from labkit.sandbox.agent.http import parse_head
from labkit.sandbox.agent.l7 import render_denied, request_allowed
from labkit.sandbox.agent.spec import L7Grant, parse_spec

METHODS = ("GET", "POST", "PUT", "GETX", "get")
TARGETS = ("/public", "/public/x", "/private", "/v1/request-landing", "/public?x=1", "/")
HOSTS = ("", "deathstar", "deathstar.default.svc.cluster.local")
HEADERS = ({}, {"x-my-header": "true"}, {"x-my-header": "false"})


def test_layer7_examples_from_ciliums_docs() -> None:
    """Cilium docs, Layer 7 Examples (``policy/language.rst``, "HTTP"): ``method: GET`` with
    ``path: "/public"`` allows GET /public only; ``headers: ['X-My-Header: true']`` on
    ``PUT /public`` needs that header with that value."""
    (get_public,) = parse_http_rules([{"method": "GET", "path": "/public"}])
    assert rule_allows(get_public, "GET", "/public", {})
    assert not rule_allows(get_public, "GET", "/private", {})
    assert not rule_allows(get_public, "PUT", "/public", {})
    (put_header,) = parse_http_rules(
        [{"method": "PUT", "path": "/public", "headers": ["X-My-Header: true"]}]
    )
    assert put_header.headers == (HeaderRule("x-my-header", "true"),)
    assert rule_allows(put_header, "PUT", "/public", {"x-my-header": "true"})
    assert not rule_allows(put_header, "PUT", "/public", {"x-my-header": "false"})
    assert not rule_allows(put_header, "PUT", "/public", {})


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"method": "GET"},
        {"path": "/public"},
        {"method": "GET|POST", "path": "/public(/.*)?"},
        {"host": "deathstar"},
        {"headers": ["X-My-Header"]},
        {"headers": ["X-My-Header: true"]},
        {"method": "P.*", "headers": ["X-My-Header true"]},
        {"headerMatches": [{"name": "X-My-Header", "value": "true"}]},
        {"headerMatches": [{"name": "X-My-Header", "value": "true", "mismatch": "LOG"}]},
    ],
)
def test_every_request_is_decided_as_envoys_header_matchers_do(raw: dict) -> None:
    """cilium/cilium ``pkg/envoy/server.go`` ``getHTTPRule``: path -> ``:path``, method ->
    ``:method``, host -> ``:authority`` as RE2 ``safe_regex`` matchers (a whole-value match);
    ``headers`` split at the first space into name (``:`` trimmed) and exact value, or presence
    alone; ``headerMatches`` fail only with the default mismatch action. Every combination of
    method, target, host and header is checked against that reading."""
    rule = parse_http_rule(raw)
    for method, target, host, headers in itertools.product(METHODS, TARGETS, HOSTS, HEADERS):
        fields = {**headers, **({"host": host} if host else {})}
        expected = (
            (not raw.get("method") or re.fullmatch(raw["method"], method) is not None)
            and (not raw.get("path") or re.fullmatch(raw["path"], target) is not None)
            and (not raw.get("host") or re.fullmatch(raw["host"], host) is not None)
        )
        for entry in raw.get("headers", []):
            name, _, value = entry.partition(" ")
            got = fields.get(name.rstrip(":").lower())
            expected = expected and got is not None and (not value or got == value)
        for match in raw.get("headerMatches", []):
            if not match.get("mismatch"):
                expected = expected and fields.get(match["name"].lower()) == match["value"]
        assert rule_allows(rule, method, target, fields) == expected, (raw, method, target, fields)


def test_regexes_are_anchored_both_ends_and_case_sensitive() -> None:
    """Envoy's ``safe_regex`` matches the whole header value (RE2 FullMatch): no prefix or
    suffix matches, methods are case-sensitive, and the query is part of ``:path``."""
    rule = parse_http_rule({"method": "GET", "path": "/public"})
    assert not rule_allows(rule, "GETX", "/public", {})
    assert not rule_allows(rule, "get", "/public", {})
    assert not rule_allows(rule, "GET", "/public/", {})
    assert not rule_allows(rule, "GET", "/x/public", {})
    assert not rule_allows(rule, "GET", "/public?x=1", {})


def test_the_rules_of_a_port_are_alternatives_and_none_allow_all() -> None:
    """``GetEnvoyHTTPRules``: one HttpNetworkPolicyRule per entry, any of which allows;
    ``getPortNetworkPolicyRule``: an L3/L4-only rule (no L7) allows every request."""
    rules = parse_http_rules([{"method": "GET", "path": "/a"}, {"method": "POST", "path": "/b"}])
    assert allows(rules, "GET", "/a", {}) and allows(rules, "POST", "/b", {})
    assert not allows(rules, "POST", "/a", {}) and not allows(rules, "GET", "/b", {})
    assert allows((), "DELETE", "/anything", {})
    assert allows((HttpRule(),), "DELETE", "/anything", {})


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("GET /", "must be a list"),
        (["GET"], "must be an object"),
        ([{"method": "("}], "http[0].method '(' is not a regular expression"),
        ([{"path": 3}], "http[0].path must be a string"),
        ([{"verb": "GET"}], "unknown fields: verb"),
        ([{"headers": [""]}], "http[0].headers[0] must be a header name"),
        ([{"headerMatches": [{"value": "x"}]}], "headerMatches[0] needs a name"),
        ([{"headerMatches": [{"name": "a", "mismatch": "NOPE"}]}], "invalid mismatch action"),
    ],
)
def test_bad_rules_name_the_field(raw: object, problem: str) -> None:
    """``PortRuleHTTP.Sanitize`` (``pkg/policy/api/http.go``): path and method must compile,
    a headerMatch needs a name and a known mismatch action."""
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_http_rules(raw)


def test_rules_describe_themselves_for_hints() -> None:
    rule = parse_http_rule({"method": "POST", "path": "/v1/request-landing", "host": "ds"})
    assert rule.describe() == "POST /v1/request-landing host ds"
    assert parse_http_rule({"headers": ["X-A: 1"]}).describe() == "* * with x-a: 1"


def test_grants_merge_per_peer() -> None:
    """Cilium merges every policy's rules for a port and peer (``L7DataMap`` per selector): a
    peer is allowed a request when one grant admits it and allows the request; a peer no grant
    admits is denied."""
    landing = parse_http_rules([{"method": "POST", "path": "/v1/request-landing"}])
    grants = (
        L7Grant("ns", 80, "default/rule1", ("10.0.0.1",), landing),
        L7Grant("ns", 80, "default/ops", ("10.0.0.9",), ()),
    )
    assert request_allowed(grants, "10.0.0.1", "POST", "/v1/request-landing", {})
    assert not request_allowed(grants, "10.0.0.1", "PUT", "/v1/exhaust-port", {})
    assert request_allowed(grants, "10.0.0.9", "PUT", "/v1/exhaust-port", {})
    assert not request_allowed(grants, "10.0.0.5", "POST", "/v1/request-landing", {})
    anyone = (L7Grant("ns", 80, "default/rule1", None, landing),)
    assert request_allowed(anyone, "10.0.0.5", "POST", "/v1/request-landing", {})


def test_the_denial_is_envoys_local_reply() -> None:
    """cilium/proxy ``cilium/l7policy.cc``: ``Config`` defaults ``denied_403_body_`` to "Access
    denied" plus CRLF and ``AccessFilter::decodeHeaders`` sends it with
    ``sendLocalReply(Http::Code::Forbidden, ...)``; Envoy's local reply carries
    ``content-type: text/plain`` and its connection manager adds ``date`` and ``server: envoy``."""
    data = render_denied(keep_alive=True, now=0.0)
    head, _, body = data.partition(b"\r\n\r\n")
    msg = parse_head(head, response=True)
    assert (msg.status, msg.reason, body) == (403, "Forbidden", DENIED_BODY.encode())
    assert body == b"Access denied\r\n"
    assert msg.headers == [
        ("content-length", "15"),
        ("content-type", "text/plain"),
        ("date", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("server", "envoy"),
    ]
    assert msg.keep_alive
    assert not parse_head(
        render_denied(keep_alive=False).partition(b"\r\n\r\n")[0], response=True
    ).keep_alive


def test_spec_carries_grants_and_names_bad_ones() -> None:
    spec = parse_spec(
        {
            "l7_grants": [
                {
                    "netns": "lk-l-p-1",
                    "port": 80,
                    "policy": "default/rule1",
                    "peers": ["10.244.1.5"],
                    "http": [{"method": "POST", "path": "/v1/request-landing"}],
                },
                {"netns": "lk-l-p-1", "port": 80, "policy": "default/ops", "peers": None},
            ]
        }
    )
    first, second = spec.l7_for("lk-l-p-1", 80)
    assert first.peers == ("10.244.1.5",) and first.http[0].method == "POST"
    assert second.peers is None and second.http == ()
    assert spec.l7_for("lk-l-p-1", 8080) == ()
    with pytest.raises(ValueError) as err:
        parse_spec(
            {
                "l7_grants": [
                    "x",
                    {"netns": "n", "port": 80, "policy": "p", "peers": "10.0.0.1"},
                    {"netns": "n", "port": 80, "policy": "p", "http": [{"path": "("}]},
                    {"port": 80, "policy": "p"},
                ]
            }
        )
    text = str(err.value)
    assert "l7_grants[0] is not an object" in text
    assert "l7_grants[1]: peers must be a list of addresses or null" in text
    assert "l7_grants[2].http[0].path '(' is not a regular expression" in text
    assert "l7_grants[3]: 'netns' is missing" in text


RULE1 = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "rule1", "namespace": "default"},
    "spec": {
        "endpointSelector": {"matchLabels": {"k8s:app": "web"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                "toPorts": [
                    {
                        "ports": [{"port": "8080", "protocol": "TCP"}],
                        "rules": {"http": [{"method": "POST", "path": "/v1/request-landing"}]},
                    }
                ],
            }
        ],
    },
}


def test_policies_whose_http_rules_guard_a_port() -> None:
    """A CiliumNetworkPolicy's endpointSelector (labels with or without the ``k8s:`` source,
    the namespace label naming its own namespace) picks the pods; an ingress ``toPorts`` entry
    with ``rules.http`` on the port puts Cilium's proxy in front of it (Cilium docs,
    "Layer 7 Examples")."""
    from labkit.checks.l7 import http_rules_on

    web = {"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}}}
    assert http_rules_on([RULE1], web, 8080) == ["default/rule1: POST /v1/request-landing"]
    assert http_rules_on([RULE1], web, 9090) == []
    other_ns = {"metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}}}
    assert http_rules_on([RULE1], other_ns, 8080) == []
    db = {"metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"}}}
    assert http_rules_on([RULE1], db, 8080) == []
    pinned = {
        **RULE1,
        "spec": {
            **RULE1["spec"],
            "endpointSelector": {
                "matchLabels": {"app": "web", "k8s:io.kubernetes.pod.namespace": "kube-system"}
            },
        },
    }
    assert http_rules_on([pinned], web, 8080) == []


@pytest.mark.usefixtures("fast_clock")
def test_pod_to_pod_tells_an_http_denial_from_a_drop(fakes) -> None:
    """cilium/proxy ``cilium/l7policy.cc``: a request the HTTP rules deny gets 403 on a
    connection L3/L4 policy allowed; the check fails it as an HTTP failure naming the rule,
    where a drop would be a timeout."""
    import dataclasses

    from labkit.checks.pod_reach import pod_to_pod

    lab = fakes.web_cluster()
    lab.objects.append(RULE1)
    lab.overrides[("default/client", "10.244.1.3", 8080)] = lambda p: dataclasses.replace(
        p, served_by=None, client_ip=None, http_status=403
    )
    r = pod_to_pod(lab, "default/client", {"namespace": "default", "selector": "app=web"}, 8080)
    assert r.verdict == "fail" and r.failure == "http"
    assert "403 Access denied" in r.hint and "an L3/L4 drop would time out" in r.hint
    assert "default/rule1: POST /v1/request-landing" in r.hint


@pytest.mark.usefixtures("fast_clock")
def test_pod_to_pod_hints_the_same_from_a_kind_probe(fakes) -> None:
    """The Kind probe's curl reports the 403 of Cilium's proxy (labkit/kind/probe.py reads
    %{http_code}; cilium/proxy cilium/l7policy.cc answers "Access denied"), so the check fails
    it as an HTTP failure naming the rule, with the sandbox's hint."""
    import dataclasses

    from labkit.checks.pod_reach import pod_to_pod
    from labkit.kind import probe as kind_probe

    out = "@@CONNECT 0 \nAccess denied\r\n\n@@HTTP 0 0.0004 403\n"
    reading = kind_probe.parse_probe_output(out, "TCP")
    lab = fakes.web_cluster()
    lab.objects.append(RULE1)
    lab.overrides[("default/client", "10.244.1.3", 8080)] = lambda p: dataclasses.replace(
        p,
        served_by=reading.served_by,
        client_ip=reading.client_ip,
        detail=reading.detail,
        http_status=reading.http_status,
    )
    r = pod_to_pod(lab, "default/client", {"namespace": "default", "selector": "app=web"}, 8080)
    assert r.verdict == "fail" and r.failure == "http"
    assert "403 Access denied" in r.hint and "an L3/L4 drop would time out" in r.hint
    assert "default/rule1: POST /v1/request-landing" in r.hint


def test_grants_published_for_the_agent() -> None:
    """Cilium redirects a port to its proxy when any rule gives it HTTP rules, and merges the
    other rules on that port per peer (``pkg/policy/l4.go``): the deathstar's port 80 gets
    rule1's HTTP grant for the empire's ships and an L3/L4-only grant for ops' pods; a port
    without HTTP rules gets no grant; ``fromEndpoints`` become the selected pods' addresses."""
    from labkit.sandbox.agent.spec import parse_spec
    from labkit.sandbox.l7grants import l7_grants

    pods, nets, empire = _lab()
    from_ops = {
        "fromEndpoints": [
            {"matchLabels": {"team": "ops", "k8s:io.kubernetes.pod.namespace": "ops"}}
        ],
        "toPorts": [
            {"ports": [{"port": "80"}]},
            {"ports": [{"port": "9090"}, {"port": "http"}]},
        ],
    }
    rule1 = {
        **empire,
        "spec": {**empire["spec"], "ingress": [*empire["spec"]["ingress"], from_ops]},
    }
    grants = l7_grants([rule1], pods, nets)
    assert grants == [
        {
            "netns": "lk-l-deathstar-1",
            "port": 80,
            "policy": "default/rule1",
            "peers": ["10.244.1.5", "10.244.1.6"],
            "http": [{"method": "POST", "path": "/v1/request-landing"}],
        },
        {
            "netns": "lk-l-deathstar-1",
            "port": 80,
            "policy": "default/rule1",
            "peers": ["10.244.2.9"],
            "http": [],
        },
    ]
    spec = parse_spec({"l7_grants": grants})
    assert [g.peers for g in spec.l7_for("lk-l-deathstar-1", 80)] == [
        ("10.244.1.5", "10.244.1.6"),
        ("10.244.2.9",),
    ]
    assert l7_grants([{**rule1, "kind": "NetworkPolicy"}], pods, nets) == []


def _lab() -> tuple[list[dict], dict, dict]:
    """The deathstar, two ships, an ops pod; rule1 gives port 80 HTTP rules for the empire."""
    from types import SimpleNamespace

    def pod(name: str, labels: dict, ip: str, ns: str = "default") -> dict:
        return {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
            "status": {"podIP": ip},
        }

    pods = [
        pod("deathstar-1", {"class": "deathstar", "org": "empire"}, "10.244.1.5"),
        pod("tiefighter", {"class": "tiefighter", "org": "empire"}, "10.244.1.6"),
        pod("xwing", {"class": "xwing", "org": "alliance"}, "10.244.2.7"),
        pod("ops-1", {"team": "ops"}, "10.244.2.9", ns="ops"),
    ]
    nets = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": SimpleNamespace(
            netns=f"lk-l-{p['metadata']['name']}"
        )
        for p in pods
    }
    rule1 = {
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "rule1", "namespace": "default"},
        "spec": {
            "endpointSelector": {"matchLabels": {"class": "deathstar"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                    "toPorts": [
                        {
                            "ports": [{"port": "80"}],
                            "rules": {"http": [{"method": "POST", "path": "/v1/request-landing"}]},
                        }
                    ],
                }
            ],
        },
    }
    return pods, nets, rule1


def _netpol(name: str, rule: dict, selector: dict | None = None) -> dict:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "podSelector": selector
            if selector is not None
            else {"matchLabels": {"class": "deathstar"}},
            "ingress": [rule],
        },
    }


def _allowed(grants: list[dict], peer: str, method: str, path: str) -> bool:
    from labkit.sandbox.agent.l7 import request_allowed
    from labkit.sandbox.agent.spec import parse_spec

    on_port = parse_spec({"l7_grants": grants}).l7_for("lk-l-deathstar-1", 80)
    return request_allowed(on_port, peer, method, path, {})


def test_a_networkpolicy_on_the_port_wildcards_l7_for_its_peers() -> None:
    """Cilium reads a Kubernetes NetworkPolicy as a rule of its own (pkg/k8s/network_policy.go,
    ParseNetworkPolicy) and merges it per peer on the port (pkg/policy/l4.go); an L3/L4 allow
    for a peer on a port the proxy guards wildcards L7 for that peer (pkg/policy/rules.go,
    wildcardL3L4Rules: "Duplicate L3-only rules into wildcard L7 rules"): ops' pod may make any
    request, the x-wing none, the tiefighter only rule1's."""
    from labkit.sandbox.l7grants import l7_grants

    pods, nets, rule1 = _lab()
    ops = _netpol(
        "from-ops",
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
            ],
            "ports": [{"port": 80}],
        },
    )
    namespaces = [{"metadata": {"name": n}} for n in ("default", "ops")]
    grants = l7_grants([rule1, ops], pods, nets, namespaces)
    assert grants[1:] == [
        {
            "netns": "lk-l-deathstar-1",
            "port": 80,
            "policy": "default/from-ops",
            "peers": ["10.244.2.9"],
            "http": [],
        }
    ]
    assert _allowed(grants, "10.244.2.9", "DELETE", "/anything")
    assert not _allowed(grants, "10.244.2.7", "POST", "/v1/request-landing")
    assert _allowed(grants, "10.244.1.6", "POST", "/v1/request-landing")
    assert not _allowed(grants, "10.244.1.6", "GET", "/v1/exhaust-port")
    # without the NetworkPolicy, ops' pod has no grant: the proxy denies it
    assert not _allowed(l7_grants([rule1], pods, nets, namespaces), "10.244.2.9", "GET", "/")


@pytest.mark.parametrize(
    "rule, selector, peers",
    [
        ({}, None, None),  # no from, no ports: every peer, every port
        ({"ports": [{"port": 80, "protocol": "TCP"}]}, None, None),
        (
            {"from": [{"podSelector": {"matchLabels": {"org": "empire"}}}]},
            None,
            ["10.244.1.5", "10.244.1.6"],
        ),
        ({"from": [{"ipBlock": {"cidr": "10.244.2.0/24"}}]}, None, ["10.244.2.7", "10.244.2.9"]),
        ({"ports": [{"port": 8080}]}, None, "none"),  # another port
        ({"ports": [{"port": 80, "protocol": "UDP"}]}, None, "none"),
        ({}, {"matchLabels": {"class": "xwing"}}, "none"),  # selects another pod
    ],
)
def test_which_networkpolicy_rules_wildcard_the_guarded_port(rule, selector, peers) -> None:
    """ParseNetworkPolicy: an empty ``from`` admits every peer, empty ``ports`` every port; only
    a rule covering TCP 80 of the deathstar wildcards its L7 (pkg/policy/rules.go,
    wildcardL3L4Rules)."""
    from labkit.sandbox.l7grants import l7_grants

    pods, nets, rule1 = _lab()
    grants = l7_grants([rule1, _netpol("np", rule, selector)], pods, nets)
    wildcards = [g["peers"] for g in grants if g["policy"] == "default/np"]
    assert wildcards == ([] if peers == "none" else [peers])


def test_an_l3_only_cnp_rule_wildcards_every_guarded_port() -> None:
    """A CiliumNetworkPolicy ingress rule without toPorts allows its peers on every port, and on
    a port the proxy guards that is an L7 wildcard (pkg/policy/rules.go, wildcardL3L4Rules,
    "L3-only rule")."""
    from labkit.sandbox.l7grants import l7_grants

    pods, nets, rule1 = _lab()
    l3 = {
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "xwing-l3", "namespace": "default"},
        "spec": {
            "endpointSelector": {"matchLabels": {"class": "deathstar"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"class": "xwing"}}]}],
        },
    }
    grants = l7_grants([rule1, l3], pods, nets)
    assert grants[1] == {
        "netns": "lk-l-deathstar-1",
        "port": 80,
        "policy": "default/xwing-l3",
        "peers": ["10.244.2.7"],
        "http": [],
    }
    assert _allowed(grants, "10.244.2.7", "PUT", "/v1/exhaust-port")
    # no CiliumNetworkPolicy gives HTTP rules: nothing is guarded, NetworkPolicies add nothing
    assert l7_grants([l3, _netpol("np", {})], pods, nets) == []
