"""A node's whole iptables ruleset: the CNI's own chains plus rule fragments from kube-proxy and
the policy engine, composed into one ``iptables-restore`` input and loaded inside the node's
namespace (never the host's).

A fragment is ``{table: [lines]}`` where lines are chain declarations (``:NAME - [0:0]``, or a
built-in chain with its policy) and ``-A`` rules. Composition keeps each fragment's rule order,
puts fragments in the order given (so policy chains hooked into FORWARD come before
kube-proxy's, as Felix inserts them), drops duplicate declarations, and refuses a jump to a chain
nobody declared, which ``iptables-restore`` would reject with a cryptic message.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from labkit.errors import LabError

Fragment = Mapping[str, Sequence[str]]

BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
ALWAYS_TABLES = ("filter", "nat", "mangle")
"""Tables every restore rewrites, so rules from an earlier state never linger."""
TARGETS = {
    "ACCEPT",
    "DROP",
    "RETURN",
    "REJECT",
    "DNAT",
    "SNAT",
    "MASQUERADE",
    "MARK",
    "CONNMARK",
    "LOG",
    "NFLOG",
    "NOTRACK",
    "CT",
    "TCPMSS",
    "REDIRECT",
    "TPROXY",
    "CHECKSUM",
    "QUEUE",
    "NFQUEUE",
    "SET",
    "AUDIT",
    "TRACE",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TTL",
}
TABLE_ORDER = ("raw", "mangle", "nat", "filter", "security")

_JUMP = re.compile(r"(?:^|\s)-[jg]\s+(\S+)")
_DECL = re.compile(r":(\S+)\s+(\S+)")


class Chain(NamedTuple):
    """One chain of a table: its policy (``-`` for a user chain) and its rules, in order (a
    NamedTuple: a node holds thousands, built on every sync)."""

    policy: str
    rules: tuple[str, ...]


Ruleset = dict[str, dict[str, Chain]]
"""Table name to its chains (built-in chains first, then user chains in declaration order)."""


class Chains(NamedTuple):
    """A fragment read into chains: per table the chains it declares (a built-in one with its
    policy, a user one with ``-``), each chain's rules in order, and every chain its rules append
    to or jump to (checked when composed). A renderer may build one directly, and a cache keep
    it, so composing a node's ruleset reads no line twice (issue 18)."""

    declared: dict[str, dict[str, str]]
    rules: dict[str, dict[str, tuple[str, ...]]]
    names: dict[str, frozenset[str]]


def compose(fragments: Iterable[Fragment | Chains]) -> str:
    """One ``iptables-restore`` input from fragments, in order; ValueError names a bad line."""
    return restore_input(compose_ruleset(fragments))


def compose_ruleset(fragments: Iterable[Fragment | Chains]) -> Ruleset:
    """The chains of fragments composed in order (each chain's rules in fragment order, a
    built-in chain's policy from the last fragment that declares it), as :func:`compose` writes
    them: kept structured so a partial sync compares chains without parsing a text back;
    ValueError names a bad line or a rule naming a chain nobody declares."""
    read = [f if isinstance(f, Chains) else read_fragment(f) for f in fragments]
    out: Ruleset = {}
    tables = {table for chains in read for table in chains.declared} | set(ALWAYS_TABLES)
    for table in sorted(tables, key=TABLE_ORDER.index):
        builtins = BUILTIN_CHAINS[table]
        policies = dict.fromkeys(builtins, "ACCEPT")
        joined: dict[str, tuple[str, ...]] = {}
        pieces: dict[str, list[tuple[str, ...]]] = {}  # chains of more than one fragment
        names: set[str] = set()
        for chains in read:  # whole dicts at a time: a fragment holds thousands of chains
            declared = chains.declared.get(table)
            if declared:
                kept = {name: declared.get(name, policies[name]) for name in builtins}
                policies.update(dict.fromkeys(declared, "-"))  # a chain keeps its first place
                policies.update(kept)
            rules = chains.rules.get(table)
            if rules:
                for name in rules.keys() & joined.keys():
                    pieces.setdefault(name, [joined[name]]).append(rules[name])
                joined.update(rules)
            names |= chains.names.get(table, frozenset())
        for name, found in pieces.items():
            joined[name] = tuple(itertools.chain.from_iterable(found))
        unknown = names - policies.keys() - TARGETS
        if unknown:
            _refuse(table, unknown, joined)
        out[table] = {
            name: Chain(policy, joined.get(name, ())) for name, policy in policies.items()
        }
    return out


