"""``kubectl expose`` served on a Lab: a Service for a pod, deployment, replicaset or service,
built as kubectl builds it (selector, ports and protocols taken from the object unless given,
``targetPort`` = port unless ``--target-port``, the object's labels), checked, then created
through the Lab seam, so the sandbox programs its rules at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labkit.kubectl import flags, writes
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.kubectl.resources import Resource
from labkit.lab import Lab

TABLE = (
    flags.NAMESPACE,
    flags.Flag("--port"),
    flags.Flag("--target-port"),
    flags.Flag("--name"),
    flags.Flag("--type"),
    flags.Flag("--protocol"),
    flags.Flag("--selector"),
)
SHAPE = (
    "TYPE NAME | TYPE/NAME [--port=PORT] [--target-port=PORT|NAME] [--name=NAME] [--type=TYPE] "
    "[--protocol=TCP|UDP|SCTP] [--selector=K=V,...] [-n NAMESPACE]"
)
EXPOSABLE = ("Pod", "Service", "Deployment", "ReplicaSet")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NAME_MAX = 63


def selector_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The pod selector kubectl takes from an object it exposes, or its error."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    if kind == "Pod":
        labels = obj["metadata"].get("labels") or {}
        if not labels:
            raise ValueError("the pod has no labels and cannot be exposed")
        return dict(labels)
    if kind == "Service":
        if not spec.get("selector"):
            raise ValueError("the service has no pod selector set")
        return dict(spec["selector"])
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        raise ValueError(
            f'couldn\'t convert expressions - "{selector["matchExpressions"]}" to map-based '
            "selector format"
        )
    if not selector.get("matchLabels"):
        raise ValueError(f"invalid {kind.lower()}: no selectors, therefore cannot be exposed")
    return dict(selector["matchLabels"])


def ports_of(obj: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(port, protocol) of each port the object declares, in order, as kubectl reads them."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Service":
        return [(p["port"], p.get("protocol") or "TCP") for p in spec.get("ports") or []]
    if obj["kind"] != "Pod":
        spec = ((spec.get("template") or {}).get("spec")) or {}
    return [
        (p["containerPort"], p.get("protocol") or "TCP")
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
    ]


def parse_selector(text: str) -> dict[str, str]:
    """``--selector k=v,k2=v2`` as kubectl's expose reads it."""
    found = {}
    for spec in text.split(","):
        key, eq, value = spec.partition("=")
        if not eq or "=" in value:
            raise KubectlError(f"error: unexpected label spec: {spec}")
        if not key:
            raise KubectlError("error: unexpected empty label key")
        found[key] = value
    return found


def service_for(obj: Mapping[str, Any], parsed: flags.Parsed) -> dict[str, Any]:
    """The Service kubectl's expose builds for ``obj`` with the flags given."""
    try:
        selector = (
            parse_selector(parsed.last("--selector"))
            if parsed.given("--selector")
            else selector_of(obj)
        )
    except ValueError as exc:
        raise KubectlError(
            f"error: couldn't retrieve selectors via --selector flag or introspection: {exc}"
        ) from None
    declared = ports_of(obj)
    if parsed.given("--port"):
        text = parsed.last("--port")
        if not text.isdigit():
            raise KubectlError(f'error: strconv.Atoi: parsing "{text}": invalid syntax')
        numbers = [int(text)]
    else:
        numbers = list(dict.fromkeys(port for port, _ in declared))
        if not numbers:
            raise KubectlError("error: couldn't find port via --port flag or introspection")
    ports: list[dict[str, Any]] = []
    for i, number in enumerate(numbers):
        protocols = [parsed.last("--protocol")] if parsed.given("--protocol") else []
        protocols = protocols or [proto for port, proto in declared if port == number] or ["TCP"]
        for protocol in protocols:
            entry: dict[str, Any] = {"port": number, "protocol": protocol}
            if len(protocols) > 1:
                entry["name"] = f"port-{i + 1}-{protocol.lower()}"
            elif len(numbers) > 1:
                entry["name"] = f"port-{i + 1}"
            target = parsed.last("--target-port")
            entry["targetPort"] = (
                (int(target) if target.isdigit() else target) if target else number
            )
            ports.append(entry)
    meta: dict[str, Any] = {
        "name": parsed.last("--name") or obj["metadata"]["name"][:NAME_MAX],
        "namespace": obj["metadata"]["namespace"],
    }
    labels = obj["metadata"].get("labels")
    if labels:
        meta["labels"] = dict(labels)
    spec: dict[str, Any] = {"ports": ports, "selector": selector}
    if parsed.given("--type"):
        spec["type"] = parsed.last("--type")
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def expose(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl expose`` prints on this lab, and its exit code."""
    parsed = flags.parse("expose", argv, TABLE, flags.served_help("expose", SHAPE, TABLE))
    chosen = writes.targets(parsed.words)
    if not chosen:
        raise KubectlError(
            "error: You must provide one or more resources by argument or filename.\n"
            "Example resource specifications include:\n"
            "   '-f rsrc.yaml'\n"
            "   '--filename=rsrc.json'\n"
            "   '<resource> <name>'\n"
            "   '<resource>'"
        )
    namespace = parsed.last("--namespace", "default")
    lines = []
    for resource, name in chosen:
        _exposable(resource)
        service = service_for(writes.must_exist(lab, resource, name, namespace), parsed)
        svc_name = service["metadata"]["name"]
        kind_type = service["spec"].get("type", "ClusterIP")
        if kind_type not in SERVICE_TYPES:
            supported = ", ".join(f'"{t}"' for t in SERVICE_TYPES)
            causes = [f'spec.type: Unsupported value: "{kind_type}": supported values: {supported}']
        else:
            causes = writes.causes(service)
        if causes:
            return Outcome("", writes.report([writes.invalid("Service", svc_name, causes, "")]), 1)
        if lab.get("services", svc_name, namespace):
            raise KubectlError(
                f'Error from server (AlreadyExists): services "{svc_name}" already exists'
            )
        writes.write(lab, [service], namespace)
        lines.append(f"service/{svc_name} exposed\n")
    return Outcome("".join(lines), "", 0)


def _exposable(resource: Resource) -> None:
    if resource.kind not in EXPOSABLE:
        group = f".{resource.group}" if resource.group else ""
        raise KubectlError(f"error: cannot expose a {resource.kind}{group}")
