"""Small address helpers shared by checks and backends (pure)."""

from __future__ import annotations

import ipaddress


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address literal (not a name, not a CIDR)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
