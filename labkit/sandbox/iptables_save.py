"""Rules written the way ``iptables-save`` prints them: the canonical order of an ``-A`` line's
parts, and tables whose chains are declared and listed in iptables-save's order.

Rendering in this form lets ``iptables-save | grep ...`` on a sandbox node equal what was
rendered, line for line. Pure: no I/O.
"""

from __future__ import annotations

import functools
import ipaddress

from labkit.model.kubeproxy.chains import iptables_comment
from labkit.sandbox.iptables import Chains, chain_names

BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}
"""The tables these writers fill, with their built-in chains in iptables-save's order."""


@functools.lru_cache(maxsize=1 << 14)
def _cidr(value: str) -> str:
    """An address or network as iptables-save prints it (``10.0.0.1/32``), parsed once per
    text: a changed Service's rules name the same endpoints again (issue 18)."""
    return str(ipaddress.ip_network(value, strict=False))


@functools.lru_cache(maxsize=1 << 14)
def comment(text: str) -> str:
    """A ``-m comment`` match, quoted as iptables-save quotes it."""
    return f"-m comment --comment {iptables_comment(text)}"


def rule(
    chain: str,
    *,
    src: str | None = None,
    not_src: bool = False,
    dst: str | None = None,
    proto: str | None = None,
    matches: tuple[str, ...] = (),
    target: str | None = None,
) -> str:
    """One ``-A`` line in iptables-save's canonical order: addresses, protocol, matches, target."""
    parts = ["-A", chain]
    if src:
        parts += (["!"] if not_src else []) + ["-s", _cidr(src)]
    if dst:
        parts += ["-d", _cidr(dst)]
    if proto:
        parts += ["-p", proto]
    parts += matches
    if target:
        parts += ["-j", target]
    return " ".join(parts)


class SaveTables:
    """Chains and rules per table, emitted the way iptables-save orders them: built-in chains
    first, then user chains sorted by name, each chain's rules in the order they were added."""

    def __init__(self) -> None:
        self.chains: dict[str, set[str]] = {table: set() for table in BUILTIN_CHAINS}
        self.rules: dict[str, dict[str, list[str]]] = {table: {} for table in BUILTIN_CHAINS}

    def declare(self, table: str, *chains: str) -> None:
        """Declare user chains (possibly empty) in ``table``."""
        self.chains[table].update(chains)

    def add(
        self,
        table: str,
        chain: str,
        *,
        src: str | None = None,
        not_src: bool = False,
        dst: str | None = None,
        proto: str | None = None,
        matches: tuple[str, ...] = (),
        target: str | None = None,
    ) -> None:
        """Append a rule (its parts as for :func:`rule`) to ``chain``, declaring the chain when
        it is a user chain."""
        line = rule(
            chain, src=src, not_src=not_src, dst=dst, proto=proto, matches=matches, target=target
        )
        if chain not in BUILTIN_CHAINS[table]:
            self.chains[table].add(chain)
        self.rules[table].setdefault(chain, []).append(line)

    def lines(self, table: str) -> list[str]:
        """The table's chain declarations, then its rules chain by chain."""
        builtins = BUILTIN_CHAINS[table]
        user = sorted(self.chains[table] - set(builtins))
        out = [f":{chain} ACCEPT [0:0]" for chain in builtins] + [
            f":{chain} - [0:0]" for chain in user
        ]
        for chain in (*builtins, *user):
            out.extend(self.rules[table].get(chain, []))
        return out

    def read(self) -> Chains:
        """The tables as chains, as :meth:`lines` lists them (for composing a node's ruleset
        without reading the lines back)."""
        declared: dict[str, dict[str, str]] = {}
        rules: dict[str, dict[str, tuple[str, ...]]] = {}
        for table, builtins in BUILTIN_CHAINS.items():
            user = sorted(self.chains[table] - set(builtins))
            declared[table] = {**dict.fromkeys(builtins, "ACCEPT"), **dict.fromkeys(user, "-")}
            found = self.rules[table]
            rules[table] = {c: tuple(found[c]) for c in (*builtins, *user) if c in found}
        return Chains(declared, rules, {t: chain_names(r) for t, r in rules.items()})
