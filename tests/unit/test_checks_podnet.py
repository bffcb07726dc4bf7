"""pod_netns: parsers of `ip` output (recorded from the sandbox in both CNI modes) and the judging
of eth0@ifN, the default route, the veth peer on the node and the node's route back."""

from __future__ import annotations

import pytest

from labkit.checks.podnet import (
    PodNetView,
    cni_identity,
    fingerprint,
    judge_netns,
    parse_addresses,
    parse_links,
    parse_routes,
    pod_netns,
    route_device,
)
from labkit.errors import LabError
from labkit.lab import ExecResult

FLANNEL_POD_LINKS = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group "
    "default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
    "2: eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT "
    "group default qlen 1000\\    link/ether 9e:24:e8:4f:ab:0f brd ff:ff:ff:ff:ff:ff link-netns "
    "lk-chkf-w1\n"
)
FLANNEL_POD_ADDRS = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever\n"
    "2: eth0    inet 10.244.1.3/24 scope global eth0\\       valid_lft forever preferred_lft "
    "forever\n"
    "2: eth0    inet6 fe80::9c24:e8ff:fe4f:ab0f/64 scope link \\       valid_lft forever "
    "preferred_lft forever\n"
)
FLANNEL_POD_ROUTES = (
    "default via 10.244.1.1 dev eth0 \n"
    "10.244.0.0/16 via 10.244.1.1 dev eth0 \n"
    "10.244.1.0/24 dev eth0 proto kernel scope link src 10.244.1.3 \n"
)
FLANNEL_NODE_LINKS = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group "
    "default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
    "2: eth0@if4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT "
    "group default qlen 1000\\    link/ether 52:3b:52:95:23:3a brd ff:ff:ff:ff:ff:ff link-netns "
    "lk-chkf-fabric\n"
    "3: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT group "
    "default qlen 1000\\    link/ether 36:15:ba:6a:4c:5b brd ff:ff:ff:ff:ff:ff\n"
    "4: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN mode "
    "DEFAULT group default qlen 1000\\    link/ether 0e:a9:a7:e7:a7:01 brd ff:ff:ff:ff:ff:ff\n"
    "5: veth8a8819e2@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master cni0 "
    "state UP mode DEFAULT group default qlen 1000\\    link/ether 46:69:dc:ec:8e:9f brd "
    "ff:ff:ff:ff:ff:ff link-netns x\n"
    "6: vethde710908@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master cni0 "
    "state UP mode DEFAULT group default qlen 1000\\    link/ether 36:9f:1c:5a:c5:e9 brd "
    "ff:ff:ff:ff:ff:ff link-netns y\n"
)
FLANNEL_ROUTE_GET = "10.244.1.3 dev cni0 src 10.244.1.1 uid 0 \n    cache \n"

CALICO_POD_LINKS = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group "
    "default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
    "2: eth0@if4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT "
    "group default qlen 1000\\    link/ether 4a:af:b4:20:65:85 brd ff:ff:ff:ff:ff:ff link-netns "
    "lk-chk-w1\n"
)
CALICO_POD_ADDRS = (
    "2: eth0    inet 192.168.20.2/32 scope global eth0\\       valid_lft forever preferred_lft "
    "forever\n"
)
CALICO_POD_ROUTES = "default via 169.254.1.1 dev eth0 \n169.254.1.1 dev eth0 scope link \n"
CALICO_NODE_LINKS = (
    "3: cali02105432505@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP "
    "mode DEFAULT group default qlen 1000\\    link/ether ee:ee:ee:ee:ee:ee brd ff:ff:ff:ff:ff:ff "
    "link-netns a\n"
    "4: calib4c721bae48@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP "
    "mode DEFAULT group default qlen 1000\\    link/ether ee:ee:ee:ee:ee:ee brd ff:ff:ff:ff:ff:ff "
    "link-netns b\n"
)
CALICO_ROUTE_GET = "192.168.20.2 dev calib4c721bae48 src 172.18.0.3 uid 0 \n    cache \n"


