"""Names of everything a sandbox lab creates: network namespaces, interfaces, state paths.

Every namespace is ``lk-<lab_name>-<role>``, and the roles form a closed set, so a lab's namespaces
are matched exactly: lab ``a`` never claims lab ``a-b``'s. Interface names fit the kernel's
15-character limit (IFNAMSIZ - 1).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from labkit.errors import LabError
from labkit.inputs import HAND_NETNS_PATTERN, check_hand_netns

PREFIX = "lk-"
IFNAME_MAX = 15
STATE_ROOT = Path("/run/labkit")
NETNS_ETC = Path("/etc/netns")

NODE_SHORTS = ("cp", "w1", "w2")
"""Namespace suffixes of the nodes, in node order (control plane, worker, worker2)."""
FIXED_ROLES = (*NODE_SHORTS, "fabric", "outside")
POD_HASH_LEN = 10

FABRIC_BRIDGE = "br-kind"
"""The underlay switch in the fabric namespace (kind's docker network is named ``kind``)."""
OUTSIDE_PORT = "veth-outside"
OUTSIDE_UPLINK = "uplink"
OUTSIDE_UPLINK_FAR = "uplink-far"
"""The outside's default route leaves by ``uplink``; its peer ``uplink-far``, in the same
namespace, drops what arrives (a host's way to the rest of the world, closed)."""

_LAB_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


def check_lab_name(lab_name: str) -> str:
    """Refuse a lab name that is not a short DNS label (it becomes part of namespace names)."""
    if not isinstance(lab_name, str) or not _LAB_NAME.fullmatch(lab_name):
        raise LabError(
            f"{lab_name!r} is not a usable lab name.",
            "Use 1-40 lower-case letters, digits or '-', starting and ending with a "
            "letter or digit (e.g. netlab).",
        )
    return lab_name


def lab_prefix(lab_name: str) -> str:
    """``lk-<lab_name>-``: the start of every namespace name of this lab."""
    return f"{PREFIX}{check_lab_name(lab_name)}-"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def node_netns(lab_name: str, index: int) -> str:
    """Namespace of node ``index`` (0 control plane, 1 worker, 2 worker2)."""
    return f"{lab_prefix(lab_name)}{NODE_SHORTS[index]}"


def fabric_netns(lab_name: str) -> str:
    """Namespace holding the underlay bridge that joins the nodes (like kind's docker network)."""
    return f"{lab_prefix(lab_name)}fabric"


def outside_netns(lab_name: str) -> str:
    """Namespace of the client and addresses outside the cluster (172.18.0.1, the gateway)."""
    return f"{lab_prefix(lab_name)}outside"


def hand_netns(lab_name: str, short: str, name: str) -> str:
    """Namespace a learner made on node ``short`` (``lk-<lab_name>-h.<short>.<name>``): the dots,
    which lab names never hold, keep one lab from claiming another's."""
    return f"{lab_prefix(lab_name)}h.{short}.{check_hand_netns(name)}"


def pod_hash(namespace: str, name: str) -> str:
    """Ten hex characters identifying a pod within a lab (from ``namespace/name``)."""
    return _digest(f"{namespace}/{name}")[:POD_HASH_LEN]


def pod_netns(lab_name: str, namespace: str, name: str) -> str:
    """Namespace of one pod: ``lk-<lab_name>-p-<hash>``; every container of the pod shares it."""
    return f"{lab_prefix(lab_name)}p-{pod_hash(namespace, name)}"


def pod_host_iface(cni: str, namespace: str, name: str) -> str:
    """Node-side name of a pod's veth: ``veth`` + 8 hex for Flannel's bridge plugin,
    ``cali`` + the first 11 hex of sha1(``namespace.name``) as Calico names it, and ``lxc`` +
    the first 12 hex of sha256 of the endpoint's id as Cilium names it (``namespace/name``
    stands in for the container id)."""
    if cni == "calico":
        return "cali" + _digest(f"{namespace}.{name}")[:11]
    if cni == "cilium":
        return "lxc" + hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:12]
    return "veth" + _digest(f"{namespace}/{name}")[:8]


def node_fabric_port(short: str) -> str:
    """Fabric-side name of a node's uplink veth (``veth-cp``...)."""
    return f"veth-{short}"


def vtep_mac(index: int) -> str:
    """A stable, locally administered MAC for node ``index``'s ``flannel.1`` (flannel publishes
    the real one in a node annotation; here it is fixed so every node can be told it)."""
    tail = _digest(f"flannel.1/{index}")[:8]
    return "0e:" + ":".join(tail[i : i + 2] for i in range(0, 8, 2)) + f":{index:02x}"


