"""kubectl describe's text, pure: a writer with its indent levels and tab alignment, the shared
header fields (labels, annotations, events), and the Pod and Node describers. The network
kinds' describers are in :mod:`labkit.printers.describe_net`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from labkit.printers.ages import age, parse_time
from labkit.printers.cells import format_labels, node_roles, pod_status
from labkit.printers.describe_volumes import mounts, volumes
from labkit.tables import EMPTY, align_tabs

Obj = Mapping[str, Any]
DESCRIBE_PADDING = 2
"""kubectl describe's tabwriter pads cells by two spaces."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class Writer:
    """Lines at kubectl's indent levels (two spaces each); tabs separate cells to align."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, level: int, text: str) -> None:
        """One line at an indent level (0-3)."""
        self.lines.append("  " * level + text)

    def multiline(self, title: str, pairs: Mapping[str, Any], separator: str = "=") -> None:
        """``Title:`` then one ``key<sep>value`` per line in key order, aligned; ``<none>``."""
        if not pairs:
            self.line(0, f"{title}:\t{EMPTY}")
            return
        for i, key in enumerate(sorted(pairs)):
            self.line(0, f"{title + ':' if i == 0 else ''}\t{key}{separator}{pairs[key]}")

    def header(self, obj: Obj, *, namespace: bool = True) -> None:
        """Name, Namespace, Labels and Annotations, as most describers begin."""
        meta = obj.get("metadata") or {}
        self.line(0, f"Name:\t{meta.get('name', '')}")
        if namespace:
            self.line(0, f"Namespace:\t{meta.get('namespace', '')}")
        self.multiline("Labels", meta.get("labels") or {})
        self.annotations(obj)

    def annotations(self, obj: Obj) -> None:
        """The Annotations field (``key: value``), leaving out kubectl's last-applied copy."""
        notes = {
            k: v
            for k, v in ((obj.get("metadata") or {}).get("annotations") or {}).items()
            if k != LAST_APPLIED
        }
        self.multiline("Annotations", notes, ": ")

    def no_events(self) -> None:
        """``Events: <none>``: labkit's sandbox records no Events."""
        self.line(0, f"Events:\t{EMPTY}")

    def text(self) -> str:
        """The description, aligned like kubectl's tabwriter."""
        return "\n".join(align_tabs(self.lines, DESCRIBE_PADDING)) + "\n"


def rfc1123(stamp: str | None) -> str:
    """An API timestamp as describe prints times (``Thu, 01 Jan 2026 00:00:04 +0000``)."""
    when = parse_time(stamp)
    return when.strftime("%a, %d %b %Y %H:%M:%S %z") if when else EMPTY


def go_time(stamp: str | None) -> str:
    """An API timestamp as Go prints a metav1.Time (``2026-01-01 00:00:02 +0000 UTC``)."""
    when = parse_time(stamp)
    return when.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if when else EMPTY


# --------------------------------------------------------------------------- pods


def _container_state(w: Writer, state: Mapping[str, Any]) -> None:
    if "running" in state:
        w.line(2, "State:\tRunning")
        w.line(3, f"Started:\t{rfc1123((state['running'] or {}).get('startedAt'))}")
    elif "waiting" in state:
        w.line(2, "State:\tWaiting")
        w.line(3, f"Reason:\t{(state['waiting'] or {}).get('reason', '')}")
    elif "terminated" in state:
        ended = state["terminated"] or {}
        w.line(2, "State:\tTerminated")
        w.line(3, f"Reason:\t{ended.get('reason', '')}")
        w.line(3, f"Exit Code:\t{ended.get('exitCode', 0)}")
    else:
        w.line(2, "State:\tWaiting")


def _ports(container: Obj, field: str) -> str:
    ports = container.get("ports") or []
    shown = [f"{p.get(field) or 0}/{p.get('protocol') or 'TCP'}" for p in ports]
    return ", ".join(shown) or ""


