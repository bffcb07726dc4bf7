"""kube-proxy (iptables mode) for one sandbox node: Services + EndpointSlices -> iptables-restore lines.

The rules follow kube-proxy's ``syncProxyRules`` (pkg/proxy/iptables/proxier.go): the same chain
names and hashes, the same comments, ``1/n`` statistic probabilities, hairpin and off-cluster
masquerading, KUBE-EXT / KUBE-SVL chains for ``externalTrafficPolicy: Local``, and a filter-table
REJECT for a service port without endpoints (the "connection refused" a learner meets). Each
line is written in the canonical form ``iptables-save`` prints, chains sorted like it sorts them,
so ``iptables-save | grep my-service`` on a sandbox node reads like a real node and equals what
was rendered. Pure: no I/O.

Each table's lines declare its built-in chains too, so ``restore_text()`` output can be loaded
with a plain ``iptables-restore`` (which replaces the table) any number of times; a caller that
adds its own rules to the same table (e.g. policy enforcement) appends them to these lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labkit.errors import LabError
from labkit.model.kubeproxy import (
    endpoint_chain,
    iptables_comment,
    service_chain,
    service_port_name,
    statistic_probability,
)

__all__ = ["MASQUERADE_MARK", "render_proxy_rules", "restore_text"]

MASQUERADE_MARK = "0x4000"  # kube-proxy's default: 1 << masqueradeBit (14)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_SECONDS = 10800
_BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
_REJECT = "REJECT --reject-with icmp-port-unreachable"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    port: int
    node: str | None
    ready: bool
    serving: bool
    terminating: bool

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class _Port:
    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case, as kube-proxy hashes and matches it
    cluster_ip: str
    port: int
    node_port: int | None
    load_balancer_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    external_local: bool
    internal_local: bool
    affinity_seconds: int | None
    source_ranges: tuple[str, ...]
    health_check_node_port: int | None

    @property
    def spn(self) -> str:
        return service_port_name(self.namespace, self.name, self.port_name)

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # The Local short-circuit for pod traffic to external IPs uses the cluster-wide chain too.
        return not self.internal_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_local or (self.externally_accessible and self.external_local)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _ipv4(value: Any, what: str) -> str | None:
    """An IPv4 address as text, None for an IPv6 one (this proxier is IPv4 only); LabError if junk."""
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise LabError(
            f"{what} is {value!r}, which is not an IP address.",
            "Correct the address in the object and apply it again.",
        ) from None
    return str(addr) if addr.version == 4 else None


def _port_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise LabError(
            f"{what} is {value!r}; a port must be a number from 1 to 65535.",
            "Fix the port number in the manifest and apply it again.",
        )
    return value


def _protocol(value: Any, what: str) -> str:
    proto = _PROTOCOLS.get(str(value or "TCP").upper())
    if proto is None:
        raise LabError(
            f"{what} has protocol {value!r}, which kube-proxy does not handle.",
            "Use TCP, UDP or SCTP.",
        )
    return proto


def _service_ports(services: list[dict]) -> list[_Port]:
    """Every proxied service port; headless, ExternalName and IPv6-only services have none."""
    ports: list[_Port] = []
    for svc in services:
        kind = svc.get("kind", "Service")
        name = _meta(svc).get("name")
        if kind != "Service" or not name:
            raise LabError(
                f"render_proxy_rules got {kind} {name or '(no name)'} among the Services.",
                "Pass only Service objects with metadata.name set.",
            )
        namespace = _meta(svc).get("namespace") or "default"
        spec = svc.get("spec") or {}
        svc_type = spec.get("type") or "ClusterIP"
        raw_ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if svc_type == "ExternalName" or raw_ip in (None, "", "None"):
            continue
        cluster_ip = _ipv4(raw_ip, f"Service {namespace}/{name} clusterIP")
        if cluster_ip is None:
            continue
        lb_ips: list[str] = []
        if svc_type == "LoadBalancer":
            for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get(
                "ingress"
            ) or []:
                if ingress.get("ip"):
                    ip = _ipv4(
                        ingress["ip"], f"Service {namespace}/{name} load balancer ingress IP"
                    )
                    if ip and ip not in lb_ips:
                        lb_ips.append(ip)
        external_ips = [
            ip
            for raw in spec.get("externalIPs") or []
            if (ip := _ipv4(raw, f"Service {namespace}/{name} externalIP"))
        ]
        externally_accessible = svc_type in ("NodePort", "LoadBalancer") or bool(external_ips)
        external_local = externally_accessible and spec.get("externalTrafficPolicy") == "Local"
        affinity = None
        if spec.get("sessionAffinity") == "ClientIP":
            config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
            affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
        ranges: list[str] = []
        for raw in spec.get("loadBalancerSourceRanges") or []:
            try:
                ranges.append(str(ipaddress.ip_network(str(raw).strip(), strict=False)))
            except ValueError:
                raise LabError(
                    f"Service {namespace}/{name} has loadBalancerSourceRanges entry {raw!r}, "
                    "which is not a CIDR.",
                    "Write each range like 203.0.113.0/24.",
                ) from None
        health = (
            spec.get("healthCheckNodePort")
            if svc_type == "LoadBalancer" and external_local
            else None
        )
        for index, port in enumerate(spec.get("ports") or []):
            what = f"Service {namespace}/{name} port {port.get('name') or index}"
            node_port = port.get("nodePort") if svc_type in ("NodePort", "LoadBalancer") else None
            ports.append(
                _Port(
                    namespace=namespace,
                    name=name,
                    port_name=port.get("name") or "",
                    protocol=_protocol(port.get("protocol"), what),
                    cluster_ip=cluster_ip,
                    port=_port_number(port.get("port"), what),
                    node_port=_port_number(node_port, f"{what} nodePort") if node_port else None,
                    load_balancer_ips=tuple(lb_ips),
                    external_ips=tuple(external_ips),
                    external_local=external_local,
                    internal_local=spec.get("internalTrafficPolicy") == "Local",
                    affinity_seconds=affinity,
                    source_ranges=tuple(ranges),
                    health_check_node_port=_port_number(health, f"{what} healthCheckNodePort")
                    if health
                    else None,
                )
            )
    ports.sort(key=lambda p: (p.namespace, p.name, p.port_name, p.protocol))
    return ports


def _endpoints(slices: list[dict]) -> dict[tuple[str, str, str, str], list[_Endpoint]]:
    """(namespace, service, port name, protocol) -> endpoints, ordered by ``ip:port`` like kube-proxy."""
    found: dict[tuple[str, str, str, str], dict[str, _Endpoint]] = {}
    for eps in slices:
        meta = _meta(eps)
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service or eps.get("addressType", "IPv4") != "IPv4":
            continue
        namespace = meta.get("namespace") or "default"
        for index, port in enumerate(eps.get("ports") or []):
            if port.get("port") is None:
                continue
            what = f"EndpointSlice {namespace}/{meta.get('name')} port {port.get('name') or index}"
            number = _port_number(port.get("port"), what)
            key = (
                namespace,
                service,
                port.get("name") or "",
                _protocol(port.get("protocol"), what),
            )
            bucket = found.setdefault(key, {})
            for endpoint in eps.get("endpoints") or []:
                addresses = endpoint.get("addresses") or []
                if not addresses:
                    continue
                ip = _ipv4(addresses[0], f"{what} endpoint address")
                if ip is None:
                    continue
                cond = endpoint.get("conditions") or {}
                ready = cond.get("ready") is not False
                serving = ready if cond.get("serving") is None else bool(cond.get("serving"))
                ep = _Endpoint(
                    ip,
                    number,
                    endpoint.get("nodeName"),
                    ready,
                    serving,
                    bool(cond.get("terminating")),
                )
                bucket.setdefault(ep.address, ep)
    return {key: [eps[a] for a in sorted(eps)] for key, eps in found.items()}


def _categorize(
    port: _Port, endpoints: list[_Endpoint], node: str
) -> tuple[list[_Endpoint], list[_Endpoint], list[_Endpoint], bool]:
    """kube-proxy's CategorizeEndpoints: (cluster, local, all reachable from here, any usable anywhere)."""
    cluster: list[_Endpoint] = []
    has_any = False
    if port.uses_cluster_endpoints:
        cluster = [e for e in endpoints if e.ready]
        if not cluster:  # no ready endpoint anywhere: fall back to serving, terminating ones
            cluster = [e for e in endpoints if e.serving and e.terminating]
        has_any = bool(cluster)
    if not port.uses_local_endpoints:
        return cluster, [], cluster, has_any
    has_any = has_any or any(e.ready or (e.serving and e.terminating) for e in endpoints)
    local = [e for e in endpoints if e.node == node and e.ready]
    if not local:
        local = [e for e in endpoints if e.node == node and e.serving and e.terminating]
    if not port.uses_cluster_endpoints:
        return [], local, local, has_any
    reachable = cluster + [e for e in local if e not in cluster]
    return cluster, local, reachable, has_any