def flannel_view(**changes) -> PodNetView:
    base = {
        "pod_links": parse_links(FLANNEL_POD_LINKS),
        "pod_addrs": parse_addresses(FLANNEL_POD_ADDRS),
        "pod_routes": parse_routes(FLANNEL_POD_ROUTES),
        "node_links": parse_links(FLANNEL_NODE_LINKS),
        "node_route": FLANNEL_ROUTE_GET.splitlines()[0],
    }
    base.update(changes)
    return PodNetView(**base)


def test_parse_links():
    links = parse_links(FLANNEL_NODE_LINKS)
    assert [(link.index, link.name, link.peer_index, link.master) for link in links] == [
        (1, "lo", None, None),
        (2, "eth0", 4, None),
        (3, "cni0", None, None),
        (4, "flannel.1", None, None),
        (5, "veth8a8819e2", 2, "cni0"),
        (6, "vethde710908", 2, "cni0"),
    ]
    assert links[0].kind_hint == "loopback" and links[1].up and links[2].mtu == 1450


def test_parse_addresses_drops_link_local():
    assert parse_addresses(FLANNEL_POD_ADDRS) == {
        "lo": ["127.0.0.1/8", "::1/128"],
        "eth0": ["10.244.1.3/24"],
    }


def test_parse_routes_and_route_device():
    assert parse_routes(FLANNEL_POD_ROUTES)[0] == "default via 10.244.1.1 dev eth0"
    assert (
        route_device(FLANNEL_ROUTE_GET) == "cni0"
        and route_device(CALICO_ROUTE_GET) == "calib4c721bae48"
    )
    assert route_device("") is None


def test_flannel_pod_is_wired_through_the_bridge():
    steps = [s for s, _ in judge_netns(flannel_view(), "10.244.1.3", "w1")]
    assert all(s.ok for s in steps)
    assert [s.observed for s in steps] == [
        "eth0@if6, UP, addresses 10.244.1.3/24",
        "default via 10.244.1.1 dev eth0",
        "vethde710908@if2, attached to bridge cni0",
        "10.244.1.3 dev cni0 src 10.244.1.1",
    ]


def test_calico_pod_is_wired_by_a_host_route():
    view = PodNetView(
        parse_links(CALICO_POD_LINKS),
        parse_addresses(CALICO_POD_ADDRS),
        parse_routes(CALICO_POD_ROUTES),
        parse_links(CALICO_NODE_LINKS),
        CALICO_ROUTE_GET.splitlines()[0],
    )
    steps = [s for s, _ in judge_netns(view, "192.168.20.2", "w1")]
    assert all(s.ok for s in steps) and steps[2].observed == "calib4c721bae48@if2"


@pytest.mark.parametrize(
    "change, ip, failing, hint",
    [
        (
            {"pod_links": parse_links(FLANNEL_POD_LINKS.splitlines()[0])},
            "10.244.1.3",
            "interface eth0 in the pod",
            "no eth0",
        ),
        ({}, "10.244.1.99", "interface eth0 in the pod", "carry the pod IP"),
        (
            {"pod_routes": parse_routes("10.244.1.0/24 dev eth0\n")},
            "10.244.1.3",
            "default route in the pod",
            "default route",
        ),
        (
            {"node_links": parse_links(FLANNEL_NODE_LINKS.replace("6: vethde", "16: vethde"))},
            "10.244.1.3",
            "veth peer with index 6 on w1",
            "no interface with index 6",
        ),
        (
            {
                "node_links": parse_links(
                    FLANNEL_NODE_LINKS.replace("vethde710908@if2", "vethde710908@if3")
                )
            },
            "10.244.1.3",
            "veth peer with index 6 on w1",
            "point back",
        ),
        (
            {"node_route": "10.244.1.3 via 172.18.0.4 dev eth0 src 172.18.0.3"},
            "10.244.1.3",
            "w1's route to 10.244.1.3",
            "the node must send",
        ),
    ],
)
def test_broken_wiring_is_named(change, ip, failing, hint):
    judged = judge_netns(flannel_view(**change), ip, "w1")
    first = next((s, h) for s, h in judged if s.ok is False)
    assert first[0].action == failing and hint.lower() in first[1].lower()


