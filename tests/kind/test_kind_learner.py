"""What a learner does on a Kind lab, per CNI: deploy, check and reset scenarios, LoadBalancer and
Ingress through cloud-provider-kind (which labkit's plan starts), and NetworkPolicy checks with
the checks' own bounded wait (never one probe judged alone)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from labkit import scenarios
from labkit.kind.lab import KindLab
from labkit.model.objects import meta

pytestmark = pytest.mark.kind

READY_WAIT_S = 240.0


def _ready(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return pod.get("status", {}).get("phase") == "Running" and all(s.get("ready") for s in statuses)


def wait_until_running(lab: KindLab, docs: list[dict]) -> None:
    """Every Pod of ``docs`` and every replica of its Deployments Running and Ready (a check
    judges a converged cluster; image pulls are not its business)."""
    deadline = time.monotonic() + READY_WAIT_S
    for doc in docs:
        ns = meta(doc).get("namespace") or "default"
        while True:
            if doc["kind"] == "Pod":
                pods = lab.get("pod", meta(doc)["name"], namespace=ns)
                wanted = 1
            elif doc["kind"] == "Deployment":
                pods = lab.get("pods", namespace=ns, selector=doc["spec"]["selector"])
                wanted = doc["spec"].get("replicas", 1)
            else:
                break
            if len([p for p in pods if _ready(p)]) >= wanted:
                break
            assert time.monotonic() < deadline, f"{doc['kind']} {ns}/{meta(doc)['name']} not ready"
            time.sleep(2)


@contextmanager
def scenario(lab: KindLab, name: str, variant: str | None = None) -> Iterator[None]:
    """A scenario state deployed and running for the block, every object of it removed after."""
    found = scenarios.get(name)
    scenarios.deploy(lab, name, variant)
    try:
        wait_until_running(lab, scenarios.state_documents(found, variant))
        yield
    finally:
        lab.delete(scenarios.all_documents(found))


def failures(results) -> list[str]:
    """The failing Results, as a learner reads them."""
    return [str(r) for r in results if not r.passed]


def test_reset_keeps_a_bare_pod(lab):
    """kubernetes/kubectl pkg/cmd/delete/delete.go `--wait`: reset deletes, waits until the Pod
    is gone (its 30 s grace period), then creates it anew; applying while it terminated used to
    update the doomed Pod, which then vanished."""
    with scenario(lab, "05-sidecar-logging"):
        before = meta(lab.get("pod", "app-pod")[0])["uid"]
        scenarios.reset(lab, "05-sidecar-logging")
        pods = lab.get("pod", "app-pod")
        assert pods and meta(pods[0])["uid"] != before
        assert "deletionTimestamp" not in meta(pods[0])
        wait_until_running(lab, scenarios.get("05-sidecar-logging").documents())
        assert not failures(scenarios.run_checks(lab, "05-sidecar-logging"))


def test_loadbalancer_through_cloud_provider_kind(lab):
    """cloud-provider-kind README: a LoadBalancer Service gets an address from the kind network,
    served by an Envoy container (ipMode Proxy); the check reaches it from OUTSIDE."""
    with scenario(lab, "08-public-web-loadbalancer"):
        assert not failures(scenarios.run_checks(lab, "08-public-web-loadbalancer"))


def test_ingress_through_cloud_provider_kind(lab):
    """cloud-provider-kind README (Ingress): the controller serves IngressClass
    `cloud-provider-kind`; scenario 15's Ingress routes by host and path."""
    with scenario(lab, "15-ingress-one-domain"):
        assert not failures(scenarios.run_checks(lab, "15-ingress-one-domain"))


def test_network_policy_checks_pass_and_catch_the_broken_policy(lab, settings):
    """kubernetes test/e2e/network/netpol/network_policy.go: policies take effect some time after
    they are created, so the checks poll (checks.result.poll, settle_wait on Kind) before they
    judge; the fixed state passes, the broken one fails with its hint."""
    if settings["cni"] == "flannel":
        pytest.skip("Flannel does not enforce NetworkPolicy; the checks say so instead")
    name = "14-three-tier-policies"
    with scenario(lab, name):
        assert not failures(scenarios.run_checks(lab, name))
    with scenario(lab, name, "database-open-to-frontend"):
        results = scenarios.run_checks(lab, name, "database-open-to-frontend")
        assert [r.passed for r in results] == [False]
        assert "db-from-api" in results[0].hint
