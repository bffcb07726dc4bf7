"""Loading each Cilium pod's own rules: its node's socket LB, shared, and its endpoint policy.

Every pod of a Cilium lab holds the Service translation (``ciliumlb``) and its own policy chains
(``ciliumpolicy``) in its namespace. A Service change used to compose and diff each pod's whole
ruleset and rewrite ``CILIUM_SOCK_LB`` in every pod (issue 18). Here the socket LB's change is
computed once per node (:func:`labkit.sandbox.ciliumlb.socket_lb_delta`) and the same small
input goes to each pod holding the node's previous socket LB; a pod's policy part is diffed
alone, and only where it changed (rendered again only when the endpoint, the policies isolating
it, or the endpoints their peers select changed: :mod:`labkit.sandbox.ciliumdeps` keeps them
from one change to the next); a pod with nothing to change is not touched. The loads, one short
``iptables-restore`` each, run on one pool of threads kept for the process.

A record per pod (``rules/<pod netns>``) says what it holds: the digest of the socket LB text it
was loaded with and its policy text; per node, ``rules/<node netns>.socklb`` keeps the socket LB
text its pods were last brought to. A pod whose record is missing (new, or a load that failed)
or names another socket LB is loaded whole, as after a crash.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from labkit.model.netpol.endpoints import Endpoint
from labkit.model.netpol.verdicts import PolicySet
from labkit.sandbox import iptables, rulediff
from labkit.sandbox.ciliumdeps import PolicyDeps
from labkit.sandbox.ciliumlb import PortCache, socket_lb_delta
from labkit.sandbox.ciliumpolicy import endpoint_policy_rules, policy_set
from labkit.sandbox.fabric import NodeNet, PodNet
from labkit.sandbox.fabric_cilium import cilium_host_ip
from labkit.sandbox.fragment_cache import FragmentCache
from labkit.sandbox.iptables import Chains, Fragment, Ruleset
from labkit.sandbox.nflog import hubble_flow_rules

if TYPE_CHECKING:
    from labkit.sandbox.dataplane import StoreView

RECORD_HEAD = "# socket-lb "
LOAD_THREADS = 32
"""Pods loaded at once: each load is one short ``iptables-restore`` process, about 1.4 ms of CPU
but 14 ms of wall, most of it waiting in the kernel's commit; more loads in flight overlap those
waits (300 pods, 2 CPUs: one more pod 0.8 s with 8, 0.53 s with 32)."""


class Held(NamedTuple):
    """What a pod's namespace holds, by its record: the socket LB's digest and the policy text."""

    lb_digest: str
    policy: str


class Load(NamedTuple):
    """One ``iptables-restore`` for a pod: the input, and whether it is a partial one."""

    text: str
    noflush: bool


class PodPolicy(NamedTuple):
    """A pod's own rules (:func:`pod_policy`), and their text as its record keeps it."""

    fragment: Fragment
    text: str


class NodeLB(NamedTuple):
    """A node's socket LB as its pods should hold it, and how to get there from the last one."""

    text: str
    rules: Ruleset
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


def node_lb(lb: Fragment | Chains, previous: str | None, last: NodeLB | None = None) -> NodeLB:
    """The socket LB of a node (its text is what a whole load starts with), and the delta from
    ``previous``, the text its pods were last brought to (read from ``last``, the node's last
    socket LB, when that is its text, instead of parsed again)."""
    rules = iptables.compose_ruleset([lb])
    text = iptables.restore_input(rules)
    delta = None
    if previous is not None and previous != text:
        before = last.rules if last is not None and last.text == previous else None
        delta = socket_lb_delta(before or rulediff.parse_restore(previous), rules)
    return NodeLB(
        text, rules, digest(text), digest(previous) if previous is not None else None, delta
    )


def pod_load(
    held: Held | None, lb: NodeLB, lb_fragment: Fragment | Chains, policy: PodPolicy
) -> Load | None:
    """What to load into a pod holding ``held`` (None: unknown) so that it holds the node's
    socket LB and ``policy``: nothing (None), a partial load (the socket LB's delta and the
    policy chains that changed), or, when the pod cannot be brought there piece by piece, the
    whole ruleset."""
    if held is None or (
        held.lb_digest != lb.digest and (held.lb_digest != lb.previous_digest or lb.delta is None)
    ):
        return Load(iptables.compose([lb_fragment, policy.fragment]), noflush=False)
    parts = [lb.delta or ""] if held.lb_digest != lb.digest else []
    if held.policy != policy.text:
        parts.append(
            rulediff.partial_restore(
                rulediff.parse_restore(held.policy), rulediff.parse_restore(policy.text)
            )
        )
    text = "".join(parts)
    return Load(text, noflush=True) if text else None


