"""The sandbox's Calico-style policy rules: their shape, and that they enforce what the model says.

A small interpreter below runs the rendered rules on simulated packets (only the matches and
targets the renderer emits; anything else fails the test), so every random workload is checked
end to end against :func:`labkit.model.netpol.verdicts.verdict`. One root-only test loads the rules
into a throwaway network namespace with the machine's real iptables-restore.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import random
import re
import shlex
import shutil
import subprocess
import uuid
from dataclasses import dataclass

import pytest

from labkit.errors import LabError
from labkit.model.netpol.verdicts import PolicySet
from labkit.sandbox import felix, ipsets
from labkit.sandbox.policyrules import (
    PolicyInputs,
    policy_chain,
    render_policy_rules,
    workload_chain,
)

# --------------------------------------------------------------------------- builders


def pod(ns, name, ip, node, labels=None, ports=(), host_network=False):
    declared = []
    for p in ports:
        number, pname, proto = ((*tuple(p), None, None))[:3]
        entry = {"containerPort": number}
        if pname:
            entry["name"] = pname
        if proto:
            entry["protocol"] = proto
        declared.append(entry)
    spec = {
        "nodeName": node,
        "containers": [{"name": "main", "image": "agnhost", "ports": declared}],
    }
    if host_network:
        spec["hostNetwork"] = True
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {})},
        "spec": spec,
        "status": {"podIP": ip} if ip else {},
    }


def namespace(name, **labels):
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def policy(name, ns, **spec):
    spec.setdefault("podSelector", {})
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def iface(ns, name):
    return "cali" + hashlib.sha256(f"{ns}/{name}".encode()).hexdigest()[:11]


def ifaces(pods):
    return {
        (p["metadata"]["namespace"], p["metadata"]["name"]): iface(
            p["metadata"]["namespace"], p["metadata"]["name"]
        )
        for p in pods
    }


NSS = [namespace("prod", env="prod"), namespace("dev", env="dev"), namespace("kube-system")]
WEB = pod("prod", "web", "192.168.20.1", "w1", {"app": "web"}, [(8080, "http")])
API = pod("prod", "api", "192.168.20.2", "w1", {"app": "api"}, [(9090, "http")])
DB = pod("prod", "db", "192.168.30.1", "w2", {"app": "db"}, [(5432, "pg")])
DEV = pod("dev", "tool", "192.168.30.2", "w2", {"app": "tool"}, [(8080, "http")])
DNS = pod(
    "kube-system",
    "coredns",
    "192.168.10.1",
    "cp",
    {"k8s-app": "kube-dns"},
    [(53, "dns", "UDP"), (53, "dns-tcp"), (9153, "metrics")],
)
PODS = [WEB, API, DB, DEV, DNS]


def render(node, pods=PODS, policies=(), namespaces=NSS, outside=()):
    return render_policy_rules(
        node, pods, namespaces, list(policies), ifaces(pods), outside
    ).tables["filter"]


def render_tables(node, pods, namespaces, policies, use_ipsets):
    """A node's rules loaded into the interpreter, with their ipsets."""
    rules = render_policy_rules(
        node, pods, namespaces, list(policies), ifaces(pods), use_ipsets=use_ipsets
    )
    return Tables(rules.tables["filter"], rules.ipsets)


def rules_of(lines, chain):
    """The rules of one chain without the ``-A`` and the leading ``cali:<hash>`` comment."""
    start = re.compile(rf'-A {re.escape(chain)} -m comment --comment "cali:[\w-]{{16}}" ?')
    return [start.sub("", line, count=1) for line in lines if line.startswith(f"-A {chain} ")]


# --------------------------------------------------------------------------- a tiny iptables


@dataclass
class Packet:
    src: str
    dst: str
    proto: str
    dport: int
    in_iface: str
    out_iface: str
    mark: int = 0


FLAGS = {
    "--source": "-s",
    "--destination": "-d",
    "--in-interface": "-i",
    "--out-interface": "-o",
    "-p": "-p",
}


