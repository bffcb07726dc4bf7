"""Issue 11 (read side) on a real sandbox lab: `labkit kubectl get` and `describe`, run as a
learner runs them (a subprocess), print kubectl's shapes for what the lab holds, and agree with
`labkit status` (one formatter, one set of cells). Lab ``tk11``, Calico, scenarios 14 and 15."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from labkit import scenarios

pytestmark = pytest.mark.sandbox
LAB = "tk11"


@pytest.fixture(scope="module")
def lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "calico", quiet=True)
    try:
        scenarios.deploy(lab, "14-three-tier-policies")
        scenarios.deploy(lab, "15-ingress-one-domain")
        yield lab
    finally:
        backend.down(LAB)


def labkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True, timeout=60
    )


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return labkit("kubectl", "--name", LAB, *args)


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


def test_get_pods_wide_lists_every_pod_with_its_ip_and_node(lab):
    done = kubectl("get", "pods", "-n", "three-tier", "-o", "wide")
    assert done.returncode == 0, done.stderr
    header = "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    assert done.stdout.splitlines()[0].split() == header.split()
    pods = {p["metadata"]["name"]: p for p in lab.get("pods", namespace="three-tier")}
    printed = {row[0]: row for row in rows(done.stdout)}
    assert set(printed) == set(pods)
    for name, row in printed.items():
        assert row[1:4] == ["1/1", "Running", "0"]
        assert row[5:7] == [pods[name]["status"]["podIP"], pods[name]["spec"]["nodeName"]]


def test_get_svc_shows_types_ips_and_ports(lab):
    done = kubectl("get", "svc", "-n", "three-tier")
    assert done.stdout.splitlines()[0].split() == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    printed = {row[0]: row for row in rows(done.stdout)}
    for svc in lab.get("services", namespace="three-tier"):
        row = printed[svc["metadata"]["name"]]
        assert row[1:3] == [svc["spec"]["type"], svc["spec"]["clusterIP"]]
        if svc["spec"]["type"] == "LoadBalancer":
            assert row[3] == svc["status"]["loadBalancer"]["ingress"][0]["ip"]
            node_port = svc["spec"]["ports"][0]["nodePort"]
            assert row[4] == f"{svc['spec']['ports'][0]['port']}:{node_port}/TCP"


def test_get_endpoints_wide_lists_ready_addresses_with_a_warning(lab):
    done = kubectl("get", "endpoints", "api-service", "-n", "three-tier", "-o", "wide")
    assert done.returncode == 0
    assert done.stderr.startswith("Warning: v1 Endpoints is deprecated in v1.33+")
    (endpoints,) = lab.get("endpoints", "api-service", namespace="three-tier")
    subset = endpoints["subsets"][0]
    expected = {f"{a['ip']}:{subset['ports'][0]['port']}" for a in subset["addresses"]}
    assert rows(done.stdout)[0][0] == "api-service"
    assert set(rows(done.stdout)[0][1].split(",")) == expected


def test_describe_netpol_says_whom_each_policy_admits(lab):
    done = kubectl("describe", "netpol", "-n", "three-tier")
    assert done.returncode == 0
    for policy in lab.get("networkpolicies", namespace="three-tier"):
        assert f"Name:         {policy['metadata']['name']}\n" in done.stdout
        labels = policy["spec"]["podSelector"]["matchLabels"]
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        assert f"  PodSelector:     {selector}\n" in done.stdout
    assert done.stdout.count("  Allowing ingress traffic:\n    To Port: ") == 2


def test_describe_svc_and_ingress_name_the_endpoints(lab):
    done = kubectl("describe", "svc", "api-service", "-n", "three-tier")
    ips = [
        p["status"]["podIP"] for p in lab.get("pods", namespace="three-tier", selector="app=api")
    ]
    line = next(x for x in done.stdout.splitlines() if x.startswith("Endpoints:"))
    assert sorted(e.split(":")[0] for e in line.split()[1].split(",")) == sorted(ips)
    done = kubectl("describe", "ingress", "company-apps")
    assert "Ingress Class:    cloud-provider-kind" in done.stdout and "/dashboard" in done.stdout


def test_get_pods_yaml_is_the_labs_objects(lab):
    done = kubectl("get", "pods", "-n", "three-tier", "-o", "yaml")
    listed = yaml.safe_load(done.stdout)
    assert listed["kind"] == "List"
    assert listed["items"] == lab.get("pods", namespace="three-tier")


def test_mistakes_exit_1_with_kubectls_words(lab):
    done = kubectl("get", "pod", "nope")
    assert (done.returncode, done.stderr) == (
        1,
        'Error from server (NotFound): pods "nope" not found\n',
    )
    done = kubectl("get", "widgets")
    assert done.returncode == 1 and 'doesn\'t have a resource type "widgets"' in done.stderr
    done = kubectl("port-forward", "web", "8080")
    assert done.returncode == 1 and done.stdout == "" and "nearest" in done.stderr


def test_status_and_get_pods_print_the_same_cells(lab):
    status = labkit("status", "--name", LAB).stdout
    got = kubectl("get", "pods", "-A", "-o", "wide").stdout
    in_status = {
        row[1].removeprefix("pod/"): (row[0], row[2], row[3], row[4])
        for row in (line.split() for line in status.split("\n\n")[2].splitlines()[1:])
    }
    in_get = {row[1]: (row[0], row[2], row[3], row[6]) for row in rows(got)}
    assert in_status == in_get
