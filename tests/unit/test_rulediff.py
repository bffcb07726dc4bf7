"""Partial syncs: the chain diff between the ruleset a node last loaded and the one wanted."""

from __future__ import annotations

import pytest

from labkit.sandbox import iptables
from labkit.sandbox.iptables import Chain
from labkit.sandbox.rulediff import parse_restore, partial_restore


def _ruleset(services: dict[str, str]) -> str:
    """kube-proxy-shaped nat rules: KUBE-SERVICES jumps to one KUBE-SVC chain per Service."""
    nat = [":KUBE-SERVICES - [0:0]", "-A PREROUTING -j KUBE-SERVICES"]
    for name, ip in services.items():
        nat += [
            f":KUBE-SVC-{name} - [0:0]",
            f"-A KUBE-SERVICES -d {ip}/32 -p tcp --dport 80 -j KUBE-SVC-{name}",
            f"-A KUBE-SVC-{name} -j DNAT --to-destination 192.168.20.1:8080",
        ]
    return iptables.compose([{"nat": nat, "filter": [":KUBE-FORWARD - [0:0]"]}])


def test_parse_reads_every_chain_with_its_policy_and_rules_in_order():
    """iptables-restore's input format (iptables-restore(8)): ``*table``, ``:chain policy
    [packets:bytes]``, ``-A`` rules, ``COMMIT``."""
    parsed = parse_restore(_ruleset({"A": "10.96.0.5", "B": "10.96.0.6"}))
    assert set(parsed) == {"filter", "nat", "mangle"}
    assert parsed["nat"]["PREROUTING"] == Chain("ACCEPT", ("-A PREROUTING -j KUBE-SERVICES",))
    assert parsed["nat"]["KUBE-SERVICES"].rules[1].endswith("-j KUBE-SVC-B")
    assert parsed["filter"]["KUBE-FORWARD"] == Chain("-", ())


@pytest.mark.parametrize(
    "text",
    ["-A X -j ACCEPT\n", "*nat\n:X - [0:0]\n", "*nat\n-N X\nCOMMIT\n"],
)
def test_parse_refuses_what_compose_never_writes(text):
    """iptables-restore(8): rules and chains belong between ``*table`` and ``COMMIT``; ``-N``
    is never written (chains are declared)."""
    with pytest.raises(ValueError):
        parse_restore(text)


def test_nothing_changed_writes_nothing():
    """kube-proxy proxier.go syncProxyRules skips iptables-restore when no chain changed."""
    text = _ruleset({"A": "10.96.0.5"})
    assert partial_restore(parse_restore(text), parse_restore(text)) == ""


def test_one_more_service_writes_only_its_chain_and_the_dispatch_chain():
    """kube-proxy proxier.go syncProxyRules, partial sync: only the chains of Services that
    changed are written (and KUBE-SERVICES, which it always rewrites); the declaration flushes
    a chain under ``--noflush``, so untouched chains keep their rules and counters."""
    old = parse_restore(_ruleset({f"S{i}": f"10.96.0.{i + 10}" for i in range(200)}))
    new = parse_restore(
        _ruleset({**{f"S{i}": f"10.96.0.{i + 10}" for i in range(200)}, "NEW": "10.96.1.1"})
    )
    delta = partial_restore(old, new)
    assert delta.splitlines()[0] == "*nat" and delta.count("COMMIT") == 1
    declared = [line.split()[0][1:] for line in delta.splitlines() if line.startswith(":")]
    assert declared == ["KUBE-SERVICES", "KUBE-SVC-NEW"]
    assert "-A KUBE-SVC-NEW -j DNAT --to-destination 192.168.20.1:8080" in delta
    assert not any("KUBE-SVC-S7 " in line for line in delta.splitlines())
    assert sum(line.startswith("-A KUBE-SERVICES") for line in delta.splitlines()) == 201