class Tables:
    """Parses the rendered filter lines and runs packets through FORWARD or INPUT (policy
    ACCEPT)."""

    def __init__(self, lines, sets=None):
        self.sets = {name: set(members) for name, members in (sets or {}).items()}
        self.chains = {"FORWARD": [], "INPUT": [], "OUTPUT": []}
        for line in lines:
            if line.startswith(":"):
                name, policy_, counters = line[1:].split()
                assert policy_ == "-" and counters == "[0:0]", line
                assert name not in self.chains, f"chain {name} declared twice"
                self.chains[name] = []
            else:
                words = shlex.split(line)
                assert words[0] == "-A", line
                assert words[1] in self.chains, f"rule for undeclared chain: {line}"
                self.chains[words[1]].append(self._parse(words[2:], line))
        for rules in self.chains.values():
            for rule in rules:
                if rule["jump"] not in (None, "ACCEPT", "DROP", "RETURN", "MARK"):
                    assert rule["jump"] in self.chains, f"jump to undeclared chain {rule['jump']}"

    def _parse(self, words, line):
        rule = {"jump": None, "goto": False, "matches": []}
        i = 0
        while i < len(words):
            w = words[i]
            if w in FLAGS:
                rule["matches"].append((FLAGS[w], words[i + 1]))
                i += 2
            elif w == "-m":
                module = words[i + 1]
                i += 2
                if module == "comment":
                    assert words[i] == "--comment" and len(words[i + 1]) <= 256
                    i += 2
                elif module == "multiport":
                    assert words[i] == "--destination-ports"
                    rule["matches"].append(("dports", words[i + 1]))
                    i += 2
                elif module == "conntrack":
                    assert words[i] == "--ctstate"
                    rule["matches"].append(("ctstate", words[i + 1]))
                    i += 2
                elif module == "mark":
                    assert words[i] == "--mark"
                    rule["matches"].append(("mark", words[i + 1]))
                    i += 2
                elif module == "set":
                    assert words[i] == "--match-set" and words[i + 1] in self.sets, line
                    assert words[i + 2] in ("src", "dst"), line
                    rule["matches"].append(("set", (words[i + 1], words[i + 2])))
                    i += 3
                else:
                    raise AssertionError(f"unknown match module {module} in {line}")
            elif w in ("--jump", "--goto"):
                rule["jump"], rule["goto"] = words[i + 1], w == "--goto"
                i += 2
                if rule["jump"] == "MARK":
                    assert words[i] == "--set-mark"
                    rule["set_mark"] = words[i + 1]
                    i += 2
            else:
                raise AssertionError(f"unknown word {w!r} in {line}")
        return rule

    def _matches(self, rule, pkt):
        for key, value in rule["matches"]:
            if key in ("-s", "-d"):
                if not _inside(pkt.src if key == "-s" else pkt.dst, value):
                    return False
            elif key in ("-i", "-o"):
                name = pkt.in_iface if key == "-i" else pkt.out_iface
                if value.endswith("+") and not name.startswith(value[:-1]):
                    return False
                if not value.endswith("+") and name != value:
                    return False
            elif key == "-p":
                if pkt.proto != value:
                    return False
            elif key == "dports":
                ok = False
                for part in value.split(","):
                    lo, _, hi = part.partition(":")
                    ok |= int(lo) <= pkt.dport <= int(hi or lo)
                if not ok:
                    return False
            elif key == "ctstate":
                if "NEW" not in value.split(","):  # simulated packets open new flows
                    return False
            elif key == "set":
                name, side = value
                if (pkt.src if side == "src" else pkt.dst) not in self.sets[name]:
                    return False
            elif key == "mark":
                v, m = (int(x, 16) for x in value.split("/"))
                if pkt.mark & m != v:
                    return False
        return True

    def run(self, chain, pkt):
        """Terminal verdict, or None when the chain returns."""
        for rule in self.chains[chain]:
            if not self._matches(rule, pkt):
                continue
            jump = rule["jump"]
            if jump is None:
                continue
            if jump in ("ACCEPT", "DROP"):
                return jump
            if jump == "RETURN":
                return None
            if jump == "MARK":
                v, m = (int(x, 16) for x in rule["set_mark"].split("/"))
                pkt.mark = (pkt.mark & ~m) ^ v
                continue
            result = self.run(jump, pkt)
            if result is not None:
                return result
            if rule["goto"]:
                return None
        return None

    def forward(self, pkt):
        return self.run("FORWARD", pkt) or "ACCEPT"

    def input(self, pkt):
        return self.run("INPUT", pkt) or "ACCEPT"

    def output(self, pkt):
        return self.run("OUTPUT", pkt) or "ACCEPT"


@functools.cache
def _inside(addr: str, cidr: str) -> bool:
    return ipaddress.ip_address(addr) in ipaddress.ip_network(cidr)


def simulate(tables_by_node, pods_by_label, iface_map, src, dst, port, proto):
    """Walk a packet through the FORWARD chains of the nodes it crosses; True when all accept."""
    return all(
        ok for _hop, ok in hops(tables_by_node, pods_by_label, iface_map, src, dst, port, proto)
    )


def hops(tables_by_node, pods_by_label, iface_map, src, dst, port, proto):
    """``[(kind, accepted)]`` per node crossed: kind is "same-node", "egress" (source node) or
    "ingress"."""
    s, d = pods_by_label.get(src), pods_by_label.get(dst)
    src_ip = s["status"]["podIP"] if s else src
    dst_ip = d["status"]["podIP"] if d else dst
    path = []
    if s and d and s["spec"]["nodeName"] == d["spec"]["nodeName"]:
        path.append(("same-node", s["spec"]["nodeName"], iface_map[_key(s)], iface_map[_key(d)]))
    else:
        if s:
            path.append(("egress", s["spec"]["nodeName"], iface_map[_key(s)], "eth0"))
        if d:
            path.append(("ingress", d["spec"]["nodeName"], "eth0", iface_map[_key(d)]))
    return [
        (
            kind,
            tables_by_node[node].forward(Packet(src_ip, dst_ip, proto.lower(), port, i, o))
            == "ACCEPT",
        )
        for kind, node, i, o in path
    ]


