"""Issue 18 on a real sandbox lab: a change costs what changed. Applying one Service to a lab
with 200 Services loads only that Service's chains (and KUBE-SERVICES) with ``iptables-restore
--noflush``; the other Services' chains keep their rules and packet counters. A full sync after a
crash rewrites everything. Lab ``tpsync``, Calico."""

from __future__ import annotations

import os
import re

import pytest

from labkit.sandbox import iptables

pytestmark = pytest.mark.sandbox
LAB = "tpsync"
NS = "sync"
WORKER = f"{LAB}-worker"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"


def _service(index: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{index}", "namespace": NS},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def _workload() -> list[dict]:
    labels = {"app": "web"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": AGNHOST,
                                "args": ["netexec", "--http-port=8080"],
                                "ports": [{"containerPort": 8080}],
                            }
                        ]
                    },
                },
            },
        },
        *(_service(i) for i in range(200)),
    ]


@pytest.fixture(scope="module")
def sync_lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "calico", quiet=True)
    try:
        lab.apply(_workload())
        yield lab
    finally:
        backend.down(LAB)


def _chains(saved: str) -> dict[str, list[str]]:
    """``iptables-save -c`` of the nat table as rule lines (with counters) per chain."""
    chains: dict[str, list[str]] = {}
    for line in saved.splitlines():
        match = re.match(r"(\[\d+:\d+\] )?-A (\S+) ", line)
        if match:
            chains.setdefault(match.group(2), []).append(line)
    return chains


def _rules(lines: list[str]) -> list[str]:
    """Rule lines without their ``[packets:bytes]`` counters."""
    return [re.sub(r"^\[\d+:\d+\] ", "", line) for line in lines]


def _svc_chain(chains: dict[str, list[str]], name: str) -> str:
    return next(
        line.split()[-1]
        for line in chains["KUBE-SERVICES"]
        if f'"{NS}/{name} cluster IP"' in line and "-j KUBE-SVC-" in line
    )


def test_one_more_service_loads_only_its_chains_and_keeps_the_others_counters(
    sync_lab, monkeypatch
):
    """kube-proxy pkg/proxy/iptables/proxier.go syncProxyRules (partial sync since 1.28): only
    the changed Service's chains and KUBE-SERVICES are written, with ``iptables-restore
    --noflush``; every other chain keeps its rules and its packet counters."""
    client = sync_lab.get("pods", namespace=NS)[0]["metadata"]["name"]
    ip = sync_lab.get("svc", "svc-7", namespace=NS)[0]["spec"]["clusterIP"]
    probes = sync_lab.probe_many([(f"{NS}/{client}", ip, 80)] * 10, timeout=2.0)
    assert all(p.ok for p in probes), [p.detail for p in probes]
    before = _chains(sync_lab.node_exec(WORKER, "iptables-save -c -t nat").stdout)
    counted = _svc_chain(before, "svc-7")
    assert sum(int(re.match(r"\[(\d+):", r).group(1)) for r in before[counted]) >= 10 / 3

    loads: list[tuple[str, str, bool]] = []
    real = iptables.restore

    def recording(netns, text, timeout=30.0, noflush=False):
        loads.append((netns, text, noflush))
        return real(netns, text, timeout, noflush)

    monkeypatch.setattr(iptables, "restore", recording)
    sync_lab.apply([_service(200)])
    monkeypatch.undo()

    after = _chains(sync_lab.node_exec(WORKER, "iptables-save -c -t nat").stdout)
    new = {c for c, rules in after.items() if c not in before}
    assert _svc_chain(after, "svc-200") in new and len(new) == 3  # KUBE-SVC and 2 KUBE-SEP
    # rules compared without counters: a built-in chain's count moves with any new connection
    assert {c for c in before if _rules(before[c]) != _rules(after.get(c, []))} == {"KUBE-SERVICES"}
    assert after[counted] == before[counted], "svc-7's counters were not reset"

    assert len(loads) == 3 and all(noflush for _, _, noflush in loads)
    for _, text, _ in loads:
        declared = {line.split()[0][1:] for line in text.splitlines() if line.startswith(":")}
        assert declared == {"KUBE-SERVICES", *new}
        assert sum(line.startswith("-A ") for line in text.splitlines()) < 250


