"""The sandbox's kube-proxy rules against upstream's whole expected dump, byte for byte, both
made canonical by the kernel: each is loaded with ``iptables-restore`` into a scratch network
namespace and read back with ``iptables-save``."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from golden_rules import (
    declared_chains,
    dump,
    saved_rules,
    within,
    without_nfacct,
    without_random_fully,
)

from labkit.sandbox.netns import socket_in_netns
from labkit.sandbox.proxyrules import render_proxy_rules, restore_text

DATA = Path(__file__).parents[1] / "unit" / "data" / "kubeproxy"
UPSTREAM = DATA / "upstream-overall-iptables-rules.txt"
OBJECTS = DATA / "upstream-overall-objects.json"
# The nfacct counters upstream's NewFakeProxier has (nfAcctCounters; pkg/proxy/metrics names).
NFACCT_COUNTERS = ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")
NETLINK_NETFILTER = 12
NFNL_SUBSYS_ACCT, NFNL_MSG_ACCT_NEW, NFACCT_NAME = 7, 0, 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLMSG_ERROR = 0x1, 0x4, 0x400, 2


@contextmanager
def scratch_netns() -> Iterator[str]:
    """A network namespace of this test's own, always deleted afterwards."""
    name = f"lk-golden-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def add_nfacct_counters(netns: str, names: tuple[str, ...]) -> None:
    """Create nfacct objects in ``netns`` (nfnetlink_acct NFNL_MSG_ACCT_NEW), as kube-proxy's
    nfacct client does before it writes rules that ``-m nfacct`` match on them."""
    with socket_in_netns(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.bind((0, 0))
        for seq, name in enumerate(names, 1):
            raw = name.encode() + b"\0"
            attr = struct.pack("=HH", 4 + len(raw), NFACCT_NAME) + raw
            attr += b"\0" * (-len(attr) % 4)
            body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0) + attr
            flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
            msg_type = NFNL_SUBSYS_ACCT << 8 | NFNL_MSG_ACCT_NEW
            sock.send(struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body)
            reply = sock.recv(4096)
            kind = struct.unpack("=H", reply[4:6])[0]
            error = struct.unpack("=i", reply[16:20])[0]
            assert (kind, error) == (NLMSG_ERROR, 0), f"nfacct {name}: errno {-error}"


def kernel_canonical(restore_input: str, nfacct: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """``restore_input`` as the kernel keeps it: loaded into a scratch namespace, then saved."""
    with scratch_netns() as netns:
        add_nfacct_counters(netns, nfacct)
        exec_in = ["ip", "netns", "exec", netns]
        subprocess.run([*exec_in, "iptables-restore"], input=restore_input, text=True, check=True)
        saved = subprocess.run(
            [*exec_in, "iptables-save"], capture_output=True, text=True, check=True
        ).stdout
    return saved_rules(saved)


def sandbox_rendering() -> str:
    """The sandbox's kube-proxy rules for upstream's Services and EndpointSlices, on the fake
    proxier's node (test-node, 192.168.0.2) with its cluster CIDR (10.0.0.0/8)."""
    objects = json.loads(OBJECTS.read_text())
    node = objects["node"]
    tables = render_proxy_rules(
        node, [node], objects["services"], objects["endpointSlices"], objects["clusterCIDR"]
    )
    return restore_text(tables)


def test_sandbox_rules_equal_upstreams_overall_iptables_rules():
    """kubernetes pkg/proxy/iptables/proxier_test.go TestOverallIPTablesRules: the six Services
    (ClusterIP; LoadBalancer Local with externalIP and healthCheckNodePort; NodePort; NodePort
    with externalIP and a local endpoint; LoadBalancer Cluster with sourceRanges and ClientIP
    affinity; ClusterIP without endpoints) give, chain for chain and rule for rule, the dump
    syncProxyRules writes (``fp.iptablesData``), once the kernel has made both canonical.

    Upstream's dump covers the chains kube-proxy restores; the built-in chains' jumps
    (iptablesJumpChains, written with EnsureRule), the KUBE-PROXY-CANARY chains (the Monitor's)
    and the mangle table are outside it and left out of the comparison. Two documented
    differences of the fake proxier from a node, applied before comparing:
    - upstream's NewFakeProxier has nfacct counters (nfAcctCounters), so its KUBE-FORWARD
      INVALID drop carries ``-m nfacct --nfacct-name ct_state_invalid_dropped_pkts`` and each
      NodePort gets a ``-d 127.0.0.0/8 ... -m nfacct --nfacct-name localhost_nps_accepted_pkts``
      rule. A Kind node has both counters too (PR #125015 shows them with ``nfacct list`` on
      kind-worker); the sandbox creates none and writes the rules as proxier.go does without
      them. No verdict changes: an nfacct match always matches (it only counts), and each
      localhost rule jumps where the NodePort rule after it jumps;
    - upstream's fake iptables has no ``--random-fully`` (HasRandomFully false), a node's
      iptables has it, and proxier.go adds it to KUBE-POSTROUTING's MASQUERADE; the sandbox
      does so too."""
    upstream_text = UPSTREAM.read_text()
    ours_text = sandbox_rendering()
    scope = declared_chains(saved_rules(upstream_text))
    upstream = within(kernel_canonical(upstream_text, NFACCT_COUNTERS), scope)
    ours_saved = kernel_canonical(ours_text)

    # The sandbox's text is already what iptables-save prints: the whole dump, byte for byte.
    assert dump(saved_rules(ours_text)) == dump(ours_saved)

    ours = within(ours_saved, scope)
    nfacct_lines = [line for lines in upstream.values() for line in lines if "-m nfacct" in line]
    assert len(nfacct_lines) == 4, nfacct_lines
    random_fully = [line for lines in ours.values() for line in lines if "--random-fully" in line]
    assert len(random_fully) == 1, random_fully
    expected = {table: without_nfacct(lines) for table, lines in upstream.items()}
    got = {table: without_random_fully(lines) for table, lines in ours.items()}
    assert dump(got) == dump(expected)
