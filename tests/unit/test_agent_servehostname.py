"""The sandbox's emulation of agnhost ``serve-hostname``
(test/images/agnhost/serve-hostname/servehostname.go): which pods get it, what it answers and
logs."""

from __future__ import annotations

import pytest

from labkit.sandbox.agent.servehostname import (
    serve_hostname_answer,
    serve_hostname_log,
    serve_hostname_started,
)
from labkit.sandbox.agent.spec import parse_spec
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.workloads import (
    pod_role,
    served_pods,
    serves_hostname_over_http,
    workload_entry,
)


def test_the_answer_is_the_hostname_without_a_newline():
    """servehostname.go's HTTP handler: ``fmt.Fprintf(w, "%s", hostname)`` on "/", which Go's
    ServeMux matches for every path: the bare ``os.Hostname()``."""
    assert serve_hostname_answer("api-6c8d9f7b5c-aaaaa") == b"api-6c8d9f7b5c-aaaaa"


def test_its_log_lines():
    """servehostname.go: ``log.Printf("HTTP request from %s", r.RemoteAddr)`` per request and
    ``log.Printf("Serving on port %d.\\n", port)`` once it listens."""
    assert serve_hostname_log(("10.244.1.7", 40312)) == "HTTP request from 10.244.1.7:40312"
    assert serve_hostname_log(("fd00::7", 1)) == "HTTP request from [fd00::7]:1"
    assert serve_hostname_started(8080) == "Serving on port 8080."


@pytest.mark.parametrize(
    "args, http",
    [
        (["serve-hostname"], True),  # --http defaults to true
        (["serve-hostname", "--http", "--port=8080"], True),
        (["serve-hostname", "--port", "8080", "--http=true"], True),
        (["serve-hostname", "--tcp", "--udp", "--http=false"], False),  # the raw modes
        (["serve-hostname", "--udp", "--http=false"], False),
        (["serve-hostname", "--http=false"], False),
        (["serve-hostname", "--http=false", "--http"], True),  # the last one wins
        (["netexec", "--http-port=8080"], False),
        ([], False),
    ],
)
def test_http_mode_follows_the_flags(args, http):
    """servehostname.go, init: ``--tcp`` and ``--udp`` default false, ``--http`` true, and main
    refuses HTTP together with TCP or UDP; pflag reads ``--flag`` and ``--flag=value``."""
    assert serves_hostname_over_http(args) is http


def pod(image: str, args: list[str]) -> dict:
    return {"spec": {"containers": [{"name": "c", "image": image, "args": args}]}}


def test_pod_roles():
    """A pod running serve-hostname over HTTP is served as serve-hostname; other agnhost pods
    stay netexec; CoreDNS keeps its role whatever its args."""
    agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
    assert pod_role(pod(agnhost, ["serve-hostname", "--http", "--port=8080"])) == "serve-hostname"
    assert pod_role(pod(agnhost, ["netexec", "--http-port=8080"])) == "netexec"
    assert pod_role(pod("registry.k8s.io/coredns/coredns:v1.12.1", ["-conf"])) == "dns"


def test_the_agent_spec_accepts_the_role():
    """workloads.json may name the serve-hostname role; an unknown role is still refused."""
    row = {"namespace": "d", "name": "p", "netns": "n", "ip": "10.0.0.1", "ports": []}
    spec = parse_spec({"workloads": [{**row, "role": "serve-hostname"}]})
    assert spec.workloads[0].role == "serve-hostname"
    with pytest.raises(ValueError, match="role 'echo'"):
        parse_spec({"workloads": [{**row, "role": "echo"}]})


def test_its_http_mode_serves_tcp_ports_only():
    """In HTTP mode servehostname.go listens with http.ListenAndServe (TCP) and opens no UDP
    socket, so a declared UDP port answers nothing."""
    spec = pod("agnhost", ["serve-hostname", "--port=9376"])
    spec["metadata"] = {"name": "web", "namespace": "d"}
    spec["spec"]["containers"][0]["ports"] = [
        {"containerPort": 9376, "protocol": "TCP"},
        {"containerPort": 9376, "protocol": "UDP"},
    ]
    net = PodNet("d", "web", "lab-worker", "10.244.1.5", "lk-x-p-1", "cali1", False)
    [row] = [workload_entry(p, n) for p, n in served_pods([spec], {net.key: net})]
    assert row["role"] == "serve-hostname" and row["ports"] == [{"port": 9376, "protocol": "TCP"}]
