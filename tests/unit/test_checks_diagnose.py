"""diagnose: the first broken layer among DNS, Service, Endpoints, policy and the data plane."""

from __future__ import annotations

import pytest

from labkit.checks.diagnose import diagnose
from labkit.errors import LabError

pytestmark = pytest.mark.usefixtures("fast_clock")


def test_healthy_path_passes_every_layer(fakes):
    r = diagnose(fakes.web_cluster(), "default/client", "web")
    assert r.verdict == "pass" and r.layer is None
    actions = [s.action for s in r.steps]
    assert actions == [
        "find the client pod default/client",
        "dns",
        "service",
        "endpoints",
        "policy",
        "data plane",
    ]
    assert "connected, answered by an endpoint of the Service (converged after 1 attempt)" in str(r)


def test_dns_layer(fakes):
    r = diagnose(fakes.web_cluster(), "default/client", "db")
    assert (r.verdict, r.layer, r.failure) == ("fail", "dns", "dns")
    assert "one exists in namespace shop" in r.hint


def test_service_layer_wrong_port(fakes):
    r = diagnose(fakes.web_cluster(), "default/client", "web", port=81)
    assert r.layer == "service" and "does not expose port 81" in r.hint


def test_endpoints_layer_selector_mismatch(fakes):
    broken = fakes.service("pg", "10.96.7.7", selector={"app": "web", "tier": "db"})
    r = diagnose(fakes.web_cluster(extra=[broken]), "default/client", "pg")
    assert r.layer == "endpoints" and "lacks tier=db" in r.hint


def test_endpoints_layer_target_port(fakes):
    broken = fakes.service(
        "pg",
        "10.96.7.7",
        selector={"app": "web"},
        ports=({"name": "h", "port": 80, "targetPort": 9999},),
    )
    r = diagnose(fakes.web_cluster(extra=[broken]), "default/client", "pg")
    assert r.layer == "endpoints" and "targetPort" in r.hint


def test_policy_layer(fakes):
    deny = fakes.netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    r = diagnose(fakes.web_cluster(extra=[deny]), "default/client", "web")
    assert r.layer == "policy" and "default/web-deny" in r.hint and r.failure == "timeout"


def test_policy_not_enforced_is_partial_never_a_false_pass(fakes):
    """Scenario 18 deny-all-ingress on flannel: the probe connects, but only because nothing
    enforces the policy; diagnose must say so (partial), not pass."""
    deny = fakes.netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    r = diagnose(
        fakes.web_cluster(extra=[deny], enforce=False, cni="flannel"), "default/client", "web"
    )
    assert r.verdict == "partial" and "not enforced here: flannel" in str(r)
    assert "NetworkPolicy is not enforced on this lab" in r.hint and "default/web-deny" in r.hint
    assert "data plane" in [s.action for s in r.steps], "the data plane is still probed"


def test_policy_not_enforced_but_allowing_passes(fakes):
    deny = fakes.netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    allow = fakes.netpol_doc(
        "web-from-client",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
        },
    )
    r = diagnose(
        fakes.web_cluster(extra=[deny, allow], enforce=False, cni="flannel"),
        "default/client",
        "web",
    )
    assert r.verdict == "pass", r


def test_policy_not_enforced_and_data_plane_broken_is_a_real_failure(fakes):
    deny = fakes.netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    lab = fakes.web_cluster(extra=[deny], enforce=False, cni="flannel")
    lab.overrides[("default/client", "10.96.10.10", 80)] = "timeout"
    r = diagnose(lab, "default/client", "web")
    assert r.verdict == "fail" and r.layer == "data plane" and "not enforced" in r.hint


