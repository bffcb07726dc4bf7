"""Following kube-proxy's chains: from the rules of an ``iptables-save`` dump to one
:class:`~labkit.model.kubeproxy.serviceports.ServicePort` per service port, with its entry points
(cluster, node port, load balancer and external IPs), endpoints and their real shares, traffic
policies, masquerading, and names (from comments, or matched through chain hashes)."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from labkit.model.kubeproxy.chains import (
    ENDPOINT_CHAIN_PREFIX,
    MARK_MASQ_CHAIN,
    port_proto_hash,
    service_chain_hash,
    service_port_name,
)
from labkit.model.kubeproxy.iptables import IptablesRule, RuleIndex, parse_rules
from labkit.model.kubeproxy.serviceports import Masquerade, ServicePort, WeightedEndpoint

_PROTOCOLS = ("tcp", "udp", "sctp")
_NAME_IN_COMMENT = re.compile(
    r"(?:^|\s)([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"  # namespace
    r"/([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)"  # / service name
    r"(?::([a-z0-9][-a-z0-9]*))?(?=\s|$)"  # optional :port name
)
_ARROW = re.compile(r"->\s*(\S+)")


class _PortRef(NamedTuple):
    """A service port as a comment names it (``ns/name:port``; ``port_name`` "" when unnamed)."""

    namespace: str
    name: str
    port_name: str

    @property
    def service_port_name(self) -> str:
        """kube-proxy's ``ns/name:port`` string, from which it hashes the chain names."""
        return service_port_name(self.namespace, self.name, self.port_name)


def _names_in(comment: str | None) -> list[_PortRef]:
    if not comment:
        return []
    return [
        _PortRef(m.group(1), m.group(2), m.group(3) or "")
        for m in _NAME_IN_COMMENT.finditer(comment)
    ]


def _split_hostport(text: str) -> tuple[str | None, int | None]:
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            return text or None, None
    return host or None, int(port) if port.isdigit() else None


@dataclass
class _Acc:
    """What the rules tell about one service port (keyed by its chains' hash), gathered chain by
    chain before it becomes a ServicePort."""

    key: str
    names: Counter[_PortRef] = field(default_factory=Counter)
    protocol: str | None = None
    cluster_ip: str | None = None
    port: int | None = None
    node_port: int | None = None
    lb_ips: list[str] = field(default_factory=list)
    ext_ips: list[str] = field(default_factory=list)
    internal_chain: str | None = None
    internal_policy: str | None = None
    external_policy: str | None = None
    source_ranges: list[str] = field(default_factory=list)
    unless_source: str | None = None
    all_sources: bool = False
    external_masq: bool = False

    def add_name(self, comment: str | None, weight: int = 1) -> None:
        for name in _names_in(comment):
            self.names[name] += weight

    def set_address(self, rule: IptablesRule) -> None:
        self.protocol = self.protocol or rule.protocol
        self.port = self.port if self.port is not None else rule.dport
        self.cluster_ip = self.cluster_ip or rule.address("-d")


def _add_unique(items: list[str], value: str | None) -> None:
    if value and value not in items:
        items.append(value)


def _probability(rule: IptablesRule) -> float:
    if rule.value("--mode") == "random" or rule.has("--probability"):
        try:
            return min(max(float(rule.value("--probability") or 1.0), 0.0), 1.0)
        except ValueError:
            return 1.0
    return 1.0


def _is_affinity_check(rule: IptablesRule) -> bool:
    return rule.has("--rcheck") or rule.has("--update")


class _DnatTarget(NamedTuple):
    """Where a KUBE-SEP chain DNATs to (each part None when the dump does not say)."""

    ip: str | None
    port: int | None
    protocol: str | None


