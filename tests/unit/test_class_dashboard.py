"""The class dashboard's front ends: the static HTML page (self-contained, accessible tables,
WCAG AA colours), the live notebook widget reading the folder again when a learner writes, and
`labkit report --class` (text, CSV and HTML files, one LabError line for bad input)."""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from labkit import cli
from labkit.checks.result import VERDICT_COLOURS
from labkit.course import class_folder
from labkit.errors import LabError
from labkit.widgets import ClassDashboard
from labkit.widgets.contrast import AA_TEXT, contrast, flatten, parse_colour
from labkit.widgets.dashboard_html import PAGE, THEMED, dashboard_html, page


class _Page(HTMLParser):
    """Tags with their attributes, table captions, header cells and each table row's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.captions: list[str] = []
        self.rows: list[list[str]] = []
        self._in: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th") and self.rows:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        self.text.append(data)
        if "caption" in self._in:
            self.captions.append(data)
        elif ("td" in self._in or "th" in self._in) and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def parsed(markup: str) -> _Page:
    p = _Page()
    p.feed(markup)
    return p


def test_page_is_self_contained_and_its_tables_accessible(classroom):
    """WCAG 2.1 technique H63 (``scope`` on header cells) and H39 (``caption``); 3.1.1 (the
    page's ``lang``); no script, stylesheet link, image or frame: one file that opens anywhere."""
    report = class_folder.class_report(classroom)
    markup = page(report, "from /srv/class")
    assert markup.startswith("<!DOCTYPE html>\n<html lang='en'>")
    p = parsed(markup)
    tags = {t for t, _ in p.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not any(a.get("src") or a.get("href") for _, a in p.tags)
    assert ("meta", {"charset": "utf-8"}) in p.tags and "title" in tags
    assert p.captions == [
        "Learners and exercises",
        "Hardest exercises (smallest share passed first)",
    ]
    scopes = [a.get("scope") for t, a in p.tags if t == "th"]
    assert scopes.count("col") == 8 + 6 and scopes.count("row") == 7 + 4
    assert p.rows[3] == [
        "bo",
        "00-start-here",
        "00.1",
        "partial",
        "1/2",
        "3",
        "0/3",
        "stuck: 3 attempts without a pass",
    ]
    assert p.rows[9] == ["11-capstone", "11.1", "2", "0", "1", "1.0"]
    words = " ".join(p.text)
    assert "Class report: 4 learners, 1 stuck" in words and "No attempt yet: cy" in words
    assert "bo on 11.1: all 5 hints shown" in " ".join(words.split())
    assert "(1 unreadable line skipped: dee 1)" in words and "from /srv/class" in words


def test_a_stuck_row_says_so_in_words_not_only_colour(classroom):
    """WCAG 1.4.1 (Use of Color): the tinted rows are exactly those whose cell says "stuck:"."""
    p = parsed(page(class_folder.class_report(classroom), ""))
    tinted = [i for i, (t, a) in enumerate([x for x in p.tags if x[0] == "tr"]) if a.get("style")]
    worded = [i for i, row in enumerate(p.rows) if row[-1].startswith("stuck:")]
    assert tinted == worded == [3, 4]


@pytest.mark.parametrize("background", [PAGE.background, PAGE.stuck])
@pytest.mark.parametrize("text", [PAGE.text, PAGE.muted])
def test_page_colours_meet_aa(text, background):
    """WCAG 2.1 1.4.3 (Contrast, Minimum): 4.5:1 for every text colour on every background."""
    assert contrast(parse_colour(text), parse_colour(background)) >= AA_TEXT


@pytest.mark.parametrize(
    ("page_colour", "text"), [("#ffffff", "#000000"), ("#111111", "#ffffff")], ids=["light", "dark"]
)
def test_the_widgets_stuck_tint_keeps_the_themes_text_readable(page_colour, text):
    """WCAG 2.1 1.4.3 in JupyterLab's light and dark themes (their page and text colours): the
    translucent tint over either page leaves the theme's text at 4.5:1 or better."""
    seen = flatten([parse_colour(THEMED.stuck)], parse_colour(page_colour))
    assert contrast(parse_colour(text), seen) >= AA_TEXT


@pytest.mark.parametrize("verdict", sorted(VERDICT_COLOURS))
def test_verdict_badges_meet_aa(verdict):
    """WCAG 2.1 1.4.3: a badge's white text on its verdict colour."""
    assert contrast(parse_colour("#ffffff"), parse_colour(VERDICT_COLOURS[verdict])) >= AA_TEXT


def test_learner_written_text_is_escaped(classroom):
    """A progress file is the learner's to write: its labels reach the page as text."""
    (classroom / "eve.jsonl").write_text(
        '{"verdict": "fail", "points": 0, "max_points": 1, "lesson": "L", '
        '"exercise": "<script>alert(1)</script>"}\n'
    )
    markup = page(class_folder.class_report(classroom), "<b>src</b>")
    assert "<script>" not in markup and "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "&lt;b&gt;src&lt;/b&gt;" in markup


def test_the_widget_fragment_uses_the_notebook_theme(classroom):
    markup = dashboard_html(class_folder.class_report(classroom))
    assert "var(--jp-content-font-color1" in markup and "<!DOCTYPE" not in markup


# --------------------------------------------------------------------------- the live widget


def test_widget_redraws_only_when_a_learner_writes(classroom):
    """It reads the folder again when a file's size or time changed (a refresh press forces it)."""
    board = ClassDashboard(classroom, live=False)
    assert "No attempt yet: cy" in board.view.value
    assert board.refresh() is False
    (classroom / "cy.jsonl").write_text(
        '{"verdict": "pass", "points": 2, "max_points": 2, "lesson": "00-start-here", '
        '"exercise": "00.1"}\n'
    )
    assert board.refresh() is True
    assert "No attempt yet" not in board.view.value and ">cy</th>" in board.view.value
    board.button.click()
    assert ">cy</th>" in board.view.value


def test_widget_live_thread_picks_up_a_new_attempt_and_stops(classroom):
    """ipywidgets' "Asynchronous Widgets" docs: a background thread may update a widget."""
    board = ClassDashboard(classroom, every=0.05)
    try:
        (classroom / "zed.jsonl").write_text(
            '{"verdict": "fail", "points": 0, "max_points": 2, "lesson": "L", "exercise": "00.1"}\n'
        )
        deadline = time.monotonic() + 5
        while ">zed</th>" not in board.view.value and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ">zed</th>" in board.view.value
    finally:
        board.close()
    assert board._thread is None


def test_widget_shows_a_bad_file_as_its_two_lines_then_recovers(classroom):
    board = ClassDashboard(classroom, live=False)
    (classroom / "bad name.jsonl").write_text("")
    board.refresh()
    assert "does not name a learner" in board.view.value and "Rename it" in board.view.value
    (classroom / "bad name.jsonl").unlink()
    board.refresh()
    assert "Learners and exercises" in board.view.value


@pytest.mark.parametrize("every", [0, -1, "10", True])
def test_widget_refuses_a_bad_interval(classroom, every):
    with pytest.raises(LabError, match="not a number of seconds"):
        ClassDashboard(classroom, every=every, live=False)


# --------------------------------------------------------------------------- the CLI


def test_cli_prints_the_tables_and_writes_csv_and_html(classroom, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["report", "--class", str(classroom), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Class report: 4 learners, 1 stuck")
    assert f"labkit: wrote {out / 'class-report.csv'} and {out / 'class-report.html'}." in printed
    csv_text = (out / "class-report.csv").read_text()
    assert csv_text.splitlines()[0].startswith("learner,lesson,exercise,best,points")
    assert "Learners and exercises" in (out / "class-report.html").read_text()


def test_cli_stuck_after(classroom, tmp_path, capsys):
    assert (
        cli.main(
            ["report", "--class", str(classroom), "--out", str(tmp_path), "--stuck-after", "1"]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("Class report: 4 learners, 3 stuck")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--stuck-after", "0"], "The stuck threshold 0 is not a number of attempts."),
        (["extra.jsonl"], "labkit report takes either progress files or --class DIR"),
    ],
)
def test_cli_bad_input_is_one_labkit_error(classroom, tmp_path, capsys, argv, words):
    """Nothing is written when the input is wrong."""
    out = tmp_path / "out"
    assert cli.main(["report", "--class", str(classroom), "--out", str(out), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"labkit: {words}") and "\nFix: " in err
    assert not out.exists()


def test_cli_missing_folder(tmp_path, capsys):
    assert cli.main(["report", "--class", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 1
    assert "There is no class folder" in capsys.readouterr().err
