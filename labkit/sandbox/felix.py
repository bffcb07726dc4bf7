"""Calico Felix's naming and rule-hash schemes, so the sandbox's chains read like a real node's.

Pure. Each function follows one piece of Felix or libcalico-go (named in its docstring); the unit
tests check them against hashes and names from Calico's own tests and iptables dumps.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Sequence

MAX_CHAIN = 28
"""Felix's ``iptables.MaxChainNameLength``."""
HASH_LENGTH = 16
"""Felix's ``HashLength``: the characters of a rule hash kept in the ``cali:`` comment."""
HASH_COMMENT_PREFIX = "cali:"
MAX_COMMENT = 256
MAX_IPSET_NAME = 31
_SHELL_UNSAFE = re.compile(r"[^\w @%+=:,./-]", re.ASCII)
_SHORTENED = "_"


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def length_limited_id(prefix: str, suffix: str, max_length: int = MAX_CHAIN) -> str:
    """``prefix + suffix``, or ``prefix + "_" + base64url(sha256(suffix))`` cut to fit
    (libcalico-go/lib/hash/unique_id.go ``GetLengthLimitedID``)."""
    if not suffix:
        suffix = _SHORTENED
    total = len(prefix) + len(suffix)
    if total > max_length or (total == max_length and suffix[0] == _SHORTENED):
        room = max_length - 1 - len(prefix)
        return prefix + _SHORTENED + _b64(hashlib.sha256(suffix.encode()).digest())[:room]
    return prefix + suffix


@functools.lru_cache(maxsize=1 << 12)
def policy_chain(namespace: str, name: str, inbound: bool) -> str:
    """``cali-pi-``/``cali-po-`` chain of a Kubernetes NetworkPolicy: the prefix and its ID
    ``knp/<namespace>/<name>`` (felix/rules/policy.go ``PolicyChainName``,
    felix/types/policy_id.go ``ID``)."""
    return length_limited_id("cali-pi-" if inbound else "cali-po-", f"knp/{namespace}/{name}")


def profile_chain(profile: str, inbound: bool) -> str:
    """``cali-pri-``/``cali-pro-`` chain of a profile such as ``kns.<namespace>``
    (felix/rules/policy.go ``ProfileChainName``)."""
    return length_limited_id("cali-pri-" if inbound else "cali-pro-", profile)


def ipset_name(identity: str) -> str:
    """An IPv4 selector set's name: ``cali40`` (Felix's IPv4 prefix), ``s:`` (a selector ID) and
    a base64url SHA-224 of ``identity``, 31 characters, the kernel's limit
    (felix/ipsets/ipset_defs.go ``NameForMainIPSet``)."""
    return ("cali40s:" + _b64(hashlib.sha224(identity.encode()).digest()))[:MAX_IPSET_NAME]


def escape_comment(text: str) -> str:
    """A comment as Felix writes it: unsafe characters become ``_``, at most 256 characters
    (felix/iptables/renderer.go ``escapeComment``, ``truncateComment``)."""
    return _SHELL_UNSAFE.sub("_", text)[:MAX_COMMENT]


def rule_hashes(chain: str, bodies: Sequence[str]) -> list[str]:
    """Each rule's hash: SHA-224 of the previous hash (first: of the chain name) and the rule as
    ``-A <chain> HASH <body>``, base64url, 16 characters (felix/generictables/rules.go
    ``RuleHashes``, felix/iptables/renderer.go ``RuleHashes``)."""
    digest = hashlib.sha224(chain.encode()).digest()
    out = []
    for body in bodies:
        digest = hashlib.sha224(digest + f"-A {chain} HASH {body}".encode()).digest()
        out.append(_b64(digest)[:HASH_LENGTH])
    return out


def render_chain(chain: str, bodies: Sequence[str]) -> tuple[str, ...]:
    """``-A`` lines of one chain, each with its ``cali:<hash>`` comment first, as Felix appends
    them (felix/iptables/renderer.go ``RenderAppend``); hashed once per distinct chain: from one
    change to the next a node's chains are mostly the same, and many are alike on every node."""
    return _rendered(chain, tuple(bodies))


@functools.lru_cache(maxsize=1 << 14)
def _rendered(chain: str, bodies: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        f'-A {chain} -m comment --comment "{HASH_COMMENT_PREFIX}{h}" {body}'.rstrip()
        for h, body in zip(rule_hashes(chain, bodies), bodies, strict=True)
    )
