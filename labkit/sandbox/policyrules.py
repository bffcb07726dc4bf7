"""NetworkPolicy enforcement for one sandbox node, rendered as Felix renders it (iptables mode).

Pure: objects in, filter-table chains out (:class:`labkit.sandbox.iptables.Chains`, or as
``iptables-restore`` lines; the caller composes them into the node's ruleset). Rules are
written in Felix's own syntax (``--jump``, ``--source``, ``-m multiport --destination-ports``)
and each carries ``-m comment --comment "cali:<hash>"`` computed with Felix's rule-hash scheme
(:mod:`labkit.sandbox.felix`), so ``iptables-save`` on a node reads like a real Calico node:

* ``FORWARD -> cali-FORWARD`` sends packets leaving a local pod (``--in-interface cali+``) to
  ``cali-from-wl-dispatch`` and packets entering one to ``cali-to-wl-dispatch``; those go by
  interface to ``cali-fw-<iface>`` (egress) and ``cali-tw-<iface>`` (ingress). Felix ends
  them with "Unknown interface" DROP; here an interface the rules do not know yet (a pod wired
  before the rules reload, whose readiness the node probes meanwhile) falls through.
* ``INPUT -> cali-INPUT`` sends packets from a local pod to the node itself to
  ``cali-wl-to-host``: the pod's egress chain first, then the operator's
  DefaultEndpointToHostAction, ACCEPT. An egress-isolated pod cannot reach its own node's
  host-network ports. ``OUTPUT -> cali-OUTPUT`` returns for packets to local pods: like Felix,
  the host is not policed on its way to a pod.
* Every local pod has both workload chains: conntrack (established ACCEPT, invalid DROP), clear
  the accept and pass marks, then the tier ``default`` when policies isolate the pod in that
  direction (each ``cali-pi-``/``cali-po-`` policy chain, RETURN once one set the accept mark,
  and "End of tier default. Drop if no policies passed packet"), then the pod's profiles
  ``kns.<namespace>`` (allow all, as Calico's Kubernetes profiles do) and
  ``ksa.<namespace>.<serviceaccount>`` (no rules), and "Drop if no profiles matched".
* Policy chains (``cali-pi-``/``cali-po-`` + ``knp/<ns>/<name>``, hashed when too long) hold one
  rule per (peer, port) that sets the accept mark, then a RETURN per NetworkPolicy rule; the
  first rule carries "KubernetesNetworkPolicy <ns>/<name> <direction>". Pod peers are inline
  ``--source``/``--destination <podIP>/32`` (selectors resolved now; the runtime re-renders on
  every change); an ``ipBlock`` is its CIDR, with a ``cali-ex-<hash>`` sub-chain (the
  sandbox's own) that RETURNs the ``except`` ranges; ports are ``-m multiport
  --destination-ports``; named ports are resolved per destination pod. Policy chains are
  written by :mod:`labkit.sandbox.policylines`, once per pass for every node; with a lab's
  :class:`labkit.sandbox.policycache.PolicyCache`, policy and workload chains are written again
  only when what they are written from changed (issue 18).

Semantics are exactly :mod:`labkit.model.netpol`'s (tests compare the two). IPv4 only: IPv6
addresses and CIDRs are left out, with a comment saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from labkit.errors import LabError
from labkit.model.netpol.endpoints import Endpoint
from labkit.model.netpol.policies import EGRESS, INGRESS, Policy, PolicyError
from labkit.model.netpol.selection import Selection
from labkit.model.netpol.verdicts import PolicySet
from labkit.model.objects import pod_phase
from labkit.sandbox import felix
from labkit.sandbox.iptables import Chains, chain_names
from labkit.sandbox.policycache import PolicyCache
from labkit.sandbox.policylines import (
    IF_ACCEPTED,
    KINDS,
    SET_ACCEPT,
    PolicyChains,
    comment,
    join,
    outside_cidr,
)

CLEAR_ACCEPT_AND_PASS = "--jump MARK --set-mark 0/0x30000"
CLEAR_PASS = "--jump MARK --set-mark 0/0x20000"
IF_NOT_PASSED = "-m mark --mark 0/0x20000"
"""Felix's default marks: accept 0x10000, pass 0x20000 (felix/config ``IptablesMarkMask``)."""
TIER = "default"
MAX_CHAIN = felix.MAX_CHAIN
_IFACE = re.compile(r"^cali[A-Za-z0-9._-]{1,11}$")


