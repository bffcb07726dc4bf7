"""An agent's reload updates its DNS index with what changed (issue 18) and answers exactly as
an index built afresh from the same records would: the same records by name, namespaces, serial
and answers, after any sequence of record sets.

Upstream: CoreDNS's kubernetes plugin keeps its indexes current object by object, through the
informers' handlers (coredns/coredns plugin/kubernetes/controller.go ``dnsControl.Add``,
``Update``, ``Delete``, which only mark the zone modified), never rebuilding them per change; the
SOA serial follows changes (``dnsControl.Modified``).
"""

from __future__ import annotations

import random

import pytest

from labkit.model.dns.lookup import RecordIndex
from labkit.model.dns.records import Record

NAMES = [
    "web.default.svc.cluster.local.",
    "WEB.default.svc.cluster.local",
    "db.team.svc.cluster.local.",
    "_http._tcp.web.default.svc.cluster.local.",
    "10-244-1-5.default.pod.cluster.local.",
    "5.1.244.10.in-addr.arpa.",
    "dns-version.cluster.local.",
]


def _record(rng: random.Random) -> Record:
    rtype = rng.choice(["A", "SRV", "PTR", "TXT"])
    value = {
        "A": f"10.96.0.{rng.randrange(1, 6)}",
        "SRV": f"0 100 {rng.choice([80, 443])} web.default.svc.cluster.local.",
        "PTR": "web.default.svc.cluster.local.",
        "TXT": "1.1.0",
    }[rtype]
    return Record(rng.choice(NAMES), rtype, value, rng.choice([5, 30]))


def _same(updated: RecordIndex, fresh: RecordIndex) -> None:
    def by_name(index: RecordIndex) -> dict[str, list[Record]]:
        return {name: list(found) for name, found in index._by_name.items() if found}

    assert by_name(updated) == by_name(fresh)
    assert updated.records == fresh.records and len(updated) == len(fresh)
    assert updated.namespaces == fresh.namespaces and updated.serial == fresh.serial
    for name in [*NAMES, "nope.default.svc.cluster.local.", "team.svc.cluster.local."]:
        for rtype in ("A", "SRV", "PTR", "ANY", "AAAA"):
            assert updated.lookup(name, rtype) == fresh.lookup(name, rtype), (name, rtype)


@pytest.mark.parametrize("seed", range(40))
def test_an_updated_index_answers_as_a_fresh_one(seed: int) -> None:
    rng = random.Random(seed)
    pool = [_record(rng) for _ in range(30)]
    index = RecordIndex(rng.sample(pool, 10), namespaces=["default"])
    for _ in range(15):
        chosen = rng.sample(pool, rng.randrange(0, 20))
        namespaces = rng.sample(["default", "team", "empty"], rng.randrange(0, 3))
        before = (index.records, index.serial, dict(index._by_name))
        updated = index.updated(chosen, namespaces)
        assert (index.records, index.serial, dict(index._by_name)) == before, "left alone"
        _same(updated, RecordIndex(chosen, namespaces=namespaces))
        index = updated
