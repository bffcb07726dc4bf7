"""The kubectl-like status table and the doctor's report (pure rendering)."""

from __future__ import annotations

from labkit.doctor import DoctorLine, render_lines
from labkit.status import _node_rows, _pod_rows, render_status
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
            "containerStatuses": [
                {"ready": True, "state": {"running": {}}},
                {"ready": False, "state": {"waiting": {}}},
            ],
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
    assert text.endswith("       fix: install Helm")  # the verdict, printed after, sums up
    assert render_lines([DoctorLine("root", True, "ok")]) == "[ok  ] root: ok"


class _DoctorBackend:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def doctor_checks(self, cni=None):
        return [
            DoctorLine("root", True, "running as root"),
            DoctorLine("tool", self.ok, "x", "fix"),
        ]


def test_doctor_exits_0_when_the_backend_labkit_will_use_is_ready(monkeypatch, capsys):
    from labkit import cli, doctor

    backends = {"sandbox": _DoctorBackend(ok=True), "kind": _DoctorBackend(ok=False)}
    monkeypatch.setattr(doctor, "backend_module", lambda name: backends[name])
    monkeypatch.setattr(doctor, "choose_backend", lambda backend: ("sandbox", "no Docker; root"))
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[FAIL] kind: tool" in out
    assert out.rstrip().endswith(
        "[FAIL] kind: tool: x\n       fix: fix\n\n"
        "The sandbox backend (the one labkit uses on this machine) is ready. The failed check "
        "above is the kind backend's: fix it only when you want to use it."
    )
    assert "check(s) failed" not in out  # one summary, not a count that reads as "not ready"
    assert cli.main(["doctor", "--backend", "kind"]) == 1
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("The kind backend is not ready: apply the fix of its failed check above.")
    )


def test_doctor_fails_when_no_backend_can_run(monkeypatch):
    from labkit import doctor
    from labkit.errors import LabError

    def nothing(backend):
        raise LabError("No backend can run here.", "Start Docker or run as root.")

    monkeypatch.setattr(doctor, "choose_backend", nothing)
    ready, closing = doctor.verdict([DoctorLine("sandbox: root", False, "uid 1000", "sudo")])
    assert not ready and closing.startswith("Neither backend can run here")


def test_doctor_for_one_backend_judges_only_its_lines():
    from labkit import doctor

    lines = [DoctorLine("sandbox: root", True, "root"), DoctorLine("sandbox: ip", True, "/sbin/ip")]
    assert doctor.verdict(lines, "sandbox") == (True, "The sandbox backend is ready.")
    lines.append(DoctorLine("sandbox: dig", False, "not found", "apt install dnsutils"))
    assert doctor.verdict(lines, "sandbox")[0] is False
    optional = [DoctorLine("sandbox: getent", False, "not found", "fix", required=False)]
    assert doctor.verdict(optional, "sandbox") == (True, "The sandbox backend is ready.")


def test_doctor_verdict_counts_the_failures_it_speaks_of():
    """Like kubeadm's preflight (cmd/kubeadm/app/preflight/checks.go RunChecks: each check's
    line, then the fatal ones gathered into one closing report), the closing sentence is the one
    summary: it counts the failures it names and says whose they are."""
    from labkit import doctor

    kind = [DoctorLine(f"kind: {n}", False, "x", "fix") for n in ("a", "b", "c")]
    ok_sandbox = [DoctorLine("sandbox: root", True, "root")]
    assert doctor.verdict(ok_sandbox + kind, "sandbox") == (
        True,
        "The sandbox backend is ready. The 3 failed checks above are the kind backend's: fix "
        "them only when you want to use it.",
    )
    assert doctor.verdict(ok_sandbox + kind, "kind") == (
        False,
        "The kind backend is not ready: apply the fixes of its 3 failed checks above.",
    )
    optional = DoctorLine("kind: helm", False, "not found", "install Helm", required=False)
    assert doctor.verdict([*ok_sandbox, optional], "sandbox")[1] == "The sandbox backend is ready."


def test_status_lists_the_namespaces_made_by_hand(fakes):
    lab = fakes.web_cluster()
    assert "made by hand" not in render_status(lab)
    lab.netns_add("lab-worker2", "hand")
    lab.netns_add("lab-worker2", "b")
    lab.netns_add("lab-worker", "hand")
    assert render_status(lab).endswith(
        "network namespaces made by hand (lab.netns_add): lab-worker: hand; lab-worker2: b, hand"
    )
