"""The course layer: what a learner's notebook holds (the lab with its one-liners), exercises and
progress live here, above scenarios and checks."""

from labkit.course.exercise_lab import Exercise, exercise
from labkit.course.grading import grade
from labkit.course.learner import LearnerLab, connect

__all__ = ["Exercise", "LearnerLab", "connect", "exercise", "grade"]
