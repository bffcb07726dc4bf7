"""The packet path of one probe, drawn from the lab's real state: it reads each node's conntrack
flows and DROP counters, sends the probe through ``lab.probe``, reads them again, and draws what
changed: the endpoint a Service's DNAT chose (conntrack on the node that translated it), the
routes each node took (``ip route get``), and the DROP rule whose counter rose. Everything goes
through the seam (``lab.get``, ``lab.exec``, ``lab.node_exec``, ``lab.probe``), so it works on
Kind and on the sandbox alike; a step a lab cannot show is drawn with the reason.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks.policy import model_verdict
from labkit.checks.view import ClusterView
from labkit.errors import LabError
from labkit.inputs import check_port, check_protocol, check_timeout, dns1123_label, shown
from labkit.lab import OUTSIDE, Lab, split_pod_ref
from labkit.model.addresses import is_ip
from labkit.model.objects import (
    is_host_network,
    name_of,
    namespace_of,
    node_internal_ip,
    pod_ip,
    pod_node,
)
from labkit.widgets.path_draw import Dnat, NodeHop, PathFacts, Place, path_diagram
from labkit.widgets.path_facts import (
    DropRule,
    Flow,
    Link,
    counted_drops,
    drop_rules,
    new_flows,
    parse_conntrack,
    parse_links,
    parse_route_get,
    peer_index,
    routed_addresses,
    workload_iface,
)
from labkit.widgets.picture import Picture

Obj = dict[str, Any]
INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
"""A Linux interface name (IFNAMSIZ 16 with the NUL), the only thing read into a /proc path."""
Snapshot = dict[str, tuple[list[Flow] | None, list[DropRule] | None]]
"""Per node: its conntrack flows to the target and its DROP rules (None: the node could not say)."""


def source_place(view: ClusterView, src: object) -> tuple[Place, str]:
    """The probe's source as drawn and as ``lab.probe`` takes it: a pod ``namespace/name``,
    ``node:NAME`` or OUTSIDE."""
    if src == OUTSIDE:
        return Place("outside", "world", "outside the cluster", None), OUTSIDE
    text = src if isinstance(src, str) else ""
    if text.startswith("node:"):
        node = view.node(text[5:])
        if node is None:
            raise LabError(
                f"src {shown(src)} names no node of this lab.",
                f"Pass one of: {', '.join('node:' + name_of(n) for n in view.nodes)}.",
            )
        name = name_of(node)
        return Place("node", name, node_internal_ip(node) or "", name), name
    if "/" in text:
        ns, name = split_pod_ref(text)
        pod = view.pod(name, ns) if not dns1123_label(ns) else None
        if pod is not None and pod_ip(pod):
            return Place("pod", f"{ns}/{name}", pod_ip(pod) or "", pod_node(pod)), f"{ns}/{name}"
        raise LabError(
            f"src {shown(src)} is not a running pod with an address.",
            "Pass a pod that `kubectl get pods -A -o wide` lists with an IP, as 'namespace/name'.",
        )
    raise LabError(
        f"src {shown(src)} is not a pod, a node or the outside world.",
        "Pass a pod as 'namespace/name', a node as 'node:NAME', or labkit.OUTSIDE.",
    )


def service_target(
    view: ClusterView, target: object, port: int, protocol: str, namespace: str
) -> tuple[str, Obj | None]:
    """The address to probe and the Service behind it (None for a plain address): a Service
    given by name (``name`` or ``namespace/name``) must serve ``port``."""
    if isinstance(target, str) and is_ip(target):
        return target, _service_at(view, target, port, protocol)
    text = target if isinstance(target, str) else ""
    ns, _, name = text.rpartition("/")
    ns = ns or namespace
    svc = None if dns1123_label(ns) or dns1123_label(name) else view.service(name, ns)
    if svc is None:
        raise LabError(
            f"target {shown(target)} is not an IP address or a Service of namespace {ns!r}.",
            "Pass an IP address, or a Service that `kubectl get svc -A` lists, as 'name' or "
            "'namespace/name'.",
        )
    spec = svc.get("spec") or {}
    cluster_ip = spec.get("clusterIP")
    if not cluster_ip or cluster_ip == "None":
        raise LabError(
            f"Service {ns}/{name} has no ClusterIP (headless or ExternalName): nothing DNATs it.",
            "Probe one of its pods' IPs instead, or a Service with a ClusterIP.",
        )
    served = [(p.get("port"), p.get("protocol", "TCP")) for p in spec.get("ports") or []]
    if (port, protocol) not in served:
        ports = ", ".join(f"{n}/{pr}" for n, pr in served) or "none"
        raise LabError(
            f"Service {ns}/{name} does not serve {port}/{protocol}.",
            f"Pass one of its ports: {ports}.",
        )
    return str(cluster_ip), svc


def _service_at(view: ClusterView, ip: str, port: int, protocol: str) -> Obj | None:
    """The Service a probe to ``ip:port`` meets: its ClusterIP, a load-balancer address, or a
    node's address with its node port."""
    node_ips = {a.ip for a in view.node_addresses()}
    for svc in view.services:
        spec = svc.get("spec") or {}
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addresses = {spec.get("clusterIP"), *(i.get("ip") for i in ingress)}
        for p in spec.get("ports") or []:
            if p.get("protocol", "TCP") != protocol:
                continue
            if (ip in addresses and p.get("port") == port) or (
                ip in node_ips and p.get("nodePort") == port
            ):
                return svc
    return None


