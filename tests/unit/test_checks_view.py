"""One look at the cluster per check (ClusterView), fresh looks while polling, and the ordered
stages long checks are written as."""

from __future__ import annotations

import pytest

from labkit.checks.matrix import policy_matrix
from labkit.checks.pod_reach import pod_to_pod
from labkit.checks.result import Result, Step
from labkit.checks.service_reach import pod_to_service
from labkit.checks.services import service_health
from labkit.checks.stages import Report, Stages
from labkit.checks.view import ClusterView, NodeAddress
from labkit.errors import LabError

pytestmark = pytest.mark.usefixtures("fast_clock")

WEB = {"namespace": "default", "selector": "app=web"}


def test_a_view_lists_each_kind_once_and_keeps_it(fakes):
    lab = fakes.web_cluster()
    view = ClusterView(lab)
    assert view.pod("client", "default") is not None
    assert view.find_pods(WEB)[1][0]["metadata"]["name"] == "web-5d4f8c7b9d-abcde"
    assert [p["metadata"]["name"] for p in view.pods_in("shop")] == ["db"]
    assert view.names(view.pods_in("default")[1]) == "default/web#1"
    assert view.service("db", "shop") is not None and view.service("db", "default") is None
    assert view.service_namespaces("db") == ["shop"]
    assert [e.pod for e in view.endpoints("db", "shop")] == ["db"]
    assert view.node_addresses()[0] == NodeAddress("lab-control-plane", "172.18.0.2")
    assert lab.reads == {"pods": 1, "services": 1, "endpointslices": 1, "nodes": 1}


def test_a_lab_that_cannot_list_slices_falls_back_to_endpoints(fakes):
    legacy = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "old", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.0.0.9", "targetRef": {"name": "p"}}]}],
    }
    lab = fakes.FakeLab([fakes.namespace("default"), legacy], auto_slices=False)
    real_get = lab.get

    def get(kind, **kw):
        if kind == "endpointslices":
            raise LabError("no EndpointSlice API here", "Use Endpoints.")
        return real_get(kind, **kw)

    lab.get = get
    view = ClusterView(lab)
    assert view.optional_listing("endpointslices") is None
    assert [e.ip for e in view.endpoints("old", "default")] == ["10.0.0.9"]


def test_one_pod_to_pod_lists_pods_once(fakes):
    lab = fakes.web_cluster()
    assert pod_to_pod(lab, "default/client", WEB, 8080).passed
    assert lab.reads["pods"] == 1, "one snapshot per check, not one listing per question"
    assert all(n == 1 for n in lab.reads.values()), lab.reads


def test_other_checks_read_each_kind_once_too(fakes):
    lab = fakes.web_cluster()
    assert pod_to_service(lab, "default/client", "web", requests=6).passed
    assert all(n == 1 for n in lab.reads.values()), lab.reads
    lab = fakes.web_cluster()
    policy_matrix(lab, ["default/client", "shop/db"], [8080])
    assert all(n == 1 for n in lab.reads.values()), lab.reads


def test_a_poll_that_waits_for_change_looks_again_each_attempt(fakes):
    """service_health waits for endpoints to follow the pods: each attempt takes a fresh view, so
    endpoints that appear while it polls are seen."""
    lab = fakes.web_cluster()
    slices = [o for o in lab.objects if o["kind"] == "EndpointSlice"]
    web = [s for s in slices if s["metadata"]["name"].startswith("web-")]
    lab.objects = [o for o in lab.objects if o not in web]
    real_get = lab.get

    def get(kind, **kw):
        if kind == "endpointslices" and lab.reads[kind] == 1:
            lab.objects += web  # the endpoint controller catches up after the first look
        return real_get(kind, **kw)

    lab.get = get
    r = service_health(lab, "web")
    assert r.passed and "converged after 2 attempts" in str(r)
    assert lab.reads["pods"] == lab.reads["endpointslices"] == 2


def test_stages_run_in_order_until_one_ends_the_check():
    report = Report("demo", "a -> b")
    ran: list[str] = []

    def first(n: int) -> int:
        ran.append("first")
        report.add("first", str(n), True)
        return n + 1

    def second(n: int) -> int | Result:
        ran.append("second")
        report.add("second", str(n), False)
        return report.result("the second stage failed", failure="refused")

    def third(n: int) -> Result:
        ran.append("third")
        return report.result()

    r = Stages(1).then(first).then(second).finish(third)
    assert ran == ["first", "second"]
    assert (r.verdict, r.points, r.max_points, r.failure) == ("fail", 1, 2, "refused")
    assert r.steps == [Step("first", "1", True), Step("second", "2", False)]


