"""Check latency figures: p50/p95 of every check's verdict, in good and broken states (prints
them; not a test).

The states are the scenarios' starting states and steps (good) and broken variants (broken), and
the checks' self-tests (checks/selftest: fixed = good, wrong = broken). Each check is timed from
call to Result, and each scenario state's checks together (what `labkit check` runs). Everything
runs on sandbox labs of this script's own name (``benchchk``), taken down at the end. Target on a
2-core machine: every check's verdict, pass or fail, in <= 1.5 s (p95).

Run as root, alone on the machine's sandbox: ``flock /tmp/sandbox.lock .venv/bin/python
bench/checks.py [--runs 5] [--cni calico] [--only 07-nodeport]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LAB = "benchchk"
TARGET_S = 1.5


@dataclass
class Timings:
    """The latencies of one check in one state, and the verdicts it gave."""

    label: str
    state: str
    seconds: list[float] = field(default_factory=list)
    verdicts: set[str] = field(default_factory=set)
    together: bool = False
    """Whether this times a scenario state's checks together (``labkit check``), not one check."""

    def p(self, q: float) -> float:
        """The q-th quantile (nearest rank) of the latencies."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def time_check(lab: Any, label: str, state: str, check: str, args: dict, runs: int) -> Timings:
    """Run one check ``runs`` times on the lab as it is, timing each call."""
    from labkit.checks import run_check

    timings = Timings(label, state)
    for _ in range(runs):
        began = time.perf_counter()
        result = run_check(lab, check, args)
        timings.seconds.append(time.perf_counter() - began)
        timings.verdicts.add(result.verdict)
    return timings


def scenario_timings(cni: str, runs: int, only: str | None) -> list[Timings]:
    """Every scenario on a fresh lab: its checks in the starting state, after each step, and in
    each broken variant (reset in between)."""
    from labkit import scenarios
    from labkit.sandbox import backend

    out: list[Timings] = []
    for name in scenarios.names():
        scenario = scenarios.get(name)
        if "sandbox" not in scenario.backends or (only and only not in name):
            continue
        backend.down(LAB)
        lab = backend.up(LAB, cni, quiet=True)
        states: list[tuple[str | None, str]] = [(None, "good")]
        states += [(v.name, "broken" if v.role == "broken" else "good") for v in scenario.variants]
        for variant, state in states:
            scenarios.reset(lab, name)
            if variant:
                scenarios.deploy(lab, name, variant)
            specs = scenario.variant(variant).checks if variant else scenario.checks
            where = f"{name}{'/' + variant if variant else ''}"
            for spec in specs:
                if "sandbox" in spec.backends:
                    label = f"{where} {spec.check}"
                    out.append(time_check(lab, label, state, spec.check, spec.args, runs))
            together = Timings(f"{where} (all its checks)", state, together=True)
            for _ in range(runs):
                began = time.perf_counter()
                results = scenarios.run_checks(lab, name, variant)
                together.seconds.append(time.perf_counter() - began)
                together.verdicts.update(r.verdict for r in results)
            out.append(together)
        backend.down(LAB)
    return out


def selftest_timings(cni: str, runs: int, only: str | None) -> list[Timings]:
    """Every self-test case of the checks: the wrong state (broken) then the fixed one (good)."""
    from labkit.checks import selftest
    from labkit.sandbox import backend

    out: list[Timings] = []
    backend.down(LAB)
    lab = backend.up(LAB, cni, quiet=True)
    for case in selftest.cases():
        if not case.runs_on("sandbox", cni) or (only and only not in case.name):
            continue
        lab.apply(case.base_manifests())
        for state, kind in (("wrong", "broken"), ("fixed", "good")):
            overlay = case.manifests(state)
            if overlay:
                lab.apply(overlay)
            label = f"selftest {case.name} {case.check}"
            out.append(time_check(lab, label, kind, case.check, dict(case.args), runs))
            if overlay:
                lab.delete(overlay)
        lab.delete(case.base_manifests())
    backend.down(LAB)
    return out


def summary(rows: list[Timings], state: str, together: bool = False) -> str:
    """One line: p50 and p95 over every run of every check (or scenario state) in ``state``, the
    slowest, and how many are over the target."""
    chosen = [r for r in rows if r.state == state and r.together == together]
    what = "scenario states" if together else "checks"
    if not chosen:
        return f"  {state:6s}: no {what}"
    every = Timings("all", state, [s for r in chosen for s in r.seconds])
    worst = max(chosen, key=lambda r: r.p(0.95))
    over = sum(r.p(0.95) > TARGET_S for r in chosen)
    return (
        f"  {state:6s}: {len(chosen)} {what}, all runs p50 {every.p(0.5):.2f} s, "
        f"p95 {every.p(0.95):.2f} s; slowest p95 {worst.p(0.95):.2f} s ({worst.label}); "
        f"{over} over {TARGET_S:g} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per check and state")
    parser.add_argument("--cni", default="calico", choices=["calico", "flannel"])
    parser.add_argument("--only", help="only scenarios or self-test cases whose name has this")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/checks.py builds network namespaces: run it as root (sudo).", file=sys.stderr)
        return 1
    from labkit.sandbox import backend

    print(f"check bench: sandbox, {args.cni}, {args.runs} run(s) per check and state")
    print(f"  {'check (scenario[/variant] or self-test case)':70s} state    p50 s  p95 s  verdict")
    sources: list[Callable[[str, int, str | None], list[Timings]]] = [
        scenario_timings,
        selftest_timings,
    ]
    rows: list[Timings] = []
    try:
        for source in sources:
            for row in source(args.cni, args.runs, args.only):
                rows.append(row)
                print(
                    f"  {row.label[:70]:70s} {row.state:6s} {row.p(0.5):6.2f} {row.p(0.95):6.2f}  "
                    f"{'/'.join(sorted(row.verdicts))}",
                    flush=True,
                )
    finally:
        backend.down(LAB)
    print(summary(rows, "good"))
    print(summary(rows, "broken"))
    print(summary(rows, "good", together=True))
    print(summary(rows, "broken", together=True))
    worst = max((r.p(0.95) for r in rows), default=0.0)
    print(
        f"  every check's and scenario state's p95 <= {TARGET_S:g} s: "
        f"{'OK' if worst <= TARGET_S else 'OVER'} (worst {worst:.2f} s)"
    )
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