def _refuse(table: str, unknown: set[str], rules: Mapping[str, tuple[str, ...]]) -> None:
    """The ValueError for rules naming chains nobody declared: the first such rule, and how."""
    for chain, chain_rules in rules.items():
        for rule in chain_rules:
            if chain in unknown:
                raise ValueError(
                    f"rule {rule!r} appends to chain {chain} of table {table}, "
                    "which no fragment declares"
                )
            for target in _references(rule)[1]:
                if target in unknown:
                    raise ValueError(
                        f"rule {rule!r} jumps to {target}, "
                        f"which no fragment declares in table {table}"
                    )
    raise ValueError(f"chains {sorted(unknown)} of table {table} are named but never declared")


def read_fragment(fragment: Fragment) -> Chains:
    """A fragment's lines read into chains; ValueError names a line ``iptables-restore`` would
    refuse or compose never writes."""
    declared: dict[str, dict[str, str]] = {}
    rules: dict[str, dict[str, tuple[str, ...]]] = {}
    names: dict[str, frozenset[str]] = {}
    for table, lines in fragment.items():
        if table not in BUILTIN_CHAINS:
            raise ValueError(f"unknown iptables table {table!r}")
        chains = declared.setdefault(table, {})
        by_chain: dict[str, list[str]] = {}
        for raw in lines:
            line = raw.strip()
            if line[:3] == "-A ":
                by_chain.setdefault(_references(line)[0], []).append(line)
            elif not line or line.startswith("#"):
                continue
            elif line.startswith(":"):
                match = _DECL.match(line)
                if not match:
                    raise ValueError(f"bad chain declaration {line!r} in table {table}")
                name, policy = match.groups()
                builtin = name in BUILTIN_CHAINS[table]
                if builtin and policy == "-":
                    raise ValueError(f"built-in chain {name} needs a policy, not '-'")
                chains[name] = policy if builtin else chains.get(name, "-")
            else:
                raise ValueError(
                    f"only ':' declarations and '-A' rules may be composed, not {line!r}"
                )
        rules[table] = {name: tuple(found) for name, found in by_chain.items()}
        names[table] = chain_names(rules[table])
    return Chains(declared, rules, names)


def chain_names(rules: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """Every chain that rules (by chain) append to or jump to."""
    found = set(rules)
    for chain_rules in rules.values():
        found |= _jump_targets(chain_rules)
    return frozenset(found)


@functools.lru_cache(maxsize=1 << 14)
def _jump_targets(rules: tuple[str, ...]) -> frozenset[str]:
    """The chains one chain's rules jump to, read once per distinct chain."""
    return frozenset(target for rule in rules for target in _references(rule)[1])


def restore_input(ruleset: Ruleset) -> str:
    """The complete ``iptables-restore`` input of a ruleset: per table its chain declarations,
    then each chain's rules."""
    out: list[str] = []
    for table, chains in ruleset.items():
        out.append(f"*{table}")
        out.extend(f":{name} {chain.policy} [0:0]" for name, chain in chains.items())
        for chain in chains.values():
            out.extend(chain.rules)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=1 << 16)