def _key(p):
    return (p["metadata"]["namespace"], p["metadata"]["name"])


# --------------------------------------------------------------------------- shape


def test_base_chains_hooks_and_dispatch_read_like_felix():
    """felix/rules/static.go (filterInputChain, filterOutputChain, filterWorkloadToHostChain) and
    dispatch.go: the hooks and base chains; the hashes of rules Felix renders identically equal
    those in Calico's own dump (felix/fv/cali-iptables-dump.txt: INPUT Cz_u1IQiXIMmKD4c, FORWARD
    wUHhoiAYhphO9Mso, OUTPUT tVnHkvAo15HuiPy0, cali-wl-to-host Ee9Sbo10IpVujdIY and
    nSZbcOoG1xPONxb8, cali-OUTPUT Mq1_rAdXXH3YkrzW and 69FkRTJDvD5Vu6Vl)."""
    deny = policy("deny", "prod", policyTypes=["Ingress", "Egress"])
    lines = render("w1", policies=[deny])
    decl = [line for line in lines if line.startswith(":")]
    assert lines[: len(decl)] == decl  # declarations first
    assert decl[:6] == [
        ":cali-FORWARD - [0:0]",
        ":cali-INPUT - [0:0]",
        ":cali-OUTPUT - [0:0]",
        ":cali-from-wl-dispatch - [0:0]",
        ":cali-to-wl-dispatch - [0:0]",
        ":cali-wl-to-host - [0:0]",
    ]
    for line in (
        '-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" --jump cali-INPUT',
        '-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" --jump cali-FORWARD',
        '-A OUTPUT -m comment --comment "cali:tVnHkvAo15HuiPy0" --jump cali-OUTPUT',
        '-A cali-wl-to-host -m comment --comment "cali:Ee9Sbo10IpVujdIY" '
        "--jump cali-from-wl-dispatch",
        '-A cali-wl-to-host -m comment --comment "cali:nSZbcOoG1xPONxb8" -m comment --comment '
        '"Configured DefaultEndpointToHostAction" --jump ACCEPT',
        '-A cali-OUTPUT -m comment --comment "cali:Mq1_rAdXXH3YkrzW" '
        "-m mark --mark 0x10000/0x10000 --jump ACCEPT",
        '-A cali-OUTPUT -m comment --comment "cali:69FkRTJDvD5Vu6Vl" '
        "--out-interface cali+ --jump RETURN",
    ):
        assert line in lines
    assert rules_of(lines, "cali-FORWARD") == [
        "--in-interface cali+ --jump cali-from-wl-dispatch",
        "--out-interface cali+ --jump cali-to-wl-dispatch",
    ]
    assert rules_of(lines, "cali-INPUT") == ["--in-interface cali+ --goto cali-wl-to-host"]
    web_if, api_if = iface("prod", "web"), iface("prod", "api")
    first, second = sorted([web_if, api_if])
    assert rules_of(lines, "cali-to-wl-dispatch") == [
        f"--out-interface {first} --goto cali-tw-{first}",
        f"--out-interface {second} --goto cali-tw-{second}",
    ]
    assert f"--in-interface {web_if} --goto cali-fw-{web_if}" in rules_of(
        lines, "cali-from-wl-dispatch"
    )
    # Pods on other nodes get no chain here.
    assert not any(iface("prod", "db") in line for line in lines)
    for line in decl:
        assert len(line.split()[0][1:]) <= 28


def test_every_rule_carries_its_felix_hash():
    """felix/generictables/rules.go ``RuleHashes``: each ``-A`` line's ``cali:`` comment is the
    chained SHA-224 hash of the rules before it and itself; changing one rule changes the hashes
    of it and every rule after it in that chain, and no other chain's."""
    lines = render("w1", policies=[policy("deny", "prod", policyTypes=["Egress"])])
    chains = {}
    for line in lines:
        if line.startswith("-A "):
            match = re.fullmatch(r'-A (\S+) -m comment --comment "cali:([\w-]{16})" ?(.*)', line)
            assert match, line
            chains.setdefault(match.group(1), []).append((match.group(2), match.group(3)))
    for chain, rules in chains.items():
        assert [h for h, _ in rules] == felix.rule_hashes(chain, [b for _, b in rules])
    assert len({h for rules in chains.values() for h, _ in rules}) == sum(map(len, chains.values()))
    other = render("w1", policies=[policy("deny", "prod", policyTypes=["Ingress"])])
    assert rules_of(other, "cali-FORWARD") == rules_of(lines, "cali-FORWARD")
    assert [x for x in other if x.startswith("-A cali-FORWARD")] == [
        x for x in lines if x.startswith("-A cali-FORWARD")
    ]