def render_policy_rules(
    node_name: str,
    pods: Sequence[Mapping[str, Any]],
    namespaces: Sequence[Mapping[str, Any]],
    policies: Sequence[Mapping[str, Any]],
    iface_of: Mapping[tuple[str, str], str],
    outside_cidrs: Iterable[str] = (),
    use_ipsets: bool = False,
    shared: Callable[[], PolicyInputs] | None = None,
) -> PolicyRules:
    """Filter-table lines enforcing ``policies`` for the pods scheduled on ``node_name``, and
    the ipsets they match (none unless ``use_ipsets``).

    ``iface_of[(namespace, name)]`` is the node-side veth of each local pod (``cali...``).
    ``outside_cidrs`` are the lab's address ranges outside the cluster; they only annotate the
    ipBlock rules that cover them. ``shared`` gives these same pods, namespaces and policies
    parsed, for a caller rendering every node of a pass from one parse.
    """
    try:
        inputs = shared() if shared is not None else PolicyInputs(pods, namespaces, policies)
        renderer = _Renderer(node_name, inputs, iface_of, outside_cidrs, use_ipsets)
        return PolicyRules(renderer.chains_read(), renderer.sets)
    except PolicyError as err:
        raise LabError(err.what, err.fix) from None


def policy_chain(policy_ref: str, direction: str) -> str:
    """Felix's chain for one NetworkPolicy (``namespace/name``) in one direction: ``cali-pi-`` or
    ``cali-po-`` and the policy's ID, hashed when too long."""
    namespace, _, name = policy_ref.partition("/")
    return felix.policy_chain(namespace, name, direction == INGRESS)


def workload_chain(iface: str, direction: str) -> str:
    """``cali-tw-<iface>`` (to the workload: ingress) or ``cali-fw-<iface>`` (from it: egress)."""
    return ("cali-tw-" if direction == INGRESS else "cali-fw-") + iface


