"""What ``workloads.json`` asks the agent to serve (pure): pods, their ports and roles, cluster DNS
records, Ingress rules, kube-proxy's service health checks and Cilium's HTTP rules;
``parse_spec`` checks it all and names every problem at once."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.model.ciliuml7 import HttpRule, parse_http_rules
from labkit.model.dns.records import Record
from labkit.sandbox.agent.files import SPEC_FILE
from labkit.sandbox.agent.ingress import IngressRule, sort_ingress_rules

RowKey = tuple[str, str, str, int]
"""A DNS record's row in ``workloads.json``: ``(name, type, value, ttl)``."""
ROLES = ("netexec", "serve-hostname", "dns", "ingress", "resolver")
PROTOCOLS = ("TCP", "UDP")
PATH_TYPES = ("Prefix", "Exact", "ImplementationSpecific")


@dataclass(frozen=True)
class PortSpec:
    """One declared container port."""

    port: int
    protocol: str


@dataclass(frozen=True)
class Workload:
    """One pod the agent serves: where it lives and what it answers on."""

    namespace: str
    name: str
    netns: str
    ip: str
    role: str
    ports: tuple[PortSpec, ...]
    hostname: str
    """What the pod's ``os.Hostname()`` returns (agnhost's ``/hostname``): the node's name for a
    host-network pod, ``spec.hostname`` where set, else the pod's name."""

    @property
    def ref(self) -> str:
        """``namespace/name``, how logs and errors name the pod."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class HealthCheckSpec:
    """One kube-proxy service health check to serve: a Service's healthCheckNodePort in one
    node's namespace, and the ready local endpoints it reports."""

    namespace: str
    name: str
    netns: str
    port: int
    local_endpoints: int

    def workload(self) -> Workload:
        """The server as a listener sees it: the Service's name, in the node's namespace (no
        hostname: it answers only kube-proxy's health check)."""
        port = PortSpec(self.port, "TCP")
        return Workload(self.namespace, self.name, self.netns, "", "healthcheck", (port,), "")


@dataclass(frozen=True)
class L7Grant:
    """One grant of a CiliumNetworkPolicy on a pod's TCP port whose requests Cilium's proxy
    judges (the port has HTTP rules in some policy): the peers it admits (None: any) and the
    HTTP rules their requests must match (empty: every request, an L3/L4-only grant).

    ``workloads.json`` spells it ``{"netns", "port", "policy": "ns/name", "peers": [ip...] |
    null, "http": [{"method", "path", "host", "headers"}...]}`` under ``l7_grants``."""

    netns: str
    port: int
    policy: str
    peers: tuple[str, ...] | None
    http: tuple[HttpRule, ...]


@dataclass(frozen=True)
class FlowSource:
    """A namespace whose NFLOG flow rules the agent reads (``{"netns", "node"}`` under
    ``flow_sources``): what it logs goes to the lab's flow ring, named by ``node``."""

    netns: str
    node: str


@dataclass(frozen=True)
class AgentSpec:
    """Everything ``workloads.json`` says."""

    workloads: tuple[Workload, ...] = ()
    dns_records: tuple[Record, ...] = ()
    ingress: tuple[IngressRule, ...] = ()
    tls_hosts: tuple[str, ...] = ()
    health_checks: tuple[HealthCheckSpec, ...] = ()
    dns_namespaces: tuple[str, ...] = ()
    l7_grants: tuple[L7Grant, ...] = ()
    flow_sources: tuple[FlowSource, ...] = ()
    record_rows: Mapping[RowKey, Record] = field(default_factory=dict, compare=False, repr=False)
    """Each of ``dns_records`` by its row, for the next reload to reuse (``parse_spec``)."""

    def l7_for(self, netns: str, port: int) -> tuple[L7Grant, ...]:
        """The grants on ``port`` in ``netns``: none means the proxy is not in the path."""
        return tuple(g for g in self.l7_grants if (g.netns, g.port) == (netns, port))

    def health_count(self, netns: str, port: int) -> int:
        """The local endpoint count the health check on ``port`` in ``netns`` reports now."""
        for check in self.health_checks:
            if (check.netns, check.port) == (netns, port):
                return check.local_endpoints
        return 0


