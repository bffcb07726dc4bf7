"""Carries fabric plans out on this machine, and takes namespaces down again.

A stage's jobs run in parallel, stages in order. Each job's ``ip``/``bridge`` lines go to one
``ip -n NS -batch -`` process, its sysctls are written from a thread that entered the namespace;
nothing runs in the host's own namespace: the only host side effects are the bind mounts that
``ip netns add`` creates under ``/run/netns``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from labkit.errors import LabError
from labkit.sandbox.fabric import Job
from labkit.sandbox.netns import NETNS_DIR, enter_netns


def list_netns() -> list[str]:
    """Names of every named network namespace (what ``ip netns list`` shows)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def run_stages(
    stages: Sequence[Sequence[Job]], what: str, *, ignore_errors: bool = False
) -> list[str]:
    """Run stages in order, the jobs of a stage concurrently; raise a LabError on the first
    failing stage (after letting its other jobs finish), or collect the errors when asked to."""
    errors: list[str] = []
    for stage in stages:
        jobs = [j for j in stage if not j.empty]
        if not jobs:
            continue
        if len(jobs) == 1:
            outcomes = [_run_job(jobs[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
                outcomes = list(pool.map(_run_job, jobs))
        failed = [o for o in outcomes if o]
        if failed and not ignore_errors:
            raise LabError(
                f"Could not {what}: a kernel networking command failed.",
                "Run `labkit doctor --backend sandbox` to check this machine's kernel features, "
                "then `labkit down` and try again.",
                output="\n".join(failed),
            )
        errors.extend(failed)
    return errors


def _run_job(job: Job) -> str:
    """Run one job's steps; return '' on success, else a description of what failed."""
    for step in job.steps:
        if isinstance(step.payload, dict):
            problem = _write_sysctls(job.netns, step.payload)
        else:
            problem = _run_batch(step.tool, job.netns, step.payload, job.force)
        if problem:
            return problem
    return ""


def _run_batch(tool: str, netns: str | None, lines: list[str], force: bool = False) -> str:
    argv = (
        [tool] + (["-n", netns] if netns else []) + (["-force"] if force else []) + ["-batch", "-"]
    )
    try:
        proc = subprocess.run(
            argv, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return f"`{tool}` is not installed (it comes with iproute2)"
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` did not finish within 30 s"
    if proc.returncode != 0:
        where = f"in {netns}" if netns else "on the host"
        return (
            f"{tool} -batch {where} failed:\n{proc.stderr.strip()}\n"
            f"(commands: {'; '.join(lines[:60])})"
        )
    return ""


def _write_sysctls(netns: str | None, values: Mapping[str, str]) -> str:
    if netns is None:
        return "refusing to write sysctls in the host's namespace"
    try:
        with enter_netns(netns):
            for key, value in values.items():
                with open(f"/proc/sys/{key}", "w") as handle:
                    handle.write(value)
    except OSError as exc:
        return f"sysctl {exc.filename or ''} in {netns}: {exc.strerror}"
    return ""


def stop_processes_in(names: Iterable[str]) -> list[int]:
    """Kill every process still running in the named namespaces (a command a learner sent to the
    background, a shell opened with ``ip netns exec``): deleting a namespace's name does not stop
    them, and they would keep the namespace alive. Returns the pids killed."""
    wanted: set[tuple[int, int]] = set()
    for name in names:
        with contextlib.suppress(OSError):
            st = os.stat(NETNS_DIR / name)
            wanted.add((st.st_dev, st.st_ino))

    def inside() -> set[int]:
        found: set[int] = set()
        for entry in os.listdir("/proc") if wanted else ():
            if entry.isdigit() and int(entry) != os.getpid():
                with contextlib.suppress(OSError):
                    st = os.stat(f"/proc/{entry}/ns/net")
                    if (st.st_dev, st.st_ino) in wanted:
                        found.add(int(entry))
        return found

    pids = inside()
    if pids:  # look twice: a labkit process only passes through a namespace to open a socket
        time.sleep(0.02)
        pids &= inside()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(pids)


def delete_netns(names: Iterable[str]) -> list[str]:
    """Delete the given named namespaces that exist; returns problems (empty when all went)."""
    existing = set(list_netns())
    todo = [n for n in names if n in existing]
    if not todo:
        return []
    return run_stages(
        [[Job(None, force=True).ip(*(f"netns del {n}" for n in todo))]],
        "delete namespaces",
        ignore_errors=True,
    )
