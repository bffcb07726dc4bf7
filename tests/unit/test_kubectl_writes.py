"""The write verbs of `labkit kubectl` on the sandbox, end to end but pure: command lines served
against a real ClusterStore (the sandbox's API server, no namespaces), with kubectl's output
lines, error wording and exit codes, and the store's objects checked after each write."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest

from labkit.kubectl import args, writes
from labkit.kubectl.serve import serve
from labkit.kubectl.writeverbs import VERBS, find
from labkit.sandbox.store import ClusterStore

NOW = datetime(2026, 1, 1, 0, 5, 0, tzinfo=timezone.utc)
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
DEPLOYMENT = """apiVersion: apps/v1
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
        image: nginx
        ports: [{containerPort: 80}]
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""


@pytest.fixture
def lab():
    return ClusterStore.bootstrap("netlab", "calico")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder of manifests as a learner has one, the current folder at its parent."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "b-service.yml").write_text(SERVICE)
    (tmp_path / "m" / "a-app.yaml").write_text(NAMESPACE + "---\n" + DEPLOYMENT)
    (tmp_path / "m" / "notes.txt").write_text("not a manifest")
    (tmp_path / "empty").mkdir()
    (tmp_path / "m" / "sub").mkdir()
    (tmp_path / "m" / "sub" / "skipped.yaml").write_text("kind: [broken")
    return tmp_path


def run(lab, line, stdin=""):
    return serve(lab, shlex.split(line), NOW, lambda: stdin)


def pods(lab, namespace="shop"):
    return [p["metadata"]["name"] for p in lab.get("pods", namespace=namespace)]


def write(path, text):
    Path(path).write_text(text)
    return path


# --------------------------------------------------------------------------- apply, create -f


def test_apply_a_folder_creates_in_file_order_then_says_unchanged_then_configured(lab, folder):
    out, err, code = run(lab, "apply -f m")
    assert out == "namespace/shop created\ndeployment.apps/web created\nservice/web created\n"
    assert (err, code) == ("", 0) and len(pods(lab)) == 2
    out, _, _ = run(lab, "apply -f m")
    assert out == "namespace/shop unchanged\ndeployment.apps/web unchanged\nservice/web unchanged\n"
    write("m/b-service.yml", SERVICE.replace("targetPort: 80", "targetPort: 8080"))
    out, _, code = run(lab, "apply -f m/b-service.yml")
    assert (out, code) == ("service/web configured\n", 0)
    assert lab.get("svc", "web", "shop")[0]["spec"]["ports"][0]["targetPort"] == 8080


