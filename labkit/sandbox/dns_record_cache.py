"""Cluster DNS records kept per Service and per pod between syncs, as the agent's rows: a
Service whose object and slices kept their resourceVersions keeps its rows, and so does a pod
that kept its own, so one change re-derives one Service's or pod's records (issue 18)."""

from __future__ import annotations

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
from labkit.model.objects import meta, name_of, namespace_of

Stamp = tuple[str, tuple[str, ...]]
Row = list[Any]
"""A record as ``workloads.json`` holds it: ``[name, type, value, ttl]``."""


def _stamp(svc: Mapping[str, Any], slices: list[Mapping[str, Any]]) -> Stamp | None:
    """The resourceVersions a Service's records derive from; None when one is missing."""
    versions = [str(meta(obj).get("resourceVersion") or "") for obj in (svc, *slices)]
    return None if not all(versions) else (versions[0], tuple(versions[1:]))


def _pod_stamp(pod: Mapping[str, Any]) -> Stamp | None:
    """A pod's uid and resourceVersion (its addresses are in its status); None when missing."""
    uid, version = str(meta(pod).get("uid") or ""), str(meta(pod).get("resourceVersion") or "")
    return (uid, (version,)) if uid and version else None


def _rows(records: Iterable[Record]) -> list[Row]:
    """Records as rows, each once."""
    return [[r.name, r.rtype, r.value, int(r.ttl)] for r in dict.fromkeys(records)]


class ServiceRecordCache:
    """``labkit.model.dns.records.records`` as rows, each Service's and pod's remembered by
    stamp."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], tuple[Stamp, list[Row]]] = {}
        self._by_pod: dict[tuple[str, str], tuple[Stamp, list[Row]]] = {}

    def rows(
        self,
        services: Iterable[Mapping[str, Any]],
        endpoint_slices: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]],
    ) -> list[Row]:
        """The records ``records()`` gives for these objects as rows, in the objects' order and
        unsorted (the agent's index sorts them; sorting thousands here cost a change more than
        deriving its own records)."""
        zone = cluster_zone(CLUSTER_DOMAIN)
        out = _rows([version_record(zone)])
        groups = slices_by_service(endpoint_slices)
        kept: dict[tuple[str, str], tuple[Stamp, list[Row]]] = {}
        for svc in services:
            key = service_key(svc)
            slices = groups.get(key, [])
            stamp = _stamp(svc, slices)
            known = self._by_service.get(key)
            if stamp is not None and known is not None and known[0] == stamp:
                derived = known[1]
            else:
                derived = _rows(service_records(svc, slices, zone, DEFAULT_TTL))
            if stamp is not None:
                kept[key] = (stamp, derived)
            out.extend(derived)
        self._by_service = kept
        kept_pods: dict[tuple[str, str], tuple[Stamp, list[Row]]] = {}
        for pod in pods:
            pod_key, pod_stamp = (namespace_of(pod), name_of(pod)), _pod_stamp(pod)
            known = self._by_pod.get(pod_key)
            if pod_stamp is not None and known is not None and known[0] == pod_stamp:
                derived = known[1]
            else:
                derived = _rows(pod_records([pod], zone, DEFAULT_TTL))
            if pod_stamp is not None:
                kept_pods[pod_key] = (pod_stamp, derived)
            out.extend(derived)
        self._by_pod = kept_pods
        return out
