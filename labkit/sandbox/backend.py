"""The sandbox backend's lifecycle: ``up``, ``attach``, ``down``, ``names`` and its doctor checks.

A lab's state is the truth: ``attach`` restarts a dead agent and finishes what a killed command
left half done; ``up`` reuses a running lab, rebuilds one whose namespaces are gone from its
state, and clears only what a lab that never finished building left (also after ``kill -9``)
before it builds the nodes, fabric and outside namespaces, the workload agent and the cluster's
system pods. ``down`` finds every namespace of the lab by exact name pattern, so it works from
any leftover state and never touches another lab's. ``up``, ``attach``, ``down``, ``names`` and
``doctor_checks`` take exactly the parameters of ``labkit.lab.Backend`` (the seam's names).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from labkit.console import StepList
from labkit.errors import LabError
from labkit.model.objects import pod_ip
from labkit.sandbox import (
    fabric,
    fabric_runner,
    footprint,
    labnames,
    leftovers,
    naming,
    netns_etc,
)
from labkit.sandbox.bootstrap import check_cni
from labkit.sandbox.doctor import check_machine, machine_checks
from labkit.sandbox.lab import SandboxLab
from labkit.sandbox.netns import NETNS_DIR
from labkit.sandbox.outside_world import world_addresses, world_names
from labkit.sandbox.state import (
    REPAIRING,
    STATE_FILE,
    StateFile,
    building_state,
    created_at,
    lifecycle_lock,
    wall_clock,
)
from labkit.values import DEFAULT_CNI, DEFAULT_LAB_NAME, KUBE_PROXY_MODES, DoctorLine, LabSummary

if TYPE_CHECKING:
    from labkit.sandbox.store import ClusterStore

log = logging.getLogger("labkit")
T = TypeVar("T")


# --------------------------------------------------------------------------- checks of the request


def check_request(cni: str, kube_proxy_mode: str | None) -> None:
    """Refuse a CNI or kube-proxy mode the sandbox cannot model, saying where to go instead."""
    check_cni(cni)
    if cni == "cilium":
        if kube_proxy_mode not in (None, "", "none"):
            raise LabError(
                f"The sandbox models Cilium only with its kube-proxy replacement, not with "
                f"kube-proxy in {kube_proxy_mode} mode.",
                "Leave out --kube-proxy-mode (or pass none) for --cni cilium on the sandbox; "
                "Cilium beside kube-proxy runs on the Kind backend.",
            )
        return
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
    cni: str = DEFAULT_CNI,
    kube_proxy_mode: str | None = None,
    *,
    quiet: bool = False,
) -> SandboxLab:
    """Build lab ``lab_name``: nodes, fabric, outside, CNI, kube-proxy rules, CoreDNS, the agent.

    A lab of the same name and CNI is reused (a dead agent restarted), and one whose namespaces
    are gone is rebuilt from its state with every object kept; only the leftovers of a lab that
    never finished building are cleared first. A new lab that fails midway is torn down, so there
    is never a half-built one. ``quiet`` prints neither the steps nor the closing summary.
    """
    naming.check_lab_name(lab_name)
    check_request(cni, kube_proxy_mode)
    check_machine()
    with lifecycle_lock(lab_name):
        return _up_locked(lab_name, cni, quiet)


def _up_locked(lab_name: str, cni: str, quiet: bool) -> SandboxLab:
    from labkit.sandbox.agent.client import start_agent
    from labkit.sandbox.store import ClusterStore

    existing = attach(lab_name)
    if existing is not None:
        _refuse_another_cni(lab_name, existing.cni, cni)
        log.info("sandbox lab %r (%s) is already running; using it.", lab_name, cni)
        return existing
    recorded = _recorded_state(lab_name)
    if recorded is not None:
        _refuse_another_cni(lab_name, recorded["cni"], cni)
        return _rebuild(lab_name, recorded, quiet)
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
                created = time.time()
                store = ClusterStore.bootstrap(lab_name, cni, wall_clock, created_at(created))
                state_file.write(building_state(lab_name, cni, store.to_dict(), created))
            return _build(state_file, store, agent, progress, "Starting system pods")
    except BaseException:
        if agent is not None:
            agent.join()  # so that down() finds and stops an agent that was still starting
        with contextlib.suppress(Exception):
            down(lab_name)
        raise


def _refuse_another_cni(lab_name: str, running: str, asked: str) -> None:
    """Refuse to reuse a lab for another CNI than the one it was built with."""
    if running != asked:
        raise LabError(
            f"A sandbox lab named {lab_name!r} is already running with {running}.",
            f"Use it, or remove it first with `labkit down --name {lab_name}` to build one "
            f"with {asked}.",
        )


def _recorded_state(lab_name: str) -> dict[str, Any] | None:
    """The state of a lab that was built (or was being rebuilt), which ``up`` rebuilds rather
    than clears; None when there is none, or only a lab that never finished building."""
    try:
        state = StateFile(naming.state_dir(lab_name)).read()
    except LabError:
        return None
    return state if state.get("phase") in ("ready", REPAIRING) else None


def _rebuild(lab_name: str, recorded: dict[str, Any], quiet: bool) -> SandboxLab:
    """Build lab ``lab_name``'s namespaces, agent and pods anew from its state, every object
    kept (its namespaces were removed by hand, or a rebuild was stopped midway)."""
    from labkit.sandbox.agent.client import start_agent
    from labkit.sandbox.store import ClusterStore

    log.info(
        "lab %r is recorded but its namespaces are not all there; rebuilding them from its "
        "state (every object is kept).",
        lab_name,
    )
    progress = StepList(quiet=quiet)
    state_file = StateFile(naming.state_dir(lab_name))
    with state_file.locked():
        with progress.step(f"Clearing what is left of lab {lab_name!r}'s namespaces"):
            # Until the rebuild ends, the state records no pod network: none can be trusted.
            state_file.write({**recorded, "phase": REPAIRING, "pods": {}})
            _clear_data_plane(lab_name)
        agent = _Background(start_agent, str(state_file.directory))
        try:
            return _build(
                state_file,
                ClusterStore.from_dict(recorded["store"], wall_clock),
                agent,
                progress,
                "Starting the lab's pods again",
            )
        except BaseException:
            agent.join()
            raise


def _build(
    state_file: StateFile,
    store: ClusterStore,
    agent: _Background[int],
    progress: StepList,
    pods_step: str,
) -> SandboxLab:
    """Build the namespaces of the lab whose state ``state_file`` holds (locked), wait for its
    agent, start the pods of ``store`` and record the lab as ready."""
    state = state_file.read()
    lab_name, cni = state["name"], state["cni"]
    with progress.step(f"Building 3 node namespaces, the fabric switch and the {cni} network"):
        nodes = fabric.node_nets(lab_name, cni, store.nodes())
        fabric_runner.run_stages(
            fabric.underlay_plan(lab_name, cni, nodes, world_addresses()), f"build lab {lab_name!r}"
        )
        netns_etc.write_node_etc([naming.outside_netns(lab_name), *(n.netns for n in nodes)])
        addresses = (state.get("outside") or {}).get("addresses")
        if addresses:
            leftovers.outside_routes(lab_name, addresses)
    with progress.step("Starting the workload agent"):
        agent.result()
    lab = SandboxLab(lab_name, state_file)
    services = "Cilium's Service translation" if lab.cni == "cilium" else "kube-proxy rules"
    with progress.step(f"{pods_step}, {services} and cluster DNS"):
        lab.finish_up(store)
    progress.say(_summary(lab, store, progress.started_at))
    return lab


def _summary(lab: SandboxLab, store: ClusterStore, started: float) -> str:
    """The closing lines of ``up``: time taken, CNI and policy, nodes, pods, outside."""
    running = [p for p in store.pods() if pod_ip(p)]
    node_text = ", ".join(f"{n.name} {n.internal_ip}" for n in store.nodes())
    policy = "enforced" if lab.capabilities.network_policy else f"NOT enforced ({lab.cni})"
    mode = lab.capabilities.kube_proxy_mode
    proxy = "kube-proxy replaced by Cilium" if mode == "none" else f"kube-proxy {mode}"
    return (
        f"Lab {lab.name!r} is up in {time.monotonic() - started:.2f} s: sandbox backend, "
        f"CNI {lab.cni}, {proxy}, NetworkPolicy {policy}.\n  nodes: {node_text}\n"
        f"  {len(running)} pod(s) running; outside client {fabric.GATEWAY_IP} "
        f"(namespace {naming.outside_netns(lab.name)}); namespaces start with "
        f"{naming.lab_prefix(lab.name)}\n  outside world: {', '.join(world_names())} "
        f"(resolver {fabric.GATEWAY_IP})"
    )


def attach(lab_name: str = DEFAULT_LAB_NAME) -> SandboxLab | None:
    """Lab ``lab_name`` as its state records it, or None when no built lab of that name is here
    or its node namespaces are gone (``up`` rebuilds those from the state).

    The state is the truth: an agent that died is started again, and a change that a killed
    command left half done is finished first, so every object the learner applied is there.
    """
    try:
        naming.check_lab_name(lab_name)
    except LabError:
        return None
    state_file = StateFile(naming.state_dir(lab_name))
    try:
        if state_file.read().get("phase") != "ready":
            return None
    except LabError:  # no state, or damaged
        return None
    if not all(NETNS_DIR.joinpath(n).exists() for n in _fixed_netns(lab_name)):
        return None
    try:
        lab = SandboxLab(lab_name)
        lab.heal()
    except LabError:
        if state_file.exists():
            raise
        return None  # taken down meanwhile
    return lab


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
    directory = naming.state_dir(lab_name)
    found = directory.exists()
    # The state goes first: a down killed midway leaves leftovers that the next `up` clears,
    # never a lab recorded as built with parts missing (which `up` would rebuild).
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / STATE_FILE)
    found |= _clear_data_plane(lab_name)
    netns_etc.remove_empty_etc_netns()
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        naming.STATE_ROOT.rmdir()
    return found


def _clear_data_plane(lab_name: str) -> bool:
    """Stop the lab's agent and what runs in its namespaces, delete the namespaces and their
    /etc/netns entries (the state is left alone); whether there was any of it."""
    from labkit.sandbox.agent.client import stop_agent

    stopped = stop_agent(str(naming.state_dir(lab_name)), grace=0.5)
    namespaces = [n for n in fabric_runner.list_netns() if naming.is_lab_netns(lab_name, n)]
    fabric_runner.stop_processes_in(namespaces)
    problems = fabric_runner.delete_netns(namespaces)
    etc = [n for n in _etc_netns_entries() if naming.is_lab_netns(lab_name, n)]
    netns_etc.remove_pod_etc(etc)
    still = [n for n in fabric_runner.list_netns() if naming.is_lab_netns(lab_name, n)]
    if still:
        raise LabError(
            f"Could not remove {len(still)} namespace(s) of lab {lab_name!r}: {', '.join(still)}.",
            "A process may hold them mounted: run `ip netns pids NAME` to find it, stop it, then "
            f"`labkit down --name {lab_name}` again.",
            output="\n".join(problems),
        )
    return stopped or bool(namespaces) or bool(etc)


def names() -> list[str]:
    """Every sandbox lab on this machine: those with state, and those with leftover namespaces."""
    return list(labnames.scan().names)


def summaries() -> list[LabSummary]:
    """Every sandbox lab on this machine with its CNI, status, creation time and the RSS of its
    processes; read-only (unlike ``attach``, it repairs nothing)."""
    found = names()
    memory = footprint.rss_mb(found)
    present = set(fabric_runner.list_netns())
    listed = []
    for lab_name in found:
        try:
            state = StateFile(naming.state_dir(lab_name)).read()
        except LabError:
            state = {}
        listed.append(
            LabSummary(
                lab_name,
                "sandbox",
                state.get("cni"),
                lab_status(state.get("phase"), set(_fixed_netns(lab_name)) <= present),
                state.get("created"),
                memory[lab_name],
            )
        )
    return listed


def lab_status(phase: str | None, namespaces_present: bool) -> str:
    """A lab's one-word status from its state's phase and whether its fixed namespaces exist:
    Ready; Broken (namespaces gone: ``up`` rebuilds it); Building or Repairing (a command is at
    it, or died midway); Leftovers (no state: ``down`` clears them)."""
    if phase == "ready":
        return "Ready" if namespaces_present else "Broken"
    if phase == REPAIRING:
        return "Repairing"
    if phase == "building":
        return "Building"
    return "Leftovers"


def doctor_checks(cni: str | None = None) -> list[DoctorLine]:
    """What the sandbox needs of this machine, each failing line naming the fix (the same for
    every CNI it models)."""
    return machine_checks()
