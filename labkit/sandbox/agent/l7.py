"""Cilium's HTTP proxy in front of a pod's port: judge each request against the CiliumNetworkPolicy
grants ``workloads.json`` gives for that port, and answer a denied one as Cilium's Envoy does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.utils import formatdate

from labkit.model.ciliuml7 import DENIED_BODY, DENIED_STATUS, allows
from labkit.sandbox.agent.spec import L7Grant


def request_allowed(
    grants: Sequence[L7Grant], peer_ip: str, method: str, target: str, headers: Mapping[str, str]
) -> bool:
    """Whether some grant admits ``peer_ip`` and lets this request through (Cilium merges the
    grants of every policy on the port: one L3/L4-only grant for the peer allows all its
    requests); no grant for the peer: denied."""
    return any(
        (grant.peers is None or peer_ip in grant.peers)
        and allows(grant.http, method, target, headers)
        for grant in grants
    )


def render_denied(*, keep_alive: bool, now: float | None = None) -> bytes:
    """The proxy's local reply to a denied request: ``403 Forbidden``, body "Access denied" and
    CRLF, with Envoy's lower-case headers (``content-length``, ``content-type: text/plain``,
    ``date``, ``server: envoy``) and ``connection: close`` when the client asked to close."""
    body = DENIED_BODY.encode()
    lines = [
        f"HTTP/1.1 {DENIED_STATUS} Forbidden",
        f"content-length: {len(body)}",
        "content-type: text/plain",
        f"date: {formatdate(now, usegmt=True)}",
        "server: envoy",
    ]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
