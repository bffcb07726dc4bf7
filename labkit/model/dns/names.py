"""DNS names as cluster DNS spells them: fully qualified and lowercase, the cluster zone,
reverse (PTR) names, addresses as one dashed label, and the A/AAAA type of an address."""

from __future__ import annotations

import ipaddress
import re

CLUSTER_DOMAIN = "cluster.local"
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def fqdn(name: str) -> str:
    """``name`` lowercased with exactly one trailing dot, the form every record here uses."""
    text = name.strip().lower()
    if text in ("", "."):
        return "."
    return text.rstrip(".") + "."


def check_name(name: str, what: str) -> str:
    """Validate a DNS name (labels 1-63 chars, total <= 253) and return it as an FQDN."""
    text = fqdn(name)
    if text == ".":
        return text
    labels = text[:-1].split(".")
    if len(text) > 254 or any(not 0 < len(label) <= 63 for label in labels):
        raise ValueError(f"{what} {name!r} is not a valid DNS name (empty or over-long label).")
    return text


def cluster_zone(cluster_domain: str) -> str:
    """The cluster domain as a zone name (``cluster.local.``); ValueError unless it is made of
    lowercase DNS labels."""
    zone = check_name(cluster_domain, "cluster domain")
    if zone == "." or not all(DNS_LABEL.match(label) for label in zone[:-1].split(".")):
        raise ValueError(
            f"cluster domain {cluster_domain!r} must be lowercase DNS labels "
            "such as 'cluster.local'."
        )
    return zone


def reverse_name(ip: str) -> str:
    """The PTR owner name of an address: ``10.96.0.10`` -> ``10.0.96.10.in-addr.arpa.``."""
    try:
        return ipaddress.ip_address(ip).reverse_pointer + "."
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address.") from None


def dashed(ip: str) -> str:
    """An address as one DNS label, as CoreDNS's ``endpointHostname`` spells it: ``10.244.1.5`` ->
    ``10-244-1-5``, ``fd00::`` -> ``fd00--0`` (a label may not end in a dash)."""
    label = str(ipaddress.ip_address(ip)).replace(".", "-").replace(":", "-")
    return label + "0" if label.endswith("-") else label


def address_type(ip: str) -> str:
    """The record type that holds ``ip``: ``A`` or ``AAAA``."""
    try:
        return "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address.") from None
