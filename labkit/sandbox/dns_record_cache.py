"""Cluster DNS records kept per Service between syncs: a Service whose object and slices kept
their resourceVersions keeps its records, so one change re-derives one Service's records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from labkit.model.dns.names import CLUSTER_DOMAIN, cluster_zone
from labkit.model.dns.records import (
    DEFAULT_TTL,
    RECORD_ORDER,
    Record,
    pod_records,
    service_key,
    service_records,
    slices_by_service,
    version_record,
)
from labkit.model.objects import meta

Stamp = tuple[str, tuple[str, ...]]


def _stamp(svc: Mapping[str, Any], slices: list[Mapping[str, Any]]) -> Stamp | None:
    """The resourceVersions a Service's records derive from; None when one is missing."""
    versions = [str(meta(obj).get("resourceVersion") or "") for obj in (svc, *slices)]
    return None if not all(versions) else (versions[0], tuple(versions[1:]))


class ServiceRecordCache:
    """``labkit.model.dns.records.records`` with each Service's records remembered by stamp."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], tuple[Stamp, list[Record]]] = {}

    def records(
        self,
        services: Iterable[Mapping[str, Any]],
        endpoint_slices: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]],
    ) -> list[Record]:
        """The same sorted, unique records as ``records()`` for these objects."""
        zone = cluster_zone(CLUSTER_DOMAIN)
        out: set[Record] = {version_record(zone)}
        groups = slices_by_service(endpoint_slices)
        kept: dict[tuple[str, str], tuple[Stamp, list[Record]]] = {}
        for svc in services:
            key = service_key(svc)
            slices = groups.get(key, [])
            stamp = _stamp(svc, slices)
            known = self._by_service.get(key)
            if stamp is not None and known is not None and known[0] == stamp:
                derived = known[1]
            else:
                derived = service_records(svc, slices, zone, DEFAULT_TTL)
            if stamp is not None:
                kept[key] = (stamp, derived)
            out.update(derived)
        self._by_service = kept
        out.update(pod_records(pods, zone, DEFAULT_TTL))
        return sorted(out, key=RECORD_ORDER)
