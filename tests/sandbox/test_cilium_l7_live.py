"""Cilium's HTTP-aware policy on a sandbox Cilium lab, end to end: a CiliumNetworkPolicy with
``toPorts.rules.http`` lets an admitted client's allowed request through, answers its other
requests with the proxy's 403 "Access denied", drops a client no rule admits (a timeout), and
Hubble shows that drop with the policy that decided it."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

from labkit.hubble import sandbox_reader  # noqa: E402
from labkit.model.hubble import FlowFilter, compact_line  # noqa: E402

WEB_L7 = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "web-l7", "namespace": "demo"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"role": "client"}}],
                "toPorts": [
                    {
                        "ports": [{"port": "8080", "protocol": "TCP"}],
                        "rules": {"http": [{"method": "GET", "path": "/hostname"}]},
                    }
                ],
            }
        ],
    },
}


@pytest.fixture
def l7_policy(cilium_lab):
    cilium_lab.apply([WEB_L7])
    yield WEB_L7
    cilium_lab.delete([WEB_L7])


def curl(lab, pod: str, url: str) -> tuple[str, str]:
    res = lab.exec(pod, ["curl", "-s", "-m", "2", "-w", "\n%{http_code}", url], namespace="demo")
    body, _, code = res.stdout.rpartition("\n")
    return code, body.strip()


def test_http_rule_allows_denies_with_403_and_drops_the_rest(cilium_lab, l7_policy) -> None:
    """Cilium's docs (``gettingstarted/http.rst``, "Apply and Test HTTP-aware L7 Policy"): the
    allowed request lands, another from the same client gets "Access denied" (cilium/proxy
    ``cilium/l7policy.cc``: 403 and "Access denied\\r\\n"), a client no rule admits times out;
    ``hubble observe --verdict DROPPED`` shows ``Policy denied DROPPED`` for it
    (``hubble/pkg/printer/printer.go``)."""
    web = cilium_lab.get("pods", namespace="demo", selector="app=web")[0]
    url = f"http://{web['status']['podIP']}:8080"
    assert curl(cilium_lab, "client-a", f"{url}/hostname") == ("200", web["metadata"]["name"])
    assert curl(cilium_lab, "client-a", f"{url}/echo?msg=hi") == ("403", "Access denied")

    api = cilium_lab.get("pods", namespace="demo", selector="app=api")[0]["metadata"]["name"]
    read = sandbox_reader(cilium_lab)
    before = len(read())
    dropped = cilium_lab.probe(f"demo/{api}", web["status"]["podIP"], 8080, timeout=0.5)
    assert dropped.outcome == "timeout"
    denied = cilium_lab.probe("demo/client-b", web["status"]["podIP"], 8080)
    assert denied.outcome == "connected" and denied.http_status == 403

    ask = FlowFilter(pod=f"demo/{api}", verdict="DROPPED")
    deadline = time.monotonic() + 3
    flows = []
    while not flows and time.monotonic() < deadline:
        flows = [f for f in read()[before:] if ask.matches(f)]
        time.sleep(0.05)
    assert flows, "no drop flow was logged"
    line = compact_line(flows[0])
    assert f"demo/{api}:" in line and f" <> demo/{web['metadata']['name']}:8080 (ID:" in line
    assert line.endswith("Policy denied DROPPED (TCP Flags: SYN; denied by demo/web-l7)")


FROM_API = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "web-from-api", "namespace": "demo"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 8080}]}
        ],
    },
}


def test_a_networkpolicy_beside_the_http_rule_lets_its_peer_make_any_request(
    cilium_lab, l7_policy
) -> None:
    """Cilium merges a Kubernetes NetworkPolicy (pkg/k8s/network_policy.go, ParseNetworkPolicy)
    with the CiliumNetworkPolicy's HTTP rule on the same port per peer: its L3/L4 allow becomes
    an L7 wildcard for its peers (pkg/policy/rules.go, wildcardL3L4Rules), so the api pod gets
    every path answered while client-a keeps the HTTP rule's 403; deleting the NetworkPolicy
    makes the api pod's request a drop again."""
    web = cilium_lab.get("pods", namespace="demo", selector="app=web")[0]
    url = f"http://{web['status']['podIP']}:8080"
    api = cilium_lab.get("pods", namespace="demo", selector="app=api")[0]["metadata"]["name"]
    cilium_lab.apply([FROM_API])
    try:
        assert curl(cilium_lab, api, f"{url}/echo?msg=hi") == ("200", "hi")
        assert curl(cilium_lab, api, f"{url}/hostname") == ("200", web["metadata"]["name"])
        assert curl(cilium_lab, "client-a", f"{url}/echo?msg=hi") == ("403", "Access denied")
    finally:
        cilium_lab.delete([FROM_API])
    assert curl(cilium_lab, api, f"{url}/echo?msg=hi")[0] == "000"
