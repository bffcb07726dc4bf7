"""The sandbox's kube-proxy: Services + EndpointSlices -> iptables rules shaped like a real
node's."""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import subprocess

import pytest

from labkit.errors import LabError
from labkit.model.kubeproxy.assemble import parse_iptables_save
from labkit.model.kubeproxy.chains import endpoint_chain, service_chain
from labkit.model.objects import name_of
from labkit.sandbox.proxyports import (
    EndpointChoice,
    PortEndpoint,
    PortKey,
    Refusal,
    choose_endpoints,
    endpoints_by_port,
    port_chains,
    service_ports,
)
from labkit.sandbox.proxyrules import render_proxy_rules, restore_text

POD_CIDR = "10.244.0.0/16"
CP, W1, W2 = "netlab-control-plane", "netlab-worker", "netlab-worker2"


def node(name: str, ip: str) -> dict:
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ]
        },
    }


NODES = [node(CP, "172.18.0.2"), node(W1, "172.18.0.3"), node(W2, "172.18.0.4")]


def service(
    ns: str,
    name: str,
    cluster_ip: str | None,
    ports: list[dict],
    svc_type: str = "ClusterIP",
    lb: list[str] | None = None,
    **spec,
) -> dict:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"type": svc_type, "ports": ports, **spec},
    }
    if cluster_ip is not None:
        svc["spec"]["clusterIP"] = cluster_ip
    if lb is not None:
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb]}}
    return svc


def endpoint_slice(
    ns: str,
    svc: str,
    ports: list[dict],
    endpoints: list[tuple],
    suffix: str = "x1",
    address_type: str = "IPv4",
) -> dict:
    """``endpoints``: (ip, node, ready) or (ip, node, ready, serving, terminating)."""
    items = []
    for ep in endpoints:
        ip, node_name, ready, *rest = ep
        conditions = {"ready": ready}
        if rest:
            serving, terminating = rest
            conditions.update(serving=serving, terminating=terminating)
        items.append({"addresses": [ip], "conditions": conditions, "nodeName": node_name})
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": address_type,
        "metadata": {
            "namespace": ns,
            "name": f"{svc}-{suffix}",
            "labels": {"kubernetes.io/service-name": svc},
        },
        "ports": ports,
        "endpoints": items,
    }


def lab_objects() -> tuple[list[dict], list[dict]]:
    """A small cluster: 1/2/3/5-endpoint services, NodePort, LB (Local), no endpoints, headless,
    ExternalName."""
    services = [
        service(
            "default",
            "kubernetes",
            "10.96.0.1",
            [{"name": "https", "port": 443, "protocol": "TCP"}],
        ),
        service(
            "kube-system",
            "kube-dns",
            "10.96.0.10",
            [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                {"name": "metrics", "port": 9153, "protocol": "TCP"},
            ],
        ),
        service(
            "default",
            "web",
            "10.96.14.7",
            [{"name": "http", "port": 80, "nodePort": 30080}],
            "NodePort",
        ),
        service(
            "shop",
            "api",
            "10.96.77.3",
            [{"port": 8080, "protocol": "TCP", "nodePort": 31000}],
            "LoadBalancer",
            lb=["172.18.255.200"],
            externalTrafficPolicy="Local",
            healthCheckNodePort=32000,
        ),
        service("shop", "cart", "10.96.33.9", [{"name": "http", "port": 80}]),
        service(
            "shop",
            "empty",
            "10.96.40.40",
            [{"name": "http", "port": 80, "nodePort": 30500}],
            "NodePort",
        ),
        service("shop", "db", "None", [{"port": 5432}]),
        service("shop", "alias", None, [], "ExternalName", externalName="db.example.com"),
    ]
    slices = [
        endpoint_slice(
            "default",
            "kubernetes",
            [{"name": "https", "port": 6443, "protocol": "TCP"}],
            [("172.18.0.2", CP, True)],
        ),
        endpoint_slice(
            "kube-system",
            "kube-dns",
            [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                {"name": "metrics", "port": 9153, "protocol": "TCP"},
            ],
            [("10.244.1.2", W1, True), ("10.244.2.2", W2, True)],
        ),
        endpoint_slice(
            "default",
            "web",
            [{"name": "http", "port": 8080, "protocol": "TCP"}],
            [("10.244.1.5", W1, True), ("10.244.2.5", W2, True), ("10.244.1.6", W1, True)],
        ),
        endpoint_slice(
            "shop", "api", [{"port": 8080}], [("10.244.1.8", W1, True), ("10.244.2.8", W2, True)]
        ),
        endpoint_slice(
            "shop",
            "cart",
            [{"name": "http", "port": 80}],
            [(f"10.244.2.{i}", W2, True) for i in range(20, 25)],
        ),
        endpoint_slice(
            "shop", "empty", [{"name": "http", "port": 80}], [("10.244.1.30", W1, False)]
        ),
        endpoint_slice("shop", "db", [{"port": 5432}], [("10.244.1.40", W1, True)]),
    ]
    return services, slices


