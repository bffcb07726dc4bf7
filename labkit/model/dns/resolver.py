"""The pod side of cluster DNS: how glibc reads a resolv.conf, and the names glibc's stub
resolver tries, in order, for one lookup (what kubelet writes is :mod:`.poddns`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from labkit.model.dns.names import CLUSTER_DOMAIN, DNS_LABEL, cluster_zone

DNS_SERVICE_IP = "10.96.0.10"
DEFAULT_NDOTS = 5
GLIBC_MAX_NDOTS = 15  # glibc clamps options ndots:n to this
GLIBC_MAX_NAMESERVERS = 3  # MAXNS: further nameserver lines are ignored


@dataclass(frozen=True)
class ResolvConf:
    """A parsed resolv.conf as glibc uses it (an empty ``nameservers`` means glibc falls back
    to 127.0.0.1)."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: int = 5
    attempts: int = 2
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    """Read resolv.conf text with glibc's rules: last ``search``/``domain`` wins, at most 3
    nameservers, ``ndots`` clamped to 15, ``timeout`` to 30, ``attempts`` to 5; comments start
    with ``#`` or ``;``."""
    nameservers: list[str] = []
    search: list[str] = []
    ndots, timeout, attempts = 1, 5, 2
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        keyword, *args = line.split()
        if keyword == "nameserver" and args:
            try:
                ipaddress.ip_address(args[0].split("%")[0])
            except ValueError:
                continue  # glibc skips an address it cannot parse
            if len(nameservers) < GLIBC_MAX_NAMESERVERS:
                nameservers.append(args[0])
        elif keyword == "domain" and args:
            search = [args[0].rstrip(".")]
        elif keyword == "search":
            search = [domain.rstrip(".") for domain in args]
        elif keyword == "options":
            for opt in args:
                options.append(opt)
                name, _, value = opt.partition(":")
                if not value.isdigit():
                    continue
                if name == "ndots":
                    ndots = min(int(value), GLIBC_MAX_NDOTS)
                elif name == "timeout":
                    timeout = min(int(value), 30)
                elif name == "attempts":
                    attempts = min(int(value), 5)
    return ResolvConf(tuple(nameservers), tuple(search), ndots, timeout, attempts, tuple(options))


def cluster_search_path(namespace: str, cluster_domain: str = CLUSTER_DOMAIN) -> list[str]:
    """The search domains kubelet gives a ClusterFirst pod in ``namespace``."""
    ns = namespace.strip().lower()
    if not DNS_LABEL.match(ns):
        raise ValueError(
            f"namespace {namespace!r} is not a DNS label (lowercase letters, digits and '-')."
        )
    zone = cluster_zone(cluster_domain)[:-1]
    return [f"{ns}.svc.{zone}", f"svc.{zone}", zone]


def query_order(name: str, search: Sequence[str], ndots: int = DEFAULT_NDOTS) -> list[str]:
    """Every name glibc's ``res_search`` may send for ``name``, in order, each with a trailing dot.

    A trailing dot makes the name absolute: it is tried alone. A name with at least ``ndots`` dots
    is tried as written first, then with each search domain; a shorter one tries the search
    domains first and the bare name last. The resolver stops at the first answer that has
    records, so ``explain_lookup`` shows how many of these a real lookup uses.
    """
    text = name.strip()
    if not text or text == ".":
        raise ValueError(f"cannot resolve {name!r}: give a host name such as 'my-svc'.")
    if ".." in text or text.startswith("."):
        raise ValueError(f"{name!r} has an empty label; remove the doubled or leading dot.")
    if ndots < 0:
        raise ValueError(f"ndots must be 0 or more, not {ndots}.")
    ndots = min(ndots, GLIBC_MAX_NDOTS)
    dots = text.count(".")
    absolute = text.endswith(".")
    bare = text.rstrip(".")
    as_is = bare + "."
    order: list[str] = []
    tried_as_is = False
    if absolute or dots >= ndots:
        order.append(as_is)
        tried_as_is = True
        if absolute:
            return order
    # glibc walks the search list for dotted and undotted names alike (RES_DNSRCH / RES_DEFNAMES).
    for domain in search:
        domain = domain.strip().lstrip(".").rstrip(".")
        candidate = as_is if not domain else f"{bare}.{domain}."
        if not domain:
            tried_as_is = True  # a root entry on the list stands for the bare name
        order.append(candidate)
    if not tried_as_is:
        order.append(as_is)
    return order
