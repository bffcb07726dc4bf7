"""The packet path: reading conntrack, iptables-save counters, routes and links (pure), drawing
the path from those facts (pure), and packet_path on a fake lab whose nodes answer as real ones
do before and after the probe."""

from __future__ import annotations

import shutil

import pytest
from test_pictures_diagram import same_content

from labkit.errors import LabError
from labkit.lab import OUTSIDE, ExecResult, Probe
from labkit.widgets.packet_path import packet_path
from labkit.widgets.path_draw import Dnat, NodeHop, PathFacts, Place, path_diagram
from labkit.widgets.path_facts import (
    DropRule,
    Flow,
    Link,
    Route,
    counted_drops,
    drop_rules,
    hop_kind,
    new_flows,
    parse_conntrack,
    parse_links,
    parse_route_get,
    peer_index,
    routed_addresses,
    workload_iface,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot not installed")

CT_DONE = (
    "tcp      6 118 TIME_WAIT src=10.244.1.2 dst=10.96.10.10 sport=56464 dport=80 "
    "src=10.244.2.3 dst=10.244.1.2 sport=8080 dport=56464 [ASSURED] mark=0 use=1\n"
)
CT_SYN = (
    "tcp      6 112 SYN_SENT src=10.244.1.2 dst=10.96.10.10 sport=34462 dport=80 [UNREPLIED] "
    "src=10.244.1.3 dst=10.244.1.2 sport=8080 dport=34462 mark=0 use=1\n"
)
SAVE = """*filter
:INPUT ACCEPT [0:0]
[0:0] -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
[{n}:60] -A cali-tw-cali253174d0026 -m comment --comment "Drop if no policies passed packet" -j DROP
[3:180] -A cali-fw-x -m comment --comment cali:abc -j REJECT --reject-with icmp-port-unreachable
[9:540] -A KUBE-SERVICES -j ACCEPT
COMMIT
"""


# --------------------------------------------------------------------------- reading a node


def test_conntrack_lines_give_both_directions() -> None:
    """libnetfilter_conntrack's default output (src/conntrack/snprintf_default.c): the
    original tuple's ``src= dst= sport= dport=``, then the reply tuple's; after kube-proxy's
    DNAT the reply comes from the endpoint, so the flow is translated."""
    done, syn = parse_conntrack(CT_DONE + CT_SYN + "conntrack v1.4.7: 2 flow entries\n")
    assert done == Flow("10.244.1.2", "10.96.10.10", 56464, 80, "10.244.2.3", 8080, "TIME_WAIT")
    assert done.translated and syn.translated and syn.state == "SYN_SENT"
    plain = parse_conntrack(
        "tcp 6 5 CLOSE src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 "
        "sport=2 dport=1\n"
    )[0]
    assert not plain.translated
    assert (
        parse_conntrack(
            "udp 17 29 src=1.1.1.1 dst=2.2.2.2 sport=x dport=2 src=2.2.2.2 "
            "dst=1.1.1.1 sport=2 dport=1\n"
        )
        == []
    )
    assert parse_conntrack("tcp 6 5 src=1.1.1.1 dst=2.2.2.2\n") == []


def test_new_flows_are_those_the_probe_added() -> None:
    """A flow is keyed by its original tuple (conntrack's hash key, nf_conntrack_tuple)."""
    before = parse_conntrack(CT_DONE)
    after = parse_conntrack(CT_DONE + CT_SYN)
    assert [f.sport for f in new_flows(before, after)] == [34462]
    assert new_flows(after, after) == []


def test_drop_rules_and_the_ones_whose_counter_rose() -> None:
    """iptables-save -c (iptables/iptables-save.c) prefixes each rule with
    ``[packets:bytes]``; a DROP or REJECT rule whose packet count rose dropped the probe."""
    before, after = drop_rules(SAVE.format(n=0)), drop_rules(SAVE.format(n=1))
    assert [(r.chain, r.packets) for r in before] == [
        ("KUBE-FORWARD", 0),
        ("cali-tw-cali253174d0026", 0),
        ("cali-fw-x", 3),
    ]
    assert before[1].comment == "Drop if no policies passed packet"
    assert before[2].comment == "cali:abc" and before[0].comment == ""
    rose = counted_drops(before, after)
    assert rose == [DropRule("filter", "cali-tw-cali253174d0026", rose[0].rule, 1)]
    assert counted_drops(after, after) == []
    assert counted_drops([], drop_rules(SAVE.format(n=2)))[0].packets == 2


def test_routes_links_and_hops() -> None:
    """iproute2's `ip route get` (dev, via) and `ip -o link` (``name@ifN``, ``master``):
    Flannel's VXLAN device is flannel.1 (flannel pkg/backend/vxlan/vxlan.go, ``flannel.%v``),
    Calico's vxlan.calico; a next hop that is a node address is a routed hop (Calico's
    same-subnet routes, felix route_mgr.go); anything else is delivered on the node."""
    assert parse_route_get("10.244.2.3 via 10.244.2.0 dev flannel.1 src 10.244.1.0 uid 0\n") == (
        Route("flannel.1", "10.244.2.0")
    )
    assert parse_route_get("192.168.30.4 dev cali18de9dd96b1 src 172.18.0.4 uid 0") == Route(
        "cali18de9dd96b1", None
    )
    assert parse_route_get("RTNETLINK answers: Network is unreachable") is None
    links = parse_links(
        "1: lo: <LOOPBACK,UP> mtu 65536\n"
        "5: veth8a8819e2@if2: <BROADCAST,UP> mtu 1450 qdisc noqueue master cni0 state UP\n"
    )
    assert links == [Link(1, "lo", None), Link(5, "veth8a8819e2", "cni0")]
    assert peer_index("2: eth0@if7: <BROADCAST,MULTICAST,UP> mtu 1450") == 7
    assert peer_index("2: eth0: <BROADCAST> mtu 1500") is None
    nodes = ["172.18.0.3", "172.18.0.4"]
    assert hop_kind(Route("flannel.1", "10.244.2.0"), nodes) == "tunnel"
    assert hop_kind(Route("vxlan.calico", None), nodes) == "tunnel"
    assert hop_kind(Route("eth0", "172.18.0.4"), nodes) == "routed"
    assert hop_kind(Route("eth0", "172.18.0.1"), nodes) == "local"
    assert hop_kind(Route("cni0", None), nodes) == "local"


# --------------------------------------------------------------------------- drawing a path

SRC = Place("pod", "default/client", "10.244.1.2", "w1")
DST = Place("pod", "default/web-b", "10.244.2.3", "w2")
OK = Probe("default/client", "10.96.10.10", 80, "TCP", "connected", 0.0012, "web-b", "10.244.1.2")
LOST = Probe("default/client", "10.96.10.10", 80, "TCP", "timeout")
DNAT = Dnat(
    "default/web", "10.96.10.10:80", "10.244.2.3:8080", "web-b", "w1", "seen in conntrack on w1"
)
HOPS = (
    NodeHop("w1", "172.18.0.3", Route("flannel.1", "10.244.2.0")),
    NodeHop("w2", "172.18.0.4", Route("cni0", None)),
)
RULE = DropRule("filter", "cali-tw-calix", '-m comment --comment "no policy passed" -j DROP', 1)


def facts(**changes: object) -> PathFacts:
    base: dict[str, object] = {
        "title": "t",
        "source": SRC,
        "target": "to 10.96.10.10:80",
        "probe": OK,
        "veth": Link(5, "veth1", "cni0"),
        "dnat": DNAT,
        "hops": HOPS,
        "destination": DST,
        "dest_port": 8080,
        "node_ips": ("172.18.0.3", "172.18.0.4"),
    }
    base.update(changes)
    return PathFacts(**base)  # type: ignore[arg-type]


def firsts(f: PathFacts) -> list[str]:
    d = path_diagram(f)
    order = {b.id: b for b in d.all_boxes()}
    chain = [d.arrows[0].src] + [a.dst for a in d.arrows]
    return [order[i].lines[0] for i in chain]


def test_flannel_path_crosses_the_bridge_dnat_and_vxlan() -> None:
    """Flannel's path (flannel Documentation/backends.md, vxlan): pod eth0 -> veth on cni0
    -> kube-proxy's DNAT -> flannel.1 to the peer's subnet -> the peer node's cni0 -> pod."""
    assert firsts(facts()) == [
        "pod default/client",
        "veth veth1",
        "bridge cni0",
        "DNAT svc default/web",
        "route on w1",
        "route on w2",
        "pod default/web-b",
        "outcome connected",
    ]
    text = path_diagram(facts()).boxes
    assert text[0].lines == (
        "outcome connected",
        "in 1.2 ms",
        "served by web-b",
        "client seen as 10.244.1.2",
    )
    d = path_diagram(facts())
    assert [g.lines for g in d.groups] == [("node w1", "172.18.0.3"), ("node w2", "172.18.0.4")]
    route = next(b for b in d.all_boxes() if b.lines[0] == "route on w1")
    assert route.lines[1:] == (
        "dev flannel.1 via 10.244.2.0",
        "VXLAN/IPIP overlay (flannel.1) to 10.244.2.0",
    )
    assert ("chosen endpoint 10.244.2.3:8080 (web-b)") in next(
        b for b in d.all_boxes() if b.role == "nat"
    ).lines


def test_drop_on_the_destination_ends_the_path_there() -> None:
    """Calico enforces ingress policy on the destination's node (felix/rules/endpoints.go,
    the to-workload chain ``cali-tw-``): the drop box sits in that node's frame, names the
    chain, its comment and the model's reason, and the packet goes no further."""
    f = facts(probe=LOST, drops=(("w2", RULE),), verdict="isolated by default/deny")
    assert firsts(f) == [
        "pod default/client",
        "veth veth1",
        "bridge cni0",
        "DNAT svc default/web",
        "route on w1",
        "DROP on w2",
        "outcome timeout",
    ]
    drop = next(b for b in path_diagram(f).all_boxes() if b.role == "drop")
    assert drop.lines == (
        "DROP on w2",
        "chain cali-tw-calix (filter)",
        "no policy passed",
        "model: isolated by default/deny",
    )


def test_egress_drop_on_the_source_comes_before_its_route() -> None:
    """An egress policy drops on the source's node (Calico's from-workload chain, ``cali-fw-``)
    after the DNAT and before the packet is routed."""
    f = facts(probe=LOST, drops=(("w1", RULE),))
    assert firsts(f)[-3:] == ["DNAT svc default/web", "DROP on w1", "outcome timeout"]


def test_a_drop_counted_off_the_path_is_still_shown() -> None:
    """A counter that rose on a node the routes did not name (the source could not be read)
    is drawn, not hidden."""
    f = facts(probe=LOST, hops=(), drops=(("w3", RULE),), dnat=None, veth=None)
    assert firsts(f) == ["pod default/client", "DROP on w3", "outcome timeout"]


def test_unknowns_are_said_not_guessed() -> None:
    """Where the lab could not say (no ``ip`` in the pod, no conntrack flow, no route), the
    box says why; a timeout with no counter names the model's reason when there is one."""
    f = facts(
        probe=LOST,
        veth="the pod cannot run `ip -o link show eth0`",
        dnat="conntrack showed no new flow and nothing answered",
        hops=(NodeHop("w1", "172.18.0.3", "`ip route get` failed"),),
        destination=None,
        verdict="isolated by default/deny",
    )
    lines = [b.lines for b in path_diagram(f).all_boxes()]
    assert ("veth on w1", "unknown: the pod cannot run `ip -o link show eth0`") in lines
    assert ("DNAT", "endpoint unknown: conntrack showed no new flow and nothing answered") in lines
    assert ("route on w1", "unknown: `ip route get` failed") in lines
    assert (
        "outcome timeout",
        "no DROP counter rose",
        "model: isolated by default/deny",
    ) in lines


def test_outside_and_node_sources_have_no_veth() -> None:
    """A probe from outside or from a node starts at that place (the seam's OUTSIDE and node
    sources); calico's same-node delivery is a route out of the pod's cali veth."""
    outside = Place("outside", "world", "outside the cluster", None)
    f = facts(source=outside, veth=None, hops=(HOPS[1],))
    assert firsts(f)[:2] == ["outside world", "DNAT svc default/web"]
    assert path_diagram(f).boxes[0].role == "outside"
    node = Place("node", "w2", "172.18.0.4", "w2")
    f = facts(
        source=node, veth=None, dnat=None, hops=(NodeHop("w2", "172.18.0.4", Route("cali1", None)),)
    )
    route = next(b for b in path_diagram(f).all_boxes() if b.lines[0] == "route on w2")
    assert route.lines[1:] == ("dev cali1", "delivered on w2")


# --------------------------------------------------------------------------- on a fake lab


class Nodes:
    """Node answers before and after the probe, as real nodes give them."""

    def __init__(self, lab, after: dict[tuple[str, str], str], before=None) -> None:
        self.lab, self.after, self.before = lab, after, before or {}
        self.probed = False
        self.gateway = "10.244.1.1"
        probe = lab.probe

        def probing(*args, **kwargs):
            self.probed = True
            return probe(*args, **kwargs)

        lab.probe = probing
        lab.node_exec = self.node_exec
        lab.exec = self.exec

    def node_exec(self, node, command, timeout=10.0):
        table = self.after if self.probed else self.before
        key = (node, " ".join(command))
        found = table.get(key, self.after.get(key) if key[1].startswith("ip ") else None)
        if found is None:
            return ExecResult(tuple(command), 0, "")
        return ExecResult(tuple(command), 0, found)

    def exec(self, pod, command, namespace="default", timeout=10.0):
        if command[:3] == ["ip", "route", "get"]:
            return ExecResult(tuple(command), 0, f"{command[3]} via {self.gateway} dev eth0\n")
        return ExecResult(tuple(command), 0, "2: eth0@if5: <BROADCAST,UP> mtu 1450\n")


def test_packet_path_on_a_fake_flannel_lab(fakes) -> None:
    """The whole walk through the seam: conntrack's new flow on the source node names the
    endpoint, each node's `ip route get` the hop, the pod's eth0 peer the veth."""
    lab = fakes.web_cluster(cni="flannel", enforce=False)
    ct = "conntrack -L -p tcp --orig-dst 10.96.10.10"
    Nodes(
        lab,
        {
            ("lab-worker", ct): CT_DONE.replace("10.244.2.3", "10.244.2.4"),
            ("lab-worker", "ip -o link"): "5: veth1@if2: <UP> mtu 1450 master cni0 state UP\n",
            ("lab-worker", "ip route get 10.244.2.4"): "10.244.2.4 via 10.244.2.0 dev flannel.1",
            ("lab-worker2", "ip route get 10.244.2.4"): "10.244.2.4 dev cni0 src 10.244.2.1",
        },
    )
    pic = packet_path(lab, "default/client", "web", 80)
    assert pic.text.splitlines()[0] == (
        "packet path: default/client to web:80/TCP on lab fake (" + lab.backend + ", flannel)"
    )
    assert "veth veth1 | host end of eth0 on lab-worker" in pic.text
    assert "chosen endpoint 10.244.2.4:8080 (web-5d4f8c7b9d-klmno)" in pic.text
    assert "seen in conntrack on lab-worker" in pic.text
    assert "VXLAN/IPIP overlay (flannel.1) to 10.244.2.0" in pic.text
    assert "pod default/web-5d4f8c7b9d-klmno | 10.244.2.4:8080" in pic.text


def test_without_conntrack_the_answering_pod_names_the_endpoint(fakes) -> None:
    """When no node's conntrack shows the flow (Kind nodes without the tool, or it expired),
    the endpoint is the pod that answered (agnhost netexec's /hostname), and the picture
    says that is how it knows."""
    lab = fakes.web_cluster(cni="flannel", enforce=False)
    Nodes(lab, {})
    pic = packet_path(lab, "default/client", "default/web", 80)
    assert "conntrack showed no new flow; the pod that answered the probe" in pic.text
    served = next(line for line in pic.text.splitlines() if "served by" in line)
    assert served.split("served by ")[1].split(" |")[0] in pic.text.split("chosen endpoint")[1]


def test_policy_drop_counted_on_the_fake_lab(fakes) -> None:
    """A DROP counter that rose between the snapshots, with the model's verdict naming the
    policy (k8s NetworkPolicy semantics: a selected pod is isolated for ingress)."""
    deny = fakes.netpol_doc(
        "deny-web", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
    )
    lab = fakes.web_cluster(cni="calico", extra=[deny])
    before = {("lab-worker2", "iptables-save -c"): SAVE.format(n=0)}
    Nodes(lab, {("lab-worker2", "iptables-save -c"): SAVE.format(n=1)}, before)
    pic = packet_path(lab, "default/client", "10.244.2.3", 8080)
    assert "DROP on lab-worker2 | chain cali-tw-cali253174d0026 (filter)" in pic.text
    assert "default/deny-web" in pic.text
    assert "outcome timeout" in pic.text


def test_calico_gateway_proxy_arp_and_host_route(fakes) -> None:
    """Calico's pod networking (calico cni-plugin, pkg/dataplane/linux/dataplane_linux.go
    DoNetworking): the pod's default route goes via 169.254.1.1, the cali veth has proxy_arp
    set so it answers for that address, and Felix adds a /32 route per local pod; the picture
    reads all three off the lab."""
    lab = fakes.web_cluster(cni="calico", enforce=False)
    nodes = Nodes(
        lab,
        {
            ("lab-worker", "ip -o link"): "5: cali0123456789a@if2: <UP> mtu 1450 state UP\n",
            ("lab-worker", "cat /proc/sys/net/ipv4/conf/cali0123456789a/proxy_arp"): "1\n",
            ("lab-worker", "ip route get 10.244.1.3"): "10.244.1.3 dev cali1 src 172.18.0.3",
            ("lab-worker", "ip route show exact 10.244.1.3/32"): "10.244.1.3 dev cali1 scope link",
        },
    )
    nodes.gateway = "169.254.1.1"
    text = packet_path(lab, "default/client", "10.244.1.3", 8080).text
    assert (
        "veth cali0123456789a | host end of eth0 on lab-worker | pod gateway 169.254.1.1"
        " | proxy ARP on: the veth answers for the gateway"
    ) in text
    assert (
        "route on lab-worker | dev cali1 | delivered on lab-worker | a /32 route for the pod"
        in (text)
    )


def test_a_strange_interface_name_is_never_read_into_a_path() -> None:
    """Only a Linux interface name (IFNAMSIZ: at most 15 of letters, digits, ``_.-``) becomes
    part of a /proc path; anything else is not read."""
    from labkit.widgets.packet_path import INTERFACE, _proxy_arp

    class Refuse:
        def node_exec(self, *args, **kwargs):
            raise AssertionError("read a path built from a bad name")

    assert INTERFACE.fullmatch("cali0123456789a") and not INTERFACE.fullmatch("../../etc/x")
    assert _proxy_arp(Refuse(), "n", Link(5, "../../etc/passwd", None)) is False
    assert _proxy_arp(Refuse(), "n", "unknown") is False


def test_calico_chain_names_the_veth_and_routes_name_the_pod() -> None:
    """Felix names a workload's ingress chain ``cali-tw-`` + its host veth
    (felix/rules/rule_defs.go WorkloadToEndpointPfx) and routes each local pod's /32 out of
    that veth (`ip -4 route show dev IFACE` lists it without the length)."""
    assert workload_iface("cali-tw-cali253174d0026") == "cali253174d0026"
    assert workload_iface("cali-tw-") is None
    assert workload_iface("cali-fw-cali1") is None and workload_iface("KUBE-FORWARD") is None
    text = "192.168.30.5 scope link \n192.168.0.0/16 via 1.2.3.4\n\nblackhole 10.0.0.0/26\n"
    assert routed_addresses(text) == ["192.168.30.5"]


def test_a_drop_before_conntrack_confirms_names_the_endpoint_by_its_veth(fakes) -> None:
    """A packet dropped before it leaves the node never confirms its conntrack entry
    (net/netfilter/nf_conntrack_core.c, __nf_conntrack_confirm runs at POSTROUTING/INPUT), so
    `conntrack -L` cannot say; the to-workload chain whose DROP counted it names the veth,
    and the veth's route the endpoint."""
    deny = fakes.netpol_doc(
        "deny-web", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
    )
    lab = fakes.web_cluster(cni="calico", extra=[deny])
    before = {("lab-worker2", "iptables-save -c"): SAVE.format(n=0)}
    Nodes(
        lab,
        {
            ("lab-worker2", "iptables-save -c"): SAVE.format(n=1),
            ("lab-worker2", "ip -4 route show dev cali253174d0026"): "10.244.2.4 scope link\n",
        },
        before,
    )
    text = packet_path(lab, "default/client", "web", 80).text
    assert "chosen endpoint 10.244.2.4:8080 (web-5d4f8c7b9d-klmno)" in text
    assert (
        "conntrack kept no flow (dropped on lab-worker2); the dropping chain "
        "cali-tw-cali253174d0026 polices the veth cali253174d0026 routed to 10.244.2.4"
    ) in text
    assert "DROP on lab-worker2" in text and "default/deny-web" in text


@pytest.mark.parametrize(
    ("src", "target", "port", "protocol", "problem"),
    [
        ("client", "web", 80, "TCP", "is not a pod, a node or the outside world"),
        (7, "web", 80, "TCP", "is not a pod, a node or the outside world"),
        ("node:nope", "web", 80, "TCP", "names no node of this lab"),
        ("default/ghost", "web", 80, "TCP", "is not a running pod with an address"),
        ("Bad/x", "web", 80, "TCP", "is not a running pod with an address"),
        ("default/client", "nothing", 80, "TCP", "is not an IP address or a Service"),
        ("default/client", "../etc", 80, "TCP", "is not an IP address or a Service"),
        ("default/client", None, 80, "TCP", "is not an IP address or a Service"),
        ("default/client", "web", 81, "TCP", "does not serve 81/TCP"),
        ("default/client", "web", 80, "UDP", "does not serve 80/UDP"),
        ("default/client", "web", 0, "TCP", "port"),
        ("default/client", "web", 80, "SCTP", "is not TCP or UDP"),
        ("default/client", "hl", 80, "TCP", "has no ClusterIP"),
        ("default/client", "web", 80, "tcp ", "is not TCP or UDP"),
    ],
)
def test_bad_input_is_one_lab_error_and_probes_nothing(fakes, src, target, port, protocol, problem):
    """Each wrong source, target, port or protocol is refused before any probe, with a fix
    naming what to pass (the seam's probe sources: lab.Lab.probe)."""
    headless = fakes.service("hl", "None", selector={"app": "web"})
    lab = fakes.web_cluster(cni="flannel", extra=[headless])
    with pytest.raises(LabError, match=problem) as err:
        packet_path(lab, src, target, port, protocol)
    assert err.value.fix
    assert not [c for c in lab.calls if c[0] in ("probe", "node_exec")]


@pytest.mark.parametrize("namespace", ["Shop", "", None, "a/b"])
def test_bad_namespace_is_refused(fakes, namespace) -> None:
    """The Service's namespace is a DNS-1123 label (apimachinery IsDNS1123Label)."""
    lab = fakes.web_cluster(cni="flannel")
    with pytest.raises(LabError, match="is not a namespace name"):
        packet_path(lab, "default/client", "web", 80, namespace=namespace)
    assert not [c for c in lab.calls if c[0] == "probe"]


def test_node_and_outside_sources(fakes) -> None:
    """The seam's other sources: a node by its name (``node:NAME``) and OUTSIDE, here to a
    NodePort on a node's address (kube-proxy's KUBE-NODEPORTS)."""
    svc = fakes.service("np", "10.96.30.30", selector={"app": "web"})
    svc["spec"]["type"] = "NodePort"
    svc["spec"]["ports"][0]["nodePort"] = 30080
    lab = fakes.web_cluster(cni="flannel", enforce=False, extra=[svc])
    lab.overrides[("lab-worker", "10.244.2.3", 8080)] = "connected"  # the fake probes from pods
    Nodes(lab, {})
    pic = packet_path(lab, "node:lab-worker", "10.244.2.3", 8080)
    assert pic.text.splitlines()[1:3] == [
        "node lab-worker | 172.18.0.3",
        "  node lab-worker | 172.18.0.3",
    ]
    pic = packet_path(lab, OUTSIDE, "172.18.0.3", 30080)
    assert "outside world | outside the cluster" in pic.text
    assert "DNAT svc default/np" in pic.text


@needs_dot
def test_path_svg_equals_its_text(fakes) -> None:
    """Graphviz's SVG (one <text> per label line) says what the path's text form says."""
    lab = fakes.web_cluster(cni="flannel", enforce=False)
    Nodes(lab, {})
    same_content(packet_path(lab, "default/client", "web", 80))