def render(
    node_name: str = W1, services=None, slices=None, cidr: str = POD_CIDR
) -> dict[str, list[str]]:
    default_services, default_slices = lab_objects()
    target = next(n for n in NODES if n["metadata"]["name"] == node_name)
    return render_proxy_rules(
        target,
        NODES,
        default_services if services is None else services,
        default_slices if slices is None else slices,
        cidr,
    )


def chain_rules(lines: list[str], chain: str) -> list[str]:
    return [line for line in lines if line.startswith(f"-A {chain} ")]


# --------------------------------------------------------------------------- shape


def test_three_endpoints_get_one_third_then_one_half_then_the_rest():
    nat = render()["nat"]
    svc = service_chain("KUBE-SVC-", "default/web:http", "tcp")
    dispatch = [r for r in chain_rules(nat, svc) if "KUBE-SEP-" in r]
    assert len(dispatch) == 3
    assert "--probability 0.33333333349" in dispatch[0]
    assert "--probability 0.50000000000" in dispatch[1]
    assert "statistic" not in dispatch[2]
    assert [re.search(r"-> (\S+)\"", r).group(1) for r in dispatch] == [
        "10.244.1.5:8080",
        "10.244.1.6:8080",
        "10.244.2.5:8080",
    ]


def test_chain_names_and_rules_match_kube_proxy_output():
    # kube-proxy's own unit-test service: ns1/svc1 port p80 at 172.30.0.41 -> 10.180.0.1:80.
    svc = service("ns1", "svc1", "172.30.0.41", [{"name": "p80", "port": 80, "protocol": "TCP"}])
    eps = endpoint_slice(
        "ns1", "svc1", [{"name": "p80", "port": 80, "protocol": "TCP"}], [("10.180.0.1", W2, True)]
    )
    nat = render(services=[svc], slices=[eps], cidr="10.0.0.0/8")["nat"]
    assert (
        '-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" '
        "-m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O"
    ) in nat
    assert chain_rules(nat, "KUBE-SVC-XPGD46QRK7WJZT7O") == [
        "-A KUBE-SVC-XPGD46QRK7WJZT7O ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment "
        '--comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
        '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" '
        "-j KUBE-SEP-SXIVWICOYRO3J4NJ",
    ]
    assert chain_rules(nat, "KUBE-SEP-SXIVWICOYRO3J4NJ") == [
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1/32 "
        '-m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ',
        '-A KUBE-SEP-SXIVWICOYRO3J4NJ -p tcp -m comment --comment "ns1/svc1:p80" -m tcp '
        "-j DNAT --to-destination 10.180.0.1:80",
    ]


