"""`labkit doctor`: checks of this machine, each failing line naming its fix."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DoctorLine:
    """One finding: what was checked, whether it is fine, what was seen, and the fix when not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def run_doctor(backend: str = "auto", cni: str | None = None) -> list[DoctorLine]:
    """Every check for the asked backend(s); ``auto`` runs both, since the full course needs Kind
    and machines without Docker need the sandbox."""
    from labkit.lab import BACKENDS

    if backend not in ("auto", *BACKENDS):
        from labkit.errors import LabError

        raise LabError(f"Unknown backend {backend!r}.", f"Use one of: auto, {', '.join(BACKENDS)}.")
    lines: list[DoctorLine] = []
    if backend in ("auto", "sandbox"):
        from labkit.sandbox.backend import doctor_checks

        lines += [DoctorLine(f"sandbox: {l.name}", l.ok, l.detail, l.fix, l.required) for l in doctor_checks()]
    if backend in ("auto", "kind"):
        from labkit.kind.doctor import kind_checks

        lines += [DoctorLine(f"kind: {l.name}", l.ok, l.detail, l.fix, l.required) for l in kind_checks(cni)]
    return lines


def render_lines(lines: list[DoctorLine]) -> str:
    """One line per finding, a mark in front, the fix indented beneath failures."""
    out = []
    for line in lines:
        mark = "ok  " if line.ok else ("FAIL" if line.required else "warn")
        out.append(f"[{mark}] {line.name}: {line.detail}")
        if not line.ok and line.fix:
            out.append(f"       fix: {line.fix}")
    failed = [l for l in lines if not l.ok and l.required]
    out.append("")
    out.append("All checks passed." if not failed else f"{len(failed)} check(s) failed; apply the fixes above.")
    return "\n".join(out)
