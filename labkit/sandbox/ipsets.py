"""Felix's ipsets for NetworkPolicy peers, in a node's namespace: whether this machine offers
them, the ``ipset restore`` input that makes a node's sets what its rules match, and loading it.

IP sets live in a network namespace, so a node's sets go away with it; nothing on the host is
touched. Without the ``ipset`` tool or the kernel's ``ip_set`` module, the policy rules fall back
to one rule per peer address (the capability notes say which a lab uses).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from labkit.errors import LabError

SET_PREFIX = "cali40s:"
"""Felix's IPv4 selector sets: ``cali40`` (version 4) and the selector's ``s:`` ID."""
SET_TYPE = "hash:net"
"""The type Felix gives selector sets (felix/ipsets ``IPSetTypeHashNet``)."""


@functools.cache
def available() -> bool:
    """Whether ipsets can back policy rules here: the ``ipset`` tool and the kernel's ``ip_set``
    module."""
    return shutil.which("ipset") is not None and Path("/sys/module/ip_set").exists()


def restore_text(sets: Mapping[str, Sequence[str]], stale: Sequence[str] = ()) -> str:
    """``ipset restore`` input: create each set if missing, replace its members; destroy
    ``stale`` sets (only once no rule references them)."""
    lines: list[str] = []
    for name in sorted(sets):
        lines += [f"create {name} {SET_TYPE} family inet -exist", f"flush {name}"]
        lines += [f"add {name} {member} -exist" for member in sets[name]]
    lines += [f"destroy {name}" for name in stale]
    return "\n".join(lines) + "\n" if lines else ""


def run(netns: str, args: Sequence[str], text: str = "", timeout: float = 30.0) -> str:
    """``ipset <args>`` inside ``netns`` (stdin ``text``); its output, or LabError."""
    from labkit.sandbox.netns import enter_netns

    try:
        with enter_netns(netns):
            proc = subprocess.run(
                ["ipset", *args], input=text, capture_output=True, text=True, timeout=timeout
            )
    except subprocess.TimeoutExpired:
        raise LabError(
            f"ipset in {netns} did not finish within {timeout:g} s.",
            "Check the machine's load, then `labkit down` and `labkit up`.",
        ) from None
    if proc.returncode != 0:
        raise LabError(
            f"ipset refused the policy sets for {netns}.",
            "This is a labkit bug or a missing kernel feature: "
            "run `labkit doctor --backend sandbox`.",
            output=proc.stderr.strip(),
        )
    return proc.stdout


def ours(netns: str) -> list[str]:
    """The policy sets that exist in ``netns``."""
    return [n for n in run(netns, ["list", "-n"]).split() if n.startswith(SET_PREFIX)]
