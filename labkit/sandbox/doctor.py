"""What the sandbox needs of this machine: root, iproute2 and iptables, and the kernel features
its data plane uses, each tried in a throwaway namespace; every failing line names its fix."""

from __future__ import annotations

import os
import shutil
import subprocess

from labkit.errors import LabError
from labkit.machine import sandbox_possible
from labkit.sandbox.netns import NETNS_DIR
from labkit.values import DoctorLine

REQUIRED_TOOLS = ("ip", "bridge", "iptables", "iptables-restore", "iptables-save", "bwrap")
TOOL_ROLES = {"bwrap": "bubblewrap, confines pod and node commands"}
"""What doctor adds to a tool's name where the command does not say it."""
LESSON_TOOLS = ("tcpdump", "dig", "getent")
SETUP_FIX = (
    "Run `sudo make setup` (installs iproute2, iptables, bubblewrap, tcpdump, dnsutils, ping)."
)


def check_machine() -> None:
    """Refuse to build a lab where the sandbox cannot run (not root, tools missing), with the
    fix."""
    ok, why = sandbox_possible()
    if not ok:
        raise LabError(
            f"The sandbox cannot run here: {why}.",
            "Run as root on Linux (`sudo labkit up --backend sandbox`), or use --backend kind.",
        )
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise LabError(
            f"The sandbox needs {', '.join(missing)}, which {verb} not installed.", SETUP_FIX
        )


def machine_checks() -> list[DoctorLine]:
    """What the sandbox needs of this machine, each failing line naming the fix."""
    lines: list[DoctorLine] = []
    root = os.geteuid() == 0
    lines.append(
        DoctorLine(
            "root",
            root,
            "running as root" if root else f"running as uid {os.geteuid()}",
            "Run as root: `sudo labkit up --backend sandbox` (network namespaces need it).",
        )
    )
    for tool in REQUIRED_TOOLS:
        path = shutil.which(tool)
        role = f" ({TOOL_ROLES[tool]})" if tool in TOOL_ROLES else ""
        lines.append(
            DoctorLine(f"`{tool}` command{role}", path is not None, path or "not found", SETUP_FIX)
        )
    for tool in LESSON_TOOLS:
        path = shutil.which(tool)
        lines.append(
            DoctorLine(
                f"`{tool}` command",
                path is not None,
                path or "not found (the lessons use it)",
                SETUP_FIX,
                required=tool != "getent",
            )
        )
    if root and shutil.which("ip") and shutil.which("iptables-restore"):
        lines.extend(kernel_checks())
    else:
        lines.append(
            DoctorLine(
                "kernel features",
                False,
                "not tested (needs root, `ip` and `iptables-restore`)",
                "Run `sudo labkit doctor` after `sudo make setup`.",
            )
        )
    return lines


KERNEL_FIX = (
    "Use a Linux kernel with network namespaces, veth, bridge, vxlan and netfilter (nf_tables); "
    "on a VM, load the modules (`sudo modprobe veth bridge vxlan br_netfilter nf_nat`)."
)


def kernel_checks() -> list[DoctorLine]:
    """Try each kernel feature in a throwaway ``lk-doctor-<pid>`` namespace, always deleted."""
    ns = f"lk-doctor-{os.getpid()}"
    lines: list[DoctorLine] = []

    def ip(*args: str, netns: str | None = ns) -> subprocess.CompletedProcess[str]:
        argv = ["ip", *(["-n", netns] if netns else []), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10)

    def record(name: str, proc: subprocess.CompletedProcess[str], fix: str = KERNEL_FIX) -> bool:
        ok = proc.returncode == 0
        lines.append(
            DoctorLine(name, ok, "works" if ok else (proc.stderr.strip() or "failed"), fix)
        )
        return ok

    created = record("network namespaces", ip("netns", "add", ns, netns=None))
    if not created:
        return lines
    try:
        record("veth pairs", ip("link", "add", "lkd-a", "type", "veth", "peer", "name", "lkd-b"))
        record("bridges", ip("link", "add", "lkd-br", "type", "bridge"))
        record(
            "VXLAN",
            ip(
                "link",
                "add",
                "lkd-vx",
                "type",
                "vxlan",
                "id",
                "42",
                "dstport",
                "8472",
                "nolearning",
            ),
        )
        rules = (
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n"
            ":LKD-SVC - [0:0]\n-A PREROUTING -d 10.96.0.1/32 -p tcp --dport 80 -j LKD-SVC\n"
            "-A LKD-SVC -p tcp -m statistic --mode random --probability 0.50000000000 "
            "-j DNAT --to-destination 10.0.0.1:80\n"
            "-A LKD-SVC -p tcp -j DNAT --to-destination 10.0.0.2:80\n"
            "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully\nCOMMIT\n"
        )
        from labkit.sandbox.iptables import restore

        try:
            restore(ns, rules)
            lines.append(DoctorLine("iptables nat (statistic, DNAT, MASQUERADE)", True, "works"))
        except LabError as exc:
            lines.append(
                DoctorLine(
                    "iptables nat (statistic, DNAT, MASQUERADE)",
                    False,
                    (exc.output or exc.what).splitlines()[0],
                    KERNEL_FIX,
                )
            )
        bridge_nf = NETNS_DIR.exists() and _br_netfilter_in(ns)
        lines.append(
            DoctorLine(
                "br_netfilter per namespace",
                bridge_nf,
                "net.bridge.bridge-nf-call-iptables is available in lab namespaces"
                if bridge_nf
                else "net.bridge.bridge-nf-call-iptables is missing (Flannel's same-node Service "
                "hairpin needs it)",
                "Load the module: `sudo modprobe br_netfilter`.",
                required=False,
            )
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
    return lines


def _br_netfilter_in(ns: str) -> bool:
    from labkit.sandbox.netns import enter_netns

    try:
        with enter_netns(ns):
            return os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables")
    except (OSError, LabError):
        return False
