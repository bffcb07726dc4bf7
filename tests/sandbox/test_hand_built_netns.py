"""A pod's network built by hand (issue 10, "Build by hand"), on Flannel and on Calico, with only
the commands a learner types: ``lab.netns_add``, then ``lab.node_exec`` on the node (where the
hand-made namespace shows at /run/netns/<name>) and ``lab.netns_exec`` inside it. Probes from
``node:name`` then reach a pod on the same node, one on the other node and a ClusterIP; the
node shell stays confined, pods do not see the namespace, and ``down`` leaves nothing."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from labkit.errors import LabError
from labkit.sandbox import backend, fabric_runner, naming
from labkit.status import render_status

NAME = "hand"
WORKLOAD = Path(__file__).with_name("data") / "workload.yaml"


@pytest.fixture(params=["flannel", "calico"])
def lab(request):
    lab_name = f"thand-{request.param[0]}"
    backend.down(lab_name)
    built = backend.up(lab_name, request.param, quiet=True)
    try:
        built.apply(WORKLOAD)
        yield built
    finally:
        backend.down(lab_name)
    assert not [n for n in fabric_runner.list_netns() if n.startswith(f"lk-{lab_name}-")]
    assert not naming.NETNS_ETC.exists() or not [
        n for n in os.listdir(naming.NETNS_ETC) if n.startswith(f"lk-{lab_name}-")
    ]
    assert not naming.state_dir(lab_name).exists()


def _ok(result) -> str:
    assert result.ok, f"{result.argv}: {result.stderr}"
    return result.stdout


def _web(lab, same_node: str | None = None, other_than: str | None = None) -> dict:
    pods = lab.get("pods", namespace="demo", selector="app=web")
    return next(
        p
        for p in pods
        if (same_node is None or p["spec"]["nodeName"] == same_node)
        and (other_than is None or p["spec"]["nodeName"] != other_than)
    )


def _wire_flannel(lab, node: str) -> None:
    """Flannel's bridge plugin by hand: a veth to cni0, an address in the podCIDR, a default
    route via cni0's address."""
    cni0 = _ok(lab.node_exec(node, "ip -4 -o addr show cni0")).split()[3]
    gateway, cidr = cni0.split("/")[0], ipaddress.ip_interface(cni0).network
    address = f"{cidr[250]}/{cidr.prefixlen}"
    _ok(lab.node_exec(node, f"ip link add veth-{NAME} type veth peer name eth0 netns {NAME}"))
    _ok(lab.node_exec(node, f"ip link set veth-{NAME} master cni0"))
    _ok(lab.node_exec(node, f"ip link set veth-{NAME} up"))
    _ok(lab.netns_exec(node, NAME, "ip link set lo up"))
    _ok(lab.netns_exec(node, NAME, f"ip addr add {address} dev eth0"))
    _ok(lab.netns_exec(node, NAME, "ip link set eth0 up"))
    _ok(lab.netns_exec(node, NAME, f"ip route add default via {gateway}"))


def _wire_calico(lab, node: str) -> None:
    """Calico's way by hand: the veth is moved in, a /32 route on the node, proxy ARP on the host
    end, a default route via 169.254.1.1 onlink inside."""
    block = _ok(lab.node_exec(node, "ip route show type blackhole")).split()[1]
    address = ipaddress.ip_network(block)[-2]
    _ok(lab.node_exec(node, f"ip link add veth-{NAME} type veth peer name tmp-{NAME}"))
    _ok(lab.node_exec(node, f"ip link set tmp-{NAME} netns {NAME}"))
    _ok(lab.node_exec(node, f"ip link set veth-{NAME} up"))
    _ok(lab.node_exec(node, f"sysctl -w net.ipv4.conf.veth-{NAME}.proxy_arp=1"))
    _ok(lab.node_exec(node, f"ip route add {address}/32 dev veth-{NAME}"))
    _ok(lab.netns_exec(node, NAME, f"ip link set tmp-{NAME} name eth0"))
    _ok(lab.netns_exec(node, NAME, f"ip addr add {address}/32 dev eth0"))
    _ok(lab.netns_exec(node, NAME, "ip link set eth0 up"))
    _ok(lab.netns_exec(node, NAME, "ip route add default via 169.254.1.1 dev eth0 onlink"))


