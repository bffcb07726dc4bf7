"""kubectl describe for the network kinds, pure: Service (ports, target ports and endpoints
from its EndpointSlices), Endpoints, NetworkPolicy (the "Allowing ingress traffic:" prose) and
Ingress (rules and backends with their endpoints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.printers.cells import (
    SHOWN_AT_MOST,
    UNSET,
    format_label_selector,
    format_labels,
    load_balancer_addresses,
)
from labkit.printers.describe import Writer, go_time
from labkit.tables import EMPTY

Obj = Mapping[str, Any]


def slice_endpoints_for_port(slices: Sequence[Obj], port_name: str) -> str:
    """``ip:port`` of the ready endpoints serving the Service port named ``port_name`` (""
    for an unnamed port), the first three then ``+ N more...``; ``<none>`` without slices."""
    if not slices:
        return EMPTY
    listed: list[str] = []
    total = 0
    for endpoint_slice in slices:
        for port in endpoint_slice.get("ports") or []:
            if (port.get("name") or "") != port_name:
                continue
            for endpoint in endpoint_slice.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    total += 1
                    host = f"[{address}]" if ":" in str(address) else str(address)
                    listed.append(f"{host}:{port.get('port')}")
    shown = ",".join(listed[:SHOWN_AT_MOST])
    return f"{shown} + {total - SHOWN_AT_MOST} more..." if total > SHOWN_AT_MOST else shown


def describe_service(service: Obj, slices: Sequence[Obj]) -> str:
    """``kubectl describe service``: selector, type, IPs, each port with its target and
    endpoints, affinity and traffic policies."""
    spec, status = service.get("spec") or {}, service.get("status") or {}
    w = Writer()
    w.header(service)
    w.line(0, f"Selector:\t{format_labels(spec.get('selector'))}")
    w.line(0, f"Type:\t{spec.get('type', 'ClusterIP')}")
    if spec.get("ipFamilyPolicy"):
        w.line(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}")
    w.line(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or EMPTY}")
    w.line(0, f"IP:\t{spec.get('clusterIP', '')}")
    w.line(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or EMPTY}")
    if spec.get("externalIPs"):
        w.line(0, f"External IPs:\t{','.join(spec['externalIPs'])}")
    if spec.get("loadBalancerIP"):
        w.line(0, f"IP:\t{spec['loadBalancerIP']}")
    if spec.get("externalName"):
        w.line(0, f"External Name:\t{spec['externalName']}")
    balancer = load_balancer_addresses(status.get("loadBalancer"), wide=True)
    if balancer:
        w.line(0, f"LoadBalancer Ingress:\t{balancer}")
    for port in spec.get("ports") or []:
        name = port.get("name") or UNSET
        protocol = port.get("protocol") or "TCP"
        w.line(0, f"Port:\t{name}\t{port.get('port')}/{protocol}")
        w.line(0, f"TargetPort:\t{port.get('targetPort', port.get('port'))}/{protocol}")
        if port.get("nodePort"):
            w.line(0, f"NodePort:\t{name}\t{port['nodePort']}/{protocol}")
        w.line(0, f"Endpoints:\t{slice_endpoints_for_port(slices, port.get('name') or '')}")
    w.line(0, f"Session Affinity:\t{spec.get('sessionAffinity', 'None')}")
    if spec.get("externalTrafficPolicy"):
        w.line(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}")
    if spec.get("healthCheckNodePort"):
        w.line(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}")
    if spec.get("internalTrafficPolicy"):
        w.line(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}")
    w.no_events()
    return w.text()


def describe_endpoints(endpoints: Obj) -> str:
    """``kubectl describe endpoints``: each subset's ready and not-ready addresses and ports."""
    w = Writer()
    w.header(endpoints)
    w.line(0, "Subsets:")
    for subset in endpoints.get("subsets") or []:
        for key, title in (("addresses", "Addresses"), ("notReadyAddresses", "NotReadyAddresses")):
            ips = ",".join(str(a.get("ip")) for a in subset.get(key) or [])
            w.line(1, f"{title}:\t{ips or EMPTY}")
        if subset.get("ports"):
            w.line(1, "Ports:")
            w.line(2, "Name\tPort\tProtocol")
            w.line(2, "----\t----\t--------")
            for port in subset["ports"]:
                name, protocol = port.get("name") or UNSET, port.get("protocol", "TCP")
                w.line(2, f"{name}\t{port.get('port')}\t{protocol}")
        w.line(0, "")
    w.no_events()
    return w.text()


def _peers(w: Writer, peers: Sequence[Obj], title: str, anyone: str) -> None:
    if not peers:
        w.line(2, f"{title}: <any> (traffic not restricted by {anyone})")
        return
    for peer in peers:
        w.line(2, f"{title}:")
        pods, namespaces, block = (
            peer.get("podSelector"),
            peer.get("namespaceSelector"),
            peer.get("ipBlock"),
        )
        if namespaces is not None:
            w.line(3, f"NamespaceSelector: {format_label_selector(namespaces)}")
        if pods is not None:
            w.line(3, f"PodSelector: {format_label_selector(pods)}")
        if pods is None and namespaces is None and block is not None:
            w.line(3, "IPBlock:")
            w.line(4, f"CIDR: {block.get('cidr')}")
            w.line(4, f"Except: {', '.join(block.get('except') or [])}")


