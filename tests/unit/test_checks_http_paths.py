"""``http_paths`` on recorded labs: each request's status against the one expected, and the hint
that tells Cilium's L7 denial (403 "Access denied") from an L3/L4 drop (a timeout) and from the
application's own answer."""

from __future__ import annotations

import pytest

from labkit.checks import run_check
from labkit.checks.http_paths import http_paths, parse_expect
from labkit.errors import LabError
from tests.unit.fakes import netpol_doc, web_cluster

WEB = {"namespace": "default", "selector": "app=web"}
EXPECT = {"GET /hostname": 200, "GET /clientip": 403}
L7_POLICY = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "web-l7", "namespace": "default"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                "toPorts": [
                    {
                        "ports": [{"port": "8080", "protocol": "TCP"}],
                        "rules": {"http": [{"method": "GET", "path": "/hostname"}]},
                    }
                ],
            }
        ],
    },
}
DENIED = (403, "Access denied")


def test_passes_when_the_proxy_denies_what_the_rule_does_not_list() -> None:
    """Cilium's proxy answers a request no HTTP rule allows with 403 "Access denied" (cilium/proxy
    ``cilium/l7policy.cc``, ``denied_403_body_``); a listed one reaches the application."""
    lab = web_cluster(cni="cilium", extra=[L7_POLICY])
    lab.http_answers[("GET", "/clientip")] = DENIED
    result = http_paths(lab, "client", WEB, 8080, EXPECT, wait=0)
    assert result.passed, result
    text = str(result)
    assert "403 Access denied (Cilium's proxy)" in text
    assert "200 from the application" in text
    sent = [c[4:] for c in lab.calls if c[0] == "http_request"]
    assert sent == [("GET", "/hostname"), ("GET", "/clientip")]


def test_a_proxy_denial_names_the_rule_in_force() -> None:
    """A 403 "Access denied" on a request expected to pass is an L7 denial: the connection was
    allowed (Cilium docs, policy/language.rst "Layer 7 Examples": only GET /public is allowed),
    so the hint names the policy and the requests its ``rules.http`` allow."""
    lab = web_cluster(cni="cilium", extra=[L7_POLICY])
    lab.http_answers[("GET", "/hostname")] = DENIED
    result = http_paths(lab, "client", WEB, 8080, {"GET /hostname": 200}, wait=0)
    assert result.verdict == "fail" and result.failure == "http"
    assert "default/web-l7: GET /hostname" in result.hint
    assert "an L3/L4 drop would time out" in result.hint


def test_a_timeout_is_an_l3_l4_drop_not_an_http_rule() -> None:
    """A policy that admits no peer drops the SYN (Kubernetes NetworkPolicy: an isolated pod
    accepts only what a rule lists), so no HTTP rule ever sees the request: the hint says so."""
    deny = netpol_doc(
        "web-deny-all", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
    )
    lab = web_cluster(cni="cilium", extra=[deny])
    result = http_paths(lab, "client", WEB, 8080, {"GET /hostname": 200}, wait=0)
    assert result.verdict == "fail" and result.failure == "timeout"
    assert "dropped at L3/L4" in result.hint and "web-deny-all" in result.hint


@pytest.mark.parametrize(
    ("cni", "policies", "words"),
    [
        ("cilium", [], "No CiliumNetworkPolicy gives port 8080"),
        ("cilium", [L7_POLICY], "HTTP rules in force on port 8080: default/web-l7: GET /hostname"),
        ("calico", [], "only Cilium enforces toPorts.rules.http"),
    ],
)
def test_an_application_answer_where_a_denial_was_expected(cni, policies, words) -> None:
    """Without an HTTP rule on the port, the request reaches the application, which answers it
    (agnhost netexec ``clientIPHandler``: 200 with the peer's address)."""
    lab = web_cluster(cni=cni, extra=policies)
    result = http_paths(lab, "client", WEB, 8080, {"GET /clientip": 403}, wait=0)
    assert result.verdict == "fail" and result.failure == "http"
    assert "The application answered GET /clientip with 200" in result.hint
    assert words in result.hint


def test_another_status_from_the_application_is_not_a_denial() -> None:
    """agnhost netexec's ``echoHandler`` answers ``/echo?code=404`` with that status: an answer
    from the application, not the proxy."""
    lab = web_cluster(cni="cilium")
    lab.http_answers[("GET", "/echo?msg=x&code=404")] = (404, "x")
    result = http_paths(lab, "client", WEB, 8080, {"GET /echo?msg=x&code=404": 200}, wait=0)
    assert result.verdict == "fail"
    assert "reached the application, which answered 404, not 200" in result.hint
    assert "404 from the application" in str(result)


def test_a_service_is_dialled_on_its_cluster_ip_and_judged_on_its_endpoints() -> None:
    """A Service port leads to its endpoints' targetPort (EndpointSlice ports), where the HTTP
    rule applies: the hint names the pod port 8080, not the Service port 80."""
    lab = web_cluster(cni="cilium")
    service = {"service": "web", "namespace": "default"}
    result = run_check(
        lab,
        "http_paths",
        {"src": "client", "dst": service, "port": 80, "expect": EXPECT, "wait": 0},
    )
    assert result.verdict == "fail"
    assert {c[2] for c in lab.calls if c[0] == "http_request"} == {"10.96.10.10"}
    assert "port 8080" in result.hint
    assert "service default/web:80" in result.subject


@pytest.mark.parametrize(
    "expect",
    [
        {},
        {"FETCH /x": 200},
        {"GET hostname": 200},
        {"GET /a b": 200},
        {"GET /x": "ok"},
        {"GET /x": 99},
        {"GET /x": True},
        ["GET /x"],
    ],
)
def test_bad_expectations_are_one_lab_error_and_send_nothing(expect) -> None:
    """Requests are origin-form targets (RFC 9112 section 3.2.1: an absolute path and an optional
    query) with a method; statuses are three-digit codes (RFC 9110 section 15)."""
    lab = web_cluster(cni="cilium")
    with pytest.raises(LabError) as err:
        http_paths(lab, "client", WEB, 8080, expect, wait=0)
    assert "\n" not in err.value.what
    assert not [c for c in lab.calls if c[0] == "http_request"]


def test_parse_expect_keeps_the_order_and_upper_cases_the_method() -> None:
    """Methods are case-sensitive tokens (RFC 9110 section 9.1), conventionally upper case."""
    assert list(parse_expect({"get /b": 200, "POST /a?x=1": 403})) == [
        ("GET", "/b"),
        ("POST", "/a?x=1"),
    ]