def test_one_bad_document_applies_nothing(lab, folder):
    good = "apiVersion: v1\nkind: Service\nmetadata: {name: good}\nspec:\n  ports: [{port: 80}]\n"
    bad = good.replace("good", "bad").replace("port: 80", "port: 70000")
    write("two.yaml", good + "---\n" + bad)
    out, err, code = run(lab, "apply -f two.yaml")
    assert (out, code) == ("", 1)
    assert err.startswith('The Service "bad" is invalid: spec.ports[0].port: 70000 ')
    assert lab.get("svc", "good") == []
    write("three.yaml", good + "---\n" + bad + "---\n" + bad.replace("bad", "worse"))
    _, err, code = run(lab, "apply -f three.yaml")
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[1].startswith(
        'Error from server (Invalid): error when creating "three.yaml": Service "worse" is'
        " invalid: "
        "spec.ports[0].port: 70000"
    )
    assert lab.get("svc", "good") == []


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "kind: Service\nmetadata: {name: x}\n",
            'error: error validating "f.yaml": error validating data: [apiVersion not set]',
        ),
        (
            "apiVersion: v1\nkind: Widget\nmetadata: {name: x}\n",
            'error: resource mapping not found for name: "x" namespace: "" from "f.yaml": no'
            ' matches for kind "Widget" in version "v1"\nensure CRDs are installed first',
        ),
        (
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec:\n  template:\n   "
            " spec:\n      restartPolicy: Never\n      containers: [{name: a, image: b}]\n",
            "error: labkit kubectl on the sandbox does not model Job objects",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: nowhere}\n",
            'Error from server (NotFound): error when creating "f.yaml": namespaces "nowhere"'
            " not found",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n",
            "error: error parsing f.yaml: error converting YAML to JSON: yaml: ",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {generateName: x-}\n",
            "error: from x-: cannot use generate name with apply",
        ),
    ],
)
def test_apply_refuses_documents_as_kubectl_does(lab, folder, text, said):
    write("f.yaml", text)
    out, err, code = run(lab, "apply -f f.yaml")
    assert (out, code) == ("", 1) and err.startswith(said), err
    assert lab.get("svc", "x", None) == []


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("apply -f nothere.yaml", 'error: the path "nothere.yaml" does not exist\n'),
        (
            "apply -f https://example.com/x.yaml",
            "error: labkit kubectl on the sandbox reads -f from files",
        ),
        ("apply", "error: must specify one of -f and -k\n"),
        (
            "apply -f m extra",
            "error: Unexpected args: [extra]\nSee 'kubectl apply -h' for help and examples\n",
        ),
        (
            "apply -f m/sub/../notes.txt",
            "error: error parsing m/sub/../notes.txt: it holds a str, not a Kubernetes object.",
        ),
        ("create -f empty", "error: no objects passed to create\n"),
        (
            "apply -n other -f m/b-service.yml",
            'error: the namespace from the provided object "shop" does not match the namespace'
            ' "other".',
        ),
        (
            "apply --dry-run=client -f m",
            "error: labkit kubectl on the sandbox does not serve --dry-run for apply; it serves"
            " -f/--filename, -n/--namespace\n",
        ),
        (
            "apply --bogus -f m",
            "error: unknown flag: --bogus\nSee 'kubectl apply --help' for usage.\n",
        ),
        ("apply -f", "error: flag needs an argument: 'f' in -f\n"),
        ("create -f nothere.yaml", 'error: the path "nothere.yaml" does not exist\n'),
        (
            "create deployment web --image=nginx",
            "error: labkit kubectl on the sandbox serves create -f and create namespace, not"
            " create deployment;",
        ),
        (
            "create namespace",
            "error: exactly one NAME is required, got 0\nSee 'kubectl create namespace -h' for"
            " help and examples\n",
        ),
        (
            "create namespace Bad_Name",
            'The Namespace "Bad_Name" is invalid: metadata.name: Bad_Name must consist of lower'
            " case",
        ),
        (
            "create ns default",
            'Error from server (AlreadyExists): namespaces "default" already exists\n',
        ),
    ],
)
def test_write_mistakes_get_kubectls_wording_and_exit_1(lab, folder, line, said):
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1)
    assert err.startswith(said), err


def test_apply_reads_stdin_for_dash_and_names_it_stdin(lab):
    out, err, code = run(lab, "apply -f -", NAMESPACE + "---\n" + SERVICE)
    assert (out, err, code) == ("namespace/shop created\nservice/web created\n", "", 0)
    _, err, _ = run(lab, "create -f -", SERVICE)
    assert err == (
        'Error from server (AlreadyExists): error when creating "STDIN": services "web" already '
        "exists\n"
    )


def test_flags_may_come_before_the_verb_and_n_applies_to_objects_without_a_namespace(lab):
    run(lab, "create namespace shop")
    plain = SERVICE.replace(", namespace: shop", "")
    out, _, code = run(lab, "-n shop apply -f -", plain)
    assert (out, code) == ("service/web created\n", 0)
    assert lab.get("svc", "web", "shop") and not lab.get("svc", "web", "default")


def test_create_makes_what_is_missing_and_refuses_what_exists(lab, folder):
    run(lab, "create namespace shop")
    out, err, code = run(lab, "create -f m")
    assert out == "deployment.apps/web created\nservice/web created\n"
    assert err == (
        'Error from server (AlreadyExists): error when creating "m/a-app.yaml": namespaces "shop" '
        "already exists\n"
    )
    assert code == 1
    out, err, code = run(lab, "create namespace tools")
    assert (out, err, code) == ("namespace/tools created\n", "", 0)
    assert lab.get("ns", "tools", None)[0]["status"]["phase"] == "Active"


# --------------------------------------------------------------------------- delete