def _sep_destination(dump: RuleIndex, sep: str, dispatch: IptablesRule) -> _DnatTarget:
    """Where a KUBE-SEP chain DNATs to, falling back to the ``-> ip:port`` comment."""
    for rule in dump.chain(sep):
        if rule.target == "DNAT":
            dest = (rule.target_args.get("--to-destination") or ("",))[0]
            return _DnatTarget(*_split_hostport(dest), rule.protocol)
    arrow = _ARROW.search(dispatch.comment or "")
    if arrow:
        return _DnatTarget(*_split_hostport(arrow.group(1)), None)
    return _DnatTarget(None, None, None)


class _Share(NamedTuple):
    """One KUBE-SEP chain's real share of a service chain's new connections, and the first rule
    that jumps to it."""

    sep: str
    share: float
    dispatch: IptablesRule


def _distribution(dump: RuleIndex, chain: str | None) -> tuple[list[_Share], bool]:
    """Resolve chained statistic rules into each KUBE-SEP chain's real share of new connections;
    and whether the chain has session affinity."""
    remaining = 1.0
    shares: dict[str, float] = {}
    first_rule: dict[str, IptablesRule] = {}
    affinity = False
    for rule in dump.chain(chain):
        sep = rule.target or ""
        if not sep.startswith(ENDPOINT_CHAIN_PREFIX):
            continue
        if _is_affinity_check(rule):
            affinity = True
            continue
        chance = remaining * _probability(rule)
        remaining -= chance
        shares[sep] = shares.get(sep, 0.0) + chance
        first_rule.setdefault(sep, rule)
    return [_Share(sep, share, first_rule[sep]) for sep, share in shares.items()], affinity


def _masquerade_globals(dump: RuleIndex) -> Masquerade:
    """The masquerade mark KUBE-MARK-MASQ sets, and whether KUBE-POSTROUTING SNATs it."""
    mark = None
    for rule in dump.chain(MARK_MASQ_CHAIN):
        if rule.target != "MARK":
            continue
        if "--or-mark" in rule.target_args:
            mark = rule.target_args["--or-mark"][0]
        elif "--set-xmark" in rule.target_args:
            value, _, mask = rule.target_args["--set-xmark"][0].partition("/")
            if not mask or mask == value:
                mark = value
        elif "--set-mark" in rule.target_args:
            mark = rule.target_args["--set-mark"][0].partition("/")[0]
    snat = random_fully = False
    for rule in dump.chain("KUBE-POSTROUTING"):
        if rule.target in ("MASQUERADE", "SNAT"):
            snat = True
            random_fully = random_fully or "--random-fully" in rule.target_args
    return Masquerade(mark=mark, snat=snat, random_fully=random_fully)


def parse_iptables_save(text: str, *, service_names: Iterable[str] = ()) -> list[ServicePort]:
    """Every service port kube-proxy programmed in an ``iptables-save`` dump, with its endpoints.

    Reads real kube-proxy output (with or without comments, whole dumps or grep excerpts) and
    the sandbox's. ``service_names`` (``ns/name:port`` strings) lets a caller name service ports
    whose comments are missing by matching kube-proxy's chain hashes.
    """
    dump = RuleIndex(parse_rules(text))
    accs: dict[str, _Acc] = {}
    for table, chain in dump.chains:  # chains known only from their own rules (grep output)
        key = service_chain_hash(chain)
        if table == "nat" and key is not None:
            accs.setdefault(key, _Acc(key))
    old_style_masq = _read_entry_points(dump, accs)
    masq = _masquerade_globals(dump)
    services = [_assemble(dump, acc, old_style_masq, masq) for acc in accs.values()]
    _name_services(services, accs, service_names)
    _apply_filter_table(dump, services, masq)
    services.sort(key=_sort_key)
    return services


