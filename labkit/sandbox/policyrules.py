"""NetworkPolicy enforcement for one sandbox node, rendered as Calico-shaped iptables rules.

Pure: objects in, ``iptables-restore`` lines out (filter table only; the caller adds ``*filter``
and ``COMMIT`` and loads them into the node's namespace). The shape follows Calico's Felix so
``iptables-save`` on a node reads like a real Calico node:

* ``FORWARD -> cali-FORWARD``: accept packets of established flows, drop INVALID ones, then send
  packets leaving a local pod (``-i cali+``) to ``cali-from-wl-dispatch`` and packets entering
  one (``-o cali+``) to ``cali-to-wl-dispatch``; whatever comes back was allowed and is accepted.
* The dispatch chains jump by interface to ``cali-fw-<iface>`` (the pod's egress policies) and
  ``cali-tw-<iface>`` (its ingress policies). Only isolated pods get such a chain: a pod that
  no policy isolates falls through and is accepted, as in Kubernetes.
* A workload chain clears the accept mark, calls each policy chain ``cali-pi-<hash>`` (ingress)
  or ``cali-po-<hash>`` (egress), returns as soon as one set the mark, and ends in a commented
  DROP naming the isolating policies.
* Policy chains hold one rule per (peer, port): pod peers become ``-s``/``-d <podIP>/32``
  (selectors resolved now against the given pods; the runtime re-renders on every change),
  ``ipBlock`` becomes its CIDR with a ``cali-ex-<hash>`` sub-chain that RETURNs the ``except``
  ranges, ports become ``-p tcp -m tcp --dport N`` or ``-m multiport --dports a:b`` (endPort).
  Named ports are resolved per destination pod (``-d <podIP>/32 --dport <its number>``).

Semantics are exactly :mod:`labkit.model.netpol`'s (tests compare the two). IPv4 only: IPv6
addresses and CIDRs are left out, with a comment saying so.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.errors import LabError
from labkit.model.netpol.endpoints import Endpoint, endpoint
from labkit.model.netpol.policies import (
    EGRESS,
    INGRESS,
    IPBlock,
    IPNetwork,
    Peer,
    Policy,
    PolicyError,
    PortRule,
    Rule,
)
from labkit.model.netpol.verdicts import PolicySet, policy_selects
from labkit.model.objects import pod_phase

ACCEPT_MARK = "0x10000/0x10000"
CLEAR_ACCEPT_MARK = "0x0/0x10000"
MAX_CHAIN = 28
_IFACE = re.compile(r"^cali[A-Za-z0-9._-]{1,11}$")
_COMMENT_MAX = 255


def render_policy_rules(
    node_name: str,
    pods: Sequence[Mapping[str, Any]],
    namespaces: Sequence[Mapping[str, Any]],
    policies: Sequence[Mapping[str, Any]],
    iface_of: Mapping[tuple[str, str], str],
    outside_cidrs: Iterable[str] = (),
) -> dict[str, list[str]]:
    """Filter-table lines enforcing ``policies`` for the pods scheduled on ``node_name``.

    ``iface_of[(namespace, name)]`` is the node-side veth of each local pod (``cali...``).
    ``outside_cidrs`` are the lab's address ranges outside the cluster; they only annotate the
    ipBlock rules that cover them. Returns ``{"filter": [chain declarations..., -A rules...]}``.
    """
    try:
        return {
            "filter": _Renderer(
                node_name, pods, namespaces, policies, iface_of, outside_cidrs
            ).lines()
        }
    except PolicyError as err:
        raise LabError(err.what, err.fix) from None


def policy_chain(policy_ref: str, direction: str) -> str:
    """Calico-style chain name for one policy's rules in one direction (``cali-pi-`` or
    ``cali-po-``)."""
    return ("cali-pi-" if direction == INGRESS else "cali-po-") + _digest(policy_ref)


def workload_chain(iface: str, direction: str) -> str:
    """``cali-tw-<iface>`` (to the workload: ingress) or ``cali-fw-<iface>`` (from it: egress)."""
    return ("cali-tw-" if direction == INGRESS else "cali-fw-") + iface


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _comment(text: str) -> str:
    text = text.replace('"', "'").replace("\n", " ")
    if len(text) > _COMMENT_MAX:
        text = text[: _COMMENT_MAX - 3] + "..."
    return f'-m comment --comment "{text}"'


def _port_args(port: PortRule | None, number: int | None = None) -> str:
    """iptables matches for one ports entry (``number`` overrides it, for a resolved named port)."""
    if port is None:
        return ""
    proto = port.protocol.lower()
    if number is not None:
        return f"-p {proto} -m {proto} --dport {number}"
    if port.port is None:
        return f"-p {proto}"
    if port.end_port is not None:
        return f"-p {proto} -m multiport --dports {port.port}:{port.end_port}"
    return f"-p {proto} -m {proto} --dport {port.port}"


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class _Target:
    """One peer of a rule as rule lines are written for it: one selected pod, the ipBlock that is
    the rule's ``index``-th peer, or (neither) every address, for a rule without peers."""

    pod: Endpoint | None = None
    block: IPBlock | None = None
    index: int = 0


