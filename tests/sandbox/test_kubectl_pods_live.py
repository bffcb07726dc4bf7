"""Issue 11 (pod verbs) on a real sandbox lab, run as a learner runs them: `labkit kubectl exec`
(exit codes, -c refusals), `exec -it ... -- sh` and `run -it --rm` through a pseudo-terminal,
`logs` showing the request a probe made, and CoreDNS's and kube-proxy's start-up lines. Lab
``tkx``, Flannel."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pexpect
import pytest

from labkit.sandbox.componentlogs import corefile_sha512
from labkit.sandbox.system.addons import COREFILE

pytestmark = pytest.mark.sandbox
LAB = "tkx"
PODS = """
apiVersion: v1
kind: Pod
metadata: {name: pod-a, labels: {app: a}}
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.66.1
    args: [netexec, --http-port=8080]
    ports: [{containerPort: 8080}]
  - name: sidecar
    image: busybox
---
apiVersion: v1
kind: Pod
metadata: {name: pod-b}
spec:
  containers:
  - {name: client, image: nicolaka/netshoot}
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  selector: {app: a}
  ports: [{port: 80, targetPort: 8080}]
"""
KUBECTL = [sys.executable, "-m", "labkit.cli", "kubectl", "--name", LAB]


@pytest.fixture(scope="module")
def lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "flannel", quiet=True)
    try:
        lab.apply(PODS)
        yield lab
    finally:
        backend.down(LAB)


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBECTL, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_exec_passes_output_and_exit_code_through(lab):
    done = kubectl("exec", "pod-a", "-c", "web", "--", "hostname")
    assert (done.returncode, done.stdout, done.stderr) == (0, "pod-a\n", "")
    done = kubectl("exec", "pod-a", "-c", "sidecar", "--", "sh", "-c", "echo out; exit 3")
    assert (done.returncode, done.stdout) == (3, "out\n")
    assert done.stderr == "command terminated with exit code 3\n"
    done = kubectl("exec", "pod-b", "--", "hostname")
    assert done.stdout == "pod-b\n" and "Defaulted" not in done.stderr
    done = kubectl("exec", "svc/a", "-c", "web", "--", "hostname")  # one of the pods it selects
    assert (done.returncode, done.stdout) == (0, "pod-a\n")


def test_exec_refuses_a_missing_container_or_pod_in_kubectls_words(lab):
    done = kubectl("exec", "pod-a", "-c", "nope", "--", "true")
    assert done.returncode == 1
    assert done.stderr == "error: container nope is not valid for pod pod-a out of: web, sidecar\n"
    done = kubectl("exec", "ghost", "--", "true")
    assert (done.returncode, done.stderr) == (
        1,
        'Error from server (NotFound): pods "ghost" not found\n',
    )
    done = kubectl("exec", "pod-a", "--", "hostname")
    assert done.stderr == 'Defaulted container "web" out of: web, sidecar\n'


def _spawn(*args: str) -> pexpect.spawn:
    child = pexpect.spawn(KUBECTL[0], [*KUBECTL[1:], *args], encoding="utf-8", timeout=20)
    child.setwinsize(40, 120)
    return child


def _run(child: pexpect.spawn, command: str, marker: int) -> str:
    """Type a command in the shell and return what it printed (up to a computed marker, so the
    echo of the typed line never matches)."""
    child.sendline(f"{command}; echo M$(({marker}+1))")
    child.expect(f"M{marker + 1}\r\n")
    return str(child.before)


def test_exec_it_opens_a_shell_in_the_pods_namespaces(lab):
    ip = lab.get("pods", "pod-a")[0]["status"]["podIP"]
    child = _spawn("exec", "-it", "pod-a", "--", "sh")
    assert "pod-a\r\n" in _run(child, "hostname", 10)
    assert f"inet {ip}/" in _run(child, "ip -4 addr show eth0", 20)
    answer = _run(child, "nslookup kubernetes.default", 30)
    assert "kubernetes.default.svc.cluster.local" in answer and "10.96.0.1" in answer
    child.sendline("exit 5")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5
    assert "command terminated with exit code 5" in str(child.before)


def test_run_it_rm_opens_a_throwaway_pod_and_deletes_it(lab):
    child = _spawn("run", "-it", "--rm", "netshoot", "--image=nicolaka/netshoot", "--", "bash")
    child.expect("If you don't see a command prompt, try pressing enter.")
    assert "netshoot\r\n" in _run(child, "hostname", 40)
    assert lab.get("pods", "netshoot")[0]["status"]["phase"] == "Running"
    assert "10.96.0.10" in _run(child, "cat /etc/resolv.conf", 50)
    child.sendline("exit")
    child.expect('pod "netshoot" deleted')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert lab.get("pods", "netshoot") == []


def test_logs_show_what_the_pods_server_saw(lab):
    ip = lab.get("pods", "pod-a")[0]["status"]["podIP"]
    done = kubectl("exec", "pod-b", "--", "curl", "-s", f"http://{ip}:8080/echo?msg=hi")
    assert done.stdout == "hi"
    done = kubectl("logs", "pod-a", "-c", "web")
    lines = done.stdout.splitlines()
    assert lines[0].endswith(" Started HTTP server on port 8080")
    assert lines[-1].endswith(" GET /echo?msg=hi&code=")
    assert kubectl("logs", "pod-a", "--tail=1").stdout.splitlines() == lines[-1:]
    assert kubectl("logs", "pod-a", "-c", "sidecar").stdout == ""
    system = {p["metadata"]["name"]: p for p in lab.get("pods", namespace="kube-system")}
    coredns = next(n for n in system if n.startswith("coredns-"))
    assert kubectl("logs", "-n", "kube-system", coredns).stdout.splitlines() == [
        ".:53",
        f"[INFO] plugin/reload: Running configuration SHA512 = {corefile_sha512(COREFILE)}",
        "CoreDNS-1.14.2",
    ]


def test_kube_proxy_logs_its_start_on_its_node_when_the_lab_was_built(lab):
    born = datetime.fromisoformat(lab.get("nodes")[0]["metadata"]["creationTimestamp"])
    stamp = f"I{born:%m%d %H:%M:%S}.000000       1"
    proxies = lab.get("pods", namespace="kube-system", selector="k8s-app=kube-proxy")
    assert len(proxies) == len(lab.get("nodes"))
    for pod in proxies:
        name, node_ip = pod["metadata"]["name"], pod["status"]["hostIP"]
        done = kubectl("logs", "-n", "kube-system", name)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == (
            f'{stamp} server.go:218] "Successfully retrieved NodeIPs" NodeIPs=["{node_ip}"]\n'
            f'{stamp} server_linux.go:136] "Using iptables Proxier"\n'
        )
    tail = kubectl("logs", "-n", "kube-system", proxies[0]["metadata"]["name"], "--tail=1")
    assert tail.stdout == f'{stamp} server_linux.go:136] "Using iptables Proxier"\n'
    other = next(
        p["metadata"]["name"]
        for p in lab.get("pods", namespace="kube-system")
        if p["metadata"]["name"].startswith("etcd-")
    )
    done = kubectl("logs", "-n", "kube-system", other)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"error: The sandbox keeps no log for kube-system/{other}")