def test_a_report_passes_when_every_graded_step_passed():
    report = Report("demo", "a -> b")
    report.add("context", "not graded")
    report.add("graded", "ok", True)
    report.elapsed_s = 0.25
    r = Stages(report).finish(lambda rep: rep.result())
    assert (r.verdict, r.points, r.max_points, r.elapsed_s, r.hint) == ("pass", 1, 1, 0.25, "")


WEB_FROM_CLIENT = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "web-allow-client", "namespace": "default"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "client"}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        ],
    },
}
DENY_WEB = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "web-deny-all", "namespace": "default"},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
}


@pytest.mark.parametrize(("cni", "allowed"), [("cilium", True), ("calico", False)])
def test_a_cilium_lab_judges_cilium_network_policies_too(fakes, cni, allowed):
    """Cilium's policy repository (``pkg/policy/repository.go``, ``AllowsIngressRLocked``) sums
    NetworkPolicies and CiliumNetworkPolicies selecting an endpoint: web-deny-all isolates web and
    the CiliumNetworkPolicy admits the client on 8080, only there. Calico ignores cilium.io
    objects, so there web-deny-all alone decides."""
    from labkit.checks.policy import model_verdict

    lab = fakes.web_cluster(cni=cni, extra=[DENY_WEB, WEB_FROM_CLIENT])
    view = ClusterView(lab)
    client, web = view.pod("client", "default"), view.pods_in("default")[1]
    assert model_verdict(view, client, web, 8080).allowed is allowed
    assert model_verdict(view, client, web, 9090).allowed is False
    names = [p["metadata"]["name"] for p in view.policies]
    assert ("cnp:web-allow-client" in names) is allowed and "web-deny-all" in names


def test_explanations_name_a_cilium_network_policy_as_it_was_written(fakes):
    """Cilium's docs (``network/kubernetes/policy.rst``, "CiliumNetworkPolicy"): a
    CiliumNetworkPolicy is its own kind beside NetworkPolicy, written ``kind:
    CiliumNetworkPolicy`` with its name; ``kubectl get cnp -n default web-allow-client`` finds it.
    The reasons of a check on a Cilium lab name it so, never by its internal translation."""
    from labkit.checks.policy import model_verdict
    from labkit.model.netpol.verdicts import why

    client_out = {
        **WEB_FROM_CLIENT,
        "metadata": {"name": "client-egress", "namespace": "default"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "client"}},
            "egress": [{"toEndpoints": [{}]}],
        },
    }
    lab = fakes.web_cluster(cni="cilium", extra=[DENY_WEB, WEB_FROM_CLIENT, client_out])
    view = ClusterView(lab)
    client, web = view.pod("client", "default"), view.pods_in("default")[1]
    allowed, blocked = (
        model_verdict(view, client, web, 8080),
        model_verdict(view, client, web, 9090),
    )
    assert allowed.allowed and not blocked.allowed
    assert "ingress allowed by CiliumNetworkPolicy default/web-allow-client ingress[0]" in (
        allowed.reason
    )
    assert (
        "is isolated for ingress by policies CiliumNetworkPolicy default/web-allow-client, "
        "default/web-deny-all and no ingress rule of them matches" in blocked.reason
    )
    lines = why(blocked) + why(allowed)
    assert (
        "egress at default/client: allowed by rule CiliumNetworkPolicy default/client-egress "
        "egress[0] (the pod is selected by CiliumNetworkPolicy default/client-egress)" in lines
    )
    assert not any("cnp:" in text for text in (allowed.reason, blocked.reason, *lines))


@pytest.mark.parametrize(
    ("cidrs", "covering_net"),
    [
        (["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"], "10.244.0.0/22"),
        (["172.18.0.2", "172.18.0.3", "172.18.0.4"], "172.18.0.0/29"),
        (["10.244.5.0/24"], "10.244.5.0/24"),
        (["10.0.0.1", "192.168.0.1"], "0.0.0.0/0"),
        (["10.244.0.0/24", "fd00::/64"], "10.244.0.0/24"),
        ([], None),
    ],
)
def test_covering_is_the_smallest_network_holding_them_all(cidrs, covering_net):
    """Python's ``ipaddress`` (``_BaseNetwork.supernet``, ``subnet_of``): widening the first
    network one bit at a time until it holds every other of its IP version."""
    from labkit.model.addresses import covering

    assert covering(cidrs) == covering_net
