"""The seam and the ground floor: backend choice through the Backend protocol, the learner's Lab
composed above scenarios, one table renderer, one progress printer."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from rich.console import Console

import labkit
from labkit import lab as seam
from labkit.console import StepList, show_messages
from labkit.course import LearnerLab
from labkit.errors import LabError
from labkit.tables import render_table
from labkit.values import Capabilities, ExecResult, HttpReply, ObjectRef, Probe, validate_cni


class RecordingLab:
    """The smallest Lab: records every seam call it gets."""

    backend = "sandbox"
    cni = "calico"
    capabilities = Capabilities(network_policy=True, kube_proxy_mode="iptables")

    def __init__(self, name: str = "t") -> None:
        self.name = name
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))

    def apply(self, manifests: Any, namespace: str | None = None) -> list[ObjectRef]:
        self._record("apply", manifests, namespace)
        return [ObjectRef("Pod", "p", namespace)]

    def delete(self, manifests_or_refs: Any) -> None:
        self._record("delete", manifests_or_refs)

    def get(self, kind, name=None, namespace="default", selector=None):
        self._record("get", kind, name, namespace, selector)
        return []

    def exec(self, pod, command, namespace="default", timeout=10.0):
        self._record("exec", pod, command, namespace, timeout)
        return ExecResult(("true",), 0, "")

    def node_exec(self, node, command, timeout=10.0):
        self._record("node_exec", node, command, timeout)
        return ExecResult(("true",), 0, "")

    def exec_interactive(self, pod, argv, namespace="default", container=None, tty=True):
        self._record("exec_interactive", pod, tuple(argv), namespace, container, tty)
        return 7

    def logs(self, pod, namespace="default", container=None):
        self._record("logs", pod, namespace, container)
        return "GET /hostname\n"

    def netns_add(self, node, name):
        self._record("netns_add", node, name)

    def netns_delete(self, node, name):
        self._record("netns_delete", node, name)

    def netns_list(self, node):
        self._record("netns_list", node)
        return ["hand"]

    def netns_exec(self, node, name, command, timeout=10.0):
        self._record("netns_exec", node, name, command, timeout)
        return ExecResult(("true",), 0, "")

    def probe(self, src, dst, port, protocol="TCP", timeout=1.0):
        self._record("probe", src, dst, port, protocol, timeout)
        return Probe(src, dst, port, protocol, "connected")

    def probe_many(self, pairs, timeout=1.0):
        self._record("probe_many", tuple(pairs), timeout)
        return []

    def http_request(self, src, dst, port, method="GET", path="/", timeout=1.0):
        self._record("http_request", src, dst, port, method, path, timeout)
        return HttpReply(src, dst, port, method, path, "connected", 200, "web-1")

    def resolve(self, src, name, rtype="A"):
        self._record("resolve", src, name, rtype)
        return ["10.96.0.10"]

    def add_outside_address(self, cidr, ports=()):
        self._record("add_outside_address", cidr, tuple(ports))

    def uid(self) -> str:
        self._record("uid")
        return f"uid-of-{self.name}"

    def outside_addresses(self) -> list[str]:
        return ["203.0.113.0/24"]


def test_learner_lab_passes_every_seam_call_through_unchanged():
    inner = RecordingLab()
    lab = LearnerLab(inner)
    assert isinstance(lab, seam.Lab) and isinstance(inner, seam.Lab)
    assert (lab.name, lab.backend, lab.cni) == ("t", "sandbox", "calico")
    assert lab.capabilities is inner.capabilities
    lab.apply("doc", "ns")
    lab.delete(["ref"])
    lab.get("pods", namespace=None)
    lab.exec("ns/p", "ip a", timeout=2.0)
    lab.node_exec("cp", ["ls"])
    assert lab.exec_interactive("ns/p", ["sh"], container="c", tty=False) == 7
    assert lab.logs("ns/p", container="c") == "GET /hostname\n"
    lab.netns_add("cp", "hand")
    assert lab.netns_list("cp") == ["hand"]
    assert lab.netns_exec("cp", "hand", "ip a", timeout=3.0).ok
    lab.netns_delete("cp", "hand")
    assert lab.probe("a", "b", 80).ok
    lab.probe_many([("a", "b", 80)])
    assert lab.http_request("a", "b", 80, "POST", "/x", 2.0).status == 200
    assert lab.resolve("a", "kube-dns.kube-system") == ["10.96.0.10"]
    lab.add_outside_address("203.0.113.0/24", [443])
    assert lab.uid() == "uid-of-t"
    assert [c[0] for c in inner.calls] == [
        "apply", "delete", "get", "exec", "node_exec", "exec_interactive", "logs", "netns_add",
        "netns_list", "netns_exec", "netns_delete", "probe", "probe_many", "http_request",
        "resolve", "add_outside_address", "uid",
    ]  # fmt: skip
    assert inner.calls[9] == ("netns_exec", ("cp", "hand", "ip a", 3.0))
    assert inner.calls[13] == ("http_request", ("a", "b", 80, "POST", "/x", 2.0))
    assert inner.calls[5] == ("exec_interactive", ("ns/p", ("sh",), "default", "c", False))
    assert inner.calls[3] == ("exec", ("ns/p", "ip a", "default", 2.0))
    # What a backend offers beyond the seam is still reachable.
    assert lab.outside_addresses() == ["203.0.113.0/24"]
    with pytest.raises(AttributeError):
        lab.no_such_thing  # noqa: B018 - the attribute access is the test
    assert repr(lab) == "<sandbox lab 't' (calico)>"


def test_learner_lab_deploys_and_grades_through_scenarios(monkeypatch):
    seen: list[tuple[str, Any, str, Any]] = []
    from labkit import scenarios

    monkeypatch.setattr(
        scenarios,
        "deploy",
        lambda lab, s, variant=None: seen.append(("deploy", lab, s, variant)) or [],
    )
    monkeypatch.setattr(
        scenarios, "reset", lambda lab, s: seen.append(("reset", lab, s, None)) or []
    )
    monkeypatch.setattr(
        scenarios,
        "run_checks",
        lambda lab, s, variant=None: seen.append(("check", lab, s, variant)) or [],
    )
    inner = RecordingLab()
    lab = LearnerLab(inner)
    lab.deploy("07-nodeport", variant="selector-typo")
    lab.check("07-nodeport", variant="selector-typo")
    lab.reset("07-nodeport")
    lab.check("07-nodeport")
    # Scenarios get the backend's own Lab, never the wrapper.
    assert seen == [
        ("deploy", inner, "07-nodeport", "selector-typo"),
        ("check", inner, "07-nodeport", "selector-typo"),
        ("reset", inner, "07-nodeport", None),
        ("check", inner, "07-nodeport", None),
    ]


class FakeBackend:
    """A backend module with one lab that may or may not be running."""

    def __init__(self, running: RecordingLab | None) -> None:
        self.running = running
        self.upped: list[tuple[str, str, str | None]] = []
        self.quiet: list[bool] = []

    def attach(self, lab_name: str = "netlab") -> RecordingLab | None:
        return self.running

    def up(
        self, lab_name: str = "netlab", cni: str = "flannel", kube_proxy_mode=None, *, quiet=False
    ):
        self.upped.append((lab_name, cni, kube_proxy_mode))
        self.quiet.append(quiet)
        self.running = RecordingLab(lab_name)
        return self.running

    def down(self, lab_name: str = "netlab") -> bool:
        return True

    def names(self) -> list[str]:
        return [self.running.name] if self.running else []

    def doctor_checks(self, cni=None):
        return []


def test_connect_brings_a_lab_up_once_then_attaches(monkeypatch, caplog):
    backend = FakeBackend(None)
    monkeypatch.setattr(seam, "backend_module", lambda name: backend)
    caplog.set_level(logging.INFO, logger="labkit")
    first = labkit.connect(backend="sandbox", cni="calico", name="t")
    assert isinstance(first, LearnerLab) and backend.upped == [("t", "calico", None)]
    assert "bringing up sandbox lab 't' with calico; asked for sandbox." in caplog.text
    again = labkit.connect(backend="sandbox", cni="flannel", name="t")
    assert again.lab is first.lab and len(backend.upped) == 1
    assert "already running with CNI calico" in caplog.text
    assert "attached to running sandbox lab 't'" in caplog.text


def test_connect_quiet_asks_the_backend_for_no_progress_and_says_nothing(monkeypatch, caplog):
    """Issue 12.8: `connect(..., quiet=True)` shows no bring-up progress and no info lines; a
    loud connect still gets the progress."""
    backend = FakeBackend(None)
    monkeypatch.setattr(seam, "backend_module", lambda name: backend)
    caplog.set_level(logging.INFO, logger="labkit")
    labkit.connect(backend="sandbox", cni="calico", name="q", quiet=True)
    labkit.connect(backend="sandbox", cni="calico", name="q", quiet=True)
    assert backend.quiet == [True] and caplog.text == ""
    backend.running = None
    labkit.connect(backend="sandbox", cni="calico", name="q")
    assert backend.quiet == [True, False] and "bringing up sandbox lab 'q'" in caplog.text


def test_connect_refuses_bad_input_before_touching_a_backend(monkeypatch):
    with pytest.raises(LabError, match="Unknown backend"):
        seam.backend_module("vm")
    monkeypatch.setattr(
        seam, "backend_module", lambda name: pytest.fail("no backend for bad input")
    )
    with pytest.raises(LabError, match="Unknown CNI 'weave'"):
        labkit.connect(backend="sandbox", cni="weave")
    with pytest.raises(LabError, match="Unknown backend 'vm'"):
        labkit.connect(backend="vm")
    assert validate_cni("cilium") == "cilium"


def test_render_table_aligns_marks_empty_cells_and_can_rule_the_header():
    assert render_table(["A", "LONGER"], [["x", None], ["yy", "z"]]).splitlines() == [
        "A    LONGER",
        "x    <none>",
        "yy   z",
    ]
    assert render_table(["A", "B"], [["1", "2"]], rule=True).splitlines()[1] == "-   -"
    assert render_table(["ONLY"], []) == "ONLY"


def _printer(total: int | None = None, quiet: bool = False) -> tuple[StepList, io.StringIO]:
    out = io.StringIO()
    ticks = iter(range(100))
    console = Console(file=out, width=200, color_system=None, highlight=False)
    return StepList(total, console=console, clock=lambda: float(next(ticks)), quiet=quiet), out


def test_step_list_numbers_slow_steps_and_times_every_step():
    steps, out = _printer(total=2)
    with steps.step("Create the cluster"):
        pass
    with pytest.raises(RuntimeError), steps.step("Install Calico"):
        raise RuntimeError("boom")
    lines = out.getvalue().splitlines()
    assert lines[0] == "> [1/2] Create the cluster"
    assert lines[1].startswith("✓ [1/2] Create the cluster 1.00 s")
    assert lines[2] == "> [2/2] Install Calico"
    assert lines[3] == "✗ [2/2] Install Calico failed after 1.00 s"
    assert [ok for _, _, ok in steps.finished] == [True, False]


def test_step_list_without_a_total_prints_one_line_per_step_and_quiet_prints_nothing():
    steps, out = _printer()
    with steps.step("Build namespaces"):
        pass
    steps.say("Lab 't' is up")
    assert out.getvalue().splitlines() == [
        "✓ Build namespaces 1.00 s (total 2.00 s)",
        "Lab 't' is up",
    ]
    quiet, out = _printer(quiet=True)
    with quiet.step("x"), quiet.waiting("pods") as update:
        update(["a"], 1.0)
    quiet.say("nothing")
    assert out.getvalue() == ""


class _ClosedPipe(io.StringIO):
    """A stream whose reader went away (``labkit up 2>&1 | head -2``)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_step_list_falls_silent_when_its_reader_goes_away_and_the_work_goes_on(monkeypatch):
    monkeypatch.setattr("sys.stderr", _ClosedPipe())
    steps = StepList()
    done = []
    for title in ("Build namespaces", "Start the agent"):
        with steps.step(title):
            done.append(title)
    steps.say("Lab 't' is up")
    assert done == ["Build namespaces", "Start the agent"]
    assert [ok for _, _, ok in steps.finished] == [True, True]


