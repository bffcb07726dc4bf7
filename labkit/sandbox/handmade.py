"""Network namespaces a learner makes by hand on a sandbox lab's nodes (``lab.netns_add``), as
``ip netns add`` on a node makes them: recorded in the lab's state by node, created as
``lk-<lab>-h.<node>.<name>`` (:func:`naming.hand_netns`), and kept equal to that record (one made
by a command killed before it was recorded goes; a recorded one that is gone is forgotten).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.sandbox import fabric_runner, naming, netns_etc
from labkit.sandbox.fabric import Job, NodeNet

STATE_KEY = "hand"
"""Where the state records them: ``{"hand": {node name: [names]}}``."""


def recorded(state: Mapping[str, Any]) -> dict[str, list[str]]:
    """The hand-made namespaces a state records, by node name."""
    return {node: list(names) for node, names in (state.get(STATE_KEY) or {}).items()}


def wanted(lab_name: str, nodes: Sequence[NodeNet], record: Mapping[str, list[str]]) -> set[str]:
    """The lab namespaces that ``record`` stands for."""
    return {
        naming.hand_netns(lab_name, n.short, name) for n in nodes for name in record.get(n.name, [])
    }


def present(lab_name: str) -> set[str]:
    """The hand-made namespaces of lab ``lab_name`` that exist on this machine."""
    return {n for n in fabric_runner.list_netns() if naming.is_lab_hand_netns(lab_name, n)}


def create(netns: str) -> None:
    """An empty namespace (``lo`` only, down) with the node's resolv.conf, as on the node."""
    fabric_runner.run_stages([[Job(None).ip(f"netns add {netns}")]], f"create namespace {netns}")
    netns_etc.write_node_etc([netns])


def remove(netns_names: Iterable[str]) -> None:
    """Delete namespaces (the processes left in them first; their veths go with them)."""
    names = list(netns_names)
    fabric_runner.stop_processes_in(names)
    fabric_runner.delete_netns(names)
    netns_etc.remove_pod_etc(names)


def settle(
    lab_name: str, nodes: Sequence[NodeNet], record: Mapping[str, list[str]]
) -> dict[str, list[str]]:
    """Make the machine and the record agree: remove unrecorded namespaces, forget the recorded
    ones that are gone; returns the record to keep."""
    there, recorded_netns = present(lab_name), wanted(lab_name, nodes, record)
    remove(sorted(there - recorded_netns))
    netns_etc.remove_pod_etc(sorted(recorded_netns - there))
    return {
        n.name: [
            x for x in record.get(n.name, []) if naming.hand_netns(lab_name, n.short, x) in there
        ]
        for n in nodes
        if record.get(n.name)
    }
