"""The diagram model under both pictures: DOT and the text form from the same data, colours at
WCAG AA contrast, and the SVG that `dot` draws saying what the text form says."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from labkit.errors import LabError
from labkit.widgets import picture as picture_module
from labkit.widgets.diagram import (
    BACKGROUND,
    EDGE,
    ROLES,
    Arrow,
    Box,
    Diagram,
    Group,
    contrast_ratio,
    dot_source,
    text_form,
)
from labkit.widgets.picture import Picture

SVG = "{http://www.w3.org/2000/svg}"
STRUCTURE = {"->", "|"}

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot not installed")


def svg_texts(svg: str) -> list[str]:
    """Every text the SVG draws (graphviz emits one <text> per label line)."""
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def svg_edges(svg: str) -> set[tuple[str, str]]:
    """The SVG's arrows as (tail, head) box ids, from graphviz's edge titles ``a->b``."""
    root = ET.fromstring(svg)
    out = set()
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "edge":
            title = group.find(f"{SVG}title")
            tail, _, head = (title.text or "").partition("->")
            out.add((tail, head))
    return out


def words(text: str) -> set[str]:
    """The words of a text, without the text form's structure (arrows, separators, brackets)."""
    return {w.strip("[]") for w in re.findall(r"\S+", text)} - STRUCTURE - {""}


def same_content(pic: Picture) -> None:
    """The check both pictures' tests use: the SVG's words are the text form's, and its arrows
    are the diagram's."""
    svg = pic.svg()
    assert words(" ".join(svg_texts(svg))) == words(pic.text)
    assert svg_edges(svg) == {(a.src, a.dst) for a in pic.diagram.arrows}


SAMPLE = Diagram(
    "lab x: sandbox, flannel",
    groups=(
        Group(
            "node0",
            ("node a", "IP 172.18.0.2"),
            "node",
            (Box("p0", ("pod default/web", "10.244.0.2"), "pod"),),
        ),
    ),
    boxes=(Box("s0", ("svc default/web", "ClusterIP 10.96.0.5"), "service"),),
    arrows=(Arrow("s0", "p0"), Arrow("s0", "p0", "not ready", dashed=True)),
)


def test_every_role_reads_at_wcag_aa() -> None:
    """WCAG 2.1 SC 1.4.3 (contrast minimum, 4.5:1 for text), with relative luminance as WCAG
    2.1 defines it: every role's text on its fill, arrow labels and the title on the
    background."""
    for role, (fill, text, _border) in ROLES.items():
        assert contrast_ratio(text, fill) >= 4.5, role
    assert contrast_ratio(EDGE[1], BACKGROUND) >= 4.5


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    """WCAG 2.1's definition: black on white is 21:1, a colour on itself 1:1, and #777777 on
    white just under 4.5:1 (the classic failing grey)."""
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#336699", "#336699") == pytest.approx(1.0)
    assert 4.4 < contrast_ratio("#777777", "#ffffff") < 4.5


def test_dot_has_clusters_explicit_colours_and_no_positions() -> None:
    """Graphviz's DOT language (graphviz.org/doc/info/lang.html): a subgraph whose name starts
    with ``cluster`` is drawn as a frame; the source sets fills and font colours and never a
    ``pos``, so dot does all the layout."""
    dot = dot_source(SAMPLE)
    assert "subgraph cluster_node0" in dot
    assert f'bgcolor="{BACKGROUND}"' in dot
    for fill, text, _ in (ROLES["pod"], ROLES["service"], ROLES["node"]):
        assert fill in dot and text in dot
    assert "pos=" not in dot
    assert "style=dashed" in dot


def test_text_form_lists_groups_boxes_and_arrows() -> None:
    """The text form carries every label line and each arrow by its boxes' first lines."""
    assert text_form(SAMPLE).splitlines() == [
        "lab x: sandbox, flannel",
        "node a | IP 172.18.0.2",
        "  pod default/web | 10.244.0.2",
        "svc default/web | ClusterIP 10.96.0.5",
        "svc default/web -> pod default/web",
        "svc default/web -> [not ready] pod default/web",
    ]


def test_unknown_role_or_box_is_a_programming_error() -> None:
    """A builder that names a role without colours or an arrow to nothing fails loudly."""
    with pytest.raises(ValueError, match="roles"):
        dot_source(Diagram("t", boxes=(Box("a", ("a",), "nope"),)))
    with pytest.raises(ValueError, match="boxes"):
        text_form(Diagram("t", boxes=(Box("a", ("a",), "pod"),), arrows=(Arrow("a", "b"),)))


@needs_dot
def test_svg_says_what_the_text_says() -> None:
    """Graphviz's SVG renderer (plugin/core/gvrender_core_svg.c) writes one <text> per label
    line and an edge <title> ``tail->head``: the words and arrows equal the text form's."""
    pic = Picture(SAMPLE)
    same_content(pic)
    bundle = pic._repr_mimebundle_()
    assert bundle["text/plain"] == pic.text == str(pic)
    ET.fromstring(bundle["image/svg+xml"])
    inline = ET.fromstring(bundle["text/html"])  # the notebook's view: the same SVG, inline
    assert inline.get("class") == "lk-picture" and len(inline) == 1


@needs_dot
def test_long_lines_wrap_in_the_svg_only() -> None:
    """A long iptables comment wraps at spaces in the SVG; the words stay the same."""
    long = "Drop if no policies passed packet: demo/pictures-deny-web " + "word " * 30
    pic = Picture(Diagram("t", boxes=(Box("a", ("DROP", long.strip()), "drop"),)))
    assert len(svg_texts(pic.svg())) > 2
    same_content(pic)


def test_missing_dot_is_one_lab_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """graphviz's Python package raises ExecutableNotFound when ``dot`` is not on PATH
    (graphviz/backend/execute.py): the learner gets a LabError naming the install."""

    class NoDot:
        def __init__(self, source: str) -> None:
            self.source = source

        def pipe(self, **kwargs: object) -> str:
            raise picture_module.graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(picture_module.graphviz, "Source", NoDot)
    pic = Picture(SAMPLE)
    with pytest.raises(LabError, match="Graphviz") as err:
        pic.svg()
    assert "apt-get install graphviz" in err.value.fix
    assert "svc default/web" in str(pic)


def test_a_wide_picture_fits_its_output_area():
    """dot writes the root <svg> with a fixed width in points (Graphviz's SVG renderer); a
    responsive max-width with height:auto keeps the viewBox's proportions (CSS Images 3
    default sizing), so a wide picture shrinks to a 1024 px window instead of being clipped."""
    from labkit.widgets.picture import FIT_WIDTH, fit_width

    svg = Picture(SAMPLE).svg()
    root = svg[svg.index("<svg ") : svg.index(">", svg.index("<svg "))]
    assert FIT_WIDTH in root and "viewBox=" in root
    assert fit_width('<?xml?>\n<svg width="9pt">x</svg>') == (
        f'<?xml?>\n<svg {FIT_WIDTH} width="9pt">x</svg>'
    )
    with pytest.raises(ValueError):
        fit_width("<g/>")
