"""The agent's DNS index on reload: records it has already encoded are not encoded again, new
ones are, and a bad one is named on every reload until it is gone (CoreDNS's
plugin/kubernetes/controller.go, dnsControl.Update -> detectChanges: an object whose
ResourceVersion did not change is no change, and each watch event touches only its own object)."""

from __future__ import annotations

import re

import pytest

from labkit.model.dns.records import Record
from labkit.sandbox import dns
from labkit.sandbox.agent.listeners import default_dns_backend

ZONE = "cluster.local."
WEB = Record(f"web.default.svc.{ZONE}", "A", "10.96.0.20")
DB = Record(f"db.default.svc.{ZONE}", "A", "10.96.0.30")
BAD = Record(f"bad.default.svc.{ZONE}", "A", "not-an-address")


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[Record]:
    """Every record the backend encodes, in order."""
    seen: list[Record] = []
    real = dns.to_rr

    def counting(record: Record) -> object:
        seen.append(record)
        return real(record)

    monkeypatch.setattr(dns, "to_rr", counting)
    return seen


def test_a_reload_encodes_only_the_new_records(encoded: list[Record]) -> None:
    build = default_dns_backend().build_index
    build([WEB], ["default"])
    index = build([WEB, DB], ["default"])
    assert encoded == [WEB, DB]
    assert [r.value for r in index.lookup(WEB.name).answers] == ["10.96.0.20"]
    assert [r.value for r in index.lookup(DB.name).answers] == ["10.96.0.30"]


def test_a_record_dropped_and_back_is_encoded_again(encoded: list[Record]) -> None:
    build = default_dns_backend().build_index
    build([WEB, DB], ["default"])
    assert build([WEB], ["default"]).lookup(DB.name).rcode == "NXDOMAIN"
    build([WEB, DB], ["default"])
    assert sorted(encoded, key=str) == sorted([WEB, DB, DB], key=str)  # in no set order


def test_a_bad_record_is_named_on_every_reload(encoded: list[Record]) -> None:
    build = default_dns_backend().build_index
    build([WEB], ["default"])
    for _ in range(2):
        with pytest.raises(ValueError, match=r"record bad\.default\.svc\.cluster\.local\. A"):
            build([WEB, BAD], ["default"])
    assert encoded == [WEB, BAD, BAD]
    assert build([WEB], ["default"]).lookup(WEB.name).rcode == "NOERROR"


def test_each_backend_keeps_its_own_records(encoded: list[Record]) -> None:
    default_dns_backend().build_index([WEB], ["default"])
    default_dns_backend().build_index([WEB], ["default"])
    assert encoded == [WEB, WEB]


def test_of_several_bad_records_the_first_listed_is_named(encoded: list[Record]) -> None:
    worse = Record(f"worse.default.svc.{ZONE}", "A", "999.1.1.1")
    build = default_dns_backend().build_index
    build([WEB], ["default"])
    for records in ([worse, WEB, BAD], [BAD, WEB, worse]):
        with pytest.raises(ValueError, match=f"record {re.escape(records[0].name)} "):
            build(records, ["default"])
