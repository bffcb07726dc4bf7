"""What `labkit ls` shows of Kind labs: each cluster's CNI, state, age and memory, from Docker.

Kind labels every node container ``io.x-k8s.kind.cluster=<name>``; one ``docker ps`` gives each
cluster's nodes, their state and creation time, one ``docker stats --no-stream`` their memory
(what Docker counts for the container: the whole node, kubelet and pods included), and the CNI
is read from the conflist its installer wrote into the control plane's ``/etc/cni/net.d``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from labkit.errors import LabError
from labkit.kind import tools
from labkit.values import LabSummary

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
PS_FORMAT = f'{{{{.Label "{CLUSTER_LABEL}"}}}}\t{{{{.Names}}}}\t{{{{.State}}}}\t{{{{.CreatedAt}}}}'
STATS_FORMAT = "{{.Name}}\t{{.MemUsage}}"
CNI_FILES = (
    ("calico", "calico"),
    ("flannel", "flannel"),
    ("cilium", "cilium"),
    ("kindnet", "kindnet"),
)
"""A conflist name's mark and the CNI it stands for (``10-calico.conflist``, ``05-cilium...``)."""
_UNITS = {
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE = re.compile(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*")


@dataclass
class Cluster:
    """One Kind cluster's node containers as Docker lists them."""

    nodes: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    created: float | None = None


def parse_ps(text: str) -> dict[str, Cluster]:
    """``docker ps -a --format PS_FORMAT`` lines grouped by cluster; the earliest node's
    creation time is the cluster's."""
    clusters: dict[str, Cluster] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0]:
            continue
        name, node, state, created = parts
        cluster = clusters.setdefault(name, Cluster())
        cluster.nodes.append(node)
        cluster.states.append(state)
        when = docker_time(created)
        if when is not None and (cluster.created is None or when < cluster.created):
            cluster.created = when
    return clusters


def docker_time(text: str) -> float | None:
    """Docker's ``CreatedAt`` (``2026-12-06 18:00:00 +0000 UTC``) as ``time.time()`` seconds."""
    try:
        return datetime.strptime(" ".join(text.split()[:3]), "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return None


def size_mib(text: str) -> float | None:
    """A size as Docker prints it (``1.2GiB``, ``796 KiB``, ``3.5MB``) in MiB, or None."""
    match = _SIZE.fullmatch(text)
    if match is None or match.group(2).lower() not in _UNITS:
        return None
    return float(match.group(1)) * _UNITS[match.group(2).lower()] / 1024**2


def parse_stats(text: str) -> dict[str, float]:
    """``docker stats --no-stream --format STATS_FORMAT`` lines: container -> MiB in use."""
    found = {}
    for line in text.splitlines():
        name, _, usage = line.partition("\t")
        used = size_mib(usage.split("/", 1)[0])
        if name and used is not None:
            found[name] = used
    return found


def cni_of(conflists: str) -> str | None:
    """The CNI whose conflist ``ls /etc/cni/net.d`` shows, or None."""
    for mark, cni in CNI_FILES:
        if any(mark in name for name in conflists.split()):
            return cni
    return None


def status_of(states: Iterable[str]) -> str:
    """Running when every node container runs, else Stopped."""
    return "Running" if all(state == "running" for state in states) else "Stopped"


def summaries(names: Iterable[str]) -> list[LabSummary]:
    """The named Kind clusters with what Docker knows of them; a fact Docker does not answer
    stays unknown rather than failing the listing."""
    wanted = list(names)
    if not wanted:
        return []
    try:
        ps = tools.run(
            ["docker", "ps", "-a", "--filter", f"label={CLUSTER_LABEL}", "--format", PS_FORMAT],
            check=False,
            timeout=30,
        )
        clusters = parse_ps(ps.stdout)
        running = [
            node
            for c in clusters.values()
            for node, state in zip(c.nodes, c.states, strict=True)
            if state == "running"
        ]
        memory = {}
        if running:
            stats = tools.run(
                ["docker", "stats", "--no-stream", "--format", STATS_FORMAT, *running],
                check=False,
                timeout=60,
            )
            memory = parse_stats(stats.stdout)
    except LabError:
        clusters, memory = {}, {}
    listed = []
    for name in wanted:
        cluster = clusters.get(name, Cluster())
        used = [memory[node] for node in cluster.nodes if node in memory]
        listed.append(
            LabSummary(
                name,
                "kind",
                _cni(f"{name}-control-plane") if cluster.nodes else None,
                status_of(cluster.states) if cluster.nodes else "Unknown",
                cluster.created,
                sum(used) if used else None,
            )
        )
    return listed


def _cni(control_plane: str) -> str | None:
    """The CNI installed on a cluster, from its control plane's CNI configuration folder."""
    try:
        proc = tools.run(
            ["docker", "exec", control_plane, "ls", "/etc/cni/net.d"], check=False, timeout=30
        )
    except LabError:
        return None
    return cni_of(proc.stdout) if proc.returncode == 0 else None