def recorded_lab(fakes, phase="Running"):
    p = fakes.pod(
        "client",
        "10.244.1.3" if phase == "Running" else None,
        node_name="w1",
        phase=phase,
        ready=phase == "Running",
    )
    lab = fakes.FakeLab([fakes.namespace("default"), p])
    outputs = {
        ("default/client", ("ip", "-o", "link", "show")): FLANNEL_POD_LINKS,
        ("default/client", ("ip", "-o", "addr", "show")): FLANNEL_POD_ADDRS,
        ("default/client", ("ip", "route", "show")): FLANNEL_POD_ROUTES,
        ("w1", ("ip", "-o", "link", "show")): FLANNEL_NODE_LINKS,
        ("w1", ("ip", "route", "get", "10.244.1.3")): FLANNEL_ROUTE_GET,
    }
    lab.exec_outputs = {k: ExecResult(k[1], 0, v) for k, v in outputs.items()}
    return lab


def test_pod_netns_end_to_end_on_recorded_output(fakes):
    r = pod_netns(recorded_lab(fakes), "default/client")
    assert r.verdict == "pass" and r.points == 5
    assert "veth peer with index 6 on w1: vethde710908@if2, attached to bridge cni0" in str(r)


def test_pending_pod_has_no_namespace(fakes):
    r = pod_netns(recorded_lab(fakes, "Pending"), "default/client")
    assert (
        r.verdict == "fail"
        and "no network namespace was wired" in r.hint
        and "nodeSelector" in r.hint
    )


def test_missing_pod(fakes):
    assert "does not exist" in pod_netns(recorded_lab(fakes), "default/ghost").hint


def test_a_failing_command_is_a_lab_error(fakes):
    lab = recorded_lab(fakes)
    lab.exec_outputs.pop(("w1", ("ip", "-o", "link", "show")))
    with pytest.raises(LabError, match="ip -o link show"):
        pod_netns(lab, "default/client")


# --------------------------------------------------------------------------- cni_identity


def agent(fakes, cni: str, i: int) -> dict:
    specs = {
        "flannel": ("kube-flannel", "kube-flannel-ds", {"app": "flannel"}),
        "calico": ("calico-system", "calico-node", {"k8s-app": "calico-node"}),
    }
    ns, ds, labels = specs[cni]
    p = fakes.pod(f"{ds}-x{i}k4q", f"172.18.0.{i + 2}", ns=ns, labels=labels, node_name=f"n{i}")
    p["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": ds}]
    return p


def identity_lab(fakes, cni: str, agents=None, host_network=False, pod_links=None):
    target = fakes.pod(
        "client", "10.244.1.3" if cni == "flannel" else "192.168.20.2", node_name="w1"
    )
    target["spec"]["hostNetwork"] = host_network
    w1 = {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": "w1"},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.3"}]},
    }
    lab = fakes.FakeLab(
        [
            fakes.namespace("default"),
            w1,
            target,
            *(agents if agents is not None else [agent(fakes, cni, i) for i in range(3)]),
        ],
        cni=cni,
        enforce=cni == "calico",
    )
    outputs = {
        "flannel": (FLANNEL_POD_LINKS, FLANNEL_POD_ADDRS, FLANNEL_POD_ROUTES),
        "calico": (CALICO_POD_LINKS, CALICO_POD_ADDRS, CALICO_POD_ROUTES),
    }[cni]
    links, addrs, routes = outputs
    for cmd, text in (
        (("ip", "-o", "link", "show"), pod_links or links),
        (("ip", "-o", "addr", "show"), addrs),
        (("ip", "route", "show"), routes),
    ):
        lab.exec_outputs[("default/client", cmd)] = ExecResult(cmd, 0, text)
    return lab


def test_flannel_fingerprint(fakes):
    r = cni_identity(identity_lab(fakes, "flannel"), "default/client")
    assert r.verdict == "pass", r
    text = str(r)
    assert "flannel: kube-flannel/kube-flannel-ds (3 of 3 Running)" in text
    assert (
        "eth0's address: 10.244.1.3/24 (node podCIDR 10.244.1.0/24)" in text
        and "eth0's MTU: 1450" in text
    )


