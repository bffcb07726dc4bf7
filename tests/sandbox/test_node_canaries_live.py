"""A sandbox node's ``iptables-save`` lists kubelet's and kube-proxy's canary and hint chains
where a Kind node has them."""

from __future__ import annotations

import re


def test_iptables_save_on_a_node_shows_the_canaries(any_lab):
    """pkg/kubelet/kubelet_network_linux.go (KUBE-IPTABLES-HINT in mangle, KUBE-KUBELET-CANARY
    in mangle/nat/filter) and pkg/proxy/iptables/proxier.go NewProxier (KUBE-PROXY-CANARY in
    mangle/nat/filter), as read back from the node's own kernel tables."""
    saved = any_lab.node_exec(f"{any_lab.name}-worker", "iptables-save").stdout
    tables = dict(re.findall(r"^\*(\w+)\n(.*?)^COMMIT$", saved, re.M | re.S))
    assert ":KUBE-IPTABLES-HINT - [0:0]" in tables["mangle"]
    for table in ("mangle", "nat", "filter"):
        assert ":KUBE-KUBELET-CANARY - [0:0]" in tables[table], table
        # kube-proxy's canary only where kube-proxy runs (Cilium replaces it)
        proxied = any_lab.capabilities.kube_proxy_mode != "none"
        assert (":KUBE-PROXY-CANARY - [0:0]" in tables[table]) == proxied, table