def _references(rule: str) -> tuple[str, tuple[str, ...]]:
    """The chain an ``-A`` rule appends to and the chains it jumps to, parsed once per distinct
    rule: a node's rules are mostly the same from one sync to the next and across nodes."""
    targets = tuple(_JUMP.findall(rule)) if _may_jump(rule) else ()
    return rule.split(None, 2)[1], targets


def _may_jump(rule: str) -> bool:
    """Whether ``_JUMP`` can match: a ``-j``/``-g`` after a space or at the start, or another
    whitespace character (``isprintable`` is false for every one but the space). Testing this
    first skips the search for Felix's ``--jump`` rules, most of a big node's (issue 18)."""
    return " -j" in rule or " -g" in rule or rule.startswith(("-j", "-g")) or not rule.isprintable()


# --------------------------------------------------------------------------- kubelet (pure)


def kubelet_rules() -> dict[str, list[str]]:
    """The chains kubelet keeps on every node: KUBE-IPTABLES-HINT in mangle (so other components
    see which iptables backend the node uses) and the KUBE-KUBELET-CANARY chains its iptables
    Monitor watches in mangle, nat and filter (pkg/kubelet/kubelet_network_linux.go
    initNetworkUtil, syncIPTablesRules). Its KUBE-FIREWALL rule is kube-proxy's identical copy."""
    canary = ":KUBE-KUBELET-CANARY - [0:0]"
    return {
        "mangle": [":KUBE-IPTABLES-HINT - [0:0]", canary],
        "nat": [canary],
        "filter": [canary],
    }


# --------------------------------------------------------------------------- CNI base rules (pure)


def flannel_rules(node_pod_cidr: str, cluster_cidr: str) -> dict[str, list[str]]:
    """What flanneld installs on a node: FLANNEL-FWD accepts pod traffic in FORWARD, and
    FLANNEL-POSTRTG masquerades pod traffic that leaves the cluster network."""
    masq = '-m comment --comment "flanneld masq"'
    fwd = '-m comment --comment "flanneld forward"'
    return {
        "filter": [
            ":FLANNEL-FWD - [0:0]",
            f"-A FORWARD {fwd} -j FLANNEL-FWD",
            f"-A FLANNEL-FWD -s {cluster_cidr} {fwd} -j ACCEPT",
            f"-A FLANNEL-FWD -d {cluster_cidr} {fwd} -j ACCEPT",
        ],
        "nat": [
            ":FLANNEL-POSTRTG - [0:0]",
            f"-A POSTROUTING {masq} -j FLANNEL-POSTRTG",
            f"-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG -s {node_pod_cidr} -d {cluster_cidr} {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG -s {cluster_cidr} -d {node_pod_cidr} {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG ! -s {cluster_cidr} -d {node_pod_cidr} {masq} -j RETURN",
            f"-A FLANNEL-POSTRTG -s {cluster_cidr} ! -d 224.0.0.0/4 {masq} "
            "-j MASQUERADE --random-fully",
            f"-A FLANNEL-POSTRTG ! -s {cluster_cidr} -d {cluster_cidr} {masq} "
            "-j MASQUERADE --random-fully",
        ],
    }


def calico_nat_rules(pool_cidr: str) -> dict[str, list[str]]:
    """Calico's natOutgoing for its IP pool: pod traffic to anything outside the pool is
    masqueraded (Felix matches ipsets of pools; one pool here, so a CIDR says the same)."""
    return {
        "nat": [
            ":cali-POSTROUTING - [0:0]",
            ":cali-nat-outgoing - [0:0]",
            '-A POSTROUTING -m comment --comment "cali:O3lYWMrLQYEMJtB5" -j cali-POSTROUTING',
            '-A cali-POSTROUTING -m comment --comment "cali:Z-c7XtVd2Bq7s_hA" -j cali-nat-outgoing',
            f"-A cali-nat-outgoing -s {pool_cidr} ! -d {pool_cidr} "
            '-m comment --comment "cali:flqWnvo8yq4ULQLa" -j MASQUERADE --random-fully',
        ]
    }


