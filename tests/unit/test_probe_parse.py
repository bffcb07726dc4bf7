"""Pure helpers of the sandbox prober and workload agent: HTTP framing, agnhost answers,
Ingress rule matching, the workloads.json contract, and how probe answers are read."""

from __future__ import annotations

import asyncio
import errno
import ipaddress

import pytest

from labkit.model.addresses import is_ip, parse_ip
from labkit.model.dns.records import Record
from labkit.sandbox.agent.http import (
    HttpError,
    parse_head,
    read_message,
    render_request,
    render_response,
)
from labkit.sandbox.agent.ingress import (
    IngressRule,
    host_matches,
    match_ingress,
    path_matches,
    request_host,
    sort_ingress_rules,
)
from labkit.sandbox.agent.listeners import listener_keys
from labkit.sandbox.agent.netexec import netexec_udp_answer
from labkit.sandbox.agent.spec import PortSpec, parse_spec
from labkit.sandbox.pod_resolver import ptr_name
from labkit.sandbox.probe_outcome import (
    ConnectAttempt,
    classify_os_error,
    client_ip_of,
    connected,
    describe_dns_reply,
    dns_probe_query,
)

# --------------------------------------------------------------------------- probe answers


@pytest.mark.parametrize(
    "answer, ip",
    [
        ("10.244.1.5:43120", "10.244.1.5"),
        ("10.244.1.5:43120\n", "10.244.1.5"),
        ("10.0.0.1", "10.0.0.1"),
        ("[fd00::5]:8080", "fd00::5"),
        ("fd00::5", "fd00::5"),
        ("pod-a", None),
        ("", None),
        ("1.2.3:4", None),
    ],
)
def test_client_ip_of(answer: str, ip: str | None) -> None:
    assert client_ip_of(answer) == ip


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10.96.0.10", True),
        ("::1", True),
        ("web", False),
        ("10.96.0", False),
        ("web.default", False),
        ("", False),
    ],
)
def test_is_ip(text: str, expected: bool) -> None:
    assert is_ip(text) is expected


def test_ptr_name() -> None:
    assert ptr_name("10.96.0.10") == "10.0.96.10.in-addr.arpa"


@pytest.mark.parametrize(
    "exc, outcome",
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "x"), "refused"),
        (OSError(errno.ECONNREFUSED, "x"), "refused"),
        (OSError(errno.EHOSTUNREACH, "x"), "unreachable"),
        (OSError(errno.ENETUNREACH, "x"), "unreachable"),
        (OSError(errno.ETIMEDOUT, "x"), "timeout"),
        (OSError(errno.EACCES, "x"), "error"),
    ],
)
def test_classify_os_error(exc: OSError, outcome: str) -> None:
    assert classify_os_error(exc) == outcome


def test_connected_names_server_and_client() -> None:
    assert connected(
        "connected to 10.96.0.20:80 in 1.0 ms", 0.001, "web-1", "10.244.1.5:43120", "late"
    ) == ConnectAttempt(
        "connected",
        0.001,
        "web-1",
        "10.244.1.5",
        "connected to 10.96.0.20:80 in 1.0 ms; served by web-1; "
        "it saw the client as 10.244.1.5:43120; late",
    )
    assert connected("UDP answer", 0.002, None, None) == ConnectAttempt(
        "connected", 0.002, None, None, "UDP answer"
    )
    assert connected("x", 0.1, None, "pod-a").client_ip is None


def test_dns_probe_question_and_reply_words() -> None:
    from dnslib import RR, DNSRecord

    qid, packet = dns_probe_query()
    query = DNSRecord.parse(packet)
    assert query.header.id == qid and str(query.q.qname) == "kubernetes.default.svc.cluster.local."
    reply = query.reply()
    reply.add_answer(*RR.fromZone("kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1"))
    assert (
        describe_dns_reply(reply.pack())
        == "DNS answered NOERROR for kubernetes.default.svc.cluster.local (10.96.0.1)"
    )
    empty = query.reply()
    empty.header.rcode = 3
    assert (
        describe_dns_reply(empty.pack())
        == "DNS answered NXDOMAIN for kubernetes.default.svc.cluster.local"
    )
    assert describe_dns_reply(b"web-1") == "an answer that is not DNS"


