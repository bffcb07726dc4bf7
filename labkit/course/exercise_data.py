"""Exercises as data: one YAML file per lesson in ``course/exercises/``, loaded and validated here
(unknown keys, checks, arguments, scenarios or variants are refused as one LabError line).

``<lesson>.yaml`` holds ``exercises:``, a list of entries with exactly these keys::

    id: "00.1"                  # the lesson's number, a dot, a number; unique in the course
    title: one line
    kind: repair                # repair (from a broken variant) | write (from a start or step)
    points: 2                   # | build (from a start or step) | predict | find (from any state)
    setup: {scenario: 02-expose-nginx, variant: wrong-target-port}
    checks: [{check: service_health, args: {service: nginx-service}}]   # labkit.checks.CHECKS
    hints: [a nudge, {failure: refused, text: for that failure class}, the give-away]

A predict exercise has ``predict:`` cases, a find exercise ``find:`` facts and a build exercise a
``build:`` block instead of ``checks:`` (`exercise_questions` documents the first two,
`exercise_build` the last). A write exercise also lists in ``writes:`` the objects the learner
creates (``Service/api``, ``NetworkPolicy/shop/db-only``), which ``setup()`` removes, as it
removes a build's namespace from every node, so an exercise done before starts over unanswered.

A repair may draw its broken state instead: ``setup: {draw: [{scenario: S, variant: V}, ...]}``
and no ``checks:`` (the drawn variant's own checks grade it; its hints are generic, and
`exercise_lab` adds the failing check's hint and the give-away; see `exercise_draw`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labkit import manifests, scenarios
from labkit.checks import check_arguments
from labkit.checks.result import FAILURE_CLASSES
from labkit.course.exercise_build import Build, parse_build
from labkit.course.exercise_draw import Draw, check_pools
from labkit.course.exercise_questions import Case, Finding, parse_cases, parse_findings
from labkit.errors import LabError
from labkit.values import ObjectRef

EXERCISE_DIR = Path(__file__).resolve().parent / "exercises"

KINDS = ("repair", "write", "predict", "find", "build")
"""The kinds graded so far: a broken state to repair, a starting state to build on, a prediction
of what the lab will do, a fact dug out of the lab, a pod's network wired by hand."""

_ID = re.compile(r"\d{2}\.\d{1,2}")
_COMMON = {"id", "title", "kind", "points", "setup", "hints"}
_GRADED_BY = {
    "repair": "checks",
    "write": "checks",
    "predict": "predict",
    "find": "find",
    "build": "build",
}
"""The key that says how each kind is graded."""
_ALSO = {"write": {"writes"}}
"""Further keys a kind needs."""


@dataclass(frozen=True)
class Setup:
    """The state an exercise starts from: a scenario's starting state, or one of its variants."""

    scenario: str
    variant: str | None = None


@dataclass(frozen=True)
class ExerciseCheck:
    """A check from ``labkit.checks.CHECKS`` and the arguments it grades the exercise with."""

    check: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Rung:
    """One hint; ``failure`` set: shown only when the latest check observed that failure class."""

    text: str
    failure: str | None = None


@dataclass(frozen=True)
class ExerciseSpec:
    """One exercise: what it starts from, what grades it and its hint ladder (the last rung gives
    the fix away)."""

    id: str
    lesson: str
    title: str
    kind: str
    points: float
    setup: Setup | Draw
    checks: tuple[ExerciseCheck, ...]
    hints: tuple[Rung, ...]
    cases: tuple[Case, ...] = ()
    findings: tuple[Finding, ...] = ()
    writes: tuple[ObjectRef, ...] = ()
    build: Build | None = None

    @property
    def ladder_size(self) -> int:
        """The rungs ``ex.hint()`` can show: its own, plus a drawn repair's two that
        `exercise_lab` adds (the failing check's hint and the give-away)."""
        return len(self.hints) + (2 if isinstance(self.setup, Draw) else 0)


def get(exercise_id: str) -> ExerciseSpec:
    """The exercise with this id (e.g. ``"00.1"``), or a LabError listing the ids there are."""
    every = load()
    if exercise_id not in every:
        raise LabError(
            f"There is no exercise {exercise_id!r}.", f"Use one of: {', '.join(sorted(every))}."
        )
    return every[exercise_id]