UNSCHEDULABLE = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def test_pending_backends_are_a_scheduling_problem_not_readiness(fakes):
    """Scenario 18 pod-not-scheduled: the Service's pods are Pending; the endpoints step shows each
    pod's phase and the scheduler's message, and the hint is about scheduling."""
    pending = [
        fakes.pod(
            f"site-7c9d8b6f5a-{suffix}",
            None,
            labels={"app": "site"},
            owner="site",
            unschedulable=UNSCHEDULABLE,
        )
        for suffix in ("aaaaa", "bbbbb")
    ]
    site = fakes.service("site", "10.96.30.30", selector={"app": "site"})
    r = diagnose(fakes.web_cluster(extra=[*pending, site]), "default/client", "site", port=80)
    text = str(r)
    assert (r.verdict, r.layer) == ("fail", "endpoints")
    assert "not Ready: default/site#1, default/site#2 (2 Pending, unschedulable)" in text
    assert (
        "default/site#1: Pending, not Ready, no IP, PodScheduled=False (Unschedulable): "
        f"{UNSCHEDULABLE}" in text
    )
    assert (
        "default/site#2: Pending, not Ready, no IP, PodScheduled=False (Unschedulable): "
        f"{UNSCHEDULABLE}" in text
    )
    assert r.hint.startswith(
        "The selected pods (default/site#1, default/site#2) are Pending: the scheduler found "
        "no node for them"
    )
    assert (
        f'(status.conditions PodScheduled=False, reason Unschedulable): "{UNSCHEDULABLE[:-1]}".'
        in r.hint
    )
    assert "nodeSelector" in r.hint and "taints" in r.hint and "readiness" not in r.hint


def test_pending_pod_target_is_explained(fakes):
    lab = fakes.web_cluster(extra=[fakes.pod("stuck", None, unschedulable=UNSCHEDULABLE)])
    r = diagnose(lab, "default/client", "default/stuck", port=8080)
    assert (r.verdict, r.layer) == ("fail", "endpoints")
    assert "default/stuck is Pending with no IP" in str(r) and r.hint.startswith(
        "The pod default/stuck is Pending"
    )


def test_data_plane_layer(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = "timeout"
    r = diagnose(lab, "default/client", "web")
    assert r.layer == "data plane" and r.failure == "timeout" and "Probe one endpoint" in r.hint


def test_targets_as_refs_and_addresses(fakes):
    assert diagnose(fakes.web_cluster(), "default/client", "shop/db").verdict == "pass"
    r = diagnose(fakes.web_cluster(), "default/client", "shop/db", port="pg")
    assert r.verdict == "pass"
    r = diagnose(fakes.web_cluster(), "default/client", "10.244.2.5")
    assert (
        r.verdict == "pass"
        and "skipped: the target is a pod" in str(r)
        and "answered by shop/db" in str(r)
    )
    r = diagnose(fakes.web_cluster(), "default/client", "default/web-5d4f8c7b9d-abcde")
    assert r.verdict == "pass"
    r = diagnose(fakes.web_cluster(), "default/client", "10.9.9.9")
    assert r.layer == "service" and "not a Service ClusterIP nor a pod IP" in r.hint
    r = diagnose(fakes.web_cluster(), "default/client", "shop/nothing")
    assert r.layer == "service"


def test_pod_target_with_unknown_named_port(fakes):
    r = diagnose(fakes.web_cluster(), "default/client", "default/web-5d4f8c7b9d-abcde", port="nope")
    assert r.layer == "endpoints" and "no containerPort named 'nope'" in r.hint
    r = diagnose(fakes.web_cluster(), "default/client", "shop/db", port="nope")
    assert r.layer == "service", "shop/db names the Service first"


def test_bad_input(fakes):
    with pytest.raises(LabError, match="needs a target"):
        diagnose(fakes.web_cluster(), "default/client", " ")
    lab = fakes.web_cluster(extra=[fakes.pod("bare", "10.244.1.77", ports=())])
    with pytest.raises(LabError, match="declares no containerPort"):
        diagnose(lab, "default/client", "default/bare")


def test_missing_client(fakes):
    r = diagnose(fakes.web_cluster(), "default/ghost", "web")
    assert r.verdict == "fail" and "does not exist" in r.hint
