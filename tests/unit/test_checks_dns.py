"""dns_resolves: the resolver's query order shown, answers compared with the model or with what
the learner expects, and hints for the usual mistakes (namespace, spelling, egress blocking DNS)."""

from __future__ import annotations

import pytest

from labkit.checks.dns import dns_resolves, normalize
from labkit.checks.dns_hints import namespace_of_name, near_names
from labkit.errors import LabError
from labkit.lab import ExecResult

pytestmark = pytest.mark.usefixtures("fast_clock")


def test_short_name_in_own_namespace(fakes):
    r = dns_resolves(fakes.web_cluster(), "default/client", "web")
    assert r.verdict == "pass"
    text = str(r)
    assert (
        "search default.svc.cluster.local svc.cluster.local cluster.local; ndots:5; nameserver "
        "10.96.0.10" in text
    )
    assert "1. web.default.svc.cluster.local. -> NOERROR" in text
    assert "10.96.10.10; expected the cluster's records: 10.96.10.10" in text


def test_every_tried_name_is_shown(fakes):
    r = dns_resolves(fakes.web_cluster(), "default/client", "db.shop")
    assert r.verdict == "pass"
    text = str(r)
    assert "1. db.shop.default.svc.cluster.local. -> NXDOMAIN" in text
    assert "2. db.shop.svc.cluster.local. -> NOERROR" in text
    assert "db.shop.svc.cluster.local. answers after 2 queries" in text


def test_name_in_another_namespace_hint(fakes):
    r = dns_resolves(fakes.web_cluster(), "default/client", "db", expect=True)
    assert r.verdict == "fail" and r.failure == "dns"
    assert "one exists in namespace shop" in r.hint and "db.shop" in r.hint
    assert "4. db. -> NXDOMAIN" in str(r)


def test_misspelled_name_hint(fakes):
    r = dns_resolves(fakes.web_cluster(), "default/client", "wbe", expect=True)
    assert "did you mean web" in r.hint


def test_did_you_mean_prefers_a_name_contained_in_the_other(fakes):
    """Scenario 06 misnamed-service: the Service is `auth`, the gateway asks for auth-service; the
    near miss is auth, not user-service or product-service (which only share the suffix)."""
    lab = fakes.web_cluster(
        extra=[
            fakes.service("auth", "10.96.40.1", selector={"app": "web"}),
            fakes.service("user-service", "10.96.40.2", selector={"app": "web"}),
            fakes.service("product-service", "10.96.40.3", selector={"app": "web"}),
        ]
    )
    r = dns_resolves(lab, "default/client", "auth-service.default.svc.cluster.local", expect=True)
    assert "Nothing is called 'auth-service'; did you mean auth?" in r.hint


@pytest.mark.parametrize(
    "label, services, namespace, expected",
    [
        (
            "auth-service",
            [("auth", "default"), ("user-service", "default"), ("product-service", "default")],
            "default",
            ["auth"],
        ),
        (
            "auth",
            [("auth-service", "default"), ("user-service", "default")],
            "default",
            ["auth-service"],
        ),
        (
            "auth-service",
            [("auth-svc", "default"), ("user-service", "default")],
            "default",
            ["auth-svc"],
        ),
        ("auth-service", [("auth", "identity")], "default", ["auth.identity"]),
        ("wbe", [("web", "default"), ("kube-dns", "kube-system")], "default", ["web"]),
        ("web", [("web", "default")], "default", []),
        ("zz", [("web", "default")], "default", []),
        (
            "db",
            [("db2", "default"), ("mydb", "default")],
            "default",
            ["db2", "mydb"],
        ),  # too short to contain: spelling
    ],
)
def test_near_names(label, services, namespace, expected):
    assert near_names(label, services, namespace) == expected


@pytest.mark.parametrize(
    "name, client_ns, pointed",
    [
        ("web", "default", "default"),
        ("web.shop", "default", "shop"),
        ("web.shop.svc.cluster.local.", "x", "shop"),
    ],
)
def test_namespace_of_name(name, client_ns, pointed):
    assert namespace_of_name(name, client_ns) == pointed


def payment_moved(fakes, service_ns: str) -> list[dict]:
    """Scenario 11: the payment pods run in finance; the Service is in ``service_ns``."""
    return [
        fakes.namespace("finance"),
        fakes.pod(
            "payment-6c8d9f7b5a-aaaaa",
            "10.244.2.9",
            ns="finance",
            labels={"app": "payment"},
            owner="payment",
        ),
        fakes.service("payment-service", "10.96.50.5", ns=service_ns, selector={"app": "payment"}),
    ]


