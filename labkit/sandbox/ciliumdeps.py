"""What each pod's Cilium policy chains depend on, kept from one change to the next (pure).

A pod's chains (:func:`labkit.sandbox.ciliumpolicy.endpoint_policy_rules`) follow from its
endpoint, the policies isolating it, the endpoints those policies' peers select, the namespaces'
labels and its node's addresses. Finding the isolating policies and the selected peers of every
pod again for every change cost O(pods x policies) selector matches (issue 18). Here they are
kept, and a change is matched only where it can matter, as Cilium's agent updates only the
endpoints a changed identity or policy touches (``pkg/policy`` SelectorCache: a new identity is
matched against every cached selector, a new selector against every identity): a changed
endpoint against the peers each policy selects, a changed policy against the endpoints of its
namespace. Every piece carries a generation, a number drawn afresh whenever it changes, so a
pod's :meth:`PolicyDeps.key` changes whenever something its chains follow from does.

Endpoints and policies are compared by content (a pod's endpoint is reused while its uid and
resourceVersion are unchanged); when the namespaces' labels change, or the endpoints or
policies that did not change come in another order, everything is found again.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.model.netpol.endpoints import Endpoint, endpoint
from labkit.model.netpol.policies import EGRESS, INGRESS, Policy
from labkit.model.netpol.verdicts import PolicySet, policy_selects
from labkit.model.objects import ref_of, stamp_of
from labkit.sandbox.ciliumpolicy import peer_selected, peer_selectors

DIRECTIONS = (INGRESS, EGRESS)
_generations = itertools.count(1)


@dataclass
class _Peers:
    """The endpoints one policy's peers select in one direction, by ``ns/name`` (``every``: all
    of them), and the generation of that selection."""

    every: bool
    members: set[str] = field(default_factory=set)
    generation: int = field(default_factory=lambda: next(_generations))


class PolicyDeps:
    """Every pod's endpoint, and what its policy chains depend on, for one cluster over time."""

    def __init__(self) -> None:
        self.pods: dict[str, tuple[Mapping[str, Any], Endpoint]] = {}
        """Per ``ns/name``, the pod and its endpoint."""
        self.endpoints: list[Endpoint] = []
        """Every pod's endpoint, in the order of the pods given."""
        self.policies = PolicySet((), ())
        self._seen: tuple[object, object] | None = None
        self._stamps: dict[str, tuple[str, str] | None] = {}
        self._endpoint_gen: dict[str, int] = {}
        self._policy_gen: dict[str, int] = {}
        self._isolating: dict[str, tuple[tuple[Policy, ...], ...]] = {}
        self._peers: dict[tuple[str, str], _Peers] = {}

    def update(self, pods: Sequence[Mapping[str, Any]], policies: PolicySet) -> None:
        """Take the cluster's pods and policies as they are now (nothing to do when they are
        the very objects of the last call)."""
        if self._seen is not None and self._seen[0] is pods and self._seen[1] is policies:
            return
        self._seen = (pods, policies)
        before, old_policies = self.pods, self.policies
        self.pods, self.endpoints, stamps = {}, [], {}
        for pod in pods:
            ref, stamp = ref_of(pod), stamp_of(pod)
            known = before.get(ref)
            if known is not None and stamp is not None and self._stamps.get(ref) == stamp:
                me = known[1]
            else:
                me = endpoint(pod)
                if known is not None and _same(known[1], me):
                    me = known[1]
            self.pods[ref], stamps[ref] = (pod, me), stamp
            self.endpoints.append(me)
        self._stamps, self.policies = stamps, policies
        changed = [r for r in before.keys() | self.pods.keys() if _moved(before, self.pods, r)]
        old = {p.ref: p for p in old_policies.policies}
        new = {p.ref: p for p in policies.policies}
        revised: list[str] = []
        if policies is not old_policies:
            revised = [r for r in old.keys() | new.keys() if old.get(r) != new.get(r)]
        if (
            old_policies.namespace_labels != policies.namespace_labels
            or _reordered(list(before), list(self.pods), changed)
            or _reordered(list(old), list(new), revised)
        ):
            self._endpoint_gen, self._policy_gen = {}, {}
            self._isolating, self._peers = {}, {}
            return
        for ref in changed:
            self._endpoint_gen.pop(ref, None)
            self._isolating.pop(ref, None)
        for ref in revised:
            self._policy_gen.pop(ref, None)
            for direction in DIRECTIONS:
                self._peers.pop((ref, direction), None)
            self._policy_revised(old.get(ref), new.get(ref))
        if changed:
            for (ref, direction), peers in self._peers.items():
                self._endpoints_changed(new[ref], direction, peers, changed)

    def key(self, ref: str) -> tuple[object, ...]:
        """What the policy chains of pod ``ref`` depend on, but its node's addresses: equal
        keys, equal chains."""
        isolating = self._isolating.get(ref)
        if isolating is None:
            me = self.pods[ref][1]
            isolating = tuple(self.policies.selecting(me, d) for d in DIRECTIONS)
            self._isolating[ref] = isolating
        if ref not in self._endpoint_gen:
            self._endpoint_gen[ref] = next(_generations)
        return (
            self._endpoint_gen[ref],
            tuple(
                tuple((p.ref, self._generation(p), self._selected(p, d).generation) for p in ps)
                for d, ps in zip(DIRECTIONS, isolating, strict=True)
            ),
        )

    def _generation(self, policy: Policy) -> int:
        if policy.ref not in self._policy_gen:
            self._policy_gen[policy.ref] = next(_generations)
        return self._policy_gen[policy.ref]

    def _selected(self, policy: Policy, direction: str) -> _Peers:
        """The endpoints ``policy``'s peers select in ``direction``, found once and kept."""
        found = self._peers.get((policy.ref, direction))
        if found is None:
            selectors = peer_selectors(policy, direction)
            found = _Peers(every=selectors is None)
            if selectors is not None:
                found.members = {
                    ref
                    for ref, (_, other) in self.pods.items()
                    if peer_selected(selectors, other, self.policies, policy.namespace)
                }
            self._peers[(policy.ref, direction)] = found
        return found

    def _policy_revised(self, old: Policy | None, new: Policy | None) -> None:
        """Forget the isolating policies of the endpoints a policy selected or selects now."""
        policy = new if new is not None else old
        assert policy is not None, "a revised policy is old, new or both"
        for ref, isolating in list(self._isolating.items()):
            me = self.pods[ref][1]
            if me.namespace != policy.namespace:
                continue
            held = old is not None and any(old.ref == p.ref for ps in isolating for p in ps)
            if held or (new is not None and policy_selects(new, me)):
                del self._isolating[ref]

    def _endpoints_changed(
        self, policy: Policy, direction: str, peers: _Peers, changed: Sequence[str]
    ) -> None:
        """Bring one kept selection up to the changed endpoints; a new generation when it, or
        an endpoint in it, changed."""
        if peers.every:
            peers.generation = next(_generations)
            return
        selectors = peer_selectors(policy, direction) or ()
        moved = False
        for ref in changed:
            now = ref in self.pods and peer_selected(
                selectors, self.pods[ref][1], self.policies, policy.namespace
            )
            if now or ref in peers.members:
                moved = True
                if now:
                    peers.members.add(ref)
                else:
                    peers.members.discard(ref)
        if moved:
            peers.generation = next(_generations)


def _same(a: Endpoint, b: Endpoint) -> bool:
    """Equal endpoints, labels included (``Endpoint`` equality leaves them out)."""
    return a is b or (a == b and a.labels == b.labels)


def _moved(
    before: Mapping[str, tuple[object, Endpoint]],
    after: Mapping[str, tuple[object, Endpoint]],
    ref: str,
) -> bool:
    """Whether pod ``ref`` came, went or changed its endpoint."""
    old, new = before.get(ref), after.get(ref)
    return old is None or new is None or not _same(old[1], new[1])


def _reordered(before: list[str], after: list[str], changed: Sequence[str]) -> bool:
    """Whether what did not change comes in another order (True: rules would too)."""
    skip = set(changed)
    return [r for r in before if r not in skip] != [r for r in after if r not in skip]
