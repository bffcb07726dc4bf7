"""Felix's rule hashes and rule rendering, checked against Calico's own data."""

from __future__ import annotations

from labkit.sandbox import felix, ipsets

# felix/fv/cali-iptables-dump.txt (projectcalico/calico): the filter table's cali-FORWARD chain
# as iptables-save printed it, with the rules as Felix renders them for hashing.
DUMP_CALI_FORWARD = [
    ("W_vvds1Nw3n9QE2f", "--jump MARK --set-mark 0/0x1a0000"),
    ("ZfgmjuiLaA8Pg0kp", "-m mark --mark 0/0x10000 --jump cali-from-hep-forward"),
    ("tAzwBLPaV-j53OOZ", "--in-interface cali+ --jump cali-from-wl-dispatch"),
    ("4Z0Pf0byo05NFe-P", "--out-interface cali+ --jump cali-to-wl-dispatch"),
    ("hQ7Oc16wmUtLuneJ", "--jump cali-to-hep-forward"),
    ("rnKNH2WxGcRQcIlD", "--jump cali-cidr-block"),
]


def test_rule_hashes_reproduce_calicos_dump():
    """felix/generictables/rules.go ``RuleHashes`` over felix/iptables/renderer.go
    ``RenderAppend(rule, chain, "HASH")``: the six hashes of cali-FORWARD and the FORWARD hook
    in felix/fv/cali-iptables-dump.txt, and felix/iptables/table_test.go's FORWARD pair
    (hecdSCslEjdBPBPo, plvr29-ZiKUwbzDV for DROP then ACCEPT)."""
    hashes = felix.rule_hashes("cali-FORWARD", [body for _, body in DUMP_CALI_FORWARD])
    assert hashes == [h for h, _ in DUMP_CALI_FORWARD]
    assert felix.rule_hashes("FORWARD", ["--jump cali-FORWARD"]) == ["wUHhoiAYhphO9Mso"]
    assert felix.rule_hashes("FORWARD", ["--jump DROP", "--jump ACCEPT"]) == [
        "hecdSCslEjdBPBPo",
        "plvr29-ZiKUwbzDV",
    ]


def test_a_rule_hash_depends_on_its_chain_position_and_predecessors():
    """The hash chain (felix/generictables/rules.go): the chain name seeds it, and each hash
    feeds the next, so the same rule hashes differently in another chain or after other rules."""
    (alone,) = felix.rule_hashes("cali-x", ["--jump ACCEPT"])
    assert felix.rule_hashes("cali-y", ["--jump ACCEPT"]) != [alone]
    assert felix.rule_hashes("cali-x", ["--jump DROP", "--jump ACCEPT"])[1] != alone
    assert len(alone) == felix.HASH_LENGTH and set(alone) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_render_chain_puts_the_hash_comment_first():
    """felix/iptables/renderer.go ``renderInner``: ``-A chain``, the ``cali:`` hash comment,
    then the rule's own comments, match and action; the dump's cali-wl-to-host lines."""
    assert felix.render_chain(
        "cali-wl-to-host",
        [
            "--jump cali-from-wl-dispatch",
            '-m comment --comment "Configured DefaultEndpointToHostAction" --jump ACCEPT',
        ],
    ) == (
        '-A cali-wl-to-host -m comment --comment "cali:Ee9Sbo10IpVujdIY" '
        "--jump cali-from-wl-dispatch",
        '-A cali-wl-to-host -m comment --comment "cali:nSZbcOoG1xPONxb8" '
        '-m comment --comment "Configured DefaultEndpointToHostAction" --jump ACCEPT',
    )
    assert felix.escape_comment("x" * 300) == "x" * felix.MAX_COMMENT


def test_ipset_names_and_restore_input():
    """felix/ipsets/ipset_defs.go ``NameForMainIPSet``: ``cali40`` + the set's ID (``s:`` and a
    hash for a selector), cut to MaxIPSetNameLength 31; members of a ``hash:net`` selector set
    (felix/ipsets ``IPSetTypeHashNet``) are replaced whole, and stale sets destroyed."""
    name = felix.ipset_name("n1|{}|{}")
    assert name.startswith("cali40s:") and len(name) == 31
    assert felix.ipset_name("n1|{}|{}") == name != felix.ipset_name("n2|{}|{}")
    assert ipsets.restore_text({name: ["192.168.20.1", "192.168.30.2"]}, ["cali40s:old"]) == (
        f"create {name} hash:net family inet -exist\n"
        f"flush {name}\n"
        f"add {name} 192.168.20.1 -exist\n"
        f"add {name} 192.168.30.2 -exist\n"
        "destroy cali40s:old\n"
    )
    assert ipsets.restore_text({}) == ""