def _need(
    obj: object, key: str, kind: type | tuple[type, ...], where: str, problems: list[str]
) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        problems.append(f"{where}: {key!r} is missing or not a {getattr(kind, '__name__', kind)}")
        return None
    return value


def _parse_workloads(data: dict[str, Any], problems: list[str]) -> list[Workload]:
    workloads: list[Workload] = []
    for i, raw in enumerate(data.get("workloads") or []):
        where = f"workloads[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} is not an object")
            continue
        ns, name, netns, ip, role = (
            _need(raw, k, str, where, problems)
            for k in ("namespace", "name", "netns", "ip", "role")
        )
        if role is not None and role not in ROLES:
            problems.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        ports: list[PortSpec] = []
        for j, p in enumerate(raw.get("ports") or []):
            port = _need(p, "port", int, f"{where}.ports[{j}]", problems)
            proto = (p.get("protocol") or "TCP") if isinstance(p, dict) else None
            if port is not None and not 1 <= port <= 65535:
                problems.append(f"{where}.ports[{j}]: port {port} is outside 1-65535")
            elif proto not in PROTOCOLS:
                problems.append(f"{where}.ports[{j}]: protocol {proto!r} is not TCP or UDP")
            elif port is not None and PortSpec(port, proto) not in ports:
                ports.append(PortSpec(port, proto))
        hostname = raw.get("hostname", name)
        if not isinstance(hostname, str):
            problems.append(f"{where}: 'hostname' is not a str")
        workloads.append(Workload(ns, name, netns, ip, role, tuple(ports), str(hostname)))
    # Workloads may share a namespace (the outside's resolver and servers) but never a port.
    seen: dict[tuple[str, PortSpec], str] = {}
    for w in workloads:
        for port in w.ports:
            other = seen.setdefault((w.netns, port), w.ref)
            if other != w.ref and w.netns is not None:
                problems.append(
                    f"pods {other} and {w.ref} share netns {w.netns} and both serve "
                    f"{port.protocol}/{port.port}"
                )
    return workloads


def _parse_records(
    data: dict[str, Any], problems: list[str], known: Mapping[RowKey, Record]
) -> tuple[list[Record], dict[RowKey, Record]]:
    """The rows as records, and each by its row; a row ``known`` holds is that very record."""
    records: list[Record] = []
    by_row: dict[RowKey, Record] = {}
    for i, row in enumerate(data.get("dns_records") or []):
        if (  # spelled out, not all(...): thousands of rows per reload (issue 18)
            not isinstance(row, (list, tuple))
            or len(row) != 4
            or not isinstance(row[0], str)
            or not isinstance(row[1], str)
            or not isinstance(row[2], str)
            or not isinstance(row[3], int)
        ):
            problems.append(f"dns_records[{i}] is not [name, type, value, ttl]")
            continue
        key: RowKey = (row[0], row[1], row[2], row[3])
        record = known.get(key)
        if record is None:
            record = Record(*key)
        records.append(record)
        by_row[key] = record
    return records, by_row


def _parse_ingress(data: dict[str, Any], problems: list[str]) -> list[IngressRule]:
    rules: list[IngressRule] = []
    for i, raw in enumerate(data.get("ingress") or []):
        where = f"ingress[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} is not an object")
            continue
        host = raw.get("host")
        if host is not None and not isinstance(host, str):
            problems.append(f"{where}: host must be a string or null")
        path = raw.get("path") or "/"
        path_type = raw.get("pathType") or "Prefix"
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(f"{where}: path {path!r} must start with '/'")
        if path_type not in PATH_TYPES:
            problems.append(
                f"{where}: pathType {path_type!r} is not one of {', '.join(PATH_TYPES)}"
            )
        backend = raw.get("backend")
        b_ip = _need(backend, "ip", str, f"{where}.backend", problems)
        b_port = _need(backend, "port", int, f"{where}.backend", problems)
        service = (
            backend.get("service") if isinstance(backend, dict) else None
        ) or f"{b_ip}:{b_port}"
        rules.append(
            IngressRule(
                host.lower() if isinstance(host, str) and host else None,
                path,
                path_type,
                b_ip,
                b_port,
                str(service),
            )
        )
    return rules


