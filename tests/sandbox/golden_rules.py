"""Pure text helpers for the kube-proxy golden comparison (``test_kubeproxy_golden.py``): read
``iptables-save`` output as rules only, keep the chains kube-proxy's restore input owns, and
apply the sandbox's documented differences from upstream's fake proxier."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# iptables-save's "[packets:bytes]" after a chain's policy: a counter, not a rule.
_COUNTERS = re.compile(r" \[\d+:\d+\]$")
# iptables-save prints the name after two spaces (libxt_nfacct), kube-proxy writes one.
_NFACCT = re.compile(r" -m nfacct --nfacct-name +(\S+)")
# pkg/proxy/metrics: the counter kube-proxy's localhost NodePort rules (and only they) feed.
LOCALHOST_NODEPORT_COUNTER = "localhost_nps_accepted_pkts"


def saved_rules(text: str) -> dict[str, list[str]]:
    """Each table's chain lines (counters dropped) and ``-A`` rules, in the order given; the
    comment lines iptables-save adds around a table, and ``COMMIT``, are left out."""
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
        elif current is None:
            raise ValueError(f"line outside a table: {line!r}")
        else:
            current.append(_COUNTERS.sub("", line))
    return tables


def chain_of(line: str) -> str:
    """The chain a ``:CHAIN POLICY`` or ``-A CHAIN ...`` line is about."""
    if line.startswith(":"):
        return line[1:].split(" ", 1)[0]
    if line.startswith("-A "):
        return line.split(" ", 2)[1]
    raise ValueError(f"not a chain or rule line: {line!r}")


def declared_chains(tables: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Per table, the chains its lines declare (``:CHAIN ...``)."""
    return {
        table: {chain_of(line) for line in lines if line.startswith(":")}
        for table, lines in tables.items()
    }


def within(
    tables: Mapping[str, Sequence[str]], chains: Mapping[str, set[str]]
) -> dict[str, list[str]]:
    """Only the tables in ``chains`` and, in each, only the lines about its chains."""
    return {
        table: [line for line in tables.get(table, []) if chain_of(line) in wanted]
        for table, wanted in chains.items()
    }


def without_nfacct(lines: Sequence[str]) -> list[str]:
    """Rules as kube-proxy writes them when it has no nfacct counters: the ``-m nfacct`` match
    removed, and the localhost NodePort rules, which exist only to feed their counter, gone."""
    out = []
    for line in lines:
        if any(name == LOCALHOST_NODEPORT_COUNTER for name in _NFACCT.findall(line)):
            continue
        out.append(_NFACCT.sub("", line))
    return out


def without_random_fully(lines: Sequence[str]) -> list[str]:
    """Rules as kube-proxy writes them when iptables cannot do ``--random-fully``."""
    return [line.replace(" -j MASQUERADE --random-fully", " -j MASQUERADE") for line in lines]


def dump(tables: Mapping[str, Sequence[str]]) -> str:
    """Tables as one text, ``*table`` before each (by name: the order iptables-save prints tables
    in is the tool's, not the rules'), for a byte-for-byte comparison."""
    return "".join(
        f"*{table}\n" + "".join(f"{line}\n" for line in tables[table]) for table in sorted(tables)
    )
