"""The files ``ip netns exec`` mounts over ``/etc`` for a lab's namespaces
(``/etc/netns/<name>/``): a pod's resolv.conf (from its dnsPolicy and dnsConfig) and hosts as
the kubelet writes them, and the resolv.conf of nodes and the outside client (the outside
world's resolver, as on a Kind node).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from labkit.model.dns import poddns
from labkit.model.dns.resolver import DNS_SERVICE_IP
from labkit.model.podidentity import host_alias_lines, pod_hosts_file
from labkit.sandbox import naming
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.outside_world import node_resolv_conf


def pod_resolv_conf(pod: Mapping[str, Any], namespace: str) -> str:
    """The pod's resolv.conf as kubelet composes it from its dnsPolicy and dnsConfig, starting
    from the node's resolv.conf for Default (and ClusterFirst host-network) pods."""
    return poddns.pod_resolv_conf(
        pod.get("spec") or {}, namespace, node_resolv_conf(), (DNS_SERVICE_IP,)
    )


def write_pod_etc(net: PodNet, pod: Mapping[str, Any]) -> None:
    """``/etc/netns/<pod netns>/{resolv.conf,hosts}``: ``ip netns exec`` mounts them over /etc."""
    folder = naming.NETNS_ETC / net.netns
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / "resolv.conf", pod_resolv_conf(pod, net.namespace))
    _write_atomic(folder / "hosts", pod_hosts_file(pod, [net.ip]))


HOST_NETWORK_ETC = "pod-etc"
"""The folder of the lab's state where host-network pods' resolv.conf and hosts live."""


def write_host_network_etc(state_dir: Path, pod: Mapping[str, Any], net: PodNet) -> Path:
    """A host-network pod's resolv.conf (its dnsPolicy over the node's) and hosts (the node's
    /etc/hosts and its hostAliases, kubelet's nodeHostsFileContent), written anew; their
    folder."""
    folder = state_dir / HOST_NETWORK_ETC / f"{net.namespace}.{net.name}"
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / "resolv.conf", pod_resolv_conf(pod, net.namespace))
    node_hosts = Path("/etc/hosts").read_text(encoding="utf-8", errors="replace")
    aliases = (pod.get("spec") or {}).get("hostAliases") or ()
    _write_atomic(folder / "hosts", node_hosts + host_alias_lines(aliases))
    return folder


def remove_host_network_etc(state_dir: Path, nets: Iterable[PodNet]) -> None:
    """Remove the folders :func:`write_host_network_etc` wrote for these pods."""
    for net in nets:
        shutil.rmtree(
            state_dir / HOST_NETWORK_ETC / f"{net.namespace}.{net.name}", ignore_errors=True
        )


def write_node_etc(netns_names: Iterable[str]) -> None:
    """``/etc/netns/<node or outside>/resolv.conf``: the outside world's resolver, never the host's
    nameserver, which the lab cannot reach."""
    for name in netns_names:
        folder = naming.NETNS_ETC / name
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "resolv.conf", node_resolv_conf())


def remove_pod_etc(netns_names: Iterable[str]) -> None:
    """Remove ``/etc/netns/<name>`` for each name (missing ones are fine)."""
    for name in netns_names:
        if name.startswith(naming.PREFIX) and "/" not in name:
            shutil.rmtree(naming.NETNS_ETC / name, ignore_errors=True)


def remove_empty_etc_netns() -> None:
    """Remove ``/etc/netns`` itself when nothing is left in it (labs create it on demand)."""
    with contextlib.suppress(OSError):  # rmdir refuses a directory that is not empty
        naming.NETNS_ETC.rmdir()  # we created it, nobody else uses it


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
