"""Cilium's HTTP policy as the workload agent enforces it, in real namespaces: a request an HTTP
rule denies gets the proxy's 403 "Access denied" at once, while an L3/L4 drop is silence.

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

from agent_nets import B_IP, C_IP, SERVER_B, SERVER_C, agent_state, router_nets  # noqa: E402

from labkit.model.ciliuml7 import L7_DENIAL  # noqa: E402
from labkit.sandbox.agent.client import agent_command, start_agent  # noqa: E402
from labkit.sandbox.netns import run_in_netns  # noqa: E402
from labkit.sandbox.probe import probe  # noqa: E402


@pytest.fixture
def nets():
    with router_nets() as names:
        yield names


@pytest.fixture
def state_dir(tmp_path: Path):
    with agent_state(tmp_path) as path:
        yield path


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

    # the denied requests never reached the pod: its log holds only the allowed one, which
    # agnhost netexec's rootHandler logs as "GET /" whatever the method and path
    log = json.loads(agent_command(str(state_dir), "logs default/deathstar-1"))
    assert len([line for line in log if line.endswith(" GET /")]) == 1, log

    # a reload without the grant takes the proxy out of the path
    spec["l7_grants"] = []
    (state_dir / "workloads.json").write_text(json.dumps(spec))
    assert agent_command(str(state_dir), "reload") == "ok 1"
    assert curl(b, "-X", "PUT", f"http://{SERVER_B}/v1/exhaust-port")[0] == "200"