def test_isolated_pod_ends_its_tier_in_a_drop_and_free_pods_use_their_profiles():
    """felix/rules/endpoints.go ``endpointIptablesChain``: conntrack, clear marks, tier
    ``default`` with one jump and "Return if policy accepted" per policy and the end-of-tier
    drop, then the profiles (kns.<ns>, ksa.<ns>.<sa>) and "Drop if no profiles matched"."""
    only_web = policy("web-lock", "prod", podSelector={"matchLabels": {"app": "web"}})
    lines = render("w1", policies=[only_web])
    web_if, api_if = iface("prod", "web"), iface("prod", "api")
    chain = policy_chain("prod/web-lock", "ingress")
    assert chain == "cali-pi-knp/prod/web-lock"
    profiles = [
        "--jump cali-pri-kns.prod",
        '-m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 '
        "--jump RETURN",
        "--jump cali-pri-ksa.prod.default",
        '-m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 '
        "--jump RETURN",
        '-m comment --comment "Drop if no profiles matched" --jump DROP',
    ]
    start = [
        "-m conntrack --ctstate RELATED,ESTABLISHED --jump ACCEPT",
        "-m conntrack --ctstate INVALID --jump DROP",
        "--jump MARK --set-mark 0/0x30000",
    ]
    assert rules_of(lines, workload_chain(web_if, "ingress")) == [
        *start,
        '-m comment --comment "Start of tier default" --jump MARK --set-mark 0/0x20000',
        f"-m mark --mark 0/0x20000 --jump {chain}",
        '-m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 '
        "--jump RETURN",
        '-m comment --comment "End of tier default. Drop if no policies passed packet" '
        "-m mark --mark 0/0x20000 --jump DROP",
        *profiles,
    ]
    assert rules_of(lines, workload_chain(api_if, "ingress")) == [*start, *profiles]
    assert rules_of(lines, workload_chain(web_if, "egress"))[3] == "--jump cali-pro-kns.prod"
    assert rules_of(lines, "cali-pri-kns.prod") == [
        '-m comment --comment "Profile kns.prod ingress" --jump MARK --set-mark 0x10000/0x10000',
        "-m mark --mark 0x10000/0x10000 --jump RETURN",
    ]
    assert rules_of(lines, "cali-pri-ksa.prod.default") == [
        '-m comment --comment "Profile ksa.prod.default ingress"'
    ]
    assert rules_of(lines, chain) == [
        '-m comment --comment "KubernetesNetworkPolicy prod/web-lock ingress"'
    ]


def test_policy_and_profile_chain_names_follow_felix():
    """libcalico-go/lib/hash/unique_id.go ``GetLengthLimitedID`` as Felix's policy_test.go
    checks it: ``cali-pi-_PymyFHQQg3808jiz1OJ`` for GlobalNetworkPolicy
    long-policy-name-that-gets-hashed; a Kubernetes NetworkPolicy's ID is knp/<ns>/<name>."""
    assert felix.length_limited_id("cali-pi-", "gnp/long-policy-name-that-gets-hashed") == (
        "cali-pi-_PymyFHQQg3808jiz1OJ"
    )
    assert felix.length_limited_id("cali-pi-", "gnp/default.foo") == "cali-pi-gnp/default.foo"
    assert policy_chain("prod/a", "egress") == "cali-po-knp/prod/a"
    long = policy_chain("payment-processing/allow-dns-egress", "ingress")
    assert long.startswith("cali-pi-_") and len(long) == 28
    assert felix.profile_chain("kns.kube-system", True) == "cali-pri-kns.kube-system"
    exact = felix.length_limited_id("cali-pri-", "_" * 19)
    assert exact.startswith("cali-pri-_") and exact != "cali-pri-" + "_" * 19
    assert felix.escape_comment('a "b" [0] é') == "a _b_ _0_ _"


def test_pod_peers_ports_ranges_and_sctp():
    p = policy(
        "db-in",
        "prod",
        podSelector={"matchLabels": {"app": "db"}},
        ingress=[
            {
                "from": [
                    {"podSelector": {"matchLabels": {"app": "web"}}},
                    {"namespaceSelector": {"matchLabels": {"env": "dev"}}},
                ],
                "ports": [
                    {"port": 5432},
                    {"port": 30000, "endPort": 30010},
                    {"protocol": "SCTP", "port": 9},
                    {"protocol": "UDP"},
                ],
            }
        ],
    )
    chain = policy_chain("prod/db-in", "ingress")
    body = rules_of(render("w2", policies=[p]), chain)
    mark = "--jump MARK --set-mark 0x10000/0x10000"
    title = '-m comment --comment "KubernetesNetworkPolicy prod/db-in ingress"'
    assert body[0] == (
        f"{title} -p tcp --source 192.168.20.1/32 -m multiport --destination-ports 5432 {mark}"
    )
    for line in (
        f"-p tcp --source 192.168.30.2/32 -m multiport --destination-ports 30000:30010 {mark}",
        f"-p sctp --source 192.168.20.1/32 -m multiport --destination-ports 9 {mark}",
        f"-p udp --source 192.168.30.2/32 {mark}",
    ):
        assert line in body
    assert len(body) == 2 * 4  # the trailing RETURN is dropped, as Felix drops it


