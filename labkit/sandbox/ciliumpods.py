"""Loading each Cilium pod's own rules: its node's socket LB, shared, and its endpoint policy.

Every pod of a Cilium lab holds the Service translation (``ciliumlb``) and its own policy chains
(``ciliumpolicy``) in its namespace. A Service change used to compose and diff each pod's whole
ruleset and rewrite ``CILIUM_SOCK_LB`` in every pod (issue 18). Here the socket LB's change is
computed once per node (:func:`labkit.sandbox.ciliumlb.socket_lb_delta`) and the same small
input goes to each pod holding the node's previous socket LB; a pod's policy part is diffed
alone, and only where it changed; a pod with nothing to change is not touched.

A record per pod (``rules/<pod netns>``) says what it holds: the digest of the socket LB text it
was loaded with and its policy text; per node, ``rules/<node netns>.socklb`` keeps the socket LB
text its pods were last brought to. A pod whose record is missing (new, or a load that failed)
or names another socket LB is loaded whole, as after a crash.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from labkit.sandbox import iptables, rulediff
from labkit.sandbox.ciliumlb import socket_lb_delta
from labkit.sandbox.iptables import Fragment

RECORD_HEAD = "# socket-lb "
LOAD_THREADS = 8
"""Pods loaded at once: each load is one short ``iptables-restore`` process."""


class Held(NamedTuple):
    """What a pod's namespace holds, by its record: the socket LB's digest and the policy text."""

    lb_digest: str
    policy: str


class Load(NamedTuple):
    """One ``iptables-restore`` for a pod: the input, and whether it is a partial one."""

    text: str
    noflush: bool


class NodeLB(NamedTuple):
    """A node's socket LB as its pods should hold it, and how to get there from the last one."""

    text: str
    digest: str
    previous_digest: str | None
    delta: str | None
    """The ``--noflush`` input from the previous socket LB (None: none to start from)."""


def digest(text: str) -> str:
    """A short content digest of a socket LB text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_text(held: Held) -> str:
    """A pod's record: the digest line, then its policy text."""
    return f"{RECORD_HEAD}{held.lb_digest}\n{held.policy}"


def parse_record(text: str) -> Held | None:
    """A pod's record read back; None for one this module did not write (then: load whole)."""
    head, _, policy = text.partition("\n")
    if not head.startswith(RECORD_HEAD):
        return None
    return Held(head.removeprefix(RECORD_HEAD), policy)


def node_lb(lb: Fragment, previous: str | None) -> NodeLB:
    """The socket LB text of a node (what a whole load starts with), and the delta from
    ``previous``, the text its pods were last brought to."""
    text = iptables.compose([lb])
    delta = None
    if previous is not None and previous != text:
        delta = socket_lb_delta(rulediff.parse_restore(previous), rulediff.parse_restore(text))
    return NodeLB(text, digest(text), digest(previous) if previous is not None else None, delta)


def pod_load(held: Held | None, lb: NodeLB, lb_fragment: Fragment, policy: Fragment) -> Load | None:
    """What to load into a pod holding ``held`` (None: unknown) so that it holds the node's
    socket LB and ``policy``: nothing (None), a partial load (the socket LB's delta and the
    policy chains that changed), or, when the pod cannot be brought there piece by piece, the
    whole ruleset."""
    policy_text = iptables.compose([policy])
    whole = Load(iptables.compose([lb_fragment, policy]), noflush=False)
    if held is None:
        return whole
    parts = []
    if held.lb_digest != lb.digest:
        if held.lb_digest != lb.previous_digest or lb.delta is None:
            return whole
        parts.append(lb.delta)
    if held.policy != policy_text:
        parts.append(
            rulediff.partial_restore(
                rulediff.parse_restore(held.policy), rulediff.parse_restore(policy_text)
            )
        )
    text = "".join(parts)
    return Load(text, noflush=True) if text else None


def content_key(*values: object) -> bytes:
    """A digest of ``values`` pickled: equal for equal content (unequal bytes for equal content
    only cost a render; equal bytes always unpickle to equal values)."""
    return hashlib.sha256(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)).digest()


class CiliumPods:
    """Brings each pod of a Cilium lab to its node's socket LB and its own policy."""

    def __init__(self, rules_dir: Path) -> None:
        self.rules_dir = rules_dir
        self.policies: dict[str, tuple[bytes, Fragment]] = {}
        """Per pod namespace, its policy fragment and the key of what it was rendered from."""

    def policy(self, netns: str, key: bytes, render: Callable[[], Fragment]) -> Fragment:
        """A pod's policy fragment, ``render()``ed again only when ``key`` changed."""
        cached = self.policies.get(netns)
        if cached is not None and cached[0] == key:
            return cached[1]
        fragment = render()
        self.policies[netns] = (key, fragment)
        return fragment

    def sync(
        self,
        node_netns: str,
        lb: Fragment,
        policies: Mapping[str, Fragment],
        full: bool,
    ) -> list[tuple[str, Load]]:
        """Load into each pod namespace of ``policies`` (a node's pods) what it lacks of ``lb``
        and its policy; with ``full``, everything, whatever the records say. Returns the loads
        made, by pod namespace."""
        node_record = self.rules_dir / f"{node_netns}.socklb"
        previous = None if full or not node_record.exists() else node_record.read_text()
        target = node_lb(lb, previous)
        loads: list[tuple[str, Load, Held]] = []
        for netns, policy in policies.items():
            record = self.rules_dir / netns
            held = None if full or not record.exists() else parse_record(record.read_text())
            load = pod_load(held, target, lb, policy)
            if load is not None:
                loads.append((netns, load, Held(target.digest, iptables.compose([policy]))))
        with ThreadPoolExecutor(max_workers=max(1, min(LOAD_THREADS, len(loads)))) as pool:
            list(pool.map(lambda job: self._load(*job), loads))
        if previous != target.text:
            _write(node_record, target.text)
        return [(netns, load) for netns, load, _ in loads]

    def _load(self, netns: str, load: Load, held: Held) -> None:
        record = self.rules_dir / netns
        record.unlink(missing_ok=True)  # unknown until this load succeeds
        iptables.restore(netns, load.text, noflush=load.noflush)
        _write(record, record_text(held))


def _write(path: Path, text: str) -> None:
    """Replace a record in one step (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
