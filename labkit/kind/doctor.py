"""`labkit doctor` lines for the Kind backend: Docker, kind, kubectl, helm, kernel limits, memory
and the known traps of `traps` (no host ports: the configs map none, so a running lab never makes
a line fail).

The parsing and thresholds are pure functions; ``kind_checks`` gathers the facts (the engine's
from one ``dockerhost.read``) and judges them.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from labkit.kind import dockerhost, pins, tools, traps
from labkit.machine import docker_engine_answers
from labkit.values import DoctorLine

Version = tuple[int, ...]
"""A tool's version as numbers, (1, 36, 1); compares as versions do."""

MIN_WATCHES = 524288
MIN_INSTANCES = 512
MIN_MEMORY_BYTES = 6 * 1024**3
"""Recommended free memory for three nodes plus a CNI (Calico and Cilium are the hungriest)."""

INOTIFY_FIX = (
    f"sudo sysctl fs.inotify.max_user_watches={MIN_WATCHES} "
    f"fs.inotify.max_user_instances={MIN_INSTANCES} "
    "(to keep it: write both settings to /etc/sysctl.d/99-kind.conf)."
)
BR_NETFILTER_FIX = (
    "sudo modprobe br_netfilter (to keep it: echo br_netfilter | sudo tee "
    "/etc/modules-load.d/br_netfilter.conf)."
)


# --------------------------------------------------------------------------- pure parts


def parse_version(text: str) -> Version | None:
    """The first vX.Y.Z (or X.Y.Z) in a tool's version output."""
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def parse_kubectl_version(json_text: str) -> Version | None:
    """Client version from `kubectl version --client -o json` (gitVersion, e.g. v1.36.1)."""
    try:
        info = json.loads(json_text).get("clientVersion") or {}
    except (json.JSONDecodeError, AttributeError):
        return parse_version(json_text)
    return parse_version(
        info.get("gitVersion") or f"{info.get('major', '')}.{info.get('minor', '')}"
    )


def show(version: Version) -> str:
    """A version as tools print it (v1.36.1)."""
    return "v" + ".".join(str(v) for v in version)


def judge_kind(version: Version | None) -> tuple[bool, str]:
    """kind must be at least the pinned release (its node images need it)."""
    if version is None:
        return False, "kind printed no version"
    if version < pins.KIND_MIN_VERSION:
        return (
            False,
            f"kind {show(version)} is older than {pins.KIND_VERSION}, the first release "
            "that supports the pinned node image",
        )
    return True, f"kind {show(version)}"


def judge_kubectl(version: Version | None) -> tuple[bool, str]:
    """kubectl within one minor version of the cluster (Kubernetes 1.36), as Kubernetes supports."""
    if version is None or len(version) < 2:
        return False, "kubectl printed no version"
    major, minor = version[:2]
    skew = abs(minor - pins.KUBERNETES_MINOR) if major == 1 else 99
    if skew > 1:
        return False, (
            f"kubectl {show(version)} is more than one minor version away from the cluster's "
            f"1.{pins.KUBERNETES_MINOR}"
        )
    return True, f"kubectl {show(version)}"


def judge_helm(version: Version | None) -> tuple[bool, str]:
    """Helm 3 or newer installs the Cilium chart."""
    if version is None:
        return False, "helm printed no version"
    if version < (3,):
        return False, f"helm {show(version)} is too old (Helm 3 or newer is needed)"
    return True, f"helm {show(version)}"


