"""kube-proxy's iptables mode, read back: ``iptables-save`` text -> service ports and endpoints.

kube-proxy (iptables mode) writes one chain family per service port: ``KUBE-SERVICES`` matches
the cluster IP (and load balancer / external IPs) and jumps to ``KUBE-SVC-<hash>`` (or
``KUBE-SVL-<hash>`` for a Local internal policy); ``KUBE-NODEPORTS`` and load balancer IPs go
through ``KUBE-EXT-<hash>`` (and ``KUBE-FW-<hash>`` with source ranges); the service chain picks
a ``KUBE-SEP-<hash>`` with chained ``-m statistic --probability`` rules; each ``KUBE-SEP`` DNATs
to one pod. A service port without endpoints only gets a REJECT rule in the filter table.

This module parses that text (a whole dump, one table, or the lines ``grep`` kept), names the
chains the way kube-proxy does (so the sandbox's renderer can share the names), and formats a
short table for people. Stdlib only, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "Masquerade",
    "ServicePort",
    "WeightedEndpoint",
    "endpoint_chain",
    "format_services",
    "iptables_comment",
    "parse_iptables_save",
    "port_proto_hash",
    "service_chain",
    "service_port_name",
    "statistic_probability",
]

# Chain families kube-proxy creates per service port, all suffixed with the same hash.
# KUBE-XLB- is the pre-1.24 name of what KUBE-SVL- does for externalTrafficPolicy: Local.
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
ENDPOINT_CHAIN_PREFIX = "KUBE-SEP-"
MARK_MASQ_CHAIN = "KUBE-MARK-MASQ"
_PROTOCOLS = ("tcp", "udp", "sctp")
# Chains that only ever live in the filter table (used when a grep dropped the "*filter" line).
_FILTER_ONLY_CHAINS = {
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-PROXY-FIREWALL",
    "KUBE-FIREWALL",
}
_FILTER_ONLY_TARGETS = {"REJECT", "DROP", "ACCEPT"}


# --------------------------------------------------------------------------- naming


def service_port_name(namespace: str, name: str, port_name: str | None = "") -> str:
    """``ns/name:port`` (or ``ns/name`` for an unnamed port): kube-proxy's ServicePortName string."""
    base = f"{namespace}/{name}"
    return f"{base}:{port_name}" if port_name else base


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def port_proto_hash(port_name: str, protocol: str) -> str:
    """The 16-character suffix kube-proxy gives a service port's chains (sha256, base32)."""
    return _hash16(port_name + protocol.lower())


def service_chain(prefix: str, port_name: str, protocol: str) -> str:
    """A per-service-port chain name, e.g. ``service_chain("KUBE-SVC-", "default/web:http", "TCP")``."""
    if prefix not in SERVICE_CHAIN_PREFIXES:
        raise ValueError(
            f"unknown service chain prefix {prefix!r}; use one of {', '.join(SERVICE_CHAIN_PREFIXES)}"
        )
    return prefix + port_proto_hash(port_name, protocol)


def endpoint_chain(port_name: str, protocol: str, endpoint: str) -> str:
    """The ``KUBE-SEP-`` chain of one endpoint (``endpoint`` is ``ip:port``, as kube-proxy hashes it)."""
    return ENDPOINT_CHAIN_PREFIX + _hash16(port_name + protocol.lower() + endpoint)