def test_a_change_that_touches_no_rule_loads_nothing(sync_lab, monkeypatch):
    """kube-proxy skips iptables-restore when no chain changed (proxier.go syncProxyRules):
    applying a Service again, unchanged, loads nothing on any node."""
    loads: list[str] = []
    monkeypatch.setattr(iptables, "restore", lambda netns, *a, **k: loads.append(netns))
    sync_lab.apply([_service(7)])
    monkeypatch.undo()
    assert loads == []


def test_a_new_pod_loads_only_its_own_nodes_workload_chains(sync_lab, monkeypatch):
    """Felix programs a workload endpoint's chains (cali-tw-/cali-fw-<iface> and the dispatch
    chains: felix/rules/endpoints.go, dispatch.go) on its own node when the CNI creates it; a pod
    no Service selects changes no kube-proxy chain, and no other node's rules."""
    loads: list[tuple[str, str, bool]] = []
    real = iptables.restore

    def recording(netns, text, timeout=30.0, noflush=False):
        loads.append((netns, text, noflush))
        return real(netns, text, timeout, noflush)

    monkeypatch.setattr(iptables, "restore", recording)
    sync_lab.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "loner", "namespace": NS, "labels": {"app": "loner"}},
                "spec": {"nodeName": WORKER, "containers": [{"name": "c", "image": AGNHOST}]},
            }
        ]
    )
    monkeypatch.undo()
    assert [(netns, noflush) for netns, _, noflush in loads] == [(f"lk-{LAB}-w1", True)]
    declared = {line.split()[0][1:] for line in loads[0][1].splitlines() if line[:1] == ":"}
    assert declared and all(name.startswith("cali-") for name in declared), declared
    assert sync_lab.get("pod", "loner", namespace=NS)[0]["status"]["phase"] == "Running"


def test_after_a_crash_heal_loads_every_node_whole(sync_lab, monkeypatch):
    """kube-proxy falls back to a full sync after a failed or interrupted sync (proxier.go:
    ``needFullSync`` set when a restore fails); here a command killed midway leaves a pending
    change, and heal rewrites every node's ruleset whole."""
    from labkit.sandbox import naming
    from labkit.sandbox.state import begin_change

    begin_change(naming.state_dir(LAB), [f"{NS}/loner"])
    loads: list[bool] = []
    real = iptables.restore

    def recording(netns, text, timeout=30.0, noflush=False):
        loads.append(noflush)
        return real(netns, text, timeout, noflush)

    monkeypatch.setattr(iptables, "restore", recording)
    sync_lab.heal()
    monkeypatch.undo()
    assert loads == [False, False, False]
    rules = sync_lab.node_exec(WORKER, "iptables-save -t nat").stdout
    assert rules.count("-A KUBE-SERVICES") >= 201


def test_a_partial_sync_rewrites_a_built_in_chain_without_doubling_it(sync_lab):
    """A host port adds jumps to nat PREROUTING, OUTPUT and POSTROUTING (the CNI portmap
    plugin's CNI-HOSTPORT-* chains); removing it rewrites those built-in chains and deletes the
    CNI-HOSTPORT chains in one ``iptables-restore --noflush``. iptables-restore(8) does not flush
    a built-in chain it sees declared under --noflush, so the sync flushes it with ``-F``: the
    node then holds exactly the rules wanted, never a jump twice."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "porter", "namespace": NS},
        "spec": {
            "nodeName": WORKER,
            "containers": [
                {
                    "name": "c",
                    "image": AGNHOST,
                    "args": ["netexec", "--http-port=8080"],
                    "ports": [{"containerPort": 8080, "hostPort": 18080}],
                }
            ],
        },
    }

    def prerouting() -> list[str]:
        saved = sync_lab.node_exec(WORKER, "iptables-save -t nat").stdout
        return [line for line in saved.splitlines() if line.startswith("-A PREROUTING ")]

    sync_lab.apply([pod])
    assert sum("CNI-HOSTPORT-DNAT" in line for line in prerouting()) == 1
    sync_lab.delete([pod])
    rules = prerouting()
    assert not any("CNI-HOSTPORT" in line for line in rules)
    assert len(rules) == len(set(rules)), rules
