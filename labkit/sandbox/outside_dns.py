"""The outside world's resolver: answers as a recursive resolver does (RA set, not
authoritative), from :data:`labkit.sandbox.outside_world.ZONE`, CNAMEs followed.

Names outside the zone are NXDOMAIN with the SOA of the closest enclosing zone (example.com,
example.net or the root), as a recursive resolver passes on an authoritative denial. Nothing is
asked of the real Internet: the lab's promise is that no packet leaves the machine.
"""

from __future__ import annotations

from dnslib import CLASS, CNAME, EDNS0, QTYPE, RCODE, RR, SOA, A, DNSHeader, DNSRecord

from labkit.sandbox.outside_world import TTL, ZONE

ZONE_SOAS = {
    "example.com.": ("ns.icann.org.", "noc.dns.icann.org."),
    "example.net.": ("ns.icann.org.", "noc.dns.icann.org."),
    ".": ("a.root-servers.net.", "nstld.verisign-grs.com."),
}
"""The zones a denial can come from, with their SOA's MNAME and RNAME."""
SOA_TIMES = (2026120600, 1800, 900, 604800, 86400)
MAX_CHAIN = 8
EDNS_SIZE = 1232


def _owner(name: str) -> str:
    return name.lower() if name.endswith(".") else f"{name.lower()}."


def _enclosing_zone(name: str) -> str:
    return next((z for z in ZONE_SOAS if z != "." and (name == z or name.endswith("." + z))), ".")


def _soa(name: str) -> RR:
    zone = _enclosing_zone(name)
    mname, rname = ZONE_SOAS[zone]
    return RR(zone, QTYPE.SOA, CLASS.IN, TTL, SOA(mname, rname, SOA_TIMES))


def resolve(query: bytes) -> bytes:
    """The resolver's reply to one query (``b""`` for an unreadable message or a response)."""
    try:
        request = DNSRecord.parse(query)
    except Exception:  # dnslib raises assorted errors on garbage
        return b""
    if request.header.qr:
        return b""
    reply = DNSRecord(
        DNSHeader(id=request.header.id, qr=1, rd=request.header.rd, ra=1),
        questions=list(request.questions),
    )
    if any(rr.rtype == QTYPE.OPT for rr in request.ar):  # RFC 6891 7: EDNS answered with EDNS
        reply.add_ar(EDNS0(udp_len=EDNS_SIZE))
    if len(request.questions) != 1 or request.header.opcode != 0:
        reply.header.rcode = RCODE.FORMERR if request.header.opcode == 0 else RCODE.NOTIMP
        return bytes(reply.pack())
    question = request.questions[0]
    name, qtype = str(question.qname), question.qtype
    owner = _owner(name)
    for _ in range(MAX_CHAIN):
        records = [r for r in ZONE if r.name == owner]
        if not records:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(_soa(owner))
            break
        alias = next((r for r in records if r.rtype == "CNAME"), None)
        if alias is not None and qtype != QTYPE.CNAME:
            reply.add_answer(RR(name, QTYPE.CNAME, CLASS.IN, TTL, CNAME(alias.value)))
            name = owner = alias.value
            continue
        found = [r for r in records if getattr(QTYPE, r.rtype) == qtype]
        for record in found:
            rdata = A(record.value) if record.rtype == "A" else CNAME(record.value)
            reply.add_answer(RR(name, qtype, CLASS.IN, TTL, rdata))
        if not found:
            reply.add_auth(_soa(owner))
        break
    return bytes(reply.pack())
