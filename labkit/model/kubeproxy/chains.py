"""kube-proxy's names and numbers: the chain names it derives from a service port (sha256,
base32), the probabilities of its statistic rules as iptables prints them, quoted comments."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re

# Chain families kube-proxy creates per service port, all suffixed with the same hash.
# KUBE-XLB- is the pre-1.24 name of what KUBE-SVL- does for externalTrafficPolicy: Local.
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
ENDPOINT_CHAIN_PREFIX = "KUBE-SEP-"
MARK_MASQ_CHAIN = "KUBE-MARK-MASQ"


def service_port_name(namespace: str, name: str, port_name: str | None = "") -> str:
    """``ns/name:port`` (``ns/name`` for an unnamed port): kube-proxy's ServicePortName string."""
    base = f"{namespace}/{name}"
    return f"{base}:{port_name}" if port_name else base


@functools.lru_cache(maxsize=1 << 14)
def _hash16(text: str) -> str:
    """sha256, base32, 16 characters; kept per text, as a changed Service hashes its same
    endpoints again (issue 18)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def port_proto_hash(port_name: str, protocol: str) -> str:
    """The 16-character suffix kube-proxy gives a service port's chains (sha256, base32)."""
    return _hash16(port_name + protocol.lower())


def service_chain(prefix: str, port_name: str, protocol: str) -> str:
    """A per-service-port chain name: ``service_chain("KUBE-SVC-", "default/web:http", "TCP")``."""
    if prefix not in SERVICE_CHAIN_PREFIXES:
        raise ValueError(
            f"unknown service chain prefix {prefix!r}; "
            f"use one of {', '.join(SERVICE_CHAIN_PREFIXES)}"
        )
    return prefix + port_proto_hash(port_name, protocol)


def endpoint_chain(port_name: str, protocol: str, endpoint: str) -> str:
    """The ``KUBE-SEP-`` chain of one endpoint (``endpoint`` is ``ip:port``, as kube-proxy
    hashes it)."""
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


def service_chain_hash(chain: str | None) -> str | None:
    """The hash suffix of a per-service-port chain (``KUBE-SVC-<hash>`` -> ``<hash>``) or None."""
    if not chain:
        return None
    for prefix in SERVICE_CHAIN_PREFIXES:
        if chain.startswith(prefix):
            return chain[len(prefix) :]
    return None
