"""Pod and node commands are confined (bubblewrap): they cannot write the host's files, see its
processes or enter its network namespace, and the tutorial's commands still work in them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from labkit.sandbox import naming
from labkit.sandbox.confine import CAPABILITIES

POD = "demo/client-a"
CAPABILITY_BITS = {
    "CAP_CHOWN": 0,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
}


def _pod_netns(lab) -> str:
    return naming.pod_netns(lab.name, "demo", "client-a")


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def test_a_pod_cannot_write_the_hosts_files(flannel_lab, tmp_path):
    host_file = tmp_path / "host-file"
    host_file.write_text("the host's\n")
    etc = naming.NETNS_ETC / _pod_netns(flannel_lab)
    resolv = (etc / "resolv.conf").read_text()
    tried = flannel_lab.exec(
        POD,
        f"cat {host_file}; echo pod > {host_file}; touch {etc}/written-by-pod; "
        "echo 'nameserver 192.0.2.1' >> /etc/resolv.conf; "
        "for d in /usr /usr/bin /etc /sys /proc/sys/vm/swappiness /proc/sys/net/ipv4/ip_forward; "
        'do [ -w "$d" ] && echo "writable $d"; done; '
        "echo private > /tmp/pod-file && cat /tmp/pod-file",
    )
    assert host_file.read_text() == "the host's\n"  # the host's /tmp is not even visible
    assert "No such file or directory" in tried.stderr
    assert not (etc / "written-by-pod").exists()
    assert (etc / "resolv.conf").read_text() == resolv
    assert "Read-only file system" in tried.stderr
    assert "writable" not in tried.stdout
    assert tried.stdout.strip() == "private"  # its own /tmp works, and ends with the command
    assert not flannel_lab.exec(POD, "cat /tmp/pod-file").ok


def test_a_pod_sees_only_its_own_processes(flannel_lab):
    listed = flannel_lab.exec(POD, ["ps", "-e", "-o", "pid=,comm="])
    assert listed.ok, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows == [["1", "bwrap"], ["2", "ps"]]  # bwrap's reaper and the command


def test_a_pod_cannot_enter_the_hosts_or_another_namespace(flannel_lab):
    lab = flannel_lab
    netns_inode = os.stat(f"/run/netns/{_pod_netns(lab)}").st_ino
    assert lab.exec(POD, "readlink /proc/self/ns/net").stdout.strip() == f"net:[{netns_inode}]"
    host = lab.exec(POD, "nsenter -t 1 -n ip -o link")
    assert host.returncode != 0 and "Operation not permitted" in host.stderr
    node = lab.exec(POD, f"ip netns exec {naming.node_netns(lab.name, 0)} ip -o link")
    assert node.returncode != 0 and not node.stdout
    assert lab.exec(POD, "ip netns list").stdout == ""  # /run/netns is not there
    assert not lab.exec(POD, "unshare -n true").ok
    assert not lab.exec(POD, "mount -t tmpfs none /tmp").ok
    status = lab.exec(POD, "grep CapEff /proc/self/status").stdout.split()
    expected = sum(1 << CAPABILITY_BITS[c] for c in CAPABILITIES)
    assert int(status[1], 16) == expected


def test_the_tutorials_pod_commands_still_work(flannel_lab):
    lab = flannel_lab
    me = lab.get("pod", "client-a", "demo")[0]
    peer_ip = lab.get("pod", "client-b", "demo")[0]["status"]["podIP"]
    web_ip = lab.get("svc", "web", "demo")[0]["spec"]["clusterIP"]
    assert lab.exec(POD, "hostname").stdout.strip() == "client-a"
    assert f"inet {me['status']['podIP']}/" in lab.exec(POD, "ip addr show eth0").stdout
    assert lab.exec(POD, "ip route").stdout.startswith("default via ")
    resolv = (naming.NETNS_ETC / _pod_netns(lab) / "resolv.conf").read_text()
    assert lab.exec(POD, "cat /etc/resolv.conf").stdout == resolv
    assert "client-a" in lab.exec(POD, "cat /etc/hosts").stdout
    assert lab.exec(POD, "dig +short web.demo.svc.cluster.local").stdout.split() == [web_ip]
    assert lab.exec(POD, "curl -sS -m 3 http://web/hostname").stdout.startswith("web-")
    assert lab.exec(POD, f"ping -c 1 -W 2 {peer_ip}").ok
    capture = lab.exec(
        POD,
        "timeout 5 tcpdump -n -c 1 -i eth0 icmp & sleep 0.5; "
        f"ping -c 3 -i 0.2 -W 1 {peer_ip} >/dev/null; wait",
    )
    assert f"> {peer_ip}: ICMP echo request" in capture.stdout, capture.stderr
    assert "1 packet captured" in capture.stderr


def test_a_host_network_pod_is_named_after_its_node(flannel_lab):
    proxy = flannel_lab.get("pods", namespace="kube-system", selector="k8s-app=kube-proxy")[0]
    name = f"kube-system/{proxy['metadata']['name']}"
    assert flannel_lab.exec(name, "hostname").stdout.strip() == proxy["spec"]["nodeName"]


def test_a_pods_processes_end_with_its_command(flannel_lab):
    assert flannel_lab.exec(POD, "sleep 87655 >/dev/null 2>&1 &").ok
    assert not _running("sleep 87655")
    slow = flannel_lab.exec(POD, "sleep 87656 & sleep 87657; echo never", timeout=0.5)
    assert slow.returncode == 124 and "never" not in slow.stdout
    assert not _running("sleep 8765[67]")


def test_a_node_shell_keeps_a_nodes_tools_and_nothing_of_the_host(flannel_lab):
    lab = flannel_lab
    node = f"{lab.name}-worker"
    assert lab.node_exec(node, "hostname").stdout.strip() == node
    assert "-A PREROUTING -m comment" in lab.node_exec(node, "iptables-save -t nat").stdout
    assert lab.node_exec(node, "ip route").stdout.startswith("default via ")
    assert lab.node_exec(node, "conntrack -L").ok
    chain = lab.node_exec(node, "iptables -w -N LK-CONFINE-TEST && iptables -w -X LK-CONFINE-TEST")
    assert chain.ok, chain.stderr
    forward = lab.node_exec(node, "cat /proc/sys/net/ipv4/ip_forward").stdout.strip()
    assert lab.node_exec(node, f"sysctl -qw net.ipv4.ip_forward={forward}").ok  # the same value
    assert not lab.node_exec(node, "[ -w /proc/sys/vm/swappiness ]").ok
    rows = lab.node_exec(node, ["ps", "-e", "-o", "comm="]).stdout.split()
    assert rows == ["bwrap", "ps"]
    assert "Operation not permitted" in lab.node_exec(node, "nsenter -t 1 -n true").stderr
    etc = naming.NETNS_ETC / naming.node_netns(lab.name, 1)
    assert not lab.node_exec(node, f"touch {etc}/written-by-node").ok
    assert not Path(etc / "written-by-node").exists()