def _container(w: Writer, container: Obj, status: Obj, pod: Obj) -> None:
    w.line(1, f"{container.get('name')}:")
    if status.get("containerID"):
        w.line(2, f"Container ID:\t{status['containerID']}")
    w.line(2, f"Image:\t{container.get('image', '')}")
    w.line(2, f"Image ID:\t{status.get('imageID', '')}")
    ports = container.get("ports") or []
    label = "Ports" if len(ports) > 1 else "Port"
    w.line(2, f"{label}:\t{_ports(container, 'containerPort') or EMPTY}")
    w.line(2, f"Host {label}:\t{_ports(container, 'hostPort') or EMPTY}")
    for field, title in (("command", "Command"), ("args", "Args")):
        if container.get(field):
            w.line(2, f"{title}:")
            for item in container[field]:
                w.line(3, str(item))
    _container_state(w, status.get("state") or {})
    w.line(2, f"Ready:\t{'True' if status.get('ready') else 'False'}")
    w.line(2, f"Restart Count:\t{status.get('restartCount', 0)}")
    env = container.get("env") or []
    w.line(2, "Environment:" if env else f"Environment:\t{EMPTY}")
    for item in env:
        _env_var(w, item, pod)
    for level, text in mounts(container):
        w.line(level, text)


def _field(pod: Obj, path: str) -> str:
    """The value kubectl resolves for an env var's fieldRef: only metadata fields
    (``fieldpath.ExtractFieldPathAsString``); others, like ``spec.nodeName``, show empty."""
    meta = pod.get("metadata") or {}
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.removeprefix("metadata.")) or "")
    found = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    return str((meta.get(found.group(1)) or {}).get(found.group(2), "")) if found else ""


def _env_var(w: Writer, item: Obj, pod: Obj) -> None:
    """One variable as kubectl shows it: its value, the pod field it comes from (resolved), or
    the ConfigMap or Secret key it is set from."""
    name, source = item.get("name"), item.get("valueFrom") or {}
    if not source:
        for i, line in enumerate(str(item.get("value") or "").split("\n")):
            w.line(3, f"{name}:\t{line}" if i == 0 else f"\t{line}")
    elif "fieldRef" in source:
        ref = source["fieldRef"] or {}
        path = str(ref.get("fieldPath") or "")
        w.line(3, f"{name}:\t{_field(pod, path)} ({ref.get('apiVersion') or 'v1'}:{path})")
    elif "resourceFieldRef" in source:
        w.line(3, f"{name}:\t ({(source['resourceFieldRef'] or {}).get('resource')})")
    else:
        key = "secretKeyRef" if "secretKeyRef" in source else "configMapKeyRef"
        ref = source.get(key) or {}
        where = (
            f"in secret '{ref.get('name')}'"
            if key == "secretKeyRef"
            else (f"of config map '{ref.get('name')}'")
        )
        optional = "true" if ref.get("optional") else "false"
        w.line(3, f"{name}:\t<set to the key '{ref.get('key')}' {where}>\tOptional: {optional}")


def _tolerations(w: Writer, tolerations: Sequence[Obj]) -> None:
    shown = []
    for t in tolerations:
        text = str(t.get("key") or "")
        if t.get("value"):
            text += f"={t['value']}"
        if t.get("effect"):
            text += f":{t['effect']}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        shown.append(text)
    if not shown:
        w.line(0, f"Tolerations:\t{EMPTY}")
    for i, text in enumerate(shown):
        w.line(0, f"{'Tolerations:' if i == 0 else ''}\t{text}")