def _read_entry_points(dump: RuleIndex, accs: dict[str, _Acc]) -> list[IptablesRule]:
    """Cluster, load balancer and external IPs from KUBE-SERVICES; node ports from KUBE-NODEPORTS.

    Returns the masquerade rules older kube-proxy versions put straight into KUBE-SERVICES.
    """
    old_style: list[IptablesRule] = []
    for rule in dump.chain("KUBE-SERVICES"):
        key = service_chain_hash(rule.target)
        if key is None:
            if rule.target == MARK_MASQ_CHAIN and rule.has("-d"):
                old_style.append(rule)
            continue
        acc = accs.setdefault(key, _Acc(key))
        acc.add_name(rule.comment, 3)
        comment, dest, target = rule.comment or "", rule.address("-d"), rule.target or ""
        acc.protocol = acc.protocol or rule.protocol
        if "loadbalancer IP" in comment:
            kind = "lb"
        elif "external IP" in comment:
            kind = "external"
        elif "cluster IP" in comment or target.startswith(("KUBE-SVC-", "KUBE-SVL-")):
            kind = "cluster" if acc.cluster_ip in (None, dest) else "external"
        else:  # no comment and an EXT / FW / XLB target: a load balancer (or external) IP
            kind = "lb"
        if kind == "cluster":
            acc.set_address(rule)
            acc.internal_chain = target
            acc.internal_policy = "Local" if target.startswith("KUBE-SVL-") else "Cluster"
        else:
            _add_unique(acc.lb_ips if kind == "lb" else acc.ext_ips, dest)
            acc.port = acc.port if acc.port is not None else rule.dport
        if target.startswith("KUBE-XLB-"):
            acc.external_policy = "Local"
    nodeport_masq: set[int] = set()
    for rule in dump.chain("KUBE-NODEPORTS"):
        if rule.target == MARK_MASQ_CHAIN and rule.dport is not None and not rule.has("-s"):
            nodeport_masq.add(rule.dport)  # older kube-proxy: every NodePort client is masqueraded
        key = service_chain_hash(rule.target)
        if key is None or rule.dport is None:
            continue
        acc = accs.setdefault(key, _Acc(key))
        acc.add_name(rule.comment, 2)
        acc.node_port = acc.node_port or rule.dport
        acc.protocol = acc.protocol or rule.protocol
        if (rule.target or "").startswith("KUBE-XLB-"):
            acc.external_policy = "Local"
    for acc in accs.values():
        if acc.node_port in nodeport_masq:
            acc.external_masq = True
    return old_style