def test_node_wide_chains_and_jumps_from_builtin_chains():
    tables = render()
    nat, filt = tables["nat"], tables["filter"]
    assert nat[:4] == [
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in nat
    assert '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in nat
    assert (
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'
        in nat
    )
    assert chain_rules(nat, "KUBE-POSTROUTING") == [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    assert chain_rules(nat, "KUBE-MARK-MASQ") == [
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
    ]
    assert chain_rules(nat, "KUBE-SERVICES")[-1] == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; '
        'NOTE: this must be the last rule in this chain" '
        "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
    )
    assert {r.split(" -j ")[-1] for r in chain_rules(filt, "INPUT")} == {
        "KUBE-PROXY-FIREWALL",
        "KUBE-NODEPORTS",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FIREWALL",
    }
    assert {r.split(" -j ")[-1] for r in chain_rules(filt, "FORWARD")} == {
        "KUBE-PROXY-FIREWALL",
        "KUBE-FORWARD",
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
    }
    assert {r.split(" -j ")[-1] for r in chain_rules(filt, "OUTPUT")} == {
        "KUBE-PROXY-FIREWALL",
        "KUBE-SERVICES",
        "KUBE-FIREWALL",
    }


@pytest.mark.parametrize("table", ["nat", "filter"])
def test_declarations_first_and_every_chain_declared(table):
    lines = render()[table]
    first_rule = next(i for i, line in enumerate(lines) if line.startswith("-A "))
    assert all(line.startswith(":") for line in lines[:first_rule])
    assert all(line.startswith("-A ") for line in lines[first_rule:])
    declared = {line[1:].split()[0] for line in lines[:first_rule]}
    for line in lines[first_rule:]:
        assert line.split()[1] in declared
        target = re.search(r" -j (\S+)", line)
        if target and target.group(1).startswith("KUBE-"):
            assert target.group(1) in declared, line
    user = [line[1:].split()[0] for line in lines[:first_rule] if line.endswith(" - [0:0]")]
    assert user == sorted(user)  # iptables-save sorts user chains


def test_masquerade_rules():
    nat = render()["nat"]
    svc = service_chain("KUBE-SVC-", "default/web:http", "tcp")
    assert chain_rules(nat, svc)[0].startswith(
        f"-A {svc} ! -s 10.244.0.0/16 -d 10.96.14.7/32 -p tcp "
    )
    assert chain_rules(nat, svc)[0].endswith("-j KUBE-MARK-MASQ")
    sep = endpoint_chain("default/web:http", "tcp", "10.244.1.5:8080")
    assert chain_rules(nat, sep)[0] == (
        f'-A {sep} -s 10.244.1.5/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ'
    )
    ext = service_chain("KUBE-EXT-", "default/web:http", "tcp")
    assert chain_rules(nat, ext) == [
        f"-A {ext} "
        '-m comment --comment "masquerade traffic for default/web:http external destinations" '
        "-j KUBE-MARK-MASQ",
        f"-A {ext} -j {svc}",
    ]
    assert (
        '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" '
        f"-m tcp --dport 30080 -j {ext}" in nat
    )


def test_no_ready_endpoints_reject_in_filter_table():
    tables = render()
    nat, filt = tables["nat"], tables["filter"]
    assert (
        "-A KUBE-SERVICES -d 10.96.40.40/32 -p tcp "
        '-m comment --comment "shop/empty:http has no endpoints" '
        "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"
    ) in filt
    assert (
        '-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "shop/empty:http has no endpoints" '
        "-m addrtype --dst-type LOCAL -m tcp --dport 30500 "
        "-j REJECT --reject-with icmp-port-unreachable"
    ) in filt
    assert not any("shop/empty" in line for line in nat)


@pytest.mark.parametrize("name", ["shop/db", "shop/alias"])
def test_headless_and_external_name_services_get_no_rules(name):
    tables = render()
    assert not any(name in line for line in tables["nat"] + tables["filter"])


def test_local_policy_on_a_node_with_a_local_endpoint():
    nat = render(W1)["nat"]
    spn = "shop/api"
    svc, svl, ext = (service_chain(p, spn, "tcp") for p in ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-"))
    assert chain_rules(nat, svl) == [
        f'-A {svl} -m comment --comment "shop/api -> 10.244.1.8:8080" '
        f"-j {endpoint_chain(spn, 'tcp', '10.244.1.8:8080')}"
    ]
    ext_rules = chain_rules(nat, ext)
    assert ext_rules[0] == (
        f"-A {ext} -s 10.244.0.0/16 -m comment --comment "
        f'"pod traffic for shop/api external destinations" -j {svc}'
    )
    assert ext_rules[-1] == f"-A {ext} -j {svl}"
    assert not any(r.endswith("-j KUBE-MARK-MASQ") and "addrtype" not in r for r in ext_rules)
    assert (
        len([r for r in chain_rules(nat, svc) if "KUBE-SEP-" in r]) == 2
    )  # cluster IP still reaches both
    assert (
        "-A KUBE-SERVICES -d 172.18.255.200/32 -p tcp "
        '-m comment --comment "shop/api loadbalancer IP" '
        f"-m tcp --dport 8080 -j {ext}"
    ) in nat


def test_local_policy_on_a_node_without_local_endpoints_drops_outside_traffic():
    tables = render(CP)
    nat, filt = tables["nat"], tables["filter"]
    ext = service_chain("KUBE-EXT-", "shop/api", "tcp")
    assert not any(
        line.startswith(":" + service_chain("KUBE-SVL-", "shop/api", "tcp")) for line in nat
    )
    assert not any("KUBE-SVL-" in r for r in chain_rules(nat, ext))
    drops = [
        r
        for r in chain_rules(filt, "KUBE-EXTERNAL-SERVICES")
        if "shop/api has no local endpoints" in r
    ]
    assert len(drops) == 2 and all(r.endswith("-j DROP") for r in drops)
    assert any("--dport 31000" in r for r in drops) and any(
        "-d 172.18.255.200/32" in r for r in drops
    )
    assert (
        '-A KUBE-NODEPORTS -p tcp -m comment --comment "shop/api health check node port" '
        "-m tcp --dport 32000 -j ACCEPT" in filt
    )


def test_internal_traffic_policy_local():
    svc = service(
        "lab", "near", "10.96.9.1", [{"name": "http", "port": 80}], internalTrafficPolicy="Local"
    )
    eps = endpoint_slice(
        "lab",
        "near",
        [{"name": "http", "port": 80}],
        [("10.244.1.9", W1, True), ("10.244.2.9", W2, True)],
    )
    here = render(W1, [svc], [eps])
    svl = service_chain("KUBE-SVL-", "lab/near:http", "tcp")
    assert any(
        r.startswith("-A KUBE-SERVICES -d 10.96.9.1/32") and r.endswith(f"-j {svl}")
        for r in here["nat"]
    )
    assert (
        next(r for r in chain_rules(here["nat"], svl) if "KUBE-SEP-" in r).count("10.244.1.9:80")
        == 1
    )
    elsewhere = render(CP, [svc], [eps])
    assert any(
        "lab/near:http has no local endpoints" in r and r.endswith("-j DROP")
        for r in chain_rules(elsewhere["filter"], "KUBE-SERVICES")
    )


def test_terminating_endpoints_are_a_fallback_only():
    svc = service("lab", "drain", "10.96.9.2", [{"port": 80}])
    ports = [{"port": 8080}]
    both = endpoint_slice(
        "lab", "drain", ports, [("10.244.1.1", W1, True), ("10.244.1.2", W1, False, True, True)]
    )
    nat = render(W1, [svc], [both])["nat"]
    assert any("10.244.1.1:8080" in r for r in nat) and not any("10.244.1.2:8080" in r for r in nat)
    only_terminating = endpoint_slice(
        "lab", "drain", ports, [("10.244.1.2", W1, False, True, True)]
    )
    assert any(
        "DNAT --to-destination 10.244.1.2:8080" in r
        for r in render(W1, [svc], [only_terminating])["nat"]
    )
    not_serving = endpoint_slice("lab", "drain", ports, [("10.244.1.2", W1, False, False, True)])
    assert any(
        "lab/drain has no endpoints" in r for r in render(W1, [svc], [not_serving])["filter"]
    )


def test_slices_match_by_service_label_namespace_port_name_and_protocol():
    svc = service(
        "a",
        "multi",
        "10.96.9.3",
        [{"name": "web", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}],
    )
    slices = [
        endpoint_slice(
            "a", "multi", [{"name": "web", "port": 8080}], [("10.244.1.1", W1, True)], "s1"
        ),
        endpoint_slice(
            "a",
            "multi",
            [{"name": "dns", "port": 5353, "protocol": "UDP"}],
            [("10.244.1.2", W1, True)],
            "s2",
        ),
        endpoint_slice(
            "a", "multi", [{"name": "web", "port": 8080}], [("10.244.1.1", W1, True)], "s3"
        ),  # duplicate
        endpoint_slice(
            "b", "multi", [{"name": "web", "port": 8080}], [("10.244.9.9", W1, True)], "s4"
        ),  # other ns
        endpoint_slice(
            "a", "multi", [{"name": "web", "port": 8080}], [("fd00::1", W1, True)], "s5", "IPv6"
        ),
    ]
    entries = {
        sp.port_name: sp for sp in parse_iptables_save(restore_text(render(W1, [svc], slices)))
    }
    assert entries["web"].endpoints == [("10.244.1.1", 8080, 1.0)]
    assert (
        entries["dns"].endpoints == [("10.244.1.2", 5353, 1.0)] and entries["dns"].protocol == "UDP"
    )


def test_session_affinity_and_source_ranges():
    svc = service(
        "lab",
        "sticky",
        "10.96.9.4",
        [{"name": "https", "port": 443, "nodePort": 30443}],
        "LoadBalancer",
        lb=["172.18.255.201"],
        sessionAffinity="ClientIP",
        loadBalancerSourceRanges=[" 172.18.0.0/16"],
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}},
    )
    eps = endpoint_slice(
        "lab", "sticky", [{"name": "https", "port": 8443}], [("10.244.2.9", W2, True)]
    )
    tables = render(W1, [svc], [eps])
    spn = "lab/sticky:https"
    svc_chain, fw, ext = (
        service_chain(p, spn, "tcp") for p in ("KUBE-SVC-", "KUBE-FW-", "KUBE-EXT-")
    )
    sep = endpoint_chain(spn, "tcp", "10.244.2.9:8443")
    assert any(
        f"--rcheck --seconds 600 --reap --name {sep}" in r
        for r in chain_rules(tables["nat"], svc_chain)
    )
    assert any("--set --name " + sep in r for r in chain_rules(tables["nat"], sep))
    fw_rules = chain_rules(tables["nat"], fw)
    assert (
        fw_rules[0]
        == f'-A {fw} -s 172.18.0.0/16 -m comment --comment "{spn} loadbalancer IP" -j {ext}'
    )
    assert fw_rules[-1].endswith(
        '"other traffic to lab/sticky:https will be dropped by KUBE-PROXY-FIREWALL"'
    )
    assert any(
        f"traffic not accepted by {fw}" in r
        for r in chain_rules(tables["filter"], "KUBE-PROXY-FIREWALL")
    )
    [parsed] = parse_iptables_save(restore_text(tables))
    assert parsed.session_affinity and parsed.load_balancer_source_ranges == ["172.18.0.0/16"]
    assert parsed.endpoints == [("10.244.2.9", 8443, 1.0)]