def test_show_messages_prints_information_once_with_the_labkit_prefix(capsys):
    logger = logging.getLogger("labkit")
    before = list(logger.handlers)
    logger.handlers[:] = []
    try:
        show_messages()
        show_messages()
        logger.info("attached to running sandbox lab %r", "t")
        assert capsys.readouterr().err == "labkit: attached to running sandbox lab 't'\n"
        show_messages(to_stdout=True)
        logger.info("shown in the notebook")
        assert capsys.readouterr().out == "labkit: shown in the notebook\n"
        assert len(logger.handlers) == 1
    finally:
        logger.handlers[:] = before


def test_lab_check_records_progress_as_the_cli_does(monkeypatch, progress_file):
    from labkit import cli, scenarios
    from labkit.checks.result import Step, make_result

    passed = make_result("external_to_service", "outside -> svc", [Step("connect", "ok", True)])
    monkeypatch.setattr(scenarios, "deploy", lambda lab, s, variant=None: [])
    monkeypatch.setattr(scenarios, "run_checks", lambda lab, s, variant=None: [passed])
    inner = RecordingLab()
    LearnerLab(inner).deploy("07-nodeport", variant="selector-typo")
    LearnerLab(inner).check("07-nodeport", variant="selector-typo", learner="ada")
    monkeypatch.setattr(cli, "_attach", lambda lab_name: inner)
    assert cli.main(["deploy", "07-nodeport", "--variant", "selector-typo"]) == 0
    assert cli.main(["check", "07-nodeport", "--variant", "selector-typo", "--learner", "ada"]) == 0
    lines = [json.loads(line) for line in progress_file.read_text().splitlines()]
    deployed_notebook, from_notebook, deployed_cli, from_cli = lines
    for event in (deployed_notebook, deployed_cli):
        event.pop("time")
    assert (
        deployed_notebook
        == deployed_cli
        == {
            "event": "deployed",
            "lab": "t",
            "lab_uid": "uid-of-t",
            "scenario": "07-nodeport",
            "variant": "selector-typo",
        }
    )
    for entry in (from_notebook, from_cli):
        entry.pop("time")
    assert from_notebook == from_cli
    assert from_cli["exercise"] == "07-nodeport/selector-typo"
    assert from_cli["lesson"] == scenarios.get("07-nodeport").lesson
    assert from_cli["learner"] == "ada" and from_cli["verdict"] == "pass"


def test_in_ipython_a_lab_error_renders_as_its_problem_and_fix():
    error = LabError("No running lab named 'netlab'.", "Start one first: `labkit up`.")
    assert error._render_traceback_() == [
        "labkit: No running lab named 'netlab'.",
        "Fix: Start one first: `labkit up`.",
    ]


def test_a_notebook_cell_that_raises_a_lab_error_fails_with_only_its_problem_and_fix():
    """The cell's error output carries the plain text (no traceback through labkit), and it is
    an error, so Run All stops there and nbval fails the cell."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from labkit.errors import LabError\n"
            "raise LabError('Unknown CNI weave.', 'Choose calico.')"
        ),
        nbformat.v4.new_code_cell("print('never')"),
    ]
    with pytest.raises(CellExecutionError):
        NotebookClient(notebook, timeout=60).execute()
    [error] = notebook.cells[0].outputs
    assert error.output_type == "error" and error.ename == "LabError"
    assert error.traceback == ["labkit: Unknown CNI weave.", "Fix: Choose calico."]
    assert notebook.cells[1].outputs == []