def _assemble(
    dump: RuleIndex, acc: _Acc, old_style_masq: list[IptablesRule], masq: Masquerade
) -> ServicePort:
    """Follow one service port's SVC / SVL / EXT / FW / SEP chains into a ServicePort."""
    key = acc.key
    svc, svl = "KUBE-SVC-" + key, "KUBE-SVL-" + key
    ext, fw, xlb = "KUBE-EXT-" + key, "KUBE-FW-" + key, "KUBE-XLB-" + key
    for chain in (svc, svl):
        for rule in dump.chain(chain):
            acc.add_name(rule.comment)
            if rule.target != MARK_MASQ_CHAIN:
                continue
            if rule.has("-d"):
                acc.set_address(rule)
                if rule.has("-s") and rule.negated("-s"):
                    acc.unless_source = rule.address("-s")
                elif not rule.has("-s"):
                    acc.all_sources = True
            elif rule.dport is not None:
                # older kube-proxy: NodePort masquerade inside the SVC chain
                acc.external_masq = True
                acc.node_port = acc.node_port or rule.dport
    for rule in dump.chain(ext) + dump.chain(xlb):
        acc.add_name(rule.comment)
        target = rule.target or ""
        if target == MARK_MASQ_CHAIN and rule.unconditional:
            acc.external_masq = True
        elif target.startswith(("KUBE-SVL-", "KUBE-XLB-")) or rule.has("--src-type"):
            acc.external_policy = "Local"
        elif target.startswith("KUBE-SVC-") and rule.unconditional and acc.external_policy is None:
            acc.external_policy = "Cluster"
    if dump.chain(xlb):
        acc.external_policy = "Local"
    for rule in dump.chain(fw):
        acc.add_name(rule.comment)
        if service_chain_hash(rule.target) is not None and rule.has("-s"):
            source = rule.address("-s")
            if source not in acc.lb_ips:
                _add_unique(acc.source_ranges, source)
    for rule in old_style_masq:
        if rule.address("-d") == acc.cluster_ip and rule.dport == acc.port:
            acc.add_name(rule.comment)
            if rule.negated("-s"):
                acc.unless_source = rule.address("-s")
            elif not rule.has("-s"):
                acc.all_sources = True

    hairpin = False

    def endpoints_of(chain: str) -> tuple[list[WeightedEndpoint], bool]:
        nonlocal hairpin
        shares, affinity = _distribution(dump, chain)
        merged: dict[tuple[str | None, int | None], float] = {}
        for share in shares:
            acc.add_name(share.dispatch.comment)
            for sep_rule in dump.chain(share.sep):
                acc.add_name(sep_rule.comment)
                if sep_rule.target == MARK_MASQ_CHAIN and sep_rule.has("-s"):
                    hairpin = True
            dest = _sep_destination(dump, share.sep, share.dispatch)
            acc.protocol = acc.protocol or dest.protocol
            where = (dest.ip, dest.port)
            merged[where] = merged.get(where, 0.0) + share.share
        return [WeightedEndpoint(ip, port, p) for (ip, port), p in merged.items()], affinity

    cluster_eps, cluster_affinity = endpoints_of(svc)
    local_eps, local_affinity = endpoints_of(svl if dump.chain(svl) else xlb)
    internal = acc.internal_chain or (svc if dump.chain(svc) else svl)
    chain = next(
        (c for c in (svc, svl, ext, fw, xlb) if dump.chain(c) or c == acc.internal_chain), svc
    )
    return ServicePort(
        namespace=None,
        name=None,
        port_name=None,
        protocol=acc.protocol.upper() if acc.protocol else None,
        cluster_ip=acc.cluster_ip,
        port=acc.port,
        node_port=acc.node_port,
        load_balancer_ips=list(acc.lb_ips),
        external_ips=list(acc.ext_ips),
        external_traffic_policy=acc.external_policy,
        internal_traffic_policy=acc.internal_policy,
        endpoints=local_eps if internal.startswith("KUBE-SVL-") else cluster_eps,
        local_endpoints=local_eps,
        session_affinity=cluster_affinity or local_affinity,
        load_balancer_source_ranges=list(acc.source_ranges),
        masquerade=Masquerade(
            mark=masq.mark,
            snat=masq.snat,
            random_fully=masq.random_fully,
            unless_source=acc.unless_source,
            all_sources=acc.all_sources,
            external=acc.external_masq,
            hairpin=hairpin,
        ),
        chain=chain,
    )


