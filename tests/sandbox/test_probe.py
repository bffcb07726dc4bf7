"""Probes and namespace helpers against a real topology and a real agent.

Topology (all inside lk-t<random>-* namespaces): ``a`` routes between ``b`` (10.99.1.2) and
``c`` (10.99.2.2). The agent serves netexec pods in ``b`` and ``c`` and cluster DNS in ``c``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

from labkit.errors import LabError  # noqa: E402
from labkit.sandbox.agent.client import agent_command, start_agent, stop_agent  # noqa: E402
from labkit.sandbox.netns import enter_netns, run_in_netns, socket_in_netns  # noqa: E402
from labkit.sandbox.probe import ProbeRequest, probe, probe_many, resolve  # noqa: E402

A_TO_B, A_TO_C, B_IP, C_IP = "10.99.1.1", "10.99.2.1", "10.99.1.2", "10.99.2.2"
RESOLV = (
    "search default.svc.cluster.local svc.cluster.local cluster.local\n"
    f"nameserver {A_TO_C}\noptions ndots:5\n"
)


def ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


def own_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


@pytest.fixture(scope="module")
def netns_of(tmp_path_factory):
    """Three namespaces by role (``a`` routes between ``b`` and ``c``), an agent serving web pods
    in b and c and DNS in c."""
    tag = f"lk-t{secrets.token_hex(3)}"
    a, b, c = (f"{tag}-{x}" for x in "abc")
    created: list[str] = []
    state = tmp_path_factory.mktemp("agent")
    try:
        for ns in (a, b, c):
            ip("netns", "add", ns)
            created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", a, "link", "add", "vab", "type", "veth", "peer", "name", "vba", "netns", b)
        ip("-n", a, "link", "add", "vac", "type", "veth", "peer", "name", "vca", "netns", c)
        for ns, dev, addr in (
            (a, "vab", A_TO_B),
            (a, "vac", A_TO_C),
            (b, "vba", B_IP),
            (c, "vca", C_IP),
        ):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        ip("-n", b, "route", "add", "default", "via", A_TO_B)
        ip("-n", c, "route", "add", "default", "via", A_TO_C)
        assert run_in_netns(a, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]).ok
        # c drops TCP 8081 and UDP 9001 silently, and rejects TCP 8082 as "host unreachable"
        for rule in (
            ["-p", "tcp", "--dport", "8081", "-j", "DROP"],
            ["-p", "udp", "--dport", "9001", "-j", "DROP"],
            [
                "-p",
                "tcp",
                "--dport",
                "8082",
                "-j",
                "REJECT",
                "--reject-with",
                "icmp-host-unreachable",
            ],
        ):
            assert run_in_netns(c, ["iptables", "-A", "INPUT", *rule]).ok
        pods = [
            {
                "namespace": "default",
                "name": "web-b",
                "netns": b,
                "ip": B_IP,
                "role": "netexec",
                "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 9000, "protocol": "UDP"}],
            },
            {
                "namespace": "default",
                "name": "web-c",
                "netns": c,
                "ip": C_IP,
                "role": "netexec",
                "ports": [{"port": p, "protocol": "TCP"} for p in (8080, 8081, 8082)]
                + [{"port": p, "protocol": "UDP"} for p in (9000, 9001)],
            },
            {
                "namespace": "kube-system",
                "name": "coredns-x",
                "netns": a,
                "ip": A_TO_C,
                "role": "dns",
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            },
        ]
        records = [
            ["web.default.svc.cluster.local.", "A", B_IP, 30],
            ["alias.default.svc.cluster.local.", "CNAME", "web.default.svc.cluster.local.", 30],
        ]
        (state / "workloads.json").write_text(
            json.dumps({"workloads": pods, "dns_records": records})
        )
        start_agent(str(state))
        assert agent_command(str(state), "reload") == "ok 9"
        yield {"a": a, "b": b, "c": c}
    finally:
        stop_agent(str(state))
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


# --------------------------------------------------------------------------- TCP


def test_tcp_connected_reports_server_and_unnatted_client(netns_of) -> None:
    p = probe(netns_of["b"], C_IP, 8080, src_label="default/web-b", resolv_conf=None)
    assert (p.src, p.dst, p.port, p.protocol) == ("default/web-b", C_IP, 8080, "TCP")
    assert (p.outcome, p.served_by, p.client_ip) == ("connected", "web-c", B_IP)
    assert p.ok and 0 < p.latency_s < 1 and "served by web-c" in p.detail


def test_tcp_refused_timeout_and_unreachable(netns_of) -> None:
    refused = probe(netns_of["b"], C_IP, 7777, src_label="b", resolv_conf=None)
    assert (
        refused.outcome == "refused" and "refused" in refused.detail and refused.served_by is None
    )
    dropped = probe(netns_of["b"], C_IP, 8081, timeout=0.3, src_label="b", resolv_conf=None)
    assert dropped.outcome == "timeout" and dropped.latency_s is None and "0.3 s" in dropped.detail
    rejected = probe(netns_of["b"], C_IP, 8082, src_label="b", resolv_conf=None)
    assert rejected.outcome == "unreachable" and "no route to host" in rejected.detail
    no_route = probe(netns_of["a"], "10.200.0.1", 80, src_label="a", resolv_conf=None)
    assert no_route.outcome == "unreachable" and "network unreachable" in no_route.detail


def _serve_once(netns: str, port: int, answer: bytes) -> threading.Thread:
    listener = socket_in_netns(netns)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen()

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_tcp_non_http_server_is_connected_without_names(netns_of) -> None:
    thread = _serve_once(netns_of["b"], 2525, b"220 mail.example ESMTP ready\r\n\r\n")
    p = probe(netns_of["c"], B_IP, 2525, src_label="c", resolv_conf=None)
    thread.join(2)
    assert (p.outcome, p.served_by, p.client_ip) == ("connected", None, None)
    assert "does not speak HTTP" in p.detail


def test_tcp_silent_server_is_connected_after_the_http_timeout(netns_of) -> None:
    listener = socket_in_netns(netns_of["b"])
    listener.bind(("0.0.0.0", 2526))
    listener.listen()
    with listener:
        p = probe(netns_of["c"], B_IP, 2526, timeout=0.3, src_label="c", resolv_conf=None)
    assert (p.outcome, p.served_by) == ("connected", None) and "no HTTP answer" in p.detail


# --------------------------------------------------------------------------- UDP


def test_udp_connected_refused_and_timeout(netns_of) -> None:
    p = probe(netns_of["b"], C_IP, 9000, "UDP", src_label="b", resolv_conf=None)
    assert (p.outcome, p.served_by, p.client_ip, p.protocol) == ("connected", "web-c", B_IP, "UDP")
    assert (
        probe(netns_of["b"], C_IP, 9002, "udp", src_label="b", resolv_conf=None).outcome
        == "refused"
    )
    silent = probe(netns_of["b"], C_IP, 9001, "UDP", timeout=0.3, src_label="b", resolv_conf=None)
    assert silent.outcome == "timeout" and silent.latency_s is None


# --------------------------------------------------------------------------- DNS


def test_names_resolve_through_the_pods_search_path(netns_of) -> None:
    p = probe(netns_of["c"], "web", 8080, src_label="c", resolv_conf=RESOLV)
    assert (p.outcome, p.served_by, p.client_ip) == ("connected", "web-b", C_IP)
    assert "web.default.svc.cluster.local -> 10.99.1.2" in p.detail
    assert (
        probe(netns_of["c"], "alias.default", 8080, src_label="c", resolv_conf=RESOLV).served_by
        == "web-b"
    )
    assert (
        probe(
            netns_of["c"],
            "web.default.svc.cluster.local.",
            9000,
            "UDP",
            src_label="c",
            resolv_conf=RESOLV,
        ).served_by
        == "web-b"
    )
    assert resolve(netns_of["c"], "alias", resolv_conf=RESOLV) == [B_IP]
    assert resolve(netns_of["c"], "alias", "CNAME", resolv_conf=RESOLV) == [
        "web.default.svc.cluster.local"
    ]


def test_port_53_is_probed_with_a_dns_question(netns_of) -> None:
    for protocol in ("UDP", "TCP"):
        p = probe(netns_of["b"], A_TO_B, 53, protocol, src_label="b", resolv_conf=None)
        assert (p.outcome, p.served_by) == ("connected", None)
        assert "DNS answered NXDOMAIN for kubernetes.default.svc.cluster.local" in p.detail
    assert (
        probe(netns_of["b"], C_IP, 53, "UDP", src_label="b", resolv_conf=None).outcome == "refused"
    )


def test_dns_failures(netns_of) -> None:
    missing = probe(netns_of["c"], "nosuch", 8080, src_label="c", resolv_conf=RESOLV)
    # the search path's names are NXDOMAIN; the bare name is forwarded (CoreDNS's
    # ``forward . /etc/resolv.conf``) to an upstream this topology lacks: SERVFAIL, as
    # plugin/forward/forward.go ServeDNS returns when no upstream answers
    assert missing.outcome == "dns" and "SERVFAIL for nosuch" in missing.detail
    assert missing.served_by is None and missing.latency_s is None
    silent = probe(
        netns_of["c"],
        "web",
        8080,
        timeout=0.3,
        src_label="c",
        resolv_conf=RESOLV.replace(A_TO_C, "10.99.2.99"),
    )
    assert silent.outcome == "dns" and "no answer from nameserver 10.99.2.99" in silent.detail
    none = probe(netns_of["c"], "web", 8080, src_label="c", resolv_conf="")
    assert none.outcome == "dns" and "no nameserver" in none.detail


def test_resolv_conf_defaults_to_the_namespaces_etc_netns_file(netns_of) -> None:
    path = Path(f"/etc/netns/{netns_of['b']}/resolv.conf")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # the DNS pod (in a) answers from the address that faces the client, so b asks a's near side
        path.write_text(RESOLV.replace(A_TO_C, A_TO_B))
        p = probe(netns_of["b"], "web", 8080, src_label="b", resolv_conf=None)
        assert (p.outcome, p.served_by, p.client_ip) == ("connected", "web-b", B_IP)
        getent = run_in_netns(
            netns_of["b"], ["getent", "hosts", "web"]
        )  # the system resolver agrees
        assert getent.ok and getent.stdout.split()[0] == B_IP
    finally:
        shutil.rmtree(path.parent)


# --------------------------------------------------------------------------- many at once


def test_probe_many_runs_concurrently_and_keeps_order(netns_of) -> None:
    requests = []
    for i in range(60):
        kind = i % 4
        if kind == 0:
            requests.append(ProbeRequest(netns_of["b"], C_IP, 8081, src_label=f"drop-{i}"))
        elif kind == 1:
            requests.append((netns_of["b"], C_IP, 8080, "TCP", f"ok-{i}"))
        elif kind == 2:
            requests.append(
                {
                    "src_netns": netns_of["c"],
                    "dst": "web",
                    "port": 9000,
                    "protocol": "UDP",
                    "src_label": f"dns-{i}",
                    "resolv_conf": RESOLV,
                }
            )
        else:
            requests.append(ProbeRequest(netns_of["b"], C_IP, 7777, src_label=f"refused-{i}"))
    started = time.monotonic()
    results = probe_many(requests, timeout=0.5)
    elapsed = time.monotonic() - started
    assert [r.src for r in results] == [
        f"{('drop', 'ok', 'dns', 'refused')[i % 4]}-{i}" for i in range(60)
    ]
    assert [r.outcome for r in results] == [
        ("timeout", "connected", "connected", "refused")[i % 4] for i in range(60)
    ]
    assert {r.served_by for r in results if r.ok} == {"web-b", "web-c"}
    assert elapsed < 15 * 0.5 / 3, (
        f"15 timeouts of 0.5 s took {elapsed:.2f} s: probes did not overlap"
    )
    assert probe_many([]) == []


def test_probe_works_inside_a_running_event_loop(netns_of) -> None:
    async def notebook_cell():
        return probe(netns_of["b"], C_IP, 8080, src_label="b", resolv_conf=None)

    assert asyncio.run(notebook_cell()).served_by == "web-c"


def test_bad_requests_are_refused_before_any_probe(netns_of) -> None:
    with pytest.raises(LabError, match="protocol must be TCP or UDP"):
        probe(netns_of["b"], C_IP, 80, "SCTP", src_label="b", resolv_conf=None)
    with pytest.raises(LabError, match="port must be"):
        probe_many([ProbeRequest(netns_of["b"], C_IP, 8080), ProbeRequest(netns_of["b"], C_IP, 0)])
    with pytest.raises(LabError, match="does not exist"):
        probe("lk-tnosuch-zz", C_IP, 80, src_label="x", resolv_conf=None)
    with pytest.raises(LabError, match="not a lab network namespace"):
        probe("default", C_IP, 80, src_label="x", resolv_conf=None)


# --------------------------------------------------------------------------- netns helpers


def test_enter_netns_moves_only_this_thread_and_always_comes_back(netns_of) -> None:
    home = own_netns()
    seen: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def other_thread() -> None:
        barrier.wait()
        seen["other"] = own_netns()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with enter_netns(netns_of["b"]):
        inside = own_netns()
        barrier.wait()
        thread.join()
    assert inside != home and seen["other"] == home and own_netns() == home
    with pytest.raises(RuntimeError), enter_netns(netns_of["c"]):
        raise RuntimeError("boom")
    assert own_netns() == home
    with pytest.raises(LabError, match="does not exist"), enter_netns("lk-tnosuch-zz"):
        pass
    assert own_netns() == home


def test_socket_keeps_the_namespace_it_was_born_in(netns_of) -> None:
    with socket_in_netns(netns_of["b"], socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((C_IP, 9))
        assert sock.getsockname()[0] == B_IP  # routed by b's table, not the host's
    assert own_netns() == os.readlink("/proc/self/ns/net")


def test_run_in_netns_output_input_and_timeout(netns_of) -> None:
    res = run_in_netns(netns_of["b"], ["ip", "-o", "-4", "addr", "show", "dev", "vba"])
    assert (
        res.ok
        and B_IP in res.stdout
        and res.command == ("ip", "-o", "-4", "addr", "show", "dev", "vba")
    )
    assert run_in_netns(netns_of["b"], "cat", input="hello").stdout == "hello"
    failed = run_in_netns(netns_of["b"], ["sh", "-c", "echo oops >&2; exit 3"])
    assert (failed.returncode, failed.stderr.strip()) == (3, "oops")
    started = time.monotonic()
    slow = run_in_netns(netns_of["b"], ["sh", "-c", "sleep 5 & sleep 5; echo never"], timeout=0.3)
    assert time.monotonic() - started < 3
    assert (
        slow.returncode == 124
        and "did not finish within 0.3 s" in slow.stderr
        and "never" not in slow.stdout
    )
    with pytest.raises(LabError, match="does not exist"):
        run_in_netns("lk-tnosuch-zz", ["true"])
