"""Pure parts of the cni_identity and kube_proxy_rules checks."""
from __future__ import annotations

import pytest

from labkit.checks.cni import detect_cni, fingerprint
from labkit.checks.kubeproxy import _judge_port
from labkit.model.kubeproxy import Endpoint, ServicePort


def pod(ns: str, name: str) -> dict:
    return {"metadata": {"namespace": ns, "name": name}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("pods, cni", [
    ([pod("kube-flannel", "kube-flannel-ds-abcde"), pod("kube-system", "coredns-5d78c9869d-x2x4z")], "flannel"),
    ([pod("calico-system", "calico-node-q8w2e"), pod("calico-system", "calico-kube-controllers-7d9f-abcde")], "calico"),
    ([pod("kube-system", "cilium-k2j4d"), pod("kube-system", "cilium-operator-6c4f-abcde")], "cilium"),
    ([pod("kube-system", "coredns-5d78c9869d-x2x4z")], None),
])
def test_detect_cni(pods, cni):
    found, agents = detect_cni(pods)
    assert found == cni
    assert (agents != []) == (cni is not None)


def test_detect_cni_ignores_operator_pods():
    _, agents = detect_cni([pod("kube-system", "cilium-k2j4d"), pod("kube-system", "cilium-operator-6c4f-abcde")])
    assert agents == ["kube-system/cilium-k2j4d"]


@pytest.mark.parametrize("addr, route, guess", [
    ("2: eth0    inet 10.244.1.5/24 brd 10.244.1.255 scope global eth0",
     "default via 10.244.1.1 dev eth0\n10.244.1.0/24 dev eth0 proto kernel scope link src 10.244.1.5", "flannel"),
    ("2: eth0    inet 192.168.10.3/32 scope global eth0",
     "default via 169.254.1.1 dev eth0\n169.254.1.1 dev eth0 scope link", "calico"),
    ("2: eth0    inet 10.0.0.5/32 scope global eth0", "default via 10.0.0.1 dev eth0 onlink", None),
    ("", "", None),
])
def test_fingerprint(addr, route, guess):
    assert fingerprint(addr, route)[0] == guess


def entry(endpoints, no_endpoints=False):
    return ServicePort("default", "my-service", "http", "TCP", "10.96.0.20", 80,
                       endpoints=[Endpoint(ip, 8080, p) for ip, p in endpoints], no_endpoints=no_endpoints)


def test_judge_port_fair_split_passes():
    step, problem = _judge_port(entry([("10.244.1.2", 1 / 3), ("10.244.1.3", 1 / 3), ("10.244.2.2", 1 / 3)]),
                                {"10.244.1.2", "10.244.1.3", "10.244.2.2"}, "w1")
    assert step.ok and problem is None and "1/3" in step.observed


def test_judge_port_reject_rule_means_no_endpoints():
    step, problem = _judge_port(entry([], no_endpoints=True), set(), "w1")
    assert not step.ok and problem == "no-endpoints"


def test_judge_port_stale_endpoints():
    step, problem = _judge_port(entry([("10.244.1.2", 1.0)]), {"10.244.1.9"}, "w1")
    assert not step.ok and problem == "stale" and "10.244.1.9" in step.observed


def test_judge_port_unfair_split():
    step, problem = _judge_port(entry([("10.244.1.2", 0.9), ("10.244.1.3", 0.1)]), {"10.244.1.2", "10.244.1.3"}, "w1")
    assert not step.ok and problem == "unfair"
