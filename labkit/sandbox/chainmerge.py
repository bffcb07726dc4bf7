"""Parts' chains merged in order into one node's, as one :class:`SaveTables` they were all
rendered into would read them, and kept between calls: the next list of parts is merged by what
differs from the last (parts compared by identity), so one changed Service port costs its own
chains and the shared ones it writes to, not all 500 ports' (issue 18).

kube-proxy's partial sync writes only the changed Services' chains for the same reason
(pkg/proxy/iptables/proxier.go ``syncProxyRules``). Pure: no I/O.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from labkit.sandbox.iptables import Chains
from labkit.sandbox.iptables_save import BUILTIN_CHAINS


class _Table:
    """One table of the merge: each chain's rules and how many parts hold, declare and name
    it, with the result last handed out."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.builtins = BUILTIN_CHAINS[table]
        self.holders: dict[str, int] = {}
        self.rules: dict[str, tuple[str, ...]] = {}
        self.declarers: dict[str, int] = {}
        self.user: list[str] = []
        """The user chains declared, sorted (iptables-save's order)."""
        self.namers: dict[str, int] = {}
        self.declared: dict[str, str] = dict.fromkeys(self.builtins, "ACCEPT")
        self.ordered: dict[str, tuple[str, ...]] = {}
        self.names: frozenset[str] = frozenset()

    def update(
        self, parts: Sequence[Chains], removed: Sequence[Chains], added: Sequence[Chains]
    ) -> None:
        """Take ``removed`` out and ``added`` in; ``parts`` is the new whole list, in order."""
        table = self.table
        touched: set[str] = set()
        sole: dict[str, tuple[str, ...]] = {}
        declared_out, named_out = self._count(removed, -1, touched, sole)
        declared_in, named_in = self._count(added, 1, touched, sole)
        order_changed = declared_changed = declared_out or declared_in
        for chain in touched:
            count = self.holders.get(chain, 0)
            had = chain in self.rules
            if count == 0:
                self.holders.pop(chain, None)
                self.rules.pop(chain, None)
            elif count == 1 and chain in sole:  # the one added part holding it holds it alone
                self.rules[chain] = sole[chain]
            else:
                pieces = [r for p in parts if (r := p.rules.get(table, {}).get(chain)) is not None]
                self.rules[chain] = (
                    pieces[0] if len(pieces) == 1 else tuple(itertools.chain.from_iterable(pieces))
                )
            order_changed |= had != (chain in self.rules)
        if declared_changed:
            builtins = dict.fromkeys(self.builtins, "ACCEPT")
            self.declared = {**builtins, **dict.fromkeys(self.user, "-")}
        if order_changed:
            order = (*self.builtins, *self.user)
            self.ordered = {chain: self.rules[chain] for chain in order if chain in self.rules}
        elif touched:
            self.ordered = {**self.ordered, **{c: self.rules[c] for c in touched}}
        if named_out or named_in:
            self.names = frozenset(self.namers)

    def _count(
        self,
        parts: Sequence[Chains],
        step: int,
        touched: set[str],
        sole: dict[str, tuple[str, ...]],
    ) -> tuple[bool, bool]:
        """Count ``parts`` in (``step`` 1) or out (-1): the chains they hold go in ``touched``,
        an added part's rules in ``sole``; whether the declared user chains changed, and
        whether the chains named did."""
        table, declared, named = self.table, False, False
        for part in parts:
            for chain, rules in part.rules.get(table, {}).items():
                self.holders[chain] = self.holders.get(chain, 0) + step
                touched.add(chain)
                if step > 0:
                    sole[chain] = rules
            for chain, policy in part.declared.get(table, {}).items():
                if policy == "-":
                    declared |= _recount(self.declarers, chain, step, self.user)
            for chain in part.names.get(table, frozenset()):
                named |= _recount(self.namers, chain, step, None)
        return declared, named


def _recount(counts: dict[str, int], chain: str, step: int, members: list[str] | None) -> bool:
    """Count ``chain`` in (``step`` 1) or out (-1), keeping the sorted ``members`` to the chains
    counted; whether the chain came or went."""
    count = counts.get(chain, 0) + step
    if count > 0:
        counts[chain] = count
        if count == step == 1 and members is not None:
            bisect.insort(members, chain)
        return count == step == 1
    counts.pop(chain, None)
    if members is not None:
        del members[bisect.bisect_left(members, chain)]
    return True


class MergedChains:
    """The merge of the last list of parts given to :meth:`update`."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Forget every part: the next update merges its parts from nothing."""
        self._parts: list[Chains] = []
        self._tables = {table: _Table(table) for table in BUILTIN_CHAINS}

    def update(self, parts: Sequence[Chains]) -> Chains:
        """The chains of ``parts`` merged in order (each chain's rules in part order, user
        chains sorted after the built-in ones): equal to rendering every part into one
        SaveTables and reading it. Callers must not change a part once given, nor the result."""
        ids = {id(part) for part in parts}
        before = {id(part) for part in self._parts}
        kept_then = [id(p) for p in self._parts if id(p) in ids]
        kept_now = [id(p) for p in parts if id(p) in before]
        if len(ids) != len(parts) or len(before) != len(self._parts) or kept_then != kept_now:
            self._reset()  # a part given twice, or the kept parts reordered
            before = set()
        removed = [p for p in self._parts if id(p) not in ids]
        added = [p for p in parts if id(p) not in before]
        try:
            for merged in self._tables.values():
                merged.update(parts, removed, added)
        except BaseException:
            self._reset()  # half updated: the next call starts again
            raise
        self._parts = list(parts)
        return Chains(
            {t: m.declared for t, m in self._tables.items()},
            {t: m.ordered for t, m in self._tables.items()},
            {t: m.names for t, m in self._tables.items()},
        )
