"""``kubectl describe`` served from a Lab for the kinds a networking course reads: pods,
services, nodes, networkpolicies, ingresses and endpoints. Like kubectl, a name also matches
the objects it begins when none has it exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from labkit.kubectl.args import Request
from labkit.kubectl.fetch import gather, nothing_found
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab
from labkit.model.objects import SERVICE_NAME_LABEL
from labkit.printers.describe import describe_node, describe_pod
from labkit.printers.describe_net import (
    describe_endpoints,
    describe_ingress,
    describe_network_policy,
    describe_service,
)

Obj = Mapping[str, Any]


def _slices(lab: Lab, namespace: str, service: str) -> list[dict[str, Any]]:
    return lab.get(
        "endpointslices", namespace=namespace, selector=f"{SERVICE_NAME_LABEL}={service}"
    )


def _service(lab: Lab, svc: Obj, now: datetime) -> str:
    meta = svc["metadata"]
    return describe_service(svc, _slices(lab, meta["namespace"], meta["name"]))


def _node(lab: Lab, node: Obj, now: datetime) -> str:
    pods = [
        p
        for p in lab.get("pods", namespace=None)
        if (p.get("spec") or {}).get("nodeName") == node["metadata"]["name"]
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    return describe_node(node, pods, now)


def _ingress(lab: Lab, ingress: Obj, now: datetime) -> str:
    namespace = ingress["metadata"]["namespace"]
    services = {s["metadata"]["name"]: s for s in lab.get("services", namespace=namespace)}
    slices = {name: _slices(lab, namespace, name) for name in services}
    return describe_ingress(ingress, services, slices)


DESCRIBERS: dict[str, Callable[[Lab, Obj, datetime], str]] = {
    "Pod": lambda lab, obj, now: describe_pod(obj),
    "Service": _service,
    "Node": _node,
    "NetworkPolicy": lambda lab, obj, now: describe_network_policy(obj),
    "Ingress": _ingress,
    "Endpoints": lambda lab, obj, now: describe_endpoints(obj),
}


def describe(lab: Lab, request: Request, now: datetime) -> Outcome:
    """What ``kubectl describe`` prints for ``request`` on this lab, and its exit code."""
    for resource, _ in request.targets:
        if resource.kind not in DESCRIBERS:
            served = "pods, services, nodes, networkpolicies, ingresses and endpoints"
            raise KubectlError(
                f"error: labkit kubectl on the sandbox describes {served}, not "
                f"{resource.plural}; nearest: `kubectl get {resource.plural} -o yaml`"
            )
    found = gather(lab, request, by_prefix=True)
    texts = [DESCRIBERS[r.kind](lab, obj, now) for r, objs in found.groups for obj in objs]
    errors = [*found.warnings, *found.missing]
    if not texts and not found.missing:
        errors.append(nothing_found(request))
        return Outcome("", "".join(f"{e}\n" for e in errors), 0)
    code = 1 if found.missing else 0
    return Outcome("\n\n".join(texts), "".join(f"{e}\n" for e in errors), code)