def pod_profiles(pod: Mapping[str, Any]) -> tuple[str, str]:
    """The Calico profiles of a pod, as its Kubernetes datastore driver names them: its
    namespace ``kns.<ns>`` and its ServiceAccount ``ksa.<ns>.<sa>``."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    return f"kns.{namespace}", f"ksa.{namespace}.{account}"


class PolicyRules(NamedTuple):
    """A node's policy rules as chains (the filter table's), and the members of each ipset they
    match (``cali40s:<id>`` -> addresses)."""

    chains: Chains
    ipsets: dict[str, list[str]]

    @property
    def tables(self) -> dict[str, list[str]]:
        """The rules as lines: ``{"filter": [declarations..., -A rules (hooks first)...]}``."""
        out = [f":{name} - [0:0]" for name in self.chains.declared["filter"]]
        for lines in self.chains.rules["filter"].values():
            out.extend(lines)
        return {"filter": out}


def _wired_at(pod: Mapping[str, Any], ep: Endpoint) -> str:
    """The node the pod is a workload endpoint of ("" for none): its own namespace, wired by the
    CNI (an address) and not finished, as Felix only programs endpoints the CNI plugin created."""
    if not ep.subject or ep.ip is None or pod_phase(pod) in ("Succeeded", "Failed"):
        return ""
    return str((pod.get("spec") or {}).get("nodeName") or "")


class PolicyInputs:
    """Pods, namespaces and policies parsed once, with their selector index, for the render of
    every node (as one Felix calculation graph feeds all of a node's chains; issue 18). With a
    lab's ``cache``, one pass of it: parses and chains are reused from earlier passes while what
    they come from is the same."""

    def __init__(
        self,
        pods: Sequence[Mapping[str, Any]],
        namespaces: Sequence[Mapping[str, Any]],
        policies: Sequence[Mapping[str, Any]],
        cache: PolicyCache | None = None,
    ) -> None:
        self.cache = cache if cache is not None else PolicyCache()
        self.cache.turn()
        self.ps = PolicySet(namespaces, [self.cache.policy(doc) for doc in policies])
        self.pods = [(self.cache.endpoint(pod), pod) for pod in pods]
        self.eps = sorted((ep for ep, _ in self.pods), key=lambda e: e.sort_key)
        self.wired: dict[str, list[tuple[Endpoint, Mapping[str, Any]]]] = {}
        """The workload endpoints of each node, with their pods."""
        for ep, pod in self.pods:
            if node := _wired_at(pod, ep):
                self.wired.setdefault(node, []).append((ep, pod))
        labels = [e.label for e in self.eps]
        if len(set(labels)) != len(labels):
            dup = next(label for label in labels if labels.count(label) > 1)
            raise LabError(
                f"Pod {dup} appears twice in the pods given to the policy renderer.",
                "Pass each pod once.",
            )
        self.selection = Selection(self.ps, self.eps)
        self.chains = PolicyChains(self.selection, self.eps, self.cache.chains)
        """Each policy's chain, written once for every node of the pass."""


class _Renderer:
    """Collects chains for one node, then prints them in a fixed order."""

    def __init__(
        self,
        node_name: str,
        inputs: PolicyInputs,
        iface_of: Mapping[tuple[str, str], str],
        outside_cidrs: Iterable[str],
        use_ipsets: bool,
    ):
        if not node_name:
            raise LabError(
                "No node name was given to the policy renderer.",
                "Pass the node whose pods to enforce.",
            )
        self.node = node_name
        self.outside = [outside_cidr(c) for c in outside_cidrs]
        self.eps = inputs.eps
        self.profiles: dict[str, tuple[str, str]] = {}
        local: list[Endpoint] = []
        for ep, pod in inputs.wired.get(node_name, []):
            local.append(ep)
            self.profiles[ep.label] = pod_profiles(pod)
        self.iface: dict[str, str] = {}
        seen: dict[str, str] = {}
        for ep in local:
            name = iface_of.get((ep.namespace or "", ep.name or ""))
            if not name:
                raise LabError(
                    f"Pod {ep.label} runs on {node_name} but no veth interface is known for it.",
                    "Pass iface_of[(namespace, name)] for every pod on the node "
                    "(e.g. cali1a2b3c4d5e6).",
                )
            if not _IFACE.match(name):
                raise LabError(
                    f"Interface {name!r} of pod {ep.label} is not a Calico-style name.",
                    "Name node-side veths cali<up to 11 letters or digits> "
                    "(15 characters at most).",
                )
            if name in seen:
                raise LabError(
                    f"Pods {seen[name]} and {ep.label} share the interface {name}.",
                    "Give every pod its own veth.",
                )
            seen[name] = ep.label
            self.iface[ep.label] = name
        # Felix orders dispatch entries by interface name.
        self.local = sorted(local, key=lambda e: self.iface[e.label])
        self.selection = inputs.selection
        self.policy_chains = inputs.chains
        self.workloads = inputs.cache.workloads
        self.chains: dict[str, tuple[str, ...]] = {}
        """Each chain's ``-A`` lines, as Felix renders them (``cali:`` hashes first)."""
        self.profile_names: dict[tuple[str, str], str] = {}
        """Each profile's chain per direction, once declared."""
        self.use_ipsets = use_ipsets
        self.sets: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ output

    def chains_read(self) -> Chains:
        """The chains declared and their rules (the hooks first), in a fixed order."""
        dispatch: dict[str, list[str]] = {"cali-from-wl-dispatch": [], "cali-to-wl-dispatch": []}
        workload: list[str] = []
        for ep in self.local:
            label = ep.label
            iface, profiles = self.iface[label], self.profiles[label]
            for direction, chains, flag in (
                (EGRESS, "cali-from-wl-dispatch", "--in-interface"),
                (INGRESS, "cali-to-wl-dispatch", "--out-interface"),
            ):
                chain = workload_chain(iface, direction)
                dispatch[chains].append(f"{flag} {iface} --goto {chain}")
                self.chains[chain] = self._workload_chain(ep, direction, chain, profiles)
                workload.append(chain)
        bodies = {
            "cali-FORWARD": [
                "--in-interface cali+ --jump cali-from-wl-dispatch",
                "--out-interface cali+ --jump cali-to-wl-dispatch",
            ],
            "cali-INPUT": ["--in-interface cali+ --goto cali-wl-to-host"],
            "cali-OUTPUT": [
                f"{IF_ACCEPTED} --jump ACCEPT",
                "--out-interface cali+ --jump RETURN",
            ],
            **dispatch,
            "cali-wl-to-host": [
                "--jump cali-from-wl-dispatch",
                join(comment("Configured DefaultEndpointToHostAction"), "--jump ACCEPT"),
            ],
        }
        base = list(bodies)
        for name, lines in bodies.items():
            self.chains[name] = felix.render_chain(name, lines)
        policy_chains = sorted(
            name for name in self.chains if name.startswith(("cali-pi-", "cali-po-"))
        )
        profile_chains = sorted(
            name for name in self.chains if name.startswith(("cali-pri-", "cali-pro-"))
        )
        except_chains = sorted(name for name in self.chains if name.startswith("cali-ex-"))
        order = base + sorted(workload) + policy_chains + profile_chains + except_chains
        for name in order:
            assert len(name) <= MAX_CHAIN, name
        rules = {
            hook: felix.render_chain(hook, [f"--jump cali-{hook}"])
            for hook in ("INPUT", "FORWARD", "OUTPUT")
        }
        for name in order:
            rules[name] = self.chains[name]
        return Chains(
            {"filter": dict.fromkeys(order, "-")},
            {"filter": rules},
            {"filter": chain_names(rules)},
        )

    # ------------------------------------------------------------------ workload chains

    def _workload_chain(
        self, ep: Endpoint, direction: str, chain: str, profiles: tuple[str, str]
    ) -> tuple[str, ...]:
        """Felix's endpoint chain (felix/rules/endpoints.go ``endpointIptablesChain``), its
        lines kept by what they read: its name and the policy and profile chains it jumps to."""
        policies = tuple(
            self._policy_chain(policy, direction)
            for policy in self.selection.selecting(ep, direction)
        )
        jumps = (
            self._profile_chain(profiles[0], direction),
            self._profile_chain(profiles[1], direction),
        )
        return self.workloads.get(
            (chain, policies, jumps),
            lambda: felix.render_chain(chain, _workload_rules(policies, jumps)),
        )

    def _profile_chain(self, profile: str, direction: str) -> str:
        """A namespace profile allows everything (Calico's Kubernetes driver gives ``kns.*`` one
        allow rule per direction); a ServiceAccount profile only carries labels."""
        name = self.profile_names.get((profile, direction))
        if name is None:
            name = felix.profile_chain(profile, direction == INGRESS)
            self.profile_names[(profile, direction)] = name
            if name not in self.chains:
                note = comment(f"Profile {profile} {KINDS[direction]}")
                if profile.startswith("kns."):
                    bodies = [join(note, SET_ACCEPT), f"{IF_ACCEPTED} --jump RETURN"]
                else:
                    bodies = [note]
                self.chains[name] = felix.render_chain(name, bodies)
        return name

    def _policy_chain(self, policy: Policy, direction: str) -> str:
        """The policy's chain in ``direction``, with the sub-chains and ipsets it needs."""
        written = self.policy_chains.chain(
            policy, direction, self.local, self.use_ipsets, self.outside, self.node
        )
        if written.name not in self.chains:
            self.chains[written.name] = written.lines
            for sub, lines in written.subchains.items():
                self.chains.setdefault(sub, lines)
            for set_name, peer in written.set_peers.items():
                self.sets[set_name] = self.policy_chains.set_members(
                    set_name, peer, policy.namespace
                )
        return written.name


def _workload_rules(policies: Sequence[str], profiles: Sequence[str]) -> list[str]:
    """A workload chain's rules: conntrack, the marks cleared, the tier's policy chains (when
    any isolates the pod) and then its profile chains."""
    rules = [
        "-m conntrack --ctstate RELATED,ESTABLISHED --jump ACCEPT",
        "-m conntrack --ctstate INVALID --jump DROP",
        CLEAR_ACCEPT_AND_PASS,
    ]
    if policies:
        rules.append(join(comment(f"Start of tier {TIER}"), CLEAR_PASS))
        for chain in policies:
            rules.append(f"{IF_NOT_PASSED} --jump {chain}")
            rules.append(join(comment("Return if policy accepted"), IF_ACCEPTED, "--jump RETURN"))
        rules.append(
            join(
                comment(f"End of tier {TIER}. Drop if no policies passed packet"),
                IF_NOT_PASSED,
                "--jump DROP",
            )
        )
    for chain in profiles:
        rules.append(f"--jump {chain}")
        rules.append(join(comment("Return if profile accepted"), IF_ACCEPTED, "--jump RETURN"))
    rules.append(join(comment("Drop if no profiles matched"), "--jump DROP"))
    return rules
