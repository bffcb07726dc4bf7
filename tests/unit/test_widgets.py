"""The notebook widgets built and driven without a browser: the progress sink a StepList
reports to, the lab panel, exercise cards (same content as the Result's text form, hints through
the exercise's own ladder), the reachability grid (same marks as the text table) and the display
formatter that shows them for every Result in a kernel."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from io import StringIO
from types import SimpleNamespace

import pytest
from IPython.core.formatters import DisplayFormatter
from rich.console import Console
from test_checks_policy import DB_FROM_ALL, DB_FROM_API, INTENT, PODS, tiers

import labkit
from labkit import console
from labkit.checks.matrix import policy_matrix
from labkit.checks.result import Step, make_result
from labkit.course import exercise_data, exercise_lab
from labkit.course.exercise_lab import Exercise
from labkit.course.exercise_result import grade
from labkit.errors import LabError
from labkit.status import render_status
from labkit.widgets import ExerciseCard, LabPanel, ReachabilityGrid, panel
from labkit.widgets.display import WIDGET_VIEW, register, shown_bar
from labkit.widgets.grid import grid_cells
from labkit.widgets.progress import ProgressBar, step_text

# --------------------------------------------------------------------------- helpers


class _Text(HTMLParser):
    """The text a reader sees in a card, without its chrome (marks, table headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.chrome, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        if self.chrome or "lk-chrome" in (dict(attrs).get("class") or ""):
            self.chrome += 1

    def handle_endtag(self, tag):
        if self.chrome:
            self.chrome -= 1

    def handle_data(self, data):
        if not self.chrome:
            self.parts.append(data)


def words_of_html(markup: str) -> list[str]:
    parser = _Text()
    parser.feed(markup)
    return re.findall(r"[\w./#'-]+", " ".join(parser.parts).lower())


def words_of_text(text: str) -> list[str]:
    return re.findall(r"[\w./#'-]+", re.sub(r"\[( ok |FAIL|info)\]", " ", text).lower())


class Recorder:
    def __init__(self):
        self.events = []

    def started(self, title, number, total):
        self.events.append(("started", title, number, total))

    def finished(self, title, took, ok):
        self.events.append(("finished", title, ok))

    def note(self, text):
        self.events.append(("note", text))


FAILED = make_result(
    "pod_to_service",
    "default/client -> web:80",
    [
        Step("find pod default/client", "Running", True),
        Step("connect 10.96.0.10:80", "timeout after 1 s", False, ("attempt 1: timeout", "x<y>")),
        Step("context", "2 endpoints", None),
    ],
    hint="Look at the NetworkPolicies & the <routes>.",
    failure="timeout",
    layer="policy",
)
PASSED = make_result("dns", "web.default", [Step("resolve", "10.96.0.10", True)])

# --------------------------------------------------------------------------- progress


def test_steps_report_to_the_sink_instead_of_printing():
    """rich Console output is replaced, not doubled: a sink sees every step, nothing prints."""
    out = StringIO()
    steps = console.StepList(total=2, console=Console(file=out))
    recorder = Recorder()
    with console.reporting_to(recorder):
        with steps.step("one"):
            steps.command("ip link add x\nmore")
        with pytest.raises(RuntimeError), steps.step("two"):
            raise RuntimeError
        with steps.waiting("pods") as update:
            update(["a"], 2.0)
        steps.say("said")
        steps.summary()
    assert out.getvalue() == ""
    assert recorder.events == [
        ("started", "one", 1, 2),
        ("note", "$ ip link add x"),
        ("finished", "one", True),
        ("started", "two", 2, 2),
        ("finished", "two", False),
        ("note", "waiting 2 s: pods"),
        ("note", "said"),
        ("note", "Done in 0 s (2 steps)."),
    ]
    with steps.step("three"):
        pass
    assert "three" in out.getvalue()


def test_a_default_sink_is_made_once_per_step_list_unless_quiet(monkeypatch):
    """ipykernel displays a widget where display() is called: one bar per bring-up (one
    StepList), none for a quiet one (connect(quiet=True))."""
    made: list[Recorder] = []

    def make():
        made.append(Recorder())
        return made[-1]

    monkeypatch.setattr(console, "_MAKE_SINK", [])
    console.report_by_default(make)
    out = StringIO()
    steps = console.StepList(console=Console(file=out))
    with steps.step("a"):
        pass
    with steps.step("b"):
        pass
    with console.StepList(quiet=True).step("c"):
        pass
    assert len(made) == 1 and [e[1] for e in made[0].events] == ["a", "a", "b", "b"]
    assert out.getvalue() == ""


def test_the_bar_fills_step_by_step_with_the_elapsed_time():
    """ipywidgets widget_int.py IntProgress (value, max, bar_style 'success'/'danger'): a tick
    per finished step, red when one failed, green and full at the end."""
    now = [10.0]
    bar = ProgressBar(clock=lambda: now[0])
    bar.begin("up")
    now[0] = 11.5
    bar.started("Creating", 1, None)
    assert (bar.bar.value, bar.bar.max) == (0, 1)
    assert bar.line.text == "step 1: Creating · 1.5 s"
    bar.finished("Creating", 1.5, True)
    bar.started("Building", 2, None)
    assert (bar.bar.value, bar.bar.max) == (1, 2)
    bar.note("$ ip netns add x")
    assert bar.line.text == "$ ip netns add x · 1.5 s"
    bar.finished("Building", 0.1, False)
    assert bar.bar.bar_style == "danger" and bar.line.text.endswith("(FAILED)")
    now[0] = 13.0
    bar.end("up", True)
    assert (bar.bar.value, bar.bar.bar_style, bar.line.text) == (2, "success", "up in 3.0 s")
    assert step_text(3, 7, "Pods", 0.25) == "step 3/7: Pods · 0.2 s"


# --------------------------------------------------------------------------- panel


def test_the_panel_shows_every_cell_of_the_status_and_the_services(fakes):
    """Same data as `labkit status` (status.status_view), plus Services with kubectl's columns
    (k8s.io/kubernetes pkg/printers/internalversion/printers.go serviceColumnDefinitions)."""
    lab = fakes.web_cluster()
    shown = LabPanel.of(lab).status.value
    for line in render_status(lab).splitlines()[2:]:
        for cell in line.split():
            assert cell.replace("<", "&lt;").replace(">", "&gt;") in shown, cell
    assert "service/web" in shown and "Services" in shown and "LoadBalancer yes" in shown
    assert "text-align:left" in shown and "overflow-wrap:anywhere" in shown


def test_only_the_lab_line_of_the_status_header_is_bold():
    """`labkit status` prints the lab line, then notes such as the LoadBalancer model, each on a
    line of its own; the panel sets only the lab line in bold, the notes as plain lines."""
    from labkit.status import StatusView, Table
    from labkit.values import Capabilities
    from labkit.widgets.tables import status_html

    empty = Table((), [])
    view = StatusView(
        "Lab 'x': sandbox\nLoadBalancer model: VIPs",
        Capabilities(True, "iptables"),
        empty,
        empty,
        empty,
        [],
    )
    shown = status_html(view)
    assert "<b>Lab &#x27;x&#x27;: sandbox</b>" in shown
    assert "<div>LoadBalancer model: VIPs</div>" in shown and "<b>LoadBalancer" not in shown


def test_up_drives_the_bar_and_a_lab_error_is_one_line(fakes, monkeypatch):
    """ipywidgets widget_button.py Button.click runs the on_click handlers, as a browser click
    does: up drives the bar; a LabError is one line (what, fix) and the buttons come back."""
    lab = fakes.web_cluster()

    def connect(backend, cni, name):
        steps = console.StepList()
        with steps.step("Creating the cluster objects"):
            pass
        with steps.step("Building"):
            pass
        return lab

    monkeypatch.setattr(panel, "attached", lambda name: None)
    monkeypatch.setattr(panel, "connect_backend", connect)
    shown = LabPanel("l13", "calico")
    assert "is not running" in shown.status.value
    shown.buttons["up"].click()
    assert shown.lab is lab and "service/web" in shown.status.value
    assert (shown.progress.bar.value, shown.progress.bar.bar_style) == (2, "success")

    def refuse(backend, cni, name):
        raise LabError("No backend can run here.", "Run as root.")

    monkeypatch.setattr(panel, "connect_backend", refuse)
    monkeypatch.setattr(panel, "down", lambda name: [])
    shown.buttons["reset"].click()
    assert shown.lab is None and shown.progress.bar.bar_style == "danger"
    assert "No backend can run here.<br>Run as root." in shown.status.value
    assert not any(b.disabled for b in shown.buttons.values())


# --------------------------------------------------------------------------- cards


@pytest.mark.parametrize("result", [FAILED, PASSED], ids=["fail", "pass"])
def test_a_card_says_what_the_text_form_says(result):
    """The card's words, in order, are str(result)'s (checks/result.py Result.__str__), marks
    and headers aside; html.escape keeps '<' and '&' in a hint readable, not markup."""
    card = ExerciseCard(result)
    assert words_of_html(card.body.value) == words_of_text(str(result))
    assert not hasattr(card, "button")


def test_an_exercise_card_says_what_its_text_form_says():
    """An exercise's card (its headline badge, title, each check's card) has the words of
    str(ExerciseResult), in order."""
    spec = exercise_data.get("00.1")
    result = grade(spec, [FAILED, PASSED])
    assert words_of_html(ExerciseCard(result).body.value) == words_of_text(str(result))


LADDER = """
exercises:
  - id: "07.1"
    title: Fix the Service
    kind: repair
    points: 4
    setup: {scenario: 02-expose-nginx, variant: wrong-target-port}
    checks:
      - check: service_health
        args: {service: nginx-service}
    hints:
      - Look at the Service.
      - Set targetPort to 80.
"""


def test_show_hint_climbs_the_exercises_own_ladder_and_records_it(
    tmp_path, fakes, progress_file, monkeypatch
):
    """course/exercise_lab.py Exercise.hint: each rung shown is recorded as a hint used."""
    path = tmp_path / "07-demo.yaml"
    path.write_text(LADDER)
    spec = exercise_data.load_lesson(path)[0]
    monkeypatch.setattr(exercise_lab, "run_check", lambda lab, name, args: FAILED)
    ex = Exercise(spec, fakes.ObjectLab(), learner="ada")
    ex.setup()
    card = ExerciseCard(ex.check())
    card.button.click()
    assert "hint 1 of 2 for exercise 07.1: Look at the Service." in card.hints.value
    card.button.click()
    assert card.hints.value.count("<div") == 2 and "Set targetPort to 80." in card.hints.value
    assert exercise_lab.progress.exercise_history("07.1", "ada").hints == (0, 1)


# --------------------------------------------------------------------------- grid


def test_the_grid_shows_the_text_tables_marks_and_highlights_differences(fakes):
    """checks/matrix.py _render: the grid's marks are the text table's, cell for cell."""
    result = policy_matrix(tiers(fakes, DB_FROM_ALL), PODS, [8080], INTENT, wait=0)
    grid = ReachabilityGrid(result)
    table = next(s for s in result.steps if s.action.startswith("reachability")).evidence
    rows = grid_cells(result.data)["8080/TCP"]
    for row, line in zip(rows, table[1:-1], strict=True):
        assert [c.mark for c in row] == line.split()[1:-1]
    fe_db = grid.buttons["default/fe -> default/db#1:8080/TCP"]
    assert (fe_db.description, fe_db.button_style) == (".!", "danger")
    assert grid.buttons["default/api -> default/fe:8080/TCP"].button_style == ""
    fe_db.click()
    assert "expected blocked, observed connected (differs from the expected)" in grid.reason.value
    assert "allowed by rule default/db-from-api ingress[0]" in grid.reason.value
    grid.buttons["default/fe -> default/api:8080/TCP"].click()
    assert "no policy selects the pod for ingress" in grid.reason.value


def test_only_a_matrix_result_makes_a_grid():
    """Only a policy_matrix Result has a matrix (checks/matrix.py Observed.data)."""
    with pytest.raises(ValueError, match="not a policy_matrix result"):
        ReachabilityGrid(PASSED)


# --------------------------------------------------------------------------- display


def test_a_kernel_shows_results_with_their_widget_and_the_same_text(fakes, monkeypatch):
    """IPython formatters.py DisplayFormatter.format: a mimebundle formatter's types are added to
    the other formatters' text/plain and text/html, which stay as they were."""
    monkeypatch.setattr(console, "_MAKE_SINK", [])
    formatter = DisplayFormatter()
    register(SimpleNamespace(display_formatter=formatter))
    data, _ = formatter.format(FAILED)
    assert data["text/plain"] == str(FAILED) and data["text/html"] == FAILED._repr_html_()
    assert set(data[WIDGET_VIEW]) >= {"model_id"}
    matrix = policy_matrix(tiers(fakes, DB_FROM_API), PODS, [8080], INTENT, wait=0)
    assert WIDGET_VIEW in formatter.format(matrix)[0]
    assert [shown_bar] == console._MAKE_SINK


def test_importing_labkit_registers_the_widgets_only_in_a_kernel(monkeypatch):
    """IPython's get_ipython() is None outside IPython, and only ipykernel's shell has a
    ``kernel`` (ipykernel zmqshell.py ZMQInteractiveShell): widgets only there."""
    registered = []
    monkeypatch.setattr("labkit.widgets.display.register", registered.append)
    shell = SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    labkit._widgets_in_jupyter()
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    labkit._widgets_in_jupyter()
    assert registered == [shell]
