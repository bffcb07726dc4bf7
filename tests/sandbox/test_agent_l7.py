"""Cilium's HTTP policy as the workload agent enforces it, in real namespaces: a request an HTTP
rule denies gets the proxy's 403 "Access denied" at once, while an L3/L4 drop is silence.

Topology (``lk-t<random>-*``, nothing in the host's namespace): ``r`` forwards between ``b``
(10.98.1.2, the policy's peer) and ``c`` (10.98.2.2), and holds the server pod's port on
10.98.1.1 and 10.98.2.1.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

from labkit.sandbox.agent.client import agent_command, agent_pids, start_agent, stop_agent  # noqa: E402
from labkit.sandbox.netns import run_in_netns  # noqa: E402
from labkit.sandbox.probe import probe  # noqa: E402
from labkit.sandbox.probe_outcome import L7_DENIAL  # noqa: E402

SERVER_B, SERVER_C, B_IP, C_IP = "10.98.1.1", "10.98.2.1", "10.98.1.2", "10.98.2.2"


def ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@pytest.fixture
def nets():
    tag = f"lk-t{secrets.token_hex(3)}"
    names = [f"{tag}-r", f"{tag}-b", f"{tag}-c"]
    created: list[str] = []
    try:
        for ns in names:
            ip("netns", "add", ns)
            created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        r, b, c = names
        ip("-n", r, "link", "add", "vrb", "type", "veth", "peer", "name", "vbr", "netns", b)
        ip("-n", r, "link", "add", "vrc", "type", "veth", "peer", "name", "vcr", "netns", c)
        for ns, dev, addr in ((r, "vrb", SERVER_B), (r, "vrc", SERVER_C), (b, "vbr", B_IP)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        ip("-n", c, "addr", "add", f"{C_IP}/24", "dev", "vcr")
        for ns, dev in ((r, "vrb"), (r, "vrc"), (b, "vbr"), (c, "vcr")):
            ip("-n", ns, "link", "set", dev, "up")
        yield r, b, c
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def state_dir(tmp_path: Path):
    yield tmp_path
    stop_agent(str(tmp_path))
    assert agent_pids(str(tmp_path)) == []


def curl(netns: str, *argv: str) -> tuple[str, str]:
    """(status code, body) of one curl from inside ``netns``."""
    res = run_in_netns(
        netns, ["curl", "-s", "--max-time", "2", "-w", "\n%{http_code}", *argv], timeout=5
    )
    body, _, code = res.stdout.rpartition("\n")
    return code, body


def test_http_rule_denies_with_403_and_a_drop_stays_silent(nets, state_dir: Path) -> None:
    """cilium/proxy ``cilium/l7policy.cc`` ``AccessFilter::decodeHeaders``: a request no HTTP
    rule allows gets ``sendLocalReply(Forbidden, "Access denied\\r\\n")``; Cilium's docs
    (``gettingstarted/http.rst``, "Apply and Test HTTP-aware L7 Policy"): tiefighter's
    ``POST /v1/request-landing`` lands, its ``PUT /v1/exhaust-port`` gets "Access denied", and
    xwing, which no rule admits, is dropped at L3/L4 and times out."""
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
        "l7_grants": [
            {
                "netns": r,
                "port": 80,
                "policy": "default/rule1",
                "peers": [B_IP],
                "http": [{"method": "POST", "path": "/v1/request-landing"}],
            }
        ],
    }
    (state_dir / "workloads.json").write_text(json.dumps(spec))
    start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 1"

    assert curl(b, "-X", "POST", f"http://{SERVER_B}/v1/request-landing")[0] == "200"
    code, body = curl(b, "-X", "PUT", f"http://{SERVER_B}/v1/exhaust-port")
    assert (code, body.strip()) == ("403", "Access denied")
    # the L3/L4 drop Cilium's datapath makes for a peer no rule admits, as a DROP rule here
    assert run_in_netns(r, ["iptables", "-A", "INPUT", "-s", C_IP, "-j", "DROP"]).ok
    assert curl(c, "-X", "POST", f"http://{SERVER_C}/v1/request-landing")[0] == "000"

    denied = probe(b, SERVER_B, 80, src_label="default/tiefighter", resolv_conf="")
    dropped = probe(c, SERVER_C, 80, timeout=0.5, src_label="default/xwing", resolv_conf="")
    assert denied.outcome == "connected" and L7_DENIAL in denied.detail
    assert denied.http_status == 403 and dropped.http_status is None
    assert denied.served_by is None and (denied.latency_s or 1) < 0.5
    assert dropped.outcome == "timeout" and L7_DENIAL not in dropped.detail

    # the denied requests never reached the pod: its log holds only the allowed one
    log = json.loads(agent_command(str(state_dir), "logs default/deathstar-1"))
    assert [line for line in log if "/v1/" in line] == [
        line for line in log if line.endswith(" POST /v1/request-landing")
    ]
    assert len([line for line in log if "/v1/" in line]) == 1

    # a reload without the grant takes the proxy out of the path
    spec["l7_grants"] = []
    (state_dir / "workloads.json").write_text(json.dumps(spec))
    assert agent_command(str(state_dir), "reload") == "ok 1"
    assert curl(b, "-X", "PUT", f"http://{SERVER_B}/v1/exhaust-port")[0] == "200"