# --------------------------------------------------------------------------- output


def _cidr(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


def _comment(text: str) -> str:
    return f"-m comment --comment {iptables_comment(text)}"


def _rule(
    chain: str,
    *,
    src: str | None = None,
    not_src: bool = False,
    dst: str | None = None,
    proto: str | None = None,
    matches: tuple[str, ...] = (),
    target: str | None = None,
) -> str:
    """One ``-A`` line in iptables-save's canonical order: addresses, protocol, matches, target."""
    parts = ["-A", chain]
    if src:
        parts += (["!"] if not_src else []) + ["-s", _cidr(src)]
    if dst:
        parts += ["-d", _cidr(dst)]
    if proto:
        parts += ["-p", proto]
    parts += matches
    if target:
        parts += ["-j", target]
    return " ".join(parts)


class _Tables:
    """Chains and rules per table, emitted the way iptables-save orders them."""

    def __init__(self) -> None:
        self.chains: dict[str, set[str]] = {table: set() for table in _BUILTIN_CHAINS}
        self.rules: dict[str, dict[str, list[str]]] = {table: {} for table in _BUILTIN_CHAINS}

    def declare(self, table: str, *chains: str) -> None:
        self.chains[table].update(chains)

    def add(self, table: str, rule: str) -> None:
        chain = rule.split(" ", 2)[1]
        if chain not in _BUILTIN_CHAINS[table]:
            self.chains[table].add(chain)
        self.rules[table].setdefault(chain, []).append(rule)

    def lines(self, table: str) -> list[str]:
        builtins = _BUILTIN_CHAINS[table]
        user = sorted(self.chains[table] - set(builtins))
        out = [f":{chain} ACCEPT [0:0]" for chain in builtins] + [
            f":{chain} - [0:0]" for chain in user
        ]
        for chain in (*builtins, *user):
            out.extend(self.rules[table].get(chain, []))
        return out


def _base_rules(t: _Tables) -> None:
    """The node-wide chains and the jumps into them from the built-in chains."""
    t.declare(
        "nat",
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
        "KUBE-PROXY-CANARY",
    )
    t.declare(
        "filter",
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-FIREWALL",
        "KUBE-FIREWALL",
        "KUBE-PROXY-CANARY",
    )
    portals = _comment("kubernetes service portals")
    new = "-m conntrack --ctstate NEW"
    for chain in ("PREROUTING", "OUTPUT"):
        t.add("nat", _rule(chain, matches=(portals,), target="KUBE-SERVICES"))
    t.add(
        "nat",
        _rule(
            "POSTROUTING",
            matches=(_comment("kubernetes postrouting rules"),),
            target="KUBE-POSTROUTING",
        ),
    )
    mark = f"{MASQUERADE_MARK}/{MASQUERADE_MARK}"
    t.add("nat", _rule("KUBE-POSTROUTING", matches=(f"-m mark ! --mark {mark}",), target="RETURN"))
    t.add("nat", _rule("KUBE-POSTROUTING", target=f"MARK --set-xmark {MASQUERADE_MARK}/0x0"))
    t.add(
        "nat",
        _rule(
            "KUBE-POSTROUTING",
            matches=(_comment("kubernetes service traffic requiring SNAT"),),
            target="MASQUERADE --random-fully",
        ),
    )
    t.add("nat", _rule("KUBE-MARK-MASQ", target=f"MARK --set-xmark {mark}"))

    lb_firewall = (new, _comment("kubernetes load balancer firewall"))
    external = (new, _comment("kubernetes externally-visible service portals"))
    t.add("filter", _rule("INPUT", matches=lb_firewall, target="KUBE-PROXY-FIREWALL"))
    t.add(
        "filter",
        _rule(
            "INPUT",
            matches=(_comment("kubernetes health check service ports"),),
            target="KUBE-NODEPORTS",
        ),
    )
    t.add("filter", _rule("INPUT", matches=external, target="KUBE-EXTERNAL-SERVICES"))
    t.add("filter", _rule("INPUT", target="KUBE-FIREWALL"))
    t.add("filter", _rule("FORWARD", matches=lb_firewall, target="KUBE-PROXY-FIREWALL"))
    t.add(
        "filter",
        _rule("FORWARD", matches=(_comment("kubernetes forwarding rules"),), target="KUBE-FORWARD"),
    )
    t.add("filter", _rule("FORWARD", matches=(new, portals), target="KUBE-SERVICES"))
    t.add("filter", _rule("FORWARD", matches=external, target="KUBE-EXTERNAL-SERVICES"))
    t.add("filter", _rule("OUTPUT", matches=lb_firewall, target="KUBE-PROXY-FIREWALL"))
    t.add("filter", _rule("OUTPUT", matches=(new, portals), target="KUBE-SERVICES"))
    t.add("filter", _rule("OUTPUT", target="KUBE-FIREWALL"))
    t.add(
        "filter",
        _rule(
            "KUBE-FIREWALL",
            src="127.0.0.0/8",
            not_src=True,
            dst="127.0.0.0/8",
            matches=(
                _comment("block incoming localnet connections"),
                "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT",
            ),
            target="DROP",
        ),
    )
    t.add(
        "filter", _rule("KUBE-FORWARD", matches=("-m conntrack --ctstate INVALID",), target="DROP")
    )
    t.add(
        "filter",
        _rule(
            "KUBE-FORWARD",
            matches=(_comment("kubernetes forwarding rules"), f"-m mark --mark {mark}"),
            target="ACCEPT",
        ),
    )
    t.add(
        "filter",
        _rule(
            "KUBE-FORWARD",
            matches=(
                _comment("kubernetes forwarding conntrack rule"),
                "-m conntrack --ctstate RELATED,ESTABLISHED",
            ),
            target="ACCEPT",
        ),
    )


def _render_port(
    t: _Tables,
    port: _Port,
    endpoints: list[_Endpoint],
    node_name: str,
    node_ip: str | None,
    cluster_cidr: str,
) -> None:
    """One service port's rules, following kube-proxy's syncProxyRules step by step."""
    spn, proto = port.spn, port.protocol
    cluster_eps, local_eps, reachable, has_endpoints = _categorize(port, endpoints, node_name)
    svc = service_chain("KUBE-SVC-", spn, proto)
    svl = service_chain("KUBE-SVL-", spn, proto)
    ext = service_chain("KUBE-EXT-", spn, proto)
    fw = service_chain("KUBE-FW-", spn, proto)
    internal_chain = svl if port.internal_local else svc
    has_internal = has_endpoints and (not port.internal_local or bool(local_eps))
    external_policy_chain = svl if port.external_local else svc
    has_external = has_endpoints and (not port.external_local or bool(local_eps))
    uses_fw = has_endpoints and bool(port.load_balancer_ips) and bool(port.source_ranges)
    lb_chain = fw if uses_fw else ext
    if not has_endpoints:
        internal_filter = external_filter = (_comment(f"{spn} has no endpoints"), _REJECT)
    else:
        no_local = (_comment(f"{spn} has no local endpoints"), "DROP")
        internal_filter = no_local if not has_internal else None
        external_filter = no_local if not has_external else None
    dport = f"-m {proto} --dport {port.port}"

    if has_internal:
        t.add(
            "nat",
            _rule(
                "KUBE-SERVICES",
                dst=port.cluster_ip,
                proto=proto,
                matches=(_comment(f"{spn} cluster IP"), dport),
                target=internal_chain,
            ),
        )
    elif internal_filter:
        t.add(
            "filter",
            _rule(
                "KUBE-SERVICES",
                dst=port.cluster_ip,
                proto=proto,
                matches=(internal_filter[0], dport),
                target=internal_filter[1],
            ),
        )
    for ip in port.external_ips:
        if has_endpoints:
            t.add(
                "nat",
                _rule(
                    "KUBE-SERVICES",
                    dst=ip,
                    proto=proto,
                    matches=(_comment(f"{spn} external IP"), dport),
                    target=ext,
                ),
            )
        if external_filter:
            t.add(
                "filter",
                _rule(
                    "KUBE-EXTERNAL-SERVICES",
                    dst=ip,
                    proto=proto,
                    matches=(external_filter[0], dport),
                    target=external_filter[1],
                ),
            )
    for ip in port.load_balancer_ips:
        if has_endpoints:
            t.add(
                "nat",
                _rule(
                    "KUBE-SERVICES",
                    dst=ip,
                    proto=proto,
                    matches=(_comment(f"{spn} loadbalancer IP"), dport),
                    target=lb_chain,
                ),
            )
        if uses_fw:
            t.add(
                "filter",
                _rule(
                    "KUBE-PROXY-FIREWALL",
                    dst=ip,
                    proto=proto,
                    matches=(_comment(f"{spn} traffic not accepted by {fw}"), dport),
                    target="DROP",
                ),
            )
    if external_filter:
        for ip in port.load_balancer_ips:
            t.add(
                "filter",
                _rule(
                    "KUBE-EXTERNAL-SERVICES",
                    dst=ip,
                    proto=proto,
                    matches=(external_filter[0], dport),
                    target=external_filter[1],
                ),
            )
    if port.node_port:
        node_dport = f"-m {proto} --dport {port.node_port}"
        if has_endpoints:
            t.add(
                "nat",
                _rule(
                    "KUBE-NODEPORTS", proto=proto, matches=(_comment(spn), node_dport), target=ext
                ),
            )
        if external_filter:
            t.add(
                "filter",
                _rule(
                    "KUBE-EXTERNAL-SERVICES",
                    proto=proto,
                    matches=(external_filter[0], "-m addrtype --dst-type LOCAL", node_dport),
                    target=external_filter[1],
                ),
            )
    if port.health_check_node_port:
        t.add(
            "filter",
            _rule(
                "KUBE-NODEPORTS",
                proto="tcp",
                matches=(
                    _comment(f"{spn} health check node port"),
                    f"-m tcp --dport {port.health_check_node_port}",
                ),
                target="ACCEPT",
            ),
        )

    if has_internal:  # clients from outside the pod network reach the cluster IP with SNAT
        t.add(
            "nat",
            _rule(
                internal_chain,
                src=cluster_cidr,
                not_src=True,
                dst=port.cluster_ip,
                proto=proto,
                matches=(_comment(f"{spn} cluster IP"), dport),
                target="KUBE-MARK-MASQ",
            ),
        )
    if has_endpoints and port.externally_accessible:
        t.declare("nat", ext)
        if not port.external_local:
            t.add(
                "nat",
                _rule(
                    ext,
                    matches=(_comment(f"masquerade traffic for {spn} external destinations"),),
                    target="KUBE-MARK-MASQ",
                ),
            )
        else:
            t.add(
                "nat",
                _rule(
                    ext,
                    src=cluster_cidr,
                    matches=(_comment(f"pod traffic for {spn} external destinations"),),
                    target=svc,
                ),
            )
            t.add(
                "nat",
                _rule(
                    ext,
                    matches=(
                        _comment(f"masquerade LOCAL traffic for {spn} external destinations"),
                        "-m addrtype --src-type LOCAL",
                    ),
                    target="KUBE-MARK-MASQ",
                ),
            )
            t.add(
                "nat",
                _rule(
                    ext,
                    matches=(
                        _comment(f"route LOCAL traffic for {spn} external destinations"),
                        "-m addrtype --src-type LOCAL",
                    ),
                    target=svc,
                ),
            )
        if has_external:
            t.add("nat", _rule(ext, target=external_policy_chain))
    if uses_fw:
        t.declare("nat", fw)
        lb_comment = (_comment(f"{spn} loadbalancer IP"),)
        allow_node = False
        for source in port.source_ranges:
            t.add("nat", _rule(fw, src=source, matches=lb_comment, target=ext))
            if node_ip and ipaddress.ip_address(node_ip) in ipaddress.ip_network(source):
                allow_node = True
        if allow_node:
            for ip in port.load_balancer_ips:
                t.add("nat", _rule(fw, src=ip, matches=lb_comment, target=ext))
        t.add(
            "nat",
            _rule(
                fw,
                matches=(
                    _comment(f"other traffic to {spn} will be dropped by KUBE-PROXY-FIREWALL"),
                ),
            ),
        )

    if cluster_eps and port.uses_cluster_endpoints:
        t.declare("nat", svc)
        _dispatch(t, port, svc, cluster_eps)
    if local_eps and port.uses_local_endpoints:
        t.declare("nat", svl)
        _dispatch(t, port, svl, local_eps)
    for ep in reachable:
        sep = endpoint_chain(spn, proto, ep.address)
        t.add("nat", _rule(sep, src=ep.ip, matches=(_comment(spn),), target="KUBE-MARK-MASQ"))
        affinity = (
            (f"-m recent --set --name {sep} --mask 255.255.255.255 --rsource",)
            if port.affinity_seconds
            else ()
        )
        t.add(
            "nat",
            _rule(
                sep,
                proto=proto,
                matches=(_comment(spn), *affinity, f"-m {proto}"),
                target=f"DNAT --to-destination {ep.address}",
            ),
        )


def _dispatch(t: _Tables, port: _Port, chain: str, endpoints: list[_Endpoint]) -> None:
    """Spread new connections evenly: rule i matches 1/(n-i) of what reaches it; the last takes the rest."""
    spn, proto = port.spn, port.protocol
    if port.affinity_seconds:
        for ep in endpoints:
            sep = endpoint_chain(spn, proto, ep.address)
            t.add(
                "nat",
                _rule(
                    chain,
                    matches=(
                        _comment(f"{spn} -> {ep.address}"),
                        f"-m recent --rcheck --seconds {port.affinity_seconds} --reap --name {sep} "
                        "--mask 255.255.255.255 --rsource",
                    ),
                    target=sep,
                ),
            )
    count = len(endpoints)
    for i, ep in enumerate(endpoints):
        matches = [_comment(f"{spn} -> {ep.address}")]
        if i < count - 1:
            matches.append(
                f"-m statistic --mode random --probability {statistic_probability(1.0 / (count - i))}"
            )
        t.add(
            "nat",
            _rule(chain, matches=tuple(matches), target=endpoint_chain(spn, proto, ep.address)),
        )


def render_proxy_rules(
    node: dict,
    nodes: list[dict],
    services: list[dict],
    endpoint_slices: list[dict],
    cluster_cidr: str,
) -> dict[str, list[str]]:
    """kube-proxy's ``nat`` and ``filter`` rules for ``node``, as iptables-restore lines per table.

    ``cluster_cidr`` is the pod network (kube-proxy's --cluster-cidr): clients outside it are
    masqueraded on the way to a cluster IP. Output is deterministic and sorted like iptables-save.
    """
    node_name = _meta(node).get("name")
    if not node_name:
        raise LabError(
            "render_proxy_rules got a node without metadata.name.",
            "Pass the Node object the rules are for.",
        )
    known = [_meta(n).get("name") for n in nodes]
    if nodes and node_name not in known:
        raise LabError(
            f"Node {node_name} is not among the cluster's nodes ({', '.join(map(str, known))}).",
            "Render rules only for a node of this lab.",
        )
    node_ip = None
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            node_ip = _ipv4(address["address"], f"Node {node_name} InternalIP")
            break
    try:
        cidr = str(ipaddress.ip_network(str(cluster_cidr).strip(), strict=False))
    except ValueError:
        raise LabError(
            f"The cluster CIDR {cluster_cidr!r} is not a network like 10.244.0.0/16.",
            "Pass the pod network of the lab's CNI.",
        ) from None
    ports = _service_ports(services)
    endpoints = _endpoints(endpoint_slices)
    tables = _Tables()
    _base_rules(tables)
    for port in ports:
        key = (port.namespace, port.name, port.port_name, port.protocol)
        _render_port(tables, port, endpoints.get(key, []), node_name, node_ip, cidr)
    tables.add(
        "nat",
        _rule(
            "KUBE-SERVICES",
            matches=(
                _comment(
                    "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
                ),
                "-m addrtype --dst-type LOCAL",
            ),
            target="KUBE-NODEPORTS",
        ),
    )
    return {"filter": tables.lines("filter"), "nat": tables.lines("nat")}


def restore_text(tables: Mapping[str, list[str]]) -> str:
    """iptables-restore input for rendered tables: ``*table``, its lines, ``COMMIT``, per table."""
    out: list[str] = []
    for table in sorted(tables, key=lambda name: (name != "filter", name)):
        out += [f"*{table}", *tables[table], "COMMIT"]
    return "\n".join(out) + "\n"