def test_output_is_deterministic_whatever_the_input_order():
    services, slices = lab_objects()
    first = render(W1, services, slices)
    rng = random.Random(7)
    for _ in range(3):
        shuffled_services, shuffled_slices = services[:], [dict(s) for s in slices]
        rng.shuffle(shuffled_services)
        rng.shuffle(shuffled_slices)
        for s in shuffled_slices:
            s["endpoints"] = rng.sample(s["endpoints"], len(s["endpoints"]))
        assert render(W1, shuffled_services, shuffled_slices) == first


def test_restore_text_wraps_each_table():
    text = restore_text({"nat": [":KUBE-SERVICES - [0:0]"], "filter": [":KUBE-SERVICES - [0:0]"]})
    assert text == "*filter\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"


# --------------------------------------------------------------------------- what is proxied


def test_service_ports_skip_headless_and_external_name_and_sort_by_key():
    services, _ = lab_objects()
    ports = service_ports(services)
    assert [p.key for p in ports] == sorted(p.key for p in ports)
    assert {p.name for p in ports} == {"kubernetes", "kube-dns", "web", "api", "cart", "empty"}
    api = next(p for p in ports if p.name == "api")
    assert api.key == PortKey("shop", "api", "", "tcp")
    assert api.spn == "shop/api"
    assert (api.node_port, api.load_balancer_ips, api.health_check_node_port) == (
        31000,
        ("172.18.255.200",),
        32000,
    )
    assert api.external_local and api.externally_accessible
    assert api.uses_cluster_endpoints and api.uses_local_endpoints


