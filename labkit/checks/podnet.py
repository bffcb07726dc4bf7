"""A pod's network namespace, checked like the tutorial's deep dive: ``eth0@ifN`` with the pod IP,
a default route, the veth peer with index N on the pod's node, and the node's route back to the pod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks.pods import one_pod
from labkit.checks.result import Result, Step
from labkit.checks.stages import Report
from labkit.checks.targets import Target, scheduling_problem
from labkit.checks.view import ClusterView
from labkit.commands import LAB_DOWN, LAB_STATUS, LAB_UP, POD_DETAIL, POD_LIST, Shell
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.objects import (
    is_host_network,
    labels_of,
    name_of,
    namespace_of,
    pod_ip,
    pod_node,
    pod_phase,
)

_LINK = re.compile(
    r"^(?P<index>\d+):\s+(?P<name>[^:@\s]+)(?:@(?P<peer>[^:\s]+))?:\s+"
    r"<(?P<flags>[^>]*)>(?P<rest>.*)$"
)
_ADDR = re.compile(r"^\d+:\s+(?P<dev>\S+)\s+inet6?\s+(?P<cidr>\S+)")


@dataclass(frozen=True)
class Link:
    """One line of ``ip -o link show``."""

    index: int
    name: str
    peer_index: int | None
    flags: tuple[str, ...]
    master: str | None
    kind_hint: str
    mtu: int | None = None

    @property
    def up(self) -> bool:
        """Whether the link is administratively UP."""
        return "UP" in self.flags


def parse_links(text: str) -> list[Link]:
    """``ip -o link show`` -> links; ``eth0@if7`` gives peer index 7 (``@NONE`` gives None)."""
    links = []
    for line in text.splitlines():
        m = _LINK.match(line.strip())
        if not m:
            continue
        peer = m.group("peer")
        peer_index = (
            int(peer[2:]) if peer and peer.startswith("if") and peer[2:].isdigit() else None
        )
        rest = m.group("rest")
        master = re.search(r"\bmaster\s+(\S+)", rest)
        kind = (
            "loopback"
            if "link/loopback" in rest
            else ("ether" if "link/ether" in rest else "other")
        )
        mtu = re.search(r"\bmtu\s+(\d+)", rest)
        links.append(
            Link(
                int(m.group("index")),
                m.group("name"),
                peer_index,
                tuple(f for f in m.group("flags").split(",") if f),
                master.group(1) if master else None,
                kind,
                int(mtu.group(1)) if mtu else None,
            )
        )
    return links


def parse_addresses(text: str) -> dict[str, list[str]]:
    """``ip -o addr show`` -> {device: [cidr, ...]}, without IPv6 link-local addresses (they
    derive from random MACs and say nothing about the pod network)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _ADDR.match(line.strip())
        if m and not m.group("cidr").lower().startswith("fe80:"):
            out.setdefault(m.group("dev"), []).append(m.group("cidr"))
    return out


def parse_routes(text: str) -> list[str]:
    """``ip route show`` -> one normalised line per route (the cache lines dropped)."""
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if line.strip() and not line.startswith((" ", "\t"))
    ]


def route_device(text: str) -> str | None:
    """The ``dev`` of ``ip route get`` output."""
    m = re.search(r"\bdev\s+(\S+)", text)
    return m.group(1) if m else None


@dataclass(frozen=True)
class PodNetView:
    """What was read in the pod and on its node."""

    pod_links: list[Link]
    pod_addrs: dict[str, list[str]]
    pod_routes: list[str]
    node_links: list[Link]
    node_route: str


