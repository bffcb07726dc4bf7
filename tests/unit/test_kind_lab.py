"""The Kind Lab's pure helpers, and what it refuses before touching any cluster (no Docker)."""

import http.server
import os
import shlex
import shutil
import socketserver
import threading

import pytest

from labkit.errors import LabError
from labkit.kind import detect, hostcontainers, pins
from labkit.kind import probe as probes
from labkit.kind.lab import KindLab
from labkit.kind.lab_access import as_argv, exit_code
from labkit.kind.objects import apply_order, selector_string, with_namespace
from labkit.lab import OUTSIDE, ExecResult, HttpReply, Lab

# A kubeconfig whose API server does not exist: any call that reaches the network fails loudly.
UNREACHABLE = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "kind-t",
    "clusters": [
        {
            "name": "kind-t",
            "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True},
        }
    ],
    "users": [{"name": "kind-t", "user": {"token": "x"}}],
    "contexts": [{"name": "kind-t", "context": {"cluster": "kind-t", "user": "kind-t"}}],
}


@pytest.fixture
def lab():
    return KindLab("t", "flannel", "iptables", UNREACHABLE)


def test_kind_lab_satisfies_the_seam(lab):
    assert isinstance(lab, Lab)
    assert lab.backend == "kind" and lab.name == "t" and lab.cni == "flannel"
    assert lab.capabilities.network_policy is False
    assert lab.capabilities.kube_proxy_mode == "iptables"


def test_outside_addresses_are_refused_and_declared_absent(lab):
    assert lab.capabilities.outside_addresses is False
    with pytest.raises(LabError) as err:
        lab.add_outside_address("203.0.113.0/24", ports=[443, (53, "UDP")])
    assert "203.0.113.0/24" in err.value.what and "--backend sandbox" in err.value.fix


def test_as_argv():
    assert as_argv("ip route | head -1") == ["sh", "-c", "ip route | head -1"]
    assert as_argv(["ip", "addr"]) == ["ip", "addr"]
    assert as_argv(("echo", 1)) == ["echo", "1"]


@pytest.mark.parametrize(
    "text,code",
    [
        ('{"metadata":{},"status":"Success"}', 0),
        (
            '{"metadata":{},"status":"Failure","message":"command terminated with non-zero '
            'exit code: error executing command [sh -c exit 3], exit code 3",'
            '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",'
            '"message":"3"}]}}',
            3,
        ),
        ('{"status":"Failure","message":"container not found"}', 1),
        ("", 0),
        ("not json", 1),
    ],
)
def test_exit_code_from_status_channel(text, code):
    assert exit_code(text)[0] == code


def test_exit_code_keeps_the_message():
    assert exit_code('{"status":"Failure","message":"container not found"}') == (
        1,
        "container not found",
    )


@pytest.mark.parametrize(
    "selector,expected",
    [
        (None, None),
        ("", None),
        ("app=web,tier!=db", "app=web,tier!=db"),
        ({"app": "web", "tier": "fe"}, "app=web,tier=fe"),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["a", "b"]},
                    {"key": "env", "operator": "NotIn", "values": ["prod"]},
                    {"key": "canary", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "app=web,tier in (a,b),env notin (prod),canary,!legacy",
        ),
        ({"matchLabels": {}}, None),
    ],
)
def test_selector_string(selector, expected):
    assert selector_string(selector) == expected


def test_selector_string_bad_operator():
    with pytest.raises(LabError):
        selector_string({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})


def test_apply_order_puts_namespaces_and_crds_first_and_keeps_the_rest():
    docs = [
        {"kind": "Deployment", "n": 1},
        {"kind": "Service", "n": 2},
        {"kind": "Namespace", "n": 3},
        {"kind": "CustomResourceDefinition", "n": 4},
        {"kind": "Pod", "n": 5},
    ]
    assert [d["n"] for d in apply_order(docs)] == [3, 4, 1, 2, 5]


def test_with_namespace_fills_only_namespaced_objects():
    docs = [
        {"kind": "Pod", "metadata": {"name": "a"}},
        {"kind": "Pod", "metadata": {"name": "b", "namespace": "x"}},
        {"kind": "Namespace", "metadata": {"name": "x"}},
    ]
    out = with_namespace(docs, "shop")
    assert [d["metadata"].get("namespace") for d in out] == ["shop", "x", None]
    assert "namespace" not in docs[0]["metadata"]  # inputs untouched
    assert with_namespace(docs[:1], None)[0]["metadata"]["namespace"] == "default"