def test_delete_by_file_by_name_and_by_selector(lab, folder):
    run(lab, "apply -f m")
    out, err, code = run(lab, "delete -f m/b-service.yml")
    assert (out, err, code) == ('service "web" deleted from shop namespace\n', "", 0)
    assert lab.get("svc", "web", "shop") == []
    _, err, code = run(lab, "delete -f m/b-service.yml")
    assert err == (
        'Error from server (NotFound): error when deleting "m/b-service.yml": services "web" not '
        "found\n"
    )
    assert code == 1
    assert run(lab, "delete svc web -n shop --ignore-not-found") == ("", "", 0)
    out, err, code = run(lab, "delete deploy/web svc/nope -n shop")
    assert out == 'deployment.apps "web" deleted from shop namespace\n'
    assert (err, code) == ('Error from server (NotFound): services "nope" not found\n', 1)
    assert lab.get("deploy", "web", "shop") == []
    out, _, code = run(lab, "delete pods -l app=web -n shop")
    assert (out, code) == ("No resources found\n", 0)
    out, _, code = run(lab, "delete namespace shop")
    assert (out, code) == ('namespace "shop" deleted\n', 0)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("delete", "error: You must provide one or more resources by argument or filename.\n"),
        ("delete pods", "error: resource(s) were provided, but no name was specified\n"),
        ("delete widgets x", 'error: the server doesn\'t have a resource type "widgets"\n'),
        (
            "delete ns default",
            'Error from server (Forbidden): namespaces "default" is forbidden: this namespace'
            " may not be deleted\n",
        ),
        ("delete node netlab-worker", "error: labkit kubectl on the sandbox cannot delete nodes"),
        (
            "delete pods --all -l app=web",
            "error: cannot set --all and --selector at the same time\n",
        ),
        ("delete pod web --all", "error: name cannot be provided when a selector is specified\n"),
        (
            "delete -f x.yaml pod web",
            "error: when paths, URLs, or stdin is provided as input, you may not specify"
            " resource arguments as well\n",
        ),
    ],
)
def test_delete_mistakes(lab, line, said):
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(said), err


def test_delete_from_a_file_refuses_kinds_the_sandbox_does_not_change(lab, folder):
    write("job.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n")
    _, err, code = run(lab, "delete -f job.yaml")
    assert code == 1 and err == (
        'error: labkit kubectl on the sandbox does not model Job objects (batch/v1, "j" in '
        "job.yaml); use a Kind lab for them\n"
    )
    write("node.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: netlab-worker}\n")
    _, err, code = run(lab, "delete -f node.yaml")
    assert code == 1 and err.startswith("error: labkit kubectl on the sandbox cannot delete nodes")
    assert len(lab.get("nodes", namespace=None)) == 3


def test_delete_all_pods_of_a_deployment_lets_it_replace_them(lab, folder):
    run(lab, "apply -f m")
    before = pods(lab)
    out, _, code = run(lab, "delete pods --all -n shop")
    assert code == 0 and out.splitlines() == [
        f'pod "{p}" deleted from shop namespace' for p in before
    ]
    assert len(pods(lab)) == 2 and not set(pods(lab)) & set(before)


# --------------------------------------------------------------------------- scale, label


def test_scale_changes_the_replicas_and_the_pods_follow(lab, folder):
    run(lab, "apply -f m")
    out, err, code = run(lab, "scale --replicas=3 deployment/web -n shop")
    assert (out, err, code) == ("deployment.apps/web scaled\n", "", 0)
    assert len(pods(lab)) == 3
    run(lab, "scale deploy web -n shop --replicas 0")
    assert pods(lab) == []


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "scale deploy web -n shop",
            "error: The --replicas=COUNT flag is required, and COUNT must be greater than or"
            " equal to 0\n",
        ),
        ("scale deploy web -n shop --replicas=-2", "error: The --replicas=COUNT flag is required"),
        (
            "scale deploy web -n shop --replicas=two",
            'error: invalid argument "two" for "--replicas" flag: strconv.ParseInt: parsing'
            ' "two": invalid syntax\n',
        ),
        ("scale --replicas=2", "error: required resource not specified\n"),
        (
            "scale deploy nope -n shop --replicas=2",
            'Error from server (NotFound): deployments.apps "nope" not found\n',
        ),
        (
            "scale svc web -n shop --replicas=2",
            "Error from server (NotFound): the server could not find the requested resource\n",
        ),
    ],
)
def test_scale_mistakes(lab, folder, line, said):
    run(lab, "apply -f m")
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(said), err


