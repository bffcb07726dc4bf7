"""`labkit class up|down`: a lab per learner on one machine, brought up a few at a time with a
line of progress per lab and a summary; one lab's failure never stops the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from labkit.errors import LabError
from labkit.lab import backend_module, choose_backend, find_backends, validate_cni
from labkit.tables import render_table

log = logging.getLogger("labkit")

DEFAULT_PARALLEL = 3
"""Labs built at once: on 2 cores, 3 keeps both busy while each waits on `ip` and
`iptables-restore` (bench/workshop.py measures it)."""
PARALLEL_MAX = 16


@dataclass(frozen=True)
class Outcome:
    """What became of one learner's lab."""

    name: str
    ok: bool
    seconds: float
    detail: str


def check_parallel(parallel: int) -> int:
    """Refuse a number of labs at once that is not 1..PARALLEL_MAX."""
    if not 1 <= parallel <= PARALLEL_MAX:
        raise LabError(
            f"--parallel {parallel} is out of range.",
            f"Pass 1 to {PARALLEL_MAX} (default {DEFAULT_PARALLEL}).",
        )
    return parallel


def _each(
    names: Sequence[str], parallel: int, verb: str, action: Callable[[str], str]
) -> list[Outcome]:
    """Run ``action`` for every name, ``parallel`` at once, logging a line as each ends; a
    LabError becomes that lab's failed outcome."""

    def one(name: str) -> Outcome:
        began = time.perf_counter()
        try:
            detail, ok = action(name), True
        except LabError as exc:
            detail, ok = f"{exc.what} Fix: {exc.fix}", False
        return Outcome(name, ok, time.perf_counter() - began, detail)

    outcomes: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(one, name) for name in names]
        for done, future in enumerate(as_completed(futures), start=1):
            outcome = future.result()
            outcomes[outcome.name] = outcome
            word = verb if outcome.ok else "FAILED"
            log.info(
                "[%d/%d] %s %s (%.2f s)%s",
                done,
                len(names),
                outcome.name,
                word,
                outcome.seconds,
                "" if outcome.ok else f": {outcome.detail}",
            )
    return [outcomes[name] for name in names]


def class_up(
    names: Sequence[str], cni: str, backend: str = "auto", parallel: int = DEFAULT_PARALLEL
) -> list[Outcome]:
    """Bring up (or reuse) a lab per name on one backend; every lab's outcome, in roster order."""
    validate_cni(cni)
    check_parallel(parallel)
    chosen, why = choose_backend(backend)
    module = backend_module(chosen)
    log.info(
        "bringing up %d %s labs with %s, %d at a time (%s).", len(names), chosen, cni, parallel, why
    )

    def up(name: str) -> str:
        lab = module.up(name, cni, None, quiet=True)
        return f"{lab.backend}, {lab.cni}"

    return _each(names, parallel, "up", up)


def class_down(names: Sequence[str], parallel: int = DEFAULT_PARALLEL) -> list[Outcome]:
    """Remove each named lab from whichever backend holds it (none is fine)."""
    check_parallel(parallel)

    def down(name: str) -> str:
        holders = find_backends(name)
        for holder in holders:
            backend_module(holder).down(name)
        return f"removed from {', '.join(holders)}" if holders else "was not running"

    return _each(names, parallel, "down", down)


def summary(outcomes: Sequence[Outcome], seconds: float, verb: str) -> str:
    """A table of every lab's outcome and a closing line: how many, how long, what next."""
    table = render_table(
        ("NAME", "RESULT", "SECONDS", "DETAIL"),
        [[o.name, "ok" if o.ok else "FAILED", f"{o.seconds:.2f}", o.detail] for o in outcomes],
    )
    failed = [o.name for o in outcomes if not o.ok]
    closing = f"{len(outcomes) - len(failed)} of {len(outcomes)} labs {verb} in {seconds:.1f} s."
    if failed:
        closing += f" Failed: {', '.join(failed)}; run the same command again to retry them."
    return f"{table}\n\n{closing}"
