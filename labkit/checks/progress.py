"""A learner's progress file (one JSON line per graded attempt, or per scenario deployed) and
the reports built from it.

``record`` appends an attempt; ``record_deploy`` appends that a scenario's state was deployed on
a lab (``last_deployed`` finds it, so a state is graded only once it was deployed);
``record_hint`` appends that an exercise's hint was shown (``exercise_history`` counts attempts
and hints, for the hint ladder); ``read_log`` reads a file's attempts and hints; ``report``
reads one file (a learner's table: lesson, exercise, best verdict, points) or several files / a
folder (a workshop summary, one row per learner).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from labkit.checks.result import VERDICTS, Result, number_text
from labkit.errors import LabError
from labkit.inputs import check_learner
from labkit.tables import render_table

ENV_VAR = "LABKIT_PROGRESS"
EVENTS = ("deployed", "reset", "hint")
"""What a non-attempt line records: a scenario state deployed on a lab, a scenario reset, or an
exercise's hint shown to a learner."""


class Deployed(NamedTuple):
    """A scenario state on record for a lab: the variant (None: the starting state), whether it
    came from a reset, and when."""

    variant: str | None
    event: str
    time: str


class ExerciseHistory(NamedTuple):
    """One learner's record of one exercise: attempts graded, the failure class the latest one
    observed (None after a pass or before any attempt), the hint rungs shown, in order, and the
    latest attempt's hint (its first failing check's)."""

    attempts: int
    last_failure: str | None
    hints: tuple[int, ...]
    last_hint: str = ""


def default_path() -> Path:
    """``$LABKIT_PROGRESS`` if set, else ``~/.labkit/progress.jsonl``."""
    override = os.environ.get(ENV_VAR)
    return Path(override).expanduser() if override else Path.home() / ".labkit" / "progress.jsonl"


def learner_name(learner: str | None = None) -> str:
    """The name progress is recorded under: ``learner`` if given, else this user (``LOGNAME`` or
    ``USER`` first, as `getpass.getuser` reads them), checked."""
    if learner is None:
        try:
            learner = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            learner = os.environ.get("USER") or "learner"
    return check_learner(learner)


def record(
    result: Result,
    lesson: str | None = None,
    exercise: str | None = None,
    learner: str | None = None,
    path: str | Path | None = None,
    *,
    attempt: int | None = None,
    hints_used: int | None = None,
) -> Path:
    """Append one graded attempt to the progress file (an exercise's also with its attempt number
    and the hints used before it); returns the file written."""
    if not isinstance(result, Result):
        raise LabError(
            f"Only a check's Result can be recorded, not a {type(result).__name__}.",
            "Pass what a check returned, e.g. record(pod_to_pod(lab, ...), lesson='02').",
        )
    entry = {
        "time": _now(),
        "learner": learner_name(learner),
        "lesson": str(lesson) if lesson is not None else "",
        "exercise": str(exercise) if exercise is not None else result.check,
        **result.to_dict(),
    }
    if attempt is not None:
        entry["attempt"] = attempt
    if hints_used is not None:
        entry["hints_used"] = hints_used
    return _append(entry, path)


def record_hint(lesson: str, exercise: str, rung: int, learner: str | None = None) -> Path:
    """Append that hint ``rung`` (0-based) of an exercise was shown to the learner."""
    entry = {
        "time": _now(),
        "event": "hint",
        "learner": learner_name(learner),
        "lesson": lesson,
        "exercise": exercise,
        "rung": rung,
    }
    return _append(entry, None)


def exercise_history(exercise: str, learner: str | None = None) -> ExerciseHistory:
    """What the progress file holds of ``exercise`` for a learner (default: this user): attempts,
    the latest attempt's failure class, and the hint rungs shown."""
    who = learner_name(learner)
    attempts, failure, hints, hint = 0, None, [], ""
    for entry in _lines(default_path()):
        if entry.get("exercise") != exercise or entry.get("learner") != who:
            continue
        if entry.get("event") == "hint" and isinstance(entry.get("rung"), int):
            hints.append(entry["rung"])
        elif entry.get("event") is None and entry.get("verdict") in VERDICTS:
            attempts += 1
            failure = entry.get("failure") if entry["verdict"] != "pass" else None
            hint = str(entry.get("hint") or "")
    return ExerciseHistory(attempts, failure, tuple(hints), hint)