def judge_netns(view: PodNetView, ip: str, node: str) -> list[tuple[Step, str]]:
    """Pure judging: each step with the hint to give if it is the first failure."""
    out: list[tuple[Step, str]] = []
    eth0 = next((link for link in view.pod_links if link.name == "eth0"), None)
    if eth0 is None:
        names = ", ".join(link.name for link in view.pod_links) or "none"
        out.append(
            (
                Step("interface eth0 in the pod", f"missing (interfaces: {names})", False),
                "The pod has no eth0: the CNI never wired its network namespace. Look at the CNI's "
                "pods and logs on that node.",
            )
        )
        return out
    addrs = view.pod_addrs.get("eth0", [])
    has_ip = any(a.split("/")[0] == ip for a in addrs)
    peer = (
        f"eth0@if{eth0.peer_index}" if eth0.peer_index is not None else "eth0 (no veth peer index)"
    )
    out.append(
        (
            Step(
                "interface eth0 in the pod",
                f"{peer}, {'UP' if eth0.up else 'DOWN'}, addresses {', '.join(addrs) or 'none'}",
                has_ip and eth0.up and eth0.peer_index is not None,
            ),
            f"eth0 should be UP, carry the pod IP {ip} and be one end of a veth pair; the CNI set "
            "it up wrongly (or the pod IP in the API is stale).",
        )
    )
    default = next((r for r in view.pod_routes if r.startswith("default")), None)
    out.append(
        (
            Step("default route in the pod", default or "missing", default is not None),
            "Without a default route the pod can only reach its own subnet; the CNI writes it "
            "(flannel: via the bridge's .1; calico: via 169.254.1.1).",
        )
    )
    if eth0.peer_index is None:
        return out
    host = next((link for link in view.node_links if link.index == eth0.peer_index), None)
    if host is None:
        out.append(
            (
                Step(
                    f"veth peer with index {eth0.peer_index} on {node}", "no such interface", False
                ),
                f"The node has no interface with index {eth0.peer_index}: the pod's veth peer is "
                "gone or the pod runs elsewhere than the API says.",
            )
        )
        return out
    back = f"@if{host.peer_index}" if host.peer_index is not None else ""
    pairs = host.peer_index == eth0.index
    master = f", attached to bridge {host.master}" if host.master else ""
    out.append(
        (
            Step(
                f"veth peer with index {eth0.peer_index} on {node}",
                f"{host.name}{back}{master}"
                + ("" if pairs else f" (its peer is not eth0's index {eth0.index})"),
                pairs and host.up,
            ),
            "The node-side end of the veth must be UP and point back at the pod's eth0 index.",
        )
    )
    dev = route_device(view.node_route)
    reaches = dev is not None and dev in (host.name, host.master)
    shown_route = re.sub(r"\s+uid\s+\d+", "", " ".join(view.node_route.split())) or "none"
    out.append(
        (
            Step(f"{node}'s route to {ip}", shown_route, reaches),
            f"The node must send {ip} to the pod's veth ({host.name}) or to the bridge it hangs on"
            f"{' (' + host.master + ')' if host.master else ''}; the CNI adds that route (calico: "
            "a /32 "
            "per pod; flannel: the bridge's subnet).",
        )
    )
    return out


def _run(lab: Lab, where: str, command: list[str], pod: Mapping[str, Any] | None = None) -> str:
    """What ``command`` printed in ``pod`` (or on node ``where`` without one); a LabError when it
    failed."""
    if pod is not None:
        result = lab.exec(name_of(pod), command, namespace=namespace_of(pod))
    else:
        result = lab.node_exec(where, command)
    if not result.ok:
        failed = result.stderr.strip() or result.returncode
        raise LabError(
            f"`{' '.join(command)}` failed in {where}: {failed}.",
            f"Check that the lab is up and the pod is Running ({Shell.of(lab)(LAB_STATUS)}).",
            result.stdout,
        )
    return result.stdout


def pod_netns(lab: Lab, pod: Target) -> Result:
    """Read the pod's interfaces and routes and its veth peer and route on the node, and check that
    they form the path the CNI should have built."""
    view = ClusterView(lab)
    looked_at = one_pod(view, pod, "target")
    report = Report("pod_netns", f"network namespace of {looked_at.shown}", [looked_at.step])
    found = looked_at.usable
    if found is None:
        return report.result(unwired_hint(looked_at.pod, view.shell))
    ip, node = pod_ip(found) or "", pod_node(found) or "?"
    where = view.names(found)
    netns = PodNetView(
        pod_links=parse_links(_run(lab, where, ["ip", "-o", "link", "show"], found)),
        pod_addrs=parse_addresses(_run(lab, where, ["ip", "-o", "addr", "show"], found)),
        pod_routes=parse_routes(_run(lab, where, ["ip", "route", "show"], found)),
        node_links=parse_links(_run(lab, node, ["ip", "-o", "link", "show"])),
        node_route=_run(lab, node, ["ip", "route", "get", ip]).strip().splitlines()[0]
        if ip
        else "",
    )
    judged = judge_netns(netns, ip, node)
    report.steps.extend(s for s, _ in judged)
    return report.result(next((h for s, h in judged if s.ok is False), ""))