@pytest.mark.parametrize(
    "label",
    [
        ("service.kubernetes.io/service-proxy-name", "foo-bar"),
        ("service.kubernetes.io/service-proxy-name", ""),
        ("service.kubernetes.io/headless", ""),
    ],
)
def test_services_with_a_label_kube_proxy_excludes_get_no_rules(label):
    """kube-proxy's informers use the selector built in cmd/kube-proxy/app/server.go
    (newProxyServer: ``labels.NewRequirement(apis.LabelServiceProxyName, selection.DoesNotExist)``
    and the same for ``v1.IsHeadlessService``), so without --proxy-name a Service carrying either
    label, whatever its value, is never proxied; removing the label brings the rules back."""
    services, slices = lab_objects()
    labelled = next(s for s in services if name_of(s) == "cart")
    labelled["metadata"]["labels"] = {"app": "cart", label[0]: label[1]}
    assert "cart" not in {p.name for p in service_ports(services)}
    tables = render_proxy_rules(NODES[1], NODES, services, slices, POD_CIDR)
    assert not any("shop/cart" in line for line in tables["nat"] + tables["filter"])
    labelled["metadata"]["labels"] = {"app": "cart"}
    tables = render_proxy_rules(NODES[1], NODES, services, slices, POD_CIDR)
    assert any("shop/cart:http cluster IP" in line for line in tables["nat"])


