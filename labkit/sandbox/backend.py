"""The sandbox backend's lifecycle: ``up``, ``attach``, ``down``, ``names`` and its doctor checks.

``up`` clears whatever an earlier run of the same lab left (also after a crash or ``kill -9``),
builds the nodes, fabric and outside namespaces, starts the workload agent and the cluster's
system pods. ``down`` finds every namespace of the lab by exact name pattern, so it works from
any leftover state and never touches another lab's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any

from labkit.errors import LabError
from labkit.machine import sandbox_possible
from labkit.progress import StepList
from labkit.sandbox import fabric, naming
from labkit.sandbox.bootstrap import check_cni
from labkit.sandbox.lab import LAB_STATE_FORMAT, SandboxLab, StateFile, lifecycle_lock
from labkit.values import DEFAULT_LAB_NAME, KUBE_PROXY_MODES, DoctorLine

REQUIRED_TOOLS = ("ip", "bridge", "iptables", "iptables-restore", "iptables-save")
LESSON_TOOLS = ("tcpdump", "dig", "getent")
log = logging.getLogger("labkit")

SETUP_FIX = "Run `sudo make setup` (installs iproute2, iptables, tcpdump, dnsutils)."


# --------------------------------------------------------------------------- checks of the request


def check_request(cni: str, kube_proxy_mode: str | None) -> None:
    """Refuse a CNI or kube-proxy mode the sandbox cannot model, saying where to go instead."""
    check_cni(cni)
    mode = kube_proxy_mode or "iptables"
    if mode == "ipvs":
        raise LabError(
            "kube-proxy's IPVS mode needs the kernel's IPVS module, and this kernel has no IPVS.",
            "Use the Kind backend on a machine with IPVS (`--backend kind --kube-proxy-mode ipvs`), "
            "or keep the default iptables mode.",
        )
    if mode == "nftables":
        raise LabError(
            "kube-proxy's nftables mode is not modelled by the sandbox.",
            "Use the Kind backend (`--backend kind --kube-proxy-mode nftables`), or keep the default "
            "iptables mode.",
        )
    if mode == "none":
        raise LabError(
            f"kube-proxy mode 'none' leaves {cni} without Service routing: nothing would replace kube-proxy.",
            "Keep the default iptables mode; 'none' is only for Cilium's kube-proxy replacement on Kind.",
        )
    if mode not in KUBE_PROXY_MODES:
        raise LabError(
            f"Unknown kube-proxy mode {mode!r}.",
            f"Use one of: {', '.join(KUBE_PROXY_MODES)} (iptables is the default).",
        )


def _check_machine() -> None:
    ok, why = sandbox_possible()
    if not ok:
        raise LabError(
            f"The sandbox cannot run here: {why}.",
            "Run as root on Linux (`sudo labkit up --backend sandbox`), or use --backend kind.",
        )
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(
            f"The sandbox needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed.",
            SETUP_FIX,
        )


# --------------------------------------------------------------------------- lifecycle


class _Background:
    """Run one call in a thread; ``result()`` waits and returns its value or raises its error."""

    def __init__(self, func: Any, *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func, args), daemon=True)
        self._thread.start()

    def _run(self, func: Any, args: tuple) -> None:
        try:
            self._value = func(*args)
        except BaseException as exc:
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def up(
    name: str = DEFAULT_LAB_NAME,
    cni: str = "flannel",
    kube_proxy_mode: str | None = None,
    *,
    quiet: bool = False,
) -> SandboxLab:
    """Build lab ``name``: nodes, fabric, outside, CNI, kube-proxy rules, CoreDNS, the agent.

    A healthy lab of the same name and CNI is reused; leftovers of a broken one are cleared first.
    Anything that fails midway is torn down, so there is never a half-built lab.
    """
    naming.check_lab_name(name)
    check_request(cni, kube_proxy_mode)
    _check_machine()
    with lifecycle_lock(name):
        return _up_locked(name, cni, quiet)


def _up_locked(name: str, cni: str, quiet: bool) -> SandboxLab:
    from labkit.sandbox.agent import start_agent
    from labkit.sandbox.store import ClusterStore

    existing = attach(name)
    if existing is not None:
        if existing.cni != cni:
            raise LabError(
                f"A sandbox lab named {name!r} is already running with {existing.cni}.",
                f"Use it, or remove it first with `labkit down --name {name}` to build one with {cni}.",
            )
        log.info("sandbox lab %r (%s) is already running; using it.", name, cni)
        return existing
    progress = StepList(quiet=quiet)
    if _leftovers(name):
        with progress.step(f"Clearing what an earlier run of lab {name!r} left behind"):
            down(name)
    state_file = StateFile(naming.state_dir(name))
    agent: _Background | None = None
    try:
        with state_file.locked():
            # The agent's interpreter starts while the namespaces are built: it needs none yet.
            agent = _Background(start_agent, str(state_file.directory))
            with progress.step("Creating the cluster objects (nodes, system namespaces, CoreDNS)"):
                store = ClusterStore.bootstrap(name, cni)
                state = {
                    "format": LAB_STATE_FORMAT,
                    "name": name,
                    "cni": cni,
                    "kube_proxy_mode": "iptables",
                    "phase": "building",
                    "created": time.time(),
                    "store": store.to_dict(),
                    "pods": {},
                }
                state_file.write(state)
            with progress.step(
                f"Building 3 node namespaces, the fabric switch and the {cni} network"
            ):
                nodes = fabric.node_nets(name, cni, store.nodes())
                fabric.run_stages(fabric.underlay_plan(name, cni, nodes), f"build lab {name!r}")
                fabric.write_node_etc([naming.outside_netns(name), *(n.netns for n in nodes)])
            with progress.step("Starting the workload agent"):
                agent.result()
            lab = SandboxLab(name)
            built: dict = {}
            with progress.step("Starting system pods, kube-proxy rules and cluster DNS"):
                lab.converge(store, built)
            state["phase"] = "ready"
            lab._save(state, store, built)
    except BaseException:
        if agent is not None:
            agent.join()  # so that down() finds and stops an agent that was still starting
        with contextlib.suppress(Exception):
            down(name)
        raise
    progress.say(_summary(lab, store, progress.started_at))
    return lab


def _summary(lab: SandboxLab, store: Any, started: float) -> str:
    nodes = store.nodes()
    pods = [p for p in store.pods() if (p.get("status") or {}).get("podIP")]
    node_text = ", ".join(f"{n.name} {n.internal_ip}" for n in nodes)
    policy = "enforced" if lab.capabilities.network_policy else "NOT enforced (Flannel)"
    return (
        f"Lab {lab.name!r} is up in {time.monotonic() - started:.2f} s: sandbox backend, CNI {lab.cni}, "
        f"kube-proxy iptables, NetworkPolicy {policy}.\n  nodes: {node_text}\n"
        f"  {len(pods)} system pod(s) running; outside client {fabric.GATEWAY_IP} "
        f"(namespace {naming.outside_netns(lab.name)}); namespaces start with {naming.lab_prefix(lab.name)}"
    )


def attach(name: str = DEFAULT_LAB_NAME) -> SandboxLab | None:
    """The running lab ``name``, or None when it is not (fully) up or its agent does not answer."""
    from labkit.sandbox.agent import agent_command

    try:
        naming.check_lab_name(name)
    except LabError:
        return None
    state_file = StateFile(naming.state_dir(name))
    if not state_file.exists():
        return None
    try:
        state = state_file.read()
    except LabError:
        return None
    if state.get("phase") != "ready":
        return None
    try:
        if agent_command(str(state_file.directory), "ping", timeout=2.0) != "pong":
            return None
    except (LabError, OSError):  # no agent, or one dying as we ask
        return None
    if not all(fabric.NETNS_DIR.joinpath(n).exists() for n in _fixed_netns(name)):
        return None
    try:
        return SandboxLab(name)
    except LabError:
        return None


def _fixed_netns(name: str) -> list[str]:
    return [
        naming.fabric_netns(name),
        naming.outside_netns(name),
        *(naming.node_netns(name, i) for i in range(len(naming.NODE_SHORTS))),
    ]


def _leftovers(name: str) -> bool:
    return (
        naming.state_dir(name).exists()
        or any(naming.is_lab_netns(name, n) for n in fabric.list_netns())
        or any(naming.is_lab_netns(name, n) for n in _etc_netns_entries())
    )


def _etc_netns_entries() -> list[str]:
    try:
        return os.listdir(naming.NETNS_ETC)
    except FileNotFoundError:
        return []


def down(name: str = DEFAULT_LAB_NAME) -> bool:
    """Remove lab ``name`` completely (agent, processes left in its namespaces, the namespaces,
    /etc/netns entries, state); idempotent.

    Returns whether there was anything to remove.
    """
    naming.check_lab_name(name)
    with lifecycle_lock(name):
        return _down_locked(name)


def _down_locked(name: str) -> bool:
    from labkit.sandbox.agent import agent_pids, stop_agent

    directory = naming.state_dir(name)
    found = directory.exists()
    if found:
        found |= bool(agent_pids(str(directory)))
        stop_agent(str(directory), grace=0.5)
    namespaces = [n for n in fabric.list_netns() if naming.is_lab_netns(name, n)]
    fabric.stop_processes_in(namespaces)
    problems = fabric.delete_netns(namespaces)
    still = [n for n in fabric.list_netns() if naming.is_lab_netns(name, n)]
    etc = [n for n in _etc_netns_entries() if naming.is_lab_netns(name, n)]
    fabric.remove_pod_etc(etc)
    fabric.remove_empty_etc_netns()
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        naming.STATE_ROOT.rmdir()
    if still:
        raise LabError(
            f"Could not remove {len(still)} namespace(s) of lab {name!r}: {', '.join(still)}.",
            "A process may hold them mounted: run `ip netns pids NAME` to find it, stop it, then "
            f"`labkit down --name {name}` again.",
            output="\n".join(problems),
        )
    return found or bool(namespaces) or bool(etc)


def names() -> list[str]:
    """Every sandbox lab on this machine: those with state, and those with leftover namespaces."""
    found = set(naming.labs_of(fabric.list_netns())) | set(naming.labs_of(_etc_netns_entries()))
    try:
        for entry in naming.STATE_ROOT.iterdir():
            if entry.is_dir():
                with contextlib.suppress(LabError):
                    found.add(naming.check_lab_name(entry.name))
    except FileNotFoundError:
        pass
    return sorted(found)


# --------------------------------------------------------------------------- doctor


def doctor_checks(cni: str | None = None) -> list[DoctorLine]:
    """What the sandbox needs of this machine, each failing line naming the fix (the same for
    every CNI it models)."""
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
        lines.append(
            DoctorLine(f"`{tool}` command", path is not None, path or "not found", SETUP_FIX)
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

    def ip(*args: str, netns: str | None = ns) -> subprocess.CompletedProcess:
        argv = ["ip", *(["-n", netns] if netns else []), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10)

    def record(name: str, proc: subprocess.CompletedProcess, fix: str = KERNEL_FIX) -> bool:
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
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":LKD-SVC - [0:0]\n-A PREROUTING -d 10.96.0.1/32 -p tcp --dport 80 -j LKD-SVC\n"
            "-A LKD-SVC -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.0.0.1:80\n"
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
        bridge_nf = fabric.NETNS_DIR.exists() and _br_netfilter_in(ns)
        lines.append(
            DoctorLine(
                "br_netfilter per namespace",
                bridge_nf,
                "net.bridge.bridge-nf-call-iptables is available in lab namespaces"
                if bridge_nf
                else "net.bridge.bridge-nf-call-iptables is missing (Flannel's same-node Service hairpin needs it)",
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
