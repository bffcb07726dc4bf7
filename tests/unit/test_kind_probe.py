"""Probe commands and the classification of their output (no Docker; loopback servers only)."""

import http.server
import os
import shutil
import socket
import socketserver
import subprocess
import threading

import pytest

from labkit.kind import pins
from labkit.kind import probe as P


def test_probe_command_shape():
    argv = P.probe_command("10.96.0.10", 53, "udp", 1.5)
    assert argv[:3] == ["bash", "-c", P.PROBE_SCRIPT]
    assert argv[3:] == ["labkit-probe", "10.96.0.10", "53", "1.5", "2", "5", "UDP"]
    assert P.probe_command("web", 80)[4:] == ["web", "80", "1", "1", "4", "TCP"]


def test_probe_command_refuses_other_protocols():
    with pytest.raises(ValueError):
        P.probe_command("x", 1, "SCTP")


def test_probe_script_uses_agnhost_connect_and_one_curl_for_both_paths():
    assert '"$agn" connect --timeout="${t}s" "$hp"' in P.PROBE_SCRIPT
    assert "--protocol=udp" in P.PROBE_SCRIPT
    assert '"http://$hp/hostname" "http://$hp/clientip"' in P.PROBE_SCRIPT
    assert "--noproxy" in P.PROBE_SCRIPT


def test_request_command_passes_method_and_path_as_arguments():
    """The method and path reach curl as ``-X METHOD`` and the URL's path (never as options of
    their own), with URL globbing off (curl ``-g``: ``[]{}`` stay literal)."""
    argv = P.request_command("10.96.0.10", 80, "POST", "/echo?msg=a&code=1", 1.5)
    assert argv[:3] == ["bash", "-c", P.REQUEST_SCRIPT]
    assert argv[3:] == ["labkit-request", "10.96.0.10", "80", "1.5", "2.5", "POST",
                        "/echo?msg=a&code=1"]  # fmt: skip
    assert '-X "$method"' in P.REQUEST_SCRIPT and '"http://$hp$path"' in P.REQUEST_SCRIPT
    assert " -g " in P.REQUEST_SCRIPT


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("@@CONNECT 1 TIMEOUT\n", P.RequestReading("timeout", detail="TIMEOUT")),
        ("@@CONNECT 1 REFUSED\n", P.RequestReading("refused", detail="REFUSED")),
        (
            "@@CONNECT 0 \nAccess denied\r\n\n@@HTTP 0 0.000412 403\n",
            P.RequestReading("connected", 403, "Access denied"),
        ),
        ("@@CONNECT 0 \nweb-1\n@@HTTP 0 0.0004 200\n", P.RequestReading("connected", 200, "web-1")),
        (
            "@@CONNECT 0 \ncurl: (28) Operation timed out\n@@HTTP 28 0.0004 000\n",
            P.RequestReading("connected", detail="connected; no HTTP answer (curl exit 28)"),
        ),
        (
            "OCI runtime exec failed\n",
            P.RequestReading("error", detail="request did not run: OCI runtime exec failed"),
        ),
    ],
)
def test_parse_request_output(text, reading):
    """curl's ``%{http_code}`` is the last response code, ``000`` when none came (curl(1),
    --write-out ``http_code``); `agnhost connect` prints TIMEOUT/REFUSED before its error
    (test/images/agnhost/connect/connect.go)."""
    assert P.parse_request_output(text) == reading


def test_ephemeral_container_is_agnhost_pause():
    spec = P.ephemeral_container()
    assert spec["name"] == P.PROBE_CONTAINER == "labkit-probe"
    assert spec["image"] == pins.AGNHOST_IMAGE == "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
    assert spec["args"] == ["pause"]
    assert P.ephemeral_patch() == {"spec": {"ephemeralContainers": [spec]}}


@pytest.mark.parametrize(
    "pod,state",
    [
        ({"spec": {}}, "absent"),
        ({"spec": {"ephemeralContainers": [{"name": "labkit-probe"}]}}, "waiting: not started yet"),
        (
            {
                "spec": {"ephemeralContainers": [{"name": "labkit-probe"}]},
                "status": {
                    "ephemeralContainerStatuses": [
                        {"name": "labkit-probe", "state": {"running": {}}}
                    ]
                },
            },
            "running",
        ),
        (
            {
                "spec": {"ephemeralContainers": [{"name": "labkit-probe"}]},
                "status": {
                    "ephemeralContainerStatuses": [
                        {"name": "labkit-probe", "state": {"waiting": {"reason": "ErrImagePull"}}}
                    ]
                },
            },
            "waiting: ErrImagePull",
        ),
        (
            {
                "spec": {"ephemeralContainers": [{"name": "labkit-probe"}]},
                "status": {
                    "ephemeralContainerStatuses": [
                        {"name": "labkit-probe", "state": {"terminated": {"reason": "Error"}}}
                    ]
                },
            },
            "terminated: Error",
        ),
    ],
)
def test_probe_container_state(pod, state):
    assert P.probe_container_state(pod) == state


