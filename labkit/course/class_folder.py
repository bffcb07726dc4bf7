"""A class folder: one progress file per learner, ``<folder>/<learner>.jsonl`` (each learner's
``LABKIT_PROGRESS`` points there), read into a `class_report.ClassReport`.

The learner is the file's name, never the records' ``learner`` field (on JupyterHub every user
is ``jovyan``); a name is checked before use and never becomes a path. Other files and folders in
the folder are left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from labkit.checks.progress import ENV_VAR, ProgressLog, read_log
from labkit.course import exercise_data
from labkit.course.class_report import STUCK_AFTER, ClassReport, summarise
from labkit.errors import LabError
from labkit.inputs import LEARNER_MAX, shown

SUFFIX = ".jsonl"
LEARNER_FILE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._@-]{{0,{LEARNER_MAX - 1}}}")
"""A learner's name as a file name: letters, digits, ``.``, ``_``, ``@`` and ``-``, starting
with a letter or digit (JupyterHub's escaped user names fit)."""


def learner_of(path: Path) -> str:
    """The learner a progress file in a class folder belongs to: its name without ``.jsonl``."""
    name = path.name.removesuffix(SUFFIX)
    if not LEARNER_FILE.fullmatch(name):
        raise LabError(
            f"The class folder's file {shown(path.name)} does not name a learner.",
            f"Rename it to <learner>{SUFFIX} (letters, digits, '.', '_', '@', '-'), or move it "
            "out of the folder.",
        )
    return name


def progress_files(folder: str | Path) -> list[Path]:
    """The learners' progress files in a class folder, by name."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise LabError(
            f"There is no class folder at {root}.",
            f"Pass the folder the learners' {ENV_VAR} files are in ({ENV_VAR}=<folder>/"
            f"<learner>{SUFFIX}).",
        )
    try:
        found = sorted(p for p in root.iterdir() if p.name.endswith(SUFFIX))
    except OSError as exc:
        raise LabError(
            f"Cannot list the class folder {root}: {exc.strerror}.",
            "Make it readable by the instructor's account.",
        ) from None
    for path in found:
        if path.is_symlink() or not path.is_file():
            raise LabError(
                f"The class folder's {shown(path.name)} is not a regular file.",
                "Move links and folders out of the class folder; it holds one file per learner.",
            )
    return found


def load(folder: str | Path) -> dict[str, ProgressLog]:
    """Every learner's progress log in a class folder, by learner."""
    logs: dict[str, ProgressLog] = {}
    for path in progress_files(folder):
        learner = learner_of(path)
        log = read_log(path)
        if log.skipped and not (log.attempts or log.hints):
            raise LabError(
                f"The class folder's {shown(path.name)} holds no progress records "
                f"({log.skipped} lines labkit did not write).",
                f"Move it out of the folder; each learner's {ENV_VAR} file is written by labkit.",
            )
        logs[learner] = log
    return logs


def hint_ladders() -> dict[str, int]:
    """The hint ladder size of every shipped exercise, by id."""
    return {spec.id: spec.ladder_size for spec in exercise_data.load().values()}


def class_report(folder: str | Path, stuck_after: int = STUCK_AFTER) -> ClassReport:
    """The class report of a class folder."""
    return summarise(load(folder), hint_ladders(), stuck_after)


def signature(folder: str | Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a learner's file does (name, size, modification time): a live view
    reads the folder again only then."""
    out = []
    for path in progress_files(folder):
        stat = path.stat()
        out.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)
