"""`labkit hubble observe`: hubble's command line, the flows it picks and prints, following, the
Kind path through the real hubble in a Cilium agent pod, and a ring read with the lab's pods."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from labkit import hubble
from labkit.cli import main
from labkit.errors import LabError
from labkit.hubble import DEFAULT_LAST, HubbleUsage, Observe, observe, parse_observe, render
from labkit.model.hubble import Flow, FlowFilter, PacketRecord, Peer, identity_labels, identity_of
from labkit.sandbox.flowring import FlowRing, lab_flows


def flow(n: int, verdict: str = "FORWARDED", pod: str = "client") -> Flow:
    src = Peer("10.244.1.5", 40000 + n, "default", pod, 300)
    dst = Peer("10.244.2.7", 80, "default", "web-1", 301)
    return Flow(
        float(n),
        "kind-worker",
        src,
        dst,
        "TCP",
        2,
        verdict,
        None if verdict == "DROPPED" else False,
    )


def test_observe_flags_as_hubble_spells_them() -> None:
    """cilium/hubble ``cmd/observe``: ``--pod``, ``--namespace``/``-n``, ``--verdict``,
    ``--protocol``, ``--port``, ``--last`` (default 20 without ``-f``) and ``-f``/``--follow``,
    as ``--flag value`` or ``--flag=value``."""
    ask = parse_observe(
        [
            "observe",
            "--pod",
            "web",
            "-n",
            "shop",
            "--verdict=dropped",
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--last",
            "5",
            "-f",
        ]
    )
    assert ask == Observe(FlowFilter("web", "shop", "DROPPED", "tcp", 80), 5, True)
    assert parse_observe(["observe"]) == Observe(FlowFilter(), DEFAULT_LAST, False)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "a command is required"),
        (["status"], 'unknown command "status" for "hubble"'),
        (["observe", "--since", "1m"], "unknown flag: --since"),
        (["observe", "xwing"], 'unknown command "xwing" for "hubble observe"'),
        (["observe", "--pod"], "flag needs an argument: --pod"),
        (["observe", "--verdict", "AUDIT"], 'invalid argument "AUDIT" for "--verdict" flag'),
        (["observe", "--port", "http"], 'invalid argument "http" for "--port" flag'),
        (["observe", "--port", "70000"], 'invalid argument "70000" for "--port" flag'),
    ],
)
def test_refusals_in_cobras_words(argv: list[str], words: str) -> None:
    """cobra's errors (``unknown flag: --x``, ``flag needs an argument``, ``invalid argument "v"
    for "--f" flag``), which hubble prints after ``Error:``."""
    with pytest.raises(HubbleUsage, match=words):
        parse_observe(argv)


def test_render_keeps_the_newest_matching_flows() -> None:
    flows = [flow(n, "DROPPED" if n % 2 else "FORWARDED") for n in range(30)]
    lines = render(flows, Observe(FlowFilter(), 20, False))
    assert len(lines) == 20 and "00:00:10" in lines[0] and "00:00:29" in lines[-1]
    dropped = render(flows, Observe(FlowFilter(verdict="DROPPED"), 3, False))
    assert len(dropped) == 3 and all("<>" in line and "DROPPED" in line for line in dropped)


def test_follow_prints_new_flows_until_interrupted() -> None:
    """``-f``: the flows so far, then each new one that passes the filters, until Ctrl-C."""
    batches = [[flow(1)], [flow(1), flow(2), flow(3, pod="other")], [flow(1), flow(2), flow(3)]]
    reads = iter(batches)
    ticks = iter([None, None])

    def sleep(_: float) -> None:
        if next(ticks, "stop") == "stop":
            raise KeyboardInterrupt

    out: list[str] = []
    ask = Observe(FlowFilter(pod="client"), 20, True)
    assert observe(lambda: next(reads), ask, out.append, sleep) == 0
    assert len(out) == 2 and ":40001 " in out[0] and ":40002 " in out[1]


def test_the_sandbox_reader_needs_a_cilium_sandbox_lab(fakes) -> None:
    with pytest.raises(LabError, match="keeps no flow ring"):
        hubble.sandbox_reader(fakes.FakeLab({}))


def test_kind_runs_the_real_hubble_in_a_cilium_agent_pod(monkeypatch, tmp_path: Path) -> None:
    """On Kind the flows come from Cilium's own Hubble: ``kubectl -n kube-system exec ds/cilium
    -c cilium-agent -- hubble observe ...`` (Cilium's docs, "Inspecting Network Flows with the
    CLI", run the same binary in the agent pod)."""
    seen: list[list[str]] = []
    monkeypatch.setattr(hubble, "find_backends", lambda name: ["kind"])
    monkeypatch.setattr("labkit.kind.tools.find", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda argv, check: seen.append(argv) or subprocess.CompletedProcess(argv, 0),
    )
    assert hubble.run("netlab", ["observe", "--verdict", "DROPPED"]) == 0
    (argv,) = seen
    assert argv[0] == "/usr/bin/kubectl" and "--context" in argv and "kind-netlab" in argv
    assert argv[-9:] == [
        "exec",
        "ds/cilium",
        "-c",
        "cilium-agent",
        "--",
        "hubble",
        "observe",
        "--verdict",
        "DROPPED",
    ]


def test_cli_names_a_missing_lab_and_a_bad_flag(monkeypatch, capsys) -> None:
    monkeypatch.setattr(hubble, "find_backends", lambda name: [])
    assert main(["hubble", "--name", "nolab", "observe"]) == 1
    assert "No running lab named 'nolab'" in capsys.readouterr().err
    monkeypatch.setattr(hubble, "find_backends", lambda name: ["sandbox"])
    assert main(["hubble", "observe", "--since", "5m"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: unknown flag: --since\n") and "--verdict" in err


def test_lab_flows_look_up_pods_and_nodes_per_observing_node(tmp_path: Path) -> None:
    """Hubble names an address by the pod that holds it (with its labels' identity), a node's
    own address as ``(host)`` and another node's as ``(remote-node)``
    (``pkg/identity/numericidentity.go``); host-network pods share their node's address."""
    pods = [
        {
            "metadata": {"namespace": "shop", "name": "web-1", "labels": {"app": "web"}},
            "spec": {},
            "status": {"podIP": "10.244.1.5"},
        },
        {
            "metadata": {"namespace": "kube-system", "name": "cilium-x"},
            "spec": {"hostNetwork": True},
            "status": {"podIP": "172.18.0.3"},
        },
    ]
    nodes = [
        {"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
        for n, ip in (("w1", "172.18.0.3"), ("w2", "172.18.0.4"))
    ]
    FlowRing(str(tmp_path)).append(
        [
            PacketRecord(1.0, "w1", 6, "172.18.0.3", "10.244.1.5", 5000, 80, 2, "F"),
            PacketRecord(2.0, "w2", 6, "172.18.0.3", "10.244.1.5", 5001, 80, 2, "F"),
        ]
    )
    first, second = lab_flows(str(tmp_path), pods, nodes)
    web = identity_of(identity_labels("shop", {"app": "web"}, ""))
    assert first.src.identity_words() == "(host)" and first.src.host() == "172.18.0.3:5000"
    assert second.src.identity_words() == "(remote-node)"
    assert first.dst == Peer("10.244.1.5", 80, "shop", "web-1", web)