def calico_vtep_mac(node_name: str) -> str:
    """The MAC of ``vxlan.calico`` on a node, as Felix derives it when no annotation sets one:
    the byte ``f`` (0x66) and the first 5 bytes of the SHA-1 of the node's name."""
    tail = hashlib.sha1(node_name.encode()).digest()[:5]
    return ":".join(f"{b:02x}" for b in b"f" + tail)


def cilium_vxlan_mac(index: int) -> str:
    """A fixed, locally administered MAC for node ``index``'s ``cilium_vxlan``, so every other
    node's route to it can name it (Cilium's eBPF sets the inner MAC itself)."""
    tail = _digest(f"cilium_vxlan/{index}")[:8]
    return "0e:" + ":".join(tail[i : i + 2] for i in range(0, 8, 2)) + f":{index:02x}"


def bridge_mac(label: str) -> str:
    """A fixed, locally administered MAC for a bridge (``cni0`` of a node, the fabric switch).

    Without one a Linux bridge takes the lowest MAC of its ports and changes it as ports come
    and go; pods that cached the old gateway MAC would then have their packets bridged (and
    flooded) instead of routed. The CNI bridge plugin pins cni0's MAC for the same reason.
    """
    tail = _digest(f"bridge/{label}")[:10]
    return "0a:" + ":".join(tail[i : i + 2] for i in range(0, 10, 2))


def is_lab_netns(lab_name: str, netns: str) -> bool:
    """Whether ``netns`` is exactly one of lab ``lab_name``'s namespaces (never another lab's)."""
    return _netns_pattern(lab_name).fullmatch(netns) is not None


def is_lab_pod_netns(lab_name: str, netns: str) -> bool:
    """Whether ``netns`` is the namespace of one of lab ``lab_name``'s pods."""
    return _pod_pattern(lab_name).fullmatch(netns) is not None


@functools.lru_cache(maxsize=64)
def _pod_pattern(lab_name: str) -> re.Pattern[str]:
    """Lab ``lab_name``'s pod namespace names, compiled once: every command lists the machine's
    namespaces to find what a killed one left (hundreds of names at 300 pods, issue 18)."""
    return re.compile(rf"{re.escape(lab_prefix(lab_name))}p-[0-9a-f]{{{POD_HASH_LEN}}}")


_POD_HOST_IFACE = re.compile(r"veth[0-9a-f]{8}|cali[0-9a-f]{11}|lxc[0-9a-f]{12}")


def is_pod_host_iface(name: str) -> bool:
    """Whether ``name`` is the node side of a pod's veth as :func:`pod_host_iface` names them."""
    return _POD_HOST_IFACE.fullmatch(name) is not None


_ROLES = (
    f"{'|'.join(FIXED_ROLES)}|p-[0-9a-f]{{{POD_HASH_LEN}}}"
    + rf"|h\.(?:{'|'.join(NODE_SHORTS)})\.{HAND_NETNS_PATTERN}"
)
"""Every role of a lab's namespaces: nodes, fabric, outside, pods, and hand-made ones."""


def _netns_pattern(lab_name: str) -> re.Pattern[str]:
    return re.compile(re.escape(lab_prefix(lab_name)) + f"(?:{_ROLES})")


def is_lab_hand_netns(lab_name: str, netns: str) -> bool:
    """Whether ``netns`` is a namespace a learner made on one of lab ``lab_name``'s nodes."""
    return _hand_pattern(lab_name).fullmatch(netns) is not None


@functools.lru_cache(maxsize=64)
def _hand_pattern(lab_name: str) -> re.Pattern[str]:
    """Lab ``lab_name``'s hand-made namespace names, compiled once (see ``_pod_pattern``)."""
    pattern = rf"{re.escape(lab_prefix(lab_name))}h\.(?:{'|'.join(NODE_SHORTS)})\."
    return re.compile(pattern + HAND_NETNS_PATTERN)


def labs_of(netns_names: list[str]) -> set[str]:
    """The lab names that a list of namespace names belongs to (for `names()` after a crash)."""
    found = set()
    pattern = re.compile(rf"{re.escape(PREFIX)}(.+)-(?:{_ROLES})")
    for name in netns_names:
        match = pattern.fullmatch(name)
        if match and _LAB_NAME.fullmatch(match.group(1)):
            found.add(match.group(1))
    return found


def state_dir(lab_name: str) -> Path:
    """``/run/labkit/<lab_name>``: state file, lock, agent files."""
    return STATE_ROOT / check_lab_name(lab_name)


def check_ifname(name: str) -> str:
    """Refuse an interface name the kernel would reject (empty, too long, or with '/' or spaces)."""
    if not name or len(name) > IFNAME_MAX or any(c in name for c in "/ \t\n:"):
        raise ValueError(f"invalid interface name {name!r} (at most {IFNAME_MAX} characters)")
    return name
