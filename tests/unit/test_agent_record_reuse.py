"""An agent's reload keeps the DNS records it already holds as the very same objects, so the
thousands one change leaves alone are compared and indexed by identity (issue 18), and the spec
it reads is the one a fresh read gives.

Upstream: CoreDNS's kubernetes plugin handles only what a watch event changed
(coredns/coredns plugin/kubernetes/controller.go ``dnsControl.Update`` -> ``detectChanges``:
an object whose ResourceVersion did not change is no change); its cache keeps the other objects
as they were.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from labkit.sandbox.agent.spec import parse_spec


def _rows(rng: random.Random) -> list[list[Any]]:
    names = [f"svc-{i}.demo.svc.cluster.local." for i in range(12)]
    return [
        [rng.choice(names), "A", f"10.96.0.{rng.randrange(1, 9)}", rng.choice([5, 30])]
        for _ in range(rng.randrange(0, 25))
    ]


@pytest.mark.parametrize("seed", range(8))
def test_held_records_are_reused_and_the_spec_is_a_fresh_reads(seed: int) -> None:
    rng = random.Random(seed)
    previous = parse_spec({"dns_records": _rows(rng)})
    for _ in range(10):
        kept = [[r.name, r.rtype, r.value, r.ttl] for r in previous.dns_records[::2]]
        rows = _rows(rng) + kept
        rng.shuffle(rows)
        spec = parse_spec({"dns_records": rows}, previous)
        assert spec == parse_spec({"dns_records": rows})
        held = {(r.name, r.rtype, r.value, r.ttl): r for r in previous.dns_records}
        reused = [r for r in spec.dns_records if (r.name, r.rtype, r.value, r.ttl) in held]
        assert all(r is held[(r.name, r.rtype, r.value, r.ttl)] for r in reused)
        assert len(reused) >= len(kept)
        previous = spec


def test_a_bad_row_is_named_whatever_was_held() -> None:
    previous = parse_spec({"dns_records": [["web.demo.svc.cluster.local.", "A", "10.96.0.9", 30]]})
    with pytest.raises(ValueError, match=r"dns_records\[1\] is not \[name, type, value, ttl\]"):
        parse_spec(
            {"dns_records": [["web.demo.svc.cluster.local.", "A", "10.96.0.9", 30], ["x"]]},
            previous,
        )