# --------------------------------------------------------------------------- HTTP framing


def _read(data: bytes, **kw):
    async def run():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_message(reader, **kw)

    return asyncio.run(run())


def test_parse_request_head() -> None:
    msg = parse_head(b"GET /echo?msg=x HTTP/1.1\r\nHost: web\r\nX-A:  b \r\n", response=False)
    assert msg.start == ("GET", "/echo?msg=x", "HTTP/1.1")
    assert msg.headers == [("host", "web"), ("x-a", "b")] and msg.header("X-A") == "b"
    assert msg.keep_alive


@pytest.mark.parametrize(
    "head, keep",
    [
        (b"GET / HTTP/1.1", True),
        (b"GET / HTTP/1.1\r\nConnection: close", False),
        (b"GET / HTTP/1.0", False),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive", True),
        (b"GET / HTTP/1.1\r\nConnection: upgrade, close", False),
    ],
)
def test_keep_alive(head: bytes, keep: bool) -> None:
    assert parse_head(head, response=False).keep_alive is keep


@pytest.mark.parametrize(
    "head, response, status",
    [
        (b"GARBAGE", False, 400),
        (b"GET /", False, 400),
        (b"GET / HTTP/2.0", False, 505),
        (b"GET / HTTP/1.1\r\nno colon", False, 400),
        (b"GET / HTTP/1.1\r\n bad: x", False, 400),
        (b"220 mail ready", True, 502),
        (b"HTTP/1.1 abc OK", True, 502),
    ],
)
def test_bad_heads(head: bytes, response: bool, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse_head(head, response=response)
    assert info.value.status == status


def test_read_message_bodies() -> None:
    assert (
        _read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", response=True).body
        == b"hello"
    )
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    )
    assert _read(chunked, response=True).body == b"hello world"
    assert _read(b"HTTP/1.0 200 OK\r\n\r\nuntil eof", response=True).body == b"until eof"
    assert _read(b"HTTP/1.1 204 No Content\r\n\r\n", response=True).body == b""
    assert (
        _read(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", response=True, request_method="HEAD"
        ).body
        == b""
    )
    assert _read(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", response=False).body == b"hi"
    assert _read(b"GET / HTTP/1.1\r\n\r\n", response=False).body == b""
    assert _read(b"", response=False) is None
    with pytest.raises(HttpError):
        _read(b"GET / HTTP/1.1\r\nHost", response=False)
    with pytest.raises(HttpError):
        _read(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", response=False)


def test_render_response_and_request_round_trip() -> None:
    wire = render_response(200, "web-1", keep_alive=True, headers=[("X-A", "1")])
    msg = _read(wire, response=True)
    assert msg.start == ("HTTP/1.1", "200", "OK") and msg.body == b"web-1"
    assert (
        msg.header("content-type").startswith("text/plain")
        and msg.keep_alive
        and msg.header("x-a") == "1"
    )
    assert not _read(render_response(404, b"", keep_alive=False), response=True).keep_alive
    req = _read(render_request("POST", "/echo", [("Host", "h")], b"abc"), response=False)
    assert (req.start[:2], req.header("host"), req.body) == (("POST", "/echo"), "h", b"abc")


@pytest.mark.parametrize(
    "host_header, host",
    [
        ("Shop.Example", "shop.example"),
        ("shop.example:8080", "shop.example"),
        ("", ""),
        ("10.0.0.1:80", "10.0.0.1"),
        ("[fd00::1]:80", "[fd00::1]"),
    ],
)
def test_request_host(host_header: str, host: str) -> None:
    assert request_host({"host": host_header} if host_header else {}) == host


# -------------------------------------------------------------------------- agnhost netexec UDP


@pytest.mark.parametrize(
    "data, answer",
    [
        (b"hostname", b"web-1"),
        (b"hostname\n", b"web-1"),
        (b"HOSTNAME", b"web-1"),
        (b"Echo Hi", b"hi"),
        (b"clientip", b"10.244.1.7:40000"),
        (b"echo hello", b"hello"),
        (b"echo  two  spaces", b" two  spaces"),
        (b"nonsense", None),
        (b"", None),
    ],
)
def test_netexec_udp_answer(data: bytes, answer: bytes | None) -> None:
    """agnhost netexec's startUDPServer (test/images/agnhost/netexec/netexec.go) trims and
    lower-cases each datagram before it compares or echoes it."""
    assert netexec_udp_answer("web-1", data, ("10.244.1.7", 40000)) == answer


# --------------------------------------------------------------------------- Ingress matching


@pytest.mark.parametrize(
    "rule_path, path, expected",
    [
        ("/", "/", True),
        ("/", "/anything/at/all", True),
        ("/api", "/api", True),
        ("/api", "/api/", True),
        ("/api", "/api/v1", True),
        ("/api", "/apis", False),
        ("/api/", "/api", True),
        ("/api/v1", "/api", False),
        ("/aaa/bb", "/aaa/bbb", False),
        ("/aaa/bbb", "/aaa/bbb/ccc", True),
    ],
)
def test_prefix_matches_whole_path_elements(rule_path: str, path: str, expected: bool) -> None:
    assert path_matches("Prefix", rule_path, path) is expected
    assert path_matches("ImplementationSpecific", rule_path, path) is expected


@pytest.mark.parametrize(
    "rule_path, path, expected",
    [
        ("/foo", "/foo", True),
        ("/foo", "/foo/", False),
        ("/foo", "/bar", False),
        ("/foo/", "/foo", False),
    ],
)
def test_exact(rule_path: str, path: str, expected: bool) -> None:
    assert path_matches("Exact", rule_path, path) is expected


@pytest.mark.parametrize(
    "rule_host, host, score",
    [
        (None, "anything", 1),
        ("foo.bar.com", "foo.bar.com", 3),
        ("*.bar.com", "foo.bar.com", 2),
        ("*.bar.com", "baz.foo.bar.com", 0),
        ("*.bar.com", "bar.com", 0),
        ("foo.bar.com", "bar.com", 0),
    ],
)
def test_host_matches(rule_host: str | None, host: str, score: int) -> None:
    assert host_matches(rule_host, host) == score


def _rule(host, path, path_type="Prefix", service="s"):
    return IngressRule(host, path, path_type, "10.96.0.50", 80, service)


RULES = [
    _rule(None, "/", service="catch-all"),
    _rule("shop.example", "/api", service="api"),
    _rule("shop.example", "/api/v2", service="api-v2"),
    _rule("shop.example", "/api/v2", "Exact", service="api-v2-exact"),
    _rule("*.example", "/", service="wildcard"),
    _rule("admin.example", "/dashboard", "Exact", service="dashboard"),
]


@pytest.mark.parametrize(
    "host, path, service",
    [
        ("shop.example", "/api/orders", "api"),
        ("shop.example", "/api/v2/orders", "api-v2"),
        ("shop.example", "/api/v2", "api-v2-exact"),
        ("shop.example", "/apix", "wildcard"),  # no path of the host matches: wildcard host next
        ("SHOP.example", "/api", "api"),
        ("admin.example", "/dashboard", "dashboard"),
        ("admin.example", "/dashboard/x", "wildcard"),
        ("other.test", "/api", "catch-all"),
        ("", "/", "catch-all"),
    ],
)
def test_match_ingress(host: str, path: str, service: str) -> None:
    assert match_ingress(RULES, host, path).service == service


def test_match_ingress_without_catch_all_is_the_default_backend() -> None:
    assert match_ingress(RULES[1:4], "other.test", "/api") is None
    assert match_ingress(RULES[1:4], "shop.example", "/") is None
    assert match_ingress([], "shop.example", "/") is None


def test_sort_ingress_rules_is_precedence_order() -> None:
    order = [r.service for r in sort_ingress_rules(RULES)]
    assert order == ["dashboard", "api-v2-exact", "api-v2", "api", "wildcard", "catch-all"]


# --------------------------------------------------------------------------- workloads.json


def _spec(**extra):
    base = {
        "workloads": [
            {
                "namespace": "default",
                "name": "web-1",
                "netns": "lk-lab-p-1",
                "ip": "10.244.1.2",
                "role": "netexec",
                "ports": [
                    {"port": 8080, "protocol": "TCP"},
                    {"port": 8080},
                    {"port": 53, "protocol": "UDP"},
                ],
            }
        ]
    }
    base.update(extra)
    return base


def test_parse_spec_reads_everything() -> None:
    spec = parse_spec(
        _spec(
            dns_records=[["web.default.svc.cluster.local.", "A", "10.96.0.20", 30]],
            ingress=[
                {
                    "host": "Shop.Example",
                    "path": "/api",
                    "pathType": "Exact",
                    "backend": {"ip": "10.96.0.20", "port": 80, "service": "default/web"},
                },
                {"host": None, "path": "/", "backend": {"ip": "10.96.0.21", "port": 8080}},
            ],
            tls_hosts=["shop.example"],
            dns_namespaces=["default", "empty"],
        )
    )
    (w,) = spec.workloads
    assert w.ref == "default/web-1" and w.ports == (PortSpec(8080, "TCP"), PortSpec(53, "UDP"))
    assert spec.dns_records == (Record("web.default.svc.cluster.local.", "A", "10.96.0.20", 30),)
    assert [(r.host, r.path_type, r.service) for r in spec.ingress] == [
        ("shop.example", "Exact", "default/web"),
        (None, "Prefix", "10.96.0.21:8080"),
    ]
    assert spec.tls_hosts == ("shop.example",)
    assert spec.dns_namespaces == ("default", "empty")
    assert list(listener_keys(spec)) == [
        ("lk-lab-p-1", "TCP", 8080, "netexec", "default/web-1"),
        ("lk-lab-p-1", "UDP", 53, "netexec", "default/web-1"),
    ]
    assert parse_spec({}).workloads == ()


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "JSON object"),
        (_spec(workloads=[{"name": "x"}]), "'namespace' is missing"),
        (_spec(workloads=[{**_spec()["workloads"][0], "role": "nginx"}]), "role 'nginx'"),
        (_spec(workloads=[{**_spec()["workloads"][0], "ports": [{"port": 0}]}]), "outside 1-65535"),
        (
            _spec(
                workloads=[{**_spec()["workloads"][0], "ports": [{"port": 80, "protocol": "SCTP"}]}]
            ),
            "not TCP or UDP",
        ),
        (
            _spec(workloads=[{**_spec()["workloads"][0], "ports": [{"port": True}]}]),
            "'port' is missing",
        ),
        (
            _spec(
                workloads=[_spec()["workloads"][0], {**_spec()["workloads"][0], "name": "web-2"}]
            ),
            "share netns",
        ),
        (_spec(dns_records=[["a", "A", "1.2.3.4"]]), "dns_records[0]"),
        (
            _spec(ingress=[{"path": "api", "backend": {"ip": "10.96.0.1", "port": 80}}]),
            "must start with '/'",
        ),
        (
            _spec(
                ingress=[
                    {"path": "/", "pathType": "Regex", "backend": {"ip": "10.96.0.1", "port": 80}}
                ]
            ),
            "pathType",
        ),
        (_spec(ingress=[{"path": "/"}]), "ingress[0].backend: 'ip' is missing"),
        (_spec(tls_hosts="shop"), "tls_hosts"),
        (_spec(dns_namespaces=["default", 7]), "dns_namespaces"),
    ],
)
def test_parse_spec_names_each_problem(data, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_spec(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text", ["10.244.1.7", "fd00::1", "::ffff:10.0.0.1", "10.0.0.256", "x", ""]
)
def test_parse_ip_is_ip_address_remembered(text):
    """parse_ip answers as Python's ipaddress.ip_address (CPython Lib/ipaddress.py ``ip_address``),
    the same object when asked again, and a bad address raises every time."""

    try:
        expected = ipaddress.ip_address(text)
    except ValueError:
        for _ in range(2):
            with pytest.raises(ValueError):
                parse_ip(text)
        return
    assert parse_ip(text) == expected and parse_ip(text) is parse_ip(text)
