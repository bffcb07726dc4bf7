"""The one table formatter (labkit.tables) and kubectl get's tables, held against Go's
tabwriter rules and against output printed in the Kubernetes docs ("Connecting Applications with
Services": `kubectl get svc my-nginx`, `kubectl get endpointslices -l ...`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from labkit.printers.columns import TableOptions, table
from labkit.tables import align_tabs, render_table

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def created(seconds: int) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_align_tabs_follows_go_tabwriter_column_blocks():
    # upstream describe_test.go (TestDescribeServiceAccount): one block, padding 2
    lines = [
        "Name:\tbar",
        "Namespace:\tfoo",
        "Labels:\t<none>",
        "Annotations:\t<none>",
        "Image pull secrets:\ttest-local-ref (not found)",
    ]
    assert align_tabs(lines, 2) == [
        "Name:                bar",
        "Namespace:           foo",
        "Labels:              <none>",
        "Annotations:         <none>",
        "Image pull secrets:  test-local-ref (not found)",
    ]
    # a line without a tab ends a block; a column spans only the lines that have a cell there
    assert align_tabs(["a:\t1", "long key:\t2", "Spec:", "b:\t3", "x\ty\tz", "xx\tyyyy\tz"], 2) == [
        "a:         1",
        "long key:  2",
        "Spec:",
        "b:  3",
        "x   y     z",
        "xx  yyyy  z",
    ]
    assert align_tabs(["trailing\t", "x\t"], 2) == ["trailing", "x"]


def test_render_table_is_kubectl_get_style():
    assert render_table(
        ["NAME", "IP"], [["web", "10.244.1.2"], ["pending-pod", None]]
    ).splitlines() == [
        "NAME          IP",
        "web           10.244.1.2",
        "pending-pod   <none>",
    ]
    assert render_table(None, [["a", "b"]]) == "a   b"
    assert render_table(["NAME", "ADDRESS", "PORTS"], [["web", "", "80"]]).splitlines() == [
        "NAME   ADDRESS   PORTS",
        "web              80",
    ]


SVC = {
    "metadata": {
        "name": "my-nginx",
        "namespace": "default",
        "labels": {"run": "my-nginx"},
        "creationTimestamp": created(21),
    },
    "spec": {
        "type": "ClusterIP",
        "clusterIPs": ["10.0.162.149"],
        "ports": [{"port": 80, "protocol": "TCP"}],
        "selector": {"run": "my-nginx"},
    },
}
SLICE = {
    "metadata": {
        "name": "my-nginx-7vzhx",
        "namespace": "default",
        "creationTimestamp": created(21),
    },
    "addressType": "IPv4",
    "ports": [{"port": 80, "protocol": "TCP"}],
    "endpoints": [{"addresses": ["10.244.2.5"]}, {"addresses": ["10.244.3.4"]}],
}


def test_get_svc_and_endpointslices_print_as_the_docs_show():
    assert table("Service", [SVC], NOW, TableOptions()).splitlines() == [
        "NAME       TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE",
        "my-nginx   ClusterIP   10.0.162.149   <none>        80/TCP    21s",
    ]
    assert table("EndpointSlice", [SLICE], NOW, TableOptions()).splitlines() == [
        "NAME             ADDRESSTYPE   PORTS   ENDPOINTS               AGE",
        "my-nginx-7vzhx   IPv4          80      10.244.2.5,10.244.3.4   21s",
    ]


def test_table_options_add_namespace_labels_prefix_and_drop_headers():
    wide = table(
        "Service", [SVC], NOW, TableOptions(wide=True, namespace_column=True, show_labels=True)
    )
    assert wide.splitlines() == [
        "NAMESPACE   NAME       TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE   "
        "SELECTOR       LABELS",
        "default     my-nginx   ClusterIP   10.0.162.149   <none>        80/TCP    21s   "
        "run=my-nginx   run=my-nginx",
    ]
    bare = table("Service", [SVC], NOW, TableOptions(no_headers=True, name_prefix="service/"))
    assert bare == "service/my-nginx   ClusterIP   10.0.162.149   <none>   80/TCP   21s"


def test_every_kind_has_kubectls_headers():
    from labkit.printers.columns import COLUMNS

    headers = {kind: (c.headers, c.wide) for kind, c in COLUMNS.items()}
    assert headers["Pod"] == (
        ("NAME", "READY", "STATUS", "RESTARTS", "AGE"),
        ("IP", "NODE", "NOMINATED NODE", "READINESS GATES"),
    )
    assert headers["Node"][1] == (
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    )
    assert headers["Ingress"][0] == ("NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE")
    assert headers["NetworkPolicy"][0] == ("NAME", "POD-SELECTOR", "AGE")
    assert headers["Endpoints"] == (("NAME", "ENDPOINTS", "AGE"), ())
    assert headers["DaemonSet"][0][-2:] == ("NODE SELECTOR", "AGE")
