"""The sandbox's netexec answers each HTTP request as agnhost netexec's handlers do
(test/images/agnhost/netexec/netexec.go at agnhost 2.66: ``addRoutes`` and each handler): the
status, the body and the line logged."""

from __future__ import annotations

import json

import pytest

from labkit.sandbox.agent.http import HttpMessage
from labkit.sandbox.agent.netexec import (
    body_allowed,
    canonical_header_key,
    go_atoi,
    go_quote,
    go_time_string,
    netexec_http_reply,
)

PEER = ("10.244.1.7", 40000)
NOW = "2026-12-06 22:03:33.5 +0000 UTC m=+3.000000001"


def ask(
    target: str,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    peer: object = PEER,
) -> tuple[int, str, str]:
    request = HttpMessage((method, target, "HTTP/1.1"), headers or [("host", "web:8080")], body)
    reply = netexec_http_reply("web-1", request, peer, lambda: NOW)
    return reply.status, reply.body, reply.logged


@pytest.mark.parametrize(
    "target, status, body, logged",
    [
        # hostnameHandler and the older hostNameHandler: fmt.Fprint(w, getHostName())
        ("/hostname", 200, "web-1", "GET /hostname"),
        ("/hostName", 200, "web-1", "GET /hostName"),
        ("/hostname?x=1", 200, "web-1", "GET /hostname"),
        # clientIPHandler: r.RemoteAddr
        ("/clientip", 200, "10.244.1.7:40000", "GET /clientip"),
        # echoHandler: msg, with WriteHeader(code) for an integer code
        ("/echo?msg=hi%20there", 200, "hi there", "GET /echo?msg=hi there&code="),
        ("/echo", 200, "", "GET /echo?msg=&code="),
        ("/echo?msg=gone&code=404", 404, "gone", "GET /echo?msg=gone&code=404"),
        ("/echo?msg=x&code=%2B201", 201, "x", "GET /echo?msg=x&code=+201"),
        (
            "/echo?msg=x&code=teapot",
            200,
            "argument 'code' must be an integer or empty, got \"teapot\"\n",
            "GET /echo?msg=x&code=teapot",
        ),
        # healthzHandler: WriteHeader(200) and no body; readyzHandler: "ok"
        ("/healthz", 200, "", "GET /healthz"),
        ("/readyz", 200, "ok", "GET /readyz"),
        # rootHandler takes "/" and every path without a handler of its own (ServeMux)
        ("/", 200, f"NOW: {NOW}", "GET /"),
        ("/api/orders", 200, f"NOW: {NOW}", "GET /"),
        ("/livez", 200, f"NOW: {NOW}", "GET /"),
        ("/hostname/", 200, f"NOW: {NOW}", "GET /"),
        ("/HOSTNAME", 200, f"NOW: {NOW}", "GET /"),
    ],
)
def test_each_handler_answers_as_upstream(target: str, status: int, body: str, logged: str):
    assert ask(target) == (status, body, logged)


def test_the_method_does_not_choose_the_handler():
    """addRoutes registers paths without methods, and each handler logs ``GET``."""
    assert ask("/hostname", "POST") == (200, "web-1", "GET /hostname")
    assert ask("/api", "DELETE") == (200, f"NOW: {NOW}", "GET /")


def test_echo_reads_a_url_encoded_body_before_the_query():
    """r.FormValue parses a POST, PUT or PATCH form body first (net/http Request.ParseForm)."""
    form = [("content-type", "application/x-www-form-urlencoded")]
    status, body, _ = ask("/echo?msg=query", "POST", form, b"msg=body&code=202")
    assert (status, body) == (202, "body")
    assert ask("/echo?msg=query", "GET", form, b"msg=body")[1] == "query"
    assert ask("/echo?msg=query", "POST", [], b"msg=body")[1] == "query"


def test_header_answers_one_value_or_every_header_as_json():
    """headerHandler: r.Header.Get(key), or json.Marshal(r.Header) without a key; Go keeps Host
    out of r.Header and canonicalises the names."""
    headers = [
        ("host", "web:8080"),
        ("x-forwarded-for", "10.0.0.9"),
        ("accept", "*/*"),
        ("x-forwarded-for", "10.0.0.8"),
        ("x-note", "a<b&c>"),
    ]
    assert ask("/header?key=X-Forwarded-For", headers=headers)[:2] == (200, "10.0.0.9")
    assert ask("/header?key=x-forwarded-for", headers=headers)[2] == (
        "GET /header?key=x-forwarded-for"
    )
    assert ask("/header?key=Host", headers=headers)[1] == ""
    assert ask("/header?key=missing", headers=headers)[1] == ""
    status, body, logged = ask("/header", headers=headers)
    assert (status, logged) == (200, "GET /header")
    assert body == (
        '{"Accept":["*/*"],"X-Forwarded-For":["10.0.0.9","10.0.0.8"],'
        '"X-Note":["a\\u003cb\\u0026c\\u003e"]}'
    )
    assert json.loads(body)["X-Note"] == ["a<b&c>"]


def test_clientip_brackets_an_ipv6_peer():
    """r.RemoteAddr is net.JoinHostPort's form."""
    assert ask("/clientip", peer=("fd00::5", 8080, 0, 0))[1] == "[fd00::5]:8080"


@pytest.mark.parametrize(
    "wall_ns, mono_ns, text",
    [
        (
            1_796_594_613_123_456_789,
            3_000_000_001,
            "2026-12-06 22:03:33.123456789 +0000 UTC m=+3.000000001",
        ),
        (1_796_594_613_500_000_000, 5, "2026-12-06 22:03:33.5 +0000 UTC m=+0.000000005"),
        (
            1_796_594_613_000_000_000,
            61_000_000_000,
            "2026-12-06 22:03:33 +0000 UTC m=+61.000000000",
        ),
    ],
)
def test_now_is_gos_time_string(wall_ns: int, mono_ns: int, text: str):
    """Go's Time.String (src/time/format.go): layout "2006-01-02 15:04:05.999999999 -0700 MST"
    (trailing zeros of the fraction dropped), then " m=+<s>.<9 digits>" for the monotonic
    reading."""
    assert go_time_string(wall_ns, mono_ns) == text


def test_go_helpers():
    """textproto.CanonicalMIMEHeaderKey, strconv.Atoi, %q, bodyAllowedForStatus."""
    assert canonical_header_key("x-forwarded-for") == "X-Forwarded-For"
    assert canonical_header_key("WWW-AUTHENTICATE") == "Www-Authenticate"
    assert canonical_header_key("bad name") == "bad name"
    assert [go_atoi(t) for t in ("42", "+7", "-3", "", "4a", "+", "٣")] == [42, 7, -3, *[None] * 4]
    assert go_quote('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'
    assert [body_allowed(s) for s in (100, 200, 204, 304, 404)] == [False, True, False, False, True]
