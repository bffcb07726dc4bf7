"""A drawn diagram as a notebook shows it: SVG laid out by Graphviz's ``dot``, with the text form
as its plain-text representation (terminals, `print`, nbval's stored outputs)."""

from __future__ import annotations

from typing import Any

import graphviz

from labkit.errors import LabError
from labkit.widgets.diagram import Diagram, dot_source, text_form

FIT_WIDTH = 'style="max-width:100%;height:auto"'
"""Shrinks a wide SVG to its output area (``dot`` gives it a fixed width in points), keeping its
proportions through the viewBox: nothing is clipped at 1024 px. It works where the SVG is inline
HTML: JupyterLab draws an ``image/svg+xml`` output as an <img> at its own width, unconstrained,
so the picture's notebook view is ``text/html``, which JupyterLab prefers."""


def fit_width(svg: str) -> str:
    """``svg`` with its root element told to fit the width it is given (never wider)."""
    at = svg.find("<svg ")
    if at < 0:
        raise ValueError("no <svg> element in dot's output")
    return f"{svg[: at + 5]}{FIT_WIDTH} {svg[at + 5 :]}"


class Picture:
    """A diagram that displays as SVG in Jupyter and prints as text with the same content."""

    def __init__(self, diagram: Diagram) -> None:
        self.diagram = diagram
        self.dot = dot_source(diagram)
        self.text = text_form(diagram)
        self._svg: str | None = None

    def svg(self) -> str:
        """The picture as SVG, laid out by ``dot`` (once; later calls reuse it)."""
        if self._svg is None:
            try:
                data = graphviz.Source(self.dot).pipe(format="svg", encoding="utf-8")
            except graphviz.ExecutableNotFound as exc:
                raise LabError(
                    "Cannot draw the picture: Graphviz's `dot` program is not installed.",
                    "Install it (`sudo apt-get install graphviz`, or `sudo make setup`), or "
                    "print the picture to read its text form.",
                ) from exc
            self._svg = fit_width(str(data))
        return self._svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter's view: the SVG inline in HTML (fitted to the output area), the SVG itself,
        and the text form for front ends without either."""
        svg = self.svg()
        inline = svg[svg.index("<svg ") :]  # no XML prolog or DOCTYPE inside HTML
        return {
            "text/html": f'<div class="lk-picture">{inline}</div>',
            "image/svg+xml": svg,
            "text/plain": self.text,
        }

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text
