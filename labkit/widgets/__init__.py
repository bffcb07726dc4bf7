"""Notebook widgets (ipywidgets): the lab panel, exercise cards and the reachability grid.

A front end: it reads the lab only through `labkit.status` and the checks' Results.
"""

from labkit.widgets.card import ExerciseCard
from labkit.widgets.grid import ReachabilityGrid
from labkit.widgets.panel import LabPanel

__all__ = ["ExerciseCard", "LabPanel", "ReachabilityGrid"]