def statistic_probability(probability: float) -> str:
    """A probability as ``iptables-save`` prints it after the kernel stored it (``0.33333333349``).

    The statistic match keeps ``round(p * 2**31)``; iptables prints that back with 11 decimals,
    which is why a real node shows 0.33333333349 where kube-proxy wrote 0.3333333333.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {probability}")
    stored = math.floor(probability * 0x80000000 + 0.5)
    return f"{stored / 0x80000000:.11f}"


_PLAIN_COMMENT = re.compile(r"[A-Za-z0-9_-]+")


def iptables_comment(text: str) -> str:
    """Quote a comment the way ``iptables-save`` does (bare only when it is a plain word)."""
    if _PLAIN_COMMENT.fullmatch(text):
        return text
    escaped = re.sub(r'(["\\\'])', r"\\\1", text)
    return f'"{escaped}"'


# --------------------------------------------------------------------------- results


class WeightedEndpoint(NamedTuple):
    """One backend and the real chance that a new connection lands on it."""

    ip: str | None
    port: int | None
    probability: float


@dataclass(frozen=True)
class Masquerade:
    """Where kube-proxy source-NATs traffic for one service port, and with which mark.

    ``mark`` is the bit ``KUBE-MARK-MASQ`` sets (``0x4000`` by default) and ``snat`` whether
    ``KUBE-POSTROUTING`` masquerades packets carrying it. ``unless_source`` is the pod CIDR of
    the ``! -s <cidr> -d <clusterIP>`` rule (clients outside the cluster get SNAT), ``all_sources``
    means masqueradeAll, ``external`` that traffic via NodePort / load balancer is SNATed (policy
    Cluster), ``hairpin`` that a pod reaching itself through the service is SNATed.
    """

    mark: str | None = None
    snat: bool = False
    random_fully: bool = False
    unless_source: str | None = None
    all_sources: bool = False
    external: bool = False
    hairpin: bool = False


@dataclass
class ServicePort:
    """One service port as kube-proxy programmed it on the node the dump came from.

    ``endpoints`` are what the cluster IP reaches, each with its real chance of selection;
    ``local_endpoints`` the node-local ones of a ``KUBE-SVL`` chain (traffic policy Local).
    ``namespace``/``name``/``port_name`` are None when the dump does not say (no comments);
    ``port_name`` is ``""`` for an unnamed port. ``no_endpoints`` is the filter-table REJECT.
    """

    namespace: str | None
    name: str | None
    port_name: str | None
    protocol: str | None
    cluster_ip: str | None
    port: int | None
    node_port: int | None = None
    load_balancer_ips: list[str] = field(default_factory=list)
    external_ips: list[str] = field(default_factory=list)
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    endpoints: list[WeightedEndpoint] = field(default_factory=list)
    local_endpoints: list[WeightedEndpoint] = field(default_factory=list)
    no_endpoints: bool = False
    session_affinity: bool = False
    load_balancer_source_ranges: list[str] = field(default_factory=list)
    health_check_node_port: int | None = None
    masquerade: Masquerade = field(default_factory=Masquerade)
    chain: str | None = None

    @property
    def service(self) -> str | None:
        """``namespace/name``, or None when the dump did not name the service."""
        if self.namespace is None or self.name is None:
            return None
        return f"{self.namespace}/{self.name}"

    @property
    def display_name(self) -> str:
        """``ns/name:port`` when known, else the chain name or ``ip:port/proto``."""
        if self.service is not None:
            return service_port_name(self.namespace or "", self.name or "", self.port_name)
        if self.chain:
            return self.chain
        return f"{self.cluster_ip}:{self.port}/{self.protocol}"

    @property
    def external_endpoints(self) -> list[WeightedEndpoint]:
        """What NodePort / load balancer traffic from outside reaches on this node."""
        if self.external_traffic_policy == "Local":
            return self.local_endpoints
        return self.endpoints


# --------------------------------------------------------------------------- tokenising

_ALIASES = {
    "--source": "-s",
    "--src": "-s",
    "--destination": "-d",
    "--dst": "-d",
    "--protocol": "-p",
    "--jump": "-j",
    "--goto": "-g",
    "--match": "-m",
    "--in-interface": "-i",
    "--out-interface": "-o",
    "--append": "-A",
}
# Options that always take exactly one value, even if that value starts with "-".
_ONE_VALUE = {
    "-s",
    "-d",
    "-p",
    "-j",
    "-g",
    "-m",
    "-i",
    "-o",
    "--comment",
    "--dport",
    "--sport",
    "--mode",
    "--probability",
    "--name",
    "--seconds",
    "--mask",
    "--to-destination",
    "--mark",
    "--set-xmark",
    "--or-mark",
    "--xor-mark",
    "--dst-type",
    "--src-type",
    "--ctstate",
    "--reject-with",
    "--nfacct-name",
}


def _tokens(line: str) -> list[str]:
    """Split one rule line like a shell would for iptables-save output (double quotes, \\ escapes)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            i += 1
            buf: list[str] = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    buf.append(line[i + 1])
                    i += 2
                else:
                    buf.append(line[i])
                    i += 1
            out.append("".join(buf))
            i += 1
            continue
        j = i
        while j < n and not line[j].isspace():
            j += 1
        out.append(line[i:j])
        i = j
    return out


