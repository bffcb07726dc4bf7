"""CoreDNS's loadbalance plugin (round_robin policy, in kubeadm's Corefile): each successful reply
has its address records shuffled. The random source is injected, so tests can drive it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from labkit.model.dns.lookup import Answer
from labkit.model.dns.records import Record

Draw = Callable[[], int]
"""A random 16-bit number, as miekg/dns's ``dns.Id()`` gives the plugin."""


def shuffle_answer(answer: Answer, draw: Draw) -> Answer:
    """The reply as loadbalance's ``WriteMsg`` passes it on: a NOERROR reply has its answer,
    authority and additional sections reordered by ``round_robin``; any other goes unchanged."""
    if answer.rcode != "NOERROR":
        return answer
    return replace(
        answer,
        answers=round_robin(answer.answers, draw),
        authority=round_robin(answer.authority, draw),
        additional=round_robin(answer.additional, draw),
    )


def round_robin(section: Sequence[Record], draw: Draw) -> list[Record]:
    """One section as ``roundRobin`` orders it: only addresses are shuffled in place; a mixed
    section becomes CNAMEs, other records, the addresses shuffled, then MX shuffled."""
    if len(section) <= 1:
        return list(section)
    first = section[0].rtype
    if first in ("A", "AAAA") and all(r.rtype == first for r in section):
        return _shuffled(section, draw)
    cnames = [r for r in section if r.rtype == "CNAME"]
    addresses = [r for r in section if r.rtype in ("A", "AAAA")]
    mx = [r for r in section if r.rtype == "MX"]
    rest = [r for r in section if r.rtype not in ("CNAME", "A", "AAAA", "MX")]
    return [*cnames, *rest, *_shuffled(addresses, draw), *_shuffled(mx, draw)]


def _shuffled(records: Sequence[Record], draw: Draw) -> list[Record]:
    """``roundRobinShuffle``: two records swap on an even draw; more are swapped position by
    position with one drawn from the rest (a Fisher-Yates shuffle)."""
    out = list(records)
    if len(out) == 2:
        if draw() % 2 == 0:
            out.reverse()
    elif len(out) > 2:
        for j in range(len(out)):
            p = j + draw() % (len(out) - j)
            out[j], out[p] = out[p], out[j]
    return out