@pytest.mark.parametrize(
    "message,outcome",
    [
        ("TIMEOUT", "timeout"),
        ("TIMEOUT: read udp 10.244.1.3:40000->10.96.0.10:53: i/o timeout", "timeout"),
        ("REFUSED", "refused"),
        ("REFUSED: read udp: connection refused", "refused"),
        ("DNS: lookup nosuch on 10.96.0.10:53: no such host", "dns"),
        ("OTHER: dial tcp 10.1.2.3:80: connect: no route to host", "unreachable"),
        ("OTHER: dial tcp 10.1.2.3:80: connect: network is unreachable", "unreachable"),
        ("OTHER: something odd", "error"),
        ("UNKNOWN: missing port in address", "error"),
    ],
)
def test_classify_connect(message, outcome):
    assert P.classify_connect(message) == outcome


def test_parse_tcp_connected_with_answers_from_one_connection():
    out = (
        "@@CONNECT 0 \nweb-6d4b-x2k9q\n@@HTTP 0 0.000812 200\n"
        "10.244.1.7:51234\n@@HTTP 0 0.000000 200\n"
    )
    r = P.parse_probe_output(out, "TCP")
    assert r == P.Reading("connected", 0.000812, "web-6d4b-x2k9q", "10.244.1.7", "")


def test_parse_tcp_keeps_a_status_other_than_200():
    """curl without --fail prints the body and %{http_code} of a 403 and goes on (curl's
    --fail-early only stops after a failed transfer); Cilium's proxy answers a request its HTTP
    rules deny with 403 "Access denied" (cilium/proxy cilium/l7policy.cc), which the probe
    names as an L7 denial, as the sandbox's probe does; another status is named as it came."""
    out = (
        "@@CONNECT 0 \nAccess denied\r\n\n@@HTTP 0 0.000412 403\n"
        "Access denied\r\n\n@@HTTP 0 0.000000 403\n"
    )
    r = P.parse_probe_output(out, "TCP")
    assert (r.outcome, r.http_status, r.served_by, r.client_ip) == ("connected", 403, None, None)
    assert r.detail == (
        "connected; GET /hostname denied by Cilium's HTTP proxy (403 Access denied): "
        "a CiliumNetworkPolicy HTTP rule, not an L3/L4 drop"
    )
    out = "@@CONNECT 0 \noops\nmore\n@@HTTP 0 0.0004 500\noops\n@@HTTP 0 0.0 500\n"
    r = P.parse_probe_output(out, "TCP")
    assert (r.http_status, r.detail) == (500, "connected; GET /hostname answered 500: oops")
    ok = "@@CONNECT 0 \nweb-1\n@@HTTP 0 0.0004 200\n10.0.0.1:5\n@@HTTP 0 0.0 200\n"
    assert P.parse_probe_output(ok, "TCP").http_status is None


def test_parse_tcp_connected_non_agnhost_server():
    html = "<html>\n<body>hello world</body>\n</html>"
    out = f"@@CONNECT 0 \n{html}\n@@HTTP 0 0.0012 200\n{html}\n@@HTTP 0 0.0 200\n"
    r = P.parse_probe_output(out, "TCP")
    assert r.outcome == "connected" and r.served_by is None and r.client_ip is None


def test_parse_tcp_connected_but_no_http():
    out = "@@CONNECT 0 \ncurl: (52) Empty reply from server\n@@HTTP 52 0.0009 000\n"
    r = P.parse_probe_output(out, "TCP")
    assert r.outcome == "connected" and r.latency_s == 0.0009 and "curl exit 52" in r.detail


@pytest.mark.parametrize(
    "text,outcome",
    [
        ("@@CONNECT 1 TIMEOUT\n", "timeout"),
        ("@@CONNECT 1 REFUSED\n", "refused"),
        ("@@CONNECT 1 DNS: lookup web.nope on 10.96.0.10:53: no such host\n", "dns"),
    ],
)
def test_parse_failures(text, outcome):
    r = P.parse_probe_output(text, "TCP")
    assert r.outcome == outcome and r.served_by is None and r.detail


def test_parse_when_probe_did_not_run():
    r = P.parse_probe_output(
        'error: unable to upgrade connection: container not found ("labkit-probe")'
    )
    assert r.outcome == "error" and "container not found" in r.detail
    assert P.parse_probe_output("").outcome == "error"


def test_parse_udp():
    out = (
        "@@CONNECT 0 \n@@UDP 100.250 100.2515\n@@HOSTNAME dns-pod \n@@CLIENTIP 10.244.2.4:39000 \n"
    )
    r = P.parse_probe_output(out, "UDP")
    assert r.outcome == "connected" and r.served_by == "dns-pod" and r.client_ip == "10.244.2.4"
    assert r.latency_s == pytest.approx(0.0015)


def test_parse_udp_no_answer_text():
    r = P.parse_probe_output("@@CONNECT 0 \n@@UDP x y\n@@HOSTNAME \n@@CLIENTIP \n", "UDP")
    assert r.outcome == "connected" and r.latency_s is None and r.served_by is None and r.detail


