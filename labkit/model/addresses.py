"""Small address helpers shared by checks and backends (pure)."""

from __future__ import annotations

import functools
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address literal (not a name, not a CIDR)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1 << 16)
def parse_ip(text: str) -> IPAddress:
    """``ipaddress.ip_address(text)``, remembered: a big lab parses the same few hundred
    addresses thousands of times per change (issue 18); ValueError as ``ip_address`` raises it
    (never remembered). The address objects are immutable, so sharing them is safe."""
    return ipaddress.ip_address(text)


def covering(cidrs: list[str]) -> str | None:
    """The smallest network holding every address or network in ``cidrs`` (the first one's IP
    version; None for none): a cluster's pod range from its nodes' podCIDRs."""
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    if not nets:
        return None
    same = [n for n in nets if n.version == nets[0].version]
    net = same[0]
    while not all(n.subnet_of(net) for n in same):  # type: ignore[arg-type]
        net = net.supernet()
    return str(net)
