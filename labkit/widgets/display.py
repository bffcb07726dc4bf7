"""Cards everywhere: in a Jupyter kernel, every Result an output shows gets its widget (a card; a
card and a grid for a policy_matrix Result) beside its text and HTML forms, which stay as they
were, so nbval, which compares text/plain, and a terminal see no change. A bring-up's steps
(``labkit.connect()``) show as a progress bar in the cell instead of long rich lines."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
from IPython.display import display

from labkit.checks.result import Result
from labkit.console import report_by_default
from labkit.widgets.card import ExerciseCard
from labkit.widgets.grid import ReachabilityGrid, is_matrix
from labkit.widgets.progress import ProgressBar

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def result_widget(result: Result) -> w.Widget:
    """The widget a Result shows as: its card, with the grid under it for a matrix."""
    card = ExerciseCard(result)
    if is_matrix(result):
        return w.VBox([card, ReachabilityGrid(result)], layout=w.Layout(width="auto"))
    return card


def widget_bundle(result: Result) -> dict[str, Any]:
    """The widget-view part of a Result's display data (only that mimetype: the other
    formatters still give text/plain and text/html)."""
    bundle = result_widget(result)._repr_mimebundle_()
    assert bundle is not None
    return {WIDGET_VIEW: bundle[WIDGET_VIEW]}


def shown_bar() -> ProgressBar:
    """A progress bar displayed in the running cell, for one bring-up's steps."""
    bar = ProgressBar()
    bar.begin("bringing the lab up")
    display(bar)
    return bar


def register(shell: Any) -> None:
    """Let ``shell`` (an IPython kernel's) display every Result with its widget, and show each
    bring-up as a progress bar."""
    shell.display_formatter.mimebundle_formatter.for_type(Result, widget_bundle)
    report_by_default(shown_bar)
