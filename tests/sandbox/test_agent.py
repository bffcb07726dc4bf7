"""The workload agent, as a real process serving sockets inside real network namespaces.

Topology built here (all inside lk-t<random>-* namespaces, nothing in the host's):
``a`` (10.99.1.1 towards b, 10.99.2.1 towards c, forwards between them) -- ``b`` (10.99.1.2)
and ``c`` (10.99.2.2), each with a default route through ``a``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
]

from agent_nets import agent_state, fresh_netns, ip  # noqa: E402

from labkit.errors import LabError  # noqa: E402
from labkit.sandbox.agent.client import (  # noqa: E402
    agent_command,
    agent_pids,
    start_agent,
    stop_agent,
)
from labkit.sandbox.agent.listeners import default_dns_backend  # noqa: E402
from labkit.sandbox.agent.server import Agent  # noqa: E402
from labkit.sandbox.netns import run_in_netns, socket_in_netns  # noqa: E402
from labkit.sandbox.probe import probe, resolve  # noqa: E402

# --------------------------------------------------------------------------- topology


@dataclass
class Topo:
    a: str
    b: str
    c: str
    a_to_b: str = "10.99.1.1"
    a_to_c: str = "10.99.2.1"
    b_ip: str = "10.99.1.2"
    c_ip: str = "10.99.2.2"


@pytest.fixture
def topo():
    with fresh_netns(("a", "b", "c")) as (a, b, c):
        t = Topo(a, b, c)
        ip("-n", a, "link", "add", "vab", "type", "veth", "peer", "name", "vba", "netns", b)
        ip("-n", a, "link", "add", "vac", "type", "veth", "peer", "name", "vca", "netns", c)
        for ns, dev, addr in (
            (a, "vab", t.a_to_b),
            (a, "vac", t.a_to_c),
            (b, "vba", t.b_ip),
            (c, "vca", t.c_ip),
        ):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        ip("-n", b, "route", "add", "default", "via", t.a_to_b)
        ip("-n", c, "route", "add", "default", "via", t.a_to_c)
        assert run_in_netns(a, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]).ok
        yield t


@pytest.fixture
def state_dir(tmp_path: Path):
    with agent_state(tmp_path) as path:
        yield path


def workload(
    ns: str,
    name: str,
    netns: str,
    addr: str,
    role: str = "netexec",
    ports: tuple = ((8080, "TCP"),),
) -> dict:
    return {
        "namespace": ns,
        "name": name,
        "netns": netns,
        "ip": addr,
        "role": role,
        "ports": [{"port": p, "protocol": proto} for p, proto in ports],
    }


def write_spec(state: Path, workloads: list[dict], **extra) -> None:
    (state / "workloads.json").write_text(json.dumps({"workloads": workloads, **extra}))


def http(netns: str, url: str, *headers: str) -> tuple[int, dict[str, str], str]:
    """curl from inside a namespace: (status, headers lower-cased, body)."""
    argv = ["curl", "-s", "-i", "--max-time", "3"]
    for h in headers:
        argv += ["-H", h]
    res = run_in_netns(netns, [*argv, url], timeout=5)
    assert res.ok, res.stderr
    head, _, body = res.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    fields = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return int(lines[0].split()[1]), fields, body


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------------- netexec


def test_netexec_http_answers_like_agnhost(topo: Topo, state_dir: Path) -> None:
    write_spec(state_dir, [workload("default", "web-7d9f", topo.b, topo.b_ip)])
    pid = start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 1"
    assert int((state_dir / "agent.pid").read_text()) == pid
    url = f"http://{topo.b_ip}:8080"
    assert http(topo.a, f"{url}/hostname")[::2] == (200, "web-7d9f")
    status, _, seen = http(topo.a, f"{url}/clientip")
    assert (
        status == 200 and seen.rsplit(":", 1)[0] == topo.a_to_b and seen.rsplit(":", 1)[1].isdigit()
    )
    assert http(topo.a, f"{url}/echo?msg=hello%20there")[2] == "hello there"
    assert http(topo.a, f"{url}/healthz")[2] == "ok"
    assert http(topo.a, f"{url}/header?key=X-Lab", "X-Lab: yes")[2] == "yes"
    status, fields, body = http(topo.a, f"{url}/")
    assert status == 200 and "web-7d9f" in body and fields["connection"] == "keep-alive"
    # from c the request crosses a's forwarding and still shows c's own address (no NAT here)
    assert http(topo.c, f"{url}/clientip")[2].startswith(topo.c_ip + ":")


def test_serve_hostname_answers_its_name_at_every_path(topo: Topo, state_dir: Path) -> None:
    """agnhost serve-hostname in HTTP mode (test/images/agnhost/serve-hostname/servehostname.go,
    main): one "/" handler, so every path gets ``os.Hostname()`` with no newline, each request
    logged as ``HTTP request from <addr>`` after ``Serving on port <n>.``."""
    write_spec(state_dir, [workload("default", "api-6c8d", topo.b, topo.b_ip, "serve-hostname")])
    start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 1"
    url = f"http://{topo.b_ip}:8080"
    for path in ("/", "/api/v1/users", "/clientip", "/hostname"):
        status, fields, body = http(topo.a, f"{url}{path}")
        assert (status, body) == (200, "api-6c8d"), path
        assert fields["content-type"] == "text/plain; charset=utf-8"
    log = json.loads(agent_command(str(state_dir), "logs default/api-6c8d"))
    assert log[0].endswith("Serving on port 8080.")
    assert f"HTTP request from {topo.a_to_b}:" in log[1]


def test_netexec_http_keep_alive_serves_many_requests_on_one_connection(
    topo: Topo, state_dir: Path
) -> None:
    write_spec(state_dir, [workload("default", "web-1", topo.b, topo.b_ip)])
    start_agent(str(state_dir))
    with socket_in_netns(topo.a) as sock:
        sock.settimeout(2)
        sock.connect((topo.b_ip, 8080))
        sock.sendall(
            b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\nGET /clientip HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(
            str(sock.getsockname()[1]).encode()
        ):
            chunk = sock.recv(4096)
            assert chunk, f"server closed early: {data!r}"
            data += chunk
        assert data.split(b"\r\n\r\n")[1].startswith(b"web-1")
        assert data.endswith(f"{topo.a_to_b}:{sock.getsockname()[1]}".encode())
        sock.sendall(b"GET /echo?msg=bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
        assert rest.endswith(b"\r\n\r\nbye") and b"Connection: close" in rest


def test_netexec_udp_answers_datagrams(topo: Topo, state_dir: Path) -> None:
    write_spec(
        state_dir, [workload("default", "dgram-1", topo.b, topo.b_ip, ports=((9000, "UDP"),))]
    )
    start_agent(str(state_dir))
    with socket_in_netns(topo.a, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.connect((topo.b_ip, 9000))
        for question, expected in (
            (b"hostname", b"dgram-1"),
            (b"echo hi there", b"hi there"),
            (b"clientip", f"{topo.a_to_b}:{sock.getsockname()[1]}".encode()),
        ):
            sock.send(question)
            assert sock.recv(100) == expected
        sock.send(b"what")  # agnhost ignores unknown commands
        with pytest.raises(socket.timeout):
            sock.recv(100)


# --------------------------------------------------------------------------- ingress


def test_ingress_routes_by_host_and_path_from_its_own_namespace(
    topo: Topo, state_dir: Path
) -> None:
    pods = [
        workload(
            "ingress",
            "ingress-ctrl",
            topo.a,
            topo.a_to_b,
            role="ingress",
            ports=((80, "TCP"), (443, "TCP")),
        ),
        workload("shop", "api-1", topo.b, topo.b_ip),
        workload("shop", "dash-1", topo.c, topo.c_ip),
        workload("shop", "wild-1", topo.c, topo.c_ip, ports=((8081, "TCP"),)),
    ]
    rules = [
        {
            "host": "shop.example",
            "path": "/api",
            "pathType": "Prefix",
            "backend": {"ip": topo.b_ip, "port": 8080, "service": "shop/api"},
        },
        {
            "host": "shop.example",
            "path": "/dashboard",
            "pathType": "Exact",
            "backend": {"ip": topo.c_ip, "port": 8080, "service": "shop/dash"},
        },
        {
            "host": "*.example",
            "path": "/",
            "pathType": "Prefix",
            "backend": {"ip": topo.c_ip, "port": 8081, "service": "shop/wild"},
        },
        {
            "host": "broken.test",
            "path": "/",
            "pathType": "Prefix",
            "backend": {"ip": topo.c_ip, "port": 9999, "service": "shop/broken"},
        },
    ]
    write_spec(state_dir, pods, ingress=rules, tls_hosts=["shop.example"])
    start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 5"
    ing = f"http://{topo.a_to_b}"

    def routed(host: str, path: str) -> tuple[int, str, str]:
        """Status, the pod that answered (the body's first word) and the body."""
        status, _, body = http(topo.b, f"{ing}{path}", f"Host: {host}")
        return status, body.split(":", 1)[0], body

    status, pod, body = routed("shop.example", "/api/orders")
    assert (status, pod) == (200, "api-1")
    assert routed("shop.example", "/api")[1] == "api-1"
    assert routed("shop.example", "/dashboard")[1:] == (
        "dash-1",
        "dash-1: labkit netexec answered GET /dashboard\n",
    )
    # Exact does not take a sub-path, and /apix is not under /api: both fall to the wildcard
    # host rule
    assert routed("shop.example", "/dashboard/x")[1] == "wild-1"
    assert routed("shop.example", "/apix")[1] == "wild-1"
    status, fields, body = http(topo.b, f"{ing}/api", "Host: other.test")
    assert status == 404 and body.startswith("default backend - 404")
    assert fields["x-labkit-ingress"] == "default-backend"
    status, _, body = routed("broken.test", "/")
    assert status == 502 and "shop/broken" in body and "refused" in body
    # the backend sees the ingress pod as its client and the real client in X-Forwarded-For
    assert routed("x.example", "/clientip")[2].startswith(f"{topo.a_to_c}:")
    assert routed("x.example", "/header?key=X-Forwarded-For")[2] == topo.b_ip
    assert routed("x.example", "/header?key=X-Forwarded-Host")[2] == "x.example"
    # a probe through the ingress reports the backend pod that answered
    p = probe(
        topo.b, topo.a_to_b, 80, src_label="shop/client", resolv_conf=None, http_host="x.example"
    )
    assert (p.outcome, p.served_by, p.client_ip) == ("connected", "wild-1", topo.a_to_c)
    # 443 terminates TLS with a self-signed certificate for the TLS hosts and routes the same way
    res = run_in_netns(
        topo.b,
        [
            "curl",
            "-sk",
            "--max-time",
            "3",
            "--resolve",
            f"shop.example:443:{topo.a_to_b}",
            "https://shop.example/api/x",
        ],
    )
    assert res.ok and res.stdout.startswith("api-1:"), res.stderr
    res = run_in_netns(
        topo.b,
        [
            "curl",
            "-sk",
            "--max-time",
            "3",
            "--resolve",
            f"shop.example:443:{topo.a_to_b}",
            "https://shop.example/dashboard/x?",
        ],
    )
    assert res.ok and res.stdout.startswith("wild-1:"), res.stderr


def test_ingress_rules_change_on_reload_without_rebinding(topo: Topo, state_dir: Path) -> None:
    pods = [
        workload(
            "ingress", "ingress-ctrl", topo.a, topo.a_to_b, role="ingress", ports=((80, "TCP"),)
        ),
        workload("shop", "api-1", topo.b, topo.b_ip),
    ]
    write_spec(state_dir, pods)
    start_agent(str(state_dir))
    assert http(topo.c, f"http://{topo.a_to_c}/api")[0] == 404
    write_spec(
        state_dir,
        pods,
        ingress=[
            {
                "host": None,
                "path": "/api",
                "pathType": "Prefix",
                "backend": {"ip": topo.b_ip, "port": 8080, "service": "shop/api"},
            }
        ],
    )
    assert agent_command(str(state_dir), "reload") == "ok 2"
    status, _, body = http(topo.c, f"http://{topo.a_to_c}/api/v1")
    assert status == 200 and body.startswith("api-1:")


# --------------------------------------------------------------------------- control and lifecycle


def test_reload_adds_keeps_and_removes_listeners(topo: Topo, state_dir: Path) -> None:
    write_spec(
        state_dir,
        [workload("default", "web-1", topo.b, topo.b_ip, ports=((8080, "TCP"), (8081, "TCP")))],
    )
    start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 2"
    kept = socket_in_netns(topo.a)
    kept.settimeout(2)
    kept.connect((topo.b_ip, 8081))
    write_spec(
        state_dir,
        [
            workload("default", "web-1", topo.b, topo.b_ip, ports=((8081, "TCP"), (8082, "UDP"))),
            workload("default", "web-2", topo.c, topo.c_ip, ports=((7070, "TCP"),)),
        ],
    )
    assert agent_command(str(state_dir), "reload") == "ok 3"
    assert probe(topo.a, topo.b_ip, 8080, src_label="a", resolv_conf=None).outcome == "refused"
    assert (
        probe(topo.a, topo.b_ip, 8082, "UDP", src_label="a", resolv_conf=None).served_by == "web-1"
    )
    assert probe(topo.a, topo.c_ip, 7070, src_label="a", resolv_conf=None).served_by == "web-2"
    kept.sendall(
        b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n"
    )  # a kept listener keeps its connections
    assert kept.recv(4096).endswith(b"web-1")
    kept.close()
    status = json.loads(agent_command(str(state_dir), "status"))
    assert status["listeners"] == [
        "default/web-1 TCP/8081 netexec",
        "default/web-1 UDP/8082 netexec",
        "default/web-2 TCP/7070 netexec",
    ]


def test_reload_rebinds_when_a_pods_namespace_was_made_anew(topo: Topo, state_dir: Path) -> None:
    write_spec(state_dir, [workload("default", "web-2", topo.c, topo.c_ip)])
    start_agent(str(state_dir))
    assert probe(topo.a, topo.c_ip, 8080, src_label="a", resolv_conf=None).served_by == "web-2"
    # The pod is deleted and created again under the same name. The agent's sockets keep the old
    # namespace (and so its veth) alive until the reload, so the veth is deleted explicitly.
    ip("-n", topo.a, "link", "del", "vac")
    ip("netns", "del", topo.c)
    ip("netns", "add", topo.c)
    ip("-n", topo.a, "link", "add", "vac", "type", "veth", "peer", "name", "vca", "netns", topo.c)
    ip("-n", topo.a, "addr", "add", f"{topo.a_to_c}/24", "dev", "vac")
    ip("-n", topo.c, "addr", "add", f"{topo.c_ip}/24", "dev", "vca")
    for ns, dev in ((topo.a, "vac"), (topo.c, "vca"), (topo.c, "lo")):
        ip("-n", ns, "link", "set", dev, "up")
    assert probe(topo.a, topo.c_ip, 8080, src_label="a", resolv_conf=None).outcome == "refused"
    assert agent_command(str(state_dir), "reload") == "ok 1"
    assert probe(topo.a, topo.c_ip, 8080, src_label="a", resolv_conf=None).served_by == "web-2"


def test_reload_reports_errors_naming_pod_and_port(topo: Topo, state_dir: Path) -> None:
    good = workload("default", "web-1", topo.b, topo.b_ip)
    write_spec(state_dir, [good])
    start_agent(str(state_dir))
    (state_dir / "workloads.json").write_text("{not json")
    answer = agent_command(str(state_dir), "reload")
    assert answer.startswith("error workloads.json")
    assert probe(topo.a, topo.b_ip, 8080, src_label="a", resolv_conf=None).ok  # nothing changed
    write_spec(
        state_dir,
        [good, workload("default", "ghost", "lk-tnosuch-x", "10.99.9.9", ports=((80, "TCP"),))],
    )
    answer = agent_command(str(state_dir), "reload")
    assert answer.startswith("error pod default/ghost TCP port 80:") and "lk-tnosuch-x" in answer
    write_spec(state_dir, [{**good, "role": "nginx"}])
    assert "role 'nginx'" in agent_command(str(state_dir), "reload")
    # a port someone else holds in that namespace
    with socket_in_netns(topo.c) as squatter:
        squatter.bind(("0.0.0.0", 6060))
        squatter.listen()
        write_spec(
            state_dir,
            [good, workload("default", "web-2", topo.c, topo.c_ip, ports=((6060, "TCP"),))],
        )
        assert (
            agent_command(str(state_dir), "reload")
            == "error pod default/web-2 TCP port 6060: address already in use"
        )
    assert agent_command(str(state_dir), "reload") == "ok 2"
    assert agent_command(str(state_dir), "dance").startswith("error unknown command")


def test_stop_sigterm_and_kill_leave_no_process(topo: Topo, state_dir: Path) -> None:
    write_spec(state_dir, [workload("default", "web-1", topo.b, topo.b_ip)])
    sd = str(state_dir)
    pid = start_agent(sd)
    assert start_agent(sd) == pid  # already running: kept
    assert agent_command(sd, "ping") == "pong"
    assert agent_command(sd, "stop") == "ok stopping"
    _wait_gone(pid)
    assert not (state_dir / "agent.sock").exists() and not (state_dir / "agent.pid").exists()
    with pytest.raises(LabError, match="not running"):
        agent_command(sd, "ping")

    pid = start_agent(sd)
    os.kill(pid, signal.SIGTERM)
    _wait_gone(pid)
    assert probe(topo.a, topo.b_ip, 8080, src_label="a", resolv_conf=None).outcome == "refused"

    pid = start_agent(sd)
    os.kill(pid, signal.SIGKILL)  # a crash leaves the pid and socket files behind
    _wait_gone(pid)
    assert (state_dir / "agent.pid").exists()
    assert stop_agent(sd) is False and not (state_dir / "agent.pid").exists()
    pid = start_agent(sd)  # and a new agent starts over the leftovers
    assert probe(topo.a, topo.b_ip, 8080, src_label="a", resolv_conf=None).served_by == "web-1"
    assert stop_agent(sd) is True
    assert stop_agent(sd) is False
    _wait_gone(pid)
    assert agent_pids(sd) == []


def test_start_agent_reports_a_dying_agent_with_its_log(state_dir: Path) -> None:
    (state_dir / "agent.sock").mkdir()  # the agent cannot create its control socket
    with pytest.raises(LabError) as info:
        start_agent(str(state_dir))
    assert "workload agent" in info.value.what and "agent.sock" in (info.value.output or "")
    assert agent_pids(str(state_dir)) == []


def _wait_gone(pid: int, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still runs")


# --------------------------------------------------------------------------- DNS role


def test_dns_role_serves_the_cluster_records_and_reload_updates_them(
    topo: Topo, state_dir: Path
) -> None:
    records = [
        ["web.default.svc.cluster.local.", "A", topo.b_ip, 30],
        [
            "_http._tcp.web.default.svc.cluster.local.",
            "SRV",
            "0 100 8080 web.default.svc.cluster.local.",
            30,
        ],
    ]
    pods = [
        workload(
            "kube-system",
            "coredns-1",
            topo.c,
            topo.c_ip,
            role="dns",
            ports=((53, "UDP"), (53, "TCP"), (9153, "TCP")),
        ),
        workload("default", "web-1", topo.b, topo.b_ip),
    ]
    write_spec(state_dir, pods, dns_records=records)
    start_agent(str(state_dir))
    assert agent_command(str(state_dir), "reload") == "ok 4"
    conf = (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        f"nameserver {topo.c_ip}\noptions ndots:5\n"
    )
    assert resolve(topo.a, "web", resolv_conf=conf) == [topo.b_ip]
    assert resolve(topo.a, "_http._tcp.web", "SRV", resolv_conf=conf) == [
        "0 100 8080 web.default.svc.cluster.local."
    ]
    dig = run_in_netns(
        topo.a, ["dig", "+tcp", "+short", f"@{topo.c_ip}", "web.default.svc.cluster.local"]
    )
    assert dig.stdout.strip() == topo.b_ip
    p = probe(topo.a, "web", 8080, src_label="a", resolv_conf=conf)
    assert (p.outcome, p.served_by) == ("connected", "web-1")
    assert probe(topo.a, topo.c_ip, 9153, src_label="a", resolv_conf=None).served_by == "coredns-1"
    write_spec(
        state_dir, pods, dns_records=[["web.default.svc.cluster.local.", "A", "10.99.1.77", 30]]
    )
    assert agent_command(str(state_dir), "reload") == "ok 4"
    assert resolve(topo.a, "web", resolv_conf=conf) == ["10.99.1.77"]
    write_spec(
        state_dir, pods, dns_records=[["web.default.svc.cluster.local.", "A", "not-an-ip", 30]]
    )
    assert agent_command(str(state_dir), "reload").startswith("error dns_records:")
    assert resolve(topo.a, "web", resolv_conf=conf) == [
        "10.99.1.77"
    ]  # the last good records still answer


class _FakeDns:
    """A stand-in DNS backend: answers A queries from a dict, so the hook is tested on its own."""

    def __init__(self) -> None:
        self.built: list[list] = []

    def build_index(self, records, namespaces):
        self.built.append(records)
        return {r.name.rstrip(".").lower(): r.value for r in records if r.rtype == "A"}

    async def serve_udp(self, sock, get_index, upstream):
        from dnslib import QTYPE, RR, A, DNSRecord

        loop = asyncio.get_running_loop()
        try:
            while True:
                data, addr = await loop.sock_recvfrom(sock, 4096)
                query = DNSRecord.parse(data)
                reply = query.reply()
                value = get_index().get(str(query.q.qname).rstrip(".").lower())
                if value:
                    reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(value), ttl=5))
                else:
                    reply.header.rcode = 3
                await loop.sock_sendto(sock, reply.pack(), addr)
        finally:
            sock.close()

    async def serve_tcp(self, sock, get_index, upstream):
        await asyncio.Future()