def test_apply_validates_everything_before_any_api_call(lab):
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"a": "b"}}
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": "three",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    with pytest.raises(LabError) as err:
        lab.apply([good, bad])
    # the schema error, not "cannot reach the API server": nothing was sent
    assert "nothing was applied" in err.value.what and "Deployment/default/web" in err.value.what


def test_unreachable_cluster_gives_a_lab_error(lab):
    with pytest.raises(LabError) as err:
        lab.get("pods")
    assert "t" in err.value.what and "labkit down" in err.value.fix


def test_resolve_from_outside_is_refused(lab):
    with pytest.raises(LabError):
        lab.resolve(OUTSIDE, "kubernetes.default")


class _Agent(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = {"/hostname": b"ingress-pod", "/clientip": b"127.0.0.1:5555"}.get(self.path, b"ok")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


FAKE_DOCKER = r"""#!/bin/sh
echo "docker $*" >> "$FAKE_LOG"
case "$1" in
  inspect) [ -f "$FAKE_RUNNING" ] && echo true || exit 1 ;;
  run) : > "$FAKE_RUNNING" ;;
  exec) shift 2; exec "$@" ;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """A `docker` on PATH that logs its calls, starts containers on paper and runs `exec`'s
    command here, with a stand-in `agnhost connect` that says connected."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"docker": FAKE_DOCKER, "agnhost": "#!/bin/sh\nexit 0\n"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("AGNHOST", str(bin_dir / "agnhost"))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("FAKE_RUNNING", str(tmp_path / "running"))
    return tmp_path / "log"


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "curl", "dd", "timeout")),
    reason="needs bash, curl, dd and timeout",
)
def test_probe_from_outside_runs_in_the_outside_container(lab, fake_docker):
    """Issue 14.4: OUTSIDE on Kind is a container on the kind network (as the sandbox's outside
    namespace): started once when missing, then each probe is the pod probe script through
    `docker exec <lab>-outside`, so Docker Desktop's unreachable node IPs do not matter
    (cloud-provider-kind README, "Mac, Windows and WSL2 support")."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Agent)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        port = server.server_address[1]
        probes = lab.probe_many(
            [(OUTSIDE, "127.0.0.1", port), (OUTSIDE, "127.0.0.1", port, "TCP")], timeout=1.0
        )
    finally:
        server.shutdown()
        server.server_close()
    assert [p.outcome for p in probes] == ["connected", "connected"]
    assert probes[0].src == OUTSIDE and probes[0].port == port and probes[0].protocol == "TCP"
    assert probes[0].served_by == "ingress-pod" and probes[0].client_ip == "127.0.0.1"
    calls = fake_docker.read_text().splitlines()
    runs = [c for c in calls if c.startswith("docker run ")]
    assert runs == [shlex.join(hostcontainers.outside_run_argv("t"))]
    execs = [c for c in calls if c.startswith("docker exec ")]
    assert len(execs) == 2 and all(c.startswith("docker exec t-outside bash -c ") for c in execs)


def test_a_probe_from_a_pod_carries_the_http_status(lab, monkeypatch):
    """lab.probe on Kind hands the status of a non-200 answer to the Probe (Probe.http_status),
    as the sandbox's probe does: Cilium's 403 on a connection L3/L4 policy allowed."""
    monkeypatch.setattr(lab, "_ensure_probe_container", lambda ns, name: None)
    denied = "Access denied\r\n\n@@HTTP 0 0.0004 403\n"
    out = "@@CONNECT 0 \n" + denied + denied
    monkeypatch.setattr(
        lab,
        "exec",
        lambda pod, command, container=None, timeout=10.0: ExecResult(tuple(command), 0, out),
    )
    probe = lab.probe("shop/client", "10.244.1.7", 8080)
    assert (probe.outcome, probe.http_status, probe.served_by) == ("connected", 403, None)
    assert "denied by Cilium's HTTP proxy" in probe.detail


def test_http_request_runs_the_request_script_in_the_probe_container(lab, monkeypatch):
    """A pod's HTTP request on Kind runs in its agnhost probe container (the same ephemeral
    container the probes use), and Cilium's 403 "Access denied" comes back as an answer."""
    seen = []
    monkeypatch.setattr(lab, "_ensure_probe_container", lambda ns, name: seen.append((ns, name)))

    def fake_exec(pod, command, container=None, timeout=10.0):
        seen.append((pod, tuple(command), container))
        return ExecResult(
            tuple(command), 0, "@@CONNECT 0 \nAccess denied\r\n\n@@HTTP 0 0.0004 403\n"
        )

    monkeypatch.setattr(lab, "exec", fake_exec)
    reply = lab.http_request("shop/client", "10.96.0.10", 80, "get", "/clientip", 1.0)
    assert reply == HttpReply(
        "shop/client", "10.96.0.10", 80, "GET", "/clientip", "connected", 403, "Access denied"
    )
    argv = tuple(probes.request_command("10.96.0.10", 80, "GET", "/clientip", 1.0))
    assert seen == [("shop", "client"), ("shop/client", argv, probes.PROBE_CONTAINER)]


