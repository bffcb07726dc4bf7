"""Which pods a policy's selectors pick, from pods indexed once by namespace and label.

Felix keeps, per selector, the set of workload endpoints it matches, and updates it as labels
change (felix/labelindex ``InheritIndex``), rather than testing every pod against every selector.
:class:`Selection` is the same answer for one pass: pods grouped by namespace and by each
``key=value`` label, a selector tested only against the pods its ``matchLabels`` leave, and each
peer's and each policy's pods found once. The answers are exactly :func:`peer_matches`' and
:meth:`PolicySet.selecting`'s (the unit tests compare them on random clusters).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.model.netpol.endpoints import Endpoint
from labkit.model.netpol.policies import Peer, Policy
from labkit.model.netpol.verdicts import PolicySet
from labkit.model.selectors import selector_matches


class Selection:
    """Selector answers over one set of pods and policies (build it again when either changes)."""

    def __init__(self, policies: PolicySet, endpoints: Iterable[Endpoint]) -> None:
        self.policies = policies
        self._by_namespace: dict[str, list[Endpoint]] = defaultdict(list)
        self._by_label: dict[tuple[str, str, str], list[Endpoint]] = defaultdict(list)
        for ep in endpoints:
            if not ep.subject:
                continue
            namespace = ep.namespace or ""
            self._by_namespace[namespace].append(ep)
            for key, value in ep.labels.items():
                self._by_label[(namespace, key, value)].append(ep)
        self._peers: dict[str, list[Endpoint]] = {}
        self._identities: dict[tuple[int, str], tuple[Peer, str]] = {}
        self._selecting: dict[tuple[str, str], dict[str, list[Policy]]] = {}

    def in_namespace(
        self, namespace: str, selector: Mapping[str, Any] | None
    ) -> Sequence[Endpoint]:
        """Pods of ``namespace`` (policy subjects: not hostNetwork) that ``selector`` picks
        (None or ``{}``: all of them)."""
        candidates = self._by_namespace.get(namespace, [])
        for key, value in ((selector or {}).get("matchLabels") or {}).items():
            labelled = self._by_label.get((namespace, key, str(value)), [])
            if len(labelled) < len(candidates):
                candidates = labelled
        if not selector:
            return candidates
        return [ep for ep in candidates if selector_matches(selector, ep.labels)]

    def peer_pods(self, peer: Peer, policy_namespace: str) -> list[Endpoint]:
        """Pods a selector peer of a policy in ``policy_namespace`` names (``peer_matches``), in
        namespace order as they were given; an ipBlock peer names none here."""
        if peer.ip_block is not None:
            return []
        key = self.identity(peer, policy_namespace)
        found = self._peers.get(key)
        if found is None:
            if peer.namespace_selector is None:
                namespaces = [policy_namespace]
            else:
                namespaces = [
                    ns
                    for ns in self._by_namespace
                    if selector_matches(
                        peer.namespace_selector, self.policies.labels_of_namespace(ns)
                    )
                ]
            found = [ep for ns in namespaces for ep in self.in_namespace(ns, peer.pod_selector)]
            self._peers[key] = found
        return found

    def identity(self, peer: Peer, policy_namespace: str) -> str:
        """A selector peer's selection as one string: the policy's namespace and the peer's
        selectors in canonical JSON (equal strings pick the same pods; Felix-style ipset names
        hash it). Remembered per peer object, which the memo keeps alive."""
        slot = (id(peer), policy_namespace)
        known = self._identities.get(slot)
        if known is None or known[0] is not peer:
            text = json.dumps(
                [policy_namespace, peer.namespace_selector, peer.pod_selector], sort_keys=True
            )
            known = (peer, text)
            self._identities[slot] = known
        return known[1]

    def selecting(self, ep: Endpoint, direction: str) -> tuple[Policy, ...]:
        """:meth:`PolicySet.selecting`: the policies isolating ``ep`` in ``direction``, in the
        policy set's order."""
        if not ep.subject:
            return ()
        namespace = ep.namespace or ""
        table = self._selecting.get((namespace, direction))
        if table is None:
            table = defaultdict(list)
            for policy in self.policies.in_namespace(namespace):
                if policy.affects(direction):
                    for picked in self.in_namespace(namespace, policy.pod_selector):
                        table[picked.label].append(policy)
            self._selecting[(namespace, direction)] = table
        return tuple(table.get(ep.label, ()))
