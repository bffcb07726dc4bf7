"""dns_resolves: the resolver's query order shown, answers compared with the model or with what
the learner expects, and hints for the usual mistakes (namespace, spelling, egress blocking DNS)."""
from __future__ import annotations

import pytest
from test_checks_fakelab import fast_clock, netpol_doc, service, web_cluster  # noqa: F401

from labkit.checks.dns import dns_resolves, normalize
from labkit.errors import LabError
from labkit.lab import ExecResult

pytestmark = pytest.mark.usefixtures("fast_clock")


def test_short_name_in_own_namespace():
    r = dns_resolves(web_cluster(), "default/client", "web")
    assert r.verdict == "pass"
    text = str(r)
    assert "search default.svc.cluster.local svc.cluster.local cluster.local; ndots:5; nameserver 10.96.0.10" in text
    assert "1. web.default.svc.cluster.local. -> NOERROR" in text
    assert "10.96.10.10; expected the cluster's records: 10.96.10.10" in text


def test_every_tried_name_is_shown():
    r = dns_resolves(web_cluster(), "default/client", "db.shop")
    assert r.verdict == "pass"
    text = str(r)
    assert "1. db.shop.default.svc.cluster.local. -> NXDOMAIN" in text
    assert "2. db.shop.svc.cluster.local. -> NOERROR" in text
    assert "db.shop.svc.cluster.local. answers after 2 queries" in text


def test_name_in_another_namespace_hint():
    r = dns_resolves(web_cluster(), "default/client", "db", expect=True)
    assert r.verdict == "fail" and r.failure == "dns"
    assert "one exists in namespace shop" in r.hint and "db.shop" in r.hint
    assert "4. db. -> NXDOMAIN" in str(r)


def test_misspelled_name_hint():
    r = dns_resolves(web_cluster(), "default/client", "wbe", expect=True)
    assert "did you mean web" in r.hint


def test_model_agreeing_on_nxdomain_passes_when_nothing_is_expected():
    assert dns_resolves(web_cluster(), "default/client", "nothing-here").verdict == "pass"
    assert dns_resolves(web_cluster(), "default/client", "nothing-here", expect=False).verdict == "pass"
    assert dns_resolves(web_cluster(), "default/client", "nothing-here", expect=[]).verdict == "pass"


def test_name_that_should_not_resolve():
    r = dns_resolves(web_cluster(), "default/client", "web", expect=False)
    assert r.verdict == "fail" and "although it should not" in r.hint


def test_expected_values_and_service_refs():
    assert dns_resolves(web_cluster(), "default/client", "web", expect=["10.96.10.10"]).verdict == "pass"
    assert dns_resolves(web_cluster(), "default/client", "db.shop", expect=["service:shop/db"]).verdict == "pass"
    with pytest.raises(LabError, match="no Service shop/nope"):
        dns_resolves(web_cluster(), "default/client", "db.shop", expect=["service:shop/nope"])


def test_same_short_name_in_two_namespaces_resolves_the_local_one():
    lab = web_cluster(extra=[service("db", "10.96.20.99", selector={"app": "db"},
                                     ports=({"name": "pg", "port": 5432, "targetPort": "pg"},))])
    r = dns_resolves(lab, "default/client", "db", expect=["service:shop/db"])
    assert r.verdict == "fail" and "tried in the client's namespace (default) first" in r.hint


def test_egress_policy_blocking_dns_is_named():
    deny = netpol_doc("client-egress-deny", {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]})
    lab = web_cluster(extra=[deny])
    lab.resolve_overrides[("default/client", "web", "A")] = []
    r = dns_resolves(lab, "default/client", "web", expect=True)
    assert r.verdict == "fail" and "drops its DNS queries" in r.hint and "default/client-egress-deny" in r.hint


def test_dns_down_without_policy():
    lab = web_cluster()
    lab.resolve_overrides[("default/client", "web", "A")] = []
    r = dns_resolves(lab, "default/client", "web")
    assert "DNS pods are Running" in r.hint


def test_stale_answer():
    lab = web_cluster()
    lab.resolve_overrides[("default/client", "web", "A")] = ["10.96.99.99"]
    r = dns_resolves(lab, "default/client", "web")
    assert r.verdict == "fail" and "stale" in r.hint and r.failure is None


def test_srv_and_ptr_records():
    assert dns_resolves(web_cluster(), "default/client", "_http._tcp.web", rtype="SRV").verdict == "pass"
    r = dns_resolves(web_cluster(), "default/client", "10.96.10.10", rtype="PTR")
    assert r.verdict == "pass" and "web.default.svc.cluster.local" in str(r)


def test_resolv_conf_is_read_in_the_pod():
    lab = web_cluster()
    conf = "search corp.example\nnameserver 10.96.0.10\noptions ndots:1\n"
    lab.exec_outputs[("default/client", ("cat", "/etc/resolv.conf"))] = ExecResult(("cat",), 0, conf)
    r = dns_resolves(lab, "default/client", "web.default.svc.cluster.local")
    assert "search corp.example; ndots:1" in str(r) and "1. web.default.svc.cluster.local. -> NOERROR" in str(r)


def test_unreadable_resolv_conf_falls_back_to_kubelets():
    lab = web_cluster()
    lab.exec_outputs[("default/client", ("cat", "/etc/resolv.conf"))] = ExecResult(("cat",), 1, "", "no")
    assert "as kubelet writes it" in str(dns_resolves(lab, "default/client", "web"))


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "web", "rtype": "MX"}, "Unknown record type"), ({"name": " "}, "needs a name"),
    ({"name": "web", "expect": "yes"}, "cannot be read"), ({"name": "a..b"}, "cannot be looked up"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(LabError, match=message):
        dns_resolves(web_cluster(), "default/client", **kwargs)


def test_missing_client():
    r = dns_resolves(web_cluster(), "default/ghost", "web")
    assert r.verdict == "fail" and "does not exist" in r.hint


@pytest.mark.parametrize("raw, clean", [("Web.Default.svc.cluster.local.", "web.default.svc.cluster.local"),
                                        ("0 100 80 web.default.svc.cluster.local.", "0 100 80 web.default.svc.cluster.local"),
                                        ("10.96.0.10", "10.96.0.10")])
def test_normalize(raw, clean):
    assert normalize(raw) == clean