def unwired_hint(pod: Mapping[str, Any] | None, shell: Shell) -> str:
    """Why a pod has no network namespace to look at: it does not exist, or has no IP yet (and
    what the scheduler said, when that is why); commands spelt for ``shell``."""
    if pod is None:
        return f"The pod does not exist; check its name and namespace with {shell(POD_LIST)}."
    problem = scheduling_problem(pod)
    said = (
        f" Here it is scheduling: {problem.describe()}."
        if problem is not None and problem.message
        else ""
    )
    return (
        f"The pod is {pod_phase(pod)} without an IP, so no network namespace was wired for it. "
        f"{shell(POD_DETAIL, pod=name_of(pod), ns=namespace_of(pod))} shows why: usually "
        f"scheduling (a nodeSelector or taint no node satisfies), then the image or the CNI.{said}"
    )


# --------------------------------------------------------------------------- which CNI


CNI_PODS = {
    "flannel": (("app", "flannel"), "kube-flannel"),
    "calico": (("k8s-app", "calico-node"), "calico-node"),
    "cilium": (("k8s-app", "cilium"), "cilium"),
}
"""How each CNI's node agent shows up: a label, or a name prefix (namespace-independent)."""


def detect_cni(pods: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The CNI node agents found among the cluster's pods, by CNI."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        labels = labels_of(pod)
        name = name_of(pod)
        for cni, ((key, value), prefix) in CNI_PODS.items():
            if labels.get(key) == value or (
                name.startswith(prefix)
                and not name.startswith((prefix + "-operator", prefix + "-envoy"))
                and labels.get(key) is None
            ):
                found.setdefault(cni, []).append(pod)
                break
    return found


def fingerprint(
    cni: str, eth0: Link | None, addrs: list[str], routes: list[str], pod_cidr: str | None
) -> list[tuple[Step, str]]:
    """What a pod's eth0 and routes should look like under ``cni`` (pure), each with its hint."""
    import ipaddress

    out: list[tuple[Step, str]] = []
    cidr = next((a for a in addrs if ":" not in a), None)
    default = next((r for r in routes if r.startswith("default")), "")
    gateway = (
        default.split()[2] if len(default.split()) > 2 and default.split()[1] == "via" else None
    )
    if cni == "flannel":
        network = ipaddress.ip_network(pod_cidr, strict=False) if pod_cidr else None
        in_cidr = bool(cidr and network and ipaddress.ip_interface(cidr).network == network)
        out.append(
            (
                Step(
                    "eth0's address",
                    f"{cidr or 'none'}" + (f" (node podCIDR {pod_cidr})" if pod_cidr else ""),
                    in_cidr,
                ),
                "Flannel gives each pod an address from its node's /24 (the node's spec.podCIDR), "
                "behind cni0.",
            )
        )
        bridge = str(next(network.hosts())) if network else None
        out.append(
            (
                Step("default route", default or "none", bool(gateway and gateway == bridge)),
                "Under Flannel the pod's default route goes via the cni0 bridge, the first "
                f"address of the node's podCIDR ({bridge}).",
            )
        )
        mtu = eth0.mtu if eth0 else None
        out.append(
            (
                Step("eth0's MTU", str(mtu), mtu == 1450),
                "Flannel's VXLAN overlay costs 50 bytes per packet, so pods get MTU 1450 on a "
                "1500-byte network.",
            )
        )
    elif cni == "calico":
        prefix = ipaddress.ip_interface(cidr).network.prefixlen if cidr else None
        out.append(
            (
                Step("eth0's address", cidr or "none", prefix == 32),
                "Calico gives each pod a single /32 address from an IPAM block of its node; no "
                "subnet is shared.",
            )
        )
        out.append(
            (
                Step("default route", default or "none", gateway == "169.254.1.1"),
                "Calico points the pod's default route at the link-local 169.254.1.1, answered by "
                "proxy ARP on the node's cali* veth.",
            )
        )
    else:
        prefix = ipaddress.ip_interface(cidr).network.prefixlen if cidr else None
        network = ipaddress.ip_network(pod_cidr, strict=False) if pod_cidr else None
        out.append(
            (
                Step("eth0's address", cidr or "none", prefix == 32),
                "Cilium gives each pod a /32 from its node's podCIDR (ipam.mode=kubernetes) and "
                "routes through the node's cilium_host.",
            )
        )
        via_host = bool(
            gateway
            and network
            and ipaddress.ip_address(gateway) in network
            and f"{gateway} dev eth0 scope link" in routes
        )
        out.append(
            (
                Step("default route", default or "none", via_host),
                "Cilium points the pod's default route at its node's cilium_host address (from "
                "the node's podCIDR), reached by a scope-link route on eth0.",
            )
        )
    return out


def cni_identity(lab: Lab, pod: Target) -> Result:
    """Say which CNI runs (its node agents) and check that a pod's interface carries that
    plugin's fingerprint: Flannel a /24 behind cni0 with MTU 1450, Calico a /32 via 169.254.1.1."""
    view = ClusterView(lab)
    looked_at = one_pod(view, pod, "target")
    report = Report("cni_identity", f"CNI wiring of {looked_at.shown}", [looked_at.step])
    found = looked_at.usable
    if found is None:
        return report.result(
            "The pod is missing or has no IP yet; run pod_netns on it for the reason."
        )
    agents = detect_cni(view.pods)
    if not agents:
        report.add(
            "the CNI's node agents",
            "none found (no kube-flannel, calico-node or cilium pods)",
            False,
        )
        again = f"{view.shell(LAB_DOWN)} then {view.shell(LAB_UP, cni=lab.cni)}"
        return report.result(
            "No CNI runs: without one, nodes stay NotReady and pods get no network. Install "
            f"one (Flannel, Calico, Cilium), or build the lab again with its CNI: {again}."
        )
    for name, pods in sorted(agents.items()):
        groups = sorted({view.names(p).split("#")[0] for p in pods})
        running = sum(1 for p in pods if pod_phase(p) == "Running")
        report.add(
            "the CNI's node agents",
            f"{name}: {', '.join(groups)} ({running} of {len(pods)} Running)",
            running == len(pods),
        )
    if len(agents) > 1:
        report.add("one CNI only", f"found {', '.join(sorted(agents))}", False)
        return report.result("Two CNIs fight over the same pods; remove all but one.")
    cni = next(iter(agents))
    if cni != lab.cni:
        report.add("the lab says", f"{lab.cni}")
    if is_host_network(found):
        report.add("the pod's own network namespace", "no: hostNetwork: true", False)
        return report.result(
            "This pod uses hostNetwork: it shares its node's network namespace and interfaces, "
            "so the CNI never wired it and it shows no CNI fingerprint. Remove hostNetwork "
            "to get a pod IP from the CNI."
        )
    where = view.names(found)
    links = parse_links(_run(lab, where, ["ip", "-o", "link", "show"], found))
    addrs = parse_addresses(_run(lab, where, ["ip", "-o", "addr", "show"], found))
    routes = parse_routes(_run(lab, where, ["ip", "route", "show"], found))
    node = view.node(pod_node(found)) or {}
    judged = fingerprint(
        cni,
        next((link for link in links if link.name == "eth0"), None),
        addrs.get("eth0", []),
        routes,
        (node.get("spec") or {}).get("podCIDR"),
    )
    report.steps.extend(s for s, _ in judged)
    first_bad = next((h for s, h in judged if s.ok is False), "")
    if first_bad or any(s.ok is False for s in report.steps):
        return report.result(
            first_bad or "Some of the CNI's node agents are not Running; look at their logs."
        )
    return report.result()
