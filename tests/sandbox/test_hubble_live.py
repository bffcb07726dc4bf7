"""Hubble on a sandbox Cilium lab: the flows ``labkit hubble observe`` prints come from each pod's
flow log, one ``to-endpoint FORWARDED`` flow per connection made (none for one a policy dropped,
which shows only its DROPPED flow), and cilium-dbg answers in the lab's own agent pods
(``ds/cilium``)."""

from __future__ import annotations

import os
import re
import time
from datetime import timezone

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

from labkit.hubble import Observe, render, sandbox_reader  # noqa: E402
from labkit.lab import ObjectRef  # noqa: E402
from labkit.model.hubble import FlowFilter, compact_line  # noqa: E402


def test_flows_of_a_cilium_lab_match_the_connections_made(cilium_lab) -> None:
    """cilium/cilium ``hubble/pkg/printer/printer.go`` (compact): a connection delivered to a
    pod prints ``demo/client-a:PORT (ID:n) -> demo/web-...:8080 (ID:m) to-endpoint FORWARDED
    (TCP Flags: SYN)``; Cilium's docs (``observability/hubble/hubble-cli.rst``) filter with
    ``--pod`` and ``--port``. Four probes, four flows, each naming both pods and identities."""
    web = cilium_lab.get("pods", namespace="demo", selector="app=web")[0]
    web_name, web_ip = web["metadata"]["name"], web["status"]["podIP"]
    read = sandbox_reader(cilium_lab)
    before = len(read())
    probes = cilium_lab.probe_many([("demo/client-a", web_ip, 8080)] * 4)
    assert [p.outcome for p in probes] == ["connected"] * 4
    # each probe's source port, as the server saw it (agnhost's /clientip answer)
    ports = {int(re.search(r"saw the client as [0-9.]+:(\d+)", p.detail)[1]) for p in probes}
    assert len(ports) == 4
    ask = FlowFilter(pod="demo/client-a", port=8080)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        flows = [f for f in read()[before:] if ask.matches(f) and f.src.port in ports]
        if len(flows) >= 4:
            break
        time.sleep(0.05)
    assert sorted(f.src.port for f in flows) == sorted(ports)
    assert all(f.verdict == "FORWARDED" for f in flows)
    for flow in flows:
        line = compact_line(flow, timezone.utc).split(": ", 1)[1]
        assert line.startswith("demo/client-a:") and " -> " in line
        assert f"demo/{web_name}:8080 (ID:" in line
        assert line.endswith("to-endpoint FORWARDED (TCP Flags: SYN)")
    assert len(render(flows, Observe(FlowFilter(verdict="DROPPED"), 20, False))) == 0


def test_cilium_dbg_answers_in_the_labs_agent_pods(cilium_lab) -> None:
    """``kubectl -n kube-system exec ds/cilium -- cilium-dbg service list`` (Cilium's docs,
    ``kubeproxy-free.rst``): the lab's own agent pod answers with its Services' frontends."""
    agent = cilium_lab.get("pods", namespace="kube-system", selector="k8s-app=cilium")[0]
    ref = agent["metadata"]["name"]
    listed = cilium_lab.exec(ref, ["cilium-dbg", "service", "list"], namespace="kube-system")
    web = cilium_lab.get("services", "web", namespace="demo")[0]
    assert listed.ok and f"{web['spec']['clusterIP']}:80/TCP" in listed.stdout
    status = cilium_lab.exec(ref, ["cilium-dbg", "status"], namespace="kube-system").stdout
    assert "KubeProxyReplacement:    True" in status


def test_a_dropped_syn_shows_only_its_dropped_flow(cilium_lab) -> None:
    """cilium/cilium ``bpf/bpf_lxc.c`` ``ipv4_policy``: a new connection's policy verdict comes
    first; a denial returns the drop (``send_drop_notify``, Hubble's ``Policy denied DROPPED``)
    and only an allowed packet reaches ``send_trace_notify4(ctx, TRACE_TO_LXC, ...)``, the
    ``to-endpoint FORWARDED`` flow. One probe a CiliumNetworkPolicy drops: one DROPPED flow
    naming that policy, no FORWARDED one; after the policy is gone the same probe is FORWARDED."""
    dashboard = cilium_lab.get("pods", namespace="demo", selector="app=dashboard")[0]
    name, address = dashboard["metadata"]["name"], dashboard["status"]["podIP"]
    policy = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "dashboard-from-nobody", "namespace": "demo"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "dashboard"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"role": "nobody"}}]}],
        },
    }
    read = sandbox_reader(cilium_lab)

    def flows_after(start: int, wanted: int) -> list:
        ask = FlowFilter(pod=f"demo/{name}", port=8080)
        deadline = time.monotonic() + 3
        while True:
            flows = [f for f in read()[start:] if ask.matches(f) and f.dst.pod == name]
            if len(flows) >= wanted or time.monotonic() > deadline:
                time.sleep(0.3)  # a FORWARDED record logged late would show now
                return [f for f in read()[start:] if ask.matches(f) and f.dst.pod == name]
            time.sleep(0.05)

    cilium_lab.apply([policy])
    try:
        before = len(read())
        # under one SYN retransmission timeout (1 s), so exactly one SYN is sent
        blocked = cilium_lab.probe("demo/client-a", address, 8080, timeout=0.5)
        assert not blocked.ok, blocked
        flows = flows_after(before, 1)
        assert [(f.verdict, f.event, f.src.pod) for f in flows] == [
            ("DROPPED", "Policy denied", "client-a")
        ], [compact_line(f, timezone.utc) for f in flows]
        assert flows[0].policies == ("demo/dashboard-from-nobody",)
    finally:
        cilium_lab.delete([ObjectRef("CiliumNetworkPolicy", "dashboard-from-nobody", "demo")])
    before = len(read())
    assert cilium_lab.probe("demo/client-a", address, 8080).ok
    flows = flows_after(before, 1)
    assert [(f.verdict, f.event) for f in flows] == [("FORWARDED", "to-endpoint")], flows
