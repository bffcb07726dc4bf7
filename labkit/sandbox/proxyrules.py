"""kube-proxy (iptables mode) for one sandbox node: Services + EndpointSlices -> iptables-restore
lines.

The rules follow kube-proxy's ``syncProxyRules`` (pkg/proxy/iptables/proxier.go): the same chain
names and hashes, the same comments, ``1/n`` statistic probabilities, hairpin and off-cluster
masquerading, KUBE-EXT / KUBE-SVL chains for ``externalTrafficPolicy: Local``, and a filter-table
REJECT for a service port without endpoints (the "connection refused" a learner meets). Each
line is written in the canonical form ``iptables-save`` prints, chains sorted like it sorts them,
so ``iptables-save | grep my-service`` on a sandbox node reads like a real node and equals what
was rendered. Pure: no I/O; with the lab's :class:`~labkit.sandbox.proxy_rule_cache.ProxyRuleCache`,
each port's rules are kept, keyed by everything they are rendered from, and so is each node's
merge of them (:mod:`labkit.sandbox.chainmerge`): a change re-renders and re-merges only the
ports it touches. What is proxied (ports, endpoints, the
endpoints each node picks) is read by :mod:`labkit.sandbox.proxyports`.

Each table's lines declare its built-in chains too, so ``restore_text()`` output can be loaded
with a plain ``iptables-restore`` (which replaces the table) any number of times; a caller that
adds its own rules to the same table (e.g. policy enforcement) appends them to these lines.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from labkit.errors import LabError
from labkit.model.kubeproxy.chains import endpoint_chain, statistic_probability
from labkit.model.objects import name_of
from labkit.sandbox.iptables import Chains
from labkit.sandbox.iptables_save import SaveTables, comment
from labkit.sandbox.proxy_rule_cache import ProxyRuleCache
from labkit.sandbox.proxyports import (
    PortChains,
    PortEndpoint,
    ProxiedPort,
    ProxyInputs,
    choose_endpoints,
    ipv4,
    port_chains,
    proxy_inputs,
)

__all__ = ["MASQUERADE_MARK", "render_proxy_chains", "render_proxy_rules", "restore_text"]

MASQUERADE_MARK = "0x4000"  # kube-proxy's default: 1 << masqueradeBit (14)


def render_proxy_rules(
    node: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    endpoint_slices: Sequence[Mapping[str, Any]],
    cluster_cidr: str,
    shared: Callable[[], ProxyInputs] | None = None,
    cache: ProxyRuleCache | None = None,
) -> dict[str, list[str]]:
    """kube-proxy's ``nat``, ``filter`` and ``mangle`` rules for ``node``, as iptables-restore lines
    per table.

    ``cluster_cidr`` is the pod network (kube-proxy's --cluster-cidr): clients outside it are
    masqueraded on the way to a cluster IP. Output is deterministic and sorted like iptables-save.
    ``shared`` gives ``proxy_inputs(services, endpoint_slices)``, for a caller rendering every
    node of a pass from one read; ``cache`` keeps rules from one call to the next.
    """
    chains = render_proxy_chains(
        node, nodes, services, endpoint_slices, cluster_cidr, shared, cache
    )
    out: dict[str, list[str]] = {}
    for table in ("filter", "nat", "mangle"):
        declared, rules = chains.declared[table], chains.rules[table]
        out[table] = [f":{chain} {policy} [0:0]" for chain, policy in declared.items()]
        out[table] += [line for chain in declared for line in rules.get(chain, ())]
    return out


def render_proxy_chains(
    node: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    endpoint_slices: Sequence[Mapping[str, Any]],
    cluster_cidr: str,
    shared: Callable[[], ProxyInputs] | None = None,
    cache: ProxyRuleCache | None = None,
) -> Chains:
    """The rules of :func:`render_proxy_rules` as chains, for composing a node's ruleset without
    reading lines back (issue 18): with a ``cache`` (the lab's), each port's chains are kept and
    merged with the node's last merge by what changed; without one, all rendered afresh."""
    node_name = name_of(node)
    if not node_name:
        raise LabError(
            "render_proxy_rules got a node without metadata.name.",
            "Pass the Node object the rules are for.",
        )
    known = [name_of(n) for n in nodes]
    if nodes and node_name not in known:
        raise LabError(
            f"Node {node_name} is not among the cluster's nodes ({', '.join(known)}).",
            "Render rules only for a node of this lab.",
        )
    node_ip = None
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            node_ip = ipv4(address["address"], f"Node {node_name} InternalIP")
            break
    try:
        cidr = str(ipaddress.ip_network(str(cluster_cidr).strip(), strict=False))
    except ValueError:
        raise LabError(
            f"The cluster CIDR {cluster_cidr!r} is not a network like 10.244.0.0/16.",
            "Pass the pod network of the lab's CNI.",
        ) from None
    ports, endpoints = shared() if shared is not None else proxy_inputs(services, endpoint_slices)
    head, tail = _node_wide()
    parts = [head]
    cache = cache or ProxyRuleCache()
    at = (node_name, node_ip, cidr)
    for port in ports:
        found = endpoints.get(port.key, ())
        parts.append(cache.port_rules(port, found, at, partial(_port_rules, port, found, *at)))
    parts.append(tail)
    return cache.merge(node_name, parts)


def restore_text(tables: Mapping[str, list[str]]) -> str:
    """iptables-restore input for rendered tables: ``*table``, its lines, ``COMMIT``, per table."""
    out: list[str] = []
    for table in sorted(tables, key=lambda name: (name != "filter", name)):
        out += [f"*{table}", *tables[table], "COMMIT"]
    return "\n".join(out) + "\n"


@functools.cache
def _node_wide() -> tuple[Chains, Chains]:
    """The chains around the ports' on every node: node-wide ones first, nodeports' jump last."""
    head, tail = SaveTables(), SaveTables()
    _base_rules(head)
    tail.add(
        "nat",
        "KUBE-SERVICES",
        matches=(
            comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
            "-m addrtype --dst-type LOCAL",
        ),
        target="KUBE-NODEPORTS",
    )
    return head.read(), tail.read()


# --------------------------------------------------------------------------- one port


def _port_rules(
    port: ProxiedPort,
    endpoints: tuple[PortEndpoint, ...],
    node_name: str,
    node_ip: str | None,
    cidr: str,
) -> Chains:
    """One Service port's rules on a node."""
    tables = SaveTables()
    chains = port_chains(port, choose_endpoints(port, endpoints, node_name))
    _entry_rules(tables, chains)
    _service_and_external_chains(tables, chains, cidr)
    _firewall_chain(tables, chains, node_ip)
    _endpoint_chains(tables, chains)
    return tables.read()


# --------------------------------------------------------------------------- node-wide chains


def _base_rules(t: SaveTables) -> None:
    """The node-wide chains and the jumps into them from the built-in chains; KUBE-PROXY-CANARY
    in mangle, nat and filter, the chains kube-proxy's iptables Monitor watches to notice a
    flushed table (pkg/proxy/iptables/proxier.go NewProxier)."""
    t.declare("mangle", "KUBE-PROXY-CANARY")
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
    portals = comment("kubernetes service portals")
    new = "-m conntrack --ctstate NEW"
    for chain in ("PREROUTING", "OUTPUT"):
        t.add("nat", chain, matches=(portals,), target="KUBE-SERVICES")
    t.add(
        "nat",
        "POSTROUTING",
        matches=(comment("kubernetes postrouting rules"),),
        target="KUBE-POSTROUTING",
    )
    mark = f"{MASQUERADE_MARK}/{MASQUERADE_MARK}"
    t.add("nat", "KUBE-POSTROUTING", matches=(f"-m mark ! --mark {mark}",), target="RETURN")
    t.add("nat", "KUBE-POSTROUTING", target=f"MARK --set-xmark {MASQUERADE_MARK}/0x0")
    t.add(
        "nat",
        "KUBE-POSTROUTING",
        matches=(comment("kubernetes service traffic requiring SNAT"),),
        target="MASQUERADE --random-fully",
    )
    t.add("nat", "KUBE-MARK-MASQ", target=f"MARK --set-xmark {mark}")

    lb_firewall = (new, comment("kubernetes load balancer firewall"))
    external = (new, comment("kubernetes externally-visible service portals"))
    t.add("filter", "INPUT", matches=lb_firewall, target="KUBE-PROXY-FIREWALL")
    t.add(
        "filter",
        "INPUT",
        matches=(comment("kubernetes health check service ports"),),
        target="KUBE-NODEPORTS",
    )
    t.add("filter", "INPUT", matches=external, target="KUBE-EXTERNAL-SERVICES")
    t.add("filter", "INPUT", target="KUBE-FIREWALL")
    t.add("filter", "FORWARD", matches=lb_firewall, target="KUBE-PROXY-FIREWALL")
    t.add(
        "filter",
        "FORWARD",
        matches=(comment("kubernetes forwarding rules"),),
        target="KUBE-FORWARD",
    )
    t.add("filter", "FORWARD", matches=(new, portals), target="KUBE-SERVICES")
    t.add("filter", "FORWARD", matches=external, target="KUBE-EXTERNAL-SERVICES")
    t.add("filter", "OUTPUT", matches=lb_firewall, target="KUBE-PROXY-FIREWALL")
    t.add("filter", "OUTPUT", matches=(new, portals), target="KUBE-SERVICES")
    t.add("filter", "OUTPUT", target="KUBE-FIREWALL")
    t.add(
        "filter",
        "KUBE-FIREWALL",
        src="127.0.0.0/8",
        not_src=True,
        dst="127.0.0.0/8",
        matches=(
            comment("block incoming localnet connections"),
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT",
        ),
        target="DROP",
    )
    t.add("filter", "KUBE-FORWARD", matches=("-m conntrack --ctstate INVALID",), target="DROP")
    t.add(
        "filter",
        "KUBE-FORWARD",
        matches=(comment("kubernetes forwarding rules"), f"-m mark --mark {mark}"),
        target="ACCEPT",
    )
    t.add(
        "filter",
        "KUBE-FORWARD",
        matches=(
            comment("kubernetes forwarding conntrack rule"),
            "-m conntrack --ctstate RELATED,ESTABLISHED",
        ),
        target="ACCEPT",
    )


# --------------------------------------------------------------------------- one service port


def _dport(c: PortChains) -> str:
    return f"-m {c.proto} --dport {c.port.port}"


def _entry_rules(t: SaveTables, c: PortChains) -> None:
    """Where the port's traffic arrives: its cluster, external and load balancer IPs and its
    node port, each sent on (nat) or refused (filter)."""
    port, spn, proto, dport = c.port, c.spn, c.proto, _dport(c)

    def to_each(ips: Sequence[str], table: str, chain: str, why: str, target: str) -> None:
        """One rule per address dialled on the port, commented ``why``, jumping to ``target``."""
        for ip in ips:
            t.add(table, chain, dst=ip, proto=proto, matches=(comment(why), dport), target=target)

    if c.has_internal:
        to_each([port.cluster_ip], "nat", "KUBE-SERVICES", f"{spn} cluster IP", c.internal_chain)
    elif c.internal_refusal:
        refused = c.internal_refusal
        to_each([port.cluster_ip], "filter", "KUBE-SERVICES", refused.reason, refused.target)
    if c.endpoints.any_usable:
        to_each(port.external_ips, "nat", "KUBE-SERVICES", f"{spn} external IP", c.ext)
        lb_ips = port.load_balancer_ips
        to_each(lb_ips, "nat", "KUBE-SERVICES", f"{spn} loadbalancer IP", c.lb_chain)
    if c.uses_fw:
        why = f"{spn} traffic not accepted by {c.fw}"
        to_each(port.load_balancer_ips, "filter", "KUBE-PROXY-FIREWALL", why, "DROP")
    if c.external_refusal:
        refused, outside = c.external_refusal, [*port.external_ips, *port.load_balancer_ips]
        to_each(outside, "filter", "KUBE-EXTERNAL-SERVICES", refused.reason, refused.target)
    if port.node_port:
        node_dport = f"-m {proto} --dport {port.node_port}"
        if c.endpoints.any_usable:
            t.add(
                "nat",
                "KUBE-NODEPORTS",
                proto=proto,
                matches=(comment(spn), node_dport),
                target=c.ext,
            )
        if c.external_refusal:
            t.add(
                "filter",
                "KUBE-EXTERNAL-SERVICES",
                proto=proto,
                matches=(
                    comment(c.external_refusal.reason),
                    "-m addrtype --dst-type LOCAL",
                    node_dport,
                ),
                target=c.external_refusal.target,
            )
    if port.health_check_node_port:
        t.add(
            "filter",
            "KUBE-NODEPORTS",
            proto="tcp",
            matches=(
                comment(f"{spn} health check node port"),
                f"-m tcp --dport {port.health_check_node_port}",
            ),
            target="ACCEPT",
        )


def _service_and_external_chains(t: SaveTables, c: PortChains, cluster_cidr: str) -> None:
    """Masquerading on the way in: off-cluster clients of the cluster IP, and the KUBE-EXT chain
    that external traffic passes before the service chain its policy picks."""
    port, spn, ext = c.port, c.spn, c.ext
    if c.has_internal:  # clients from outside the pod network reach the cluster IP with SNAT
        t.add(
            "nat",
            c.internal_chain,
            src=cluster_cidr,
            not_src=True,
            dst=port.cluster_ip,
            proto=c.proto,
            matches=(comment(f"{spn} cluster IP"), _dport(c)),
            target="KUBE-MARK-MASQ",
        )
    if not (c.endpoints.any_usable and port.externally_accessible):
        return
    t.declare("nat", ext)
    if not port.external_local:
        t.add(
            "nat",
            ext,
            matches=(comment(f"masquerade traffic for {spn} external destinations"),),
            target="KUBE-MARK-MASQ",
        )
    else:
        t.add(
            "nat",
            ext,
            src=cluster_cidr,
            matches=(comment(f"pod traffic for {spn} external destinations"),),
            target=c.svc,
        )
        t.add(
            "nat",
            ext,
            matches=(
                comment(f"masquerade LOCAL traffic for {spn} external destinations"),
                "-m addrtype --src-type LOCAL",
            ),
            target="KUBE-MARK-MASQ",
        )
        t.add(
            "nat",
            ext,
            matches=(
                comment(f"route LOCAL traffic for {spn} external destinations"),
                "-m addrtype --src-type LOCAL",
            ),
            target=c.svc,
        )
    if c.has_external:
        t.add("nat", ext, target=c.external_policy_chain)


def _firewall_chain(t: SaveTables, c: PortChains, node_ip: str | None) -> None:
    """KUBE-FW: load balancer traffic from loadBalancerSourceRanges goes on, the rest is dropped
    (by KUBE-PROXY-FIREWALL); the node itself passes when a range covers it."""
    if not c.uses_fw:
        return
    port, fw = c.port, c.fw
    t.declare("nat", fw)
    lb_comment = (comment(f"{c.spn} loadbalancer IP"),)
    allow_node = False
    for source in port.source_ranges:
        t.add("nat", fw, src=source, matches=lb_comment, target=c.ext)
        if node_ip and ipaddress.ip_address(node_ip) in ipaddress.ip_network(source):
            allow_node = True
    if allow_node:
        for ip in port.load_balancer_ips:
            t.add("nat", fw, src=ip, matches=lb_comment, target=c.ext)
    t.add(
        "nat",
        fw,
        matches=(comment(f"other traffic to {c.spn} will be dropped by KUBE-PROXY-FIREWALL"),),
    )


def _endpoint_chains(t: SaveTables, c: PortChains) -> None:
    """The service chains' spread over endpoints, and one KUBE-SEP chain per endpoint (hairpin
    masquerade, then DNAT)."""
    port, spn, proto = c.port, c.spn, c.proto
    if c.endpoints.cluster and port.uses_cluster_endpoints:
        t.declare("nat", c.svc)
        _dispatch(t, port, c.svc, c.endpoints.cluster)
    if c.endpoints.local and port.uses_local_endpoints:
        t.declare("nat", c.svl)
        _dispatch(t, port, c.svl, c.endpoints.local)
    for ep in c.endpoints.reachable:
        sep = endpoint_chain(spn, proto, ep.address)
        t.add("nat", sep, src=ep.ip, matches=(comment(spn),), target="KUBE-MARK-MASQ")
        affinity = (
            (f"-m recent --set --name {sep} --mask 255.255.255.255 --rsource",)
            if port.affinity_seconds
            else ()
        )
        t.add(
            "nat",
            sep,
            proto=proto,
            matches=(comment(spn), *affinity, f"-m {proto}"),
            target=f"DNAT --to-destination {ep.address}",
        )


def _dispatch(
    t: SaveTables, port: ProxiedPort, chain: str, endpoints: Sequence[PortEndpoint]
) -> None:
    """Spread new connections evenly: rule i matches 1/(n-i) of what reaches it; the last takes
    the rest. With session affinity, a client seen recently goes back to its endpoint first."""
    spn, proto = port.spn, port.protocol
    if port.affinity_seconds:
        for ep in endpoints:
            sep = endpoint_chain(spn, proto, ep.address)
            t.add(
                "nat",
                chain,
                matches=(
                    comment(f"{spn} -> {ep.address}"),
                    f"-m recent --rcheck --seconds {port.affinity_seconds} --reap --name {sep} "
                    "--mask 255.255.255.255 --rsource",
                ),
                target=sep,
            )
    count = len(endpoints)
    for i, ep in enumerate(endpoints):
        matches = [comment(f"{spn} -> {ep.address}")]
        if i < count - 1:
            probability = statistic_probability(1.0 / (count - i))
            matches.append(f"-m statistic --mode random --probability {probability}")
        t.add("nat", chain, matches=tuple(matches), target=endpoint_chain(spn, proto, ep.address))
