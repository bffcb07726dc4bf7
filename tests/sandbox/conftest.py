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


def _down_quietly(lab_name: str) -> None:
    from labkit.sandbox import backend

    try:
        backend.down(lab_name)
    except Exception as exc:
        print(f"teardown of lab {lab_name!r} failed: {exc}")


def _lab(lab_name: str, cni: str):
    from labkit.sandbox import backend

    _down_quietly(lab_name)
    lab = backend.up(lab_name, cni, quiet=True)
    try:
        lab.apply(WORKLOAD)
        yield lab
    finally:
        _down_quietly(lab_name)


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


@pytest.fixture(scope="session")
def cilium_lab():
    """Lab ``tci`` with Cilium (kube-proxy replaced), the shared workload applied."""
    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    yield from _lab("tci", "cilium")


@pytest.fixture(params=["flannel", "calico", "cilium"])
def any_lab(request):
    """Each CNI's session lab in turn."""
    return request.getfixturevalue(f"{request.param}_lab")


@pytest.fixture(params=["flannel", "calico"])
def kube_proxy_lab(request):
    """Each session lab whose nodes run kube-proxy: Cilium's replaces it, so tests that read
    kube-proxy's KUBE-* rules leave it out (test_cilium_live.py covers what it does instead)."""
    return request.getfixturevalue(f"{request.param}_lab")


@pytest.fixture
def snapshot():
    """A function ``snapshot(*lab_names)`` returning the host's networking and what exists of
    those labs."""
    return host_snapshot


@pytest.fixture
def netns_inodes():
    """A function ``netns_inodes(lab_name)``: the inodes of a running lab's namespaces."""
    return lab_netns_inodes


@pytest.fixture
def processes_inside():
    """A function ``processes_inside(inodes)``: the processes still inside those namespaces."""
    return processes_in_netns


def _read_cmdline(pid: str) -> str | None:
    """A process's command line, or None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def host_snapshot(*lab_names: str) -> dict[str, object]:
    """The host's own namespace (interfaces, routes, iptables) and every trace of ``lab_names``:
    their namespaces, /etc/netns entries, state folders and processes. Other labs on the machine
    (other test runs) are left out, so they cannot make the comparison flaky."""
    from labkit.sandbox import naming

    def run(*argv: str) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30).stdout

    def ours(name: str) -> bool:
        return any(naming.is_lab_netns(lab_name, name) for lab_name in lab_names) or (
            name.startswith("lk-doctor-")
        )

    def links() -> list[str]:
        # Names and flags of the host's interfaces (counters and qdisc stats left out).
        return sorted(
            line.split(": ", 2)[1] + " " + line.split("<", 1)[1].split(">", 1)[0]
            for line in run("ip", "-o", "link", "show").splitlines()
        )

    def processes() -> set[str]:
        marks = [f"lk-{lab_name}-" for lab_name in lab_names] + [
            f"/run/labkit/{lab_name}" for lab_name in lab_names
        ]
        out = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            args = _read_cmdline(pid)
            if args is not None and any(mark in args for mark in marks):
                out.add(f"{pid} {args.strip()}")
        return out

    etc = (
        sorted(n for n in os.listdir("/etc/netns") if ours(n))
        if os.path.isdir("/etc/netns")
        else []
    )
    state = (
        sorted(n for n in os.listdir("/run/labkit") if n in lab_names)
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
        "iptables": [
            line for line in run("iptables-save").splitlines() if not line.startswith("#")
        ],
        "links": links(),
        "routes": run("ip", "route", "show", "table", "all"),
        "processes": processes(),
    }


def lab_netns_inodes(lab_name: str) -> set[int]:
    """Inodes of a running lab's namespaces, to find processes still inside them later."""
    from labkit.sandbox import naming

    found = set()
    for name in os.listdir("/run/netns"):
        if naming.is_lab_netns(lab_name, name):
            found.add(os.stat(f"/run/netns/{name}").st_ino)
    return found


def processes_in_netns(inodes: set[int]) -> list[str]:
    """Processes whose network namespace is one of ``inodes``."""
    stuck = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                stuck.append(pid)
        except OSError:
            continue
    return stuck
