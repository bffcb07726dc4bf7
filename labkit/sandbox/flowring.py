"""A lab's bounded ring of flow records, ``flows.jsonl`` in its state directory: the agent appends
what the data plane logged, ``hubble observe`` reads it back after the fact (like Hubble's ring
buffer of the last flows)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from labkit.model.hubble import Flow, PacketRecord, Peer, flow_of, peers_of

FLOW_FILE = "flows.jsonl"
CAPACITY = 4096
"""Records kept; Hubble's default ring (``hubble-event-buffer-capacity``) holds 4095 flows."""


class FlowRing:
    """Appends records to ``flows.jsonl``, keeping the newest CAPACITY (the file is cut back to
    them, atomically, once it holds twice that)."""

    def __init__(self, state_dir: str, capacity: int = CAPACITY) -> None:
        self.path = os.path.join(state_dir, FLOW_FILE)
        self.capacity = capacity
        self.count = len(read_records(state_dir))

    def append(self, records: Iterable[PacketRecord]) -> None:
        """Add records at the end, then trim when the file has grown to twice the capacity."""
        lines = [json.dumps(r.to_dict(), separators=(",", ":")) + "\n" for r in records]
        if not lines:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.writelines(lines)
        self.count += len(lines)
        if self.count >= 2 * self.capacity:
            with open(self.path, encoding="utf-8") as fh:
                kept = fh.readlines()[-self.capacity :]
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines(kept)
            os.replace(tmp, self.path)
            self.count = len(kept)


def read_records(state_dir: str) -> list[PacketRecord]:
    """Every record in a lab's ring, oldest first (a torn or foreign line is skipped)."""
    records: list[PacketRecord] = []
    try:
        with open(os.path.join(state_dir, FLOW_FILE), encoding="utf-8") as fh:
            for line in fh:
                try:
                    records.append(PacketRecord.from_dict(json.loads(line)))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return records


def lab_flows(
    state_dir: str, pods: list[dict[str, Any]], nodes: list[dict[str, Any]]
) -> list[Flow]:
    """The ring's records as Hubble's flows, oldest first: each address looked up among the
    lab's pods and nodes as the agent on the node that logged it sees them."""
    peers: dict[str, dict[str, Peer]] = {}
    flows: list[Flow] = []
    for record in read_records(state_dir):
        if record.node not in peers:
            peers[record.node] = peers_of(pods, nodes, record.node)
        flows.append(flow_of(record, peers[record.node]))
    return flows
