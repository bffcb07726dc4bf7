"""The sandbox backend's lifecycle: ``up``, ``attach``, ``down``, ``names`` and its doctor checks.

``up`` clears whatever an earlier run of the same lab left (also after a crash or ``kill -9``),
builds the nodes, fabric and outside namespaces, starts the workload agent and the cluster's
system pods. ``down`` finds every namespace of the lab by exact name pattern, so it works from
any leftover state and never touches another lab's. ``up``, ``attach``, ``down``, ``names`` and
``doctor_checks`` take exactly the parameters of ``labkit.lab.Backend`` (the seam's names).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from labkit.console import StepList
from labkit.errors import LabError
from labkit.machine import sandbox_possible
from labkit.model.objects import pod_ip
from labkit.sandbox import fabric, fabric_runner, naming, netns_etc
from labkit.sandbox.bootstrap import check_cni
from labkit.sandbox.lab import SandboxLab
from labkit.sandbox.netns import NETNS_DIR
from labkit.sandbox.state import StateFile, building_state, lifecycle_lock
from labkit.values import DEFAULT_LAB_NAME, KUBE_PROXY_MODES, DoctorLine

if TYPE_CHECKING:
    from labkit.sandbox.store import ClusterStore

REQUIRED_TOOLS = ("ip", "bridge", "iptables", "iptables-restore", "iptables-save", "bwrap")
TOOL_ROLES = {"bwrap": "bubblewrap, confines pod and node commands"}
"""What doctor adds to a tool's name where the command does not say it."""
LESSON_TOOLS = ("tcpdump", "dig", "getent")
log = logging.getLogger("labkit")
T = TypeVar("T")

SETUP_FIX = (
    "Run `sudo make setup` (installs iproute2, iptables, bubblewrap, tcpdump, dnsutils, ping)."
)


# --------------------------------------------------------------------------- checks of the request


