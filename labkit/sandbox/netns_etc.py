"""The files ``ip netns exec`` mounts over ``/etc`` for a lab's namespaces
(``/etc/netns/<name>/``): a pod's resolv.conf and hosts as the kubelet writes them, and the
resolv.conf of nodes and the outside client (the outside world's resolver, as on a Kind node).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from labkit.sandbox import naming
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.outside_world import node_resolv_conf


def hosts_file(pod: PodNet) -> str:
    """The pod's /etc/hosts, as the kubelet writes it."""
    return (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        f"{pod.ip}\t{pod.name}\n"
    )


def write_pod_etc(pod: PodNet, resolv_conf: str) -> None:
    """``/etc/netns/<pod netns>/{resolv.conf,hosts}``: ``ip netns exec`` mounts them over /etc."""
    folder = naming.NETNS_ETC / pod.netns
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / "resolv.conf", resolv_conf)
    _write_atomic(folder / "hosts", hosts_file(pod))


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
