"""A CRD and a resource of its kind in one apply batch on Kind: the CRD first, then a wait until it
is Established and its kind served, then the resource. Against the fake API server of
fake_apiserver.py (no Docker), whose CRDs turn Established only after a few reads."""

import pytest

from labkit.errors import LabError
from labkit.kind import crds, objects
from labkit.lab import ObjectRef

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            }
        ],
    },
}
WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}}
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}}


def test_the_crd_is_established_before_its_resource_is_applied(fake_api, fake_api_lab):
    """kubernetes staging/src/k8s.io/apiextensions-apiserver/pkg/controller/establish/
    establishing_controller.go: a new CRD's kind is served only once the controller sets
    condition Established (what `kubectl wait --for=condition=Established crd/<name>` waits
    for, test/cmd/crd.sh)."""
    fake_api.crd_delay = 2
    refs = fake_api_lab.apply(
        [WIDGET, CONFIG, CRD]
    )  # the resource first, as a learner might write it
    assert refs == [
        ObjectRef("CustomResourceDefinition", "widgets.example.com", None),
        ObjectRef("ConfigMap", "c1", "default"),
        ObjectRef("Widget", "w1", "default"),
    ]
    assert fake_api.objects[("widgets", "default", "w1")]["kind"] == "Widget"
    calls = [(r.method, r.path.partition("?")[0].rpartition("/")[2]) for r in fake_api.requests]
    crd_applied = calls.index(("PATCH", "widgets.example.com"), calls.index(("PATCH", "c1")) + 1)
    widget_dry_run = calls.index(("PATCH", "w1"))
    polls = calls[crd_applied:widget_dry_run].count(("GET", "customresourcedefinitions"))
    assert polls == 3  # twice not yet Established, then Established
    dry_runs = [r for r in fake_api.requests if r.method == "PATCH" and "dryRun=All" in r.path]
    assert [r.path.partition("?")[0].rpartition("/")[2] for r in dry_runs] == [
        "widgets.example.com",
        "c1",
        "w1",
    ]


def test_a_crd_that_never_becomes_established_stops_before_its_resources(
    fake_api, fake_api_lab, monkeypatch
):
    """kubernetes staging/src/k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/types.go:
    Established false (e.g. a NamesAccepted conflict) means the kind is not served; the wait is
    bounded and names what is missing."""
    monkeypatch.setattr(objects, "CRD_WAIT_S", 0.05)
    fake_api.crd_delay = 10**6
    with pytest.raises(LabError) as err:
        fake_api_lab.apply([CRD, WIDGET])
    assert "crd widgets.example.com not Established" in err.value.what
    assert "kind Widget in example.com/v1 not served yet" in err.value.what
    assert "kubectl get crd widgets.example.com -o yaml" in err.value.fix
    assert ("widgets", "default", "w1") not in fake_api.objects


def test_a_refused_resource_names_the_crd_already_applied(fake_api, fake_api_lab):
    """The API server validates a custom resource against its CRD only once the kind is served
    (apiextensions-apiserver pkg/apiserver/customresource_handler.go), so its dry run comes after
    the CRD, and the error says what is already in."""
    fake_api.reject.add("w1")
    with pytest.raises(LabError) as err:
        fake_api_lab.apply([CRD, WIDGET])
    assert "so nothing more was applied (already applied: " in err.value.what
    assert "widgets.example.com" in err.value.what and "forbidden" in err.value.what


def test_which_documents_wait_for_the_batchs_crds():
    """apiextensions.k8s.io/v1 CustomResourceDefinitionSpec: group, names.kind, scope, and each
    served version make the (apiVersion, kind) pairs the CRD defines."""
    cluster_scoped = {
        **CRD,
        "spec": {
            **CRD["spec"],
            "scope": "Cluster",
            "versions": [{"name": "v1"}, {"name": "v2", "served": False}],
        },
    }
    assert crds.defined_kinds([CRD, CONFIG]) == {("example.com/v1", "Widget"): True}
    assert crds.defined_kinds([cluster_scoped]) == {("example.com/v1", "Widget"): False}
    defined = crds.defined_kinds([CRD])
    assert crds.split([CRD, WIDGET, CONFIG], defined) == ([CRD, CONFIG], [WIDGET])
    filled = objects.with_namespace([WIDGET], None, crds.defined_kinds([cluster_scoped]))
    assert "namespace" not in filled[0]["metadata"]
    with pytest.raises(LabError, match=r"Widget: at metadata\.name: required"):
        crds.check_names([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}])