def describe_pod(pod: Obj) -> str:
    """``kubectl describe pod``: identity, placement, containers, conditions, tolerations."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{meta.get('name', '')}")
    w.line(0, f"Namespace:\t{meta.get('namespace', '')}")
    w.line(0, f"Priority:\t{spec.get('priority', 0)}")
    w.line(0, f"Service Account:\t{spec.get('serviceAccountName', 'default')}")
    node = spec.get("nodeName")
    w.line(0, f"Node:\t{node}/{status.get('hostIP', '')}" if node else f"Node:\t{EMPTY}")
    if status.get("startTime"):
        w.line(0, f"Start Time:\t{rfc1123(status['startTime'])}")
    w.multiline("Labels", meta.get("labels") or {})
    w.annotations(pod)
    w.line(0, f"Status:\t{pod_status(pod)}")
    w.line(0, f"IP:\t{status.get('podIP', '')}")
    w.line(0, "IPs:" if status.get("podIPs") else f"IPs:\t{EMPTY}")
    for ip in status.get("podIPs") or []:
        w.line(1, f"IP:\t{ip.get('ip')}")
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner:
        w.line(0, f"Controlled By:\t{owner.get('kind')}/{owner.get('name')}")
    w.line(0, "Containers:")
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    for container in spec.get("containers") or []:
        _container(w, container, statuses.get(container.get("name"), {}), pod)
    w.line(0, "Conditions:")
    w.line(1, "Type\tStatus")
    for cond in status.get("conditions") or []:
        w.line(1, f"{cond.get('type')} \t{cond.get('status')} ")
    for level, text in volumes(spec.get("volumes") or []):
        w.line(level, text)
    w.line(0, f"QoS Class:\t{status.get('qosClass', 'BestEffort')}")
    w.line(0, f"Node-Selectors:\t{format_labels(spec.get('nodeSelector'))}")
    _tolerations(w, spec.get("tolerations") or [])
    w.no_events()
    return w.text()


# --------------------------------------------------------------------------- nodes


def describe_node(node: Obj, pods: Sequence[Obj], now: datetime) -> str:
    """``kubectl describe node``: roles, labels, taints, conditions, addresses, capacity, system
    info, pod CIDRs and the pods running there."""
    meta, spec, status = (
        node.get("metadata") or {},
        node.get("spec") or {},
        node.get("status") or {},
    )
    w = Writer()
    w.line(0, f"Name:\t{meta.get('name', '')}")
    w.line(0, f"Roles:\t{node_roles(node)}")
    w.multiline("Labels", meta.get("labels") or {})
    w.annotations(node)
    w.line(0, f"CreationTimestamp:\t{rfc1123(meta.get('creationTimestamp'))}")
    taints = [
        f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    w.line(0, f"Taints:\t{taints[0] if taints else EMPTY}")
    for taint in taints[1:]:
        w.line(0, f"\t{taint}")
    w.line(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}")
    w.line(0, "Conditions:")
    w.line(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
    w.line(1, "----\t------\t-----------------\t------------------\t------\t-------")
    for c in status.get("conditions") or []:
        times = [rfc1123(c.get(f)) for f in ("lastHeartbeatTime", "lastTransitionTime")]
        fields = [c.get("type"), c.get("status"), *times, c.get("reason", "")]
        w.line(1, "".join(f"{f} \t" for f in fields) + str(c.get("message", "")))
    w.line(0, "Addresses:")
    for address in status.get("addresses") or []:
        w.line(1, f"{address.get('type')}:\t{address.get('address')}")
    for title in ("capacity", "allocatable"):
        if not status.get(title):
            continue
        w.line(0, f"{title.capitalize()}:")
        for key, value in sorted((status.get(title) or {}).items()):
            w.line(1, f"{key}:\t{value}")
    info = status.get("nodeInfo") or {}
    w.line(0, "System Info:")
    for title, field in (
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
    ):
        w.line(1, f"{title}:\t{info.get(field, '')}")
    if spec.get("podCIDR"):
        w.line(0, f"PodCIDR:\t{spec['podCIDR']}")
    if spec.get("podCIDRs"):
        w.line(0, f"PodCIDRs:\t{','.join(spec['podCIDRs'])}")
    if spec.get("providerID"):
        w.line(0, f"ProviderID:\t{spec['providerID']}")
    _node_pods(w, pods, now)
    w.no_events()
    return w.text()


def _node_pods(w: Writer, pods: Sequence[Obj], now: datetime) -> None:
    w.line(0, f"Non-terminated Pods:\t({len(pods)} in total)")
    w.line(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge")
    w.line(1, "---------\t----\t------------\t----------\t---------------\t-------------\t---")
    for pod in pods:
        meta = pod.get("metadata") or {}
        containers = (pod.get("spec") or {}).get("containers") or []
        amounts = "\t".join(_declared(containers, kind, res) for res, kind in _RESOURCE_CELLS)
        created = age(meta.get("creationTimestamp"), now)
        w.line(1, f"{meta.get('namespace')}\t{meta.get('name')}\t{amounts}\t{created}")


_RESOURCE_CELLS = (
    ("cpu", "requests"),
    ("cpu", "limits"),
    ("memory", "requests"),
    ("memory", "limits"),
)


def _declared(containers: Sequence[Obj], kind: str, resource: str) -> str:
    """What the containers declare of a resource (``0 (0%)`` when none; no node share is
    computed for declared amounts)."""
    found = [
        str(((c.get("resources") or {}).get(kind) or {}).get(resource))
        for c in containers
        if ((c.get("resources") or {}).get(kind) or {}).get(resource) is not None
    ]
    return "+".join(found) or "0 (0%)"