def test_label_adds_overwrites_and_removes_and_selectors_follow(lab, folder):
    run(lab, "apply -f m")
    pod = pods(lab)[0]
    out, err, code = run(lab, f"label pod {pod} -n shop tier=front")
    assert (out, err, code) == (f"pod/{pod} labeled\n", "", 0)
    _, err, code = run(lab, f"label pod/{pod} -n shop tier=back")
    assert (err, code) == (
        "error: 'tier' already has a value (front), and --overwrite is false\n",
        1,
    )
    out, _, _ = run(lab, f"label pod/{pod} -n shop tier=back --overwrite")
    assert out == f"pod/{pod} labeled\n"
    assert lab.get("pod", pod, "shop")[0]["metadata"]["labels"]["tier"] == "back"
    out, _, _ = run(lab, f"label pod/{pod} -n shop tier=back")
    assert out == f"pod/{pod} not labeled\n"
    out, _, _ = run(lab, f"label pod {pod} -n shop tier- gone-")
    assert out == f'label "gone" not found.\npod/{pod} unlabeled\n'
    out, _, _ = run(lab, f"label pod {pod} -n shop app- role=spare")
    assert out == f"pod/{pod} modified\n"
    slices = lab.get("endpointslices", namespace="shop")
    addresses = [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]]
    ip = lab.get("pod", pod, "shop")[0]["status"]["podIP"]
    assert len(addresses) == 1 and ip not in addresses  # the relabelled pod left the Service


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("label deploy web -n shop", "error: at least one label update is required\n"),
        (
            "label a=b",
            "error: one or more resources must be specified as <resource> <name> or"
            " <resource>/<name>\n",
        ),
        (
            "label deploy web a=b -n shop other",
            "error: all resources must be specified before label changes: other\n",
        ),
        ("label deploy web -n shop a=b=c", "error: invalid label spec: a=b=c\n"),
        (
            "label deploy web -n shop 'a=not ok'",
            'error: invalid label value: "a=not ok": must be empty or up to 63',
        ),
        (
            "label deploy web -n shop a=b a-",
            "error: can not both modify and remove a label in the same command\n",
        ),
        ("label deploy web -n shop -bad-=x", "error: unknown shorthand flag: 'b' in -bad-=x"),
        (
            "label deploy web -n shop bad/key/x=1",
            'The Deployment "web" is invalid: metadata.labels: bad/key/x',
        ),
        (
            "label node netlab-worker a=b",
            "error: labkit kubectl on the sandbox cannot change nodes",
        ),
    ],
)
def test_label_mistakes(lab, folder, line, said):
    run(lab, "apply -f m")
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(said), err


# --------------------------------------------------------------------------- expose, patch


def test_expose_builds_the_service_kubectl_builds(lab, folder):
    run(lab, "apply -f m")
    out, err, code = run(
        lab,
        "expose deployment web -n shop --name web2 --port 8080 --target-port 80 --type NodePort",
    )
    assert (out, err, code) == ("service/web2 exposed\n", "", 0)
    svc = lab.get("svc", "web2", "shop")[0]
    assert svc["metadata"]["labels"] == {"app": "web"}
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0]["port"] == 8080 and svc["spec"]["ports"][0]["targetPort"] == 80
    assert svc["spec"]["ports"][0]["nodePort"] >= 30000
    pod = pods(lab)[0]
    run(lab, f"expose pod {pod} -n shop --name one-pod")
    one = lab.get("svc", "one-pod", "shop")[0]["spec"]
    assert one["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert one["selector"]["app"] == "web" and "pod-template-hash" in one["selector"]
    run(lab, "expose svc web -n shop --name web-udp --protocol UDP --port 53")
    assert lab.get("svc", "web-udp", "shop")[0]["spec"]["ports"][0]["protocol"] == "UDP"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "expose deploy web -n shop",
            'Error from server (AlreadyExists): services "web" already exists\n',
        ),
        (
            "expose deploy web -n shop --name x --type Foo",
            'The Service "x" is invalid: spec.type: Unsupported value: "Foo": supported values:'
            ' "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"\n',
        ),
        (
            "expose deploy web -n shop --name x --port http",
            'error: strconv.Atoi: parsing "http": invalid syntax\n',
        ),
        (
            "expose deploy web -n shop --name x --protocol ICMP",
            'The Service "x" is invalid: spec.ports[0].protocol: ICMP must be one of TCP, UDP,'
            " SCTP",
        ),
        (
            "expose deploy web -n shop --name x --selector app",
            "error: unexpected label spec: app\n",
        ),
        ("expose cm kube-root-ca.crt -n shop", "error: cannot expose a ConfigMap\n"),
        ("expose ns shop", "error: cannot expose a Namespace\n"),
        ("expose pod nope -n shop", 'Error from server (NotFound): pods "nope" not found\n'),
        ("expose", "error: You must provide one or more resources by argument or filename.\n"),
    ],
)
def test_expose_mistakes(lab, folder, line, said):
    run(lab, "apply -f m")
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(said), err


