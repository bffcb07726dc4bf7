"""What one lab's policy renders keep from one pass to the next, so a change re-renders only the
Felix chains whose inputs changed (issue 18).

Felix recomputes a policy's chain only when the policy or the selectors it names change, and an
endpoint's chain only when the policies selecting it or its profiles do (felix/calc
``PolicyResolver``, felix/rules/endpoints.go ``WorkloadEndpointToIptablesChains``). Here:

* policies and pods are parsed again only when their uid or resourceVersion changed (the store
  bumps the version on every change and gives a new object a new uid, as the API server does);
* a written policy chain is kept by what it is written from: the parsed policy, its direction,
  whether ipsets are used, the outside ranges, and (without ipsets) the addresses of the pods its
  selector peers pick;
* a workload chain (``cali-tw-``/``cali-fw-``) is kept by its name and the chains it jumps to,
  the isolating policies' and the profiles', which are all its rules read;
* a node's whole render is reused while its workload endpoints (the same parses, interfaces
  and profiles) and the policies of their namespaces (the same parses) are, with ipsets and
  no named port among those policies: only its ipsets' members are found again.

Kept values are reused only by the lab that rendered them, and what a pass did not use is
forgotten at the end of the next one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from labkit.model.netpol.endpoints import Endpoint, endpoint
from labkit.model.netpol.policies import Peer, Policy, parse_policy
from labkit.model.objects import stamp_of
from labkit.sandbox.iptables import Chains

if TYPE_CHECKING:
    from labkit.sandbox.policylines import WrittenChain

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Values by key, kept while passes use them: what one pass did not use is dropped when the
    next pass ends (:meth:`turn` starts a pass)."""

    def __init__(self) -> None:
        self._now: dict[K, V] = {}
        self._before: dict[K, V] = {}
        self.made = 0
        """How many values were made rather than reused: what tests count."""

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for ``key``, else ``make()``, kept from now on."""
        found = self._now.get(key)
        if found is None:
            found = self._before.pop(key, None)
            if found is None:
                found = make()
                self.made += 1
            self._now[key] = found
        return found

    def turn(self) -> None:
        """Start a pass: values the last pass did not use are dropped."""
        self._before, self._now = self._now, {}

    def keep(self, keys: Iterable[K]) -> None:
        """Count these keys' values as used by this pass (a reused render still holds them)."""
        for key in keys:
            found = self._before.pop(key, None)
            if found is not None:
                self._now[key] = found


class _Parsed(Generic[V]):
    """Each API object parsed once per (uid, resourceVersion); an object without both is parsed
    on every pass."""

    def __init__(self, parse: Callable[[Any], V]) -> None:
        self._parse = parse
        self._kept: Recent[tuple[str, str], V] = Recent()

    def __call__(self, obj: Any) -> V:
        stamp = stamp_of(obj)
        if stamp is None:
            return self._parse(obj)
        return self._kept.get(stamp, lambda: self._parse(obj))

    def turn(self) -> None:
        self._kept.turn()


class NodeRender(NamedTuple):
    """A node's last render and what it was rendered from: its workload endpoints and the
    policies of their namespaces (compared by identity: the parses), the rest (compared by
    value), and the keys of the kept chains it used."""

    endpoints: tuple[Endpoint, ...]
    policies: tuple[Policy, ...]
    values: tuple[object, ...]
    chains: Chains
    set_peers: dict[str, tuple[Peer, str]]
    workload_keys: tuple[tuple[object, ...], ...]
    chain_keys: tuple[tuple[object, ...], ...]

    def rendered_from(
        self,
        endpoints: Sequence[Endpoint],
        policies: Sequence[Policy],
        values: tuple[object, ...],
    ) -> bool:
        """Whether this render came from these very inputs."""
        return (
            self.values == values
            and len(self.endpoints) == len(endpoints)
            and len(self.policies) == len(policies)
            and all(a is b for a, b in zip(self.endpoints, endpoints, strict=True))
            and all(a is b for a, b in zip(self.policies, policies, strict=True))
        )


class PolicyCache:
    """One lab's parsed policies and pods and its written policy and workload chains, kept
    across passes (a pass: one :class:`labkit.sandbox.policyrules.PolicyInputs`)."""

    def __init__(self) -> None:
        self.policy: _Parsed[Policy] = _Parsed(parse_policy)
        """A NetworkPolicy parsed (PolicyError if it is not valid)."""
        self.endpoint: _Parsed[Endpoint] = _Parsed(endpoint)
        """A pod as a policy endpoint (PolicyError if it is not valid)."""
        self.chains: Recent[tuple[object, ...], WrittenChain] = Recent()
        """Policy chains by what they are written from (``PolicyChains.chain``)."""
        self.workloads: Recent[tuple[object, ...], tuple[str, ...]] = Recent()
        """Workload chains' ``-A`` lines by their name and the chains they jump to."""
        self.nodes: dict[str, NodeRender] = {}
        """Each node's last render that may be reused."""
        self.node_renders = 0
        """How many node renders were not reused: what tests count."""

    def turn(self) -> None:
        """Start a pass: what the last pass did not use is dropped."""
        for kept in (self.policy, self.endpoint, self.chains, self.workloads):
            kept.turn()