def test_dns_hook_passes_bound_sockets_and_a_live_index(topo: Topo, tmp_path: Path) -> None:
    """The agent hands DNS its sockets and a get_index() that follows reloads (in-process run)."""
    fake = _FakeDns()
    write_spec(
        tmp_path,
        [
            workload(
                "kube-system",
                "coredns-1",
                topo.c,
                topo.c_ip,
                role="dns",
                ports=((53, "UDP"), (53, "TCP")),
            )
        ],
        dns_records=[["a.test.", "A", "10.1.1.1", 30]],
    )
    agent = Agent(
        str(tmp_path),
        dns_backend=dataclasses.replace(
            default_dns_backend(),
            serve_udp=fake.serve_udp,
            serve_tcp=fake.serve_tcp,
            build_index=fake.build_index,
        ),
    )
    thread = threading.Thread(target=asyncio.run, args=(agent.run(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not (tmp_path / "agent.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        conf = f"nameserver {topo.c_ip}\n"
        assert resolve(topo.a, "a.test", resolv_conf=conf) == ["10.1.1.1"]
        assert resolve(topo.a, "a.test", resolv_conf=conf) == ["10.1.1.1"]
        assert len(fake.built) == 1  # built once, cached between queries
        write_spec(
            tmp_path,
            [
                workload(
                    "kube-system",
                    "coredns-1",
                    topo.c,
                    topo.c_ip,
                    role="dns",
                    ports=((53, "UDP"), (53, "TCP")),
                )
            ],
            dns_records=[["a.test.", "A", "10.2.2.2", 30]],
        )
        assert agent_command(str(tmp_path), "reload") == "ok 2"
        assert resolve(topo.a, "a.test", resolv_conf=conf) == ["10.2.2.2"]
        assert resolve(topo.a, "b.test", resolv_conf=conf) == []
    finally:
        with contextlib.suppress(LabError):
            agent_command(str(tmp_path), "stop")
        thread.join(5)
    assert not thread.is_alive()


# --------------------------------------------------------------------------- memory


def test_agent_memory_with_twelve_pods_of_two_ports(state_dir: Path) -> None:
    with fresh_netns(tuple(f"p{i}" for i in range(12))) as names:
        pods = [
            workload("default", f"pod-{i}", ns, "127.0.0.1", ports=((8080, "TCP"), (8081, "UDP")))
            for i, ns in enumerate(names[2:], start=2)
        ]
        pods.append(
            workload(
                "kube-system",
                "coredns-0",
                names[0],
                "127.0.0.1",
                role="dns",
                ports=((53, "UDP"), (53, "TCP")),
            )
        )
        pods.append(
            workload(
                "ingress",
                "ingress-1",
                names[1],
                "127.0.0.1",
                role="ingress",
                ports=((80, "TCP"), (443, "TCP")),
            )
        )
        write_spec(
            state_dir,
            pods,
            dns_records=[
                [f"svc-{i}.default.svc.cluster.local.", "A", f"10.96.0.{i + 20}", 30]
                for i in range(6)
            ],
            ingress=[{"host": None, "path": "/", "backend": {"ip": "127.0.0.1", "port": 8080}}],
            tls_hosts=["shop.example"],
        )
        pid = start_agent(str(state_dir))
        assert agent_command(str(state_dir), "reload") == "ok 24"
        for ns in names[2:5]:
            assert probe(
                ns, "127.0.0.1", 8080, src_label=ns, resolv_conf=None
            ).served_by.startswith("pod-")
        assert resolve(
            names[0], "svc-3.default.svc.cluster.local", resolv_conf="nameserver 127.0.0.1"
        ) == ["10.96.0.23"]
        kb = rss_kb(pid)
        print(
            "\nagent RSS with 12 pods x 2 ports (netexec, DNS, ingress with TLS): "
            f"{kb / 1024:.1f} MB"
        )
        assert kb < 150 * 1024
        # the loop's thread, plus at most asyncio's executor thread (used once to make the TLS cert)
        assert len(os.listdir(f"/proc/{pid}/task")) <= 2