def check_request(cni: str, kube_proxy_mode: str | None) -> None:
    """Refuse a CNI or kube-proxy mode the sandbox cannot model, saying where to go instead."""
    check_cni(cni)
    mode = kube_proxy_mode or "iptables"
    if mode == "ipvs":
        raise LabError(
            "kube-proxy's IPVS mode needs the kernel's IPVS module, and this kernel has no IPVS.",
            "Use the Kind backend on a machine with IPVS "
            "(`--backend kind --kube-proxy-mode ipvs`), or keep the default iptables mode.",
        )
    if mode == "nftables":
        raise LabError(
            "kube-proxy's nftables mode is not modelled by the sandbox.",
            "Use the Kind backend (`--backend kind --kube-proxy-mode nftables`), or keep the "
            "default iptables mode.",
        )
    if mode == "none":
        raise LabError(
            f"kube-proxy mode 'none' leaves {cni} without Service routing: nothing would replace "
            "kube-proxy.",
            "Keep the default iptables mode; 'none' is only for Cilium's kube-proxy replacement "
            "on Kind.",
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
        verb = "is" if len(missing) == 1 else "are"
        raise LabError(
            f"The sandbox needs {', '.join(missing)}, which {verb} not installed.", SETUP_FIX
        )


# --------------------------------------------------------------------------- lifecycle


class _Background(Generic[T]):
    """Run one call in a thread; ``result()`` waits and returns its value or raises its error."""

    def __init__(self, func: Callable[..., T], *args: Any) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func, args), daemon=True)
        self._thread.start()

    def _run(self, func: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._value = func(*args)
        except BaseException as exc:
            self._error = exc

    def join(self) -> None:
        """Wait for the call to end, whatever its outcome."""
        self._thread.join()

    def result(self) -> T | None:
        """Wait for the call and return its value (or raise its error)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def up(
    lab_name: str = DEFAULT_LAB_NAME,
    cni: str = "flannel",
    kube_proxy_mode: str | None = None,
    *,
    quiet: bool = False,
) -> SandboxLab:
    """Build lab ``lab_name``: nodes, fabric, outside, CNI, kube-proxy rules, CoreDNS, the agent.

    A healthy lab of the same name and CNI is reused; leftovers of a broken one are cleared first.
    Anything that fails midway is torn down, so there is never a half-built lab. ``quiet`` prints
    neither the steps nor the closing summary.
    """
    naming.check_lab_name(lab_name)
    check_request(cni, kube_proxy_mode)
    _check_machine()
    with lifecycle_lock(lab_name):
        return _up_locked(lab_name, cni, quiet)


def _up_locked(lab_name: str, cni: str, quiet: bool) -> SandboxLab:
    from labkit.sandbox.agent.client import start_agent
    from labkit.sandbox.store import ClusterStore

    existing = attach(lab_name)
    if existing is not None:
        if existing.cni != cni:
            raise LabError(
                f"A sandbox lab named {lab_name!r} is already running with {existing.cni}.",
                f"Use it, or remove it first with `labkit down --name {lab_name}` to build one "
                f"with {cni}.",
            )
        log.info("sandbox lab %r (%s) is already running; using it.", lab_name, cni)
        return existing
    progress = StepList(quiet=quiet)
    if _leftovers(lab_name):
        with progress.step(f"Clearing what an earlier run of lab {lab_name!r} left behind"):
            down(lab_name)
    state_file = StateFile(naming.state_dir(lab_name))
    agent: _Background[int] | None = None
    try:
        with state_file.locked():
            # The agent's interpreter starts while the namespaces are built: it needs none yet.
            agent = _Background(start_agent, str(state_file.directory))
            with progress.step("Creating the cluster objects (nodes, system namespaces, CoreDNS)"):
                store = ClusterStore.bootstrap(lab_name, cni)
                state_file.write(building_state(lab_name, cni, store.to_dict()))
            with progress.step(
                f"Building 3 node namespaces, the fabric switch and the {cni} network"
            ):
                nodes = fabric.node_nets(lab_name, cni, store.nodes())
                fabric_runner.run_stages(
                    fabric.underlay_plan(lab_name, cni, nodes), f"build lab {lab_name!r}"
                )
                netns_etc.write_node_etc(
                    [naming.outside_netns(lab_name), *(n.netns for n in nodes)]
                )
            with progress.step("Starting the workload agent"):
                agent.result()
            lab = SandboxLab(lab_name, state_file)
            with progress.step("Starting system pods, kube-proxy rules and cluster DNS"):
                lab.finish_up(store)
    except BaseException:
        if agent is not None:
            agent.join()  # so that down() finds and stops an agent that was still starting
        with contextlib.suppress(Exception):
            down(lab_name)
        raise
    progress.say(_summary(lab, store, progress.started_at))
    return lab


def _summary(lab: SandboxLab, store: ClusterStore, started: float) -> str:
    """The closing lines of ``up``: time taken, CNI and policy, nodes, system pods, outside."""
    running = [p for p in store.pods() if pod_ip(p)]
    node_text = ", ".join(f"{n.name} {n.internal_ip}" for n in store.nodes())
    policy = "enforced" if lab.capabilities.network_policy else "NOT enforced (Flannel)"
    return (
        f"Lab {lab.name!r} is up in {time.monotonic() - started:.2f} s: sandbox backend, "
        f"CNI {lab.cni}, kube-proxy iptables, NetworkPolicy {policy}.\n  nodes: {node_text}\n"
        f"  {len(running)} system pod(s) running; outside client {fabric.GATEWAY_IP} "
        f"(namespace {naming.outside_netns(lab.name)}); namespaces start with "
        f"{naming.lab_prefix(lab.name)}"
    )


def attach(lab_name: str = DEFAULT_LAB_NAME) -> SandboxLab | None:
    """The running lab ``lab_name``, or None when it is not (fully) up or its agent does not
    answer."""
    from labkit.sandbox.agent.client import agent_command

    try:
        naming.check_lab_name(lab_name)
    except LabError:
        return None
    state_file = StateFile(naming.state_dir(lab_name))
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
    if not all(NETNS_DIR.joinpath(n).exists() for n in _fixed_netns(lab_name)):
        return None
    try:
        return SandboxLab(lab_name)
    except LabError:
        return None


def _fixed_netns(lab_name: str) -> list[str]:
    """The namespaces every built lab has: fabric, outside and the nodes."""
    return [
        naming.fabric_netns(lab_name),
        naming.outside_netns(lab_name),
        *(naming.node_netns(lab_name, i) for i in range(len(naming.NODE_SHORTS))),
    ]


def _leftovers(lab_name: str) -> bool:
    """Whether anything of lab ``lab_name`` is on this machine (state, namespaces, /etc/netns)."""
    return (
        naming.state_dir(lab_name).exists()
        or any(naming.is_lab_netns(lab_name, n) for n in fabric_runner.list_netns())
        or any(naming.is_lab_netns(lab_name, n) for n in _etc_netns_entries())
    )


def _etc_netns_entries() -> list[str]:
    try:
        return os.listdir(naming.NETNS_ETC)
    except FileNotFoundError:
        return []


def down(lab_name: str = DEFAULT_LAB_NAME) -> bool:
    """Remove lab ``lab_name`` completely (agent, processes left in its namespaces, the namespaces,
    /etc/netns entries, state); idempotent.

    Returns whether there was anything to remove.
    """
    naming.check_lab_name(lab_name)
    with lifecycle_lock(lab_name):
        return _down_locked(lab_name)


def _down_locked(lab_name: str) -> bool:
    from labkit.sandbox.agent.client import agent_pids, stop_agent

    directory = naming.state_dir(lab_name)
    found = directory.exists()
    if found:
        found |= bool(agent_pids(str(directory)))
        stop_agent(str(directory), grace=0.5)
    namespaces = [n for n in fabric_runner.list_netns() if naming.is_lab_netns(lab_name, n)]
    fabric_runner.stop_processes_in(namespaces)
    problems = fabric_runner.delete_netns(namespaces)
    still = [n for n in fabric_runner.list_netns() if naming.is_lab_netns(lab_name, n)]
    etc = [n for n in _etc_netns_entries() if naming.is_lab_netns(lab_name, n)]
    netns_etc.remove_pod_etc(etc)
    netns_etc.remove_empty_etc_netns()
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        naming.STATE_ROOT.rmdir()
    if still:
        raise LabError(
            f"Could not remove {len(still)} namespace(s) of lab {lab_name!r}: {', '.join(still)}.",
            "A process may hold them mounted: run `ip netns pids NAME` to find it, stop it, then "
            f"`labkit down --name {lab_name}` again.",
            output="\n".join(problems),
        )
    return found or bool(namespaces) or bool(etc)


def names() -> list[str]:
    """Every sandbox lab on this machine: those with state, and those with leftover namespaces."""
    found = set(naming.labs_of(fabric_runner.list_netns())) | set(
        naming.labs_of(_etc_netns_entries())
    )
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