def snapshot(lab: Lab, nodes: Sequence[str], ip: str, protocol: str) -> Snapshot:
    """Each node's conntrack flows to ``ip`` and its DROP rules with counters (None where the
    node could not say)."""
    out: Snapshot = {}
    for node in nodes:
        ct = lab.node_exec(node, ["conntrack", "-L", "-p", protocol.lower(), "--orig-dst", ip])
        save = lab.node_exec(node, ["iptables-save", "-c"])
        out[node] = (
            parse_conntrack(ct.stdout) if ct.ok else None,
            drop_rules(save.stdout) if save.ok else None,
        )
    return out


def pod_flows(lab: Lab, pod_ref: str, ip: str, protocol: str) -> list[Flow] | None:
    """The conntrack flows to ``ip`` in a pod's own namespace, where Cilium's socket LB
    translates a Service (None where the pod cannot run ``conntrack``)."""
    ns, name = split_pod_ref(pod_ref)
    ct = lab.exec(name, ["conntrack", "-L", "-p", protocol.lower(), "--orig-dst", ip], namespace=ns)
    return parse_conntrack(ct.stdout) if ct.ok else None


def find_dnat(
    view: ClusterView,
    svc: Obj,
    ip: str,
    port: int,
    served_by: str | None,
    seen: Mapping[str, list[Flow]],
) -> Dnat | str:
    """The endpoint the Service's DNAT chose: from conntrack's new flows on the node that
    translated them, else from the pod that answered, else why it cannot be told."""
    ref = f"{namespace_of(svc)}/{name_of(svc)}"
    endpoints = view.endpoints(name_of(svc), namespace_of(svc))
    by_ip = {e.ip: e.pod for e in endpoints}
    found = [
        (node, f)
        for node, flows in seen.items()
        for f in flows
        if f.dst == ip and f.dport == port and f.translated
    ]
    found.sort(key=lambda nf: by_ip.get(nf[1].reply_src) != served_by)
    if found:
        node, flow = found[0]
        endpoint = f"{flow.reply_src}:{flow.reply_sport}"
        return Dnat(
            ref,
            f"{ip}:{port}",
            endpoint,
            by_ip.get(flow.reply_src),
            node,
            f"seen in conntrack on {node}",
        )
    answered = next((e for e in endpoints if served_by and e.pod == served_by), None)
    if answered is not None:
        number = next((p.number for p in answered.ports), port)
        return Dnat(
            ref,
            f"{ip}:{port}",
            f"{answered.ip}:{number}",
            answered.pod,
            None,
            "conntrack showed no new flow; the pod that answered the probe",
        )
    listed = ", ".join(e.ip for e in endpoints) or "none"
    return f"conntrack showed no new flow and nothing answered; kube-proxy's endpoints: {listed}"


