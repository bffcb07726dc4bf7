"""`labkit ls`: every lab on this machine in kubectl's table style (NAME, BACKEND, CNI, STATUS,
AGE, MEMORY), with the class's total memory beneath."""

from __future__ import annotations

from collections.abc import Sequence

from labkit.printers.ages import UNKNOWN, human_duration
from labkit.tables import render_table
from labkit.values import LabSummary

HEADERS = ("NAME", "BACKEND", "CNI", "STATUS", "AGE", "MEMORY")
NO_LABS = "No labs on this machine. Start one with `labkit up --name NAME`."


def memory_cell(mb: float | None) -> str:
    """MiB as `kubectl top` prints memory (``31Mi``); ``<unknown>`` when not known, as kubectl
    prints a value it cannot tell (``<none>`` is for one that is absent)."""
    return UNKNOWN if mb is None else f"{round(mb)}Mi"


def rows(labs: Sequence[LabSummary], now: float) -> list[list[str | None]]:
    """One row per lab, by name; ``now`` (``time.time()``) dates the AGE column."""
    return [
        [
            lab.name,
            lab.backend,
            lab.cni,
            lab.status,
            UNKNOWN if lab.created is None else human_duration(now - lab.created),
            memory_cell(lab.memory_mb),
        ]
        for lab in sorted(labs, key=lambda lab: (lab.name, lab.backend))
    ]


def render(labs: Sequence[LabSummary], now: float) -> str:
    """The table of one lab or more (none: NO_LABS, on stderr, as kubectl's "No resources
    found"); two or more labs add their total memory."""
    text = render_table(HEADERS, rows(labs, now))
    known = [lab.memory_mb for lab in labs if lab.memory_mb is not None]
    if len(labs) > 1 and known:
        text += f"\n\n{len(labs)} labs, {memory_cell(sum(known))} in total"
        if len(known) < len(labs):
            text += f" (memory of {len(labs) - len(known)} not known)"
    return text
