"""The known traps of a Kind host, each a `labkit doctor` line with its fix: cgroup v1 (and WSL2's
cgroups), kernels too old for Cilium or nftables, loading images offline (judged on what the
Docker engine reports, so skipped in one line without one), then IPVS, firewalld's nftables
backend and a Calico pool over the host's own networks (judged on this host).

``gather`` is the one function that reads the machine (/proc/modules, /sys/module, firewalld's
config, ``ip -j route``; the engine's facts come from the caller's one ``dockerhost.read``);
every judgement below is pure, so tests hand it made-up facts.
The README's "Known traps" table lists ``NAMES`` one for one (a unit test checks).
"""

from __future__ import annotations

import ipaddress
import json
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labkit.kind import config as kind_config
from labkit.kind import dockerhost, pins
from labkit.kind.dockerhost import DockerHost
from labkit.values import DoctorLine

ENGINE_NAMES = (
    "cgroup v2",
    "WSL2 cgroups",
    "kernel for Cilium",
    "kernel for nftables mode",
    "offline images",
)
"""The traps judged on the Docker engine's own facts (`docker info`), in engine_lines' order."""
NAMES = (
    *ENGINE_NAMES,
    "inotify limits",
    "IPVS modules",
    "firewalld backend",
    "Calico pool and host routes",
)
"""Every trap's line name, in doctor's order (inotify's line comes from doctor.py)."""

CILIUM_MIN_KERNEL = (5, 10)
"""Cilium's Documentation/operations/system_requirements.rst: Linux kernel >= 5.10."""
CILIUM_KPR_MIN_KERNEL = (5, 14)
"""Cilium's Documentation/installation/kind.rst: the socket LB (kube-proxy-free) on Kind needs
cgroup v2 and a 5.14+ kernel (or net_cls/net_prio disabled)."""
NFTABLES_MIN_KERNEL = (5, 13)
"""kubernetes/website reference/node/kernel-version-requirements.md: nftables mode needs 5.13+."""
IPVS_MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack")
"""kube-proxy's pkg/proxy/ipvs/util/ipvs.go KernelModuleIPVS* and KernelModuleNfConntrack."""
SYS_MODULE = Path("/sys/module")
FIREWALLD_CONF = Path("/etc/firewalld/firewalld.conf")
CALICO_POOL = ipaddress.ip_network(kind_config.POD_SUBNETS["calico"])


@dataclass(frozen=True)
class HostFacts:
    """What this host's traps are judged on (the engine's own facts are a DockerHost). ``local``
    says whether Docker's kernel is this machine's (Linux, not Docker Desktop's VM), the only
    case where modules, firewalld and routes seen here are the ones Kind's nodes meet."""

    local: bool
    modules: frozenset[str] | None = None
    """Modules /proc/modules lists plus IPVS ones /sys/module shows; None if neither is readable."""
    modules_listed: bool = True
    """Whether /proc/modules was read: without it only /sys/module speaks, where a built-in module
    shows only if it has a parameter (ip_vs does, its schedulers do not)."""
    firewalld_backend: str | None = None
    routes: tuple[str, ...] | None = None


# --------------------------------------------------------------------------- reading the machine


def parse_firewalld_backend(text: str) -> str:
    """FirewallBackend in firewalld.conf; nftables (firewalld's default) when it is absent."""
    for line in text.splitlines():
        match = re.match(r"\s*FirewallBackend\s*=\s*(\S+)", line)
        if match:
            return match.group(1).strip().lower()
    return "nftables"


def parse_routes(json_text: str) -> tuple[str, ...] | None:
    """Destinations of `ip -j route`, e.g. ("default", "192.168.1.0/24"); None if unreadable."""
    try:
        routes = json.loads(json_text)
    except json.JSONDecodeError:
        return None
    if not isinstance(routes, list):
        return None
    return tuple(str(r.get("dst")) for r in routes if isinstance(r, dict) and r.get("dst"))


