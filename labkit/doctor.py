"""`labkit doctor`: every backend's checks of this machine, each failing line naming its fix."""

from __future__ import annotations

from labkit.errors import LabError
from labkit.lab import BACKENDS, DoctorLine, backend_module


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
    """One line per finding, a mark in front, the fix indented beneath failures."""
    out = []
    for line in lines:
        mark = "ok  " if line.ok else ("FAIL" if line.required else "warn")
        out.append(f"[{mark}] {line.name}: {line.detail}")
        if not line.ok and line.fix:
            out.append(f"       fix: {line.fix}")
    failed = [line for line in lines if not line.ok and line.required]
    out.append("")
    out.append(
        "All checks passed."
        if not failed
        else f"{len(failed)} check(s) failed; apply the fixes above."
    )
    return "\n".join(out)