def test_ip_block_except_becomes_a_returning_sub_chain():
    p = policy(
        "gw",
        "prod",
        podSelector={"matchLabels": {"app": "web"}},
        policyTypes=["Egress"],
        egress=[
            {
                "to": [
                    {
                        "ipBlock": {
                            "cidr": "172.18.0.0/16",
                            "except": ["172.18.0.2/32", "172.18.1.0/24"],
                        }
                    }
                ],
                "ports": [{"port": 443}],
            }
        ],
    )
    lines = render("w1", policies=[p], outside=["172.18.0.1/32"])
    body = rules_of(lines, policy_chain("prod/gw", "egress"))
    jump = re.fullmatch(
        r'-m comment --comment "KubernetesNetworkPolicy prod/gw egress" -m comment --comment '
        r'"prod/gw egress rule 0 ipBlock _covers outside 172\.18\.0\.1/32_" '
        r"-p tcp --destination 172\.18\.0\.0/16 -m multiport --destination-ports 443 "
        r"--jump (cali-ex-[0-9a-f]{16})",
        body[0],
    )
    assert jump, body[0]
    sub = rules_of(lines, jump.group(1))
    assert sub == [
        '-m comment --comment "prod/gw egress rule 0 except 172.18.0.2/32" '
        "--destination 172.18.0.2/32 --jump RETURN",
        '-m comment --comment "prod/gw egress rule 0 except 172.18.1.0/24" '
        "--destination 172.18.1.0/24 --jump RETURN",
        "--jump MARK --set-mark 0x10000/0x10000",
    ]


def test_named_ports_expand_per_destination_pod():
    ingress = policy("http-in", "prod", ingress=[{"ports": [{"port": "http"}]}])
    body = rules_of(render("w1", policies=[ingress]), policy_chain("prod/http-in", "ingress"))
    ports = "-m multiport --destination-ports"
    assert any(f"-p tcp --destination 192.168.20.1/32 {ports} 8080 " in line for line in body)
    assert any(f"-p tcp --destination 192.168.20.2/32 {ports} 9090 " in line for line in body)
    assert not any("192.168.30" in line for line in body)  # db is on another node
    egress = policy(
        "to-http", "prod", policyTypes=["Egress"], egress=[{"ports": [{"port": "http"}]}]
    )
    body = rules_of(render("w1", policies=[egress]), policy_chain("prod/to-http", "egress"))
    targets = sorted(
        re.search(rf"-p tcp --destination (\S+) {ports} (\d+)", line).groups() for line in body
    )
    assert targets == [
        ("192.168.20.1/32", "8080"),
        ("192.168.20.2/32", "9090"),
        ("192.168.30.2/32", "8080"),
    ]
    dns = policy(
        "dns",
        "prod",
        policyTypes=["Egress"],
        egress=[{"ports": [{"port": "dns", "protocol": "UDP"}]}],
    )
    body = rules_of(render("w1", policies=[dns]), policy_chain("prod/dns", "egress"))
    assert f"-p udp --destination 192.168.10.1/32 {ports} 53 " in body[0]


def test_rule_that_selects_nothing_leaves_only_the_policy_title():
    p = policy(
        "ghost", "prod", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "ghost"}}}]}]
    )
    body = rules_of(render("w1", policies=[p]), policy_chain("prod/ghost", "ingress"))
    assert body == ['-m comment --comment "KubernetesNetworkPolicy prod/ghost ingress"']


def test_output_is_deterministic_whatever_the_input_order():
    pols = [
        policy("a", "prod", ingress=[{"from": [{"namespaceSelector": {}}]}]),
        policy("b", "prod", policyTypes=["Egress"], egress=[{"to": [{"podSelector": {}}]}]),
    ]
    first = render("w1", policies=pols)
    rng = random.Random(3)
    for _ in range(5):
        pods, pol = PODS[:], pols[:]
        rng.shuffle(pods)
        rng.shuffle(pol)
        assert render("w1", pods=pods, policies=pol) == first


def test_host_network_and_foreign_pods_are_not_enforced_here():
    agent = pod("prod", "agent", "172.18.0.3", "w1", {"app": "web"}, host_network=True)
    deny = policy("deny", "prod")
    lines = render_policy_rules("w1", [*PODS, agent], NSS, [deny], ifaces(PODS), ()).tables[
        "filter"
    ]
    assert not any("prod/agent" in line for line in lines)


@pytest.mark.parametrize(
    "iface_map, message",
    [
        ({}, "no veth interface is known"),
        ({("prod", "web"): "eth0", ("prod", "api"): "cali1"}, "not a Calico-style name"),
        (
            {("prod", "web"): "cali123456789012", ("prod", "api"): "cali1"},
            "not a Calico-style name",
        ),
        ({("prod", "web"): "cali1", ("prod", "api"): "cali1"}, "share the interface"),
    ],
)
def test_bad_interfaces_are_refused(iface_map, message):
    with pytest.raises(LabError, match=message):
        render_policy_rules("w1", PODS, NSS, [], iface_map)