@dataclass
class _Rule:
    table: str
    chain: str
    matches: list[tuple[str, tuple[str, ...], bool]]
    target: str | None
    target_args: dict[str, tuple[str, ...]]

    def value(self, option: str) -> str | None:
        for name, values, _ in self.matches:
            if name == option and values:
                return values[0]
        return None

    def negated(self, option: str) -> bool:
        return any(name == option and neg for name, _, neg in self.matches)

    def has(self, option: str) -> bool:
        return any(name == option for name, _, _ in self.matches)

    @property
    def comment(self) -> str | None:
        return self.value("--comment")

    @property
    def protocol(self) -> str | None:
        proto = self.value("-p")
        return proto.lower() if proto else None

    @property
    def dport(self) -> int | None:
        port = self.value("--dport")
        return int(port) if port and port.isdigit() else None

    def address(self, option: str) -> str | None:
        return _host(self.value(option))

    @property
    def unconditional(self) -> bool:
        """True when the rule matches every packet (comments do not count as conditions)."""
        return all(
            name in ("--comment",) or (name == "-m" and values == ("comment",))
            for name, values, _ in self.matches
        )


def _host(value: str | None) -> str | None:
    if not value:
        return None
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _parse_rule(table: str | None, tokens: list[str]) -> _Rule | None:
    if tokens and re.fullmatch(r"\[\d+:\d+\]", tokens[0]):
        tokens = tokens[1:]
    if len(tokens) < 2 or _ALIASES.get(tokens[0], tokens[0]) not in ("-A", "-I"):
        return None
    chain = tokens[1]
    i = 2
    if tokens[0] in ("-I",) and i < len(tokens) and tokens[i].isdigit():
        i += 1
    matches: list[tuple[str, tuple[str, ...], bool]] = []
    target: str | None = None
    target_args: dict[str, tuple[str, ...]] = {}
    negate = False
    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            negate = True
            i += 1
            continue
        if tok in ("-c", "--set-counters"):
            i += 3
            continue
        if not tok.startswith("-"):
            i += 1
            continue
        name = _ALIASES.get(tok, tok)
        i += 1
        values: list[str] = []
        if name in _ONE_VALUE:
            if i < len(tokens):
                values.append(tokens[i])
                i += 1
        else:
            while i < len(tokens) and tokens[i] != "!" and not tokens[i].startswith("-"):
                values.append(tokens[i])
                i += 1
        if name in ("-j", "-g") and target is None:
            target = values[0] if values else None
        elif target is not None:
            target_args[name] = tuple(values)
        else:
            matches.append((name, tuple(values), negate))
        negate = False
    if table is None:
        table = (
            "filter" if (chain in _FILTER_ONLY_CHAINS or target in _FILTER_ONLY_TARGETS) else "nat"
        )
    return _Rule(table, chain, matches, target, target_args)


def _parse_rules(text: str) -> list[_Rule]:
    rules: list[_Rule] = []
    table: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip() or None
            continue
        if line == "COMMIT":
            table = None
            continue
        if line.startswith(":"):
            continue
        rule = _parse_rule(table, _tokens(line))
        if rule is not None:
            rules.append(rule)
    return rules


# --------------------------------------------------------------------------- names in comments

_NAME_IN_COMMENT = re.compile(
    r"(?:^|\s)([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)/([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)(?::([a-z0-9][-a-z0-9]*))?(?=\s|$)"
)
_ARROW = re.compile(r"->\s*(\S+)")


def _names_in(comment: str | None) -> list[tuple[str, str, str]]:
    if not comment:
        return []
    return [(m.group(1), m.group(2), m.group(3) or "") for m in _NAME_IN_COMMENT.finditer(comment)]


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


# --------------------------------------------------------------------------- assembling


@dataclass
class _Acc:
    key: str
    names: Counter = field(default_factory=Counter)
    protocol: str | None = None
    cluster_ip: str | None = None
    port: int | None = None
    node_port: int | None = None
    lb_ips: list[str] = field(default_factory=list)
    ext_ips: list[str] = field(default_factory=list)
    internal_chain: str | None = None
    internal_policy: str | None = None
    external_policy: str | None = None
    no_endpoints: bool = False
    source_ranges: list[str] = field(default_factory=list)
    health_check_node_port: int | None = None
    unless_source: str | None = None
    all_sources: bool = False
    external_masq: bool = False

    def add_name(self, comment: str | None, weight: int = 1) -> None:
        for name in _names_in(comment):
            self.names[name] += weight

    def set_address(self, rule: _Rule) -> None:
        self.protocol = self.protocol or rule.protocol
        self.port = self.port if self.port is not None else rule.dport
        self.cluster_ip = self.cluster_ip or rule.address("-d")


def _key(chain: str | None) -> str | None:
    if not chain:
        return None
    for prefix in SERVICE_CHAIN_PREFIXES:
        if chain.startswith(prefix):
            return chain[len(prefix) :]
    return None


