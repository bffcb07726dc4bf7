"""What a command killed midway can leave in a lab's data plane, found and removed: pod
namespaces, node-side pod veths and ``/etc/netns`` entries the saved state does not record, and
outside address routes it does not list.

The next command removes them before it converges, so nothing a dead process left makes ``ip``
answer "File exists", and the data plane goes back to what the state says.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence

from labkit.errors import LabError
from labkit.sandbox import fabric, fabric_runner, naming, netns_etc
from labkit.sandbox.fabric import Job, NodeNet, PodNet
from labkit.sandbox.outside_world import world_addresses


def pod_namespaces(lab_name: str) -> set[str]:
    """The pod namespaces of lab ``lab_name`` that exist on this machine."""
    return {n for n in fabric_runner.list_netns() if naming.is_lab_pod_netns(lab_name, n)}


def pod_etc_entries(lab_name: str) -> set[str]:
    """The ``/etc/netns`` folders of lab ``lab_name``'s pods."""
    try:
        entries = os.listdir(naming.NETNS_ETC)
    except FileNotFoundError:
        return set()
    return {n for n in entries if naming.is_lab_pod_netns(lab_name, n)}


def _own_netns(built: Mapping[str, PodNet]) -> set[str]:
    return {net.netns for net in built.values() if not net.host_network}


def untracked(lab_name: str, built: Mapping[str, PodNet]) -> bool:
    """Whether the pod namespaces or their ``/etc/netns`` folders differ from what ``built``
    records (a cheap look: two directory listings)."""
    wanted = _own_netns(built)
    return pod_namespaces(lab_name) != wanted or pod_etc_entries(lab_name) != wanted


def intact(lab_name: str, built: Mapping[str, PodNet]) -> dict[str, PodNet]:
    """The pods of ``built`` whose namespace and ``/etc/netns`` folder both exist."""
    present = pod_namespaces(lab_name) & pod_etc_entries(lab_name)
    return {k: n for k, n in built.items() if n.host_network or n.netns in present}


def remove_untracked(
    lab_name: str, nodes: Sequence[NodeNet], keep: Mapping[str, PodNet]
) -> list[str]:
    """Remove every pod veth, pod namespace and pod ``/etc/netns`` folder of the lab that ``keep``
    does not hold; returns what was removed. Veths go first: a namespace that a process still
    holds outlives its name, and so would its veth."""
    keep_netns = _own_netns(keep)
    keep_ifaces = {(net.node, net.iface) for net in keep.values() if not net.host_network}
    removed: list[str] = []
    jobs = []
    for node in nodes:
        stale = [
            link
            for link in _links(node.netns)
            if naming.is_pod_host_iface(link) and (node.name, link) not in keep_ifaces
        ]
        if stale:
            jobs.append(Job(node.netns, force=True).ip(*(f"link del {link}" for link in stale)))
            removed += [f"veth {link} on {node.name}" for link in stale]
    fabric_runner.run_stages([jobs], "remove pod veths left behind", ignore_errors=True)
    spare = sorted(pod_namespaces(lab_name) - keep_netns)
    fabric_runner.delete_netns(spare)
    removed += [f"namespace {name}" for name in spare]
    etc = sorted(pod_etc_entries(lab_name) - keep_netns)
    netns_etc.remove_pod_etc(etc)
    removed += [f"/etc/netns/{name}" for name in etc]
    left = pod_namespaces(lab_name) - keep_netns
    if left:
        raise LabError(
            f"Could not remove {len(left)} pod namespace(s) that lab {lab_name!r} left behind: "
            f"{', '.join(sorted(left))}.",
            "A process may hold them: `ip netns pids NAME` finds it; stop it and try again.",
        )
    return removed


def _links(netns: str) -> list[str]:
    """The interface names in a namespace (none when it cannot be read)."""
    proc = subprocess.run(
        ["ip", "-n", netns, "-o", "link", "show"], capture_output=True, text=True, timeout=10
    )
    return [line.split(": ", 2)[1].split("@", 1)[0] for line in proc.stdout.splitlines()]


def outside_routes(lab_name: str, addresses: Iterable[str]) -> list[str]:
    """Make the outside namespace's address ranges exactly ``addresses`` (the saved state's):
    add the missing, remove the others; returns the ranges removed."""
    netns = naming.outside_netns(lab_name)
    proc = subprocess.run(
        ["ip", "-n", netns, "-o", "route", "show", "table", "local", "type", "local", "dev", "lo"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    present = {
        str(ipaddress.ip_network(line.split()[1]))
        for line in proc.stdout.splitlines()
        if line.startswith("local ") and "proto kernel" not in line
    }
    wanted = {str(ipaddress.ip_network(a, strict=False)) for a in [*addresses, *world_addresses()]}
    gone = sorted(present - wanted)
    lines = [
        *(line for a in gone for line in fabric.outside_address_lines(a, present=False)),
        *(line for a in sorted(wanted) for line in fabric.outside_address_lines(a)),
    ]
    fabric_runner.run_stages(
        [[Job(netns).ip(*lines)]], f"restore the outside addresses of lab {lab_name!r}"
    )
    return gone