def _lines(source: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a progress file, skipping unreadable lines (none when it is absent)."""
    try:
        with source.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict):
                    yield entry
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LabError(
            f"Cannot read the progress file {source}: {exc.strerror}.",
            f"Point {ENV_VAR} at a readable file.",
        ) from None


def record_deploy(
    scenario: str,
    variant: str | None,
    lab_name: str,
    lab_uid: str,
    *,
    reset: bool = False,
) -> Path:
    """Append that a scenario's state (``variant`` None: its starting state) was deployed on this
    build of a lab, or that the scenario was reset there; returns the file written."""
    entry = {
        "time": _now(),
        "event": "reset" if reset else "deployed",
        "lab": lab_name,
        "lab_uid": lab_uid,
        "scenario": scenario,
        "variant": variant,
    }
    return _append(entry, None)


def last_deployed(scenario: str, lab_name: str, lab_uid: str) -> Deployed | None:
    """The latest deploy or reset of ``scenario`` on this build of the lab (None when there was
    none: a lab built again under the same name starts with nothing on record)."""
    latest = None
    for entry in _lines(default_path()):
        if (
            entry.get("event") in ("deployed", "reset")
            and entry.get("scenario") == scenario
            and entry.get("lab") == lab_name
            and entry.get("lab_uid") == lab_uid
        ):
            latest = Deployed(entry.get("variant"), entry["event"], str(entry.get("time")))
    return latest


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _append(entry: Mapping[str, Any], path: str | Path | None) -> Path:
    """Append one JSON line to the progress file (``path``, else the default one)."""
    target = Path(path).expanduser() if path is not None else default_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError as exc:
        raise LabError(
            f"Cannot write the progress file {target}: {exc.strerror}.",
            f"Point {ENV_VAR} at a writable file (or pass path=...).",
        ) from None
    return target


class ProgressLog(NamedTuple):
    """What one progress file holds: graded attempts and hint events, in file order, and the
    number of unreadable lines skipped."""

    attempts: list[dict[str, Any]]
    hints: list[dict[str, Any]]
    skipped: int


def read(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """Entries of one progress file and the number of unreadable lines skipped (a learner name
    with control characters makes a line unreadable)."""
    log = read_log(path)
    return log.attempts, log.skipped


def read_log(path: str | Path) -> ProgressLog:
    """One progress file's graded attempts and hint events; deploys and resets are left out."""
    entries, hints, bad = [], [], 0
    with _text(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(entry, dict) and entry.get("event") in EVENTS:
                if entry["event"] == "hint":
                    if _valid_hint(entry):
                        hints.append(entry)
                    else:
                        bad += 1
                continue  # a deploy on record, not a graded attempt
            if isinstance(entry, dict) and _valid_attempt(entry):
                entries.append(entry)
            else:
                bad += 1
    return ProgressLog(entries, hints, bad)


_LABELS = ("learner", "lesson", "exercise", "check", "subject", "time")


def _valid_attempt(entry: Mapping[str, Any]) -> bool:
    """A graded attempt as `record` writes it: a verdict, numeric points, printable labels."""
    return (
        entry.get("verdict") in VERDICTS
        and all(_number_or_none(entry.get(k)) for k in ("points", "max_points"))
        and all(_printable_or_none(entry.get(k)) for k in _LABELS)
    )


def _valid_hint(entry: Mapping[str, Any]) -> bool:
    """A hint event as `record_hint` writes it: a rung number and printable labels."""
    rung = entry.get("rung")
    return (
        isinstance(rung, int)
        and not isinstance(rung, bool)
        and rung >= 0
        and all(_printable_or_none(entry.get(k)) for k in _LABELS)
    )


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _printable_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.isprintable())


def _text(path: str | Path) -> io.StringIO:
    """A progress file's text; a file that is not UTF-8 text is a LabError naming it."""
    try:
        return io.StringIO(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        raise LabError(
            f"Cannot read the progress file {path}: {why}.",
            "Point labkit at the JSON-lines files it wrote, and move any other file out of the "
            "folder.",
        ) from None


def _files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            files.extend(sorted(path.rglob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise LabError(
                f"No progress file or folder at {path}.",
                "Check the path; a learner's file is ~/.labkit/progress.jsonl unless "
                f"{ENV_VAR} says otherwise.",
            )
    return files


def graded_items(
    entries: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """The attempts per graded item (lesson, exercise label), in the order given.

    An exercise graded by several checks (a scenario's checks, recorded together) gets one item
    per check, labelled ``exercise: check`` (plus the subject when one check grades several
    things), so a passing check never hides a failing one.
    """
    items: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for e in entries:
        key = (
            str(e.get("lesson") or ""),
            str(e.get("exercise") or e.get("check") or ""),
            str(e.get("check") or ""),
            str(e.get("subject") or ""),
        )
        items.setdefault(key, []).append(e)
    checks_per_exercise: dict[tuple[str, str], set[str]] = {}
    subjects_per_check: dict[tuple[str, str, str], set[str]] = {}
    for lesson, exercise, check, subject in items:
        checks_per_exercise.setdefault((lesson, exercise), set()).add(check)
        subjects_per_check.setdefault((lesson, exercise, check), set()).add(subject)
    labelled: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for (lesson, exercise, check, subject), group in items.items():
        label = exercise
        if (
            len(checks_per_exercise[(lesson, exercise)]) > 1
            or len(subjects_per_check[(lesson, exercise, check)]) > 1
        ):
            label = f"{exercise}: {check}" if check != exercise else exercise
            if len(subjects_per_check[(lesson, exercise, check)]) > 1:
                label += f" ({subject})"
        labelled[(lesson, label)] = group
    return labelled


def best_attempts(entries: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per graded item (`graded_items`): the best attempt's verdict, points and maximum (all
    three from that one attempt), and the number of attempts."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for key, group in graded_items(entries).items():
        top = best_of(group)
        best[key] = {
            "verdict": top["verdict"],
            "points": top.get("points") or 0,
            "max_points": top.get("max_points") or 0,
            "attempts": len(group),
        }
    return best


def best_of(attempts: Iterable[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The best of an item's attempts: the best verdict, then the largest share of its points."""
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return min(attempts, key=lambda e: (rank[e["verdict"]], -_share(e)))


def _share(entry: Mapping[str, Any]) -> float:
    """The share of its points an attempt earned (0 where it had none to earn)."""
    most = entry.get("max_points") or 0
    return (entry.get("points") or 0) / most if most else 0.0


def learner_table(entries: list[dict[str, Any]]) -> str:
    """One learner's table: lesson, exercise, best verdict, points, attempts; then each lesson's
    totals (when there are several lessons) and the learner's."""
    best = best_attempts(entries)
    rows = [
        [
            lesson or "-",
            exercise,
            row["verdict"],
            f"{number_text(row['points'])}/{number_text(row['max_points'])}",
            str(row["attempts"]),
        ]
        for (lesson, exercise), row in sorted(best.items())
    ]
    table = render_table(["lesson", "exercise", "best", "points", "attempts"], rows, rule=True)
    lessons = sorted({lesson for lesson, _ in best})
    per_lesson = (
        [
            _summary(
                f"lesson {lesson or '-'}: ", [r for (ls, _), r in best.items() if ls == lesson]
            )
            for lesson in lessons
        ]
        if len(lessons) > 1
        else []
    )
    return "\n".join([table, *per_lesson, _summary("", list(best.values()))])


def _summary(prefix: str, rows: list[dict[str, Any]]) -> str:
    """``<prefix>P of N exercises passed, x/y points`` for some rows of a learner's table."""
    passed = sum(1 for r in rows if r["verdict"] == "pass")
    points = sum(r["points"] for r in rows)
    max_points = sum(r["max_points"] for r in rows)
    score = f"{number_text(points)}/{number_text(max_points)} points"
    return f"{prefix}{passed} of {len(rows)} exercises passed, {score}"


def workshop_table(entries: list[dict[str, Any]]) -> str:
    """One row per learner: exercises tried, passed, partial, failed, and best points."""
    by_learner: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_learner.setdefault(str(e.get("learner") or "?"), []).append(e)
    rows = []
    for learner, items in sorted(by_learner.items()):
        best = best_attempts(items)
        counts = {v: sum(1 for r in best.values() if r["verdict"] == v) for v in VERDICTS}
        points = sum(r["points"] for r in best.values())
        max_points = sum(r["max_points"] for r in best.values())
        rows.append(
            [
                learner,
                str(len(best)),
                str(counts["pass"]),
                str(counts["partial"]),
                str(counts["fail"]),
                f"{number_text(points)}/{number_text(max_points)}",
            ]
        )
    return (
        render_table(
            ["learner", "exercises", "passed", "partial", "failed", "points"], rows, rule=True
        )
        + f"\n{len(by_learner)} learner{'s' if len(by_learner) != 1 else ''}"
    )


def report(path_or_paths: str | Path | Iterable[str | Path]) -> str:
    """A learner's table for one file; a workshop summary for several files or a folder."""
    if isinstance(path_or_paths, (str, Path)):
        paths: list[str | Path] = [path_or_paths]
    else:
        paths = list(path_or_paths)
    if not paths:
        paths = [default_path()]
    if len(paths) == 1 and not Path(paths[0]).expanduser().exists():
        return f"No progress recorded yet ({Path(paths[0]).expanduser()} does not exist)."
    workshop = len(paths) > 1 or Path(paths[0]).expanduser().is_dir()
    files = _files(paths)
    entries: list[dict[str, Any]] = []
    skipped = 0
    for f in files:
        got, bad = read(f)
        entries.extend(got)
        skipped += bad
    note = f"\n({skipped} unreadable line{'s' if skipped != 1 else ''} skipped)" if skipped else ""
    if not entries:
        return f"No graded attempts in {', '.join(str(f) for f in files) or 'these folders'}.{note}"
    learners = {str(e.get("learner") or "?") for e in entries}
    if workshop or len(learners) > 1:
        return workshop_table(entries) + note
    return f"Progress of {next(iter(learners))}\n{learner_table(entries)}{note}"