def test_expose_takes_the_selector_and_port_from_the_object_or_says_why_not(lab):
    run(lab, "create namespace shop")
    bare = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bare, namespace: shop}\n"
        "spec:\n  containers: [{name: a, image: b}]\n"
    )
    run(lab, "apply -f -", bare)
    _, err, _ = run(lab, "expose pod bare -n shop --port 80")
    assert err == (
        "error: couldn't retrieve selectors via --selector flag or introspection: the pod has no "
        "labels and cannot be exposed\n"
    )
    _, err, _ = run(lab, "expose pod bare -n shop --selector app=x")
    assert err == "error: couldn't find port via --port flag or introspection\n"
    out, _, _ = run(lab, "expose pod bare -n shop --selector app=x --port 80")
    assert out == "service/bare exposed\n"


def test_patch_strategic_merge_json_and_merge_on_a_service(lab, folder):
    run(lab, "apply -f m")
    out, err, code = run(
        lab, """patch svc web -n shop -p '{"spec":{"ports":[{"port":80,"targetPort":9999}]}}'"""
    )
    assert (out, err, code) == ("service/web patched\n", "", 0)
    assert lab.get("svc", "web", "shop")[0]["spec"]["ports"][0]["targetPort"] == 9999
    out, _, _ = run(
        lab, """patch svc web -n shop -p '{"spec":{"ports":[{"port":80,"targetPort":9999}]}}'"""
    )
    assert out == "service/web patched (no change)\n"
    out, _, _ = run(
        lab,
        "patch service/web -n shop --type=json "
        """-p '[{"op":"replace","path":"/spec/type","value":"NodePort"}]'""",
    )
    assert out == "service/web patched\n"
    assert lab.get("svc", "web", "shop")[0]["spec"]["type"] == "NodePort"
    run(lab, "patch svc web -n shop --type merge -p 'spec: {selector: {app: other}}'")
    assert lab.get("svc", "web", "shop")[0]["spec"]["selector"] == {"app": "other"}
    policy = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db, namespace: "
        "shop}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n"
    )
    run(lab, "apply -f -", policy)
    egress = '{"spec":{"policyTypes":["Ingress","Egress"],"egress":[{"ports":[{"port":53}]}]}}'
    out, _, _ = run(lab, f"patch netpol db -n shop --type merge -p '{egress}'")
    spec = lab.get("netpol", "db", "shop")[0]["spec"]
    assert out == "networkpolicy.networking.k8s.io/db patched\n"
    assert (
        spec["policyTypes"] == ["Ingress", "Egress"] and spec["egress"][0]["ports"][0]["port"] == 53
    )
    out, _, _ = run(lab, "label deploy web -n shop team=shop")
    assert lab.get("deploy", "web", "shop")[0]["metadata"]["labels"] == {
        "app": "web",
        "team": "shop",
    }
    out, _, _ = run(lab, """patch deploy web -n shop -p '{"spec":{"replicas":1}}'""")
    assert out == "deployment.apps/web patched\n" and len(pods(lab)) == 1


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "patch svc web -n shop",
            "error: must specify --patch or --patch-file containing the contents of the patch\n",
        ),
        (
            "patch svc web -n shop -p {} --type=apply",
            'error: --type must be one of [json merge strategic], not "apply"\n',
        ),
        ("patch svc web -n shop -p '{bad'", 'error: unable to parse "{bad": yaml: '),
        ("patch svc web -n shop -p 'a: &x [1]\nb: *x'", "error: unable to parse"),
        (
            "patch svc nope -n shop -p {}",
            'Error from server (NotFound): services "nope" not found\n',
        ),
        (
            """patch svc web -n shop -p '{"spec":{"ports":[{"port":80,"targetPort":70000}]}}'""",
            'The Service "web" is invalid: spec.ports[0].targetPort: 70000',
        ),
        (
            """patch svc web -n shop -p '{"metadata":{"name":"other"}}'""",
            'The Service "web" is invalid: metadata.name: Invalid value: field is immutable\n',
        ),
        (
            """patch svc web -n shop --type json -p '[{"op":"remove","path":"/spec/nope"}]'""",
            "The request is invalid: remove operation does not apply: doc is missing path:"
            " /spec/nope\n",
        ),
        (
            "patch svc -n shop -p {}",
            "error: resource(s) were provided, but no name was specified\n",
        ),
    ],
)
def test_patch_mistakes_change_nothing(lab, folder, line, said):
    run(lab, "apply -f m")
    before = lab.get("svc", "web", "shop")
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(said), err
    assert lab.get("svc", "web", "shop") == before


