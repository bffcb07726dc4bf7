"""The agent's ``workloads.json`` as text, from parts encoded once (issue 18): each pod's workload
entry while its uid, resourceVersion and network stay, and each Service's and pod's DNS rows while
their stamps do (``dns_record_cache``). A change encodes what it touched and joins the rest; the
text is what ``json.dumps`` writes of the whole document."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.sandbox.dns_record_cache import ServiceRecordCache, Stamp, pod_stamp
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.workloads import served_pods, workload_entry


def _list(items: Iterable[str]) -> str:
    """Encoded items as ``json.dumps`` writes their list."""
    return "[" + ", ".join(items) + "]"


class WorkloadsJson:
    """``workloads.json`` for one data plane, its pods' entries and DNS rows kept between
    changes."""

    def __init__(self) -> None:
        self.records = ServiceRecordCache()
        self._entries: dict[str, tuple[Stamp, PodNet, str]] = {}

    def text(
        self,
        pods: Sequence[Mapping[str, Any]],
        nets: Mapping[str, PodNet],
        services: Sequence[Mapping[str, Any]],
        slices: Sequence[Mapping[str, Any]],
        more_workloads: list[dict[str, Any]],
        sections: Mapping[str, Any],
    ) -> str:
        """The document: ``workloads`` (each pod the agent serves, then ``more_workloads``),
        ``dns_records`` (rows ``[name, type, value, ttl]``, in any order) and then ``sections``,
        each encoded whole, in their order."""
        fields = {
            "workloads": _list([*self._pod_entries(pods, nets), *map(json.dumps, more_workloads)]),
            "dns_records": _list(self.records.encoded(services, slices, pods)),
            **{key: json.dumps(value) for key, value in sections.items()},
        }
        return "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in fields.items()) + "}"

    def _pod_entries(
        self, pods: Sequence[Mapping[str, Any]], nets: Mapping[str, PodNet]
    ) -> list[str]:
        """Each served pod's entry, encoded again only when the pod or its network changed."""
        kept: dict[str, tuple[Stamp, PodNet, str]] = {}
        out = []
        for pod, net in served_pods(pods, nets):
            stamp = pod_stamp(pod)
            known = self._entries.get(net.key)
            if stamp is not None and known is not None and known[:2] == (stamp, net):
                encoded = known[2]
            else:
                encoded = json.dumps(workload_entry(pod, net))
            if stamp is not None:
                kept[net.key] = (stamp, net, encoded)
            out.append(encoded)
        self._entries = kept
        return out
