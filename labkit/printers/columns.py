"""kubectl get's tables: per kind, the columns of upstream's printers.go (``-o wide`` adds the
priority-1 ones), a row per object, and the NAMESPACE and LABELS columns kubectl adds for
``-A`` and ``--show-labels``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labkit.printers import cells
from labkit.printers.ages import age
from labkit.tables import EMPTY, render_table

Obj = Mapping[str, Any]
Row = Callable[[Obj, datetime, bool], list[str]]


@dataclass(frozen=True)
class Columns:
    """One kind's table: its headers, the extra ``-o wide`` headers, and its row function
    (``wide`` says whether to add the wide cells)."""

    headers: tuple[str, ...]
    wide: tuple[str, ...]
    row: Row


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _created(obj: Obj, now: datetime) -> str:
    return age(_meta(obj).get("creationTimestamp"), now)


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _template_containers(obj: Obj) -> list[Obj]:
    return list(((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or [])


def _pod(pod: Obj, now: datetime, wide: bool) -> list[str]:
    row = [cells.pod_ready(pod), cells.pod_status(pod), cells.pod_restarts(pod), _created(pod, now)]
    if wide:
        row += [
            cells.pod_ip(pod),
            str(_spec(pod).get("nodeName") or EMPTY),
            str(_status(pod).get("nominatedNodeName") or EMPTY),
            cells.readiness_gates(pod),
        ]
    return row


def _service(svc: Obj, now: datetime, wide: bool) -> list[str]:
    row = [
        str(_spec(svc).get("type") or "ClusterIP"),
        cells.service_cluster_ip(svc),
        cells.service_external_ip(svc, wide),
        cells.service_ports(svc),
        _created(svc, now),
    ]
    if wide:
        row.append(cells.format_labels(_spec(svc).get("selector")))
    return row


def _endpoints(endpoints: Obj, now: datetime, wide: bool) -> list[str]:
    return [cells.endpoints_cell(endpoints), _created(endpoints, now)]


def _endpoint_slice(endpoint_slice: Obj, now: datetime, wide: bool) -> list[str]:
    return [
        str(endpoint_slice.get("addressType") or ""),
        cells.slice_ports(endpoint_slice),
        cells.slice_endpoints(endpoint_slice),
        _created(endpoint_slice, now),
    ]


def _node(node: Obj, now: datetime, wide: bool) -> list[str]:
    row = [
        cells.node_status(node),
        cells.node_roles(node),
        _created(node, now),
        str((_status(node).get("nodeInfo") or {}).get("kubeletVersion") or ""),
    ]
    if wide:
        row += [
            cells.node_address(node, "InternalIP"),
            cells.node_address(node, "ExternalIP"),
            cells.node_info(node, "osImage"),
            cells.node_info(node, "kernelVersion"),
            cells.node_info(node, "containerRuntimeVersion"),
        ]
    return row


def _namespace(ns: Obj, now: datetime, wide: bool) -> list[str]:
    return [str(_status(ns).get("phase") or ""), _created(ns, now)]


def _network_policy(policy: Obj, now: datetime, wide: bool) -> list[str]:
    return [cells.format_label_selector(_spec(policy).get("podSelector")), _created(policy, now)]


def _cilium_policy(policy: Obj, now: datetime, wide: bool) -> list[str]:
    """The CRD's printer columns: Age, and Valid from the ``Valid`` condition the agent sets."""
    valid = next(
        (
            str(c.get("status") or "")
            for c in _status(policy).get("conditions") or []
            if c.get("type") == "Valid"
        ),
        EMPTY,
    )
    return [_created(policy, now), valid]


def _ingress(ingress: Obj, now: datetime, wide: bool) -> list[str]:
    return [
        str(_spec(ingress).get("ingressClassName") or EMPTY),
        cells.ingress_hosts(ingress),
        cells.load_balancer_addresses(_status(ingress).get("loadBalancer"), wide),
        cells.ingress_ports(ingress),
        _created(ingress, now),
    ]


def _ingress_class(ingress_class: Obj, now: datetime, wide: bool) -> list[str]:
    parameters = _spec(ingress_class).get("parameters")
    shown = EMPTY
    if parameters:
        group = f".{parameters['apiGroup']}" if parameters.get("apiGroup") else ""
        shown = f"{parameters.get('kind')}{group}/{parameters.get('name')}"
    return [str(_spec(ingress_class).get("controller") or ""), shown, _created(ingress_class, now)]


def _with_containers(obj: Obj, row: list[str], wide: bool, *, selector: bool = True) -> list[str]:
    if wide:
        names, images = cells.container_names_and_images(_template_containers(obj))
        row += [names, images]
        if selector:
            row.append(cells.format_label_selector(_spec(obj).get("selector")))
    return row


def _deployment(deployment: Obj, now: datetime, wide: bool) -> list[str]:
    status = _status(deployment)
    row = [
        f"{status.get('readyReplicas') or 0}/{_spec(deployment).get('replicas', 1)}",
        str(status.get("updatedReplicas") or 0),
        str(status.get("availableReplicas") or 0),
        _created(deployment, now),
    ]
    return _with_containers(deployment, row, wide)


