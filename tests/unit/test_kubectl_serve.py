"""`labkit kubectl` on the sandbox, end to end but pure: command lines parsed as kubectl parses
them and served from a real ClusterStore (the sandbox's API server, no namespaces), with
kubectl's outputs, messages and exit codes."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from labkit import manifests
from labkit.kubectl.args import parse
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.serve import serve
from labkit.sandbox.store import ClusterStore

SCENARIOS = Path(manifests.__file__).parent / "scenarios"
NOW = datetime(2026, 1, 1, 0, 5, 0, tzinfo=timezone.utc)  # the store's clock starts 2026-01-01


@pytest.fixture(scope="module")
def lab():
    store = ClusterStore.bootstrap("netlab", "calico")
    for scenario, files in (
        ("14-three-tier-policies", ("tiers.yaml", "policies.yaml")),
        ("15-ingress-one-domain", ("apps.yaml", "ingress.yaml")),
    ):
        for name in files:
            store.apply(manifests.load(SCENARIOS / scenario / name))
    return store


def run(lab, line):
    return serve(lab, shlex.split(line), NOW)


def test_get_pods_wide_prints_kubectls_columns(lab):
    out, err, code = run(lab, "get pods -n three-tier -o wide")
    lines = out.splitlines()
    headers = "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    assert lines[0].split() == headers.split()
    assert len(lines) == 7 and err == "" and code == 0
    first = lines[1].split()
    assert first[1:4] == ["1/1", "Running", "0"] and first[5].startswith("192.168.")
    assert first[7:] == ["<none>", "<none>"]


def test_get_services_all_namespaces_has_a_namespace_column(lab):
    out, _, code = run(lab, "get svc -A")
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    kube_dns = next(line.split() for line in lines if " kube-dns " in line)
    assert kube_dns[:3] == ["kube-system", "kube-dns", "ClusterIP"]
    assert kube_dns[4:6] == ["<none>", "53/UDP,53/TCP,9153/TCP"]
    frontend = next(line.split() for line in lines if "frontend-service" in line)
    assert frontend[2] == "LoadBalancer" and frontend[5].startswith("443:")
    assert code == 0


def test_get_endpoints_warns_like_the_api_server(lab):
    out, err, code = run(lab, "get endpoints api-service -n three-tier -o wide")
    assert out.splitlines()[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert out.splitlines()[1].split()[1].count(":8000") == 2
    assert (
        err
        == "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\n"
    )
    assert code == 0


def test_names_types_selectors_and_prefixes(lab):
    out, _, _ = run(lab, "get svc/api-service deploy/api -n three-tier")
    assert [
        line.split()[0] for line in out.splitlines() if line and not line.startswith("NAME")
    ] == [
        "service/api-service",
        "deployment.apps/api",
    ]
    out, _, _ = run(lab, "get pods -n three-tier -l app=api --show-labels --no-headers")
    assert len(out.splitlines()) == 2 and all("app=api" in line for line in out.splitlines())
    out, _, _ = run(lab, "-n three-tier get all")
    kinds = [
        line.split()[0].split("/")[0]
        for line in out.splitlines()
        if line and not line.startswith("NAME")
    ]
    assert sorted(set(kinds)) == ["deployment.apps", "pod", "replicaset.apps", "service"]
    out, _, _ = run(lab, "get netpol,svc -n three-tier -o name")
    assert out.splitlines()[:2] == [
        "networkpolicy.networking.k8s.io/api-from-frontend",
        "networkpolicy.networking.k8s.io/db-from-api",
    ]


def test_structured_outputs(lab):
    out, _, _ = run(lab, "get svc api-service -n three-tier -o yaml")
    service = yaml.safe_load(out)
    assert service["kind"] == "Service" and service["metadata"]["name"] == "api-service"
    assert out.splitlines()[0] == "apiVersion: v1" and 'resourceVersion: "' in out
    listed = yaml.safe_load(run(lab, "get pods -n three-tier -o yaml").stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == 6
    assert listed["metadata"] == {"resourceVersion": ""}
    out, _, _ = run(lab, "get svc -n nowhere -o json")
    assert out.startswith('{\n    "apiVersion": "v1",\n    "items": [],')
    out, _, _ = run(lab, "get svc api-service -n three-tier -o jsonpath={.spec.clusterIP}")
    assert out.startswith("10.96.") and "\n" not in out
    out, _, _ = run(lab, "get nodes -o jsonpath={.items[*].metadata.name}")
    assert out == "netlab-control-plane netlab-worker netlab-worker2"


def test_nothing_found_and_not_found(lab):
    assert run(lab, "get pods -n nowhere") == ("", "No resources found in nowhere namespace.\n", 0)
    assert run(lab, "get statefulsets -A") == ("", "No resources found\n", 0)
    assert run(lab, "get events") == ("", "No resources found in default namespace.\n", 0)
    out, err, code = run(lab, "get pod nope -n three-tier")
    assert (out, err, code) == ("", 'Error from server (NotFound): pods "nope" not found\n', 1)
    out, err, code = run(lab, "get svc api-service nope -n three-tier")
    assert "api-service" in out and err.endswith('services "nope" not found\n') and code == 1
    assert run(lab, "get netpol nope -n three-tier")[1] == (
        'Error from server (NotFound): networkpolicies.networking.k8s.io "nope" not found\n'
    )
    out, err, code = run(lab, "get pod x -A")
    assert err == "error: a resource cannot be retrieved by name across all namespaces\n"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("get foo", 'error: the server doesn\'t have a resource type "foo"\n'),
        ("get pods --bogus", "error: unknown flag: --bogus\nSee 'kubectl get --help' for usage.\n"),
        (
            "get pods --show-label",
            "error: unknown flag: --show-label (did you mean --show-labels?)\n",
        ),
        (
            "get pods -z",
            "error: unknown shorthand flag: 'z' in -z\nSee 'kubectl get --help' for usage.\n",
        ),
        (
            "get pods -n",
            "error: flag needs an argument: 'n' in -n\nSee 'kubectl get --help' for usage.\n",
        ),
        (
            "get pods -o yamll",
            'error: unable to match a printer suitable for the output format "yamll", ',
        ),
        (
            "get pods -o custom-columns=N:.metadata.name",
            "error: labkit kubectl on the sandbox does not serve -o custom-columns",
        ),
        ("get pods -w", "error: labkit kubectl on the sandbox does not serve -w for get"),
        ("get pods --sort-by=.metadata.name", "does not serve --sort-by for get"),
        (
            "port-forward web 8080",
            "error: labkit kubectl on the sandbox serves get, describe, apply, create, delete, "
            "expose, patch, scale, label, cluster-info, api-resources, exec, run, logs, not "
            "'port-forward'",
        ),
        ("gte pods", 'error: unknown command "gte" for "kubectl"\n\nDid you mean this?\n\tget\n'),
        ("get", "error: You must specify the type of resource to get."),
        ("describe", "error: You must specify the type of resource to describe."),
        ("get pods -o jsonpath={..name}", "error: error parsing jsonpath {..name}"),
        ("get pods -o jsonpath", "error: template format specified but no template given\n"),
        ("get svc api-service svc/web", "error: there is no need to specify a resource type"),
        ("get pods -l 'env in a'", "needs its values in parentheses"),
        ("describe deploy api -n three-tier", "describes pods, services, nodes, networkpolicies"),
        (
            "--show-labels=maybe get pods",
            'error: invalid argument "maybe" for "--show-labels" flag',
        ),
        ("-n", "error: labkit kubectl needs a command"),
    ],
)
def test_mistakes_get_kubectls_wording_and_exit_1(lab, line, said):
    out, err, code = run(lab, line)
    assert out == "" and code == 1
    assert err.startswith(said) or said in err
    assert err.endswith("\n")


def test_describe_serves_the_network_kinds(lab):
    out, err, code = run(lab, "describe netpol -n three-tier")
    assert out.count("Allowing ingress traffic:") == 2 and "\n\n\nName:" in out and code == 0
    out, _, _ = run(lab, "describe svc api-service -n three-tier")
    assert "Endpoints:" in out and out.count(":8000") == 2
    out, _, _ = run(lab, "describe pod api -n three-tier")  # a prefix matches, as in kubectl
    assert out.count("Name:             api-") == 2
    out, _, _ = run(lab, "describe ingress company-apps")
    assert "services.company.com" in out and "dashboard-service:80 (" in out
    out, err, _ = run(lab, "describe ep api-service -n three-tier")
    assert "Subsets:" in out and err.startswith("Warning: v1 Endpoints")
    out, _, _ = run(lab, "describe node netlab-worker")
    assert out.startswith("Name:               netlab-worker\n") and "Non-terminated Pods:" in out
    assert run(lab, "describe pod nope")[1:] == (
        'Error from server (NotFound): pods "nope" not found\n',
        1,
    )
    assert run(lab, "describe pods -n nowhere") == (
        "",
        "No resources found in nowhere namespace.\n",
        0,
    )


def test_parse_takes_flags_anywhere_and_in_every_spelling():
    request = parse(["-nthree-tier", "get", "po", "--output=wide", "--show-labels=true", "-A"])
    assert (request.namespace, request.output, request.show_labels, request.all_namespaces) == (
        "three-tier", "wide", True, True,
    )  # fmt: skip
    assert parse(["get", "pods", "--namespace", "x", "--", "-weird"]).targets[0][1] == ["-weird"]
    assert parse(["get", "pods", "-o=yaml"]).output == "yaml"
    assert parse(["get", "ns", "--no-headers=false"]).no_headers is False
    with pytest.raises(KubectlError):
        parse(["describe", "pod", "-o", "wide"])  # describe has no -o


@pytest.mark.parametrize("line", ["get --help", "describe -h", "help"])
def test_help_says_what_the_sandbox_serves(lab, line):
    out, err, code = run(lab, line)
    assert (err, code) == ("", 0)
    assert out.startswith(
        "labkit kubectl on the sandbox serves: kubectl get, kubectl describe, kubectl apply, "
        "kubectl create,"
    )
    assert "-n/--namespace" in out and "netpol" in out
    assert ("--show-labels" in out) == line.startswith(("get", "help"))