@functools.cache
def load(folder: Path = EXERCISE_DIR) -> dict[str, ExerciseSpec]:
    """Every exercise of every lesson file in ``folder``, by id; ids are unique across lessons."""
    found: dict[str, ExerciseSpec] = {}
    for path in sorted(folder.glob("*.yaml")):
        for spec in load_lesson(path):
            if spec.id in found:
                other = found[spec.id].lesson
                raise LabError(
                    f"{path.name}: exercise id {spec.id!r} is also in lesson {other}.",
                    "Give every exercise its own id.",
                )
            found[spec.id] = spec
    return found


def load_lesson(path: Path) -> list[ExerciseSpec]:
    """The exercises of one lesson file (the lesson is the file's name without ``.yaml``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != {"exercises"} or not data["exercises"]:
        raise LabError(
            f"{path.name} is not a list of exercises.", "Write `exercises:` and a list under it."
        )
    specs = [_exercise(raw, path.stem, path.name) for raw in data["exercises"]]
    check_pools(specs, path.name)
    return specs


def _exercise(raw: Any, lesson: str, where: str) -> ExerciseSpec:
    if not isinstance(raw, dict) or "id" not in raw:
        raise LabError(f"{where}: every exercise needs an `id:`.", 'Start each with `id: "NN.N"`.')
    ident = str(raw["id"])
    where = f"{where} exercise {ident}"
    if not _ID.fullmatch(ident) or not lesson.startswith(ident.split(".")[0] + "-"):
        raise LabError(
            f"{where}: the id must be the lesson's number, a dot and a number.",
            f'Use e.g. "{lesson[:2]}.1" in {lesson}.yaml.',
        )
    kind = str(raw.get("kind"))
    if kind not in KINDS:
        raise LabError(
            f"{where}: kind {kind!r} is not graded yet.", f"Use one of: {', '.join(KINDS)}."
        )
    keys = _COMMON | {_GRADED_BY[kind]} | _ALSO.get(kind, set())
    if isinstance(raw.get("setup"), dict) and "draw" in raw["setup"]:
        keys -= {"checks"}  # the drawn variant's checks grade it
    unknown, missing = set(raw) - keys, keys - set(raw)
    if unknown or missing:
        what = f"has unknown keys {sorted(unknown)}" if unknown else f"lacks {sorted(missing)}"
        raise LabError(f"{where} {what}.", f"Give a {kind} exactly: {', '.join(sorted(keys))}.")
    points = raw["points"]
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise LabError(f"{where}: points must be a positive number.", "Write e.g. `points: 3`.")
    return ExerciseSpec(
        id=ident,
        lesson=lesson,
        title=str(raw["title"]),
        kind=kind,
        points=float(points),
        setup=_setup(raw["setup"], kind, where),
        checks=_checks(raw["checks"], where) if "checks" in raw else (),
        hints=_hints(raw["hints"], where),
        cases=parse_cases(raw["predict"], where) if kind == "predict" else (),
        findings=parse_findings(raw["find"], where) if kind == "find" else (),
        writes=_writes(raw["writes"], where) if "writes" in raw else (),
        build=parse_build(raw["build"], where) if kind == "build" else None,
    )


def _writes(raw: Any, where: str) -> tuple[ObjectRef, ...]:
    """``Kind/name`` or ``Kind/namespace/name`` (namespace ``default`` when left out)."""
    if not isinstance(raw, list) or not raw:
        raise LabError(
            f"{where}: writes must list the objects the learner creates.",
            "Write e.g. `writes: [Service/api]` or `[NetworkPolicy/shop/db-only]`.",
        )
    refs = []
    for item in raw:
        parts = str(item).split("/")
        try:
            kind = manifests.canonical_kind(parts[0]) if len(parts) in (2, 3) else ""
        except LabError:
            kind = ""
        if (
            not kind
            or not all(parts[1:])
            or (len(parts) == 3 and not manifests.is_namespaced(kind))
        ):
            raise LabError(
                f"{where}: {str(item)!r} in writes is not Kind/name (Kind/namespace/name for a "
                "namespaced kind in another namespace).",
                "Write e.g. `Service/api`, `NetworkPolicy/shop/db-only` or `Namespace/shop`.",
            )
        if not manifests.is_namespaced(kind):
            refs.append(ObjectRef(kind, parts[-1]))
        else:
            refs.append(ObjectRef(kind, parts[-1], parts[1] if len(parts) == 3 else "default"))
    return tuple(refs)


def _setup(raw: Any, kind: str, where: str) -> Setup | Draw:
    if isinstance(raw, dict) and set(raw) == {"draw"}:
        return _draw(raw["draw"], kind, where)
    if not isinstance(raw, dict) or "scenario" not in raw or set(raw) - {"scenario", "variant"}:
        raise LabError(
            f"{where}: setup must name a scenario (and maybe a variant), nothing else.",
            "Write `setup: {scenario: 02-expose-nginx, variant: wrong-target-port}`.",
        )
    try:
        scenario = scenarios.get(str(raw["scenario"]))
        variant = scenario.variant(str(raw["variant"])) if raw.get("variant") else None
    except LabError as exc:
        raise LabError(f"{where}: {exc.what}", exc.fix) from None
    broken = variant is not None and variant.role == "broken"
    if (kind == "repair" and not broken) or (kind in ("write", "build") and broken):
        raise LabError(
            f"{where}: a repair starts from a broken variant, a write or build from a step or "
            "start.",
            f"Set the variant of {scenario.name} to match kind {kind!r}.",
        )
    return Setup(scenario.name, variant.name if variant else None)


def _draw(raw: Any, kind: str, where: str) -> Draw:
    """A repair's pool: at least two broken variants, each of another scenario."""
    if kind != "repair" or not isinstance(raw, list) or len(raw) < 2:
        raise LabError(
            f"{where}: only a repair draws, from a list of at least two broken variants.",
            "Write `setup: {draw: [{scenario: S, variant: V}, {scenario: T, variant: W}]}`.",
        )
    pool: list[Setup] = []
    for item in raw:
        setup = _setup(item, kind, where)
        if not isinstance(setup, Setup) or setup.scenario in {s.scenario for s in pool}:
            raise LabError(
                f"{where}: every entry of a draw names a broken variant of another scenario.",
                "List each scenario once, as `{scenario: S, variant: V}`.",
            )
        pool.append(setup)
    return Draw(tuple(pool))


