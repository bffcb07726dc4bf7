"""kube-proxy's per-port rules are cached (labkit.sandbox.proxy_rule_cache, one per lab) and reused
only while every input of the port's chains is unchanged: the ServicePort's fields, its
endpoints with their conditions, the node, its IP and the cluster CIDR, all of which
pkg/proxy/iptables/proxier.go syncProxyRules reads for one port's chains
(svcInfo, CategorizeEndpoints' ready/serving/terminating/nodeName, nodeIP, localDetector).
The same port and endpoint objects again (an unchanged Service's, from the proxy input cache)
are a lookup; equal new ones are compared by their repr."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import pytest

from labkit.sandbox import proxyrules
from labkit.sandbox.iptables import Chains
from labkit.sandbox.proxy_rule_cache import ProxyRuleCache
from labkit.sandbox.proxyports import PortEndpoint, ProxiedPort

PORT = ProxiedPort(
    namespace="ns",
    name="web",
    port_name="http",
    protocol="tcp",
    cluster_ip="10.96.0.10",
    port=80,
    node_port=30080,
    load_balancer_ips=("192.0.2.10",),
    external_ips=("198.51.100.1",),
    external_local=True,
    internal_local=False,
    affinity_seconds=10800,
    source_ranges=("172.18.0.0/16",),
    health_check_node_port=31000,
)
ENDPOINTS = (
    PortEndpoint("10.244.1.5", 8080, "n1", True, True, False),
    PortEndpoint("10.244.2.5", 8080, "n2", True, True, False),
)
INPUTS: dict[str, Any] = {"node": "n1", "node_ip": "172.18.0.2", "cidr": "10.244.0.0/16"}

PORT_CHANGES: dict[str, Any] = {
    "namespace": "other",
    "name": "api",
    "port_name": "https",
    "protocol": "udp",
    "cluster_ip": "10.96.0.11",
    "port": 81,
    "node_port": 30081,
    "load_balancer_ips": ("192.0.2.11",),
    "external_ips": (),
    "external_local": False,
    "internal_local": True,
    "affinity_seconds": None,
    "source_ranges": ("10.0.0.0/8",),
    "health_check_node_port": 31001,
}
TERMINATING = tuple(dataclasses.replace(e, ready=False, terminating=True) for e in ENDPOINTS)
"""No endpoint ready: serving and terminating ones stand in (where those two fields matter)."""
ENDPOINT_CHANGES: dict[str, Any] = {
    "ip": "10.244.1.6",
    "port": 8081,
    "node": "n3",
    "ready": False,
    "serving": False,
    "terminating": False,
}


def rendered(part: Chains) -> list[Any]:
    """The part's chains with their order."""
    return [[(t, list(d.items())) for t, d in field.items()] for field in part[:2]] + [part[2]]


def through(
    cache: ProxyRuleCache,
    port: ProxiedPort,
    endpoints: tuple[PortEndpoint, ...],
    inputs: dict[str, Any],
) -> Chains:
    """The port's rules on the node of ``inputs``, as kube-proxy's render asks ``cache``."""
    at = tuple(inputs.values())
    return cache.port_rules(
        port, endpoints, at, partial(proxyrules._port_rules, port, endpoints, *at)
    )


def fresh(port: ProxiedPort, endpoints: tuple[PortEndpoint, ...], inputs: dict[str, Any]) -> Any:
    """The port's rules with an empty cache: what rendering without a cache gives."""
    return rendered(through(ProxyRuleCache(), port, endpoints, inputs))


def warm(
    port: ProxiedPort,
    endpoints: tuple[PortEndpoint, ...],
    inputs: dict[str, Any],
    base: tuple[PortEndpoint, ...],
) -> Any:
    """The port's rules right after the unchanged port (endpoints ``base``) was cached."""
    cache = ProxyRuleCache()
    through(cache, PORT, base, INPUTS)
    return rendered(through(cache, port, endpoints, inputs))


Case = tuple[str, ProxiedPort, tuple[PortEndpoint, ...], dict[str, Any], tuple[PortEndpoint, ...]]