def test_bad_input_is_refused_before_anything_renders():
    with pytest.raises(LabError, match="names no peer"):
        render("w1", policies=[policy("bad", "prod", ingress=[{"from": [{}]}])])
    with pytest.raises(LabError, match="not a CIDR"):
        render("w1", outside=["nope"])
    with pytest.raises(LabError, match="appears twice"):
        render("w1", pods=[*PODS, WEB])


# --------------------------------------------------------------------------- enforcement == model


def test_egress_lockdown_blocks_dns_in_the_rules_too():
    lock = policy("lockdown", "prod", policyTypes=["Ingress", "Egress"])
    allow_dns = policy(
        "allow-dns",
        "prod",
        policyTypes=["Egress"],
        egress=[
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}],
            }
        ],
    )
    cases = {(False,): [lock], (True,): [lock, allow_dns]}
    for (expected,), pols in cases.items():
        tables = {n: Tables(render(n, policies=pols)) for n in ("cp", "w1", "w2")}
        by_label = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in PODS}
        assert (
            simulate(tables, by_label, ifaces(PODS), "prod/web", "kube-system/coredns", 53, "UDP")
            is expected
        )
        assert (
            simulate(tables, by_label, ifaces(PODS), "prod/web", "kube-system/coredns", 53, "TCP")
            is False
        )


def test_pod_to_its_own_node_passes_its_egress_policies_in_input():
    """Felix's filter INPUT chain (felix/rules/static.go ``filterInputChain``: ``-i cali+ -g
    cali-wl-to-host``; ``filterWorkloadToHostChain``: jump to cali-from-wl-dispatch, then the
    DefaultEndpointToHostAction, which tigera/operator's calico-node sets to ACCEPT) and
    ``filterOutputChain`` (host -> workload is not policed: ``-o cali+ -j RETURN``): a pod's
    packet for a host-network port of its own node obeys the pod's egress policies, exactly as
    the model's verdict for that host-network pod says."""
    proxy = pod(
        "kube-system",
        "kube-proxy-w1",
        "172.18.0.3",
        "w1",
        {"k8s-app": "kube-proxy"},
        [(10256, "healthz")],
        host_network=True,
    )
    web_lock = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]}
    deny = policy("deny-egress", "prod", **web_lock)
    to_nodes = policy(
        "to-nodes", "prod", **web_lock, egress=[{"to": [{"ipBlock": {"cidr": "172.18.0.0/16"}}]}]
    )
    lock_in = policy("web-in", "prod", podSelector={"matchLabels": {"app": "web"}})
    pods = [*PODS, proxy]
    for pols, web_allowed in (([], True), ([deny], False), ([deny, to_nodes], True)):
        tables = Tables(render("w1", pods=pods, policies=[*pols, lock_in]))
        for src, allowed in ((WEB, web_allowed), (API, True)):
            model = PolicySet(NSS, [*pols, lock_in]).verdict(src, proxy, 10256, "TCP")
            assert model.allowed is allowed
            pkt = Packet(src["status"]["podIP"], "172.18.0.3", "tcp", 10256, iface(*_key(src)), "")
            assert tables.input(pkt) == ("ACCEPT" if allowed else "DROP"), (pols, src)
        from_other_node = Packet("172.18.0.4", "172.18.0.3", "tcp", 10256, "eth0", "")
        assert tables.input(from_other_node) == "ACCEPT"
        # The node itself reaches its ingress-isolated pod: Felix does not police host -> pod.
        host_to_web = Packet("172.18.0.3", "192.168.20.1", "tcp", 8080, "", iface("prod", "web"))
        assert tables.output(host_to_web) == "ACCEPT"


