"""WCAG 2.x contrast from CSS colours: parse ``rgb()``/``rgba()``/``#hex``, lay translucent layers
over what is behind them, and compute the contrast ratio that AA asks to be at least 4.5:1 for
text. Pure; the browser test feeds it the computed styles of every text in a card."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

AA_TEXT = 4.5
"""WCAG 2.1 success criterion 1.4.3 (Contrast, Minimum): normal text needs 4.5:1."""

_RGB = re.compile(r"rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)")


class Colour(NamedTuple):
    """An sRGB colour, channels 0-255, and its opacity 0-1."""

    red: float
    green: float
    blue: float
    alpha: float = 1.0


def parse_colour(text: str) -> Colour:
    """A CSS colour as browsers compute it (``rgb(r, g, b)``, ``rgba(r, g, b, a)``,
    ``rgb(r g b / a)``), or ``#rgb``/``#rrggbb``; ``transparent`` is black at opacity 0."""
    value = text.strip().lower()
    if value == "transparent":
        return Colour(0, 0, 0, 0.0)
    if value.startswith("#") and len(value) in (4, 7):
        digits = value[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return Colour(*(int(digits[i : i + 2], 16) for i in (0, 2, 4)))
    found = _RGB.fullmatch(value)
    if found is None:
        raise ValueError(f"not a CSS rgb()/rgba()/#hex colour: {text!r}")
    red, green, blue, alpha = found.groups()
    if alpha is None:
        opacity = 1.0
    elif alpha.endswith("%"):
        opacity = float(alpha[:-1]) / 100
    else:
        opacity = float(alpha)
    return Colour(float(red), float(green), float(blue), opacity)


def over(top: Colour, below: Colour) -> Colour:
    """``top`` painted over an opaque ``below`` (source-over compositing): an opaque colour."""
    a = top.alpha
    return Colour(
        top.red * a + below.red * (1 - a),
        top.green * a + below.green * (1 - a),
        top.blue * a + below.blue * (1 - a),
    )


WHITE = Colour(255, 255, 255)


def flatten(layers: Sequence[Colour], base: Colour = WHITE) -> Colour:
    """The opaque colour seen through ``layers`` (innermost first, as an element's ancestors'
    backgrounds are found walking up) over ``base`` (the page)."""
    seen = base
    for layer in reversed(layers):
        seen = over(layer, seen)
    return seen


def luminance(colour: Colour) -> float:
    """WCAG relative luminance of an opaque sRGB colour (0 black .. 1 white)."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * linear(colour.red) + 0.7152 * linear(colour.green) + 0.0722 * linear(colour.blue)
    )


def contrast(foreground: Colour, background: Colour) -> float:
    """WCAG contrast ratio (1 .. 21) of a text colour, laid over ``background`` if translucent,
    against the opaque ``background``."""
    text = over(foreground, background) if foreground.alpha < 1 else foreground
    lighter, darker = sorted((luminance(text), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
