"""A pod's resolv.conf as kubelet composes it from ``dnsPolicy`` and ``dnsConfig`` (kubernetes
pkg/kubelet/network/dns/dns.go: GetPodDNS, appendDNSConfig, mergeDNSOptions and the limits of
formDNSConfigFitsLimits), written in the order containerd's CRI writes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.model.dns.names import CLUSTER_DOMAIN

MAX_DNS_NAMESERVERS = 3
"""pkg/apis/core/validation: MaxDNSNameservers; kubelet keeps the first three."""
MAX_DNS_SEARCH_PATHS = 32
"""MaxDNSSearchPaths (the ExpandedDNSConfig limits, GA since 1.28)."""
MAX_DNS_SEARCH_LIST_CHARS = 2048
"""MaxDNSSearchListChars, spaces between domains included."""
DNS1123_SUBDOMAIN_MAX = 253
"""Longer search domains are dropped (some resolvers abort on them)."""
DEFAULT_DNS_OPTIONS = ("ndots:5",)
POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")


@dataclass(frozen=True)
class DnsSettings:
    """What kubelet hands the container runtime: nameservers, search domains, options."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_host_resolv_conf(text: str) -> DnsSettings:
    """The node's resolv.conf as kubelet's parseResolvConf reads it: nameservers accumulate, the
    last ``search`` and the last ``options`` line win, ``#`` starts a comment line."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("#"):
            continue
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return DnsSettings(tuple(servers), tuple(searches), tuple(options))


def dns_type(policy: str, host_network: bool) -> str:
    """``cluster``, ``host`` or ``none`` (getPodDNSType): ClusterFirst on the host network falls
    back to the node's settings; ClusterFirstWithHostNet keeps the cluster's."""
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst" and not host_network:
        return "cluster"
    if policy in ("ClusterFirst", "Default"):
        return "host"
    raise ValueError(f"dnsPolicy {policy!r} is not one of {', '.join(POLICIES)}.")


def omit_duplicates(items: Iterable[str]) -> tuple[str, ...]:
    """Each item once, first occurrence kept (kubelet's omitDuplicates)."""
    return tuple(dict.fromkeys(items))


def merge_dns_options(
    existing: Sequence[str], extra: Iterable[Mapping[str, Any]]
) -> tuple[str, ...]:
    """``name[:value]`` options, the pod's ``dnsConfig.options`` overriding same-named ones
    (mergeDNSOptions). Kubelet's Go map leaves the order random; this keeps first appearance."""
    merged: dict[str, str] = {}
    for text in existing:
        name, _, value = text.partition(":")
        merged[name] = value
    for option in extra:
        given = option.get("value")
        merged[str(option.get("name") or "")] = "" if given is None else str(given)
    return tuple(f"{name}:{value}" if value else name for name, value in merged.items())


def fit_searches(searches: Sequence[str]) -> tuple[str, ...]:
    """The search list cut to kubelet's limits (formDNSSearchFitsLimits): at most 32 domains,
    none over 253 characters, and the joined line at most 2048 characters, cut from the end."""
    kept = [s for s in searches[:MAX_DNS_SEARCH_PATHS] if len(s) <= DNS1123_SUBDOMAIN_MAX]
    while kept and len(" ".join(kept)) > MAX_DNS_SEARCH_LIST_CHARS:
        kept.pop()
    return tuple(kept)


def pod_dns(
    spec: Mapping[str, Any],
    namespace: str,
    node_resolv_conf: str,
    cluster_dns: Sequence[str],
    cluster_domain: str = CLUSTER_DOMAIN,
) -> DnsSettings:
    """GetPodDNS: the base the policy picks (cluster DNS with the cluster search path and
    ``ndots:5``, the node's resolv.conf, or nothing for ``None``), then ``dnsConfig`` appended,
    then kubelet's limits (three nameservers, the search limits of :func:`fit_searches`)."""
    host = parse_host_resolv_conf(node_resolv_conf)
    kind = dns_type(str(spec.get("dnsPolicy") or "ClusterFirst"), bool(spec.get("hostNetwork")))
    if kind == "none":
        base = DnsSettings()
    elif kind == "cluster":
        cluster_search = (f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}")
        base = DnsSettings(
            tuple(cluster_dns),
            omit_duplicates((*cluster_search, cluster_domain, *host.searches)),
            DEFAULT_DNS_OPTIONS,
        )
    else:
        base = host
    config = spec.get("dnsConfig")
    if isinstance(config, Mapping):
        base = DnsSettings(
            omit_duplicates((*base.servers, *(config.get("nameservers") or ()))),
            omit_duplicates((*base.searches, *(config.get("searches") or ()))),
            merge_dns_options(base.options, config.get("options") or ()),
        )
    return DnsSettings(
        base.servers[:MAX_DNS_NAMESERVERS], fit_searches(base.searches), base.options
    )


def format_resolv_conf(settings: DnsSettings) -> str:
    """The file containerd writes from kubelet's settings: ``search``, one ``nameserver`` line
    each, then ``options``; empty parts are left out."""
    lines = []
    if settings.searches:
        lines.append("search " + " ".join(settings.searches))
    lines += [f"nameserver {server}" for server in settings.servers]
    if settings.options:
        lines.append("options " + " ".join(settings.options))
    return "".join(f"{line}\n" for line in lines)


def pod_resolv_conf(
    spec: Mapping[str, Any],
    namespace: str,
    node_resolv_conf: str,
    cluster_dns: Sequence[str],
    cluster_domain: str = CLUSTER_DOMAIN,
) -> str:
    """The pod's /etc/resolv.conf text: :func:`pod_dns` written by :func:`format_resolv_conf`."""
    return format_resolv_conf(
        pod_dns(spec, namespace, node_resolv_conf, cluster_dns, cluster_domain)
    )
