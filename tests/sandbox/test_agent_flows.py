"""Hubble-style flows from the data plane, in real namespaces: NFLOG rules log each new
connection and each policy drop, the workload agent reads them into the lab's flow ring, and the
flows printed match the probes made, in number and verdict.

Topology (``lk-t<random>-*``, nothing in the host's namespace): ``r`` forwards between ``b``
(10.98.1.2, the policy's peer) and ``c`` (10.98.2.2), and holds the server pod's port on
10.98.1.1 and 10.98.2.1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

import time  # noqa: E402
from datetime import timezone  # noqa: E402

from agent_nets import B_IP, C_IP, SERVER_B, SERVER_C, agent_state, router_nets  # noqa: E402

from labkit.model.hubble import (  # noqa: E402
    FLOW_GROUP,
    FlowFilter,
    Peer,
    compact_line,
    flow_of,
    identity_labels,
    identity_of,
    nflog_prefix,
)
from labkit.sandbox.agent.client import agent_command, start_agent  # noqa: E402
from labkit.sandbox.flowring import read_records  # noqa: E402
from labkit.sandbox.netns import run_in_netns  # noqa: E402
from labkit.sandbox.probe import probe_many  # noqa: E402


@pytest.fixture
def nets():
    with router_nets() as names:
        yield names


@pytest.fixture
def state_dir(tmp_path: Path):
    with agent_state(tmp_path) as path:
        yield path


def peer(ip: str, pod: str, app: str) -> Peer:
    labels = identity_labels("default", {"class": app, "org": "empire"}, "default")
    return Peer(ip, 0, "default", pod, identity_of(labels))


def nflog(netns: str, *match: str, prefix: str) -> None:
    rule = [*match, "-j", "NFLOG", "--nflog-group", str(FLOW_GROUP), "--nflog-prefix", prefix]
    assert run_in_netns(netns, ["iptables", "-A", "INPUT", *rule]).ok


def test_flows_match_the_probes_made(nets, state_dir: Path) -> None:
    """cilium/cilium ``hubble/pkg/printer/printer.go`` ``WriteProtoFlow`` (compact): a delivered
    SYN prints ``src (ID:n) -> dst (ID:n) to-endpoint FORWARDED (TCP Flags: SYN)``, a policy
    drop ``src (ID:n) <> dst (ID:n) Policy denied DROPPED (TCP Flags: SYN)``; Cilium's docs
    (``observability/hubble/hubble-cli.rst``): ``hubble observe --verdict DROPPED`` and
    ``--pod`` select them. Three probes that connect and two that are dropped give exactly three
    forwarded and two dropped flows, each naming the policy that dropped it."""
    r, b, c = nets
    spec = {
        "workloads": [
            {
                "namespace": "default",
                "name": "deathstar-1",
                "netns": r,
                "ip": SERVER_B,
                "role": "netexec",
                "ports": [{"port": 80, "protocol": "TCP"}],
            }
        ],
        "flow_sources": [{"netns": r, "node": "kind-worker"}],
    }
    (state_dir / "workloads.json").write_text(json.dumps(spec))
    start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 1"
    denied = nflog_prefix("DROPPED", "INGRESS", ["default/deny-xwing"])
    syn = ["-p", "tcp", "--dport", "80", "--syn"]
    nflog(r, "-s", C_IP, *syn, prefix=denied)
    assert run_in_netns(r, ["iptables", "-A", "INPUT", "-s", C_IP, "-j", "DROP"]).ok
    nflog(r, *syn, prefix=nflog_prefix("FORWARDED"))

    made = probe_many(
        [(b, SERVER_B, 80, "TCP", "default/tiefighter", "")] * 3
        + [(c, SERVER_C, 80, "TCP", "default/xwing", "")] * 2,
        timeout=0.5,
    )
    assert [p.outcome for p in made] == ["connected"] * 3 + ["timeout"] * 2
    deadline = time.monotonic() + 3
    while len(read_records(str(state_dir))) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)

    peers = {
        B_IP: peer(B_IP, "tiefighter", "tiefighter"),
        C_IP: peer(C_IP, "xwing", "xwing"),
        SERVER_B: peer(SERVER_B, "deathstar-1", "deathstar"),
        SERVER_C: peer(SERVER_C, "deathstar-1", "deathstar"),
    }
    flows = [flow_of(record, peers) for record in read_records(str(state_dir))]
    assert len(flows) == 5 and {f.node for f in flows} == {"kind-worker"}
    lines = [compact_line(f, timezone.utc).split(": ", 1)[1] for f in flows]
    ids = {name: p.identity_words() for name, p in peers.items()}
    forwarded = [line for line in lines if "FORWARDED" in line]
    dropped = [line for line in lines if "DROPPED" in line]
    assert len(forwarded) == 3 and len(dropped) == 2
    for line in forwarded:
        assert line.startswith("default/tiefighter:")
        assert line.endswith(
            f"{ids[B_IP]} -> default/deathstar-1:80 {ids[SERVER_B]} "
            "to-endpoint FORWARDED (TCP Flags: SYN)"
        )
    for line in dropped:
        assert line.startswith("default/xwing:")
        assert line.endswith(
            f"{ids[C_IP]} <> default/deathstar-1:80 {ids[SERVER_C]} Policy denied DROPPED "
            "(TCP Flags: SYN; denied by default/deny-xwing)"
        )
    assert ids[B_IP] != ids[C_IP] and ids[B_IP].startswith("(ID:")
    assert sum(FlowFilter(verdict="DROPPED").matches(f) for f in flows) == 2
    assert sum(FlowFilter(pod="tiefighter").matches(f) for f in flows) == 3
    assert sum(FlowFilter(pod="default/deathstar").matches(f) for f in flows) == 5
    assert sum(FlowFilter(port=80, protocol="udp").matches(f) for f in flows) == 0

    # the reader goes with its source, and the ring keeps what it has
    spec["flow_sources"] = []
    (state_dir / "workloads.json").write_text(json.dumps(spec))
    assert agent_command(str(state_dir), "reload") == "ok 1"
    probe_many([(b, SERVER_B, 80, "TCP", "default/tiefighter", "")], timeout=0.5)
    time.sleep(0.2)
    assert len(read_records(str(state_dir))) == 5


def test_hubble_observe_is_ciliums(calico_lab) -> None:
    """Hubble ships with Cilium (Cilium's docs, "Setting up Hubble Observability"): on a calico
    lab ``labkit hubble observe`` names the CNI and how to get a Cilium lab."""
    from labkit.errors import LabError
    from labkit.hubble import sandbox_reader

    with pytest.raises(LabError, match="Hubble is part of Cilium, and lab 'tc' runs calico"):
        sandbox_reader(calico_lab)
