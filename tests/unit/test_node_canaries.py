"""The canary and hint chains kubelet and kube-proxy keep on every real node, in the tables a
learner's ``iptables-save`` shows."""

from __future__ import annotations

import re

from labkit.sandbox import iptables
from labkit.sandbox.proxyrules import render_proxy_rules

NODE = {
    "kind": "Node",
    "metadata": {"name": "lab-worker"},
    "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.3"}]},
}


def declared(text: str) -> dict[str, set[str]]:
    """Each table's declared user chains in an iptables-restore text."""
    chains: dict[str, set[str]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            chains[table] = set()
        elif m := re.match(r":(\S+) - ", line):
            chains[table].add(m.group(1))
    return chains


def test_kubelet_keeps_the_hint_and_its_canaries():
    """pkg/kubelet/kubelet_network_linux.go: syncIPTablesRules ensures KUBE-IPTABLES-HINT in
    mangle; initNetworkUtil's iptClient.Monitor watches KUBE-KUBELET-CANARY in mangle, nat and
    filter (pkg/util/iptables/iptables.go Monitor creates the canary in each table)."""
    chains = declared(iptables.compose([iptables.kubelet_rules()]))
    assert chains["mangle"] == {"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}
    assert chains["nat"] == chains["filter"] == {"KUBE-KUBELET-CANARY"}


def test_kube_proxy_keeps_its_canary_in_mangle_nat_and_filter():
    """pkg/proxy/iptables/proxier.go NewProxier: ipt.Monitor(kubeProxyCanaryChain,
    {TableMangle, TableNAT, TableFilter}, ...); the canaries hold no rules."""
    tables = render_proxy_rules(NODE, [NODE], [], [], "10.244.0.0/16")
    for table in ("mangle", "nat", "filter"):
        assert ":KUBE-PROXY-CANARY - [0:0]" in tables[table]
        assert not any(line.startswith("-A KUBE-PROXY-CANARY") for line in tables[table])
    assert [line for line in tables["mangle"] if not line.startswith(":")] == []


def test_a_node_ruleset_holds_both_components_chains():
    """What ``iptables-save`` on a Kind node lists besides the CNI's chains: kubelet's hint and
    canaries and kube-proxy's canaries, each declared once."""
    text = iptables.compose(
        [
            iptables.kubelet_rules(),
            render_proxy_rules(NODE, [NODE], [], [], "10.244.0.0/16"),
            iptables.flannel_rules("10.244.1.0/24", "10.244.0.0/16"),
        ]
    )
    chains = declared(text)
    assert {"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"} <= chains["mangle"]
    for table in ("nat", "filter"):
        assert {"KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"} <= chains[table]
    assert text.count(":KUBE-KUBELET-CANARY - [0:0]") == 3