@pytest.mark.parametrize(
    "answer,ip",
    [
        ("10.244.1.7:51234", "10.244.1.7"),
        ("[fd00::5]:443", "fd00::5"),
        ("10.0.0.1", "10.0.0.1"),
        ("hello", None),
        ("", None),
    ],
)
def test_client_host(answer, ip):
    assert P.client_host(answer) == ip


@pytest.mark.parametrize(
    "rtype,out,answers",
    [
        ("A", "10.96.0.1\n", ["10.96.0.1"]),
        ("A", "web.default.svc.cluster.local.\n10.96.12.4\n", ["10.96.12.4"]),
        ("A", "", []),
        ("AAAA", "fd00:10:96::1\n", ["fd00:10:96::1"]),
        (
            "SRV",
            "0 100 80 web.default.svc.cluster.local.\n",
            ["0 100 80 web.default.svc.cluster.local."],
        ),
        (
            "PTR",
            ";; comment\nkubernetes.default.svc.cluster.local.\n",
            ["kubernetes.default.svc.cluster.local."],
        ),
    ],
)
def test_parse_dig(rtype, out, answers):
    assert P.parse_dig(out, rtype) == answers


def test_dig_failure_detection():
    assert P.dig_failed(
        ";; communications error to 10.96.0.10#53: timed out\n;; no servers could be reached", 9
    )
    assert P.dig_failed(";; connection timed out; no servers could be reached", 0)
    assert not P.dig_failed("", 0)


def test_resolve_command_uses_search_list():
    assert P.resolve_command("web", "srv") == [
        "dig",
        "+search",
        "+short",
        "+time=2",
        "+tries=1",
        "-t",
        "SRV",
        "-q",
        "web",
    ]


# --------------------------------------------------------------------------- loopback servers


class _Agent(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host, port = self.client_address[:2]
        answers = {"/hostname": "web-abc12", "/clientip": f"{host}:{port}"}
        body = answers.get(self.path, "ok").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        """Cilium's proxy denying the request (cilium/proxy ``cilium/l7policy.cc``)."""
        body = b"Access denied\r\n"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def agent():
    """An agnhost-netexec-like server on loopback: HTTP on TCP, hostname/clientip datagrams on
    UDP."""
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Agent)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_udp():
        udp.settimeout(0.2)
        while not stop.is_set():
            try:
                data, addr = udp.recvfrom(65535)
            except OSError:
                continue
            reply = {"hostname": b"udp-abc12", "clientip": b"%s:%d" % (addr[0].encode(), addr[1])}
            udp.sendto(reply.get(data.decode().strip(), b"?"), addr)

    threads = [
        threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
        threading.Thread(target=serve_udp, daemon=True),
    ]
    for t in threads:
        t.start()
    yield tcp.server_address[1], udp.getsockname()[1]
    stop.set()
    tcp.shutdown()
    tcp.server_close()
    udp.close()


@pytest.mark.skipif(
    not (
        shutil.which("bash")
        and shutil.which("curl")
        and shutil.which("dd")
        and shutil.which("timeout")
    ),
    reason="needs bash, curl, dd and timeout",
)
@pytest.mark.parametrize("protocol", ["TCP", "UDP"])
def test_probe_script_end_to_end_on_loopback(agent, tmp_path, protocol):
    """The real script with real curl/bash; only `agnhost connect` is replaced by a stand-in that
    says "connected", so this checks the answer-gathering half and its parser."""
    fake = tmp_path / "agnhost"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    port = agent[0] if protocol == "TCP" else agent[1]
    proc = subprocess.run(
        P.probe_command("127.0.0.1", port, protocol, 5.0),  # room for a loaded machine
        capture_output=True,
        text=True,
        env={**os.environ, "AGNHOST": str(fake)},
        timeout=20,
    )
    r = P.parse_probe_output(proc.stdout, protocol)
    assert r.outcome == "connected", proc.stdout + proc.stderr
    assert r.served_by == ("web-abc12" if protocol == "TCP" else "udp-abc12")
    assert r.client_ip == "127.0.0.1"


@pytest.mark.skipif(not (shutil.which("bash") and shutil.which("curl")), reason="needs bash, curl")
@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [("GET", "/hostname", 200, "web-abc12"), ("POST", "/hostname", 403, "Access denied")],
)
def test_request_script_end_to_end_on_loopback(agent, tmp_path, method, path, status, body):
    """The real request script with real curl; `agnhost connect` is a stand-in that says
    "connected". A 403 "Access denied" (Cilium's proxy, cilium/proxy ``cilium/l7policy.cc``)
    reads as an answer on a connection that was made."""
    fake = tmp_path / "agnhost"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        P.request_command("127.0.0.1", agent[0], method, path, 1.0),
        capture_output=True,
        text=True,
        env={**os.environ, "AGNHOST": str(fake)},
        timeout=20,
    )
    assert P.parse_request_output(proc.stdout) == P.RequestReading("connected", status, body)
