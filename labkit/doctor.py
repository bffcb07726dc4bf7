"""`labkit doctor`: every backend's checks of this machine, each failing line naming its fix, as
text, as JSON lines for scripts, or as a Markdown checklist to print before a workshop."""

from __future__ import annotations

import json

from labkit.errors import LabError
from labkit.lab import BACKENDS, DoctorLine, backend_module, choose_backend


def run_doctor(backend: str = "auto", cni: str | None = None) -> list[DoctorLine]:
    """Every check for the asked backend(s); ``auto`` runs both, since the full course needs Kind
    and machines without Docker need the sandbox."""
    if backend not in ("auto", *BACKENDS):
        raise LabError(f"Unknown backend {backend!r}.", f"Use one of: auto, {', '.join(BACKENDS)}.")
    lines: list[DoctorLine] = []
    for backend_name in ("sandbox", "kind"):
        if backend in ("auto", backend_name):
            lines += [
                DoctorLine(
                    f"{backend_name}: {line.name}", line.ok, line.detail, line.fix, line.required
                )
                for line in backend_module(backend_name).doctor_checks(cni)
            ]
    return lines


def render_lines(lines: list[DoctorLine]) -> str:
    """One line per finding, a mark in front, the fix indented beneath failures; the verdict,
    printed after, sums them up (one summary, so it never contradicts a count)."""
    out = []
    for line in lines:
        mark = "ok  " if line.ok else ("FAIL" if line.required else "warn")
        out.append(f"[{mark}] {line.name}: {line.detail}")
        if not line.ok and line.fix:
            out.append(f"       fix: {line.fix}")
    return "\n".join(out)


def status_of(line: DoctorLine) -> str:
    """``ok``, ``fail`` (a required check failed) or ``warn`` (an optional one did)."""
    if line.ok:
        return "ok"
    return "fail" if line.required else "warn"


def render_json(lines: list[DoctorLine]) -> str:
    """One JSON object per finding (name, status, detail, fix), one per line, for scripts; the
    fix only where there is something to fix (``""`` on an ok line); the exit code, not a
    closing object, says whether the machine is ready."""
    return "\n".join(
        json.dumps(
            {
                "name": line.name,
                "status": status_of(line),
                "detail": line.detail,
                "fix": "" if line.ok else line.fix,
            },
            ensure_ascii=False,
        )
        for line in lines
    )


def render_checklist(lines: list[DoctorLine], closing: str) -> str:
    """A Markdown checklist to print: a section per backend, a box per finding (ticked when it
    passed) with the fix beneath the open ones, and the verdict."""
    out = ["# labkit preflight checklist"]
    section = None
    for line in lines:
        backend, sep, name = line.name.partition(": ")
        if not sep:
            backend, name = "", line.name
        if backend != section:
            section = backend
            out += ["", f"## {backend} backend" if backend else "## this machine", ""]
        optional = " (optional)" if not line.required else ""
        out.append(f"- [{'x' if line.ok else ' '}] {_md(name)}{optional}: {_md(line.detail)}")
        if not line.ok and line.fix:
            out.append(f"  - fix: {_md(line.fix)}")
    out += ["", closing]
    return "\n".join(out)


def _md(text: str) -> str:
    """One Markdown list item's text: line breaks folded, so a detail never opens a new item."""
    return " ".join(text.split())


def verdict(lines: list[DoctorLine], backend: str = "auto") -> tuple[bool, str]:
    """Whether the backend labkit will use is ready (``auto``: the one it picks on this machine;
    the other backend's failures are advice, not a failure), with a closing sentence."""
    if backend == "auto":
        try:
            chosen, _ = choose_backend("auto")
        except LabError:
            return False, "Neither backend can run here: apply the fixes above."
    else:
        chosen = backend
    failed = [
        line
        for line in lines
        if line.name.startswith(f"{chosen}: ") and line.required and not line.ok
    ]
    picked = " (the one labkit uses on this machine)" if backend == "auto" else ""
    if failed:
        return False, (
            f"The {chosen} backend{picked} is not ready: apply the "
            + (
                "fix of its failed check"
                if len(failed) == 1
                else f"fixes of its {len(failed)} failed checks"
            )
            + " above."
        )
    others = [line for line in lines if line.required and not line.ok]
    if others:
        whose = sorted({line.name.split(":", 1)[0] for line in others})
        return True, (
            f"The {chosen} backend{picked} is ready. "
            + (
                f"The failed check above is the {whose[0]} backend's: fix it"
                if len(others) == 1
                else f"The {len(others)} failed checks above are the {' and '.join(whose)} "
                "backend's: fix them"
            )
            + " only when you want to use it."
        )
    return True, f"The {chosen} backend{picked} is ready."
