"""Repairs whose broken state is drawn from a pool, one per learner (the capstone's mystery
outage). ``setup: {draw: [{scenario: S, variant: V}, ...]}`` lists broken variants; each learner
gets one, the same on every run (sha256 of the learner's name and the exercise id), so two
learners usually get different outages and a rerun gives the same one.

A lesson's pools must fit on one lab together: no scenario in two pools, and no two of their
scenarios clash (`labkit.scenarios.coexist`), so every combination of draws coexists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

from labkit import scenarios
from labkit.errors import LabError
from labkit.scenarios.coexist import conflicts

if TYPE_CHECKING:
    from labkit.course.exercise_data import ExerciseSpec, Setup


@dataclass(frozen=True)
class Draw:
    """A pool of broken variants (at least two, each of another scenario)."""

    pool: tuple[Setup, ...]

    def pick(self, learner: str, exercise_id: str) -> Setup:
        """This learner's entry of the pool: stable across runs, machines and Python versions."""
        digest = hashlib.sha256(f"{learner}\n{exercise_id}".encode()).digest()
        return self.pool[int.from_bytes(digest[:8], "big") % len(self.pool)]


@dataclass(frozen=True)
class Fault:
    """A drawn fault, the instructor's key: the scenario, its broken variant, what is wrong, and
    the documents of the variant's fix (``lab.apply(ex.fault.fix)`` repairs it)."""

    scenario: str
    variant: str
    description: str
    fix: tuple[dict[str, Any], ...]

    def __repr__(self) -> str:
        return f"<fault {self.scenario} / {self.variant}: {self.description}>"

    def giveaway(self) -> str:
        """The last hint rung: what is wrong and which objects to apply."""
        objects = ", ".join(
            f"{kind} {ns + '/' if ns else ''}{name}"
            for kind, ns, name in dict.fromkeys(scenarios.object_key(d) for d in self.fix)
        )
        return (
            f"{self.description} The fix: apply scenario {self.scenario}'s own {objects} "
            "with lab.apply(...) in the notebook."
        )


def fault_of(setup: Setup) -> Fault:
    """The fault a drawn setup deploys, with its fix's documents."""
    scenario = scenarios.get(setup.scenario)
    variant = scenario.variant(str(setup.variant))
    return Fault(
        scenario.name, variant.name, variant.description, tuple(scenario.documents(variant.fix))
    )


def check_pools(specs: Iterable[ExerciseSpec], where: str) -> None:
    """Refuse a lesson whose pools share a scenario, name two scenarios that clash on a lab, or
    draw a variant with no checks to grade it."""
    owner: dict[str, str] = {}
    for spec in specs:
        if not isinstance(spec.setup, Draw):
            continue
        for setup in spec.setup.pool:
            if not scenarios.get(setup.scenario).variant(str(setup.variant)).checks:
                raise LabError(
                    f"{where}: {setup.scenario} variant {setup.variant} declares no checks, so "
                    f"exercise {spec.id} could not grade it.",
                    "Draw only broken variants whose scenario.yaml lists checks.",
                )
            if setup.scenario in owner:
                raise LabError(
                    f"{where}: scenario {setup.scenario} is in the pools of exercises "
                    f"{owner[setup.scenario]} and {spec.id}.",
                    "Put each scenario in one pool only, so the draws never collide.",
                )
            owner[setup.scenario] = spec.id
    for first, second in combinations(sorted(owner), 2):
        clash = conflicts(scenarios.get(first), scenarios.get(second))
        if clash:
            raise LabError(
                f"{where}: the pools name {first} and {second}, which cannot share a lab: "
                f"{'; '.join(clash)}.",
                "Drop one of them from the pools.",
            )