@pytest.mark.parametrize(
    ("src", "method", "path"),
    [(OUTSIDE, "GET", "/"), ("shop/client", "GET", "-o/tmp/x"), ("shop/client", "TRACE", "/")],
)
def test_http_request_refuses_what_it_cannot_send_before_any_call(lab, src, method, path):
    """Requests start from a pod; the method is one labkit sends and the path an origin-form
    target (RFC 9112 section 3.2.1), so neither can become a curl option."""
    with pytest.raises(LabError):
        lab.http_request(src, "10.96.0.10", 80, method, path)


def test_probe_many_of_nothing(lab):
    assert lab.probe_many([]) == []


# --------------------------------------------------------------------------- detection


def ds(ns, name):
    return {"metadata": {"namespace": ns, "name": name}}


@pytest.mark.parametrize(
    "daemonsets,cni",
    [
        ([ds("kube-system", "kube-proxy"), ds("kube-flannel", "kube-flannel-ds")], "flannel"),
        ([ds("calico-system", "calico-node"), ds("calico-system", "csi-node-driver")], "calico"),
        ([ds("kube-system", "cilium"), ds("kube-system", "cilium-envoy")], "cilium"),
        ([ds("kube-system", "kindnet"), ds("kube-system", "kube-proxy")], None),
        ([ds("default", "cilium")], None),
    ],
)
def test_detect_cni(daemonsets, cni):
    assert detect.detect_cni(daemonsets) == cni


@pytest.mark.parametrize(
    "conf,mode",
    [
        ("mode: nftables\n", "nftables"),
        ('mode: ""\n', "iptables"),
        ("mode: ipvs\nclusterCIDR: x\n", "ipvs"),
        ("", "iptables"),
        (": bad: [yaml", "iptables"),
    ],
)
def test_detect_kube_proxy_mode(conf, mode):
    cm = {"data": {"config.conf": conf}}
    assert detect.detect_kube_proxy_mode([ds("kube-system", "kube-proxy")], cm) == mode


def test_no_kube_proxy_means_none():
    assert detect.detect_kube_proxy_mode([ds("kube-system", "cilium")], None) == "none"


@pytest.mark.parametrize("cni,policy", [("flannel", False), ("calico", True), ("cilium", True)])
@pytest.mark.parametrize("serving", [False, True])
def test_capabilities(cni, policy, serving):
    """LoadBalancer and Ingress follow whether cloud-provider-kind serves the lab (issue 14.5);
    without it the note names the `docker run` its README documents."""
    caps = detect.capabilities(cni, "nftables", serving)
    assert caps.network_policy is policy
    assert caps.kube_proxy_mode == "nftables"
    assert caps.load_balancer is serving and caps.ingress is serving
    assert any("NetworkPolicy" in n for n in caps.notes) is (cni == "flannel")
    assert any("cloud-provider-kind" in n for n in caps.notes)
    start = [n for n in caps.notes if "docker run" in n]
    assert bool(start) is not serving
    assert all(pins.CLOUD_PROVIDER_KIND_IMAGE in n and "--network kind" in n for n in start)


@pytest.mark.parametrize(
    "state,classes,serves",
    [
        ("running", ["cloud-provider-kind"], True),
        ("running", [], False),  # started, but has not reached this cluster yet
        ("stopped", ["cloud-provider-kind"], False),  # the class outlives the controller
        ("absent", ["cloud-provider-kind", "nginx"], False),
        ("running", ["nginx"], False),
    ],
)
def test_cloud_provider_serves_only_when_running_and_its_class_exists(state, classes, serves):
    """cloud-provider-kind creates IngressClass `cloud-provider-kind` once it serves a cluster
    (pkg/ingress/controller.go, Controller.Init), so a running container plus that class means
    it answers this cluster."""
    objects = [{"metadata": {"name": n}} for n in classes]
    assert detect.cloud_provider_serves(state, objects) is serves
