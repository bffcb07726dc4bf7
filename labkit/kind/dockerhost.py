"""What the Docker engine that runs Kind's nodes is: cgroup version, CPU architecture, kernel,
image store and memory, from one `docker info --format '{{json .}}'` (the call kind's docker
provider makes).

``parse`` is pure; ``read`` is the only function here that runs anything, so tests fake it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from labkit.errors import LabError
from labkit.kind import tools

Version = tuple[int, ...]

DOCKER_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
"""Docker's `Architecture` (the engine host's `uname -m`) -> the platform name release files use."""

CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
"""The `driver-type` Docker reports in DriverStatus when it keeps images in containerd's store."""


@dataclass(frozen=True)
class DockerHost:
    """The facts of `docker info` labkit judges; empty strings where Docker left a field out."""

    cgroup_version: str
    architecture: str
    kernel: str
    operating_system: str
    containerd_store: bool
    mem_total: int | None = None
    """Bytes of memory the engine's host has (Docker Desktop: its VM's); None if not reported."""

    @property
    def kernel_version(self) -> Version | None:
        """The kernel's X.Y(.Z) as numbers (5.15.153.1-microsoft-standard-WSL2 -> (5, 15, 153))."""
        match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", self.kernel)
        if not match:
            return None
        return tuple(int(g) for g in match.groups() if g is not None)

    @property
    def wsl2(self) -> bool:
        """Whether the engine runs in WSL2 (Docker Desktop on Windows, or Docker inside a WSL2
        distribution): its kernel names itself so."""
        return "microsoft" in self.kernel.lower() or "wsl2" in self.kernel.lower()


def parse(text: str) -> DockerHost | None:
    """A DockerHost from `docker info --format '{{json .}}'` output; None when it is not that."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(info, dict):
        return None
    status = info.get("DriverStatus") or []
    containerd = any(
        isinstance(pair, list) and pair[:2] == ["driver-type", CONTAINERD_SNAPSHOTTER]
        for pair in status
    )
    mem_total = info.get("MemTotal")
    return DockerHost(
        cgroup_version=str(info.get("CgroupVersion") or ""),
        architecture=str(info.get("Architecture") or ""),
        kernel=str(info.get("KernelVersion") or ""),
        operating_system=str(info.get("OperatingSystem") or ""),
        containerd_store=containerd,
        mem_total=mem_total if type(mem_total) is int and mem_total > 0 else None,
    )


def read(timeout: float = 15.0) -> DockerHost | None:
    """The engine's facts, or None when no engine answers (no docker command, daemon down)."""
    try:
        proc = tools.run(["docker", "info", "--format", "{{json .}}"], check=False, timeout=timeout)
    except LabError:
        return None
    return parse(proc.stdout) if proc.returncode == 0 else None


def platform_arch(machine: str) -> str:
    """The release-file architecture (amd64/arm64) of a `uname -m`-style machine name."""
    arch = DOCKER_ARCHES.get(machine.strip().lower())
    if arch is None:
        raise LabError(
            f"Docker's CPU architecture ({machine}) has no pinned containernetworking plugins.",
            "Run the Flannel lab on an amd64 or arm64 machine, or choose --cni calico or cilium.",
        )
    return arch


def cgroup_v1_problem() -> str:
    """Why a cgroup v1 engine cannot run the pinned node image."""
    return (
        "Docker runs its containers on cgroup v1, and the pinned node image's kubelet "
        "(Kubernetes 1.36) refuses to start there: failCgroupV1 defaults to true since 1.35 "
        "(KEP-5573). kind only warns, then fails inside `kubeadm init`."
    )


def cgroup_v1_fix(host: DockerHost) -> str:
    """How to move this engine to cgroup v2 (WSL2 and Linux differ), or to the sandbox."""
    check = "`docker info --format '{{.CgroupVersion}}'` must then print 2"
    if host.wsl2:
        return (
            "Switch WSL2 to cgroup v2: in %UserProfile%\\.wslconfig, under [wsl2], add "
            "`kernelCommandLine = cgroup_no_v1=all`, run `wsl --shutdown`, start Docker again; "
            f"{check}."
        )
    if host.operating_system == "Docker Desktop":
        return f"Update Docker Desktop (current releases run their VM on cgroup v2); {check}."
    return (
        "Boot the host with cgroup v2: add systemd.unified_cgroup_hierarchy=1 to the kernel "
        "command line (`sudo grubby --update-kernel=ALL "
        "--args=systemd.unified_cgroup_hierarchy=1`, or GRUB_CMDLINE_LINUX in /etc/default/grub "
        f"and `sudo update-grub`) and reboot; {check}. Or use the sandbox backend "
        "(`sudo labkit up --backend sandbox`)."
    )
