"""kubectl patch's three patch types, pure: strategic merge (keyed lists merged by the keys
Kubernetes declares, other lists replaced, null and $patch directives), JSON merge patch
(RFC 7386) and JSON patch (RFC 6902 add/remove/replace), with the API server's errors."""

from __future__ import annotations

import pytest

from labkit.kubectl.patching import (
    PatchError,
    apply_patch,
    json_patch,
    merge_key,
    merge_patch,
    pointer,
    strategic_merge,
)

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "type": "ClusterIP",
        "selector": {"app": "web", "tier": "front"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
        ],
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]},
                    {"name": "log", "image": "busybox"},
                ]
            },
        },
    },
}
POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "db"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}],
    },
}


@pytest.mark.parametrize(
    ("kind", "path", "key"),
    [
        ("Service", ("spec", "ports"), "port"),
        ("Pod", ("spec", "containers"), "name"),
        ("Pod", ("spec", "containers", "ports"), "containerPort"),
        ("Pod", ("spec", "containers", "env"), "name"),
        ("Pod", ("spec", "volumes"), "name"),
        ("Deployment", ("spec", "template", "spec", "containers"), "name"),
        ("StatefulSet", ("spec", "template", "spec", "initContainers", "ports"), "containerPort"),
        ("DaemonSet", ("spec", "template", "spec", "containers", "volumeMounts"), "mountPath"),
        ("Deployment", ("spec", "containers"), None),  # not the pod template
        ("Service", ("spec", "externalIPs"), None),
        ("NetworkPolicy", ("spec", "ingress"), None),
        ("NetworkPolicy", ("spec", "ingress", "ports"), None),
        ("Ingress", ("spec", "rules"), None),
    ],
)
def test_merge_keys_are_the_ones_kubernetes_declares(kind, path, key):
    assert merge_key(kind, path) == key


def test_strategic_merge_changes_one_service_port_by_its_port_number():
    patched = apply_patch(
        SERVICE, {"spec": {"ports": [{"port": 80, "targetPort": 9999}]}}, "strategic"
    )
    assert patched["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 9999, "protocol": "TCP"},
        SERVICE["spec"]["ports"][1],
    ]
    assert SERVICE["spec"]["ports"][0]["targetPort"] == 8080  # the original is left alone


def test_strategic_merge_appends_a_new_port_and_deletes_one_with_the_directive():
    patch = {
        "spec": {"ports": [{"port": 8000, "name": "admin"}, {"port": 443, "$patch": "delete"}]}
    }
    ports = apply_patch(SERVICE, patch, "strategic")["spec"]["ports"]
    assert [p["port"] for p in ports] == [80, 8000]


def test_strategic_merge_merges_maps_and_null_removes_a_key():
    patched = strategic_merge(
        SERVICE, {"spec": {"selector": {"tier": None, "version": "v2"}}}, "Service"
    )
    assert patched["spec"]["selector"] == {"app": "web", "version": "v2"}
    assert patched["spec"]["type"] == "ClusterIP"


def test_strategic_merge_replace_directive_replaces_a_map():
    patch = {"spec": {"selector": {"$patch": "replace", "app": "api"}}}
    assert apply_patch(SERVICE, patch, "strategic")["spec"]["selector"] == {"app": "api"}


def test_strategic_merge_of_deployment_replicas_labels_and_a_container_by_name():
    patch = {
        "metadata": {"labels": {"team": "shop"}},
        "spec": {
            "replicas": 5,
            "template": {"spec": {"containers": [{"name": "log", "image": "busybox:1.36"}]}},
        },
    }
    patched = apply_patch(DEPLOYMENT, patch, "strategic")
    assert patched["metadata"]["labels"] == {"app": "web", "team": "shop"}
    assert patched["spec"]["replicas"] == 5
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("web", "nginx"),
        ("log", "busybox:1.36"),
    ]
    assert containers[0]["ports"] == [{"containerPort": 80}]