def test_endpoints_are_filed_by_port_key_and_ordered_by_address():
    _, slices = lab_objects()
    found = endpoints_by_port(slices)
    web = found[PortKey("default", "web", "http", "tcp")]
    assert [e.address for e in web] == ["10.244.1.5:8080", "10.244.1.6:8080", "10.244.2.5:8080"]
    assert web[0] == PortEndpoint("10.244.1.5", 8080, W1, True, True, False)
    assert PortKey("kube-system", "kube-dns", "dns", "udp") in found


def test_choose_endpoints_falls_back_to_terminating_and_keeps_local_ones():
    (port,) = service_ports(
        [
            service(
                "lab",
                "api",
                "10.96.0.50",
                [{"port": 80, "nodePort": 30050}],
                "NodePort",
                externalTrafficPolicy="Local",
            )
        ]
    )
    ready_w2 = PortEndpoint("10.244.2.1", 80, W2, True, True, False)
    leaving_w1 = PortEndpoint("10.244.1.1", 80, W1, False, True, True)
    choice = choose_endpoints(port, [leaving_w1, ready_w2], W1)
    assert choice == EndpointChoice([ready_w2], [leaving_w1], [ready_w2, leaving_w1], True)
    chains = port_chains(port, choice)
    assert chains.has_internal and chains.has_external
    assert chains.external_policy_chain == chains.svl and chains.internal_chain == chains.svc
    assert chains.lb_chain == chains.ext and chains.internal_refusal is None
    nothing = port_chains(port, choose_endpoints(port, [], W1))
    assert (
        nothing.internal_refusal
        == nothing.external_refusal
        == Refusal("lab/api has no endpoints", "REJECT --reject-with icmp-port-unreachable")
    )


# --------------------------------------------------------------------------- round trip


def expected_ports(node_name: str) -> dict[str, dict]:
    """What each proxied service port must look like on ``node_name`` after a parse."""
    return {
        "default/kubernetes:https": {
            "ip": "10.96.0.1",
            "port": 443,
            "proto": "TCP",
            "eps": ["172.18.0.2:6443"],
        },
        "kube-system/kube-dns:dns": {
            "ip": "10.96.0.10",
            "port": 53,
            "proto": "UDP",
            "eps": ["10.244.1.2:53", "10.244.2.2:53"],
        },
        "kube-system/kube-dns:dns-tcp": {
            "ip": "10.96.0.10",
            "port": 53,
            "proto": "TCP",
            "eps": ["10.244.1.2:53", "10.244.2.2:53"],
        },
        "kube-system/kube-dns:metrics": {
            "ip": "10.96.0.10",
            "port": 9153,
            "proto": "TCP",
            "eps": ["10.244.1.2:9153", "10.244.2.2:9153"],
        },
        "default/web:http": {
            "ip": "10.96.14.7",
            "port": 80,
            "proto": "TCP",
            "node_port": 30080,
            "policy": "Cluster",
            "eps": ["10.244.1.5:8080", "10.244.1.6:8080", "10.244.2.5:8080"],
        },
        "shop/api": {
            "ip": "10.96.77.3",
            "port": 8080,
            "proto": "TCP",
            "node_port": 31000,
            "lb": ["172.18.255.200"],
            "policy": "Local",
            "eps": ["10.244.1.8:8080", "10.244.2.8:8080"],
            "local": {W1: ["10.244.1.8:8080"], W2: ["10.244.2.8:8080"]}.get(node_name, []),
        },
        "shop/cart:http": {
            "ip": "10.96.33.9",
            "port": 80,
            "proto": "TCP",
            "eps": [f"10.244.2.{i}:80" for i in range(20, 25)],
        },
        "shop/empty:http": {
            "ip": "10.96.40.40",
            "port": 80,
            "proto": "TCP",
            "node_port": 30500,
            "eps": [],
            "rejected": True,
        },
    }