def random_cluster(seed):
    rng = random.Random(seed)
    apps = ["web", "api", "db"]
    nss = [namespace(f"n{i}", team=rng.choice("ab")) for i in range(3)]
    pods = []
    for i in range(18):
        ports = [(rng.choice([80, 8080]), "http"), (53, "dns", "UDP"), (7, "sctp", "SCTP")]
        pods.append(
            pod(
                f"n{i % 3}",
                f"p{i}",
                f"192.168.{10 * (1 + i % 3)}.{i + 1}",
                ("cp", "w1", "w2")[i % 3],
                {"app": rng.choice(apps)},
                rng.sample(ports, rng.randint(0, 3)),
            )
        )

    def peer():
        return rng.choice(
            [
                {"podSelector": {"matchLabels": {"app": rng.choice(apps)}}},
                {"namespaceSelector": {"matchLabels": {"team": rng.choice("ab")}}},
                {
                    "namespaceSelector": {},
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "app", "operator": "NotIn", "values": [rng.choice(apps)]}
                        ]
                    },
                },
                {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.20.0/24"]}},
                {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}},
                {"podSelector": {}},
            ]
        )

    def ports():
        return rng.choice(
            [
                [],
                [{"port": 80}],
                [{"port": "http"}],
                [{"port": 8000, "endPort": 8100}],
                [{"protocol": "UDP", "port": "dns"}],
                [{"port": "dns"}],  # TCP "dns": no such port
                [{"protocol": "SCTP"}, {"port": 8080}],
                [{"port": "http"}, {"protocol": "SCTP", "port": "sctp"}],
            ]
        )

    def rules(key):
        return rng.choice(
            [
                [],
                [{}],
                [
                    {key: [peer() for _ in range(rng.randint(0, 2))], "ports": ports()}
                    for _ in range(rng.randint(1, 3))
                ],
            ]
        )

    pols = []
    for i in range(8):
        spec = {
            "podSelector": rng.choice([{}, {"matchLabels": {"app": rng.choice(apps)}}]),
            "ingress": rules("from"),
            "egress": rules("to"),
        }
        if rng.random() < 0.6:
            spec["policyTypes"] = rng.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
        pols.append(policy(f"pol{i}", f"n{rng.randrange(3)}", **spec))
    return nss, pods, pols


def assert_rules_match_model(nss, pods, pols, use_ipsets):
    """Every (src, dst, port) of the cluster: each node's rules agree with the model's verdict."""
    iface_map = ifaces(pods)
    tables = {n: render_tables(n, pods, nss, pols, use_ipsets) for n in ("cp", "w1", "w2")}
    assert use_ipsets or not any(t.sets for t in tables.values())
    by_label = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods}
    outside = ["203.0.113.9", "203.0.113.200", "198.51.100.1"]
    ps = PolicySet(nss, pols)
    checked = blocked = 0
    for port, proto in [
        (80, "TCP"),
        (8080, "TCP"),
        (8050, "TCP"),
        (53, "UDP"),
        (53, "TCP"),
        (7, "SCTP"),
    ]:
        for src in list(by_label) + outside:
            for dst in list(by_label) + outside[:1]:
                if src == dst or (src in outside and dst in outside):
                    continue
                expected = ps.verdict(
                    by_label.get(src, {"ip": src}), by_label.get(dst, {"ip": dst}), port, proto
                )
                walked = hops(tables, by_label, iface_map, src, dst, port, proto)
                for kind, ok in walked:
                    # Across nodes each node enforces one side, so each hop is checked on its own.
                    want = {
                        "same-node": expected.allowed,
                        "egress": expected.egress.allowed,
                        "ingress": expected.ingress.allowed,
                    }[kind]
                    assert ok is want, (kind, src, dst, port, proto, expected.reason)
                got = all(ok for _kind, ok in walked)
                assert got is expected.allowed, (src, dst, port, proto, expected.reason)
                checked += 1
                blocked += not got
    return checked, blocked


N0_ALL = {"podSelector": {}}
TRICKY = {
    "egress named port to an ipBlock with except": [
        policy(
            "p",
            "n0",
            policyTypes=["Egress"],
            egress=[
                {
                    "to": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.20.0/24"]}}],
                    "ports": [{"port": "http"}, {"protocol": "UDP", "port": "dns"}],
                }
            ],
        )
    ],
    "named port with the wrong protocol": [
        policy("p", "n1", ingress=[{"ports": [{"port": "dns"}]}]),
        policy("q", "n2", policyTypes=["Egress"], egress=[{"ports": [{"port": "dns"}]}]),
    ],
    "one peer with both selectors": [
        policy(
            "p",
            "n0",
            ingress=[
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "b"}},
                            "podSelector": {"matchLabels": {"app": "web"}},
                        }
                    ]
                }
            ],
        )
    ],
    "two separate peers": [
        policy(
            "p",
            "n0",
            ingress=[
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"team": "b"}}},
                        {"podSelector": {"matchLabels": {"app": "web"}}},
                    ]
                }
            ],
        )
    ],
    "ingress [{}] next to a deny": [
        policy("deny", "n1"),
        policy("all", "n1", ingress=[{}]),
        policy("deny", "n2"),
    ],
    "egress lockdown with DNS allowed": [
        policy("lock", "n2", policyTypes=["Ingress", "Egress"]),
        policy(
            "dns",
            "n2",
            policyTypes=["Egress"],
            egress=[
                {
                    "to": [
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}],
                }
            ],
        ),
    ],
    "ranges, SCTP and ipBlock ingress": [
        policy(
            "p",
            "n1",
            podSelector={"matchLabels": {"app": "web"}},
            ingress=[
                {
                    "from": [
                        {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}}
                    ],
                    "ports": [{"port": 8000, "endPort": 8100}, {"protocol": "SCTP"}],
                },
                {"from": [N0_ALL], "ports": [{"port": 80}]},
            ],
        )
    ],
}


