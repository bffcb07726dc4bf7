"""Kubernetes Networking Labs: clusters, scenarios and graders for hands-on lessons."""
from labkit.errors import LabError
from labkit.lab import OUTSIDE, Capabilities, ExecResult, Lab, ObjectRef, Probe, connect, down

__all__ = ["LabError", "Lab", "ObjectRef", "ExecResult", "Probe", "Capabilities", "OUTSIDE", "connect", "down"]
__version__ = "0.1.0"
