"""The kubectl-like status table and the doctor's report (pure rendering)."""

from __future__ import annotations

from labkit.doctor import DoctorLine, render_lines
from labkit.status import _node_rows, _pod_rows
from labkit.tables import render_table as table


def test_table_aligns_columns_and_marks_empty_cells():
    text = table(["NAME", "IP"], [["web", "10.244.1.2"], ["pending-pod", None]])
    lines = text.splitlines()
    assert lines[0] == "NAME          IP"
    assert lines[2] == "pending-pod   <none>"


def test_rows_come_from_kubernetes_shaped_objects():
    node = {
        "metadata": {"name": "lab-worker", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}],
            "nodeInfo": {"kubeletVersion": "v1.36.1"},
        },
    }
    assert _node_rows([node]) == [
        ["node/lab-worker", "Ready", "control-plane", "v1.36.1", "172.18.0.3", "10.244.1.0/24"]
    ]
    pod = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "lab-worker", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.2",
            "containerStatuses": [{"ready": True}, {"ready": False}],
        },
    }
    assert _pod_rows([pod]) == [
        ["default", "pod/web", "1/2", "Running", "10.244.1.2", "lab-worker"]
    ]


def test_doctor_report_names_fixes_and_counts_only_required_failures():
    text = render_lines(
        [
            DoctorLine("root", True, "running as root"),
            DoctorLine("Docker engine", False, "no engine answers", "start Docker"),
            DoctorLine("helm", False, "not found", "install Helm", required=False),
        ]
    )
    assert "[ok  ] root: running as root" in text
    assert "[FAIL] Docker engine: no engine answers\n       fix: start Docker" in text
    assert "[warn] helm" in text
    assert text.endswith("1 check(s) failed; apply the fixes above.")
    assert render_lines([DoctorLine("root", True, "ok")]).endswith("All checks passed.")
