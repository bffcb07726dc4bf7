"""The course layer: what a learner's notebook holds (the lab with its one-liners), exercises and
progress live here, above scenarios and checks."""

from labkit.course.grading import grade
from labkit.course.learner import LearnerLab, connect

__all__ = ["LearnerLab", "connect", "grade"]
