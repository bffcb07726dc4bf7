"""Sandbox fixtures: one real lab per CNI for the whole session, always torn down, and a snapshot
of the host's own networking to prove nothing leaked.

The root conftest marks every test here ``sandbox`` and skips it, with the reason, when not root.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

WORKLOAD = Path(__file__).with_name("data") / "workload.yaml"


def _down_quietly(name: str) -> None:
    from labkit.sandbox import backend

    try:
        backend.down(name)
    except Exception as exc:
        print(f"teardown of lab {name!r} failed: {exc}")


def _lab(name: str, cni: str):
    from labkit.sandbox import backend

    _down_quietly(name)
    lab = backend.up(name, cni, quiet=True)
    try:
        lab.apply(WORKLOAD)
        yield lab
    finally:
        _down_quietly(name)


@pytest.fixture(scope="session")
def flannel_lab():
    """Lab ``tf`` with Flannel, the shared workload applied."""
    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    yield from _lab("tf", "flannel")


@pytest.fixture(scope="session")
def calico_lab():
    """Lab ``tc`` with Calico, the shared workload applied."""
    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    yield from _lab("tc", "calico")


@pytest.fixture(params=["flannel", "calico"])
def any_lab(request):
    """Each CNI's session lab in turn."""
    return request.getfixturevalue(f"{request.param}_lab")


@pytest.fixture
def snapshot():
    """A function ``snapshot(*labs)`` returning the host's networking and what exists of those labs."""
    return host_snapshot


def host_snapshot(*labs: str) -> dict[str, object]:
    """The host's own namespace (interfaces, routes, iptables) and every trace of ``labs``: their
    namespaces, /etc/netns entries, state folders and processes. Other labs on the machine (other
    test runs) are left out, so they cannot make the comparison flaky."""
    from labkit.sandbox import naming

    def run(*argv: str) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30).stdout

    def ours(name: str) -> bool:
        return any(naming.is_lab_netns(lab, name) for lab in labs) or name.startswith("lk-doctor-")

    def links() -> list[str]:
        # Names and flags of the host's interfaces (counters and qdisc stats left out).
        return sorted(
            line.split(": ", 2)[1] + " " + line.split("<", 1)[1].split(">", 1)[0]
            for line in run("ip", "-o", "link", "show").splitlines()
        )

    def processes() -> set[str]:
        marks = [f"lk-{lab}-" for lab in labs] + [f"/run/labkit/{lab}" for lab in labs]
        out = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                args = (
                    open(f"/proc/{pid}/cmdline", "rb")
                    .read()
                    .replace(b"\0", b" ")
                    .decode(errors="replace")
                )
            except OSError:
                continue
            if any(mark in args for mark in marks):
                out.add(f"{pid} {args.strip()}")
        return out

    etc = (
        sorted(n for n in os.listdir("/etc/netns") if ours(n))
        if os.path.isdir("/etc/netns")
        else []
    )
    state = (
        sorted(n for n in os.listdir("/run/labkit") if n in labs)
        if os.path.isdir("/run/labkit")
        else []
    )
    netns = sorted(
        line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()
    )
    return {
        "netns": [n for n in netns if ours(n)],
        "etc_netns": etc,
        "run_labkit": state,
        "iptables": [l for l in run("iptables-save").splitlines() if not l.startswith("#")],
        "links": links(),
        "routes": run("ip", "route", "show", "table", "all"),
        "processes": processes(),
    }


def netns_inodes(lab: str) -> set[int]:
    """Inodes of a running lab's namespaces, to find processes still inside them later."""
    from labkit.sandbox import naming

    found = set()
    for name in os.listdir("/run/netns"):
        if naming.is_lab_netns(lab, name):
            found.add(os.stat(f"/run/netns/{name}").st_ino)
    return found


def processes_inside(inodes: set[int]) -> list[str]:
    """Processes whose network namespace is one of ``inodes``."""
    stuck = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                stuck.append(pid)
        except OSError:
            continue
    return stuck
