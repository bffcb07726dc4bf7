"""Kubernetes Networking Labs: clusters, scenarios and graders for hands-on lessons."""

from labkit.course import LearnerLab, connect
from labkit.errors import LabError
from labkit.lab import OUTSIDE, Capabilities, ExecResult, Lab, ObjectRef, Probe, down

__all__ = [
    "OUTSIDE",
    "Capabilities",
    "ExecResult",
    "Lab",
    "LabError",
    "LearnerLab",
    "ObjectRef",
    "Probe",
    "connect",
    "down",
]
__version__ = "0.1.0"
