"""Loading each Cilium pod's own rules: its node's socket LB, shared, and its endpoint policy.

Every pod of a Cilium lab holds the Service translation (``ciliumlb``) and its own policy chains
(``ciliumpolicy``) in its namespace. A Service change used to compose and diff each pod's whole
ruleset and rewrite ``CILIUM_SOCK_LB`` in every pod (issue 18). Here the socket LB's change is
computed once per node (:func:`labkit.sandbox.ciliumlb.socket_lb_delta`) and the same small
input goes to each pod holding the node's previous socket LB; a pod's policy part is diffed
alone, and only where it changed (rendered again only when the endpoint, the policies isolating
it, or the endpoints their peers select changed); a pod with nothing to change is not touched.

A record per pod (``rules/<pod netns>``) says what it holds: the digest of the socket LB text it
was loaded with and its policy text; per node, ``rules/<node netns>.socklb`` keeps the socket LB
text its pods were last brought to. A pod whose record is missing (new, or a load that failed)
or names another socket LB is loaded whole, as after a crash.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from labkit.model.netpol.endpoints import Endpoint, endpoint
from labkit.model.netpol.policies import EGRESS, INGRESS
from labkit.model.netpol.verdicts import PolicySet
from labkit.model.objects import ref_of
from labkit.sandbox import iptables, rulediff
from labkit.sandbox.ciliumlb import socket_lb_delta
from labkit.sandbox.ciliumpolicy import endpoint_policy_rules, peers_read, policy_set
from labkit.sandbox.fabric import NodeNet, PodNet
from labkit.sandbox.fabric_cilium import cilium_host_ip
from labkit.sandbox.iptables import Fragment
from labkit.sandbox.nflog import hubble_flow_rules

if TYPE_CHECKING:
    from labkit.sandbox.dataplane import StoreView

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
    if held is None or (
        held.lb_digest != lb.digest and (held.lb_digest != lb.previous_digest or lb.delta is None)
    ):
        return Load(iptables.compose([lb_fragment, policy]), noflush=False)
    parts = [lb.delta or ""] if held.lb_digest != lb.digest else []
    policy_text = iptables.compose([policy])
    if held.policy != policy_text:
        parts.append(
            rulediff.partial_restore(
                rulediff.parse_restore(held.policy), rulediff.parse_restore(policy_text)
            )
        )
    text = "".join(parts)
    return Load(text, noflush=True) if text else None


def pod_policy(
    pod: Mapping[str, Any], peers: Sequence[Endpoint], policies: PolicySet, local: Sequence[str]
) -> Fragment:
    """A pod's own rules: its endpoint policy, and Hubble's log of what that policy let in (the
    ``security`` table, which runs after filter's)."""
    return {**endpoint_policy_rules(pod, peers, policies, local), **hubble_flow_rules()}


def content_key(*values: object) -> bytes:
    """A digest of ``values`` pickled: equal for equal content (unequal bytes for equal content
    only cost a render; equal bytes always unpickle to equal values)."""
    return hashlib.sha256(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)).digest()


class CiliumPods:
    """Brings each pod of a Cilium lab to its node's socket LB and its own policy."""

    def __init__(self, rules_dir: Path) -> None:
        self.rules_dir = rules_dir
        self.policies: dict[str, tuple[bytes, bytes, Fragment]] = {}
        """Per pod namespace, its policy fragment and the keys of what it was rendered from."""
        self.peers: dict[tuple[bytes, str], tuple[bytes, bytes]] = {}
        """Per policy (its content key) and direction, the key of the endpoints it was matched
        against and the key of those its peers select."""

    def peers_key(
        self, policy: bytes, direction: str, every: bytes, read: Callable[[], object]
    ) -> bytes:
        """The key of the endpoints one policy's peers select in ``direction`` (``read()``
        lists them), found again only when the endpoints (``every``, their key) changed."""
        cached = self.peers.get((policy, direction))
        if cached is not None and cached[0] == every:
            return cached[1]
        key = content_key(read())
        self.peers[(policy, direction)] = (every, key)
        return key

    def policy(
        self, netns: str, coarse: bytes, fine: Callable[[], bytes], render: Callable[[], Fragment]
    ) -> Fragment:
        """A pod's policy fragment, reused while ``coarse`` (the key of all it could depend on)
        is unchanged, else while ``fine()`` (the key of what it does depend on) is; otherwise
        ``render()``ed again."""
        cached = self.policies.get(netns)
        if cached is not None and cached[0] == coarse:
            return cached[2]
        key = fine()
        if cached is not None and cached[1] == key:
            self.policies[netns] = (coarse, key, cached[2])
            return cached[2]
        fragment = render()
        self.policies[netns] = (coarse, key, fragment)
        return fragment

    def render(
        self, view: StoreView, node: NodeNet, pods: Mapping[str, PodNet]
    ) -> dict[str, Fragment]:
        """The endpoint policy of each pod of ``node`` in ``pods``, by namespace; a pod's is
        rendered again only when what it depends on changed: the endpoint, the policies
        isolating it, the endpoints their peers select, the namespace labels (what every node
        derives alike is derived once per ``view``)."""
        every = view.pods()
        peers = view.derived("cilium peers", lambda: [endpoint(pod) for pod in every])
        by_key = {ref_of(pod): (pod, me) for pod, me in zip(every, peers, strict=True)}
        policies = view.derived(
            "cilium policies",
            lambda: policy_set(
                view.all("Namespace"),
                view.all("NetworkPolicy"),
                view.all("CiliumNetworkPolicy"),
            ),
        )
        all_key = view.derived("cilium peers key", lambda: content_key(peers))
        self.peers = {k: v for k, v in self.peers.items() if v[0] == all_key}  # the rest: stale
        labels_key = view.derived(
            "cilium namespace labels key", lambda: content_key(policies.namespace_labels)
        )
        documents = [view.all(k) for k in ("Namespace", "NetworkPolicy", "CiliumNetworkPolicy")]
        world = view.derived("cilium policy inputs key", lambda: content_key(all_key, documents))
        local = (node.ip, cilium_host_ip(node.pod_cidr))

        def depends(me: Endpoint) -> bytes:
            isolating = [
                (direction, policy)
                for direction in (INGRESS, EGRESS)
                for policy in policies.selecting(me, direction)
            ]
            read = [
                self.peers_key(
                    content_key(policy),
                    direction,
                    all_key,
                    partial(peers_read, policy, direction, peers, policies),
                )
                for direction, policy in isolating
            ]
            return content_key(me, isolating, read, labels_key, local)

        out: dict[str, Fragment] = {}
        for key, net in pods.items():
            if net.node != node.name or net.host_network or key not in by_key:
                continue
            pod, me = by_key[key]
            out[net.netns] = self.policy(
                net.netns,
                content_key(world, key, local),
                partial(depends, me),
                partial(pod_policy, pod, peers, policies, local),
            )
        return out

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
