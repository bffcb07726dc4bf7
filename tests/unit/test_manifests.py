"""Loading, naming and validating manifests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit import manifests
from labkit.errors import LabError

POD = """apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.66.1
    ports: [{containerPort: 8080, name: http}]
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def test_load_text_with_several_documents():
    docs = manifests.load(POD + "---\n" + SERVICE + "---\n")
    assert [d["kind"] for d in docs] == ["Pod", "Service"]


def test_load_file_dict_and_list(tmp_path):
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    service = manifests.load(SERVICE)[0]
    docs = manifests.load([path, service, {"kind": "List", "items": [service]}])
    assert [d["kind"] for d in docs] == ["Pod", "Service", "Service"]
    docs[1]["metadata"]["name"] = "changed"
    assert service["metadata"]["name"] == "web", "load must copy, never alias the caller's dicts"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(LabError, match="does not exist"):
        manifests.load(tmp_path / "nope.yaml")


def test_bad_yaml_is_refused_with_fix():
    with pytest.raises(LabError) as err:
        manifests.load("kind: Pod\n  metadata: [")
    assert "not valid YAML" in err.value.what and err.value.fix


def test_scalar_document_is_refused():
    with pytest.raises(LabError, match="not a Kubernetes object"):
        manifests.load("just a string\n---\nkind: Pod\n")


def test_validate_accepts_good_objects():
    manifests.validate(manifests.load(POD + "---\n" + SERVICE))


def test_validate_lists_every_problem_and_names_the_field():
    bad_pod = POD.replace("containerPort: 8080", "containerPort: eighty")
    no_name = "apiVersion: v1\nkind: Service\nmetadata: {}\nspec: {ports: [{port: 80}]}\n"
    with pytest.raises(LabError) as err:
        manifests.validate(manifests.load(bad_pod + "---\n" + no_name))
    text = err.value.what
    assert "nothing was applied" in text
    assert "Pod/web" in text and "containerPort" in text
    assert "Service/?: at metadata.name: required" in text


def test_validate_unknown_kind():
    with pytest.raises(LabError, match=r"at kind: Kubernetes 1\.36 serves no kind Gizmo"):
        manifests.validate([{"apiVersion": "v1", "kind": "Gizmo", "metadata": {"name": "g"}}])


@pytest.mark.parametrize(
    "spelling, kind",
    [
        ("po", "Pod"),
        ("pods", "Pod"),
        ("Pod", "Pod"),
        ("svc", "Service"),
        ("netpol", "NetworkPolicy"),
        ("NetworkPolicies", "NetworkPolicy"),
        ("deploy", "Deployment"),
        ("ep", "Endpoints"),
        ("endpointslices", "EndpointSlice"),
        ("ns", "Namespace"),
        ("nodes", "Node"),
        ("ing", "Ingress"),
    ],
)
def test_canonical_kind(spelling, kind):
    assert manifests.canonical_kind(spelling) == kind


def test_unknown_kind_spelling():
    with pytest.raises(LabError, match="Unknown kind"):
        manifests.canonical_kind("gizmos")


def test_namespace_of_and_scope():
    pod, service = manifests.load(POD + "---\n" + SERVICE)
    assert manifests.namespace_of(pod) == "default"
    assert manifests.namespace_of(service) == "shop"
    assert manifests.namespace_of({"kind": "Namespace", "metadata": {"name": "x"}}) is None
    assert not manifests.is_namespaced("Node") and manifests.is_namespaced("Pod")
    assert manifests.api_version_of("netpol") == "networking.k8s.io/v1"
    assert manifests.describe(service) == "Service/shop/web"


def test_containers_need_an_image_as_the_api_server_says():
    pod = manifests.load(
        POD.replace("    image: registry.k8s.io/e2e-test-images/agnhost:2.66.1\n", "")
    )
    with pytest.raises(LabError, match=r"spec.containers\[0\].image: container 'web' has no image"):
        manifests.validate(pod)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c"}]},
            },
        },
    }
    with pytest.raises(LabError, match="has no image"):
        manifests.validate([deployment])


def test_validating_does_not_build_the_iri_grammar() -> None:
    """jsonschema ``_format.py`` imports ``rfc3987_syntax`` (when installed) only for the "iri"
    and "iri-reference" formats, and that import builds a Lark grammar (over a second); the
    bundled Kubernetes schemas use no such format (byte, date-time, double, int32, int64), so
    labkit declines the import: a fresh process validates a Service and loads the Kubernetes
    client without it, and the schema's own rules still apply."""
    script = (
        "import sys, labkit.manifests as m\n"
        "m.validate([{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'a'},"
        " 'spec': {'ports': [{'port': 80}]}}])\n"
        "import kubernetes\n"
        "try:\n"
        "    m.validate([{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'a'},"
        " 'spec': {'ports': [{'port': 'eighty'}]}}])\n"
        "except Exception as exc:\n"
        "    print('refused:', type(exc).__name__)\n"
        "print('loaded:', sys.modules.get('rfc3987_syntax') is not None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "refused: LabError" in out
    assert "loaded: False" in out