def test_calico_fingerprint(fakes):
    r = cni_identity(identity_lab(fakes, "calico"), "default/client")
    assert r.verdict == "pass" and "default via 169.254.1.1 dev eth0" in str(r)


def test_fingerprint_that_contradicts_the_cni(fakes):
    lab = identity_lab(
        fakes, "flannel", pod_links=FLANNEL_POD_LINKS.replace("mtu 1450", "mtu 1500")
    )
    r = cni_identity(lab, "default/client")
    assert r.verdict == "fail" and "VXLAN" in r.hint


def test_host_network_pod_has_no_fingerprint(fakes):
    r = cni_identity(identity_lab(fakes, "flannel", host_network=True), "default/client")
    assert r.verdict == "fail" and "uses hostNetwork" in r.hint


def test_no_cni_and_two_cnis(fakes):
    assert (
        "No CNI runs"
        in cni_identity(identity_lab(fakes, "flannel", agents=[]), "default/client").hint
    )
    both = [agent(fakes, "flannel", 0), agent(fakes, "calico", 1)]
    assert (
        "Two CNIs"
        in cni_identity(identity_lab(fakes, "flannel", agents=both), "default/client").hint
    )


def test_missing_pod_for_identity(fakes):
    assert cni_identity(identity_lab(fakes, "flannel"), "default/ghost").verdict == "fail"


@pytest.mark.parametrize(
    "cni, addrs, routes, ok",
    [
        ("flannel", ["10.244.1.3/24"], ["default via 10.244.1.1 dev eth0"], [True, True]),
        ("flannel", ["10.244.2.3/24"], ["default via 10.244.2.1 dev eth0"], [False, False]),
        ("calico", ["192.168.20.2/32"], ["default via 169.254.1.1 dev eth0"], [True, True]),
        ("calico", ["192.168.20.2/26"], ["default via 192.168.20.1 dev eth0"], [False, False]),
        (
            "cilium",
            ["10.244.1.5/32"],
            ["default via 10.244.1.1 dev eth0 mtu 1450", "10.244.1.1 dev eth0 scope link"],
            [True, True],
        ),
        ("cilium", ["10.244.1.5/32"], ["default via 10.244.1.1 dev eth0 mtu 1450"], [True, False]),
        (
            "cilium",
            ["10.0.1.5/32"],
            ["default via 10.0.1.1 dev eth0 mtu 1450", "10.0.1.1 dev eth0 scope link"],
            [True, False],
        ),
    ],
)
def test_fingerprint_rules(cni, addrs, routes, ok):
    """Each CNI's pod wiring: Flannel's bridge plugin (a /24, default via cni0), Calico's
    cni-plugin (a /32 via 169.254.1.1), Cilium's plugins/cilium-cni (a /32 from the node's
    podCIDR, default via cilium_host with a scope-link route to it)."""
    judged = fingerprint(cni, None, addrs, routes, "10.244.1.0/24")
    assert [s.ok for s, _ in judged][:2] == ok


def test_ciliums_agents_are_told_from_its_operator_and_envoy():
    """Cilium 1.20's chart runs DaemonSets ``cilium`` (k8s-app: cilium) and ``cilium-envoy``
    (k8s-app: cilium-envoy) and Deployment ``cilium-operator``: only the agent names the CNI."""
    from labkit.checks.podnet import detect_cni

    def named(name, labels):
        return {"metadata": {"name": name, "namespace": "kube-system", "labels": labels}}

    pods = [
        named("cilium-abcde", {"k8s-app": "cilium"}),
        named("cilium-envoy-fghij", {"k8s-app": "cilium-envoy"}),
        named("cilium-operator-5d8f9-klmno", {"io.cilium/app": "operator"}),
        named("cilium-pqrst", {}),
    ]
    found = detect_cni(pods)
    assert list(found) == ["cilium"]
    assert [p["metadata"]["name"] for p in found["cilium"]] == ["cilium-abcde", "cilium-pqrst"]
