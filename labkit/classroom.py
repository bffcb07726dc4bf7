"""`labkit class up|down`: a lab per learner on one machine, brought up a few at a time with a
line of progress per lab and a summary; one lab's failure never stops the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from labkit.errors import LabError
from labkit.lab import (
    SeenLabs,
    backend_module,
    choose_backend,
    find_backends,
    labs_needing_root,
    root_only_error,
    validate_cni,
)
from labkit.tables import render_table

log = logging.getLogger("labkit")

DEFAULT_PARALLEL = 3
"""Labs built at once: on 2 cores, 3 keeps both busy while each waits on `ip` and
`iptables-restore` (bench/workshop.py measures it)."""
PARALLEL_MAX = 16


FAILED = "Failed"
HEADERS = ("NAME", "STATUS", "DURATION", "MESSAGE")


@dataclass(frozen=True)
class Outcome:
    """What became of one learner's lab: its status (``Ready`` after up, ``Removed`` or
    ``NotFound`` after down, else ``Failed``), how long it took and what to know (None: nothing)."""

    name: str
    status: str
    seconds: float
    message: str | None

    @property
    def ok(self) -> bool:
        """Whether the lab is as the command wanted it."""
        return self.status != FAILED


def check_parallel(parallel: int) -> int:
    """Refuse a number of labs at once that is not 1..PARALLEL_MAX."""
    if not 1 <= parallel <= PARALLEL_MAX:
        raise LabError(
            f"--parallel {parallel} is out of range.",
            f"Pass 1 to {PARALLEL_MAX} (default {DEFAULT_PARALLEL}).",
        )
    return parallel


def _each(
    names: Sequence[str], parallel: int, action: Callable[[str], tuple[str, str | None]]
) -> list[Outcome]:
    """Run ``action`` (a lab's status and message) for every name, ``parallel`` at once, logging
    a line as each ends; a LabError becomes that lab's failed outcome."""

    def one(name: str) -> Outcome:
        began = time.perf_counter()
        try:
            status, message = action(name)
        except LabError as exc:
            status, message = FAILED, f"{exc.what} Fix: {exc.fix}"
        return Outcome(name, status, time.perf_counter() - began, message)

    outcomes: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(one, name) for name in names]
        for done, future in enumerate(as_completed(futures), start=1):
            outcome = future.result()
            outcomes[outcome.name] = outcome
            log.info(
                "[%d/%d] %s %s (%s)%s",
                done,
                len(names),
                outcome.name,
                outcome.status,
                duration(outcome.seconds),
                "" if outcome.ok else f": {outcome.message}",
            )
    return [outcomes[name] for name in names]


def duration(seconds: float) -> str:
    """``1.31s``: a lab's time to the hundredth, in Go's time.Duration units."""
    return f"{seconds:.2f}s"


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

    def up(name: str) -> tuple[str, str | None]:
        lab = module.up(name, cni, None, quiet=True)
        return "Ready", f"{lab.backend}, {lab.cni}"

    return _each(names, parallel, up)


def class_down(names: Sequence[str], parallel: int = DEFAULT_PARALLEL) -> list[Outcome]:
    """Remove each named lab from whichever backend holds it (none is fine)."""
    check_parallel(parallel)

    def down(name: str) -> tuple[str, str | None]:
        holders = find_backends(name)
        for holder in holders:
            backend_module(holder).down(name)
        return ("Removed", f"from {', '.join(holders)}") if holders else ("NotFound", None)

    return _each(names, parallel, down)


def refuse_root_only(names: Sequence[str], command: str) -> None:
    """Refuse, before anything is touched, a roster whose sandbox labs only root can use (or
    see), naming ``sudo command``: as another user those labs would look absent."""
    seen = labs_needing_root()
    if seen is None:
        return
    ours = SeenLabs(tuple(name for name in seen.names if name in names), seen.complete)
    refused = root_only_error(ours, command)
    if refused is not None:
        raise refused


def summary(outcomes: Sequence[Outcome], seconds: float, verb: str) -> str:
    """A kubectl-style table of every lab's outcome and a closing line: how many, how long,
    what next."""
    table = render_table(
        HEADERS, [[o.name, o.status, duration(o.seconds), o.message] for o in outcomes]
    )
    failed = [o.name for o in outcomes if not o.ok]
    closing = f"{len(outcomes) - len(failed)} of {len(outcomes)} labs {verb} in {seconds:.1f} s."
    if failed:
        closing += (
            f" Failed: {', '.join(failed)}; apply the fix in each one's MESSAGE, then run the "
            "same command again to retry them."
        )
    return f"{table}\n\n{closing}"