def test_a_pod_network_built_by_hand_reaches_pods_and_a_service(lab):
    here = _web(lab)["spec"]["nodeName"]
    same, other = _web(lab, same_node=here), _web(lab, other_than=here)
    cluster_ip = lab.get("service", "web", "demo")[0]["spec"]["clusterIP"]
    lab.netns_add(here, NAME)
    assert lab.netns_list(here) == [NAME]
    assert f"(lab.netns_add): {here}: {NAME}" in render_status(lab)
    with pytest.raises(LabError, match="netns_delete"):
        lab.netns_add(here, NAME)
    assert _ok(lab.node_exec(here, "ip netns list")).split()[0] == NAME
    assert "lo" in _ok(lab.netns_exec(here, NAME, "ip -o link"))
    assert lab.probe(f"{here}:{NAME}", same["status"]["podIP"], 8080).outcome == "unreachable"
    (_wire_flannel if lab.cni == "flannel" else _wire_calico)(lab, here)
    src = f"{here}:{NAME}"
    pairs = [(src, same["status"]["podIP"], 8080), (src, other["status"]["podIP"], 8080)]
    probes = lab.probe_many([*pairs, (src, cluster_ip, 80)])
    assert [p.outcome for p in probes] == ["connected"] * 3, probes
    assert probes[0].served_by == same["metadata"]["name"]
    assert probes[1].served_by == other["metadata"]["name"]
    assert _ok(lab.netns_exec(here, NAME, "hostname")).strip() == here
    lab.netns_delete(here, NAME)
    lab.netns_delete(here, NAME)  # absent is fine
    assert lab.netns_list(here) == []
    assert "veth-hand" not in _ok(lab.node_exec(here, "ip -o link"))


def test_node_shells_stay_confined_and_pods_do_not_see_the_namespace(lab):
    node = _web(lab)["spec"]["nodeName"]
    lab.netns_add(node, NAME)
    assert not lab.node_exec(node, "ip netns add other").ok
    entered = lab.node_exec(node, f"ip netns exec {NAME} ip -o link")
    assert not entered.ok and "Operation not permitted" in entered.stderr
    assert not lab.node_exec(node, f"touch /run/netns/{NAME}").ok  # read-only
    assert _ok(lab.exec("demo/client-a", "ip netns list")) == ""
    made = [n for n in fabric_runner.list_netns() if naming.is_lab_hand_netns(lab.name, n)]
    assert len(made) == 1 and made[0].endswith(f".{NAME}")
    assert lab.name in backend.names()
    with pytest.raises(LabError, match="netns_add"):
        lab.probe(f"{node}:nothere", "10.96.0.1", 443)
    with pytest.raises(LabError, match="cannot name"):
        lab.netns_add(node, "--help")


def test_heal_removes_an_unrecorded_namespace_and_forgets_a_vanished_one(lab):
    node = _web(lab)["spec"]["nodeName"]
    short = naming.NODE_SHORTS[
        [n["metadata"]["name"] for n in lab.get("nodes", namespace=None)].index(node)
    ]
    stray = naming.hand_netns(lab.name, short, "stray")  # as a netns_add killed midway leaves it
    subprocess.run(["ip", "netns", "add", stray], check=True)
    lab.netns_add(node, NAME)
    assert stray not in fabric_runner.list_netns()
    assert (naming.NETNS_ETC / naming.hand_netns(lab.name, short, NAME)).is_dir()
    subprocess.run(["ip", "netns", "del", naming.hand_netns(lab.name, short, NAME)], check=True)
    assert lab.netns_list(node) == []
    assert not (naming.NETNS_ETC / naming.hand_netns(lab.name, short, NAME)).exists()
    with pytest.raises(LabError, match="netns_add"):
        lab.netns_exec(node, NAME, "true")


EXERCISE = """
exercises:
  - id: "07.9"
    title: Wire a pod's network by hand
    kind: build
    points: 3
    setup: {scenario: 10-kube-proxy-rules}
    build:
      namespace: hand
      node: {namespace: default, selector: app=my-service}
      reach:
        - case: same node
          dst: {namespace: default, selector: app=my-service}
          port: 8080
          nodes: same
        - case: other node
          dst: {namespace: default, selector: app=my-service}
          port: 8080
          nodes: different
        - {case: the Service, service: {namespace: default, name: my-service}, port: 80}
    hints: [Make the namespace first., The whole recipe.]
"""


def test_a_build_exercise_grades_the_wiring_on_the_lab(lab, tmp_path, progress_file):
    from labkit.course.exercise_data import load_lesson
    from labkit.course.exercise_lab import Exercise

    path = tmp_path / "07-demo.yaml"
    path.write_text(EXERCISE)
    ex = Exercise(load_lesson(path)[0], lab, learner="ada")
    ex.setup()
    node = lab.get("pods", selector="app=my-service")[0]["spec"]["nodeName"]
    missing = ex.check()
    assert str(missing).startswith("exercise 07.9: fail (0/3)")
    assert f"lab.netns_add('{node}', 'hand')" in str(missing)
    lab.netns_add(node, NAME)
    assert str(ex.check()).startswith("exercise 07.9: fail (0/3)")  # nothing wired yet
    (_wire_flannel if lab.cni == "flannel" else _wire_calico)(lab, node)
    done = ex.check()
    assert str(done).startswith("exercise 07.9: pass (3/3)"), str(done)
    assert f"{node}:hand -> Service default/my-service" in str(done)
    ex.setup()  # a rerun starts over
    assert lab.netns_list(node) == []