def dnat_from_drop(
    lab: Lab,
    view: ClusterView,
    svc: Obj,
    ip: str,
    port: int,
    drops: Sequence[tuple[str, DropRule]],
) -> Dnat | None:
    """The endpoint a dropped probe was sent to, when conntrack cannot say (a packet dropped
    before it left the node never confirms its conntrack entry): the Calico to-workload chain
    that dropped it names the endpoint's veth, and the node's routes out of that veth give its
    address; the endpoint's port is the one its EndpointSlice lists for the Service port."""
    svc_port: Mapping[str, Any] = next(
        (p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), {}
    )
    endpoints = {e.ip: e for e in view.endpoints(name_of(svc), namespace_of(svc))}
    for node, rule in drops:
        iface = workload_iface(rule.chain)
        if iface is None or not INTERFACE.fullmatch(iface):
            continue
        routes = lab.node_exec(node, ["ip", "-4", "route", "show", "dev", iface])
        found = [a for a in routed_addresses(routes.stdout) if a in endpoints] if routes.ok else []
        if found:
            ep = endpoints[found[0]]
            number = next(
                (p.number for p in ep.ports if p.name == (svc_port.get("name") or None)), port
            )
            return Dnat(
                f"{namespace_of(svc)}/{name_of(svc)}",
                f"{ip}:{port}",
                f"{ep.ip}:{number}",
                ep.pod,
                node,
                f"conntrack kept no flow (dropped on {node}); the dropping chain {rule.chain} "
                f"polices the veth {iface} routed to {ep.ip}",
            )
    return None


def _place_of(view: ClusterView, ip: str) -> Place | None:
    """What owns an address: a pod (not host-network), else a node, else nothing in the lab."""
    for pod in view.pods:
        if pod_ip(pod) == ip and not is_host_network(pod):
            return Place("pod", f"{namespace_of(pod)}/{name_of(pod)}", ip, pod_node(pod))
    node = next((a.name for a in view.node_addresses() if a.ip == ip), None)
    return Place("node", node, ip, node) if node else None


def _route(lab: Lab, view: ClusterView, node: str, ip: str) -> NodeHop:
    """Where ``node`` sends ``ip`` (`ip route get`), and whether it holds a /32 for it."""
    result = lab.node_exec(node, ["ip", "route", "get", ip])
    node_ip = next((a.ip for a in view.node_addresses() if a.name == node), "")
    parsed = parse_route_get(result.stdout) if result.ok else None
    if parsed is None:
        return NodeHop(node, node_ip, f"`ip route get {ip}` said {result.stderr.strip()[:60]!r}")
    exact = lab.node_exec(node, ["ip", "route", "show", "exact", f"{ip}/32"])
    return NodeHop(node, node_ip, parsed, exact.ok and bool(exact.stdout.strip()))


def _gateway(lab: Lab, pod_ref: str, ip: str) -> str | None:
    """The source pod's next hop towards ``ip``, from its own `ip route get` (None: direct, or
    the pod cannot say)."""
    ns, name = split_pod_ref(pod_ref)
    result = lab.exec(name, ["ip", "route", "get", ip], namespace=ns)
    route = parse_route_get(result.stdout) if result.ok else None
    return route.via if route else None


def _proxy_arp(lab: Lab, node: str, veth: Link | str | None) -> bool:
    """Whether the veth answers ARP for addresses it does not own (Calico sets proxy_arp on
    every cali veth so 169.254.1.1 answers)."""
    if not isinstance(veth, Link) or not INTERFACE.fullmatch(veth.name):
        return False
    result = lab.node_exec(node, ["cat", f"/proc/sys/net/ipv4/conf/{veth.name}/proxy_arp"])
    return result.ok and result.stdout.strip() == "1"


def _veth(lab: Lab, pod_ref: str, node: str) -> Link | str:
    """The node's end of the pod's eth0, found by the peer index eth0 shows (``eth0@ifN``)."""
    ns, name = split_pod_ref(pod_ref)
    inside = lab.exec(name, ["ip", "-o", "link", "show", "eth0"], namespace=ns)
    index = peer_index(inside.stdout) if inside.ok else None
    if index is None:
        return "the pod cannot run `ip -o link show eth0`"
    links = lab.node_exec(node, ["ip", "-o", "link"])
    found = next((link for link in parse_links(links.stdout) if link.index == index), None)
    return found or f"no interface {index} on {node}"