def cases() -> list[Case]:
    """The port with one input changed: each ServicePort field, each endpoint field, the
    endpoint list, the node, its IP, the cluster CIDR; the last item is the endpoints of the
    unchanged port."""
    out: list[Case] = [
        (f"port.{f}", dataclasses.replace(PORT, **{f: v}), ENDPOINTS, INPUTS, ENDPOINTS)
        for f, v in PORT_CHANGES.items()
    ]
    for f, v in ENDPOINT_CHANGES.items():
        base = TERMINATING if f in ("serving", "terminating") else ENDPOINTS
        changed = (dataclasses.replace(base[0], **{f: v}), base[1])
        out.append((f"endpoint.{f}", PORT, changed, INPUTS, base))
    out.append(("endpoints dropped", PORT, ENDPOINTS[:1], INPUTS, ENDPOINTS))
    out += [
        (f"input.{k}", PORT, ENDPOINTS, {**INPUTS, k: v}, ENDPOINTS)
        for k, v in (("node", "n2"), ("node_ip", "10.0.0.1"), ("cidr", "10.245.0.0/16"))
    ]
    return out


def test_every_input_is_covered() -> None:
    """The cases change every field of both dataclasses: a new field must join them."""
    assert set(PORT_CHANGES) == {f.name for f in dataclasses.fields(ProxiedPort)}
    assert set(ENDPOINT_CHANGES) == {f.name for f in dataclasses.fields(PortEndpoint)}


@pytest.mark.parametrize(
    ("port", "endpoints", "inputs", "base"), [c[1:] for c in cases()], ids=[c[0] for c in cases()]
)
def test_a_changed_input_renders_again(
    port: ProxiedPort,
    endpoints: tuple[PortEndpoint, ...],
    inputs: dict[str, Any],
    base: tuple[PortEndpoint, ...],
) -> None:
    """With the unchanged port cached, the changed one gives its own rules (which differ)."""
    expected = fresh(port, endpoints, inputs)
    assert expected != fresh(PORT, base, INPUTS)
    assert warm(port, endpoints, inputs, base) == expected


def test_unchanged_inputs_reuse_and_equal_a_render() -> None:
    """Equal inputs (new objects) reuse the cached part, which equals a fresh render."""
    cache = ProxyRuleCache()
    first = through(cache, PORT, ENDPOINTS, INPUTS)
    again = through(
        cache, dataclasses.replace(PORT), tuple(dataclasses.replace(e) for e in ENDPOINTS), INPUTS
    )
    assert again is first
    assert rendered(first) == fresh(PORT, ENDPOINTS, INPUTS)


def test_the_same_objects_reuse_and_a_repr_difference_renders_again() -> None:
    """The objects cached are a hit; 1 where True was (equal under ``==``) is not."""
    cache = ProxyRuleCache()
    first = through(cache, PORT, ENDPOINTS, INPUTS)
    assert through(cache, PORT, ENDPOINTS, INPUTS) is first
    one = dataclasses.replace(PORT, external_local=1)
    assert one == PORT
    assert through(cache, one, ENDPOINTS, INPUTS) is not first


def test_the_cache_is_bounded() -> None:
    """Past ``ports_kept`` entries the least recently used go; a port keeps one entry per
    node."""
    cache = ProxyRuleCache(ports_kept=2)
    for name in ("a", "b", "c"):
        for number in (80, 81):
            through(cache, dataclasses.replace(PORT, name=name, port=number), ENDPOINTS, INPUTS)
    assert [key[1] for key in cache._ports] == ["b", "c"]


def test_two_labs_keep_their_own_rules() -> None:
    """Each lab's data plane holds its own cache: one lab's renders never evict or serve the
    other's, even for nodes of the same name."""
    one, other = ProxyRuleCache(ports_kept=1), ProxyRuleCache(ports_kept=1)
    first = through(one, PORT, ENDPOINTS, INPUTS)
    through(other, dataclasses.replace(PORT, name="api"), ENDPOINTS, INPUTS)
    assert through(one, PORT, ENDPOINTS, INPUTS) is first
    assert through(other, PORT, ENDPOINTS, INPUTS) is not first
