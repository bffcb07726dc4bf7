"""kubectl's JSONPath subset: the templates scripts and guides use, and one-line refusals for
the rest."""

from __future__ import annotations

import pytest

from labkit.printers.jsonpath import JsonPathError, render

PODS = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "a", "labels": {"app": "web", "app.kubernetes.io/name": "shop"}},
            "spec": {"containers": [{"name": "c1", "ports": [{"containerPort": 80}]}]},
            "status": {"podIP": "10.0.0.1", "ready": True},
        },
        {"metadata": {"name": "b", "labels": {}}, "spec": {"containers": []}, "status": {}},
    ],
}
NODE = {
    "status": {
        "addresses": [
            {"type": "InternalIP", "address": "172.18.0.2"},
            {"type": "Hostname", "address": "kind-control-plane"},
        ]
    }
}


@pytest.mark.parametrize(
    ("template", "data", "printed"),
    [
        ("{.items[*].metadata.name}", PODS, "a b"),
        ("{.items[0].status.podIP}", PODS, "10.0.0.1"),
        ("{.items[-1].metadata.name}", PODS, "b"),
        ("{.items[5].metadata.name}", PODS, ""),
        ("{$.kind}", PODS, "List"),
        ("{.items[0].status.ready}", PODS, "true"),
        ("{.items[0].metadata.labels}", PODS, '{"app":"web","app.kubernetes.io/name":"shop"}'),
        (r"{.items[0].metadata.labels.app\.kubernetes\.io/name}", PODS, "shop"),
        ("{.items[0].spec.containers[*].ports[*].containerPort}", PODS, "80"),
        ("{.items[*].status.podIP}", PODS, "10.0.0.1"),
        ("{.status.missing}", NODE, ""),
        ('{.status.addresses[?(@.type=="InternalIP")].address}', NODE, "172.18.0.2"),
        ("{.status.addresses[?(@.type=='Hostname')].address}", NODE, "kind-control-plane"),
        (
            '{range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}',
            PODS,
            "a\t10.0.0.1\nb\t\n",
        ),
        ("names: {.items[*].metadata.name}!", PODS, "names: a b!"),
        (
            "{range .items[*]}[{range .spec.containers[*]}{.name}{end}]{end}",
            PODS,
            "[c1][]",
        ),
        ("{.spec.clusterIP}", {"spec": {"clusterIP": "10.96.0.10"}}, "10.96.0.10"),
        ("{.metadata.labels.*}", {"metadata": {"labels": {"a": "1", "b": "2"}}}, "1 2"),
        ("{.spec.ports[*]}", {"spec": {"ports": {"x": 1}}}, "1"),
    ],
)
def test_templates_print_what_kubectl_prints(template, data, printed):
    assert render(template, data) == printed


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{..name}", "recursive descent"),
        ("{.items[0:2]}", "[0:2] is not served"),
        ("{.items[?(@.x>1)]}", "is not served"),
        ("{range .items[*]}{.a}", "{range} without {end}"),
        ("{.a}{end}", "{end} without {range}"),
        ("{.a", "unmatched brace"),
        ("{.items[0}", "unclosed ["),
        ("{.}", "no field name"),
        ("{items}", "unexpected"),
    ],
)
def test_what_the_subset_does_not_serve_is_refused_in_one_line(template, why):
    with pytest.raises(JsonPathError) as caught:
        render(template, PODS)
    message = str(caught.value)
    assert message.startswith("error: error parsing jsonpath ") and why in message
    assert "\n" not in message