def test_strategic_merge_replaces_lists_without_a_merge_key():
    patch = {"spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}}
    patched = apply_patch(POLICY, patch, "strategic")
    assert patched["spec"]["ingress"] == patch["spec"]["ingress"]
    assert patched["spec"]["policyTypes"] == ["Ingress"]


@pytest.mark.parametrize(
    ("patch", "said"),
    [
        ({"spec": {"ports": [{"targetPort": 1}]}}, "does not contain declared merge key: port"),
        ({"spec": {"$patch": "merge-all"}}, "unknown patch type"),
        ({"spec": {"$retainKeys": ["type"]}}, "does not serve the $retainKeys directive"),
        (["not", "a", "map"], "must be a map of fields, not a list"),
    ],
)
def test_strategic_merge_mistakes(patch, said):
    with pytest.raises(PatchError, match=r".*" + said.replace("$", r"\$")):
        apply_patch(SERVICE, patch, "strategic")


def test_merge_patch_replaces_lists_whole_and_null_removes():
    patched = merge_patch(SERVICE, {"spec": {"ports": [{"port": 81}], "type": None}})
    assert patched["spec"]["ports"] == [{"port": 81}]
    assert (
        "type" not in patched["spec"] and patched["spec"]["selector"] == SERVICE["spec"]["selector"]
    )
    assert merge_patch({"a": 1}, "text") == "text"
    assert merge_patch("text", {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}


def test_merge_patch_of_a_policy_spec():
    patch = {"spec": {"policyTypes": ["Ingress", "Egress"], "egress": []}}
    patched = apply_patch(POLICY, patch, "merge")
    assert (
        patched["spec"]["policyTypes"] == ["Ingress", "Egress"] and patched["spec"]["egress"] == []
    )


def test_json_patch_add_remove_replace():
    ops = [
        {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9000},
        {"op": "remove", "path": "/spec/ports/1"},
        {"op": "add", "path": "/spec/ports/-", "value": {"port": 8000}},
        {"op": "add", "path": "/spec/ports/0", "value": {"port": 7000}},
        {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"},
        {"op": "replace", "path": "/spec/type", "value": "NodePort"},
        {"op": "remove", "path": "/spec/selector/tier"},
    ]
    patched = apply_patch(SERVICE, ops, "json")
    assert [p["port"] for p in patched["spec"]["ports"]] == [7000, 80, 8000]
    assert patched["spec"]["ports"][1]["targetPort"] == 9000
    assert patched["metadata"]["labels"] == {"app": "web", "app.kubernetes.io/name": "web"}
    assert patched["spec"]["type"] == "NodePort" and patched["spec"]["selector"] == {"app": "web"}
    assert SERVICE["spec"]["type"] == "ClusterIP"


def test_json_pointer_tokens():
    assert pointer("") == []
    assert pointer("/a~1b/c~0d/0") == ["a/b", "c~d", "0"]
    with pytest.raises(PatchError, match="must be empty or start with"):
        pointer("spec/type")


@pytest.mark.parametrize(
    ("ops", "said"),
    [
        (
            [{"op": "remove", "path": "/spec/nope"}],
            "remove operation does not apply: doc is missing path: /spec/nope",
        ),
        ([{"op": "replace", "path": "/spec/nope", "value": 1}], "replace operation does not apply"),
        ([{"op": "add", "path": "/spec/nope/deeper", "value": 1}], "add operation does not apply"),
        (
            [{"op": "replace", "path": "/spec/ports/2", "value": 1}],
            "Unable to access invalid index: 2",
        ),
        (
            [{"op": "add", "path": "/spec/ports/01", "value": 1}],
            "Unable to access invalid index: 01",
        ),
        (
            [{"op": "move", "from": "/a", "path": "/b"}],
            "serves the json patch operations add, remove, replace, not 'move'",
        ),
        ([{"op": "add", "path": "/spec/x"}], "add operation needs a value"),
        ([{"op": "add", "value": 1}], "add operation needs a path"),
        ([{"op": "remove", "path": ""}], "cannot remove the whole object"),
        ([{"op": "replace", "path": "", "value": [1]}], "the patched object is a list"),
        ({"op": "add"}, "must be a list of operations, not a map"),
        (["add"], "operation must be a map, not text"),
    ],
)
def test_json_patch_mistakes(ops, said):
    with pytest.raises(PatchError) as caught:
        apply_patch(SERVICE, ops, "json")
    assert said in str(caught.value)


def test_json_patch_applies_operations_in_order_on_a_copy():
    doc = {"a": [1]}
    assert json_patch(
        doc, [{"op": "add", "path": "/a/1", "value": 2}, {"op": "remove", "path": "/a/0"}]
    ) == {"a": [2]}
    assert doc == {"a": [1]}
