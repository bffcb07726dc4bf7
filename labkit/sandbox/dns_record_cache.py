"""Cluster DNS records kept per Service and per pod between syncs, as the agent's rows encoded
for ``workloads.json``: a Service whose object and slices kept their resourceVersions keeps its
rows, and so does a pod that kept its own, so one change re-derives and re-encodes one Service's
or pod's records (issue 18)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.model.dns.names import CLUSTER_DOMAIN, cluster_zone
from labkit.model.dns.records import (
    DEFAULT_TTL,
    Record,
    pod_records,
    service_key,
    service_records,
    slices_by_service,
    version_record,
)
from labkit.model.objects import meta, name_of, namespace_of, stamp_of

Stamp = tuple[str, tuple[str, ...]]


def _stamp(svc: Mapping[str, Any], slices: list[Mapping[str, Any]]) -> Stamp | None:
    """The resourceVersions a Service's records derive from; None when one is missing."""
    versions = [str(meta(obj).get("resourceVersion") or "") for obj in (svc, *slices)]
    return None if not all(versions) else (versions[0], tuple(versions[1:]))


def pod_stamp(pod: Mapping[str, Any]) -> Stamp | None:
    """A pod's uid and resourceVersion (its addresses are in its status), in the shape of a
    Service's stamp; None when missing."""
    stamp = stamp_of(pod)
    return (stamp[0], (stamp[1],)) if stamp is not None else None


def _encoded(records: Iterable[Record]) -> str:
    """Records as rows, each once, encoded as ``json.dumps`` writes a list's items ("" when
    there are none)."""
    return json.dumps([[r.name, r.rtype, r.value, int(r.ttl)] for r in dict.fromkeys(records)])[
        1:-1
    ]


class ServiceRecordCache:
    """``labkit.model.dns.records.records`` as encoded rows, each Service's and pod's remembered
    by stamp."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], tuple[Stamp, str]] = {}
        self._by_pod: dict[tuple[str, str], tuple[Stamp, str]] = {}

    def encoded(
        self,
        services: Iterable[Mapping[str, Any]],
        endpoint_slices: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]],
    ) -> list[str]:
        """The records ``records()`` gives for these objects as rows (``[name, type, value,
        ttl]``), one text per object that has any: its rows as ``json.dumps`` writes a list's
        items. In the objects' order and unsorted (the agent's index sorts them; sorting
        thousands here cost a change more than deriving its own records)."""
        zone = cluster_zone(CLUSTER_DOMAIN)
        out = [_encoded([version_record(zone)])]
        groups = slices_by_service(endpoint_slices)
        kept: dict[tuple[str, str], tuple[Stamp, str]] = {}
        for svc in services:
            key = service_key(svc)
            slices = groups.get(key, [])
            stamp = _stamp(svc, slices)
            known = self._by_service.get(key)
            if stamp is not None and known is not None and known[0] == stamp:
                derived = known[1]
            else:
                derived = _encoded(service_records(svc, slices, zone, DEFAULT_TTL))
            if stamp is not None:
                kept[key] = (stamp, derived)
            if derived:
                out.append(derived)
        self._by_service = kept
        kept_pods: dict[tuple[str, str], tuple[Stamp, str]] = {}
        for pod in pods:
            pod_key, stamp = (namespace_of(pod), name_of(pod)), pod_stamp(pod)
            known = self._by_pod.get(pod_key)
            if stamp is not None and known is not None and known[0] == stamp:
                derived = known[1]
            else:
                derived = _encoded(pod_records([pod], zone, DEFAULT_TTL))
            if stamp is not None:
                kept_pods[pod_key] = (stamp, derived)
            if derived:
                out.append(derived)
        self._by_pod = kept_pods
        return out
