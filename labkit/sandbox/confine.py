"""How a pod's or a node's commands are confined: the ``bwrap`` (bubblewrap) command line that
runs them in their own mount, PID, UTS and IPC namespaces inside the lab namespace that
``ip netns exec`` has entered (and over whose ``/etc`` it has mounted ``/etc/netns/<netns>/*``).

Each command is like an ephemeral debug container (``kubectl debug --image=netshoot``) attached to
the pod: it shares the pod's network and nothing else of the host's. It sees the host's tools
read-only, private /tmp and /run that end with it, only its own processes, the pod's hostname,
and holds a container's network capabilities but not CAP_SYS_ADMIN, so it can neither write the
host's files nor enter another namespace. Pure: the caller finds ``bwrap`` and reads the host's
root layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.errors import LabError
from labkit.inputs import check_hand_netns
from labkit.model.podidentity import pod_hostname
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.naming import PREFIX, STATE_ROOT

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""A container's default PATH (the host's own PATH names folders the sandbox does not show)."""

ROOT_ENTRIES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
"""Top-level folders besides /usr that hold tools or libraries (symlinks into /usr on merged-usr
systems, real folders on older ones)."""

CAPABILITIES = (
    "CAP_NET_ADMIN",  # netshoot's addition: ip, iptables, tc, conntrack in its own namespace
    "CAP_NET_RAW",  # ping, tcpdump, raw sockets
    "CAP_NET_BIND_SERVICE",  # listen on ports below 1024, as any container may
    "CAP_SETUID",  # tcpdump hands its capture to user tcpdump (Debian's build), as in a container
    "CAP_SETGID",
    "CAP_CHOWN",  # tcpdump -w gives its file to that user
)
"""A container's network capabilities; everything else (CAP_SYS_ADMIN above all) is dropped."""

_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?")


@dataclass(frozen=True)
class Confinement:
    """Who a command runs as: a pod (or the outside client), or a node's shell, and its
    hostname."""

    hostname: str
    node: bool = False
    """A node's shell also writes its own network sysctls (``sysctl -w net.ipv4...``), as a
    privileged Kind node does; a pod reads them only, as in Kubernetes."""
    etc: tuple[tuple[str, str], ...] = ()
    """Files shown read-only over ``/etc``, ``(host path, name)``: a host-network pod's own
    resolv.conf and hosts, which kubelet mounts over the node's."""
    netns: tuple[tuple[str, str], ...] = ()
    """A node shell's hand-made namespaces, ``(lab namespace, name)``: each is shown read-only at
    ``/run/netns/<name>``, so ``ip link set X netns <name>`` works there and nothing else does."""


def bwrap_argv(confinement: Confinement, root: Mapping[str, str | None]) -> list[str]:
    """``bwrap ... --``, to put before a command that ``ip netns exec`` runs.

    ``root`` maps each of :data:`ROOT_ENTRIES` the host has to its symlink target (``None``: a
    real folder); names it lacks are left out.
    """
    hostname = confinement.hostname
    if not _HOSTNAME.fullmatch(hostname):
        raise LabError(
            f"{hostname!r} cannot be a hostname.",
            "Name pods and nodes as Kubernetes does: lower-case letters, digits, '-' and '.', "
            "at most 64 characters.",
        )
    # The network namespace is shared, and there is no user namespace of its own: the
    # capabilities below then count in the lab's network namespace.
    argv = [
        "bwrap",
        "--unshare-pid",  # ps shows only this command's processes
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname,
        "--die-with-parent",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ROOT_ENTRIES:
        if name in root:
            target = root[name]
            argv += (
                ["--ro-bind", f"/{name}", f"/{name}"]
                if target is None
                else ["--symlink", target, f"/{name}"]
            )
    argv += [
        "--ro-bind",  # the tools' configuration; bwrap binds recursively, so the pod's
        "/etc",  # resolv.conf and hosts that ip netns exec mounted stay on top
        "/etc",
        *_etc_files(confinement.etc),
        "--ro-bind",  # the sysfs ip netns exec mounted for this network namespace
        "/sys",
        "/sys",
        "--proc",
        "/proc",
        "--ro-bind",  # uid 0 may write many sysctls without any capability
        "/proc/sys",
        "/proc/sys",
    ]
    if confinement.node:
        argv += ["--bind", "/proc/sys/net", "/proc/sys/net"]  # this network namespace's only
    shown = []
    for netns, name in confinement.netns:
        if not netns.startswith(PREFIX) or "/" in netns:
            raise LabError(f"{netns!r} is not a lab network namespace.", "Use the lab's own.")
        shown += ["--ro-bind", f"/run/netns/{netns}", f"/run/netns/{check_hand_netns(name)}"]
    argv += [
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--tmpfs",  # hides /run/netns and /run/labkit; a writable home for xtables.lock
        "/run",
        *shown,  # then a node's hand-made namespaces, on top
        "--dir",
        "/root",
        "--chdir",
        "/",
        "--clearenv",
        "--setenv",
        "PATH",
        PATH,
        "--setenv",
        "HOME",
        "/root",
        "--setenv",
        "HOSTNAME",
        hostname,
        "--cap-drop",
        "ALL",
    ]
    for capability in CAPABILITIES:
        argv += ["--cap-add", capability]
    return [*argv, "--"]


ETC_FILES = ("resolv.conf", "hosts")
"""The files kubelet mounts into every container's /etc."""


def _etc_files(files: tuple[tuple[str, str], ...]) -> list[str]:
    argv = []
    for source, name in files:
        inside = source.startswith(f"{STATE_ROOT}/") and ".." not in source.split("/")
        if name not in ETC_FILES or not inside:
            raise LabError(f"{name!r} from {source!r} is not a pod's /etc file.", "Use the lab's.")
        argv += ["--ro-bind", source, f"/etc/{name}"]
    return argv


def pod_confinement(pod: Mapping[str, Any], net: PodNet, etc_dir: str = "") -> Confinement:
    """A pod's commands carry its hostname; a host-network pod's, its node's (as in
    Kubernetes), with its own resolv.conf and hosts from ``etc_dir`` over the node's."""
    if net.host_network:
        files = tuple((f"{etc_dir}/{name}", name) for name in ETC_FILES) if etc_dir else ()
        return Confinement(net.node, etc=files)
    return Confinement(pod_hostname(net.name, (pod.get("spec") or {}).get("hostname")))


def command_argv(command: str | Sequence[str]) -> list[str]:
    """A shell string runs through ``sh -c`` (pipes work); a list runs as given."""
    if isinstance(command, str):
        if not command.strip():
            raise LabError(
                "No command was given to run.", "Pass a command, e.g. 'ip addr' or ['ip', 'addr']."
            )
        return ["sh", "-c", command]
    return [str(c) for c in command]
