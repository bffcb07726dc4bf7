"""The exercise card: a Result's own card (verdict badge, points, steps with evidence, hint) and,
for an exercise graded by ``ex.check()``, a "show hint" button that climbs the exercise's hint
ladder one rung per click through its ``hint()``, so each rung is recorded as a hint used."""

from __future__ import annotations

import html

import ipywidgets as w

from labkit.checks.result import PANEL, TEXT, Result
from labkit.course.exercise_result import ExerciseResult


def hint_html(text: str) -> str:
    """One revealed hint: the theme's text on the theme's second layer colour."""
    return (
        f"<div style='margin-top:4px;padding:6px;background:{PANEL};color:{TEXT};"
        f"border-left:4px solid #57606a;border-radius:4px'>{html.escape(text)}</div>"
    )


class ExerciseCard(w.VBox):
    """A Result as a card; with its exercise's hint ladder when ``ex.check()`` graded it."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self.body = w.HTML(result._repr_html_(), layout=w.Layout(width="auto"))
        self.hints = w.HTML("", layout=w.Layout(width="auto"))
        self.hints.add_class("lk-hints")
        self.shown: list[str] = []
        children: list[w.Widget] = [self.body]
        self.ask = result.ask_hint if isinstance(result, ExerciseResult) else None
        if self.ask is not None:
            self.button = w.Button(
                description="show hint",
                tooltip="reveal the next hint (recorded as a hint used)",
                layout=w.Layout(width="auto"),
            )
            self.button.on_click(lambda _button: self.show_hint())
            children += [self.button, self.hints]
        super().__init__(children, layout=w.Layout(width="auto"))
        self.add_class("lk-exercise-card")

    def show_hint(self) -> str:
        """Reveal the next hint (the exercise's ``hint()``: recorded, or why none is shown)."""
        if self.ask is None:
            raise ValueError("this card has no exercise to ask for hints")
        text = str(self.ask())
        self.shown.append(text)
        self.hints.value = "".join(hint_html(t) for t in self.shown)
        return text
