"""A node's chains merged from its ports' parts and kept between calls
(labkit.sandbox.chainmerge.MergedChains) equal all the parts rendered into one SaveTables, after
every random edit of the list of parts; results handed out earlier never change.

Upstream: kube-proxy writes each service port's chains in turn, appending that port's rules to
the shared KUBE-SERVICES, KUBE-NODEPORTS and filter chains in service order, and the nodeports
jump last ("this must be the last rule in this chain"), then writes the whole ruleset or, in a
partial sync, the changed chains (kubernetes/kubernetes pkg/proxy/iptables/proxier.go
``syncProxyRules``); iptables-save lists the built-in chains first, then the user chains sorted.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from labkit.sandbox.chainmerge import MergedChains
from labkit.sandbox.iptables import Chains
from labkit.sandbox.iptables_save import SaveTables

Op = tuple[str, str, str]
"""(table, chain, rule text); an empty rule text declares the chain."""
SHARED = (("nat", "KUBE-SERVICES"), ("nat", "KUBE-NODEPORTS"), ("filter", "KUBE-SERVICES"))
BUILTIN = (("nat", "PREROUTING"), ("filter", "FORWARD"), ("mangle", "OUTPUT"))


def _part_ops(rng: random.Random, serial: int) -> list[Op]:
    """A port's rules: a few chains of its own (some declared empty, some jumping to another
    of its own), rules in shared and built-in chains, now and then a chain another part has."""
    ops: list[Op] = []
    own = [f"KUBE-SEP-{serial}-{i}" for i in range(rng.randrange(0, 4))]
    for chain in own:
        if rng.random() < 0.2:
            ops.append(("nat", chain, ""))
        for n in range(rng.randrange(0, 3)):
            target = rng.choice([*own, "KUBE-MARK-MASQ", "ACCEPT"])
            ops.append(("nat", chain, f"-m comment --comment p{serial}r{n} -j {target}"))
    for table, chain in rng.sample(SHARED + BUILTIN, rng.randrange(0, 4)):
        ops.append((table, chain, f"-m comment --comment p{serial} -j ACCEPT"))
    if rng.random() < 0.2:
        ops.append(("filter", f"KUBE-FW-{rng.randrange(3)}", f"-m comment --comment p{serial}"))
    return ops


def _render(tables: SaveTables, ops: list[Op]) -> None:
    for table, chain, text in ops:
        if text:
            tables.add(table, chain, matches=(text,))
        else:
            tables.declare(table, chain)


def _part(ops: list[Op]) -> Chains:
    tables = SaveTables()
    _render(tables, ops)
    return tables.read()


def _ordered(chains: Chains) -> list[Any]:
    """The chains with their order."""
    return [
        [(t, list(d.items())) for t, d in chains.declared.items()],
        [(t, list(r.items())) for t, r in chains.rules.items()],
        chains.names,
    ]


def _edit(rng: random.Random, parts: list[tuple[list[Op], Chains]], serial: int) -> None:
    """One edit of the list: a part replaced, added, removed, two swapped, one given twice, or
    nothing."""
    kind = rng.choice(("replace", "replace", "add", "remove", "swap", "twice", "same"))
    if kind in ("replace", "add") or not parts:
        ops = _part_ops(rng, serial)
        at = rng.randrange(len(parts) + 1)
        if kind == "replace" and parts:
            at = rng.randrange(len(parts))
            del parts[at]
        parts.insert(at, (ops, _part(ops)))
    elif kind == "remove":
        del parts[rng.randrange(len(parts))]
    elif kind == "swap" and len(parts) > 1:
        i, j = rng.sample(range(len(parts)), 2)
        parts[i], parts[j] = parts[j], parts[i]
    elif kind == "twice":
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(parts))


@pytest.mark.parametrize("seed", range(20))
def test_kept_merge_equals_one_render_of_every_part_after_every_edit(seed: int) -> None:
    rng = random.Random(seed)
    parts: list[tuple[list[Op], Chains]] = []
    for serial in range(rng.randrange(1, 8)):
        ops = _part_ops(rng, serial)
        parts.append((ops, _part(ops)))
    merged = MergedChains()
    handed: list[tuple[Chains, list[Any]]] = []
    for serial in range(100, 160):
        _edit(rng, parts, serial)
        result = merged.update([part for _, part in parts])
        whole = SaveTables()
        for ops, _ in parts:
            _render(whole, ops)
        assert _ordered(result) == _ordered(whole.read())
        handed.append((result, _ordered(result)))
    assert all(_ordered(result) == seen for result, seen in handed)


def test_an_unchanged_list_hands_out_equal_chains_sharing_every_rule_tuple() -> None:
    """Nothing changed, nothing is joined again: each chain's rules are the same tuple."""
    rng = random.Random(1)
    parts = [_part(_part_ops(rng, serial)) for serial in range(30)]
    merged = MergedChains()
    first = merged.update(parts)
    again = merged.update(list(parts))
    assert _ordered(again) == _ordered(first)
    for table, rules in again.rules.items():
        assert all(rules[chain] is first.rules[table][chain] for chain in rules)
