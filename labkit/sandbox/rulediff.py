"""Partial syncs of a node's iptables rules: what changed between the ruleset last loaded and the
one wanted now, chain by chain, as an ``iptables-restore --noflush`` input.

kube-proxy has synced this way since 1.28 (pkg/proxy/iptables/proxier.go ``syncProxyRules``: a
partial sync writes only the chains of Services that changed, declaring each chain it rewrites,
which flushes it under ``--noflush``, and ``-X`` for chains no longer wanted); chains nobody
touched keep their rules and their packet counters. Pure: the rulesets in (as
``iptables.compose_ruleset`` builds them, or a record parsed back), the text out.
"""

from __future__ import annotations

from labkit.sandbox.iptables import BUILTIN_CHAINS, TABLE_ORDER, Chain, Ruleset


def parse_restore(text: str) -> Ruleset:
    """A complete ``iptables-restore`` input (as ``iptables.compose`` writes it) as chains per
    table; ValueError names a line it cannot read."""
    tables: Ruleset = {}
    policies: dict[str, str] = {}
    rules: dict[str, list[str]] = {}
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        first = line[:1]
        if first == "-" and line.startswith("-A ") and table is not None:
            end = line.find(" ", 3)
            name = line[3:end] if end > 3 else line.split(None, 2)[1]
            rules.setdefault(name, []).append(line)
        elif not line or first == "#":
            continue
        elif first == "*":
            table, policies, rules = line[1:], {}, {}
        elif table is None:
            raise ValueError(f"line {line!r} comes before any table")
        elif line == "COMMIT":
            tables[table] = {
                name: Chain(policy, tuple(rules.get(name, ()))) for name, policy in policies.items()
            }
            table = None
        elif first == ":":
            name, policy = line[1:].split()[:2]
            policies[name] = policy
        else:
            raise ValueError(f"line {line!r} of table {table} is neither a chain nor a rule")
    if table is not None:
        raise ValueError(f"table {table} has no COMMIT")
    return tables


def partial_restore(old: Ruleset, new: Ruleset) -> str:
    """The ``iptables-restore --noflush`` input that turns ``old`` into ``new``: per table, the
    chains that are new or changed (declared, so flushed, then written whole) and the chains no
    longer wanted (flushed, then deleted after every rewrite); '' when nothing changed. Under
    ``--noflush`` declaring a built-in chain only sets its policy, so a changed one is flushed
    with ``-F`` (else its rules would double and its old jumps keep deleted chains busy). A table
    ``new`` does not name is left alone, as a full restore leaves it."""
    out: list[str] = []
    for table in sorted(new, key=TABLE_ORDER.index):
        before, after = old.get(table, {}), new[table]
        changed = [name for name, chain in after.items() if before.get(name) != chain]
        gone = [n for n in before if n not in after and n not in BUILTIN_CHAINS[table]]
        if not changed and not gone:
            continue
        out.append(f"*{table}")
        out += [f":{name} {after[name].policy} [0:0]" for name in changed]
        out += [f":{name} - [0:0]" for name in gone]
        out += [f"-F {name}" for name in changed if name in BUILTIN_CHAINS[table]]
        for name in changed:
            out += after[name].rules
        out += [f"-X {name}" for name in gone]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""