def loaded_modules(
    proc_modules: str | None, sys_module: Path = SYS_MODULE
) -> frozenset[str] | None:
    """Modules /proc/modules lists (None: unreadable), plus IPVS ones /sys/module/<name> shows
    (loaded or built in); None when neither can be read."""
    if proc_modules is None and not sys_module.is_dir():
        return None
    listed = {line.split(" ", 1)[0] for line in (proc_modules or "").splitlines() if line.strip()}
    in_sysfs = {name for name in IPVS_MODULES if (sys_module / name).is_dir()}
    return frozenset(listed | in_sysfs)


def _read_routes() -> tuple[str, ...] | None:
    if not shutil.which("ip"):
        return None
    try:
        proc = subprocess.run(
            ["ip", "-j", "-4", "route", "show", "table", "all"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_routes(proc.stdout) if proc.returncode == 0 else None


def gather(docker: DockerHost | None) -> HostFacts:
    """Read every fact this host's traps need; ``docker`` (the caller's one read, None: no engine
    answered) says whether Docker runs on this kernel or in Docker Desktop's VM."""
    local = platform.system() == "Linux" and (
        docker is None or docker.operating_system != "Docker Desktop"
    )
    if not local:
        return HostFacts(local=False)
    proc_modules: str | None
    try:
        proc_modules = Path("/proc/modules").read_text()
    except OSError:
        proc_modules = None
    try:
        firewalld = parse_firewalld_backend(FIREWALLD_CONF.read_text())
    except OSError:
        firewalld = None
    return HostFacts(
        True,
        loaded_modules(proc_modules),
        proc_modules is not None,
        firewalld,
        _read_routes(),
    )


# --------------------------------------------------------------------------- judging them

_NOT_HERE = "not visible from here: Docker runs in a VM (Docker Desktop), which sets it"
SKIPPED = "Docker host checks"
"""The one line that stands for the checks no engine could answer (engine_lines' and others)."""


def skipped_line(names: tuple[str, ...]) -> DoctorLine:
    """One warning for every check that judges the engine's own facts, when no engine answered:
    what was skipped, why, and the way on (start Docker, or stay on the sandbox)."""
    return DoctorLine(
        SKIPPED,
        False,
        f"skipped: {', '.join(names[:-1])} and {names[-1]} are judged on what a Docker engine "
        "reports (`docker info`), and none answered",
        "Start Docker as the Docker engine line says, then run `labkit doctor` again; the "
        "sandbox backend needs none of these.",
        required=False,
    )


def show(version: tuple[int, ...]) -> str:
    """A kernel version as people write it (5.15)."""
    return ".".join(str(v) for v in version)


def cgroup_line(host: DockerHost) -> DoctorLine:
    """Kubernetes 1.35+ kubelets refuse cgroup v1 (KEP-5573), and the node image is 1.36; on WSL2
    the fix is wsl2_line's, so this line points there instead of repeating it."""
    if host.cgroup_version == "2":
        return DoctorLine("cgroup v2", True, "Docker runs its containers on cgroup v2")
    if host.cgroup_version != "1":
        return DoctorLine(
            "cgroup v2",
            False,
            "Docker did not report its cgroup version",
            "Update Docker (20.10 and later report CgroupVersion in `docker info`).",
            required=False,
        )
    return DoctorLine(
        "cgroup v2",
        False,
        dockerhost.cgroup_v1_problem(),
        "This is WSL2: the fix is on the `WSL2 cgroups` line just below."
        if host.wsl2
        else dockerhost.cgroup_v1_fix(host),
    )


def wsl2_line(host: DockerHost) -> DoctorLine:
    """WSL2 kernels can leave cgroups half v1 (kind's known issue "Failure to Create Cluster on
    WSL2": `error adding pid ... to cgroups`); this line names the WSL2 way to cgroup v2."""
    if not host.wsl2:
        return DoctorLine("WSL2 cgroups", True, "Docker's kernel is not a WSL2 kernel")
    if host.cgroup_version == "2":
        return DoctorLine("WSL2 cgroups", True, "WSL2 with cgroup v2")
    return DoctorLine(
        "WSL2 cgroups",
        False,
        "WSL2 on cgroup v1: kind fails with `error adding pid ... to cgroups` and kubelet 1.36 "
        "refuses cgroup v1",
        dockerhost.cgroup_v1_fix(host),
    )


def _no_kernel_version(name: str, host: DockerHost) -> DoctorLine:
    return DoctorLine(
        name,
        False,
        f"unknown: Docker reported no kernel version labkit can read ({host.kernel or 'none'})",
        "Run `docker info --format '{{.KernelVersion}}'`: it must print the engine's kernel "
        "release (like 6.8.0-45-generic); update Docker if it does not.",
        required=False,
    )


def cilium_line(host: DockerHost, cni: str | None) -> DoctorLine:
    """Cilium needs kernel 5.10+; its kube-proxy-free mode on Kind, cgroup v2 and 5.14+."""
    name = "kernel for Cilium"
    required = cni == "cilium"
    kernel = host.kernel_version
    if kernel is None:
        return _no_kernel_version(name, host)
    if kernel < CILIUM_MIN_KERNEL:
        return DoctorLine(
            name,
            False,
            f"kernel {host.kernel} is older than 5.10, Cilium {pins.CILIUM_VERSION}'s minimum",
            "Use a host (or Docker Desktop) with kernel 5.10 or newer, or choose --cni calico.",
            required,
        )
    if kernel < CILIUM_KPR_MIN_KERNEL or host.cgroup_version != "2":
        return DoctorLine(
            name,
            False,
            f"kernel {host.kernel} runs Cilium, but not its kube-proxy-free mode on Kind, which "
            "needs cgroup v2 and kernel 5.14+",
            "Keep kube-proxy with Cilium (--kube-proxy-mode iptables), or move to a 5.14+ "
            "kernel on cgroup v2 before using --kube-proxy-mode none.",
            required=False,
        )
    return DoctorLine(name, True, f"kernel {host.kernel}: Cilium and its kube-proxy-free mode run")


def nftables_line(host: DockerHost) -> DoctorLine:
    """kube-proxy's nftables mode needs kernel 5.13+ (older ones only with a skip flag)."""
    name = "kernel for nftables mode"
    kernel = host.kernel_version
    if kernel is None:
        return _no_kernel_version(name, host)
    if kernel < NFTABLES_MIN_KERNEL:
        return DoctorLine(
            name,
            False,
            f"kernel {host.kernel} is older than {show(NFTABLES_MIN_KERNEL)}, which kube-proxy's "
            "nftables mode needs",
            "Keep the default --kube-proxy-mode iptables on this host, or move to kernel 5.13+.",
            required=False,
        )
    return DoctorLine(name, True, f"kernel {host.kernel}: --kube-proxy-mode nftables works")


def ipvs_line(facts: HostFacts) -> DoctorLine:
    """IPVS mode is deprecated since 1.35 (KEP-5495) and needs the ip_vs modules on the host;
    without /proc/modules, /sys/module/ip_vs still shows a loaded or built-in ip_vs."""
    name = "IPVS modules"
    deprecated = "IPVS mode is deprecated since Kubernetes 1.35; nftables is its successor"
    only = f"only --kube-proxy-mode ipvs needs them, and {deprecated}"
    modprobe = f"sudo modprobe -a {' '.join(IPVS_MODULES)}"
    if not facts.local:
        return DoctorLine(name, True, f"{_NOT_HERE}; {deprecated}", required=False)
    if facts.modules is None:
        return DoctorLine(
            name,
            False,
            "unknown: this system shows neither /proc/modules nor /sys/module, so labkit cannot "
            f"tell whether the IPVS modules are there; {only}",
            "Nothing to do for the default kube-proxy mode. For IPVS (prefer nftables): check "
            f"with `lsmod | grep ip_vs`, and load them: {modprobe}.",
            required=False,
        )
    if not facts.modules_listed:
        if "ip_vs" in facts.modules:
            return DoctorLine(
                name,
                True,
                "ip_vs is in this kernel (/sys/module/ip_vs); with no /proc/modules here its "
                f"schedulers cannot be listed; {deprecated}",
                required=False,
            )
        return DoctorLine(
            name,
            False,
            "ip_vs is not in this kernel: there is no /sys/module/ip_vs (a loaded or built-in "
            f"ip_vs shows there) and no /proc/modules; {only}",
            "Nothing to do for the default kube-proxy mode. For IPVS (prefer nftables): "
            f"{modprobe}; a kernel that cannot load modules needs one built with IP_VS.",
            required=False,
        )
    missing = [m for m in IPVS_MODULES if m not in facts.modules]
    if missing:
        return DoctorLine(
            name,
            False,
            f"not loaded: {', '.join(missing)}; {only}",
            f"Prefer --kube-proxy-mode nftables; for IPVS: sudo modprobe -a {' '.join(missing)}.",
            required=False,
        )
    return DoctorLine(name, True, f"ip_vs modules loaded; {deprecated}", required=False)


def firewalld_line(facts: HostFacts) -> DoctorLine:
    """kind's known issue (Fedora): firewalld's nftables backend keeps Kind nodes apart."""
    name = "firewalld backend"
    if not facts.local:
        return DoctorLine(name, True, _NOT_HERE, required=False)
    if facts.firewalld_backend is None:
        return DoctorLine(name, True, "firewalld is not installed")
    if facts.firewalld_backend == "nftables":
        return DoctorLine(
            name,
            False,
            "firewalld uses its nftables backend (Fedora's default), which can keep Kind's "
            "nodes from reaching each other",
            "sudo sed -i 's/^FirewallBackend=.*/FirewallBackend=iptables/' "
            "/etc/firewalld/firewalld.conf && sudo systemctl restart firewalld",
            required=False,
        )
    return DoctorLine(name, True, f"firewalld uses its {facts.firewalld_backend} backend")


def calico_routes_line(facts: HostFacts, cni: str | None) -> DoctorLine:
    """Calico's pool 192.168.0.0/16 over a network the host routes: pods could not reach it."""
    name = "Calico pool and host routes"
    if not facts.local:
        return DoctorLine(name, True, f"{_NOT_HERE} (the VM's routes)", required=False)
    if facts.routes is None:
        return DoctorLine(
            name,
            False,
            "cannot read this host's routes (`ip -j route` failed)",
            "Install iproute2, then run `labkit doctor` again.",
            required=False,
        )
    overlaps = []
    for dst in facts.routes:
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue  # "default", multicast names and the like
        if net.version == 4 and net.prefixlen > 0 and net.overlaps(CALICO_POOL):
            overlaps.append(str(net))
    if overlaps:
        return DoctorLine(
            name,
            False,
            f"this host routes {', '.join(overlaps)}, inside Calico's pool {CALICO_POOL}: pods "
            "would not reach those addresses"
            + (" (your lab uses Calico)" if cni == "calico" else ""),
            "Use --cni flannel or cilium (pods in 10.244.0.0/16) on this network, or move the "
            "host's network (or Docker's default-address-pools) out of 192.168.0.0/16.",
            required=False,
        )
    return DoctorLine(name, True, f"no host route overlaps Calico's pool {CALICO_POOL}")


def offline_line(host: DockerHost) -> DoctorLine:
    """Offline images: `kind load` needs --name <lab>, and multi-arch images fail to load from
    Docker's containerd image store (kind#3795), so save one platform first."""
    name = "offline images"
    load = "kind load docker-image IMAGE --name <lab> (without --name it loads into `kind`)"
    if host.containerd_store:
        arch = dockerhost.DOCKER_ARCHES.get(host.architecture.lower(), "<arch>")
        return DoctorLine(
            name,
            False,
            "Docker keeps images in the containerd image store: `kind load docker-image` fails "
            "for multi-arch images (`ctr: content digest ... not found`)",
            f"Save one platform and load the archive: docker image save --platform linux/{arch} "
            "-o image.tar IMAGE && kind load image-archive image.tar --name <lab>.",
            required=False,
        )
    return DoctorLine(name, True, f"classic image store: {load}")


def engine_lines(host: DockerHost, cni: str | None) -> list[DoctorLine]:
    """The traps judged on the engine's facts, in ENGINE_NAMES order (without an engine,
    skipped_line stands for them all)."""
    return [
        cgroup_line(host),
        wsl2_line(host),
        cilium_line(host, cni),
        nftables_line(host),
        offline_line(host),
    ]


def host_lines(facts: HostFacts, cni: str | None) -> list[DoctorLine]:
    """The traps judged on this host (IPVS, firewalld, routes), in NAMES order."""
    return [ipvs_line(facts), firewalld_line(facts), calico_routes_line(facts, cni)]