def test_a_deleted_service_is_flushed_then_deleted_after_the_rewrites():
    """kube-proxy proxier.go syncProxyRules: a stale chain is declared (flushed) and deleted
    with ``-X`` after the rules that no longer jump to it."""
    old = parse_restore(_ruleset({"A": "10.96.0.5", "B": "10.96.0.6"}))
    new = parse_restore(_ruleset({"A": "10.96.0.5"}))
    lines = partial_restore(old, new).splitlines()
    assert lines == [
        "*nat",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-SVC-B - [0:0]",
        "-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp --dport 80 -j KUBE-SVC-A",
        "-X KUBE-SVC-B",
        "COMMIT",
    ]


def test_a_changed_built_in_chain_keeps_its_policy_and_is_flushed_explicitly():
    """A built-in chain is declared with its policy (``:FORWARD DROP``), never ``-``; under
    ``--noflush`` iptables-restore does not flush a built-in chain it sees declared (only user
    chains: iptables-restore(8), as kube-proxy relies on for its own chains), so ``-F`` does."""
    old = parse_restore(
        iptables.compose([{"filter": [":FORWARD DROP [0:0]", "-A FORWARD -j DROP"]}])
    )
    new = parse_restore(
        iptables.compose([{"filter": [":FORWARD DROP [0:0]", "-A FORWARD -j ACCEPT"]}])
    )
    assert partial_restore(old, new).splitlines() == [
        "*filter",
        ":FORWARD DROP [0:0]",
        "-F FORWARD",
        "-A FORWARD -j ACCEPT",
        "COMMIT",
    ]


def test_a_table_the_new_ruleset_does_not_name_is_left_alone():
    """A full ``iptables-restore`` replaces only the tables its input names; so does the
    partial sync."""
    old = parse_restore("*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NOTRACK\nCOMMIT\n")
    assert partial_restore(old, {}) == ""


JUMP_PIECES = ["-A", "X", "-j", "-g", "--jump", "--goto", "ACCEPT", "NOPE", "-m", "comment", "a-j"]
SPACES = [" ", " ", " ", "\t", "\u00a0", "  "]


@pytest.mark.parametrize("seed", range(30))
def test_the_jump_prefilter_never_hides_a_jump_the_search_would_find(seed):
    """compose's reference check skips its regex search only for rules where it cannot match
    (iptables-restore, iptables/iptables-restore.c via xtables ``do_command4``: ``-j``/``-g``
    name a target or chain that must exist, so compose refuses an undeclared one first)."""
    import random

    rng = random.Random(seed)
    for _ in range(300):
        words = [rng.choice(JUMP_PIECES) for _ in range(rng.randint(1, 6))]
        rule = "".join(w + rng.choice(SPACES) for w in words).rstrip(" ")
        assert iptables._may_jump(rule) or not iptables._JUMP.findall(rule), rule


@pytest.mark.parametrize(
    "rule", ["-A FORWARD -j NOPE", "-A FORWARD\t-g NOPE", "-A FORWARD -m x -j NOPE"]
)
def test_compose_still_refuses_a_jump_to_an_undeclared_chain(rule):
    with pytest.raises(ValueError, match="jumps to NOPE"):
        iptables.compose([{"filter": [rule]}])


def test_a_rule_accepted_once_is_refused_when_its_chain_is_gone():
    """compose parses each distinct rule once, yet checks its references on every call:
    iptables-restore refuses a jump to a chain the input does not declare however often the same
    rule was loaded before (iptables/iptables-restore.c via xtables ``do_command4``)."""
    rule = "-A FORWARD -m comment --comment x -j KUBE-SEEN"
    assert rule in iptables.compose([{"filter": [":KUBE-SEEN - [0:0]", rule]}])
    with pytest.raises(ValueError, match="jumps to KUBE-SEEN"):
        iptables.compose([{"filter": [rule]}])
    with pytest.raises(ValueError, match="appends to chain KUBE-GONE"):
        iptables.compose([{"filter": ["-A KUBE-GONE -j ACCEPT"]}])
    assert "-A KUBE-GONE -j ACCEPT" in iptables.compose(
        [{"filter": [":KUBE-GONE - [0:0]", "-A KUBE-GONE -j ACCEPT"]}]
    )