def _parse_health_checks(data: dict[str, Any], problems: list[str]) -> list[HealthCheckSpec]:
    checks: list[HealthCheckSpec] = []
    for i, raw in enumerate(data.get("health_checks") or []):
        where = f"health_checks[{i}]"
        ns, name, netns = (
            _need(raw, k, str, where, problems) for k in ("namespace", "name", "netns")
        )
        port, count = (_need(raw, k, int, where, problems) for k in ("port", "local_endpoints"))
        if port is not None and not 1 <= port <= 65535:
            problems.append(f"{where}: port {port} is outside 1-65535")
        elif None not in (ns, name, netns, port, count):
            checks.append(HealthCheckSpec(ns, name, netns, port, count))
    return checks


def _parse_l7_grants(data: dict[str, Any], problems: list[str]) -> list[L7Grant]:
    grants: list[L7Grant] = []
    for i, raw in enumerate(data.get("l7_grants") or []):
        where = f"l7_grants[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} is not an object")
            continue
        netns, policy = (_need(raw, k, str, where, problems) for k in ("netns", "policy"))
        port = _need(raw, "port", int, where, problems)
        peers = raw.get("peers")
        if peers is not None and (
            not isinstance(peers, list) or not all(isinstance(p, str) for p in peers)
        ):
            problems.append(f"{where}: peers must be a list of addresses or null")
            continue
        try:
            http = parse_http_rules(raw.get("http") or [], f"{where}.http")
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if None not in (netns, policy, port):
            grants.append(
                L7Grant(netns, port, policy, None if peers is None else tuple(peers), http)
            )
    return grants


def _parse_flow_sources(data: dict[str, Any], problems: list[str]) -> list[FlowSource]:
    sources: list[FlowSource] = []
    for i, raw in enumerate(data.get("flow_sources") or []):
        netns, node = (
            _need(raw, k, str, f"flow_sources[{i}]", problems) for k in ("netns", "node")
        )
        if netns is not None and node is not None:
            sources.append(FlowSource(netns, node))
    return sources


def parse_spec(data: Any, previous: AgentSpec | None = None) -> AgentSpec:
    """Check and convert the JSON of ``workloads.json``; a ValueError lists every problem. DNS
    records the ``previous`` spec holds are its very objects, so comparing and indexing the
    thousands that one change leaves alone cost identity checks (issue 18)."""
    if not isinstance(data, dict):
        raise ValueError("workloads.json must hold a JSON object")
    problems: list[str] = []
    workloads = _parse_workloads(data, problems)
    records, by_row = _parse_records(data, problems, previous.record_rows if previous else {})
    rules = _parse_ingress(data, problems)
    checks = _parse_health_checks(data, problems)
    grants = _parse_l7_grants(data, problems)
    sources = _parse_flow_sources(data, problems)
    tls = data.get("tls_hosts") or []
    if not isinstance(tls, list) or not all(isinstance(h, str) for h in tls):
        problems.append("tls_hosts must be a list of host names")
        tls = []
    namespaces = data.get("dns_namespaces") or []
    if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
        problems.append("dns_namespaces must be a list of namespace names")
        namespaces = []
    if problems:
        raise ValueError("; ".join(problems))
    return AgentSpec(
        tuple(workloads),
        tuple(records),
        tuple(sort_ingress_rules(rules)),
        tuple(tls),
        tuple(checks),
        tuple(namespaces),
        tuple(grants),
        tuple(sources),
        by_row,
    )


def load_spec(state_dir: str, previous: AgentSpec | None = None) -> AgentSpec:
    """Read ``<state_dir>/workloads.json`` (``parse_spec``, reusing ``previous``'s records); a
    missing file means nothing to serve yet."""
    path = os.path.join(state_dir, SPEC_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return AgentSpec()
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    return parse_spec(data, previous)