def judge_inotify(watches: int | None, instances: int | None) -> tuple[bool, str]:
    """Kind's multi-node clusters need max_user_watches >= 524288 and max_user_instances >= 512."""
    if watches is None or instances is None:
        return False, "cannot read fs.inotify limits from /proc/sys"
    low = []
    if watches < MIN_WATCHES:
        low.append(f"max_user_watches={watches} (< {MIN_WATCHES})")
    if instances < MIN_INSTANCES:
        low.append(f"max_user_instances={instances} (< {MIN_INSTANCES})")
    if low:
        return False, "too low for three nodes: " + ", ".join(low)
    return True, f"max_user_watches={watches}, max_user_instances={instances}"


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes per field (MemTotal, MemAvailable, ...)."""
    out = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+):\s+(\d+)\s*(kB)?", line)
        if match:
            out[match.group(1)] = int(match.group(2)) * (1024 if match.group(3) else 1)
    return out


def judge_memory(available: int | None, where: str = "free") -> tuple[bool, str]:
    """At least 6 GiB is recommended for three nodes and a CNI."""
    if available is None:
        return False, "cannot tell how much memory is free"
    gib = available / 1024**3
    if available < MIN_MEMORY_BYTES:
        return False, f"{gib:.1f} GiB {where}; 6 GiB is recommended for three nodes"
    return True, f"{gib:.1f} GiB {where}"


def br_netfilter_loaded(proc_modules: str, in_sys_module: bool, bridge_sysctls: bool) -> bool:
    """br_netfilter is there when /proc/modules lists it, /sys/module has it, or its sysctls
    (/proc/sys/net/bridge) exist: the one sign a built-in br_netfilter, which has no parameter
    to show in /sys/module, leaves."""
    return (
        in_sys_module
        or bridge_sysctls
        or any(line.split(" ", 1)[0] == "br_netfilter" for line in proc_modules.splitlines())
    )


# --------------------------------------------------------------------------- probes of this host


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tool_version(tool: str, argv: list[str]) -> tuple[str | None, str]:
    """(output, "") when the tool ran, (None, reason) when it is missing or failed."""
    if not shutil.which(tool):
        return None, "not found on PATH"
    try:
        proc = tools.run([tool, *argv], check=False, timeout=20)
    except Exception as exc:
        return None, getattr(exc, "what", str(exc))
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
    return proc.stdout, ""


# --------------------------------------------------------------------------- the lines


def _tool_line(
    tool: str,
    argv: list[str],
    parse: Callable[[str], Version | None],
    judge: Callable[[Version | None], tuple[bool, str]],
    required: bool,
    why: str,
    version_required: bool = True,
) -> DoctorLine:
    """A tool's line: missing is a failure (if required); a judged version problem may be a
    warning."""
    out, problem = _tool_version(tool, argv)
    if out is None:
        return DoctorLine(
            f"{tool} on PATH", False, f"{problem} ({why})", tools.INSTALL_HINTS[tool], required
        )
    ok, detail = judge(parse(out))
    return DoctorLine(
        f"{tool} on PATH",
        ok,
        detail,
        "" if ok else tools.INSTALL_HINTS[tool],
        required and (ok or version_required),
    )


def kind_checks(cni: str | None = None) -> list[DoctorLine]:
    """Every check the Kind backend needs; ``cni`` makes helm (cilium) and br_netfilter (flannel)
    required."""
    linux = platform.system() == "Linux"
    lines: list[DoctorLine] = []

    ok, why = docker_engine_answers()
    lines.append(
        DoctorLine(
            "Docker engine",
            ok,
            why,
            ""
            if ok
            else (
                "Start Docker (Docker Desktop, or `sudo systemctl start docker` on Linux) and "
                "make sure `docker info` works for your user; without Docker, use the sandbox "
                "backend (`sudo labkit up --backend sandbox`)."
            ),
        )
    )
    host = dockerhost.read() if ok else None
    if host is not None:
        lines += traps.engine_lines(host, cni)
    else:
        lines.append(traps.skipped_line(traps.ENGINE_NAMES + (() if linux else ("free memory",))))

    lines.append(
        _tool_line("kind", ["version"], parse_version, judge_kind, True, "it creates the clusters")
    )
    lines.append(
        _tool_line(
            "kubectl",
            ["version", "--client", "-o", "json"],
            parse_kubectl_version,
            judge_kubectl,
            True,
            "every lab step uses it",
            version_required=False,
        )
    )
    lines.append(
        _tool_line(
            "helm",
            ["version", "--short"],
            parse_version,
            judge_helm,
            cni == "cilium",
            "needed for the Cilium lab only" if cni != "cilium" else "the Cilium lab needs it",
        )
    )

    if linux:
        ok, detail = judge_inotify(
            _read_int("/proc/sys/fs/inotify/max_user_watches"),
            _read_int("/proc/sys/fs/inotify/max_user_instances"),
        )
        lines.append(DoctorLine("inotify limits", ok, detail, "" if ok else INOTIFY_FIX))
        try:
            proc_modules = Path("/proc/modules").read_text()
        except OSError:
            proc_modules = ""
        loaded = br_netfilter_loaded(
            proc_modules,
            Path("/sys/module/br_netfilter").is_dir(),
            Path("/proc/sys/net/bridge").is_dir(),
        )
        lines.append(
            DoctorLine(
                "br_netfilter module",
                loaded,
                "loaded or built in (net.bridge.bridge-nf-call-iptables exists)"
                if loaded
                else "not loaded (Flannel's bridged pod traffic skips iptables)",
                "" if loaded else BR_NETFILTER_FIX,
                required=cni == "flannel",
            )
        )
        try:
            available = parse_meminfo(Path("/proc/meminfo").read_text()).get("MemAvailable")
        except OSError:
            available = None
        lines.append(memory_line(*judge_memory(available, "available")))
    else:
        note = "checked inside Docker Desktop's Linux VM, not visible from here"
        lines.append(DoctorLine("inotify limits", True, note, required=False))
        lines.append(DoctorLine("br_netfilter module", True, note, required=False))
        if host is not None:  # without an engine, the skipped line names this check
            lines.append(memory_line(*judge_memory(host.mem_total, "given to Docker")))
    lines += traps.host_lines(traps.gather(host), cni)
    return lines


def memory_line(ok: bool, detail: str) -> DoctorLine:
    """The free-memory finding: advice, never a failure (a lab may still fit)."""
    return DoctorLine(
        "free memory",
        ok,
        detail,
        ""
        if ok
        else (
            "Close other programs or give Docker more memory "
            "(Docker Desktop: Settings > Resources); the sandbox backend needs far less."
        ),
        required=False,
    )