# ------------------------------------------------------------------ cluster-info, api-resources


def test_cluster_info_prints_the_control_plane_and_coredns(lab):
    out, err, code = run(lab, "cluster-info")
    assert (err, code) == ("", 0)
    assert out == (
        "Kubernetes control plane is running at https://172.18.0.2:6443\n"
        "CoreDNS is running at https://172.18.0.2:6443/api/v1/namespaces/kube-system/services/"
        "kube-dns:dns/proxy\n"
        "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"
    )
    _, err, code = run(lab, "cluster-info dump")
    assert code == 1 and err.startswith(
        "error: labkit kubectl on the sandbox does not serve cluster-info dump"
    )


def test_api_resources_lists_the_served_types_in_kubectls_columns(lab):
    out, _, code = run(lab, "api-resources")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["secrets"] == ["secrets", "v1", "true", "Secret"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["networkpolicies"] == [
        "networkpolicies",
        "netpol",
        "networking.k8s.io/v1",
        "true",
        "NetworkPolicy",
    ]
    names = [line.split()[0] for line in lines[1:]]
    assert (
        names.index("services")
        < names.index("daemonsets")
        < names.index("ingresses")
        < names.index("endpointslices")
    )
    out, _, _ = run(lab, "api-resources --namespaced=false -o name")
    assert out == "namespaces\nnodes\ningressclasses.networking.k8s.io\n"
    out, _, _ = run(lab, "api-resources --api-group=apps --no-headers")
    assert [line.split()[0] for line in out.splitlines()] == [
        "daemonsets",
        "deployments",
        "replicasets",
        "statefulsets",
    ]
    _, err, code = run(lab, "api-resources -o wide")
    assert code == 1 and "does not serve -o wide for api-resources" in err


# --------------------------------------------------------------------------- the verbs, registered


def test_every_write_verb_is_registered_and_says_what_it_serves_on_help(lab):
    assert tuple(VERBS) == args.WRITE_VERBS
    for verb in args.WRITE_VERBS:
        out, err, code = run(lab, f"{verb} --help")
        assert (err, code) == ("", 0) and out.startswith(
            f"labkit kubectl on the sandbox serves: kubectl {verb}"
        )


def test_the_verb_is_found_after_flags_with_their_values():
    assert find(["-n", "apply", "delete", "pod", "x"]) == (
        VERBS["delete"],
        ["-n", "apply", "pod", "x"],
    )
    assert find(["--namespace", "x", "scale"]) == (VERBS["scale"], ["--namespace", "x"])
    assert find(["get", "pods"]) is None and find(["-A"]) is None


def test_writable_kinds_are_the_kinds_the_sandbox_stores():
    from labkit.kubectl.resources import RESOURCES
    from labkit.sandbox.cluster.admission import MODELLED_KINDS

    assert {r.kind for r in RESOURCES if writes.writable(r.kind)} == set(MODELLED_KINDS)
