"""How much memory each sandbox lab costs: the summed RSS of its processes (its workload agent,
whatever runs in its namespaces), found in one pass over ``/proc``.

A process belongs to a lab when its network namespace is one of the lab's, or when an argument of
its command line is the lab's state folder or a path inside it (the agent is started with
``--state-dir /run/labkit/<lab>``); lab ``ws1`` never claims lab ``ws10``'s agent.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labkit.sandbox import fabric_runner, naming
from labkit.sandbox.netns import NETNS_DIR

PROC = Path("/proc")


def owner(
    args: Iterable[str], netns_inode: int, inodes: Mapping[int, str], folders: Mapping[str, str]
) -> str | None:
    """The lab a process belongs to, from its command line's arguments and its network
    namespace's inode (``inodes``: inode -> lab; ``folders``: state folder -> lab), or None."""
    if netns_inode in inodes:
        return inodes[netns_inode]
    for arg in args:
        for folder, lab in folders.items():
            if arg == folder or arg.startswith(folder + "/"):
                return lab
    return None


def vm_rss_kib(status: str) -> int:
    """``VmRSS`` of a ``/proc/<pid>/status`` text, in KiB (0 for a kernel thread, which has
    none)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Process:
    """One process of a lab: its pid, the program it runs and its RSS."""

    lab: str
    pid: int
    program: str
    rss_kib: int


def processes(lab_names: Iterable[str]) -> list[Process]:
    """Every process of the named labs (their agents, whatever runs in their namespaces)."""
    labs = list(lab_names)
    inodes: dict[int, str] = {}
    for netns in fabric_runner.list_netns():
        for lab in labs:
            if naming.is_lab_netns(lab, netns):
                with contextlib.suppress(OSError):  # removed meanwhile
                    inodes[os.stat(NETNS_DIR / netns).st_ino] = lab
    folders = {str(naming.state_dir(lab)): lab for lab in labs}
    found = []
    for pid in filter(str.isdigit, os.listdir(PROC)):
        proc = PROC / pid
        try:
            args = proc.joinpath("cmdline").read_bytes().decode(errors="replace").split("\0")
            holder = owner(args, os.stat(proc / "ns" / "net").st_ino, inodes, folders)
            if holder is not None:
                rss = vm_rss_kib(proc.joinpath("status").read_text())
                found.append(Process(holder, int(pid), program(args), rss))
        except OSError:
            continue  # the process ended meanwhile
    return found


def program(args: list[str]) -> str:
    """What a process runs, for a person: a Python module's name (``labkit.sandbox.agent``),
    else the program's file name."""
    if "-m" in args[:-1]:
        return args[args.index("-m") + 1]
    return Path(args[0]).name if args and args[0] else "?"


def rss_mb(lab_names: Iterable[str]) -> dict[str, float]:
    """The summed RSS, in MiB, of each named lab's processes (0.0 for a lab with none)."""
    labs = list(lab_names)
    totals = dict.fromkeys(labs, 0)
    for process in processes(labs):
        totals[process.lab] += process.rss_kib
    return {lab: kib / 1024 for lab, kib in totals.items()}
