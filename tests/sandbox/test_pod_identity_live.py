"""Issue 12.5 (pod identity) on a real sandbox lab: a pod's own hostname as agnhost and the
shell see it, and a StatefulSet's pods, which get hostname and subdomain from their controller.
Lab ``tpi``, Flannel."""

from __future__ import annotations

import os

import pytest
from e2e_jig import module_lab

pytestmark = pytest.mark.sandbox
LAB = "tpi"
NS = "identity"
ZONE = "cluster.local"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
NETSHOOT = "{name: querier, image: nicolaka/netshoot}"
MANIFESTS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {NS}}}
spec: {{containers: [{NETSHOOT}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: named-server, namespace: {NS}}}
spec:
  hostname: custom-name
  containers:
  - name: agnhost
    image: {AGNHOST}
    args: [netexec, --http-port=8080, --udp-port=8081]
    ports: [{{containerPort: 8080}}, {{containerPort: 8081, protocol: UDP}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {NS}}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{NETSHOOT}]}}
"""


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    for the_lab in module_lab(LAB, "flannel"):
        the_lab.apply(MANIFESTS)
        yield the_lab


def _out(lab, pod: str, command: str) -> str:
    got = lab.exec(f"{NS}/{pod}", command)
    assert got.ok, got.stderr
    return got.stdout


def test_agnhost_answers_with_spec_hostname_over_http_and_udp(lab):
    """agnhost netexec.go's /hostname handler and UDP ``hostname`` command answer
    os.Hostname(), which kubelet sets to spec.hostname when a pod names one
    (kubelet_pods.go GeneratePodHostNameAndDomain), not to the pod's name."""
    ip = lab.get("pods", "named-server", namespace=NS)[0]["status"]["podIP"]
    http = _out(lab, "client", f"curl -s --max-time 3 http://{ip}:8080/hostname")
    udp_ask = f"exec 3<>/dev/udp/{ip}/8081; printf hostname >&3; "
    udp_ask += "timeout 2 dd bs=512 count=1 status=none <&3"
    udp = _out(lab, "client", f"bash -c '{udp_ask}'")
    assert (http, udp) == ("custom-name", "custom-name")
    assert _out(lab, "named-server", "hostname").strip() == "custom-name"


def test_a_statefulset_pod_knows_its_stable_name(lab):
    """A StatefulSet's controller gives each pod hostname = pod name and subdomain =
    serviceName (pkg/controller/statefulset stateful_set_utils.go updateIdentity); kubelet
    then writes its FQDN into /etc/hosts (managedHostsFileContent) and sets its hostname."""
    ip = lab.get("pods", "db-0", namespace=NS)[0]["status"]["podIP"]
    fqdn = f"db-0.db.{NS}.svc.{ZONE}"
    assert f"{ip}\t{fqdn}\tdb-0\n" in _out(lab, "db-0", "cat /etc/hosts")
    assert _out(lab, "db-0", "hostname").strip() == "db-0"
    assert _out(lab, "db-0", "hostname -f").strip() == fqdn
