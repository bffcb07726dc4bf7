"""Kubernetes Networking Labs: clusters, scenarios and graders for hands-on lessons."""

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