class HostPort(NamedTuple):
    """A pod's ``hostPort``: traffic to a node address on ``host_port`` goes to the pod."""

    pod_ref: str
    pod_ip: str
    protocol: str
    host_port: int
    container_port: int
    host_ip: str
    """The one node address it listens on; '' for all of them."""


def hostport_rules(
    mappings: Sequence[HostPort],
) -> dict[str, list[str]]:
    """The CNI portmap plugin's chains for the host ports of the pods on this node.

    Traffic to a local address on the host port is DNATed to the pod; hairpin and localhost
    traffic is marked for masquerade.
    """
    if not mappings:
        return {}
    nat = [
        ":CNI-HOSTPORT-DNAT - [0:0]",
        ":CNI-HOSTPORT-SETMARK - [0:0]",
        ":CNI-HOSTPORT-MASQ - [0:0]",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" '
        "-j CNI-HOSTPORT-MASQ",
        "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" '
        "-j MARK --set-xmark 0x2000/0x2000",
    ]
    by_pod: dict[str, list[HostPort]] = {}
    for mapping in mappings:
        by_pod.setdefault(mapping.pod_ref, []).append(
            mapping._replace(protocol=mapping.protocol.lower())
        )
    for pod_ref, entries in sorted(by_pod.items()):
        chain = "CNI-DN-" + hashlib.sha1(pod_ref.encode()).hexdigest()[:20]
        nat.append(f":{chain} - [0:0]")
        for protocol in sorted({e.protocol for e in entries}):
            ports = ",".join(str(e.host_port) for e in entries if e.protocol == protocol)
            nat.append(
                f"-A CNI-HOSTPORT-DNAT -p {protocol} "
                f'-m comment --comment "dnat name: cbr0 id: {pod_ref}" '
                f"-m multiport --dports {ports} -j {chain}"
            )
        for e in entries:
            dst = f"-d {e.host_ip}/32 " if e.host_ip else ""
            match = f"{dst}-p {e.protocol} -m {e.protocol} --dport {e.host_port}"
            nat.append(f"-A {chain} -s {e.pod_ip}/32 {match} -j CNI-HOSTPORT-SETMARK")
            nat.append(f"-A {chain} -s 127.0.0.1/32 {match} -j CNI-HOSTPORT-SETMARK")
            nat.append(f"-A {chain} {match} -j DNAT --to-destination {e.pod_ip}:{e.container_port}")
    return {"nat": nat}


# --------------------------------------------------------------------------- loading (I/O)


def restore(netns: str, text: str, timeout: float = 30.0, noflush: bool = False) -> None:
    """Replace the tables named in ``text`` inside namespace ``netns`` (atomically per table);
    with ``noflush``, only the chains it declares (a partial sync)."""
    from labkit.sandbox.netns import enter_netns

    try:
        with enter_netns(netns):
            # A child forked from this thread starts in the thread's namespace.
            proc = subprocess.run(
                ["iptables-restore", "-w", *(["--noflush"] if noflush else [])],
                input=text,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
    except FileNotFoundError:
        raise LabError(
            "`iptables-restore` is not installed.", "Install iptables (`sudo make setup`)."
        ) from None
    except subprocess.TimeoutExpired:
        raise LabError(
            f"iptables-restore in {netns} did not finish within {timeout:g} s.",
            "Check the machine's load, then `labkit down` and `labkit up`.",
        ) from None
    if proc.returncode != 0:
        raise LabError(
            f"iptables-restore refused the rules for {netns}.",
            "This is a labkit bug or a missing kernel feature: "
            "run `labkit doctor --backend sandbox`.",
            output=proc.stderr.strip() + "\n--- input (numbered) ---\n" + _numbered(text),
        )


def _numbered(text: str) -> str:
    return "\n".join(f"{i:4d} {line}" for i, line in enumerate(text.splitlines(), 1))