def test_same_name_elsewhere_without_endpoints_says_so_instead_of_pointing_there(fakes):
    """Scenario 11 service-left-behind: the Service stayed in default, its pods moved to finance.
    Writing payment-service.default would not help: that Service has no endpoints."""
    lab = fakes.web_cluster(extra=payment_moved(fakes, "default"))
    r = dns_resolves(
        lab, "default/client", "payment-service.finance.svc.cluster.local", expect=True
    )
    assert r.verdict == "fail" and r.failure == "dns"
    assert r.hint.startswith(
        "No Service 'payment-service' exists in namespace finance, where "
        "payment-service.finance.svc.cluster.local points, but one exists in namespace default."
    )
    assert (
        "The Service payment-service.default has no ready endpoints: the pods its selector "
        "app=payment matches run in finance, and a Service only selects pods in its own namespace."
    ) in r.hint
    assert (
        "Create the Service in finance" in r.hint and "write payment-service.default" not in r.hint
    )


def test_same_name_elsewhere_with_endpoints_is_recommended(fakes):
    lab = fakes.web_cluster(extra=payment_moved(fakes, "finance"))
    r = dns_resolves(lab, "default/client", "payment-service", expect=True)
    assert (
        "one exists in namespace finance" in r.hint
        and "A short name only searches the client's own namespace" in r.hint
    )
    assert "The Service with ready endpoints is in finance: write payment-service.finance" in r.hint


def test_same_name_in_two_namespaces_names_the_one_with_endpoints(fakes):
    lab = fakes.web_cluster(
        extra=[
            *payment_moved(fakes, "finance"),
            fakes.namespace("billing"),
            fakes.service(
                "payment-service", "10.96.50.6", ns="billing", selector={"app": "payment"}
            ),
        ]
    )
    r = dns_resolves(lab, "default/client", "payment-service", expect=True)
    assert "one exists in namespace billing, finance" in r.hint
    assert "The Service payment-service.billing has no ready endpoints" in r.hint
    assert "write payment-service.finance " in r.hint


def test_same_name_elsewhere_without_any_pod(fakes):
    lab = fakes.web_cluster(
        extra=[
            fakes.namespace("finance"),
            fakes.service("payments", "10.96.50.7", selector={"app": "payments"}),
        ]
    )
    r = dns_resolves(lab, "default/client", "payments.finance", expect=True)
    assert (
        "one exists in namespace default" in r.hint
        and "(no Running pod matches its selector)" in r.hint
    )
    assert "fix the Service first" in r.hint


def test_model_agreeing_on_nxdomain_passes_when_nothing_is_expected(fakes):
    assert dns_resolves(fakes.web_cluster(), "default/client", "nothing-here").verdict == "pass"
    assert (
        dns_resolves(fakes.web_cluster(), "default/client", "nothing-here", expect=False).verdict
        == "pass"
    )
    assert (
        dns_resolves(fakes.web_cluster(), "default/client", "nothing-here", expect=[]).verdict
        == "pass"
    )


def test_name_that_should_not_resolve(fakes):
    r = dns_resolves(fakes.web_cluster(), "default/client", "web", expect=False)
    assert r.verdict == "fail" and "although it should not" in r.hint


def test_expected_values_and_service_refs(fakes):
    assert (
        dns_resolves(fakes.web_cluster(), "default/client", "web", expect=["10.96.10.10"]).verdict
        == "pass"
    )
    assert (
        dns_resolves(
            fakes.web_cluster(), "default/client", "db.shop", expect=["service:shop/db"]
        ).verdict
        == "pass"
    )
    with pytest.raises(LabError, match="no Service shop/nope"):
        dns_resolves(fakes.web_cluster(), "default/client", "db.shop", expect=["service:shop/nope"])


def test_same_short_name_in_two_namespaces_resolves_the_local_one(fakes):
    lab = fakes.web_cluster(
        extra=[
            fakes.service(
                "db",
                "10.96.20.99",
                selector={"app": "db"},
                ports=({"name": "pg", "port": 5432, "targetPort": "pg"},),
            )
        ]
    )
    r = dns_resolves(lab, "default/client", "db", expect=["service:shop/db"])
    assert r.verdict == "fail" and "tried in the client's namespace (default) first" in r.hint


def test_egress_policy_blocking_dns_is_named(fakes):
    deny = fakes.netpol_doc(
        "client-egress-deny",
        {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]},
    )
    lab = fakes.web_cluster(extra=[deny])
    lab.resolve_overrides[("default/client", "web", "A")] = []
    r = dns_resolves(lab, "default/client", "web", expect=True)
    assert (
        r.verdict == "fail"
        and "drops its DNS queries" in r.hint
        and "default/client-egress-deny" in r.hint
    )