def _rules(w: Writer, rules: Sequence[Obj], peers_key: str, title: str, direction: str) -> None:
    if not rules:
        w.line(2, f"<none> (Selected pods are isolated for {direction} connectivity)")
        return
    anyone = "source" if peers_key == "from" else "destination"
    for i, rule in enumerate(rules):
        ports = rule.get("ports") or []
        if not ports:
            w.line(2, "To Port: <any> (traffic allowed to all ports)")
        for port in ports:
            protocol = port.get("protocol") or "TCP"
            number = port.get("port", "<any>")
            if port.get("endPort") is None:
                w.line(2, f"To Port: {number}/{protocol}")
            else:
                w.line(2, f"To Port Range: {number}-{port['endPort']}/{protocol}")
        _peers(w, rule.get(peers_key) or [], title, anyone)
        if i != len(rules) - 1:
            w.line(2, "----------")


def describe_network_policy(policy: Obj) -> str:
    """``kubectl describe networkpolicy``: whom it selects and, per direction it governs, the
    traffic it allows, in kubectl's prose."""
    meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
    w = Writer()
    w.line(0, f"Name:\t{meta.get('name', '')}")
    w.line(0, f"Namespace:\t{meta.get('namespace', '')}")
    w.line(0, f"Created on:\t{go_time(meta.get('creationTimestamp'))}")
    w.multiline("Labels", meta.get("labels") or {})
    w.annotations(policy)
    w.line(0, "Spec:")
    selector = spec.get("podSelector") or {}
    if selector.get("matchLabels") or selector.get("matchExpressions"):
        w.line(1, f"PodSelector:     {format_label_selector(selector)}")
    else:
        w.line(
            1,
            "PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)",
        )
    types = list(spec.get("policyTypes") or [])
    if "Ingress" in types:
        w.line(1, "Allowing ingress traffic:")
        _rules(w, spec.get("ingress") or [], "from", "From", "ingress")
    else:
        w.line(1, "Not affecting ingress traffic")
    if "Egress" in types:
        w.line(1, "Allowing egress traffic:")
        _rules(w, spec.get("egress") or [], "to", "To", "egress")
    else:
        w.line(1, "Not affecting egress traffic")
    w.line(1, f"Policy Types: {', '.join(types)}")
    return w.text()


def _backend(
    backend: Obj, namespace: str, services: Mapping[str, Obj], slices: Mapping[str, Sequence[Obj]]
) -> str:
    service_ref = backend.get("service")
    if not service_ref:
        resource = backend.get("resource") or {}
        group, kind = resource.get("apiGroup", ""), resource.get("kind", "")
        return f"APIGroup: {group}, Kind: {kind}, Name: {resource.get('name', '')}"
    name = service_ref.get("name")
    port = service_ref.get("port") or {}
    shown_port = port.get("number") or port.get("name")
    service = services.get(name)
    if service is None:
        return f'<error: services "{name}" not found>'
    port_name = ""
    for sp in (service.get("spec") or {}).get("ports") or []:
        if (port.get("number") and sp.get("port") == port.get("number")) or (
            not port.get("number") and sp.get("name") == port.get("name")
        ):
            port_name = sp.get("name") or ""
    endpoints = slice_endpoints_for_port(slices.get(name) or [], port_name)
    return f"{name}:{shown_port} ({endpoints})"


def describe_ingress(
    ingress: Obj, services: Mapping[str, Obj], slices: Mapping[str, Sequence[Obj]]
) -> str:
    """``kubectl describe ingress``: address, class, default backend, and each rule's paths with
    the Service, port and endpoints they reach (``services`` and ``slices`` by Service name)."""
    meta, spec = ingress.get("metadata") or {}, ingress.get("spec") or {}
    namespace = str(meta.get("namespace") or "")
    w = Writer()
    w.line(0, f"Name:\t{meta.get('name', '')}")
    w.multiline("Labels", meta.get("labels") or {})
    w.line(0, f"Namespace:\t{namespace}")
    balancer = (ingress.get("status") or {}).get("loadBalancer")
    w.line(0, f"Address:	{load_balancer_addresses(balancer, wide=True)}")
    w.line(0, f"Ingress Class:\t{spec.get('ingressClassName') or EMPTY}")
    default = spec.get("defaultBackend")
    default_text = _backend(default, namespace, services, slices) if default else "<default>"
    w.line(0, f"Default backend:\t{default_text}")
    for tls in spec.get("tls") or []:
        w.line(0, "TLS:")
        w.line(1, f"{tls.get('secretName', '')} terminates {','.join(tls.get('hosts') or [])}")
    w.line(0, "Rules:")
    w.line(1, "Host\tPath\tBackends")
    w.line(1, "----\t----\t--------")
    count = 0
    for rule in spec.get("rules") or []:
        if not rule.get("http"):
            continue
        count += 1
        w.line(1, f"{rule.get('host') or '*'}\t")
        for path in rule["http"].get("paths") or []:
            backend = _backend(path.get("backend") or {}, namespace, services, slices)
            w.line(2, f"\t{path.get('path', '')} \t{backend}")
    if count == 0:
        w.line(1, f"*\t*\t{default_text}")
    w.annotations(ingress)
    w.no_events()
    return w.text()
