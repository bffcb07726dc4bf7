"""The checks' lab double (tests/unit/fakes.py) checked against what the checks rely on: load
balancing over ready endpoints, refusals and policy drops, the pod's own loopback, unschedulable
pods, DNS answers as the model gives them, and listings counted per kind."""

from __future__ import annotations


def test_double_load_balances_over_ready_endpoints(fakes):
    lab = fakes.web_cluster()
    served = {lab.probe("default/client", "10.96.10.10", 80).served_by for _ in range(6)}
    assert served == {"web-5d4f8c7b9d-abcde", "web-5d4f8c7b9d-fghij", "web-5d4f8c7b9d-klmno"}


def test_double_refuses_undeclared_port_and_drops_by_policy(fakes):
    lab = fakes.web_cluster(
        extra=[fakes.netpol_doc("deny", {"podSelector": {"matchLabels": {"app": "db"}}}, ns="shop")]
    )
    assert lab.probe("default/client", "10.244.1.3", 9999).outcome == "refused"
    assert lab.probe("default/client", "10.244.2.5", 5432).outcome == "timeout"
    assert lab.probe("default/client", "10.9.9.9", 80).outcome == "unreachable"


def test_double_answers_on_the_source_pods_own_loopback(fakes):
    lab = fakes.web_cluster()
    local = lab.probe("default/client", "127.0.0.1", 8080)
    assert (local.outcome, local.served_by, local.client_ip) == (
        "connected",
        "client",
        "127.0.0.1:40000",
    )
    assert lab.probe("default/client", "127.0.0.1", 9999).outcome == "refused"


def test_double_builds_unschedulable_pods(fakes):
    waiting = fakes.pod("w", None, unschedulable="0/3 nodes are available")
    assert waiting["status"]["phase"] == "Pending" and "nodeName" not in waiting["spec"]
    assert waiting["status"]["conditions"][0]["reason"] == "Unschedulable"


def test_double_resolves_like_the_dns_model(fakes):
    lab = fakes.web_cluster()
    assert lab.resolve("default/client", "web") == ["10.96.10.10"]
    assert lab.resolve("default/client", "db") == []
    assert lab.resolve("default/client", "db.shop") == ["10.96.20.20"]


def test_double_counts_listings_per_kind(fakes):
    lab = fakes.web_cluster()
    lab.get("pods", namespace=None)
    lab.get("pods", name="client")
    lab.get("services")
    assert lab.reads == {"pods": 2, "services": 1}