def packet_path(
    lab: Lab,
    src: str,
    target: str,
    port: int,
    protocol: str = "TCP",
    namespace: str = "default",
    timeout: float = 1.0,
) -> Picture:
    """Probe ``target:port`` from ``src`` (a pod ``namespace/name``, ``node:NAME`` or OUTSIDE)
    and draw the path the packet took; ``target`` is an IP or a Service (``name`` in
    ``namespace``, or ``namespace/name``)."""
    port = check_port(port)
    protocol = check_protocol(protocol)
    timeout = check_timeout(timeout)
    if not isinstance(namespace, str) or dns1123_label(namespace):
        raise LabError(
            f"namespace {shown(namespace)} is not a namespace name.",
            "Pass the Service's namespace, such as 'default' or 'three-tier'.",
        )
    view = ClusterView(lab)
    source, probe_src = source_place(view, src)
    ip, svc = service_target(view, target, port, protocol, namespace)
    nodes = [name_of(n) for n in view.nodes]
    in_pod = svc is not None and source.kind == "pod" and lab.cni == "cilium"
    before = snapshot(lab, nodes, ip, protocol)
    pod_before = pod_flows(lab, probe_src, ip, protocol) if in_pod else None
    probe = lab.probe(probe_src, ip, port, protocol, timeout)
    after = snapshot(lab, nodes, ip, protocol)
    pod_after = pod_flows(lab, probe_src, ip, protocol) if in_pod else None
    seen = {
        n: new_flows(before[n][0] or [], after[n][0] or [])
        for n in nodes
        if after[n][0] is not None
    }
    drops = tuple(
        (n, rule)
        for n in nodes
        if before[n][1] is not None and after[n][1] is not None
        for rule in counted_drops(before[n][1] or [], after[n][1] or [])
    )
    dnat = find_dnat(view, svc, ip, port, probe.served_by, seen) if svc is not None else None
    if svc is not None and pod_after is not None and source.node:
        in_client = find_dnat(
            view,
            svc,
            ip,
            port,
            probe.served_by,
            {source.node: new_flows(pod_before or [], pod_after)},
        )
        if isinstance(in_client, Dnat) and in_client.evidence.startswith("seen in conntrack"):
            why = f"seen in conntrack in pod {probe_src} (Cilium's socket LB translates there)"
            dnat = dataclasses.replace(in_client, evidence=why)
    if svc is not None and isinstance(dnat, str):
        dnat = dnat_from_drop(lab, view, svc, ip, port, drops) or dnat
    final_ip, dest_port = ip, port
    if isinstance(dnat, Dnat):
        final_ip, _, number = dnat.endpoint.rpartition(":")
        dest_port = int(number)
    destination = _place_of(view, final_ip)
    entry = source.node or (dnat.node if isinstance(dnat, Dnat) else None)
    entry = entry or (destination.node if destination else None)
    hop_nodes = [n for n in dict.fromkeys([entry, destination.node if destination else None]) if n]
    veth = _veth(lab, probe_src, source.node) if source.kind == "pod" and source.node else None
    facts = PathFacts(
        title=f"packet path: {src} to {target}:{port}/{protocol} on lab {lab.name} "
        f"({lab.backend}, {lab.cni})",
        source=source,
        target=f"to {ip}:{port}",
        probe=probe,
        veth=veth,
        gateway=_gateway(lab, probe_src, ip) if source.kind == "pod" else None,
        proxy_arp=_proxy_arp(lab, source.node or "", veth),
        dnat=dnat,
        hops=tuple(_route(lab, view, n, final_ip) for n in hop_nodes),
        destination=destination,
        dest_port=dest_port,
        drops=drops,
        verdict=_policy_says(lab, view, source, destination, dest_port, protocol),
        node_ips=tuple(a.ip for a in view.node_addresses()),
    )
    return Picture(path_diagram(facts))


def _policy_says(
    lab: Lab,
    view: ClusterView,
    source: Place,
    destination: Place | None,
    port: int,
    protocol: str,
) -> str | None:
    """Which policy denies the flow, as the NetworkPolicy model says (None when it is allowed
    or either end is not a pod); marked when this lab's CNI does not enforce it."""
    if source.kind != "pod" or destination is None or destination.kind != "pod":
        return None
    src_pod = view.pod(*reversed(split_pod_ref(source.name)))
    dst_pod = view.pod(*reversed(split_pod_ref(destination.name)))
    if src_pod is None or dst_pod is None:
        return None
    found = model_verdict(view, src_pod, dst_pod, port, protocol)
    if found is None or found.allowed:
        return None
    enforced = "" if lab.capabilities.network_policy else f" (not enforced by {lab.cni})"
    return found.reason + enforced