def _replica_set(replica_set: Obj, now: datetime, wide: bool) -> list[str]:
    status = _status(replica_set)
    row = [
        str(_spec(replica_set).get("replicas", 1)),
        str(status.get("replicas") or 0),
        str(status.get("readyReplicas") or 0),
        _created(replica_set, now),
    ]
    return _with_containers(replica_set, row, wide)


def _daemon_set(daemon_set: Obj, now: datetime, wide: bool) -> list[str]:
    status = _status(daemon_set)
    template_spec = (_spec(daemon_set).get("template") or {}).get("spec") or {}
    row = [
        *(
            str(status.get(field) or 0)
            for field in (
                "desiredNumberScheduled",
                "currentNumberScheduled",
                "numberReady",
                "updatedNumberScheduled",
                "numberAvailable",
            )
        ),
        cells.format_labels(template_spec.get("nodeSelector")),
        _created(daemon_set, now),
    ]
    return _with_containers(daemon_set, row, wide)


def _stateful_set(stateful_set: Obj, now: datetime, wide: bool) -> list[str]:
    ready = _status(stateful_set).get("readyReplicas") or 0
    row = [f"{ready}/{_spec(stateful_set).get('replicas', 1)}", _created(stateful_set, now)]
    return _with_containers(stateful_set, row, wide, selector=False)


def _config_map(config_map: Obj, now: datetime, wide: bool) -> list[str]:
    count = len(config_map.get("data") or {}) + len(config_map.get("binaryData") or {})
    return [str(count), _created(config_map, now)]


def _secret(secret: Obj, now: datetime, wide: bool) -> list[str]:
    count = len(secret.get("data") or {}) + len(secret.get("stringData") or {})
    return [str(secret.get("type") or "Opaque"), str(count), _created(secret, now)]


def _service_account(account: Obj, now: datetime, wide: bool) -> list[str]:
    return [str(len(account.get("secrets") or [])), _created(account, now)]


_WORKLOAD_WIDE = ("CONTAINERS", "IMAGES", "SELECTOR")
COLUMNS: dict[str, Columns] = {
    "Pod": Columns(
        ("NAME", "READY", "STATUS", "RESTARTS", "AGE"),
        ("IP", "NODE", "NOMINATED NODE", "READINESS GATES"),
        _pod,
    ),
    "Service": Columns(
        ("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"), ("SELECTOR",), _service
    ),
    "Endpoints": Columns(("NAME", "ENDPOINTS", "AGE"), (), _endpoints),
    "EndpointSlice": Columns(
        ("NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"), (), _endpoint_slice
    ),
    "Node": Columns(
        ("NAME", "STATUS", "ROLES", "AGE", "VERSION"),
        ("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"),
        _node,
    ),
    "Namespace": Columns(("NAME", "STATUS", "AGE"), (), _namespace),
    "NetworkPolicy": Columns(("NAME", "POD-SELECTOR", "AGE"), (), _network_policy),
    "CiliumNetworkPolicy": Columns(("NAME", "AGE", "VALID"), (), _cilium_policy),
    "Ingress": Columns(("NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"), (), _ingress),
    "IngressClass": Columns(("NAME", "CONTROLLER", "PARAMETERS", "AGE"), (), _ingress_class),
    "Deployment": Columns(
        ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"), _WORKLOAD_WIDE, _deployment
    ),
    "ReplicaSet": Columns(
        ("NAME", "DESIRED", "CURRENT", "READY", "AGE"), _WORKLOAD_WIDE, _replica_set
    ),
    "DaemonSet": Columns(
        ("NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"),
        _WORKLOAD_WIDE,
        _daemon_set,
    ),
    "StatefulSet": Columns(("NAME", "READY", "AGE"), ("CONTAINERS", "IMAGES"), _stateful_set),
    "ConfigMap": Columns(("NAME", "DATA", "AGE"), (), _config_map),
    "Secret": Columns(("NAME", "TYPE", "DATA", "AGE"), (), _secret),
    "ServiceAccount": Columns(("NAME", "SECRETS", "AGE"), (), _service_account),
}
"""Every kind ``kubectl get`` prints as a table here, by Kind."""


@dataclass(frozen=True)
class TableOptions:
    """How ``kubectl get`` lays a table out: ``-o wide``, ``-A`` (a NAMESPACE column),
    ``--show-labels``, ``--no-headers``, and ``kind/`` before each name (several types)."""

    wide: bool = False
    namespace_column: bool = False
    show_labels: bool = False
    no_headers: bool = False
    name_prefix: str = ""


def table(kind: str, objects: Sequence[Obj], now: datetime, options: TableOptions) -> str:
    """The table of ``objects`` (all of one Kind) as kubectl get prints it."""
    columns = COLUMNS[kind]
    headers = [*columns.headers, *(columns.wide if options.wide else ())]
    if options.namespace_column:
        headers.insert(0, "NAMESPACE")
    if options.show_labels:
        headers.append("LABELS")
    rows = []
    for obj in objects:
        row = [
            options.name_prefix + str(_meta(obj).get("name") or ""),
            *columns.row(obj, now, options.wide),
        ]
        if options.namespace_column:
            row.insert(0, str(_meta(obj).get("namespace") or ""))
        if options.show_labels:
            row.append(cells.format_labels(_meta(obj).get("labels")))
        rows.append(row)
    return render_table(None if options.no_headers else headers, rows)
