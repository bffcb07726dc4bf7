"""One failure, one class; and no waiting where the lab has converged: the reachability checks
on a lab double whose kernel rate-limits ICMP errors (as Kind's nodes do) and on one whose
``apply`` returns converged (as the sandbox's does)."""

from __future__ import annotations

import dataclasses

import pytest

from labkit.checks.outside_reach import external_to_service
from labkit.checks.pod_reach import pod_to_pod
from labkit.checks.result import failure_class
from labkit.checks.service_reach import pod_to_service
from labkit.kind import detect
from labkit.lab import Probe
from labkit.sandbox.capabilities import capabilities_for

pytestmark = pytest.mark.usefixtures("fast_clock")

BURST = 6
"""The kernel's per-destination ICMP error burst (XRLIM_BURST_FACTOR); then 1 a second."""


@pytest.mark.parametrize(
    "outcomes, expected",
    [
        (["connected"] * 3, None),
        (["timeout"] * 10, "timeout"),
        (["refused"] * 6 + ["timeout"] * 4, "refused"),
        (["refused"] + ["timeout"] * 9, "refused"),
        (["connected", "timeout", "refused"], "refused"),
        (["unreachable"] * 2 + ["timeout"] * 8, "unreachable"),
        (["refused", "unreachable", "unreachable", "timeout"], "unreachable"),
        (["dns", "refused"], "dns"),
    ],
)
def test_a_failure_that_answered_outranks_silence(outcomes, expected):
    assert failure_class(outcomes) == expected


def rate_limited(fakes, fast_clock, extra):
    """A Kind-like lab double: kube-proxy REJECTs a Service without endpoints (refused), and the
    node sends at most BURST ICMP errors per client, then one a second of the (fake) clock."""

    class RateLimitedLab(fakes.FakeLab):
        def __init__(self) -> None:
            base = fakes.web_cluster(extra=extra)
            super().__init__(base.objects)
            self.buckets: dict[str, tuple[float, float]] = {}

        def _one(self, src: str, dst: str, port: int, protocol: str) -> Probe:
            probe = super()._one(src, dst, port, protocol)
            if probe.outcome == "connected":
                return probe
            tokens, last = self.buckets.get(src, (float(BURST), fast_clock[0]))
            tokens = min(float(BURST), tokens + fast_clock[0] - last)
            allowed = tokens >= 1
            self.buckets[src] = (tokens - 1 if allowed else tokens, fast_clock[0])
            return dataclasses.replace(probe, outcome="refused" if allowed else "timeout")

    return RateLimitedLab()


def test_a_cluster_ip_without_endpoints_is_refused_every_time_despite_the_rate_limit(
    fakes, fast_clock
):
    ghost = fakes.service("ghost", "10.96.10.99", selector={"app": "ghost"})
    lab = rate_limited(fakes, fast_clock, [ghost])
    results = [pod_to_service(lab, "default/client", "ghost", requests=10) for _ in range(20)]
    assert {(r.verdict, r.failure) for r in results} == {("fail", "refused")}
    assert any("timeout" in str(r) for r in results), "the double never rate-limited"


def test_a_node_port_without_endpoints_is_refused_every_time_despite_the_rate_limit(
    fakes, fast_clock
):
    ghost = fakes.service(
        "ghost",
        "10.96.10.99",
        selector={"app": "ghost"},
        type_="NodePort",
        ports=({"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},),
    )
    lab = rate_limited(fakes, fast_clock, [ghost])
    results = [external_to_service(lab, "ghost", requests=10) for _ in range(20)]
    assert {(r.verdict, r.failure) for r in results} == {("fail", "refused")}
    assert all("no ready endpoints" in r.hint for r in results)


def test_pod_to_pod_judges_every_attempt_of_its_poll(fakes):
    lab = fakes.web_cluster()
    lab.scripts[("default/client", "10.244.1.3", 9999)] = ["refused"] + ["timeout"] * 30
    r = pod_to_pod(lab, "default/client", "default/web-5d4f8c7b9d-abcde", 9999)
    assert r.verdict == "fail" and r.failure == "refused", r


def test_a_lab_that_converges_on_apply_is_judged_on_its_first_look(fakes):
    ghost = fakes.service("ghost", "10.96.10.99", selector={"app": "ghost"})
    lab = fakes.web_cluster(extra=[ghost])
    lab.capabilities = dataclasses.replace(lab.capabilities, converges_on_apply=True)
    r = pod_to_service(lab, "default/client", "ghost", requests=10)
    assert r.failure == "refused" and len(lab.calls) == 10
    assert "0 of 10 connected; 10 refused (1 attempt, judged as first seen)" in str(r)


def test_a_lab_that_converges_later_is_polled_until_the_wait_runs_out(fakes):
    ghost = fakes.service("ghost", "10.96.10.99", selector={"app": "ghost"})
    lab = fakes.web_cluster(extra=[ghost])
    r = pod_to_service(lab, "default/client", "ghost", requests=10, wait=5.0)
    assert r.failure == "refused" and len(lab.calls) == 10 * 11
    assert "still different after 11 attempts (5 s limit)" in str(r)


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_only_the_sandbox_says_apply_returns_converged(cni):
    assert capabilities_for(cni, False).converges_on_apply
    assert not detect.capabilities(cni, "iptables").converges_on_apply
