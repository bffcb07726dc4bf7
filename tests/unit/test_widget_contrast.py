"""WCAG contrast maths (labkit.widgets.contrast) and the cards' palette against JupyterLab's own
light and dark theme colours."""

from __future__ import annotations

import pytest

from labkit.checks.result import VERDICT_COLOURS
from labkit.widgets.contrast import (
    AA_TEXT,
    WHITE,
    Colour,
    contrast,
    flatten,
    luminance,
    over,
    parse_colour,
)

BLACK = Colour(0, 0, 0)
# JupyterLab 4's theme variables (packages/theme-light-extension and theme-dark-extension,
# style/variables.css): content text colour and the layer colours a card sits on.
THEMES = {
    "light": {
        "text": "rgba(0, 0, 0, 0.87)",
        "layers": ["#ffffff", "#eeeeee"],  # --jp-layout-color0/1, --jp-layout-color2
    },
    "dark": {
        "text": "#ffffff",
        "layers": ["#111111", "#212121", "#424242"],  # --jp-layout-color0, 1, 2
    },
}


@pytest.mark.parametrize(
    ("text", "colour"),
    [
        ("rgb(255, 0, 10)", Colour(255, 0, 10)),
        ("rgba(0, 0, 0, 0.87)", Colour(0, 0, 0, 0.87)),
        ("rgb(1 2 3 / 50%)", Colour(1, 2, 3, 0.5)),
        ("rgba(1,2,3,0)", Colour(1, 2, 3, 0.0)),
        ("#fff", WHITE),
        ("#1A7F37", Colour(0x1A, 0x7F, 0x37)),
        (" transparent ", Colour(0, 0, 0, 0.0)),
    ],
)
def test_css_colours_parse_as_browsers_compute_them(text, colour):
    """CSS Color 4 rgb()/rgba() (legacy comma and space/slash forms) and #hex notation."""
    assert parse_colour(text) == colour


@pytest.mark.parametrize("text", ["red", "#12", "hsl(0, 0%, 0%)", "rgb(1, 2)", ""])
def test_other_colour_notations_are_refused(text):
    """Browsers compute colours to rgb()/rgba() (CSS Color 4, 'resolving sRGB values'); any
    other notation here is a mistake, refused rather than guessed."""
    with pytest.raises(ValueError, match="not a CSS"):
        parse_colour(text)


def test_the_wcag_reference_points():
    """WCAG 2.1 'relative luminance' and 'contrast ratio' definitions: white 1, black 0; black on
    white 21:1; a colour on itself 1:1; #767676 on white is the well-known 4.54:1 AA grey."""
    assert luminance(WHITE) == pytest.approx(1.0)
    assert luminance(BLACK) == 0.0
    assert contrast(BLACK, WHITE) == pytest.approx(21.0)
    assert contrast(WHITE, BLACK) == pytest.approx(21.0)
    assert contrast(Colour(80, 80, 80), Colour(80, 80, 80)) == pytest.approx(1.0)
    assert contrast(parse_colour("#767676"), WHITE) == pytest.approx(4.54, abs=0.01)
    assert contrast(parse_colour("#777777"), WHITE) < AA_TEXT


def test_translucent_layers_are_composited_innermost_first():
    """CSS Compositing 'source-over': a half-black layer over white is mid grey; layers found
    walking up from an element lie over each other, the page at the bottom."""
    assert over(Colour(0, 0, 0, 0.5), WHITE) == Colour(127.5, 127.5, 127.5)
    assert flatten([]) == WHITE
    assert flatten([Colour(0, 0, 0, 0.0)], BLACK) == BLACK
    assert flatten([Colour(255, 255, 255, 0.5), Colour(0, 0, 0)]) == Colour(127.5, 127.5, 127.5)
    assert flatten([Colour(0, 0, 0), WHITE]) == BLACK
    assert contrast(Colour(0, 0, 0, 0.87), WHITE) == pytest.approx(
        contrast(Colour(33.15, 33.15, 33.15), WHITE)
    )


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_card_text_reaches_aa_on_every_layer_of_both_themes(theme):
    """A card's text is the theme's content colour (--jp-content-font-color1) on its layers."""
    text = parse_colour(THEMES[theme]["text"])
    for layer in THEMES[theme]["layers"]:
        assert contrast(text, parse_colour(layer)) >= AA_TEXT, (theme, layer)


@pytest.mark.parametrize("verdict", sorted(VERDICT_COLOURS))
def test_white_on_every_badge_and_mark_colour_reaches_aa(verdict):
    """Badges and marks are white on the verdict's colour, whatever the theme."""
    assert contrast(WHITE, parse_colour(VERDICT_COLOURS[verdict])) >= AA_TEXT
    assert contrast(WHITE, parse_colour("#57606a")) >= AA_TEXT