def _wired_here(pod: Mapping[str, Any], ep: Endpoint, node_name: str) -> bool:
    """Whether the pod is a workload endpoint of this node: its own namespace, wired by the CNI
    (an address) and not finished, as Felix only programs endpoints the CNI plugin created."""
    return (
        ep.subject
        and ep.ip is not None
        and pod_phase(pod) not in ("Succeeded", "Failed")
        and (pod.get("spec") or {}).get("nodeName") == node_name
    )


class _Renderer:
    """Collects chains for one node, then prints them in a fixed order."""

    def __init__(
        self,
        node_name: str,
        pods: Sequence[Mapping[str, Any]],
        namespaces: Sequence[Mapping[str, Any]],
        policies: Sequence[Mapping[str, Any]],
        iface_of: Mapping[tuple[str, str], str],
        outside_cidrs: Iterable[str],
    ):
        if not node_name:
            raise LabError(
                "No node name was given to the policy renderer.",
                "Pass the node whose pods to enforce.",
            )
        self.node = node_name
        self.ps = PolicySet(namespaces, policies)
        self.outside = [_outside_cidr(c) for c in outside_cidrs]
        self.eps: list[Endpoint] = []
        local: list[Endpoint] = []
        for pod in pods:
            ep = endpoint(pod)
            self.eps.append(ep)
            if _wired_here(pod, ep, node_name):
                local.append(ep)
        self.eps.sort(key=lambda e: e.sort_key)
        labels = [e.label for e in self.eps]
        if len(set(labels)) != len(labels):
            dup = next(label for label in labels if labels.count(label) > 1)
            raise LabError(
                f"Pod {dup} appears twice in the pods given to the policy renderer.",
                "Pass each pod once.",
            )
        self.local = sorted(local, key=lambda e: e.sort_key)
        self.iface: dict[str, str] = {}
        seen: dict[str, str] = {}
        for ep in self.local:
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
        self.chains: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ output

    def lines(self) -> list[str]:
        """Chain declarations, the FORWARD hook, then every chain's rules, in a fixed order."""
        base = ["cali-FORWARD", "cali-from-wl-dispatch", "cali-to-wl-dispatch"]
        for name in base:
            self.chains[name] = []
        self.chains["cali-FORWARD"] = [
            _join(
                _comment("cali: accept packets of flows already allowed"),
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            ),
            _join(
                _comment("cali: drop packets conntrack cannot place"),
                "-m conntrack --ctstate INVALID -j DROP",
            ),
            "-i cali+ -j cali-from-wl-dispatch",
            "-o cali+ -j cali-to-wl-dispatch",
        ]
        # Like Felix, allowed packets only carry the accept mark out of cali-FORWARD: the rest of
        # FORWARD still applies, so kube-proxy can REJECT a connection to a Service without
        # endpoints.
        workload: list[str] = []
        for ep in self.local:
            iface = self.iface[ep.label]
            for direction, dispatch, flag in (
                (EGRESS, "cali-from-wl-dispatch", "-i"),
                (INGRESS, "cali-to-wl-dispatch", "-o"),
            ):
                isolating = self.ps.selecting(ep, direction)
                if not isolating:
                    continue
                chain = workload_chain(iface, direction)
                self.chains[dispatch].append(
                    _join(f"{flag} {iface}", _comment(ep.label), f"-g {chain}")
                )
                self.chains[chain] = self._workload_rules(ep, direction, isolating)
                workload.append(chain)
        policy_chains = sorted(
            name for name in self.chains if name.startswith(("cali-pi-", "cali-po-"))
        )
        except_chains = sorted(name for name in self.chains if name.startswith("cali-ex-"))
        order = base + sorted(workload) + policy_chains + except_chains
        for name in order:
            assert len(name) <= MAX_CHAIN, name
        out = [f":{name} - [0:0]" for name in order]
        out.append(
            _join(
                "-A FORWARD",
                _comment("cali: NetworkPolicy enforcement for local pods"),
                "-j cali-FORWARD",
            )
        )
        for name in order:
            out.extend(f"-A {name} {rule}" for rule in self.chains[name])
        return out

    # ------------------------------------------------------------------ workload chains

    def _workload_rules(
        self, ep: Endpoint, direction: str, isolating: tuple[Policy, ...]
    ) -> list[str]:
        rules = [
            _join(
                _comment(f"{ep.label}: start of {direction} policies"),
                f"-j MARK --set-xmark {CLEAR_ACCEPT_MARK}",
            )
        ]
        for policy in isolating:
            chain = self._policy_chain(policy, direction)
            rules.append(_join(_comment(f"policy {policy.ref}"), f"-j {chain}"))
            rules.append(
                _join(
                    f"-m mark --mark {ACCEPT_MARK}",
                    _comment(f"Return if policy {policy.ref} accepted"),
                    "-j RETURN",
                )
            )
        names = ", ".join(p.ref for p in isolating)
        rules.append(
            _join(
                _comment(
                    "Drop if no policies passed packet: "
                    f"{ep.label} isolated for {direction} by {names}"
                ),
                "-j DROP",
            )
        )
        return rules

    # ------------------------------------------------------------------ policy chains

    def _policy_chain(self, policy: Policy, direction: str) -> str:
        name = policy_chain(policy.ref, direction)
        if name in self.chains:
            return name
        rules: list[str] = []
        self.chains[name] = rules
        for rule in policy.rules(direction):
            where = f"{policy.ref} {direction}[{rule.index}]"
            body = self._rule_lines(policy, rule, direction, where)
            if body:
                rules.extend(body)
                rules.append(
                    _join(
                        f"-m mark --mark {ACCEPT_MARK}", _comment(f"{where} accepted"), "-j RETURN"
                    )
                )
            else:
                rules.append(_comment(f"{where} matches no endpoint"))
        if not policy.rules(direction):
            rules.append(
                _comment(
                    f"{policy.ref} has no {direction} rules: every {direction} packet is denied"
                )
            )
        return name

    def _rule_lines(self, policy: Policy, rule: Rule, direction: str, where: str) -> list[str]:
        """Every (peer, port) combination of one rule as a rule line, duplicates dropped."""
        peer_flag = "-s" if direction == INGRESS else "-d"
        accept = f"-j MARK --set-xmark {ACCEPT_MARK}"
        lines: dict[str, None] = {}
        targets: list[_Target] = [_Target()] if not rule.peers else []
        for index, peer in enumerate(rule.peers):
            if peer.ip_block is not None:
                targets.append(_Target(block=peer.ip_block, index=index))
            else:
                targets.extend(_Target(pod=ep) for ep in self._pods_of(peer, policy.namespace))
        ports: list[PortRule | None] = list(rule.ports) or [None]
        for target in targets:
            for port in ports:
                if port is not None and port.named:
                    for line in self._named_port_lines(
                        policy, rule, direction, target, port, where
                    ):
                        lines[line] = None
                    continue
                port_args = _port_args(port)
                if target.pod is not None:
                    pod = target.pod
                    note = f"{where} {'from' if direction == INGRESS else 'to'} {pod.label}"
                    lines[_join(f"{peer_flag} {pod.ip}/32", port_args, _comment(note), accept)] = (
                        None
                    )
                elif target.block is not None:
                    line = self._block_line(
                        policy, rule, direction, target.index, target.block, port_args, where
                    )
                    lines[line] = None
                else:
                    lines[_join(port_args, _comment(where), accept)] = None
        return list(lines)

    def _block_line(
        self,
        policy: Policy,
        rule: Rule,
        direction: str,
        index: int,
        block: IPBlock,
        port_args: str,
        where: str,
        extra: str = "",
        detail: str = "",
    ) -> str:
        """The rule line for an ipBlock peer (the ``index``-th of its rule); with excepts, it
        jumps to a sub-chain that returns for them first."""
        flag = "-s" if direction == INGRESS else "-d"
        if block.cidr.version != 4:
            return _comment(f"{where} ipBlock {block} is IPv6: not rendered in this IPv4 table")
        note = f"{where}{detail} ipBlock {block}" + self._outside_note(block)
        excepts = [n for n in block.excepts if n.version == 4]
        if not excepts:
            return _join(
                f"{flag} {block.cidr}",
                extra,
                port_args,
                _comment(note),
                f"-j MARK --set-xmark {ACCEPT_MARK}",
            )
        chain = "cali-ex-" + _digest(f"{policy.ref}|{direction}|{rule.index}|{index}")
        if chain not in self.chains:
            self.chains[chain] = [
                _join(f"{flag} {net}", _comment(f"{where} except {net}"), "-j RETURN")
                for net in excepts
            ]
            self.chains[chain].append(
                _join(
                    _comment(f"{where} ipBlock {block.cidr}"), f"-j MARK --set-xmark {ACCEPT_MARK}"
                )
            )
        return _join(f"{flag} {block.cidr}", extra, port_args, _comment(note), f"-j {chain}")

    def _named_port_lines(
        self,
        policy: Policy,
        rule: Rule,
        direction: str,
        target: _Target,
        port: PortRule,
        where: str,
    ) -> list[str]:
        """A named port resolved at each destination pod: ``-d <podIP>/32 --dport <its number>``."""
        accept = f"-j MARK --set-xmark {ACCEPT_MARK}"
        out = []
        if direction == INGRESS:
            # The destination is the protected pod itself: every local pod this policy selects.
            for dst in self.local:
                resolved = dst.named_port(str(port.port), port.protocol)
                if (
                    resolved is None
                    or dst.ip is None
                    or dst.ip.version != 4
                    or not policy_selects(policy, dst)
                ):
                    continue
                dst_args = f"-d {dst.ip}/32"
                port_args = _port_args(port, resolved.number)
                detail = f" port {port.port}={resolved.number} at {dst.label}"
                note = where + detail
                if target.pod is not None:
                    out.append(
                        _join(
                            f"-s {target.pod.ip}/32",
                            dst_args,
                            port_args,
                            _comment(f"{note} from {target.pod.label}"),
                            accept,
                        )
                    )
                elif target.block is not None:
                    out.append(
                        self._block_line(
                            policy,
                            rule,
                            direction,
                            target.index,
                            target.block,
                            port_args,
                            where,
                            dst_args,
                            detail,
                        )
                    )
                else:
                    out.append(_join(dst_args, port_args, _comment(note), accept))
            return out
        # Egress: the destination is the peer; only pods declare named ports.
        if target.pod is not None:
            candidates = [target.pod]
        elif target.block is not None:
            block = target.block
            candidates = [ep for ep in self.eps if ep.is_pod and block.contains(ep.ip)]
        else:
            candidates = [ep for ep in self.eps if ep.is_pod]
        for dst in candidates:
            resolved = dst.named_port(str(port.port), port.protocol)
            if resolved is None or dst.ip is None or dst.ip.version != 4:
                continue
            note = f"{where} port {port.port}={resolved.number} at {dst.label}"
            out.append(
                _join(f"-d {dst.ip}/32", _port_args(port, resolved.number), _comment(note), accept)
            )
        return out

    def _pods_of(self, peer: Peer, policy_namespace: str) -> list[Endpoint]:
        """Pods a selector peer names that have an IPv4 address, in address order."""
        found = [
            ep
            for ep in self.eps
            if ep.ip is not None
            and ep.ip.version == 4
            and self.ps.peer_matches(peer, ep, policy_namespace)
        ]
        return sorted(found, key=lambda e: int(e.ip) if e.ip else 0)

    def _outside_note(self, block: IPBlock) -> str:
        covered = [
            str(net)
            for net in self.outside
            if _within(net, block.cidr) and not any(net.overlaps(x) for x in block.excepts)
        ]
        return f" (covers outside {', '.join(covered)})" if covered else ""


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    """Whether ``inner`` lies inside ``outer`` (never across IP versions)."""
    return (
        inner.version == outer.version
        and int(outer.network_address) <= int(inner.network_address)
        and int(inner.broadcast_address) <= int(outer.broadcast_address)
    )


def _outside_cidr(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise LabError(
            f"Outside range {text!r} is not a CIDR.", "Write it like 203.0.113.0/24."
        ) from None
