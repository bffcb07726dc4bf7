"""Notebook widgets (ipywidgets) and pictures: the lab panel, exercise cards, the reachability
grid, the live class dashboard, and the topology and packet path drawn by Graphviz from the
lab's real state.

A front end: it reads the lab only through the seam, `labkit.status` and the checks' Results.
"""

from labkit.widgets.card import ExerciseCard
from labkit.widgets.dashboard import ClassDashboard
from labkit.widgets.grid import ReachabilityGrid
from labkit.widgets.packet_path import packet_path
from labkit.widgets.panel import LabPanel
from labkit.widgets.topology import topology

__all__ = [
    "ClassDashboard",
    "ExerciseCard",
    "LabPanel",
    "ReachabilityGrid",
    "packet_path",
    "topology",
]
