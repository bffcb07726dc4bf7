"""The sandbox's DNS server on loopback: wire answers through dnslib and, when installed, dig."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
from dnslib import CLASS, EDNS0, QTYPE, RCODE, DNSQuestion, DNSRecord

from labkit.model.dns.lookup import RecordIndex
from labkit.model.dns.records import records
from labkit.sandbox.dns import answer, frame, serve, serve_tcp, serve_udp

DIG = shutil.which("dig")


def service(name, namespace="default", **spec):
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def build_index(web_ip="10.96.10.10", many=0) -> RecordIndex:
    services = [
        service(
            "kube-dns",
            "kube-system",
            clusterIP="10.96.0.10",
            ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}],
        ),
        service("web", clusterIP=web_ip, ports=[{"name": "http", "port": 80}]),
        service("db", "data", clusterIP="None", ports=[{"name": "postgres", "port": 5432}]),
        service("ext", type="ExternalName", externalName="api.example.com"),
        service("big", clusterIP="None"),
    ]
    slices = [
        {
            "kind": "EndpointSlice",
            "addressType": "IPv4",
            "metadata": {
                "name": "db-x",
                "namespace": "data",
                "labels": {"kubernetes.io/service-name": "db"},
            },
            "endpoints": [
                {"addresses": ["10.244.1.5"], "hostname": "db-0", "conditions": {"ready": True}},
                {"addresses": ["10.244.2.7"], "hostname": "db-1", "conditions": {"ready": True}},
                {"addresses": ["10.244.1.9"], "hostname": "db-2", "conditions": {"ready": False}},
            ],
            "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}],
        },
        {
            "kind": "EndpointSlice",
            "addressType": "IPv4",
            "metadata": {
                "name": "big-x",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "big"},
            },
            "endpoints": [
                {"addresses": [f"10.244.3.{i}"], "conditions": {"ready": True}}
                for i in range(1, many + 1)
            ],
            "ports": [],
        },
    ]
    return RecordIndex(records(services, slices))


def ask(port, name, qtype="A", *, tcp=False, edns=None) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    if edns:
        query.add_ar(EDNS0(udp_len=edns))
    return DNSRecord.parse(query.send("127.0.0.1", port, tcp=tcp, timeout=3))


def rdata(reply: DNSRecord, section="rr") -> list[str]:
    return sorted(str(rr.rdata) for rr in getattr(reply, section))


@dataclass
class Server:
    port: int
    holder: dict
    udp: socket.socket
    tcp: socket.socket


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on 127.0.0.1 sharing one ephemeral port number (as port 53 is
    shared)."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
    raise RuntimeError("no free port pair on 127.0.0.1")


def _wait_until_serving(port: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("DNS server did not start listening")


@pytest.fixture
def server(request):
    """serve_udp and serve_tcp on one asyncio loop in a thread; the index comes from ``holder``.
    Its TCP idle timeout is 5 s (a loaded machine may stall a test between two queries), or
    what the test passes as the fixture's parameter."""
    idle_timeout = getattr(request, "param", 5.0)
    holder = {"index": build_index(), "calls": 0}

    def get_index():
        holder["calls"] += 1
        if isinstance(holder["index"], Exception):
            raise holder["index"]
        return holder["index"]

    udp, tcp = _bind_pair()
    control: dict = {}
    leftovers: list[asyncio.Task] = []

    async def main():
        control["loop"], control["stop"] = asyncio.get_running_loop(), asyncio.Event()
        tasks = [
            asyncio.create_task(serve_udp(udp, get_index)),
            asyncio.create_task(serve_tcp(tcp, get_index, idle_timeout=idle_timeout)),
        ]
        await control["stop"].wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)  # let any connection accepted during shutdown show up
        leftovers.extend(
            t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()
        )

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    port = udp.getsockname()[1]
    _wait_until_serving(port)
    yield Server(port, holder, udp, tcp)
    control["loop"].call_soon_threadsafe(control["stop"].set)
    thread.join(5)
    assert not thread.is_alive()
    assert not leftovers, f"serve_tcp left connection handlers running: {leftovers}"
    assert udp.fileno() == -1 and tcp.fileno() == -1


# ------------------------------------------------------------------ over the wire (dnslib client)


def test_udp_a_record_is_authoritative(server):
    reply = ask(server.port, "web.default.svc.cluster.local", "A")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1 and reply.header.qr == 1
    assert rdata(reply) == ["10.96.10.10"]
    assert reply.rr[0].ttl == 30


def test_udp_keeps_the_question_as_asked(server):
    reply = ask(server.port, "WeB.Default.SVC.cluster.local", "A")
    assert str(reply.q.qname) == "WeB.Default.SVC.cluster.local."
    assert rdata(reply) == ["10.96.10.10"]


