"""Throwaway namespaces for the workload agent's own tests, outside any lab: ``router_nets()``
builds ``lk-t<random>-r`` routing between ``-b`` and ``-c``, ``agent_state()`` a state folder
whose agent is stopped afterwards. Nothing touches the host's namespace."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.sandbox.agent.client import agent_pids, stop_agent

SERVER_B, SERVER_C, B_IP, C_IP = "10.98.1.1", "10.98.2.1", "10.98.1.2", "10.98.2.2"
"""``r``'s address towards ``b``, towards ``c``; ``b``'s and ``c``'s own (no routes: each
reaches only ``r``)."""


def ip(*argv: str) -> None:
    """Run ``ip ARGV``; a failure fails the test."""
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@contextmanager
def fresh_netns(roles: tuple[str, ...]) -> Iterator[list[str]]:
    """One namespace per role, ``lk-t<random>-<role>``, lo up; all deleted afterwards."""
    tag = f"lk-t{secrets.token_hex(3)}"
    created: list[str] = []
    try:
        for role in roles:
            ns = f"{tag}-{role}"
            ip("netns", "add", ns)
            created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        yield created
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextmanager
def router_nets() -> Iterator[tuple[str, str, str]]:
    """``(r, b, c)``: ``r`` holds SERVER_B on a veth to ``b`` (B_IP) and SERVER_C on one to
    ``c`` (C_IP)."""
    with fresh_netns(("r", "b", "c")) as (r, b, c):
        ip("-n", r, "link", "add", "vrb", "type", "veth", "peer", "name", "vbr", "netns", b)
        ip("-n", r, "link", "add", "vrc", "type", "veth", "peer", "name", "vcr", "netns", c)
        for ns, dev, addr in ((r, "vrb", SERVER_B), (r, "vrc", SERVER_C), (b, "vbr", B_IP)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        ip("-n", c, "addr", "add", f"{C_IP}/24", "dev", "vcr")
        for ns, dev in ((r, "vrb"), (r, "vrc"), (b, "vbr"), (c, "vcr")):
            ip("-n", ns, "link", "set", dev, "up")
        yield r, b, c


@contextmanager
def agent_state(path: Path) -> Iterator[Path]:
    """``path`` as an agent's state folder; its agent is stopped afterwards, and must be gone."""
    try:
        yield path
    finally:
        stop_agent(str(path))
        assert agent_pids(str(path)) == []
