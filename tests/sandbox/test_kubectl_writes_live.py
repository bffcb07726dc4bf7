"""Issue 11 (write side) on a real sandbox lab: `labkit kubectl apply/expose/patch/scale/label/
delete` run as a learner runs them (subprocesses), print kubectl's lines, and the data plane
follows: an exposed Service connects, a patched targetPort refuses, a policy applied from stdin
drops, a bad multi-document file changes nothing. Lab ``tkw``, Calico."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.sandbox
LAB = "tkw"
APP = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.66.1
        ports: [{containerPort: 8080}]
"""
CLIENT = """apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: shop
  labels: {app: client}
spec:
  containers:
  - name: client
    image: registry.k8s.io/e2e-test-images/agnhost:2.66.1
"""
DENY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-deny, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"""


@pytest.fixture(scope="module")
def lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "calico", quiet=True)
    try:
        yield lab
    finally:
        backend.down(LAB)


def kubectl(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", "kubectl", "--name", LAB, *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def outcome(lab, port: int = 80) -> str:
    ip = lab.get("svc", "web", "shop")[0]["spec"]["clusterIP"]
    return lab.probe("shop/client", ip, port).outcome


def test_the_write_verbs_drive_the_data_plane(lab, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "1-app.yaml").write_text(APP)
    (tmp_path / "app" / "2-client.yaml").write_text(CLIENT)
    folder = str(tmp_path / "app")

    done = kubectl("apply", "-f", folder)
    assert done.stdout == (
        "namespace/shop created\ndeployment.apps/web created\npod/client created\n"
    ), done.stderr
    assert done.returncode == 0 and len(lab.get("pods", namespace="shop")) == 3
    assert kubectl("apply", "-f", folder).stdout.count(" unchanged\n") == 3

    bad = tmp_path / "bad.yaml"
    bad.write_text(DENY + "---\n" + CLIENT.replace("name: client\n", "name: Client_2\n", 1))
    done = kubectl("apply", "-f", str(bad))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith('The Pod "Client_2" is invalid: metadata.name: Client_2 ')
    assert lab.get("netpol", namespace="shop") == []

    done = kubectl("expose", "deployment", "web", "-n", "shop", "--port=80", "--target-port=8080")
    assert (done.stdout, done.returncode) == ("service/web exposed\n", 0)
    assert outcome(lab) == "connected"

    patch = '{"spec":{"ports":[{"port":80,"targetPort":9999}]}}'
    done = kubectl("patch", "svc", "web", "-n", "shop", "-p", patch)
    assert (done.stdout, done.returncode) == ("service/web patched\n", 0)
    assert outcome(lab) == "refused"
    fix = '[{"op":"replace","path":"/spec/ports/0/targetPort","value":8080}]'
    done = kubectl("patch", "svc/web", "-n", "shop", "--type", "json", "-p", fix)
    assert done.stdout == "service/web patched\n" and outcome(lab) == "connected"

    done = kubectl("apply", "-f", "-", stdin=DENY)
    assert done.stdout == "networkpolicy.networking.k8s.io/web-deny created\n"
    assert outcome(lab) == "timeout"
    done = kubectl("delete", "netpol", "web-deny", "-n", "shop")
    assert done.stdout == 'networkpolicy.networking.k8s.io "web-deny" deleted from shop namespace\n'
    assert outcome(lab) == "connected"

    done = kubectl("scale", "--replicas=3", "deployment/web", "-n", "shop")
    assert done.stdout == "deployment.apps/web scaled\n"
    assert len(lab.get("pods", namespace="shop", selector="app=web")) == 3
    answered = {
        lab.probe(
            "shop/client", lab.get("svc", "web", "shop")[0]["spec"]["clusterIP"], 80
        ).served_by
        for _ in range(30)
    }
    assert len(answered) == 3

    done = kubectl("label", "pod", "client", "-n", "shop", "app=other")
    assert done.returncode == 1
    assert done.stderr == "error: 'app' already has a value (client), and --overwrite is false\n"
    done = kubectl("label", "pod", "client", "-n", "shop", "app=web", "--overwrite")
    assert done.stdout == "pod/client labeled\n"
    assert lab.get("pod", "client", "shop")[0]["metadata"]["labels"]["app"] == "web"

    done = kubectl("delete", "-f", folder)
    assert done.stdout.splitlines() == [
        'namespace "shop" deleted',
        'deployment.apps "web" deleted from shop namespace',
        'pod "client" deleted from shop namespace',
    ]
    assert lab.get("ns", "shop", None) == [] and lab.get("pods", namespace="shop") == []
    done = kubectl("delete", "-f", folder, "--ignore-not-found")
    assert (done.stdout, done.stderr, done.returncode) == ("", "", 0)


def test_cluster_info_and_api_resources(lab):
    done = kubectl("cluster-info")
    node = lab.get("nodes", f"{LAB}-control-plane", None)[0]
    control_plane = next(
        a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"
    )
    assert done.stdout.splitlines()[0] == (
        f"Kubernetes control plane is running at https://{control_plane}:6443"
    )
    assert done.stdout.splitlines()[1].startswith("CoreDNS is running at https://")
    done = kubectl("api-resources", "--api-group=networking.k8s.io", "-o", "name")
    assert done.stdout == (
        "ingressclasses.networking.k8s.io\ningresses.networking.k8s.io\n"
        "networkpolicies.networking.k8s.io\n"
    )