def fixed_cluster():
    """Twelve pods: every namespace on every node, every app, both http numbers, dns/UDP
    everywhere."""
    nss = [namespace("n0", team="a"), namespace("n1", team="b"), namespace("n2", team="b")]
    pods = []
    for i in range(12):
        node = ("cp", "w1", "w2")[(i // 3) % 3]
        ip = f"192.168.{10 * (1 + (i // 3) % 3)}.{i + 1}"
        ports = [(80 if i % 2 else 8080, "http"), (53, "dns", "UDP")] + (
            [(7, "sctp", "SCTP")] if i % 4 else []
        )
        pods.append(
            pod(f"n{i % 3}", f"p{i}", ip, node, {"app": ("web", "api", "db", "web")[i % 4]}, ports)
        )
    return nss, pods


@pytest.mark.parametrize("use_ipsets", [False, True])
@pytest.mark.parametrize("case", sorted(TRICKY))
def test_tricky_policies_enforce_exactly_the_model(case, use_ipsets):
    nss, pods = fixed_cluster()
    checked, blocked = assert_rules_match_model(nss, pods, TRICKY[case], use_ipsets)
    assert 0 < blocked < checked


@pytest.mark.parametrize("use_ipsets", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_rendered_rules_enforce_exactly_the_model(seed, use_ipsets):
    nss, pods, pols = random_cluster(seed)
    checked, blocked = assert_rules_match_model(nss, pods, pols, use_ipsets)
    sets = [
        render_policy_rules(n, pods, nss, pols, ifaces(pods), use_ipsets=use_ipsets).ipsets
        for n in ("cp", "w1", "w2")
    ]
    assert any(sets) is use_ipsets
    assert checked > 1500 and 0 < blocked < checked


@pytest.mark.parametrize("use_ipsets", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_every_node_rendered_from_one_parse_renders_as_alone(seed, use_ipsets):
    """One PolicyInputs shared by the three nodes' renders (as one Felix calculation graph feeds
    every chain: projectcalico/calico felix/calc/calc_graph.go ``NewCalculationGraph``) gives
    each node exactly the rules and ipsets it gets parsed on its own."""
    nss, pods, pols = random_cluster(seed)
    shared = PolicyInputs(pods, nss, pols)
    for node in ("cp", "w1", "w2"):
        alone = render_policy_rules(node, pods, nss, pols, ifaces(pods), use_ipsets=use_ipsets)
        together = render_policy_rules(
            node, pods, nss, pols, ifaces(pods), use_ipsets=use_ipsets, shared=lambda: shared
        )
        assert together == alone


# --------------------------------------------------------------------------- the real iptables


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.sandbox
@pytest.mark.skipif(not _is_root(), reason="needs root to create a throwaway network namespace")
@pytest.mark.skipif(
    not (shutil.which("ip") and shutil.which("iptables-restore")),
    reason="needs iproute2 and iptables",
)
@pytest.mark.parametrize("use_ipsets", [False, True])
def test_this_machines_iptables_accepts_the_rules(use_ipsets):
    if use_ipsets and not ipsets.available():
        pytest.skip("no ipset tool or ip_set module here")
    nss, pods, pols = random_cluster(11)
    pols.append(
        policy(
            "everything",
            "n1",
            podSelector={},
            policyTypes=["Ingress", "Egress"],
            ingress=[
                {
                    "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                    "ports": [
                        {"port": 1, "endPort": 1024},
                        {"protocol": "SCTP", "port": 9},
                        {"protocol": "UDP"},
                        {"port": "http"},
                    ],
                }
            ],
            egress=[{"to": [{"podSelector": {}}], "ports": [{"port": "dns", "protocol": "UDP"}]}],
        )
    )
    rules = render_policy_rules(
        "w1", pods, nss, pols, ifaces(pods), ["203.0.113.0/24"], use_ipsets=use_ipsets
    )
    lines = rules.tables["filter"]
    assert any("cali-ex-" in line for line in lines) and any("multiport" in line for line in lines)
    assert any("-m set --match-set cali40s:" in line for line in lines) is use_ipsets
    text = "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            *lines,
            "COMMIT",
            "",
        ]
    )
    ns = f"lk-t-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        if use_ipsets:
            subprocess.run(
                ["ip", "netns", "exec", ns, "ipset", "restore"],
                input=ipsets.restore_text(rules.ipsets),
                text=True,
                check=True,
                timeout=30,
            )
        load = subprocess.run(
            ["ip", "netns", "exec", ns, "iptables-restore"],
            input=text,
            text=True,
            capture_output=True,
            timeout=30,
        )
        assert load.returncode == 0, load.stderr
        saved = subprocess.run(
            ["ip", "netns", "exec", ns, "iptables-save", "-t", "filter"],
            text=True,
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
        saved_rules = [line for line in saved.splitlines() if line.startswith("-A ")]
        assert len(saved_rules) == sum(line.startswith("-A ") for line in lines)
        assert "-j cali-FORWARD" in saved and "Drop if no policies passed packet" in saved
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    assert ns not in subprocess.run(["ip", "netns", "list"], text=True, capture_output=True).stdout
