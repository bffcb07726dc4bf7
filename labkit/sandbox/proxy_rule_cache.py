"""One lab's kube-proxy rules kept between passes (issue 18): each Service port's rules per
node, keyed by everything they are rendered from, and each node's last merge of them. Kept on
the lab's data plane, so they go with the lab and two labs of one process never share them.
Pure: no I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from labkit.sandbox.chainmerge import MergedChains
from labkit.sandbox.iptables import Chains
from labkit.sandbox.proxyports import PortEndpoint, ProxiedPort

PORT_RULES_KEPT = 10_000
"""Ports' rendered rules kept (one per port and node, a few kB each): past it the least recently
used go, which costs only a render."""


class _Part(NamedTuple):
    """One port's rules on a node, with the inputs they were rendered from."""

    port: ProxiedPort
    endpoints: tuple[PortEndpoint, ...]
    inputs: str
    """``repr((port, endpoints))``: tells 1 from True, as ``==`` would not."""
    chains: Chains


class ProxyRuleCache:
    """Each port's rules per node and each node's merge, as the last passes left them."""

    def __init__(self, ports_kept: int = PORT_RULES_KEPT) -> None:
        self.ports_kept = ports_kept
        self._ports: dict[tuple[str | None, ...], _Part] = {}
        self._merged: dict[str, MergedChains] = {}
        self._lock = threading.Lock()  # renders hold the lab's lifecycle lock; this is insurance

    def port_rules(
        self,
        port: ProxiedPort,
        endpoints: tuple[PortEndpoint, ...],
        node: tuple[str, str | None, str],
        render: Callable[[], Chains],
    ) -> Chains:
        """The port's rules on ``node`` (name, address, cluster CIDR), from ``render`` only when
        an input differs from last time: the same port and endpoint objects (an unchanged
        Service's, from ``ProxyInputCache``) cost a lookup; others are compared by their repr."""
        key = (*port.key, *node)
        with self._lock:
            cached = self._ports.pop(key, None)
        if cached is None or not (cached.port is port and cached.endpoints is endpoints):
            inputs = repr((port, endpoints))
            if cached is None or cached.inputs != inputs:
                cached = _Part(port, endpoints, inputs, render())  # outside the lock
            else:
                cached = cached._replace(port=port, endpoints=endpoints)
        with self._lock:
            self._ports[key] = cached  # most recently used last
            while len(self._ports) > self.ports_kept:
                del self._ports[next(iter(self._ports))]
        return cached.chains

    def merge(self, node_name: str, parts: list[Chains]) -> Chains:
        """``parts`` merged into the node's chains, from the node's last merge by what changed."""
        with self._lock:
            merged = self._merged.setdefault(node_name, MergedChains())
            return merged.update(parts)