def assert_round_trip(entries, node_name: str) -> None:
    found = {sp.display_name: sp for sp in entries}
    expected = expected_ports(node_name)
    assert sorted(found) == sorted(expected)
    for name, want in expected.items():
        sp = found[name]
        assert (sp.cluster_ip, sp.port, sp.protocol) == (want["ip"], want["port"], want["proto"]), (
            name
        )
        assert sp.node_port == want.get("node_port"), name
        assert sp.load_balancer_ips == want.get("lb", []), name
        assert [f"{ep.ip}:{ep.port}" for ep in sp.endpoints] == want["eps"], name
        for ep in sp.endpoints:
            assert ep.probability == pytest.approx(1 / len(want["eps"]), abs=1e-6), name
        assert sp.no_endpoints == want.get("rejected", False), name
        if "policy" in want and not sp.no_endpoints:
            assert sp.external_traffic_policy == want["policy"], name
        if "local" in want:
            assert [f"{ep.ip}:{ep.port}" for ep in sp.local_endpoints] == want["local"], name
            assert all(ep.probability == pytest.approx(1.0) for ep in sp.local_endpoints)
        if sp.endpoints:
            assert sp.masquerade.unless_source == POD_CIDR and sp.masquerade.hairpin, name
        assert sp.masquerade.mark == "0x4000" and sp.masquerade.snat, name


@pytest.mark.parametrize("node_name", [CP, W1, W2])
def test_round_trip_recovers_every_service_port_and_endpoint(node_name):
    assert_round_trip(parse_iptables_save(restore_text(render(node_name))), node_name)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 12])
def test_round_trip_spreads_evenly_for_any_count(count):
    svc = service("lab", "many", "10.96.9.9", [{"name": "http", "port": 80}])
    eps = endpoint_slice(
        "lab",
        "many",
        [{"name": "http", "port": 8080}],
        [(f"10.244.{i % 3}.{10 + i}", W1, True) for i in range(count)],
    )
    [sp] = parse_iptables_save(restore_text(render(W1, [svc], [eps])))
    assert len(sp.endpoints) == count
    assert all(ep.probability == pytest.approx(1 / count, abs=1e-6) for ep in sp.endpoints)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s[0]["spec"]["ports"][0].update(port=70000), "port"),
        (lambda s: s[0]["spec"]["ports"][0].update(protocol="ICMP"), "protocol"),
        (lambda s: s[0]["spec"].update(clusterIP="10.96.999.1"), "not an IP address"),
        (lambda s: s[0]["metadata"].pop("name"), "no name"),
        (lambda s: s.append({"kind": "Pod", "metadata": {"name": "p"}}), "Pod"),
        (lambda s: s[0]["spec"].update(loadBalancerSourceRanges=["nope"]), "CIDR"),
    ],
)
def test_bad_services_raise_lab_error(change, message):
    services, slices = lab_objects()
    change(services)
    with pytest.raises(LabError) as err:
        render(W1, services, slices)
    assert message in str(err.value)
    assert err.value.fix


def test_bad_cluster_cidr_and_unknown_node_raise_lab_error():
    with pytest.raises(LabError, match="cluster CIDR"):
        render(W1, cidr="10.244.0.0/33")
    services, slices = lab_objects()
    with pytest.raises(LabError, match="not among the cluster's nodes"):
        render_proxy_rules(node("stranger", "172.18.0.9"), NODES, services, slices, POD_CIDR)


# --------------------------------------------------------------------------- the real thing


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30, check=True)


@pytest.mark.sandbox
@pytest.mark.parametrize("node_name", [CP, W1])
def test_rules_load_into_real_iptables_and_read_back(node_name):
    if os.geteuid() != 0 or not shutil.which("iptables-restore") or not shutil.which("ip"):
        pytest.skip(
            "needs root, iproute2 and iptables-restore to load rules into a throwaway netns"
        )
    tables = render(node_name)
    namespace = f"lk-t-{secrets.token_hex(4)}"
    _run(["ip", "netns", "add", namespace])
    try:
        _run(["ip", "netns", "exec", namespace, "iptables-restore"], stdin=restore_text(tables))
        saved = _run(["ip", "netns", "exec", namespace, "iptables-save"]).stdout
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)
    assert namespace not in _run(["ip", "netns", "list"]).stdout
    assert_round_trip(parse_iptables_save(saved), node_name)
    # What iptables-save prints back is exactly what was rendered, table by table.
    for table, lines in tables.items():
        block = saved.split(f"*{table}\n", 1)[1].split("COMMIT", 1)[0]
        assert block.splitlines() == lines