CLIENT_EGRESS_DENY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "client-egress-deny", "namespace": "default"},
    "spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]},
}
ALLOW_DNS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "client-allow-dns", "namespace": "default"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "client"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        ],
    },
}


def test_egress_policy_blocking_dns_on_flannel_is_partial_not_a_pass(fakes):
    """Scenario 16 no-dns-egress on flannel: the name resolves only because nothing enforces the
    policy; on an enforcing cluster the pod could not ask kube-dns at all."""
    lab = fakes.web_cluster(enforce=False, cni="flannel", extra=[CLIENT_EGRESS_DENY])
    r = dns_resolves(lab, "default/client", "web", expect=True)
    assert r.verdict == "partial" and r.failure is None
    assert (
        "NetworkPolicy is not enforced on this lab" in r.hint
        and "default/client-egress-deny" in r.hint
    )
    assert "egress" in r.hint and "53/UDP" in r.hint
    assert "may the pod ask kube-dns on 53/UDP (policy model)" in str(r)


def test_dns_allowed_by_policy_on_flannel_passes(fakes):
    lab = fakes.web_cluster(enforce=False, cni="flannel", extra=[CLIENT_EGRESS_DENY, ALLOW_DNS])
    assert dns_resolves(lab, "default/client", "web", expect=True).verdict == "pass"


def test_blocked_dns_on_flannel_where_both_views_agree_is_graded(fakes):
    lab = fakes.web_cluster(enforce=False, cni="flannel", extra=[CLIENT_EGRESS_DENY])
    assert dns_resolves(lab, "default/client", "nothing-here", expect=False).verdict == "pass"
    r = dns_resolves(lab, "default/client", "nothing-here", expect=True)
    assert r.verdict == "fail" and "would also drop this pod's DNS queries" in r.hint
    r = dns_resolves(lab, "default/client", "web", expect=False)
    assert r.verdict == "partial", "on an enforcing cluster the name would not resolve, as expected"


def test_dns_down_without_policy(fakes):
    lab = fakes.web_cluster()
    lab.resolve_overrides[("default/client", "web", "A")] = []
    r = dns_resolves(lab, "default/client", "web")
    assert "DNS pods are Running" in r.hint


def test_stale_answer(fakes):
    lab = fakes.web_cluster()
    lab.resolve_overrides[("default/client", "web", "A")] = ["10.96.99.99"]
    r = dns_resolves(lab, "default/client", "web")
    assert r.verdict == "fail" and "stale" in r.hint and r.failure is None


def test_srv_and_ptr_records(fakes):
    assert (
        dns_resolves(fakes.web_cluster(), "default/client", "_http._tcp.web", rtype="SRV").verdict
        == "pass"
    )
    r = dns_resolves(fakes.web_cluster(), "default/client", "10.96.10.10", rtype="PTR")
    assert r.verdict == "pass" and "web.default.svc.cluster.local" in str(r)


def test_resolv_conf_is_read_in_the_pod(fakes):
    lab = fakes.web_cluster()
    conf = "search corp.example\nnameserver 10.96.0.10\noptions ndots:1\n"
    lab.exec_outputs[("default/client", ("cat", "/etc/resolv.conf"))] = ExecResult(
        ("cat",), 0, conf
    )
    r = dns_resolves(lab, "default/client", "web.default.svc.cluster.local")
    assert "search corp.example; ndots:1" in str(
        r
    ) and "1. web.default.svc.cluster.local. -> NOERROR" in str(r)


def test_unreadable_resolv_conf_falls_back_to_kubelets(fakes):
    lab = fakes.web_cluster()
    lab.exec_outputs[("default/client", ("cat", "/etc/resolv.conf"))] = ExecResult(
        ("cat",), 1, "", "no"
    )
    assert "as kubelet writes it" in str(dns_resolves(lab, "default/client", "web"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "web", "rtype": "MX"}, "Unknown record type"),
        ({"name": " "}, "needs a name"),
        ({"name": "web", "expect": "yes"}, "cannot be read"),
        ({"name": "a..b"}, "cannot be looked up"),
    ],
)
def test_bad_input(fakes, kwargs, message):
    with pytest.raises(LabError, match=message):
        dns_resolves(fakes.web_cluster(), "default/client", **kwargs)


def test_missing_client(fakes):
    r = dns_resolves(fakes.web_cluster(), "default/ghost", "web")
    assert r.verdict == "fail" and "does not exist" in r.hint


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Web.Default.svc.cluster.local.", "web.default.svc.cluster.local"),
        ("0 100 80 web.default.svc.cluster.local.", "0 100 80 web.default.svc.cluster.local"),
        ("10.96.0.10", "10.96.0.10"),
    ],
)
def test_normalize(raw, clean):
    assert normalize(raw) == clean