def test_srv_with_additional_address(server):
    reply = ask(server.port, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rdata(reply) == ["0 100 80 web.default.svc.cluster.local."]
    assert rdata(reply, "ar") == ["10.96.10.10"]


def test_headless_a_and_srv(server):
    assert rdata(ask(server.port, "db.data.svc.cluster.local")) == ["10.244.1.5", "10.244.2.7"]
    srv = ask(server.port, "_postgres._tcp.db.data.svc.cluster.local", "SRV")
    assert rdata(srv) == [
        "0 50 5432 db-0.db.data.svc.cluster.local.",
        "0 50 5432 db-1.db.data.svc.cluster.local.",
    ]
    assert rdata(srv, "ar") == ["10.244.1.5", "10.244.2.7"]
    assert ask(server.port, "db-2.db.data.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_external_name_cname(server):
    reply = ask(server.port, "ext.default.svc.cluster.local", "A")
    assert reply.header.rcode == RCODE.NOERROR
    assert [QTYPE[rr.rtype] for rr in reply.rr] == ["CNAME"] and rdata(reply) == [
        "api.example.com."
    ]


def test_ptr(server):
    assert rdata(ask(server.port, "10.10.96.10.in-addr.arpa", "PTR")) == [
        "web.default.svc.cluster.local."
    ]
    assert rdata(ask(server.port, "5.1.244.10.in-addr.arpa", "PTR")) == [
        "db-0.db.data.svc.cluster.local."
    ]


def test_nxdomain_has_the_soa(server):
    reply = ask(server.port, "nope.default.svc.cluster.local", "A")
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.header.aa == 1 and not reply.rr
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]
    assert str(reply.auth[0].rname) == "cluster.local."
    assert str(reply.auth[0].rdata).startswith("ns.dns.cluster.local. hostmaster.cluster.local. ")


def test_nodata_has_the_soa(server):
    reply = ask(server.port, "web.default.svc.cluster.local", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_outside_names_are_nxdomain_and_not_authoritative(server):
    reply = ask(server.port, "example.com", "A")
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.header.aa == 0 and not reply.auth


def test_tcp_answers(server):
    reply = ask(server.port, "web.default.svc.cluster.local", "A", tcp=True)
    assert rdata(reply) == ["10.96.10.10"]
    nx = ask(server.port, "nope.default.svc.cluster.local", "A", tcp=True)
    assert nx.header.rcode == RCODE.NXDOMAIN and [QTYPE[rr.rtype] for rr in nx.auth] == ["SOA"]


def test_tcp_several_queries_on_one_connection(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as conn:
        for name, expected in [
            ("web.default.svc.cluster.local", ["10.96.10.10"]),
            ("db.data.svc.cluster.local", ["10.244.1.5", "10.244.2.7"]),
        ]:
            conn.sendall(frame(DNSRecord.question(name).pack()))
            (length,) = struct.unpack("!H", _recv_exact(conn, 2))
            assert rdata(DNSRecord.parse(_recv_exact(conn, length))) == expected


@pytest.mark.parametrize("server", [0.5], indirect=True)
def test_tcp_idle_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as conn:
        assert conn.recv(10) == b""  # the server hangs up after its 0.5 s idle timeout


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_large_udp_answer_is_truncated_and_complete_over_tcp(server):
    server.holder["index"] = build_index(many=60)
    udp = ask(server.port, "big.default.svc.cluster.local", "A")
    assert (
        udp.header.tc == 1 and not udp.rr and str(udp.q.qname) == "big.default.svc.cluster.local."
    )
    with_edns = ask(server.port, "big.default.svc.cluster.local", "A", edns=4096)
    assert with_edns.header.tc == 0 and len(with_edns.rr) == 60  # 60 A records fit in 1232 bytes
    assert any(rr.rtype == QTYPE.OPT for rr in with_edns.ar)
    tcp = ask(server.port, "big.default.svc.cluster.local", "A", tcp=True)
    assert tcp.header.tc == 0 and len(tcp.rr) == 60


def test_index_is_fetched_per_query_so_reloads_apply(server):
    assert rdata(ask(server.port, "web.default.svc.cluster.local")) == ["10.96.10.10"]
    before = server.holder["calls"]
    server.holder["index"] = build_index(web_ip="10.96.99.99")
    assert rdata(ask(server.port, "web.default.svc.cluster.local")) == ["10.96.99.99"]
    assert rdata(ask(server.port, "web.default.svc.cluster.local", tcp=True)) == ["10.96.99.99"]
    assert server.holder["calls"] == before + 2


def test_failing_index_gives_servfail_and_the_server_survives(server):
    server.holder["index"] = RuntimeError("state file unreadable")
    assert ask(server.port, "web.default.svc.cluster.local").header.rcode == RCODE.SERVFAIL
    assert (
        ask(server.port, "web.default.svc.cluster.local", tcp=True).header.rcode == RCODE.SERVFAIL
    )
    server.holder["index"] = build_index()
    assert rdata(ask(server.port, "web.default.svc.cluster.local")) == ["10.96.10.10"]


def test_garbage_datagram_does_not_stop_the_server(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        # a query header (QR clear) claiming 65535 questions that are not there
        sock.sendto(
            b"\x12\x34\x01\x00\xff\xff" + b"\x00" * 6 + b"\xff" * 8, ("127.0.0.1", server.port)
        )
        reply = DNSRecord.parse(sock.recvfrom(512)[0])
        assert reply.header.id == 0x1234 and reply.header.rcode == RCODE.FORMERR
        sock.sendto(b"\x00", ("127.0.0.1", server.port))  # too short for a header: no reply at all
        answered_response = DNSRecord.question("web.default.svc.cluster.local")
        answered_response.header.qr = 1  # a response, not a query: never answered
        sock.sendto(answered_response.pack(), ("127.0.0.1", server.port))
        with pytest.raises(TimeoutError):
            sock.settimeout(0.3)
            sock.recvfrom(512)
    assert rdata(ask(server.port, "web.default.svc.cluster.local")) == ["10.96.10.10"]


# --------------------------------------------------------------------------- dig, when installed


def dig(port, *args) -> str:
    proc = subprocess.run(
        [DIG, "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.skipif(DIG is None, reason="dig is not installed (dnsutils)")
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_dig_short_answers(server, transport):
    assert dig(server.port, transport, "+short", "web.default.svc.cluster.local", "A").split() == [
        "10.96.10.10"
    ]
    assert (
        dig(
            server.port, transport, "+short", "_http._tcp.web.default.svc.cluster.local", "SRV"
        ).strip()
        == "0 100 80 web.default.svc.cluster.local."
    )
    assert (
        dig(server.port, transport, "+short", "ext.default.svc.cluster.local", "A").strip()
        == "api.example.com."
    )
    assert (
        dig(server.port, transport, "+short", "-x", "10.96.10.10").strip()
        == "web.default.svc.cluster.local."
    )
    assert sorted(dig(server.port, transport, "+short", "db.data.svc.cluster.local").split()) == [
        "10.244.1.5",
        "10.244.2.7",
    ]


@pytest.mark.skipif(DIG is None, reason="dig is not installed (dnsutils)")
def test_dig_nxdomain_with_soa(server):
    out = dig(server.port, "nope.default.svc.cluster.local", "A")
    assert "status: NXDOMAIN" in out and " aa " in out.split("flags:")[1].split(";")[0] + " "
    # CoreDNS's kubernetes plugin answers with m.SetReply (plugin/kubernetes/handler.go
    # ServeDNS; plugin/backend_lookup.go BackendError for NXDOMAIN), which leaves RA clear
    assert "recursion requested but not available" in out
    authority = out.split(";; AUTHORITY SECTION:")[1]
    assert "SOA\tns.dns.cluster.local. hostmaster.cluster.local." in authority


@pytest.mark.skipif(DIG is None, reason="dig is not installed (dnsutils)")
def test_dig_case_insensitive(server):
    assert dig(server.port, "+short", "WEB.DEFAULT.SVC.CLUSTER.LOCAL").split() == ["10.96.10.10"]


# ----------------------------------------------------------------------- answer() without sockets

INDEX = build_index()


def _wire(name="web.default.svc.cluster.local", qtype="A") -> DNSRecord:
    return DNSRecord.question(name, qtype)


def test_answer_ignores_responses():
    query = _wire()
    query.header.qr = 1
    assert answer(query.pack(), INDEX) == b""


def test_answer_refuses_zone_transfers_and_other_classes():
    assert DNSRecord.parse(answer(_wire(qtype="AXFR").pack(), INDEX)).header.rcode == RCODE.REFUSED
    chaos = DNSRecord(q=DNSQuestion("version.bind", QTYPE.TXT, CLASS.CH))
    assert DNSRecord.parse(answer(chaos.pack(), INDEX)).header.rcode == RCODE.REFUSED


def test_answer_notimp_for_other_opcodes_and_formerr_for_two_questions():
    update = _wire()
    update.header.opcode = 5
    assert DNSRecord.parse(answer(update.pack(), INDEX)).header.rcode == RCODE.NOTIMP
    two = _wire()
    two.add_question(DNSQuestion("db.data.svc.cluster.local"))
    assert DNSRecord.parse(answer(two.pack(), INDEX)).header.rcode == RCODE.FORMERR


def test_answer_copies_id_and_rd():
    query = _wire()
    query.header.rd = 0
    reply = DNSRecord.parse(answer(query.pack(), INDEX))
    assert reply.header.id == query.header.id and reply.header.rd == 0 and reply.header.ra == 0


def test_answer_unknown_type_is_nodata():
    reply = DNSRecord.parse(answer(_wire(qtype="MX").pack(), INDEX))
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr and len(reply.auth) == 1


def test_answer_edns_is_echoed_only_when_asked():
    plain = DNSRecord.parse(answer(_wire().pack(), INDEX))
    assert not any(rr.rtype == QTYPE.OPT for rr in plain.ar)
    query = _wire()
    query.add_ar(EDNS0(udp_len=4096))
    opt = [rr for rr in DNSRecord.parse(answer(query.pack(), INDEX)).ar if rr.rtype == QTYPE.OPT]
    assert len(opt) == 1 and opt[0].rclass == 1232


def test_frame_limits():
    assert frame(b"abc") == b"\x00\x03abc"
    with pytest.raises(ValueError):
        frame(b"x" * 70000)


# --------------------------------------------------------------------------- lifecycle


def test_serve_runs_both_and_closes_its_sockets_when_cancelled():
    udp, tcp = _bind_pair()
    port = udp.getsockname()[1]

    async def scenario():
        task = asyncio.create_task(serve(udp, tcp, lambda: INDEX))
        loop = asyncio.get_running_loop()
        for _ in range(100):
            await asyncio.sleep(0.01)
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        writer.write(frame(_wire().pack()))
        length = struct.unpack("!H", await reader.readexactly(2))[0]
        tcp_reply = DNSRecord.parse(await reader.readexactly(length))
        udp_reply = await loop.run_in_executor(
            None, lambda: ask(port, "web.default.svc.cluster.local")
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        writer.close()
        return tcp_reply, udp_reply

    tcp_reply, udp_reply = asyncio.run(scenario())
    assert rdata(tcp_reply) == rdata(udp_reply) == ["10.96.10.10"]
    assert udp.fileno() == -1 and tcp.fileno() == -1


def test_answer_keeps_the_query_case_on_the_wire():
    """CoreDNS plugin/kubernetes/handler_case_test.go TestPreserveCase: owner names as asked,
    the SRV target and its address under the query's spelling of the zone (dnslib compresses
    names case-sensitively, so nothing folds the case on the way out)."""
    asked = "_HtTp._TcP.WeB.default.svc.CLUSTER.local."
    reply = DNSRecord.parse(answer(_wire(asked, "SRV").pack(), INDEX))
    assert [str(rr.rname) for rr in reply.rr] == [asked]
    assert str(reply.rr[0].rdata.target) == "web.default.svc.CLUSTER.local."
    assert [str(rr.rname) for rr in reply.ar] == ["web.default.svc.CLUSTER.local."]


def test_answer_ns_has_glue_and_dns_version_its_ttl():
    """CoreDNS plugin/backend_lookup.go NS (glue from ns.go nsAddrs) and kubernetes.go Services
    (dns-version TXT, TTL 28800), packed as CoreDNS writes them."""
    ns = DNSRecord.parse(answer(_wire("cluster.local.", "NS").pack(), INDEX))
    assert [str(rr.rdata) for rr in ns.rr] == ["kube-dns.kube-system.svc.cluster.local."]
    assert [(str(rr.rname), str(rr.rdata)) for rr in ns.ar] == [
        ("kube-dns.kube-system.svc.cluster.local.", "10.96.0.10")
    ]
    txt = DNSRecord.parse(answer(_wire("dns-version.cluster.local.", "TXT").pack(), INDEX))
    assert [(rr.ttl, str(rr.rdata)) for rr in txt.rr] == [(28800, '"1.1.0"')]


def test_answer_any_is_nodata():
    """CoreDNS plugin/kubernetes/handler.go ServeDNS default case: ANY gets NODATA (with the SOA)
    for an existing name, never the records of every type."""
    reply = DNSRecord.parse(answer(_wire("web.default.svc.cluster.local.", "ANY").pack(), INDEX))
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]


def test_answer_shuffles_addresses_with_the_given_draw():
    """CoreDNS plugin/loadbalance/loadbalance.go: the headless Service's two addresses swap on
    an even draw and stay on an odd one."""
    query = _wire("db.data.svc.cluster.local.").pack()
    even = rdata_in_order(DNSRecord.parse(answer(query, INDEX, draw=lambda: 0)))
    odd = rdata_in_order(DNSRecord.parse(answer(query, INDEX, draw=lambda: 1)))
    assert odd == ["10.244.1.5", "10.244.2.7"] and even == list(reversed(odd))


def rdata_in_order(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr]
