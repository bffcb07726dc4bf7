"""A class's learners as lab names: ``N`` (learner01 .. learnerN) or a file of one name per line,
every name checked before any lab is touched, so a bad roster changes nothing."""

from __future__ import annotations

from pathlib import Path

from labkit.errors import LabError
from labkit.inputs import dns1123_label, shown

LAB_NAME_MAX = 40
"""The longest lab name both backends take: the sandbox's limit (Kind's is 49). No interface
name carries it, so the kernel's 15-character limit never applies to lab names."""
CLASS_MAX = 100
"""The most learners one roster holds (a 2-core machine runs about 30 sandbox labs)."""
ROSTER_MAX_BYTES = 64 * 1024
PREFIX = "learner"


def numbered(count: int) -> list[str]:
    """``learner01`` .. ``learnerN``, zero-padded to at least two digits so they sort."""
    if not 1 <= count <= CLASS_MAX:
        raise LabError(
            f"A class of {count} learners is out of range.",
            f"Pass --learners 1 to {CLASS_MAX}, or a file with one learner name per line.",
        )
    width = max(2, len(str(count)))
    return [f"{PREFIX}{i:0{width}d}" for i in range(1, count + 1)]


def lab_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a learner's lab, or None: a DNS-1123 label of at most
    LAB_NAME_MAX characters, as both backends need."""
    if len(name) > LAB_NAME_MAX:
        return f"is {len(name)} characters long; a lab name has at most {LAB_NAME_MAX}"
    return dns1123_label(name)


def parse(text: str, source: str) -> list[str]:
    """The learner names of a roster's text, one per line (blank lines and ``#`` comments
    skipped); the first bad or repeated name is refused with its line number."""
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        name = raw.split("#", 1)[0].strip()
        if not name:
            continue
        problem = lab_name_problem(name)
        if problem is not None:
            raise LabError(
                f"{source} line {number}: the learner name {shown(name)} {problem}.",
                "Write one lab name per line: lower-case letters, digits and '-', starting and "
                f"ending with a letter or digit, at most {LAB_NAME_MAX} characters (e.g. ada).",
            )
        if name in names:
            raise LabError(
                f"{source} line {number}: {name!r} is listed twice.",
                "Give every learner a name of their own (each gets a lab of that name).",
            )
        names.append(name)
    if not names:
        raise LabError(f"{source} names no learner.", "Write one learner name per line.")
    if len(names) > CLASS_MAX:
        raise LabError(
            f"{source} names {len(names)} learners, more than {CLASS_MAX}.",
            "Split the class across machines, a roster each.",
        )
    return names


def learners(spec: str) -> list[str]:
    """The lab names a ``--learners`` value stands for: a whole number is a count, anything
    else a roster file (``./30`` for a file named 30)."""
    if not spec.strip():
        raise LabError(
            "--learners is empty.",
            "Pass a number of learners (--learners 30) or a file with one name per line.",
        )
    if spec.strip().lstrip("+-").isdigit():
        return numbered(int(spec))
    path = Path(spec)
    try:
        with path.open("rb") as stream:
            data = stream.read(ROSTER_MAX_BYTES + 1)
    except OSError as exc:
        raise LabError(
            f"Cannot read the roster {shown(spec)}: {exc.strerror or exc}.",
            "Pass a number of learners (--learners 30) or a readable file with one name per line.",
        ) from None
    if len(data) > ROSTER_MAX_BYTES:
        raise LabError(
            f"The roster {shown(spec)} is over {ROSTER_MAX_BYTES // 1024} KiB.",
            "A roster holds one short lab name per line; pass that file.",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LabError(
            f"The roster {shown(spec)} is not UTF-8 text.",
            "Save it as plain text, one name a line.",
        ) from None
    return parse(text, f"The roster {shown(spec)}")