def _apply_filter_table(dump: RuleIndex, services: list[ServicePort], masq: Masquerade) -> None:
    """Fold the filter table's REJECT/DROP and health-check rules into the service ports."""

    def find(
        comment: str | None, proto: str | None, ip: str | None, port: int | None
    ) -> ServicePort | None:
        for ref in _names_in(comment):
            for sp in services:
                if (
                    proto
                    and sp.chain
                    and sp.chain.endswith(port_proto_hash(ref.service_port_name, proto))
                ):
                    return sp
                if (sp.namespace, sp.name, sp.port_name) == ref:
                    return sp
        if ip is not None:
            for sp in services:
                if (
                    ip in (sp.cluster_ip, *sp.load_balancer_ips, *sp.external_ips)
                    and sp.port == port
                    and (proto is None or (sp.protocol or "").lower() == proto)
                ):
                    return sp
        return None

    def new_entry(comment: str | None, proto: str | None) -> ServicePort:
        sp = ServicePort(
            None, None, None, proto.upper() if proto else None, None, None, masquerade=masq
        )
        names = _names_in(comment)
        if names:
            sp.namespace, sp.name, sp.port_name = names[0]
        services.append(sp)
        return sp

    for rule in dump.chain("KUBE-SERVICES", "filter"):
        if rule.target not in ("REJECT", "DROP"):
            continue
        ip, port, proto = rule.address("-d"), rule.dport, rule.protocol
        sp = find(rule.comment, proto, ip, port) or new_entry(rule.comment, proto)
        sp.cluster_ip = sp.cluster_ip or ip
        sp.port = sp.port if sp.port is not None else port
        if rule.target == "REJECT" or "has no endpoints" in (rule.comment or ""):
            sp.no_endpoints = True
        if "no local endpoints" in (rule.comment or ""):
            sp.internal_traffic_policy = "Local"
    for rule in dump.chain("KUBE-EXTERNAL-SERVICES", "filter"):
        if rule.target not in ("REJECT", "DROP"):
            continue
        ip, port, proto = rule.address("-d"), rule.dport, rule.protocol
        found = find(rule.comment, proto, ip, port if ip else None)
        if found is None:
            if not _names_in(rule.comment):
                continue  # an uncommented external rule cannot be tied to a service
            found = new_entry(rule.comment, proto)
        sp = found
        if rule.has("--dst-type") and ip is None:
            sp.node_port = sp.node_port or port
        elif ip is not None and ip not in sp.external_ips:
            _add_unique(sp.load_balancer_ips, ip)
            sp.port = sp.port if sp.port is not None else port
        if rule.target == "REJECT" or "has no endpoints" in (rule.comment or ""):
            sp.no_endpoints = True
        if "no local endpoints" in (rule.comment or ""):
            sp.external_traffic_policy = "Local"
    for rule in dump.chain("KUBE-NODEPORTS", "filter"):
        if rule.target == "ACCEPT" and "health check node port" in (rule.comment or ""):
            checked = find(rule.comment, None, None, None)
            if checked is not None:
                checked.health_check_node_port = rule.dport


def _name_services(
    services: list[ServicePort], accs: dict[str, _Acc], hints: Iterable[str]
) -> None:
    """Pick each service port's name: the comment whose hash matches its chain, else the
    commonest."""
    by_hash: dict[str, _PortRef] = {}
    for hint in hints:
        found = _names_in(hint.strip())
        if found:
            for proto in _PROTOCOLS:
                by_hash[port_proto_hash(found[0].service_port_name, proto)] = found[0]
    for sp in services:
        if sp.service is not None or sp.chain is None:
            continue
        key = service_chain_hash(sp.chain)
        acc = accs.get(key or "")
        chosen: _PortRef | None = None
        if acc is not None and acc.names:
            for candidate, _ in acc.names.most_common():
                spn = candidate.service_port_name
                if any(port_proto_hash(spn, proto) == key for proto in _PROTOCOLS):
                    chosen = candidate
                    break
            if chosen is None:
                chosen = _pick_port_name(acc.names)
        if chosen is None and key in by_hash:
            chosen = by_hash[key]
        if chosen is not None:
            sp.namespace, sp.name, sp.port_name = chosen
        if sp.protocol is None and sp.service is not None and key:
            spn = service_port_name(sp.namespace or "", sp.name or "", sp.port_name)
            for proto in _PROTOCOLS:
                if port_proto_hash(spn, proto) == key:
                    sp.protocol = proto.upper()


def _pick_port_name(names: Counter[_PortRef]) -> _PortRef:
    """The commonest name; between ``ns/a`` and ``ns/a:p`` (same service) prefer the one with a
    port."""
    ranked = names.most_common()
    best = ranked[0][0]
    for candidate, _ in ranked:
        same_service = (candidate.namespace, candidate.name) == (best.namespace, best.name)
        if same_service and candidate.port_name and not best.port_name:
            return candidate
    return best


def _ip_key(ip: str | None) -> tuple[int, int]:
    try:
        addr = ipaddress.ip_address(ip or "")
    except ValueError:
        return (9, 0)
    return (addr.version, int(addr))


def _sort_key(sp: ServicePort) -> tuple[bool, str, str, str, str, tuple[int, int], int, str]:
    return (
        sp.namespace is None,
        sp.namespace or "",
        sp.name or "",
        sp.port_name or "",
        sp.protocol or "",
        _ip_key(sp.cluster_ip),
        sp.port or 0,
        sp.chain or "",
    )