def pod_policy(
    pod: Mapping[str, Any], peers: Sequence[Endpoint], policies: PolicySet, local: Sequence[str]
) -> PodPolicy:
    """A pod's own rules: its endpoint policy, and Hubble's log of what that policy let in (the
    ``security`` table, which runs after filter's)."""
    fragment = {**endpoint_policy_rules(pod, peers, policies, local), **hubble_flow_rules()}
    return PodPolicy(fragment, iptables.compose([fragment]))


@functools.cache
def _loader(pid: int) -> ThreadPoolExecutor:
    """The threads pods are loaded on, started once per process (starting them for every sync
    cost more than some loads); by process id, as a forked child has none of its parent's."""
    return ThreadPoolExecutor(max_workers=LOAD_THREADS, thread_name_prefix=f"cilium-load-{pid}")


class CiliumPods:
    """Brings each pod of a Cilium lab to its node's socket LB and its own policy."""

    def __init__(self, rules_dir: Path) -> None:
        self.rules_dir = rules_dir
        self.deps = PolicyDeps()
        """Each pod's endpoint and what its policy depends on, kept across changes."""
        self.parsed = FragmentCache()
        """The cluster's policies, parsed again only when a Namespace or a policy changed."""
        self.policies: dict[str, tuple[tuple[object, ...], PodPolicy]] = {}
        """Per pod namespace, its policy and the key of what it was rendered from."""
        self.lbs: dict[str, NodeLB] = {}
        """Per node namespace, the socket LB its pods were last brought to by this process."""
        self.lb_ports = PortCache()
        """Each node's socket LB per Service port, rendered again only where the port changed."""

    def render(
        self, view: StoreView, node: NodeNet, pods: Mapping[str, PodNet]
    ) -> dict[str, PodPolicy]:
        """The endpoint policy of each pod of ``node`` in ``pods``, by namespace; a pod's is
        rendered again only when what it depends on changed (:meth:`PolicyDeps.key`) or its
        node's addresses did."""
        policies = view.derived(
            "cilium policies",
            lambda: self.parsed.render(
                "cluster",
                policy_set,
                view.all("Namespace"),
                view.all("NetworkPolicy"),
                view.all("CiliumNetworkPolicy"),
            ),
        )
        self.deps.update(view.pods(), policies)
        local = (node.ip, cilium_host_ip(node.pod_cidr))
        out: dict[str, PodPolicy] = {}
        for key, net in pods.items():
            if net.node != node.name or net.host_network or key not in self.deps.pods:
                continue
            depends = (self.deps.key(key), local)
            cached = self.policies.get(net.netns)
            if cached is None or cached[0] != depends:
                pod = self.deps.pods[key][0]
                cached = (depends, pod_policy(pod, self.deps.endpoints, policies, local))
                self.policies[net.netns] = cached
            out[net.netns] = cached[1]
        return out

    def sync(
        self,
        node_netns: str,
        lb: Fragment | Chains,
        policies: Mapping[str, PodPolicy],
        full: bool,
    ) -> list[tuple[str, Load]]:
        """Load into each pod namespace of ``policies`` (a node's pods) what it lacks of ``lb``
        and its policy; with ``full``, everything, whatever the records say. Returns the loads
        made, by pod namespace."""
        node_record = self.rules_dir / f"{node_netns}.socklb"
        previous = None if full else _read(node_record)
        target = node_lb(lb, previous, self.lbs.pop(node_netns, None))
        loads: list[tuple[str, Load, Held]] = []
        for netns, policy in policies.items():
            record = None if full else _read(self.rules_dir / netns)
            held = parse_record(record) if record is not None else None
            load = pod_load(held, target, lb, policy)
            if load is not None:
                loads.append((netns, load, Held(target.digest, policy.text)))
        pool = _loader(os.getpid())
        jobs = [pool.submit(self._load, *job) for job in loads]
        wait(jobs)  # every load ends before a failure is raised: no record is written after it
        for job in jobs:
            job.result()
        if previous != target.text:
            _write(node_record, target.text)
        self.lbs[node_netns] = target
        return [(netns, load) for netns, load, _ in loads]

    def _load(self, netns: str, load: Load, held: Held) -> None:
        record = self.rules_dir / netns
        record.unlink(missing_ok=True)  # unknown until this load succeeds
        iptables.restore(netns, load.text, noflush=load.noflush)
        _write(record, record_text(held))


def _read(path: Path) -> str | None:
    """A record's text, None when there is none."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write(path: Path, text: str) -> None:
    """Replace a record in one step (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
