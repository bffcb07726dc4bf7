"""``iptables-save`` text as rules: a tokeniser that quotes like iptables-save, each ``-A`` line
as an :class:`IptablesRule` (its matches, target and target options), and the rules indexed by
table and chain. Knows kube-proxy only where a grep dropped the ``*table`` line (filter-only
chains).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

# Chains that only ever live in the filter table (used when a grep dropped the "*filter" line).
_FILTER_ONLY_CHAINS = {
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-PROXY-FIREWALL",
    "KUBE-FIREWALL",
}
_FILTER_ONLY_TARGETS = {"REJECT", "DROP", "ACCEPT"}


_ALIASES = {
    "--source": "-s",
    "--src": "-s",
    "--destination": "-d",
    "--dst": "-d",
    "--protocol": "-p",
    "--jump": "-j",
    "--goto": "-g",
    "--match": "-m",
    "--in-interface": "-i",
    "--out-interface": "-o",
    "--append": "-A",
}
# Options that always take exactly one value, even if that value starts with "-".
_ONE_VALUE = {
    "-s",
    "-d",
    "-p",
    "-j",
    "-g",
    "-m",
    "-i",
    "-o",
    "--comment",
    "--dport",
    "--sport",
    "--mode",
    "--probability",
    "--name",
    "--seconds",
    "--mask",
    "--to-destination",
    "--mark",
    "--set-xmark",
    "--or-mark",
    "--xor-mark",
    "--dst-type",
    "--src-type",
    "--ctstate",
    "--reject-with",
    "--nfacct-name",
}


def _tokenise(line: str) -> list[str]:
    """Split one rule line as a shell would for iptables-save output (double quotes, ``\\``
    escapes)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            i += 1
            buf: list[str] = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    buf.append(line[i + 1])
                    i += 2
                else:
                    buf.append(line[i])
                    i += 1
            out.append("".join(buf))
            i += 1
            continue
        j = i
        while j < n and not line[j].isspace():
            j += 1
        out.append(line[i:j])
        i = j
    return out


class RuleMatch(NamedTuple):
    """One condition of a rule: an option (long aliases folded to ``-s``, ``-p``, ...), its
    values, and whether a ``!`` negated it."""

    option: str
    values: tuple[str, ...]
    negated: bool


@dataclass
class IptablesRule:
    """One ``-A``/``-I`` line: where it lives, what it matches, where it jumps and with what."""

    table: str
    chain: str
    matches: list[RuleMatch]
    target: str | None
    target_args: dict[str, tuple[str, ...]]

    def value(self, option: str) -> str | None:
        """The first value given to ``option`` among the matches, or None."""
        for match in self.matches:
            if match.option == option and match.values:
                return match.values[0]
        return None

    def negated(self, option: str) -> bool:
        """Whether ``option`` appears negated (``! -s 10.244.0.0/16``)."""
        return any(m.option == option and m.negated for m in self.matches)

    def has(self, option: str) -> bool:
        """Whether the rule matches on ``option`` at all."""
        return any(m.option == option for m in self.matches)

    @property
    def comment(self) -> str | None:
        """The ``--comment`` text, unquoted."""
        return self.value("--comment")

    @property
    def protocol(self) -> str | None:
        """The ``-p`` protocol, lowercase."""
        proto = self.value("-p")
        return proto.lower() if proto else None

    @property
    def dport(self) -> int | None:
        """The ``--dport`` number (None when absent or a range)."""
        port = self.value("--dport")
        return int(port) if port and port.isdigit() else None

    def address(self, option: str) -> str | None:
        """The address given to ``-s``/``-d``: a host without its ``/32``, a network as CIDR."""
        return _host(self.value(option))

    @property
    def unconditional(self) -> bool:
        """True when the rule matches every packet (comments do not count as conditions)."""
        return all(
            m.option == "--comment" or (m.option == "-m" and m.values == ("comment",))
            for m in self.matches
        )


def _host(value: str | None) -> str | None:
    if not value:
        return None
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _parse_rule(table: str | None, tokens: list[str]) -> IptablesRule | None:
    if tokens and re.fullmatch(r"\[\d+:\d+\]", tokens[0]):
        tokens = tokens[1:]
    if len(tokens) < 2 or _ALIASES.get(tokens[0], tokens[0]) not in ("-A", "-I"):
        return None
    chain = tokens[1]
    i = 2
    if tokens[0] in ("-I",) and i < len(tokens) and tokens[i].isdigit():
        i += 1
    matches: list[RuleMatch] = []
    target: str | None = None
    target_args: dict[str, tuple[str, ...]] = {}
    negate = False
    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            negate = True
            i += 1
            continue
        if tok in ("-c", "--set-counters"):
            i += 3
            continue
        if not tok.startswith("-"):
            i += 1
            continue
        name = _ALIASES.get(tok, tok)
        i += 1
        values: list[str] = []
        if name in _ONE_VALUE:
            if i < len(tokens):
                values.append(tokens[i])
                i += 1
        else:
            while i < len(tokens) and tokens[i] != "!" and not tokens[i].startswith("-"):
                values.append(tokens[i])
                i += 1
        if name in ("-j", "-g") and target is None:
            target = values[0] if values else None
        elif target is not None:
            target_args[name] = tuple(values)
        else:
            matches.append(RuleMatch(name, tuple(values), negate))
        negate = False
    if table is None:
        table = (
            "filter" if (chain in _FILTER_ONLY_CHAINS or target in _FILTER_ONLY_TARGETS) else "nat"
        )
    return IptablesRule(table, chain, matches, target, target_args)


def parse_rules(text: str) -> list[IptablesRule]:
    """Every rule of an ``iptables-save`` dump (or excerpt), with the table it belongs to."""
    rules: list[IptablesRule] = []
    table: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip() or None
            continue
        if line == "COMMIT":
            table = None
            continue
        if line.startswith(":"):
            continue
        rule = _parse_rule(table, _tokenise(line))
        if rule is not None:
            rules.append(rule)
    return rules


class RuleIndex:
    """Parsed rules, indexed by table and chain."""

    def __init__(self, rules: list[IptablesRule]) -> None:
        self.chains: dict[tuple[str, str], list[IptablesRule]] = {}
        for rule in rules:
            self.chains.setdefault((rule.table, rule.chain), []).append(rule)

    def chain(self, name: str | None, table: str = "nat") -> list[IptablesRule]:
        """The rules of one chain, in order ([] for an unknown chain or None)."""
        return self.chains.get((table, name), []) if name else []
