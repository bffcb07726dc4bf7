"""What a picture holds, pure: boxes (optionally in groups) and arrows, rendered two ways from the
same data, as Graphviz DOT (dot lays it out; no box is placed by hand) and as text, so the SVG
and the text form always say the same things.

Every box, group and arrow label has a role; each role has an explicit fill and text colour (and
the graph an explicit background), so the SVG reads the same on JupyterLab's light and dark
themes, with text at WCAG AA contrast (4.5:1) against what it is drawn on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import graphviz

ROLES: dict[str, tuple[str, str, str]] = {
    # role: (fill, text, border)
    "node": ("#e6edf7", "#14284b", "#4a6fa5"),
    "pod": ("#ffffff", "#1b1b1b", "#5b6b7f"),
    "service": ("#fff2cc", "#3d2c00", "#a67c00"),
    "step": ("#e9f5ea", "#0f3318", "#3f7d4a"),
    "nat": ("#fde6cf", "#4a2500", "#b35c00"),
    "drop": ("#fbe1e3", "#6e0011", "#b3001b"),
    "note": ("#f1f1f1", "#222222", "#777777"),
    "outside": ("#ede7f6", "#2a1a4a", "#6a4fa5"),
}
"""Each role's fill, text and border colour."""

BACKGROUND = "#fcfcfc"
"""The graph's own background: arrow labels are drawn on it."""
EDGE = ("#3a3a3a", "#1e1e1e")
"""Arrows' line and label colours."""
FONT = "Helvetica"


@dataclass(frozen=True)
class Box:
    """One thing drawn: its text lines (the first is its name) and its role."""

    id: str
    lines: tuple[str, ...]
    role: str


@dataclass(frozen=True)
class Group:
    """Boxes drawn together inside one frame (a node and its pods)."""

    id: str
    lines: tuple[str, ...]
    role: str
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Arrow:
    """A directed link between two boxes; ``dashed`` for one that is known but not taken (its
    label says why, so the text form says it too)."""

    src: str
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass(frozen=True)
class Diagram:
    """A whole picture: a title, groups, free boxes and arrows; ``across`` lays it left to
    right instead of top to bottom."""

    title: str
    groups: tuple[Group, ...] = ()
    boxes: tuple[Box, ...] = ()
    arrows: tuple[Arrow, ...] = ()
    across: bool = False

    def all_boxes(self) -> list[Box]:
        """Every box, grouped ones first, in drawing order."""
        return [b for g in self.groups for b in g.boxes] + list(self.boxes)

    def name_of(self, box_id: str) -> str:
        """A box's first line, which names it in the text form's arrows."""
        return next(b.lines[0] for b in self.all_boxes() if b.id == box_id)


def check_roles(diagram: Diagram) -> None:
    """Refuse a diagram that names an unknown role or an arrow to an unknown box (a programming
    error in a builder, not a learner's mistake)."""
    ids = {b.id for b in diagram.all_boxes()}
    roles = {b.role for b in diagram.all_boxes()} | {g.role for g in diagram.groups}
    unknown = roles - ROLES.keys()
    dangling = {a.src for a in diagram.arrows} | {a.dst for a in diagram.arrows}
    if unknown or dangling - ids:
        raise ValueError(f"diagram names unknown roles {unknown} or boxes {dangling - ids}")


WRAP = 64
"""Longer lines are wrapped at spaces in the SVG, never inside a word (the text form keeps them
whole)."""


def _label(lines: Sequence[str]) -> str:
    parts = (
        textwrap.wrap(line, WRAP, break_long_words=False, break_on_hyphens=False) or [""]
        for line in lines
    )
    return "\n".join(part for wrapped in parts for part in wrapped)


def dot_source(diagram: Diagram) -> str:
    """The diagram as Graphviz DOT: groups as ``cluster_`` subgraphs, explicit colours."""
    check_roles(diagram)
    graph = graphviz.Digraph(
        "labkit",
        graph_attr={
            "label": diagram.title,
            "labelloc": "t",
            "rankdir": "LR" if diagram.across else "TB",
            "bgcolor": BACKGROUND,
            "fontname": FONT,
            "fontcolor": EDGE[1],
            "nodesep": "0.3",
            "ranksep": "0.45",
        },
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11"},
        edge_attr={"color": EDGE[0], "fontcolor": EDGE[1], "fontname": FONT, "fontsize": "10"},
    )
    for group in diagram.groups:
        fill, text, border = ROLES[group.role]
        with graph.subgraph(name=f"cluster_{group.id}") as sub:
            sub.attr(
                label=_label(group.lines),
                style="rounded,filled",
                fillcolor=fill,
                fontcolor=text,
                color=border,
            )
            for box in group.boxes:
                _add_box(sub, box)
    for box in diagram.boxes:
        _add_box(graph, box)
    for arrow in diagram.arrows:
        graph.edge(
            arrow.src, arrow.dst, label=arrow.label, style="dashed" if arrow.dashed else "solid"
        )
    return str(graph.source)


def _add_box(graph: graphviz.Digraph, box: Box) -> None:
    fill, text, border = ROLES[box.role]
    graph.node(box.id, label=_label(box.lines), fillcolor=fill, fontcolor=text, color=border)


def text_form(diagram: Diagram) -> str:
    """The diagram as plain text with the same content: the title, each group with its boxes
    indented under it, the free boxes, then one line per arrow."""
    check_roles(diagram)
    out = [diagram.title]
    for group in diagram.groups:
        out.append(" | ".join(group.lines))
        out += [f"  {' | '.join(b.lines)}" for b in group.boxes]
    out += [" | ".join(b.lines) for b in diagram.boxes]
    for arrow in diagram.arrows:
        how = f" [{arrow.label}]" if arrow.label else ""
        out.append(f"{diagram.name_of(arrow.src)} ->{how} {diagram.name_of(arrow.dst)}")
    return "\n".join(out)


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio between two ``#rrggbb`` colours (1 to 21)."""
    a, b = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)
