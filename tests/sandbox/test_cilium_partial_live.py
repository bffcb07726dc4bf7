"""A Service applied to a Cilium lab reaches every client pod as a delta (issue 18): the other
Services' socket-LB rules in each pod keep their packet counters (lab ``tci``)."""

from __future__ import annotations

import re

SERVICES = 12


def _service(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def _name(doc: dict[str, object]) -> str:
    meta = doc["metadata"]
    assert isinstance(meta, dict)
    return str(meta["name"])


def _counted(lab, pod: str, needle: str) -> list[tuple[int, str]]:
    """The nat rules naming ``needle`` in a pod's namespace, with their packet counters."""
    saved = lab.exec(pod, ["iptables-save", "-c", "-t", "nat"], namespace="demo").stdout
    return [
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^\[(\d+):\d+\] (-A .*)$", saved, re.M)
        if needle in m.group(2)
    ]


def test_one_more_service_leaves_the_other_services_counters(cilium_lab):
    """kube-proxy's partial sync (pkg/proxy/iptables/proxier.go ``syncProxyRules``; its test
    ``TestSyncProxyRulesRepeated``) rewrites only the chains of Services that changed, so the
    others keep their counters; here the same holds inside each client pod for Cilium's socket
    LB: after probing ``many-0`` and applying one more Service, ``many-0``'s frontend and spread
    rules still count the probes, in this pod and in a pod on another node, and the new Service
    is served at once."""
    lab = cilium_lab
    many = [_service(f"many-{i}") for i in range(SERVICES)]
    extra = _service("many-extra")
    lab.apply(many)
    try:
        ip = lab.get("Service", "many-0", namespace="demo")[0]["spec"]["clusterIP"]
        for pod in ("client-a", "client-b"):
            for _ in range(3):
                probe = lab.probe(f"demo/{pod}", ip, 80)
                assert probe.outcome == "connected", probe.detail
        before = {pod: _counted(lab, pod, "demo/many-0") for pod in ("client-a", "client-b")}
        for rules in before.values():
            assert any(packets for packets, rule in rules if "-A CILIUM_SOCK_LB" in rule)
        lab.apply([extra])
        for pod, rules in before.items():
            assert _counted(lab, pod, "demo/many-0") == rules, pod
        new_ip = lab.get("Service", "many-extra", namespace="demo")[0]["spec"]["clusterIP"]
        assert lab.probe("demo/client-b", new_ip, 80).outcome == "connected"
    finally:
        names = {s["metadata"]["name"] for s in lab.get("Service", namespace="demo")}
        lab.delete([doc for doc in (*many, extra) if _name(doc) in names])