def _checks(raw: Any, where: str) -> tuple[ExerciseCheck, ...]:
    if not isinstance(raw, list) or not raw:
        raise LabError(f"{where}: checks must be a list.", "List at least one `- check: NAME`.")
    specs = []
    for item in raw:
        if not isinstance(item, dict) or "check" not in item or set(item) - {"check", "args"}:
            raise LabError(
                f"{where}: every check entry has a `check:` name and maybe `args:`, nothing else.",
                "Write `- check: service_health` with `args: {service: nginx-service}`.",
            )
        args = dict(item.get("args") or {})
        try:
            check_arguments(str(item["check"]), args)
        except LabError as exc:
            raise LabError(f"{where}: {exc.what}", exc.fix) from None
        specs.append(ExerciseCheck(str(item["check"]), args))
    return tuple(specs)


def _hints(raw: Any, where: str) -> tuple[Rung, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise LabError(
            f"{where}: hints must be a ladder of at least two rungs.",
            "List hints from a nudge to the give-away, one per item.",
        )
    rungs = []
    for item in raw:
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict) or set(item) - {"text", "failure"} or not item.get("text"):
            raise LabError(
                f"{where}: a hint is text, or `text:` with a `failure:` class.",
                "Write `- text: ...` and optionally `failure: refused`.",
            )
        failure = item.get("failure")
        if failure is not None and failure not in FAILURE_CLASSES:
            raise LabError(
                f"{where}: hint failure class {failure!r} is unknown.",
                f"Use one of: {', '.join(FAILURE_CLASSES)}.",
            )
        rungs.append(Rung(" ".join(str(item["text"]).split()), failure))
    if rungs[-1].failure is not None:
        raise LabError(
            f"{where}: the last hint (the give-away) must not depend on a failure class.",
            "Drop `failure:` from the last rung.",
        )
    return tuple(rungs)
