"""CiliumNetworkPolicy's HTTP rules (``toPorts[].rules.http[]``), pure: parse them, and decide a
request as Cilium's Envoy filter does.

Cilium hands each rule to Envoy as header matchers (``pkg/envoy/server.go`` ``getHTTPRule``):
``path`` on ``:path``, ``method`` on ``:method`` and ``host`` on ``:authority``, each a RE2
regular expression that must match the whole value (Envoy's ``safe_regex`` is a full match, so
``/public`` does not allow ``/public/x`` and ``GET`` does not allow ``GETX``); ``headers`` entries
``"Name"`` (present) or ``"Name: value"`` / ``"Name value"`` (exact); ``headerMatches`` with the
default mismatch action are exact (or present when the value is empty), other actions only log
and never deny. A rule allows a request when all its matchers match; the rules of one port are
alternatives; an empty rule allows everything. ``:path`` is the request target, query included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DENIED_STATUS = 403
DENIED_BODY = "Access denied\r\n"
"""What Cilium's proxy answers a denied request (cilium/proxy ``cilium/l7policy.cc``: the
default ``denied_403_body_`` "Access denied", given a trailing CRLF, sent as a local reply with
``Http::Code::Forbidden``)."""

L7_DENIAL = "denied by Cilium's HTTP proxy (403 Access denied)"
"""How a probe's detail names an L7 denial, so checks tell it from an L3/L4 drop (a timeout)."""


def refusal_words(path: str, status: int, body: str, server: str | None = None) -> str:
    """Words for a non-200 answer to a probe's GET: Cilium's proxy denying it (403 with "Access
    denied", and ``server: envoy`` where the prober saw the headers), or the status and the
    first line of the body."""
    denied = status == DENIED_STATUS and body.strip() == DENIED_BODY.strip()
    if denied and server in (None, "envoy"):
        return f"GET {path} {L7_DENIAL}: a CiliumNetworkPolicy HTTP rule, not an L3/L4 drop"
    first = body.strip().splitlines()[:1]
    return f"GET {path} answered {status}" + (f": {first[0][:160]}" if first else "")


FAILING_MISMATCH = ("", "FAIL")
"""``headerMatches[].mismatch`` values that make a mismatch deny (LOG, ADD, DELETE, REPLACE
only act on the header)."""


@dataclass(frozen=True)
class HeaderRule:
    """One required header: present (``value`` None) or with exactly ``value``."""

    name: str
    value: str | None = None


@dataclass(frozen=True)
class HttpRule:
    """One entry of ``rules.http``: every field it sets must match (empty: matches anything)."""

    method: str = ""
    path: str = ""
    host: str = ""
    headers: tuple[HeaderRule, ...] = ()

    def describe(self) -> str:
        """The rule as a policy names it: ``GET /public`` (``*`` for an unset method or path),
        plus its host and headers."""
        words = f"{self.method or '*'} {self.path or '*'}"
        if self.host:
            words += f" host {self.host}"
        for header in self.headers:
            words += f" with {header.name}" + (f": {header.value}" if header.value else "")
        return words


def _regex(value: Any, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string (a regular expression)")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{where} {value!r} is not a regular expression ({exc})") from None
    return value


def _header_rule(entry: Any, where: str) -> HeaderRule:
    """``headers`` entries as ``getHTTPRule`` splits them: at the first space, ``:`` trimmed."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"{where} must be a header name, optionally followed by a value")
    name, sep, value = entry.partition(" ")
    return HeaderRule(name.rstrip(":").lower(), value if sep else None)


def parse_http_rule(raw: Any, where: str = "http[0]") -> HttpRule:
    """One ``rules.http`` entry as an HttpRule; a ValueError names the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object with method, path, host or headers")
    unknown = sorted(set(raw) - {"method", "path", "host", "headers", "headerMatches"})
    if unknown:
        raise ValueError(f"{where} has unknown fields: {', '.join(unknown)}")
    headers = [
        _header_rule(entry, f"{where}.headers[{i}]")
        for i, entry in enumerate(raw.get("headers") or [])
    ]
    for i, match in enumerate(raw.get("headerMatches") or []):
        if not isinstance(match, Mapping) or not isinstance(match.get("name"), str):
            raise ValueError(f"{where}.headerMatches[{i}] needs a name")
        mismatch = str(match.get("mismatch") or "")
        if mismatch not in (*FAILING_MISMATCH, "LOG", "ADD", "DELETE", "REPLACE"):
            raise ValueError(f"{where}.headerMatches[{i}]: invalid mismatch action {mismatch!r}")
        if mismatch in FAILING_MISMATCH:
            value = str(match.get("value") or "")
            headers.append(HeaderRule(match["name"].lower(), value or None))
    return HttpRule(
        _regex(raw.get("method"), f"{where}.method"),
        _regex(raw.get("path"), f"{where}.path"),
        _regex(raw.get("host"), f"{where}.host"),
        tuple(headers),
    )


def parse_http_rules(raw: Any, where: str = "http") -> tuple[HttpRule, ...]:
    """A ``rules.http`` list as HttpRules, in order."""
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ValueError(f"{where} must be a list of HTTP rules")
    return tuple(parse_http_rule(entry, f"{where}[{i}]") for i, entry in enumerate(raw))


def _full(pattern: str, value: str) -> bool:
    return not pattern or re.fullmatch(pattern, value) is not None


def rule_allows(rule: HttpRule, method: str, target: str, headers: Mapping[str, str]) -> bool:
    """Whether one rule matches a request: ``target`` is its ``:path`` (path and query),
    ``headers`` its header fields with lower-case names (``host`` gives ``:authority``)."""
    if not (
        _full(rule.method, method)
        and _full(rule.path, target)
        and _full(rule.host, headers.get("host", ""))
    ):
        return False
    for header in rule.headers:
        if header.name not in headers:
            return False
        if header.value is not None and headers[header.name] != header.value:
            return False
    return True


def allows(rules: Sequence[HttpRule], method: str, target: str, headers: Mapping[str, str]) -> bool:
    """Whether a port's rules allow the request: no rules (an L3/L4-only grant, or
    ``http: []``) allow every request, else one matching rule must."""
    return not rules or any(rule_allows(rule, method, target, headers) for rule in rules)