def _add_unique(items: list[str], value: str | None) -> None:
    if value and value not in items:
        items.append(value)


def _probability(rule: _Rule) -> float:
    if rule.value("--mode") == "random" or rule.has("--probability"):
        try:
            return min(max(float(rule.value("--probability") or 1.0), 0.0), 1.0)
        except ValueError:
            return 1.0
    return 1.0


def _is_affinity_check(rule: _Rule) -> bool:
    return rule.has("--rcheck") or rule.has("--update")


class _Dump:
    """The parsed rules, indexed by table and chain."""

    def __init__(self, rules: list[_Rule]) -> None:
        self.rules = rules
        self.chains: dict[tuple[str, str], list[_Rule]] = {}
        for rule in rules:
            self.chains.setdefault((rule.table, rule.chain), []).append(rule)

    def chain(self, name: str | None, table: str = "nat") -> list[_Rule]:
        return self.chains.get((table, name), []) if name else []

    def endpoint(self, sep: str, dispatch: _Rule) -> tuple[str | None, int | None, str | None]:
        """(ip, port, protocol) a KUBE-SEP chain DNATs to, falling back to the ``-> ip:port`` comment."""
        for rule in self.chain(sep):
            if rule.target == "DNAT":
                dest = (rule.target_args.get("--to-destination") or ("",))[0]
                ip, port = _split_hostport(dest)
                return ip, port, rule.protocol
        arrow = _ARROW.search(dispatch.comment or "")
        if arrow:
            ip, port = _split_hostport(arrow.group(1))
            return ip, port, None
        return None, None, None

    def distribution(self, chain: str | None) -> tuple[list[tuple[str, float, _Rule]], bool]:
        """Resolve chained statistic rules into each KUBE-SEP chain's real share of new connections."""
        remaining = 1.0
        shares: dict[str, float] = {}
        first_rule: dict[str, _Rule] = {}
        affinity = False
        for rule in self.chain(chain):
            if not (rule.target or "").startswith(ENDPOINT_CHAIN_PREFIX):
                continue
            if _is_affinity_check(rule):
                affinity = True
                continue
            chance = remaining * _probability(rule)
            remaining -= chance
            shares[rule.target] = shares.get(rule.target, 0.0) + chance
            first_rule.setdefault(rule.target, rule)
        return [(sep, share, first_rule[sep]) for sep, share in shares.items()], affinity


def _masquerade_globals(dump: _Dump) -> tuple[str | None, bool, bool]:
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
    return mark, snat, random_fully


def parse_iptables_save(text: str, *, service_names: Iterable[str] = ()) -> list[ServicePort]:
    """Every service port kube-proxy programmed in an ``iptables-save`` dump, with its endpoints.

    Reads real kube-proxy output (with or without comments, whole dumps or grep excerpts) and
    the sandbox's. ``service_names`` (``ns/name:port`` strings) lets a caller name service ports
    whose comments are missing by matching kube-proxy's chain hashes.
    """
    dump = _Dump(_parse_rules(text))
    accs: dict[str, _Acc] = {}
    for table, chain in dump.chains:  # chains known only from their own rules (grep output)
        key = _key(chain)
        if table == "nat" and key is not None:
            accs.setdefault(key, _Acc(key))
    old_style_masq = _read_entry_points(dump, accs)
    mark, snat, random_fully = _masquerade_globals(dump)
    masq = Masquerade(mark=mark, snat=snat, random_fully=random_fully)
    services = [_assemble(dump, acc, old_style_masq, masq) for acc in accs.values()]
    _name_services(services, accs, service_names)
    _apply_filter_table(dump, services, masq)
    services.sort(key=_sort_key)
    return services


def _read_entry_points(dump: _Dump, accs: dict[str, _Acc]) -> list[_Rule]:
    """Cluster, load balancer and external IPs from KUBE-SERVICES; node ports from KUBE-NODEPORTS.

    Returns the masquerade rules older kube-proxy versions put straight into KUBE-SERVICES.
    """
    old_style: list[_Rule] = []
    for rule in dump.chain("KUBE-SERVICES"):
        key = _key(rule.target)
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
        key = _key(rule.target)
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


