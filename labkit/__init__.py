"""Kubernetes Networking Labs: clusters, scenarios and graders for hands-on lessons."""

import sys

from labkit.course import Exercise, LearnerLab, connect, exercise
from labkit.errors import LabError
from labkit.lab import OUTSIDE, Capabilities, ExecResult, Lab, ObjectRef, Probe, down

__all__ = [
    "OUTSIDE",
    "Capabilities",
    "ExecResult",
    "Exercise",
    "Lab",
    "LabError",
    "LearnerLab",
    "ObjectRef",
    "Probe",
    "connect",
    "down",
    "exercise",
]
__version__ = "0.1.0"

# jsonschema (under kubernetes-validate and the Kubernetes client) imports rfc3987_syntax when it is
# installed (Jupyter's extras install it) to check "iri" formats; that import builds a grammar and
# costs every `labkit kubectl apply` over a second. No Kubernetes schema uses those formats and
# labkit validates without format checks, so the import is declined: None in sys.modules makes
# it fail at once, as if the module were not installed (a process that already has it keeps it).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _widgets_in_jupyter() -> None:
    """In a Jupyter kernel, show every Result with its widget (labkit.widgets) beside its text;
    a terminal, a script or the CLI never imports ipywidgets."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and hasattr(shell, "kernel"):
        from labkit.widgets.display import register

        register(shell)


_widgets_in_jupyter()