def _assemble(dump: _Dump, acc: _Acc, old_style_masq: list[_Rule], masq: Masquerade) -> ServicePort:
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
            elif (
                rule.dport is not None
            ):  # older kube-proxy: NodePort masquerade inside the SVC chain
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
        if _key(rule.target) is not None and rule.has("-s"):
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
        shares, affinity = dump.distribution(chain)
        merged: dict[tuple[str | None, int | None], float] = {}
        for sep, share, dispatch in shares:
            acc.add_name(dispatch.comment)
            for sep_rule in dump.chain(sep):
                acc.add_name(sep_rule.comment)
                if sep_rule.target == MARK_MASQ_CHAIN and sep_rule.has("-s"):
                    hairpin = True
            ip, port, proto = dump.endpoint(sep, dispatch)
            acc.protocol = acc.protocol or proto
            merged[(ip, port)] = merged.get((ip, port), 0.0) + share
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


def _apply_filter_table(dump: _Dump, services: list[ServicePort], masq: Masquerade) -> None:
    """Fold the filter table's REJECT/DROP and health-check rules into the service ports."""

    def find(
        comment: str | None, proto: str | None, ip: str | None, port: int | None
    ) -> ServicePort | None:
        for ns, name, port_name in _names_in(comment):
            spn = service_port_name(ns, name, port_name)
            for sp in services:
                if proto and sp.chain and sp.chain.endswith(port_proto_hash(spn, proto)):
                    return sp
                if (sp.namespace, sp.name, sp.port_name) == (ns, name, port_name):
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
        sp = find(rule.comment, proto, ip, port if ip else None)
        if sp is None:
            if not _names_in(rule.comment):
                continue  # an uncommented external rule cannot be tied to a service
            sp = new_entry(rule.comment, proto)
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
            sp = find(rule.comment, None, None, None)
            if sp is not None:
                sp.health_check_node_port = rule.dport


def _name_services(
    services: list[ServicePort], accs: dict[str, _Acc], hints: Iterable[str]
) -> None:
    """Pick each service port's name: the comment whose hash matches its chain, else the commonest."""
    by_hash: dict[str, tuple[str, str, str]] = {}
    for hint in hints:
        found = _names_in(hint.strip())
        if found:
            spn = service_port_name(*found[0])
            for proto in _PROTOCOLS:
                by_hash[port_proto_hash(spn, proto)] = found[0]
    for sp in services:
        if sp.service is not None or sp.chain is None:
            continue
        key = _key(sp.chain)
        acc = accs.get(key or "")
        chosen: tuple[str, str, str] | None = None
        if acc is not None and acc.names:
            for candidate, _ in acc.names.most_common():
                spn = service_port_name(*candidate)
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
            for proto in _PROTOCOLS:
                if (
                    port_proto_hash(
                        service_port_name(sp.namespace or "", sp.name or "", sp.port_name), proto
                    )
                    == key
                ):
                    sp.protocol = proto.upper()


def _pick_port_name(names: Counter) -> tuple[str, str, str]:
    """The commonest name; between ``ns/a`` and ``ns/a:p`` (same service) prefer the one with a port."""
    ranked = names.most_common()
    best = ranked[0][0]
    for candidate, _ in ranked:
        if candidate[:2] == best[:2] and candidate[2] and not best[2]:
            return candidate
    return best


def _ip_key(ip: str | None) -> tuple[int, int]:
    try:
        addr = ipaddress.ip_address(ip or "")
    except ValueError:
        return (9, 0)
    return (addr.version, int(addr))


def _sort_key(sp: ServicePort) -> tuple:
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


# --------------------------------------------------------------------------- for people


def format_services(entries: Iterable[ServicePort]) -> str:
    """A fixed-width table of service ports and their endpoints, one endpoint per line."""
    header = ("SERVICE", "CLUSTER-IP", "NODEPORT", "EXTERNAL", "POLICY", "ENDPOINTS")
    rows: list[tuple[str, ...]] = []
    for sp in entries:
        cluster = f"{sp.cluster_ip}:{sp.port}/{sp.protocol}" if sp.cluster_ip else "-"
        node_port = str(sp.node_port) if sp.node_port else "-"
        external = ",".join(sp.load_balancer_ips + sp.external_ips) or "-"
        policy = sp.external_traffic_policy or "-"
        if sp.internal_traffic_policy == "Local":
            policy = f"{policy} (internal Local)" if policy != "-" else "internal Local"
        endpoint_cells = [f"{ep.ip}:{ep.port} {ep.probability * 100:.1f}%" for ep in sp.endpoints]
        if not endpoint_cells:
            endpoint_cells = ["none (REJECT: connection refused)" if sp.no_endpoints else "none"]
        rows.append((sp.display_name, cluster, node_port, external, policy, endpoint_cells[0]))
        rows.extend(("", "", "", "", "", cell) for cell in endpoint_cells[1:])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"
